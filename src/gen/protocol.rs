//! The `protocol/` cases of `Workload::Invalid`: one request that breaks the awsJson1_1 wire
//! protocol itself, not a member rule.
//!
//! - `protocol/unknown-operation`: `X-Amz-Target: TrentService.<a made-up operation>`. KMS
//!   answers HTTP 400 `UnknownOperationException` (fact sheet, "Wire protocol"; the AWS
//!   error lists of every awsJson1_1 service): settled.
//! - `protocol/missing-target`: no `X-Amz-Target` header at all. INFERRED: the Smithy
//!   awsJson1_1 specification makes the header required routing information but does not say
//!   what a server answers without it; without it no operation can be named, so the answer we
//!   expect is the unknown-operation one, HTTP 400 `UnknownOperationException` (as floci's
//!   fix for a missing target, floci-io/floci#3925, also chose without a capture). Unsettled.
//! - `protocol/wrong-content-type`: `Content-Type: text/plain` with a valid target and body.
//!   INFERRED: the Smithy specification requires `application/x-amz-json-1.1` and says nothing
//!   of a server's answer to another type; the AWS front end picks the protocol by content
//!   type, so we expect that no awsJson1_1 operation is found: HTTP 400
//!   `UnknownOperationException`. Unsettled. `text/plain` is chosen because it is plainly not
//!   JSON (a form or a hand-written curl call sends it), whereas `application/json` is a JSON
//!   type some AWS JSON front ends accept, and would test nothing we could call wrong.
//!
//! An unsettled expectation fails only on a clear deviation (a success, a 5xx): any other
//! refusal is reported as unsettled.
//!
//! Bodies never create or change anything, whatever the endpoint does with the headers: an
//! empty Describe, or an operation on a store ID no endpoint issued (Create is never sent).

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

use super::Step;
use crate::history::{Expectation, Wire};
use crate::oracle::implemented::PROBE_STORE_ID;

/// The error every protocol case expects.
pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";

/// The `Content-Type` a `protocol/wrong-content-type` case sends.
pub const WRONG_CONTENT_TYPE: &str = "text/plain";

/// Operation names KMS does not have, each close to a real one (a plural, a singular, another
/// verb), as a client with a typo or an emulator's made-up alias would send.
pub const MADE_UP_OPERATIONS: [&str; 4] = [
    "ListCustomKeyStores",
    "DescribeCustomKeyStore",
    "GetCustomKeyStore",
    "CreateCustomKeyStores",
];

/// The rule ids, in the order the strategy draws them.
pub const RULES: [&str; 3] = [
    "protocol/unknown-operation",
    "protocol/missing-target",
    "protocol/wrong-content-type",
];

/// Operations a header case is sent for (never Create: a lenient endpoint must change nothing).
const HARMLESS: [&str; 5] = [
    "DescribeCustomKeyStores",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];

/// A body for `operation` that changes nothing wherever it lands.
fn harmless_body(operation: &str) -> String {
    if operation == "DescribeCustomKeyStores" {
        "{}".into()
    } else {
        json!({ "CustomKeyStoreId": PROBE_STORE_ID }).to_string()
    }
}

fn step(operation: &str, rule: &str, unsettled: bool, wire: Option<Wire>) -> Vec<Step> {
    vec![Step::Raw {
        operation: operation.to_string(),
        body: harmless_body(operation),
        expect: Expectation {
            error: Some(UNKNOWN_OPERATION.into()),
            rule: rule.into(),
            unsettled,
        },
        wire,
    }]
}

/// One protocol case: a single raw step breaking one of [`RULES`].
pub fn strategy() -> BoxedStrategy<Vec<Step>> {
    proptest::strategy::Union::new(cases()).boxed()
}

/// One strategy per rule of [`RULES`], in that order.
pub fn cases() -> Vec<BoxedStrategy<Vec<Step>>> {
    let unknown = select(MADE_UP_OPERATIONS.to_vec())
        .prop_map(|op| step(op, RULES[0], false, None))
        .boxed();
    let no_target = select(HARMLESS.to_vec())
        .prop_map(|op| {
            let wire = Wire {
                no_target: true,
                content_type: None,
            };
            step(op, RULES[1], true, Some(wire))
        })
        .boxed();
    let content_type = select(HARMLESS.to_vec())
        .prop_map(|op| {
            let wire = Wire {
                no_target: false,
                content_type: Some(WRONG_CONTENT_TYPE.into()),
            };
            step(op, RULES[2], true, Some(wire))
        })
        .boxed();
    vec![unknown, no_target, content_type]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;
    use crate::spec::Spec;

    /// Catches a made-up name that is (or becomes) a real KMS operation, which would turn the
    /// unknown-operation case into a real call.
    #[test]
    fn made_up_operations_are_not_kms_operations() {
        for op in MADE_UP_OPERATIONS {
            assert!(
                Spec::kms().operation(op).is_none(),
                "{op} is a KMS operation"
            );
        }
    }

    /// Catches a protocol rule the strategy never draws, or a case that carries the wrong
    /// headers, settledness or a body that could create a store.
    #[test]
    fn every_rule_is_drawn_with_the_headers_it_breaks() {
        let s = strategy();
        let mut runner = TestRunner::deterministic();
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let case = s.new_tree(&mut runner).unwrap().current();
            let [
                Step::Raw {
                    operation,
                    expect,
                    wire,
                    body,
                },
            ] = case.as_slice()
            else {
                panic!("not one raw step: {case:?}");
            };
            assert_ne!(operation, "CreateCustomKeyStore");
            assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
            assert_eq!(expect.error.as_deref(), Some(UNKNOWN_OPERATION));
            match expect.rule.as_str() {
                "protocol/unknown-operation" => {
                    assert!(wire.is_none() && !expect.unsettled);
                    assert!(MADE_UP_OPERATIONS.contains(&operation.as_str()));
                }
                "protocol/missing-target" => {
                    let w = wire.as_ref().unwrap();
                    assert!(w.no_target && w.content_type.is_none() && expect.unsettled);
                }
                "protocol/wrong-content-type" => {
                    let w = wire.as_ref().unwrap();
                    assert!(!w.no_target && expect.unsettled);
                    assert_eq!(w.content_type.as_deref(), Some(WRONG_CONTENT_TYPE));
                }
                other => panic!("unexpected rule {other}"),
            }
            seen.insert(expect.rule.clone());
        }
        assert_eq!(seen, RULES.iter().map(|r| r.to_string()).collect());
    }
}
