//! Requests generated to break one named rule get the error that rule calls for.

use super::common::{
    THROTTLING, answer, expected_got_plain, final_attempts, plain_answer_kind, redacted,
};
use super::{Context, Severity, Verdict};
use crate::coverage::ids;
use crate::history::{History, NO_OPERATION};

/// What the check enforces, in one line.
pub const EXPLAIN_VALIDATION: &str = "a request built to break one rule (a member constraint, \
     malformed JSON, a wrong JSON type, an unknown operation, a missing X-Amz-Target, a wrong \
     Content-Type) gets exactly the client error that rule calls for";

/// Errors that mean "the request itself was refused as invalid".
const INPUT_ERRORS: [&str; 2] = ["ValidationException", "SerializationException"];

/// Checks every exchange that carries an expectation.
pub fn validation(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    for i in final_attempts(history) {
        let e = &history.exchanges[i];
        let Some(expect) = &e.expect else { continue };
        if e.is_unknown() {
            continue;
        }
        // A protocol rule is about the wire, not about the operation the body was meant for
        // (without X-Amz-Target the endpoint cannot even know it), and a made-up operation
        // name has no row: their findings name `-`, one deviation per rule whatever the
        // operation or the made-up name.
        let op = if expect.rule.starts_with("protocol/") {
            NO_OPERATION
        } else {
            e.row_operation()
        };
        // The name/ID exclusion is one rule wherever it is judged: the `exclusion` check names
        // it, so both checks report one deviation.
        let rule = if expect.rule.starts_with("exclusive/") {
            "exclusion/both-rejected".to_string()
        } else {
            format!("validation/{}", expect.rule)
        };
        let got = e.error_name();
        if got.as_deref() == Some(THROTTLING) {
            // Throttled on every attempt: the request was never judged by the endpoint.
            continue;
        }
        if op != NO_OPERATION {
            verdict.judged(op);
        }
        let before = verdict.findings.len();
        let covers = expect
            .error
            .as_ref()
            .and_then(|_| ids::of_expectation(op, &expect.rule));
        // An inferred protocol answer is unsettled, but a 5xx is a clear deviation all the
        // same: a request the endpoint cannot route is the client's fault.
        let clear = expect.rule.starts_with("protocol/") && e.status().is_some_and(|s| s >= 500);
        let severity = if expect.unsettled && !clear {
            Severity::Unsettled
        } else {
            Severity::Failure
        };
        let status = e.status().unwrap_or(0);
        match &expect.error {
            Some(expected) => {
                let want = ctx.spec.error_status(expected);
                if (200..300).contains(&status) {
                    verdict.fail(
                        op,
                        &rule,
                        expected_got_plain(expected, e),
                        format!("expected HTTP {want} {expected}, got success (HTTP {status})"),
                        Some(i),
                    );
                } else if got.as_deref() != Some(expected.as_str()) {
                    verdict.find(
                        severity,
                        op,
                        &rule,
                        expected_got_plain(expected, e),
                        format!("expected HTTP {want} {expected}, got {}", answer(e)),
                        Some(i),
                    );
                } else if status != want {
                    verdict.fail(
                        op,
                        &rule,
                        expected_got_plain(&format!("{want} {expected}"), e),
                        format!("expected HTTP {want} {expected}, got HTTP {status} {expected}"),
                        Some(i),
                    );
                }
            }
            None => {
                // A value at the edge of its constraint: refusing it as invalid is wrong; other
                // errors depend on the rest of the sequence and are judged elsewhere.
                if let Some(name) = got.filter(|n| INPUT_ERRORS.contains(&n.as_str())) {
                    verdict.find(
                        severity,
                        op,
                        &rule,
                        format!(
                            "expected the value to be accepted, got {}",
                            plain_answer_kind(e)
                        ),
                        format!("expected the value to be accepted, got HTTP {status} {name}"),
                        Some(i),
                    );
                }
            }
        }
        if let Some(id) = covers {
            let result = verdict.judged_since(before);
            verdict.cover(id, result);
        }
    }
    redacted(ctx, verdict)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::history::Expectation;
    use crate::oracle::common::testing::*;
    use crate::oracle::common::{CREATE, DESCRIBE, UPDATE};

    fn judge(h: &H) -> Verdict {
        validation(&ctx(), &h.history())
    }

    fn raw_step(h: &mut H, outcome: crate::history::Outcome) -> usize {
        let i = h.expecting(
            CREATE,
            json!({}),
            Some("SerializationException"),
            "json/malformed",
            outcome,
        );
        h.exchanges[i].raw = true;
        h.exchanges[i].request = json!("{\"CustomKeyStoreName\": ");
        i
    }

    /// Catches a protocol finding attributed to the operation the body was meant for (one
    /// deviation per operation for one wire bug), a 5xx to an inferred protocol case judged
    /// merely unsettled, or another refusal of it judged a failure.
    #[test]
    fn protocol_findings_name_no_operation_and_only_a_5xx_fails_an_inferred_case() {
        let mut h = H::new();
        for (status, name) in [(501, "InvalidAction"), (400, "SerializationException")] {
            let i = h.expecting(
                DESCRIBE,
                json!({}),
                Some("UnknownOperationException"),
                "protocol/missing-target",
                crate::oracle::common::testing::response(
                    status,
                    json!({"__type": name, "message": "m"}),
                ),
            );
            h.exchanges[i].expect.as_mut().unwrap().unsettled = true;
        }
        let v = judge(&h);
        assert_eq!(v.findings.len(), 2, "{:#?}", v.findings);
        assert!(
            v.findings.iter().all(|f| f.operation == "-"),
            "{:#?}",
            v.findings
        );
        assert_eq!(v.findings[0].severity, Severity::Failure);
        assert_eq!(v.findings[1].severity, Severity::Unsettled);
        assert!(v.exercised.is_empty());
    }

    #[test]
    fn the_expected_errors_pass() {
        let mut h = H::new();
        h.expecting(
            CREATE,
            json!({"CustomKeyStoreName": ""}),
            Some("ValidationException"),
            "CustomKeyStoreName/length-min",
            error("ValidationException"),
        );
        raw_step(&mut h, error("SerializationException"));
        h.expecting(
            CREATE,
            json!({"CustomKeyStoreName": "x".repeat(256)}),
            None,
            "CustomKeyStoreName/length-max-ok",
            error("CloudHsmClusterNotFoundException"),
        );
        h.call(DESCRIBE, json!({}), ok(page(vec![], None)));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[CREATE], 3);
        assert!(!v.exercised.contains_key(DESCRIBE));
    }

    #[test]
    fn each_expectation_counts_its_inventory_rule() {
        let mut h = H::new();
        let rule = "NewCustomKeyStoreName/length-min";
        let body = json!({"CustomKeyStoreId": "cks-1", "NewCustomKeyStoreName": ""});
        h.expecting(
            UPDATE,
            body.clone(),
            Some("ValidationException"),
            rule,
            error("ValidationException"),
        );
        h.expecting(
            UPDATE,
            body,
            Some("ValidationException"),
            rule,
            ok(json!({})),
        );
        let i = h.expecting(
            CREATE,
            json!({}),
            Some("SerializationException"),
            "body/truncated-json",
            error("SerializationException"),
        );
        h.exchanges[i].raw = true;
        h.exchanges[i].request = json!("{\"CustomKeyStoreName\": ");
        let v = judge(&h);
        let id = "member/UpdateCustomKeyStore/NewCustomKeyStoreName/length-min";
        assert_eq!((v.covered[id].exercised, v.covered[id].failed), (2, 1));
        assert_eq!(v.covered["protocol/malformed-json"].exercised, 1);
        assert_eq!(v.covered["protocol/malformed-json"].failed, 0);
        assert!(
            crate::coverage::inventory::inventory()
                .iter()
                .any(|r| r.id == id)
        );
    }

    #[test]
    fn a_validation_expectation_answered_with_200_is_a_failure() {
        let mut h = H::new();
        h.expecting(
            UPDATE,
            json!({"CustomKeyStoreId": "cks-1", "NewCustomKeyStoreName": ""}),
            Some("ValidationException"),
            "NewCustomKeyStoreName/length-min",
            ok(json!({})),
        );
        let v = judge(&h);
        assert_eq!(
            failures(&v),
            ["validation/NewCustomKeyStoreName/length-min"]
        );
        assert_eq!(v.findings[0].kind, "expected ValidationException, got 200");
    }

    #[test]
    fn a_different_error_is_a_failure_unless_unsettled() {
        let mut h = H::new();
        raw_step(&mut h, error("ValidationException"));
        let v = judge(&h);
        assert_eq!(failures(&v), ["validation/json/malformed"]);
        assert_eq!(
            v.findings[0].kind,
            "expected SerializationException, got 400 ValidationException"
        );
        let mut h = H::new();
        let i = h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-1", "CustomKeyStoreName": "n"}),
            error("CustomKeyStoreNotFoundException"),
        );
        h.exchanges[i].expect = Some(Expectation {
            error: Some("ValidationException".into()),
            rule: "exclusive/CustomKeyStoreId+CustomKeyStoreName".into(),
            unsettled: true,
        });
        let v = judge(&h);
        assert_no_failure(&v);
        assert_eq!(rules(&v, Severity::Unsettled), ["exclusion/both-rejected"]);
    }

    #[test]
    fn the_right_error_with_the_wrong_status_is_a_failure() {
        let mut h = H::new();
        h.expecting(
            CREATE,
            json!({"CustomKeyStoreName": ""}),
            Some("ValidationException"),
            "CustomKeyStoreName/length-min",
            response(
                500,
                json!({"__type": "ValidationException", "message": "m"}),
            ),
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["validation/CustomKeyStoreName/length-min"]);
        assert_eq!(
            v.findings[0].kind,
            "expected 400 ValidationException, got 500 ValidationException"
        );
    }

    #[test]
    fn an_edge_value_refused_as_invalid_is_caught_and_retries_are_skipped() {
        let mut h = H::new();
        h.expecting(
            CREATE,
            json!({"CustomKeyStoreName": "x".repeat(256)}),
            None,
            "CustomKeyStoreName/length-max-ok",
            error("ThrottlingException"),
        );
        h.retry(error("ValidationException"));
        let v = judge(&h);
        assert_eq!(
            failures(&v),
            ["validation/CustomKeyStoreName/length-max-ok"]
        );
        assert_eq!(v.findings[0].exchange, Some(1));
        assert_eq!(
            v.findings[0].signature(),
            "CreateCustomKeyStore/validation/CustomKeyStoreName/length-max-ok: \
             expected the value to be accepted, got 400 ValidationException"
        );
    }
}
