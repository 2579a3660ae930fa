//! The name/ID exclusion of DescribeCustomKeyStores: both together are rejected, either alone
//! finds exactly the store asked for, an unknown one is CustomKeyStoreNotFoundException.

use serde_json::Value;

use super::common::{
    DESCRIBE, NOT_FOUND, answer, entries, expected_got, expected_got_plain, final_attempts,
    present, redacted,
};
use super::{Context, Severity, Verdict};
use crate::coverage::ids;
use crate::history::{Exchange, History};

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
    let group = ctx
        .spec
        .operation(DESCRIBE)
        .and_then(|op| op.exclusive.first())
        .map_or_else(
            || {
                ids::exclusive(
                    DESCRIBE,
                    &["CustomKeyStoreId".into(), "CustomKeyStoreName".into()],
                )
            },
            |g| ids::exclusive(DESCRIBE, &g.members),
        );
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
            let before = verdict.findings.len();
            judge_both(e, i, (both_error, inferred), &mut verdict);
            let result = verdict.judged_since(before);
            verdict.cover(group.clone(), result);
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
                let want = if e.error_name().as_deref() == Some(NOT_FOUND) {
                    format!("400 {NOT_FOUND}")
                } else {
                    NOT_FOUND.to_string()
                };
                verdict.fail(
                    DESCRIBE,
                    "exclusion/not-found",
                    expected_got(&want, e),
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
        if listed.is_empty() {
            // KMS answers a lookup with the store or CustomKeyStoreNotFoundException, never an
            // empty list: the same deviation as an unknown one answered with an empty list.
            verdict.fail(
                DESCRIBE,
                "exclusion/not-found",
                expected_got(NOT_FOUND, e),
                format!(
                    "by {member} {}: expected that store or HTTP 400 {NOT_FOUND}, got HTTP 200 with 0 stores",
                    show(wanted)
                ),
                Some(i),
            );
        } else if listed.len() != 1 || matching != 1 {
            let shown: Vec<String> = listed
                .iter()
                .take(3)
                .map(|x| x.get(member).map_or("?".to_string(), show))
                .collect();
            let got = if matching == 0 {
                "other stores"
            } else if matching < listed.len() {
                "it among other stores"
            } else {
                "it more than once"
            };
            verdict.fail(
                DESCRIBE,
                "exclusion/exact-match",
                format!("by {member}: expected exactly that store, got {got}"),
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

/// Judges a Describe naming both members (`both`: the error KMS is taken to give, and whether
/// that is inferred).
fn judge_both(e: &Exchange, i: usize, both: (&str, bool), verdict: &mut Verdict) {
    let (both_error, inferred) = both;
    let status = e.status().unwrap_or(0);
    let name = e.error_name();
    if !(400..500).contains(&status) {
        verdict.fail(
            DESCRIBE,
            "exclusion/both-rejected",
            expected_got_plain(both_error, e),
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
            expected_got_plain(both_error, e),
            format!(
                "both CustomKeyStoreId and CustomKeyStoreName: expected {both_error}{}, got {}",
                if inferred { " (inferred)" } else { "" },
                answer(e)
            ),
            Some(i),
        );
    }
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
    fn a_pair_counts_the_exclusive_group_and_fails_it_when_accepted() {
        let id = "exclusive/DescribeCustomKeyStores/CustomKeyStoreId+CustomKeyStoreName";
        let mut h = H::new();
        h.call(DESCRIBE, both(), error("ValidationException"));
        h.call(DESCRIBE, both(), ok(page(vec![], None)));
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-1"}),
            error(NOT_FOUND),
        );
        let v = judge(&h);
        assert_eq!((v.covered[id].exercised, v.covered[id].failed), (2, 1));
        assert_eq!(v.covered.len(), 1);
    }

    #[test]
    fn both_name_and_id_accepted_is_a_failure() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            both(),
            ok(page(vec![entry("cks-1", "a", "CONNECTED")], None)),
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["exclusion/both-rejected"]);
        assert_eq!(v.findings[0].kind, "expected ValidationException, got 200");
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
        let v = judge(&h);
        assert_eq!(
            failures(&v),
            ["exclusion/exact-match", "exclusion/exact-match"]
        );
        let kinds: Vec<&str> = v.findings.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "by CustomKeyStoreId: expected exactly that store, got it among other stores",
                "by CustomKeyStoreName: expected exactly that store, got other stores"
            ]
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
        assert_eq!(
            v.findings[0].signature(),
            "DescribeCustomKeyStores/exclusion/not-found: \
             expected CustomKeyStoreNotFoundException, got 200 with 0 stores"
        );
    }

    #[test]
    fn a_lookup_answered_with_an_empty_list_is_the_not_found_deviation() {
        // A scenario's lookup carries no expectation: its empty answer reads as the same
        // deviation as a generated unknown ID answered with an empty list.
        let mut h = H::new();
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-1"}),
            ok(page(vec![], None)),
        );
        let v = judge(&h);
        assert_eq!(
            v.findings.iter().map(|f| f.signature()).collect::<Vec<_>>(),
            ["DescribeCustomKeyStores/exclusion/not-found: \
              expected CustomKeyStoreNotFoundException, got 200 with 0 stores"]
        );
    }
}
