//! The name/ID exclusion of DescribeCustomKeyStores: both together are rejected, either alone
//! finds exactly the store asked for, an unknown one is CustomKeyStoreNotFoundException.

use serde_json::Value;

use super::common::{DESCRIBE, NOT_FOUND, answer, entries, final_attempts, present, redacted};
use super::{Context, Severity, Verdict};
use crate::history::History;

/// What the check enforces, in one line.
pub const EXPLAIN_EXCLUSION: &str = "DescribeCustomKeyStores with both CustomKeyStoreId and \
     CustomKeyStoreName is rejected with a client error; by ID or by name alone it returns \
     exactly that store, and an unknown one gets CustomKeyStoreNotFoundException";

/// Checks the name/ID exclusion and exact lookups of DescribeCustomKeyStores.
pub fn exclusion(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    // The error KMS is taken to give for both members (inferred: KMS documents none).
    let (both_error, inferred) = ctx
        .spec
        .operation(DESCRIBE)
        .and_then(|op| op.exclusive.first())
        .map_or(("ValidationException", true), |g| {
            (g.error.as_str(), g.inferred)
        });
    for i in final_attempts(history) {
        let e = &history.exchanges[i];
        if e.operation != DESCRIBE || e.raw || e.is_unknown() {
            continue;
        }
        let by_id = present(&e.request, "CustomKeyStoreId");
        let by_name = present(&e.request, "CustomKeyStoreName");
        let status = e.status().unwrap_or(0);
        if by_id && by_name {
            verdict.judged(DESCRIBE);
            let name = e.error_name();
            if !(400..500).contains(&status) {
                verdict.fail(
                    DESCRIBE,
                    "exclusion/both-rejected",
                    format!(
                        "both CustomKeyStoreId and CustomKeyStoreName: expected HTTP 400 {both_error}, got {}",
                        answer(e)
                    ),
                    Some(i),
                );
            } else if name.as_deref() != Some(both_error) {
                let severity = if inferred {
                    Severity::Unsettled
                } else {
                    Severity::Failure
                };
                verdict.find(
                    severity,
                    DESCRIBE,
                    "exclusion/both-rejected",
                    format!(
                        "both CustomKeyStoreId and CustomKeyStoreName: expected {both_error}{}, got {}",
                        if inferred { " (inferred)" } else { "" },
                        answer(e)
                    ),
                    Some(i),
                );
            }
            continue;
        }
        let (member, wanted) = match (by_id, by_name) {
            (true, false) => ("CustomKeyStoreId", &e.request["CustomKeyStoreId"]),
            (false, true) => ("CustomKeyStoreName", &e.request["CustomKeyStoreName"]),
            _ => continue,
        };
        let expected_error = e.expect.as_ref().and_then(|x| x.error.as_deref());
        if expected_error == Some(NOT_FOUND) {
            verdict.judged(DESCRIBE);
            if e.error_name().as_deref() != Some(NOT_FOUND) || status != 400 {
                let got = if status == 200 {
                    format!("HTTP 200 with {} stores", entries(e.body()).len())
                } else {
                    answer(e)
                };
                verdict.fail(
                    DESCRIBE,
                    "exclusion/not-found",
                    format!("unknown {member}: expected HTTP 400 {NOT_FOUND}, got {got}"),
                    Some(i),
                );
            }
            continue;
        }
        if status != 200 {
            continue;
        }
        verdict.judged(DESCRIBE);
        let listed = entries(e.body());
        let matching = listed
            .iter()
            .filter(|x| x.get(member) == Some(wanted))
            .count();
        if listed.len() != 1 || matching != 1 {
            let shown: Vec<String> = listed
                .iter()
                .take(3)
                .map(|x| x.get(member).map_or("?".to_string(), show))
                .collect();
            verdict.fail(
                DESCRIBE,
                "exclusion/exact-match",
                format!(
                    "by {member} {}: expected exactly that one store, got {} stores [{}]",
                    show(wanted),
                    listed.len(),
                    shown.join(", ")
                ),
                Some(i),
            );
        }
    }
    redacted(ctx, verdict)
}

/// A JSON value for a message: strings bare, cut to 80 characters.
fn show(v: &Value) -> String {
    let s = match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    super::common::snippet(&s, 80)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oracle::common::testing::*;

    fn judge(h: &H) -> Verdict {
        exclusion(&ctx(), &h.history())
    }

    fn both() -> Value {
        json!({"CustomKeyStoreId": "cks-1", "CustomKeyStoreName": format!("{PREFIX}a")})
    }

    #[test]
    fn exact_lookups_and_a_rejected_pair_pass() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-1"}),
            ok(page(vec![entry("cks-1", "a", "CONNECTED")], None)),
        );
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreName": format!("{PREFIX}a")}),
            ok(page(vec![entry("cks-1", "a", "CONNECTED")], None)),
        );
        h.call(DESCRIBE, both(), error("ValidationException"));
        h.expecting(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-00000000000000000"}),
            Some(NOT_FOUND),
            "CustomKeyStoreId/unknown",
            error(NOT_FOUND),
        );
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[DESCRIBE], 4);
    }

    #[test]
    fn both_name_and_id_accepted_is_a_failure() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            both(),
            ok(page(vec![entry("cks-1", "a", "CONNECTED")], None)),
        );
        assert_eq!(failures(&judge(&h)), ["exclusion/both-rejected"]);
    }

    #[test]
    fn another_client_error_for_both_is_only_unsettled() {
        let mut h = H::new();
        h.call(DESCRIBE, both(), error(NOT_FOUND));
        let v = judge(&h);
        assert_no_failure(&v);
        assert_eq!(rules(&v, Severity::Unsettled), ["exclusion/both-rejected"]);
        let mut h = H::new();
        h.call(DESCRIBE, both(), error("KMSInternalException"));
        assert_eq!(failures(&judge(&h)), ["exclusion/both-rejected"]);
    }

    #[test]
    fn a_lookup_returning_other_stores_is_caught() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-1"}),
            ok(page(
                vec![
                    entry("cks-1", "a", "CONNECTED"),
                    entry("cks-2", "b", "CONNECTED"),
                ],
                None,
            )),
        );
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreName": format!("{PREFIX}a")}),
            ok(page(vec![entry("cks-2", "b", "CONNECTED")], None)),
        );
        assert_eq!(
            failures(&judge(&h)),
            ["exclusion/exact-match", "exclusion/exact-match"]
        );
    }

    #[test]
    fn an_unknown_name_answered_with_an_empty_list_is_caught() {
        let mut h = H::new();
        h.expecting(
            DESCRIBE,
            json!({"CustomKeyStoreName": format!("{PREFIX}nobody")}),
            Some(NOT_FOUND),
            "CustomKeyStoreName/unknown",
            ok(page(vec![], None)),
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["exclusion/not-found"]);
        assert!(v.findings[0].message.contains("HTTP 200 with 0 stores"));
    }
}
