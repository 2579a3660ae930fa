//! Operations an endpoint does not implement at all.
//!
//! Emulators that lack the custom key store API answer each of its operations in their own
//! style: moto with an HTTP 500 HTML page saying `NotImplementedError`, LocalStack with a 501
//! `InternalFailure` "not yet implemented or pro feature", others with a 400
//! `UnknownOperationException`. [`not_implemented_answer`] recognises such an answer, so the
//! harness can report the operation once as not implemented instead of judging every answer;
//! [`probe_body`] gives a request per operation that tells, in one exchange and without
//! creating or changing anything, whether the endpoint implements it.

use serde_json::{Value, json};

use super::common::answer_kind;
use crate::history::{Exchange, Outcome};
use crate::spec::Spec;

/// A custom key store ID that is well formed (`cks-` and 17 hex digits, as KMS issues them;
/// the spec asks only for 1 to 64 characters) but that no endpoint issues.
pub const PROBE_STORE_ID: &str = "cks-00000000000000000";

/// A CustomKeyStoreType outside the spec's enum: KMS refuses a Create that carries it.
pub const PROBE_STORE_TYPE: &str = "NOT_A_TYPE";

/// Error names that mean "no such operation" in some framework. `UnsupportedOperationException`
/// is not among them: it is a real KMS error (CreateKey declares it).
const NOT_IMPLEMENTED_NAMES: [&str; 7] = [
    "UnknownOperationException",
    "UnknownOperation",
    "InvalidAction",
    "NotImplemented",
    "NotImplementedException",
    "NotImplementedError",
    "UnsupportedOperation",
];

/// Phrases (lower case) of a body or message that say the operation is not implemented.
const NOT_IMPLEMENTED_PHRASES: [&str; 3] =
    ["not implemented", "notimplemented", "not yet implemented"];

/// The kind of answer (e.g. `500 text/html`, `501 InternalFailure`,
/// `400 UnknownOperationException`) when `e` is an answer an endpoint gives for an operation
/// it does not implement; None for a success, an error KMS could give, or no answer.
pub fn not_implemented_answer(e: &Exchange) -> Option<String> {
    classify(e).map(|(kind, _)| kind)
}

/// Whether `e` says outright that the operation is not implemented (a 501, an error name such
/// as `UnknownOperationException`, or words like "not implemented"), as opposed to a bare web
/// server error page, which an endpoint that answers its errors as HTML gives too.
pub fn explicitly_not_implemented(e: &Exchange) -> bool {
    classify(e).is_some_and(|(_, explicit)| explicit)
}

/// The not-implemented kind of the answer to a request whose X-Amz-Target named `e`'s real
/// operation, whatever else it broke (e.g. a protocol case with another Content-Type): what
/// folds such a finding under that operation's not-implemented deviation.
pub fn answer_to_target(e: &Exchange) -> Option<String> {
    let targeted = e.wire.as_ref().is_none_or(|w| !w.no_target);
    if !targeted || Spec::kms().operation(&e.operation).is_none() {
        return None;
    }
    classify_answer(e).map(|(kind, _)| kind)
}

/// The not-implemented kind of an answer, and whether it says so outright.
fn classify(e: &Exchange) -> Option<(String, bool)> {
    // An UnknownOperationException to a request that named no real operation (a made-up
    // name, no X-Amz-Target, another Content-Type) is the right answer, not a sign that some
    // operation is missing.
    let deliberate = e
        .expect
        .as_ref()
        .is_some_and(|x| x.rule.starts_with("protocol/"));
    if deliberate || e.wire.is_some() || Spec::kms().operation(&e.operation).is_none() {
        return None;
    }
    classify_answer(e)
}

/// The not-implemented kind of an answer, whatever the request meant to test.
fn classify_answer(e: &Exchange) -> Option<(String, bool)> {
    let Outcome::Response {
        status,
        content_type,
        body,
        text,
        ..
    } = &e.outcome
    else {
        return None;
    };
    let status = *status;
    if status < 400 {
        return None;
    }
    let explicit = || Some((answer_kind(e), true));
    if status == 501 {
        return explicit();
    }
    if e.error_name()
        .is_some_and(|name| NOT_IMPLEMENTED_NAMES.contains(&name.as_str()))
    {
        return explicit();
    }
    let text = text.as_deref().filter(|t| !t.trim().is_empty());
    // A web server's error page instead of a JSON error: the framework found no handler (or
    // its handler raised NotImplementedError). 502-504 are a gateway's pages, not this.
    let media = content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    let html = media.is_some_and(|m| m.eq_ignore_ascii_case("text/html"));
    let message = ["message", "Message"]
        .iter()
        .find_map(|m| body.get(*m).and_then(Value::as_str));
    let says_so = |t: &str| {
        let lower = t.to_lowercase();
        NOT_IMPLEMENTED_PHRASES.iter().any(|p| lower.contains(p))
    };
    if text.into_iter().chain(message).any(says_so) {
        return explicit();
    }
    if status == 500 && (html || (body.is_null() && text.is_some())) {
        return Some((answer_kind(e), false));
    }
    None
}

/// A request body for `operation` that a KMS-like endpoint answers without creating or
/// changing anything, so one request tells whether the operation is implemented; None for
/// CreateKey and every other operation, which must never be probed.
///
/// `name` is the CustomKeyStoreName a Create probe carries: give one with the run's prefix,
/// so that a store a lenient endpoint creates all the same is recognised as the run's own and
/// cleaned up. KMS refuses the Create probe (its CustomKeyStoreType is not in the enum, and it
/// has neither a cluster nor a proxy); the others name a store that does not exist (Describe
/// lists).
pub fn probe_body(operation: &str, name: &str) -> Option<Value> {
    match operation {
        "DescribeCustomKeyStores" => Some(json!({})),
        "ConnectCustomKeyStore" | "DisconnectCustomKeyStore" | "DeleteCustomKeyStore" => {
            Some(json!({ "CustomKeyStoreId": PROBE_STORE_ID }))
        }
        // No change asked for: even an endpoint that finds the store changes nothing.
        "UpdateCustomKeyStore" => Some(json!({ "CustomKeyStoreId": PROBE_STORE_ID })),
        "CreateCustomKeyStore" => Some(json!({
            "CustomKeyStoreName": name,
            "CustomKeyStoreType": PROBE_STORE_TYPE,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::history::Outcome;
    use crate::model::{Fixtures, Model, ModelConfig, SeededIds};
    use crate::oracle::common::testing::{error, ok, response, unknown};

    const SIX: [&str; 6] = [
        "CreateCustomKeyStore",
        "DescribeCustomKeyStores",
        "ConnectCustomKeyStore",
        "DisconnectCustomKeyStore",
        "UpdateCustomKeyStore",
        "DeleteCustomKeyStore",
    ];

    fn exchange(operation: &str, outcome: Outcome) -> Exchange {
        Exchange {
            sequence: 0,
            step: 0,
            attempt: 1,
            operation: operation.into(),
            request: json!({}),
            raw: false,
            wire: None,
            started_ms: 0,
            elapsed_ms: 1,
            outcome,
            expect: None,
        }
    }

    fn kind(outcome: Outcome) -> Option<String> {
        not_implemented_answer(&exchange("DescribeCustomKeyStores", outcome))
    }

    fn raw(status: u16, content_type: Option<&str>, text: &str) -> Outcome {
        Outcome::Response {
            status,
            request_id: None,
            content_type: content_type.map(str::to_string),
            error_type: None,
            body: serde_json::from_str(text).unwrap_or(Value::Null),
            text: serde_json::from_str::<Value>(text)
                .is_err()
                .then(|| text.to_string()),
        }
    }

    fn moto() -> Outcome {
        raw(
            500,
            Some("text/html; charset=utf-8"),
            "<!doctype html><html><head><title>500 Internal Server Error</title></head><body>\
             <h1>Internal Server Error</h1><p>NotImplementedError: The DescribeCustomKeyStores \
             action has not been implemented</p></body></html>",
        )
    }

    fn localstack() -> Outcome {
        raw(
            501,
            Some("application/json"),
            r#"{"__type":"InternalFailure","message":"API action 'DescribeCustomKeyStores' for service 'kms' not yet implemented or pro feature - please check https://docs.localstack.cloud/references/coverage/ for further information"}"#,
        )
    }

    /// Catches an UnknownOperationException to a deliberately unknown operation, or to a
    /// request without X-Amz-Target, being taken as "operation not implemented".
    #[test]
    fn unknown_operation_answers_to_protocol_cases_mark_nothing_unimplemented() {
        let unknown = || error("UnknownOperationException");
        // The same answer to a real operation does mean it is missing.
        assert!(not_implemented_answer(&exchange("DescribeCustomKeyStores", unknown())).is_some());
        let made_up = exchange("ListCustomKeyStores", unknown());
        assert_eq!(not_implemented_answer(&made_up), None);
        let mut no_target = exchange("DescribeCustomKeyStores", unknown());
        no_target.wire = Some(crate::history::Wire {
            no_target: true,
            content_type: None,
        });
        assert_eq!(not_implemented_answer(&no_target), None);
        let mut expected = exchange("DescribeCustomKeyStores", unknown());
        expected.expect = Some(crate::history::Expectation {
            error: Some("UnknownOperationException".into()),
            rule: "protocol/wrong-content-type".into(),
            unsettled: true,
        });
        assert!(!explicitly_not_implemented(&expected));
    }

    #[test]
    fn each_style_of_not_implemented_is_recognised_with_a_stable_kind() {
        let some = |k: &str| Some(k.to_string());
        assert_eq!(kind(moto()), some("500 text/html"));
        assert_eq!(kind(localstack()), some("501 InternalFailure"));
        assert_eq!(
            kind(error("UnknownOperationException")),
            some("400 UnknownOperationException")
        );
        assert_eq!(
            kind(raw(501, Some("text/plain"), "Not Implemented")),
            some("501 text/plain")
        );
        assert_eq!(kind(raw(501, None, "")), some("501 without an error name"));
        for name in [
            "InvalidAction",
            "NotImplemented",
            "NotImplementedException",
            "UnsupportedOperation",
        ] {
            let answer = response(400, json!({ "__type": name, "message": "m" }));
            assert_eq!(kind(answer), Some(format!("400 {name}")));
        }
        // The name in the X-Amzn-ErrorType header, with a namespace.
        let mut header = response(500, json!({ "message": "m" }));
        if let Outcome::Response { error_type, .. } = &mut header {
            *error_type = Some("com.amazonaws.kms#NotImplemented".into());
        }
        assert_eq!(kind(header), some("500 NotImplemented"));
        // A page that is not HTML, and no content type at all.
        assert_eq!(
            kind(raw(500, Some("text/plain"), "Internal Server Error")),
            some("500 text/plain")
        );
        assert_eq!(
            kind(raw(500, None, "Traceback (most recent call last): ...")),
            some("500 without an error name")
        );
        // A JSON error whose message says so.
        let said = response(
            400,
            json!({ "__type": "ValidationException", "message": "Operation is Not Implemented" }),
        );
        assert_eq!(kind(said), some("400 ValidationException"));
        let said = response(
            500,
            json!({ "code": "ServiceFailure", "Message": "action NotImplemented here" }),
        );
        assert_eq!(kind(said), some("500 ServiceFailure"));
        let text = raw(
            404,
            Some("text/plain"),
            "this operation is not yet implemented",
        );
        assert_eq!(kind(text), some("404 text/plain"));
    }

    #[test]
    fn a_bare_error_page_is_not_explicit_but_a_page_saying_so_is() {
        let bare = raw(
            500,
            Some("text/html"),
            "<html><h1>Internal Server Error</h1></html>",
        );
        let explicit =
            |o: Outcome| explicitly_not_implemented(&exchange("UpdateCustomKeyStore", o));
        assert_eq!(kind(bare.clone()), Some("500 text/html".into()));
        assert!(!explicit(bare));
        assert!(explicit(moto()));
        assert!(explicit(localstack()));
        assert!(explicit(error("UnknownOperationException")));
        assert!(!explicit(error("CustomKeyStoreNotFoundException")));
    }

    #[test]
    fn successes_kms_errors_and_no_answer_are_not() {
        assert_eq!(
            kind(ok(json!({ "CustomKeyStores": [], "Truncated": false }))),
            None
        );
        assert_eq!(kind(error("CustomKeyStoreNotFoundException")), None);
        assert_eq!(
            not_implemented_answer(&exchange(
                "CreateKey",
                error("UnsupportedOperationException")
            )),
            None
        );
        assert_eq!(kind(error("UnsupportedOperationException")), None);
        assert_eq!(kind(error("KMSInternalException")), None);
        assert_eq!(kind(error("ValidationException")), None);
        assert_eq!(kind(unknown()), None);
        // A 2xx is never one, whatever its body says.
        assert_eq!(
            kind(raw(200, Some("text/html"), "<p>not implemented</p>")),
            None
        );
        // An empty 500, and a gateway's page, are failures of another kind.
        assert_eq!(kind(raw(500, Some("application/x-amz-json-1.1"), "")), None);
        assert_eq!(
            kind(raw(503, Some("text/html"), "<h1>Service Unavailable</h1>")),
            None
        );
        assert_eq!(
            kind(raw(502, Some("text/html"), "<h1>Bad Gateway</h1>")),
            None
        );
    }

    #[test]
    fn probes_exist_for_the_six_operations_only() {
        for op in SIX {
            let body = probe_body(op, "ckscheck-t-probe").expect("a probe");
            assert!(body.is_object(), "{op}");
        }
        assert_eq!(probe_body("DescribeCustomKeyStores", "n"), Some(json!({})));
        let create = probe_body("CreateCustomKeyStore", "ckscheck-t-probe").unwrap();
        assert_eq!(create["CustomKeyStoreName"], "ckscheck-t-probe");
        for op in ["CreateKey", "ListKeys", "Encrypt", ""] {
            assert_eq!(probe_body(op, "n"), None, "{op}");
        }
    }

    #[test]
    fn probe_ids_are_valid_and_the_create_probe_breaks_only_the_type_enum() {
        let spec = crate::spec::Spec::kms();
        let id = spec.shape("CustomKeyStoreIdType");
        let len = PROBE_STORE_ID.chars().count() as i64;
        assert!(id.min.is_none_or(|m| len >= m) && id.max.is_none_or(|m| len <= m));
        assert!(id.pattern_matches(PROBE_STORE_ID));
        let store_type = spec.shape("CustomKeyStoreType");
        let known = store_type.enum_values.as_deref().expect("an enum");
        assert!(!store_type.open && !known.iter().any(|v| v == PROBE_STORE_TYPE));
    }

    /// The reference model answers every probe with the error KMS gives, and is unchanged.
    #[test]
    fn the_model_refuses_every_probe_but_describe_and_changes_nothing() {
        let mut model = Model::new(
            ModelConfig::default(),
            Arc::new(Fixtures::builtin()),
            Box::new(SeededIds::new(7)),
        );
        for op in SIX {
            let body = probe_body(op, "ckscheck-t-probe").unwrap();
            let outcome = model.apply(0, op, body.to_string().as_bytes());
            match op {
                "DescribeCustomKeyStores" => {
                    let page = outcome.expect("a listing");
                    assert_eq!(page["CustomKeyStores"], json!([]));
                }
                "CreateCustomKeyStore" => {
                    assert_eq!(outcome.unwrap_err().name, "ValidationException");
                }
                _ => assert_eq!(
                    outcome.unwrap_err().name,
                    "CustomKeyStoreNotFoundException",
                    "{op}"
                ),
            }
        }
        assert!(model.stores(0).is_empty());
        assert!(model.keys().is_empty());
    }
}
