//! Paging invariants of DescribeCustomKeyStores: walks that follow NextMarker yield each of our
//! stores once, in the unpaged order; pages respect Limit; Truncated matches NextMarker; bad
//! markers and limits get their 400 error.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::common::{
    CREATE, DELETE, DESCRIBE, UPDATE, answer, effect_unknown, entries, expected_got,
    expected_got_plain, final_attempts, is_success, json_type, ours, redacted, sequences, show_ids,
    step_groups, store_id,
};
use super::{Context, Verdict};
use crate::history::{Exchange, History, Outcome};

/// What the check enforces, in one line.
pub const EXPLAIN_PAGINATION: &str = "following NextMarker with any Limit yields each of our \
     stores exactly once, in the unpaged listing's order; no page exceeds Limit; Truncated is \
     true exactly when NextMarker is present; bad markers and limits get their 400 error";

/// The runner's cap on pages per walk: a walk this long that still has a marker never ended.
const MAX_PAGES: usize = 1100;

/// One walk: a first page without Marker and the pages that followed its NextMarkers.
struct Walk {
    /// Indices of the pages, in order.
    pages: Vec<usize>,
    /// The Limit of every page (None: no Limit).
    limit: Option<Value>,
    /// Whether the first page had no Marker.
    from_start: bool,
}

impl Walk {
    /// The NextMarker of the last page, when it is a 200 that has one.
    fn open_marker<'h>(&self, history: &'h History) -> Option<&'h str> {
        let last = &history.exchanges[*self.pages.last()?];
        (last.status() == Some(200))
            .then(|| last.body().get("NextMarker").and_then(Value::as_str))
            .flatten()
    }

    /// Whether the walk ran from the first page to a 200 page without NextMarker.
    fn complete(&self, history: &History) -> bool {
        self.from_start
            && self
                .pages
                .iter()
                .all(|&i| history.exchanges[i].status() == Some(200))
            && self.open_marker(history).is_none()
    }

    fn first(&self) -> usize {
        self.pages[0]
    }

    fn last(&self) -> usize {
        *self.pages.last().expect("a walk has a page")
    }

    /// Our store IDs in the order the pages list them (first occurrence).
    fn order(&self, ctx: &Context<'_>, history: &History) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for &i in &self.pages {
            for e in entries(history.exchanges[i].body()) {
                if ours(ctx, e)
                    && let Some(id) = store_id(e)
                    && seen.insert(id.to_string())
                {
                    out.push(id.to_string());
                }
            }
        }
        out
    }
}

/// Whether a request is a plain listing page: only Limit and Marker, nothing generated to fail.
fn is_listing_page(e: &Exchange) -> bool {
    e.operation == DESCRIBE
        && !e.raw
        && e.expect.is_none()
        && e.request
            .as_object()
            .is_some_and(|m| m.keys().all(|k| k == "Limit" || k == "Marker"))
}

/// Checks the paging invariants of every listing walk and every bad-marker or bad-limit call.
pub fn pagination(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    let mut walks: BTreeMap<u64, Vec<Walk>> = BTreeMap::new();
    for group in step_groups(history) {
        let mut current: Option<Walk> = None;
        for &i in &group.indices {
            let e = &history.exchanges[i];
            if !is_listing_page(e) {
                continue;
            }
            let marker = e.request.get("Marker");
            let limit = e.request.get("Limit").cloned();
            let continues = match (&current, marker.and_then(Value::as_str)) {
                (Some(w), Some(m)) => w.open_marker(history) == Some(m) && w.limit == limit,
                _ => false,
            };
            if continues {
                current.as_mut().expect("checked").pages.push(i);
            } else {
                if let Some(w) = current.take() {
                    walks.entry(group.sequence).or_default().push(w);
                }
                current = Some(Walk {
                    pages: vec![i],
                    limit,
                    from_start: marker.is_none(),
                });
            }
        }
        if let Some(w) = current {
            walks.entry(group.sequence).or_default().push(w);
        }
    }
    let finals = sequences(history);
    for (sequence, walks) in &walks {
        for w in walks {
            judge_pages(ctx, history, w, &mut verdict);
        }
        let changes: Vec<usize> = finals
            .get(sequence)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| changes_listing(&history.exchanges[i]))
            .collect();
        judge_against_unpaged(ctx, history, walks, &changes, &mut verdict);
    }
    for i in final_attempts(history) {
        judge_bad_input(ctx, history, i, &mut verdict);
    }
    redacted(ctx, verdict)
}

/// Per-page rules, and each store once within the walk.
fn judge_pages(ctx: &Context<'_>, history: &History, w: &Walk, verdict: &mut Verdict) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    let limit_text = w
        .limit
        .as_ref()
        .map_or("no Limit".to_string(), |l| format!("Limit {l}"));
    // Markers returned so far in this walk, with the page that returned each.
    let mut markers: BTreeMap<String, usize> = BTreeMap::new();
    for (n, &i) in w.pages.iter().enumerate() {
        let e = &history.exchanges[i];
        if matches!(e.outcome, Outcome::Unknown { .. }) {
            continue;
        }
        verdict.judged(DESCRIBE);
        let page_no = n + 1;
        if e.status() != Some(200) {
            verdict.fail(
                DESCRIBE,
                "pagination/page-error",
                if present_marker(e) {
                    expected_got("200 for a NextMarker it returned", e)
                } else {
                    expected_got("200", e)
                },
                format!(
                    "page {page_no} of a listing with {limit_text}: expected HTTP 200, got {}",
                    answer(e)
                ),
                Some(i),
            );
            continue;
        }
        let body = e.body();
        let listed = entries(body);
        if let Some(limit) = w.limit.as_ref().and_then(Value::as_u64)
            && listed.len() as u64 > limit
        {
            verdict.fail(
                DESCRIBE,
                "pagination/page-size",
                "expected at most Limit stores, got more",
                format!(
                    "page {page_no}: expected at most {limit} stores (Limit), got {}",
                    listed.len()
                ),
                Some(i),
            );
        }
        let marker = body.get("NextMarker").is_some_and(|m| !m.is_null());
        let truncated = match body.get("Truncated") {
            None | Some(Value::Null) => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => None,
        };
        let is_last = n + 1 == w.pages.len();
        match truncated {
            None => verdict.fail(
                DESCRIBE,
                "pagination/truncated-iff-marker",
                format!(
                    "expected Truncated to be a boolean, got {}",
                    json_type(&body["Truncated"])
                ),
                format!(
                    "page {page_no}: expected Truncated to be a boolean, got {}",
                    body["Truncated"]
                ),
                Some(i),
            ),
            Some(true) if is_last && !marker => verdict.fail(
                DESCRIBE,
                "pagination/last-page",
                "expected Truncated false without NextMarker, got true",
                format!(
                    "last page ({page_no}): expected Truncated false, got true without NextMarker"
                ),
                Some(i),
            ),
            Some(t) if t != marker => verdict.fail(
                DESCRIBE,
                "pagination/truncated-iff-marker",
                if marker {
                    "expected Truncated true with NextMarker, got false"
                } else {
                    "expected Truncated false without NextMarker, got true"
                },
                format!(
                    "page {page_no}: expected Truncated {marker} (NextMarker {}), got {t}",
                    if marker { "present" } else { "absent" }
                ),
                Some(i),
            ),
            _ => {}
        }
        let marker_text = body.get("NextMarker").and_then(Value::as_str);
        if let Some(m) = marker_text
            && let Some(earlier) = markers.get(m)
        {
            verdict.fail(
                DESCRIBE,
                "pagination/last-page",
                "expected a new NextMarker, got one already returned",
                format!(
                    "page {page_no}: NextMarker {m:?} was already returned by page {earlier}: the listing never ends"
                ),
                Some(i),
            );
        } else if let Some(m) = marker_text {
            markers.insert(m.to_string(), page_no);
        }
        if is_last && marker && w.pages.len() >= MAX_PAGES {
            verdict.fail(
                DESCRIBE,
                "pagination/last-page",
                "expected the listing to end, still got a NextMarker at the page cap",
                format!(
                    "expected the listing to end, still got a NextMarker after {} pages",
                    w.pages.len()
                ),
                Some(i),
            );
        }
        for entry in listed.iter().filter(|x| ours(ctx, x)) {
            let Some(id) = store_id(entry) else { continue };
            if let Some(&first) = seen.get(id) {
                if reported.insert(id.to_string()) {
                    verdict.fail(
                        DESCRIBE,
                        "pagination/exactly-once",
                        "expected each store exactly once, got a store twice",
                        format!(
                            "expected store {id} once in a listing with {limit_text}, got it again on page {page_no} (first on page {first})"
                        ),
                        Some(i),
                    );
                }
            } else {
                seen.insert(id.to_string(), page_no);
            }
        }
    }
}

/// Whether a listing request carries a Marker.
fn present_marker(e: &Exchange) -> bool {
    e.request.get("Marker").is_some_and(|m| !m.is_null())
}

/// Whether an exchange may change which stores a listing shows (or what they are called).
fn changes_listing(e: &Exchange) -> bool {
    let changing = match e.operation.as_str() {
        CREATE | DELETE => true,
        UPDATE => e.request.get("NewCustomKeyStoreName").is_some(),
        _ => false,
    };
    changing && (is_success(e) || effect_unknown(e))
}

/// Union and order of every complete walk against the nearest complete unpaged listing of the
/// same sequence with no change in between (the nearest before it, else the nearest after).
fn judge_against_unpaged(
    ctx: &Context<'_>,
    history: &History,
    walks: &[Walk],
    changes: &[usize],
    verdict: &mut Verdict,
) {
    let complete: Vec<&Walk> = walks.iter().filter(|w| w.complete(history)).collect();
    let unpaged: Vec<&Walk> = complete
        .iter()
        .copied()
        .filter(|w| w.limit.is_none())
        .collect();
    let quiet = |a: usize, b: usize| !changes.iter().any(|&c| a < c && c < b);
    for w in &complete {
        let before = unpaged
            .iter()
            .filter(|r| r.last() < w.first() && quiet(r.last(), w.first()))
            .max_by_key(|r| r.last());
        let after = unpaged
            .iter()
            .filter(|r| r.first() > w.last() && quiet(w.last(), r.first()))
            .min_by_key(|r| r.first());
        let Some(reference) = before.or(after) else {
            continue;
        };
        let got = w.order(ctx, history);
        let want = reference.order(ctx, history);
        let got_set: BTreeSet<&String> = got.iter().collect();
        let want_set: BTreeSet<&String> = want.iter().collect();
        let missing: Vec<&String> = want_set.difference(&got_set).copied().collect();
        let extra: Vec<&String> = got_set.difference(&want_set).copied().collect();
        let limit_text = w
            .limit
            .as_ref()
            .map_or("no Limit".to_string(), |l| format!("Limit {l}"));
        if !missing.is_empty() || !extra.is_empty() {
            let kind = match (missing.is_empty(), extra.is_empty()) {
                (false, true) => "expected the unpaged listing's stores, got some missing",
                (true, false) => "expected the unpaged listing's stores, got extra ones",
                _ => "expected the unpaged listing's stores, got some missing and extra ones",
            };
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", show_ids(missing)));
            }
            if !extra.is_empty() {
                parts.push(format!("extra {}", show_ids(extra)));
            }
            verdict.fail(
                DESCRIBE,
                "pagination/union",
                kind,
                format!(
                    "expected the {} stores of the unpaged listing (exchange {}) when paging with {limit_text}, got {}: {}",
                    want.len(),
                    reference.first(),
                    got.len(),
                    parts.join("; ")
                ),
                Some(w.first()),
            );
        }
        let common_got: Vec<&String> = got.iter().filter(|id| want_set.contains(id)).collect();
        let common_want: Vec<&String> = want.iter().filter(|id| got_set.contains(id)).collect();
        if common_got != common_want {
            verdict.fail(
                DESCRIBE,
                "pagination/stable-order",
                "expected the unpaged listing's order, got another order",
                format!(
                    "expected the unpaged listing's order (exchange {}) when paging with {limit_text}: {}, got {}",
                    reference.first(),
                    show_ids(common_want),
                    show_ids(common_got)
                ),
                Some(w.first()),
            );
        }
    }
}

/// A listing call generated with a bad Marker or Limit must get exactly its 400 error.
fn judge_bad_input(ctx: &Context<'_>, history: &History, i: usize, verdict: &mut Verdict) {
    let e = &history.exchanges[i];
    let Some(expected) = e.expect.as_ref().and_then(|x| x.error.as_deref()) else {
        return;
    };
    if e.operation != DESCRIBE || e.raw || e.is_unknown() {
        return;
    }
    let Some(request) = e.request.as_object() else {
        return;
    };
    if request.contains_key("CustomKeyStoreId") || request.contains_key("CustomKeyStoreName") {
        return;
    }
    let rule_name = &e.expect.as_ref().expect("checked").rule;
    let limit_out_of_range = request
        .get("Limit")
        .is_some_and(|l| !l.as_i64().is_some_and(|n| (1..=1000).contains(&n)));
    let rule = if rule_name.starts_with("Limit") || limit_out_of_range {
        "pagination/limit-range"
    } else if expected == "InvalidMarkerException"
        || rule_name.starts_with("Marker")
        || request.contains_key("Marker")
    {
        "pagination/invalid-marker"
    } else {
        return;
    };
    verdict.judged(DESCRIBE);
    let status = ctx.spec.error_status(expected);
    if e.status() != Some(status) || e.error_name().as_deref() != Some(expected) {
        verdict.fail(
            DESCRIBE,
            rule,
            expected_got_plain(&format!("{status} {expected}"), e),
            format!(
                "{rule_name}: expected HTTP {status} {expected}, got {}",
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
        pagination(&ctx(), &h.history())
    }

    fn stores(n: usize) -> Vec<Value> {
        (0..n)
            .map(|k| entry(&format!("cks-{k}"), &format!("s{k}"), "DISCONNECTED"))
            .collect()
    }

    /// An unpaged listing of five of our stores and one foreign one, then a walk with Limit 2.
    fn faithful() -> H {
        let s = stores(5);
        let mut h = H::new();
        let mut all = s.clone();
        all.insert(2, foreign("cks-f"));
        h.paginate(None, vec![page(all.clone(), None)]);
        h.paginate(
            Some(2),
            vec![
                page(all[0..2].to_vec(), Some("m1")),
                page(all[2..4].to_vec(), Some("m2")),
                page(all[4..6].to_vec(), None),
            ],
        );
        h
    }

    #[test]
    fn a_faithful_walk_passes_and_is_counted() {
        let v = judge(&faithful());
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[DESCRIBE], 4);
    }

    #[test]
    fn overlapping_pages_break_exactly_once() {
        let s = stores(4);
        let mut h = H::new();
        h.paginate(None, vec![page(s.clone(), None)]);
        h.paginate(
            Some(2),
            vec![
                page(s[0..2].to_vec(), Some("m1")),
                page(s[1..3].to_vec(), Some("m2")),
                page(s[3..4].to_vec(), None),
            ],
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["pagination/exactly-once"]);
        assert_eq!(
            v.findings[0].kind,
            "expected each store exactly once, got a store twice"
        );
    }

    #[test]
    fn a_marker_returned_twice_is_a_listing_that_never_ends() {
        let s = stores(2);
        let mut h = H::new();
        h.paginate(None, vec![page(s.clone(), None)]);
        // Limit 1 and a marker that resumes at the page's own store: the walk cycles.
        h.paginate(
            Some(1),
            vec![
                page(s[0..1].to_vec(), Some("m0")),
                page(s[0..1].to_vec(), Some("m0")),
            ],
        );
        let v = judge(&h);
        let rules = failures(&v);
        assert!(
            rules.iter().any(|r| r == "pagination/last-page"),
            "{rules:?}"
        );
        assert!(
            v.findings
                .iter()
                .any(|f| f.message.contains("already returned by page 1")),
            "{:#?}",
            v.findings
        );
        // Distinct markers on every page pass.
        let mut h = H::new();
        h.paginate(None, vec![page(s.clone(), None)]);
        h.paginate(
            Some(1),
            vec![
                page(s[0..1].to_vec(), Some("m0")),
                page(s[1..2].to_vec(), Some("m1")),
                page(vec![], None),
            ],
        );
        assert_no_failure(&judge(&h));
    }

    #[test]
    fn a_skipped_store_breaks_the_union() {
        let s = stores(4);
        let mut h = H::new();
        h.paginate(None, vec![page(s.clone(), None)]);
        h.paginate(
            Some(2),
            vec![
                page(s[0..2].to_vec(), Some("m1")),
                page(s[3..4].to_vec(), None),
            ],
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["pagination/union"]);
        assert!(
            v.findings[0].message.contains("missing cks-2"),
            "{:?}",
            v.findings
        );
    }

    #[test]
    fn the_reference_may_come_after_but_not_across_a_create() {
        let s = stores(3);
        let mut h = H::new();
        h.paginate(
            Some(2),
            vec![page(s[0..2].to_vec(), Some("m1")), page(vec![], None)],
        );
        h.paginate(None, vec![page(s.clone(), None)]);
        assert_eq!(failures(&judge(&h)), ["pagination/union"]);
        let mut h = H::new();
        h.paginate(
            Some(2),
            vec![page(s[0..2].to_vec(), Some("m1")), page(vec![], None)],
        );
        h.call(CREATE, json!({}), ok(json!({"CustomKeyStoreId": "cks-2"})));
        h.paginate(None, vec![page(s, None)]);
        assert_no_failure(&judge(&h));
    }

    #[test]
    fn a_page_larger_than_limit_is_caught_counting_foreign_stores() {
        let s = stores(2);
        let mut h = H::new();
        h.paginate(
            Some(2),
            vec![page(
                vec![s[0].clone(), foreign("cks-f"), s[1].clone()],
                None,
            )],
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["pagination/page-size"]);
        assert_eq!(
            v.findings[0].kind,
            "expected at most Limit stores, got more"
        );
    }

    #[test]
    fn truncated_lying_is_caught() {
        let s = stores(3);
        let mut h = H::new();
        let mut first = page(s[0..2].to_vec(), Some("m1"));
        first["Truncated"] = json!(false);
        h.paginate(Some(2), vec![first, page(s[2..3].to_vec(), None)]);
        assert_eq!(failures(&judge(&h)), ["pagination/truncated-iff-marker"]);
        let mut h = H::new();
        let mut first = page(s[0..2].to_vec(), Some("m1"));
        first.as_object_mut().unwrap().remove("Truncated");
        h.paginate(Some(2), vec![first, page(s[2..3].to_vec(), None)]);
        assert_eq!(failures(&judge(&h)), ["pagination/truncated-iff-marker"]);
    }

    #[test]
    fn an_absent_truncated_on_the_last_page_means_false() {
        let mut h = H::new();
        h.paginate(Some(5), vec![json!({"CustomKeyStores": stores(2)})]);
        assert!(judge(&h).findings.is_empty());
    }

    #[test]
    fn a_last_page_claiming_truncation_is_caught() {
        let s = stores(2);
        let mut h = H::new();
        h.paginate(
            Some(5),
            vec![json!({"CustomKeyStores": s, "Truncated": true})],
        );
        assert_eq!(failures(&judge(&h)), ["pagination/last-page"]);
    }

    #[test]
    fn a_single_call_with_a_marker_is_not_judged_as_a_whole_walk() {
        let s = stores(3);
        let mut h = H::new();
        h.paginate(None, vec![page(s.clone(), None)]);
        h.call(
            DESCRIBE,
            json!({"Limit": 1}),
            ok(page(s[0..1].to_vec(), Some("m"))),
        );
        assert!(judge(&h).findings.is_empty());
    }

    #[test]
    fn a_changed_order_is_caught() {
        let s = stores(4);
        let mut h = H::new();
        h.paginate(None, vec![page(s.clone(), None)]);
        h.paginate(
            Some(2),
            vec![
                page(vec![s[1].clone(), s[0].clone()], Some("m1")),
                page(s[2..4].to_vec(), None),
            ],
        );
        assert_eq!(failures(&judge(&h)), ["pagination/stable-order"]);
    }

    #[test]
    fn an_error_page_is_a_failure_naming_the_error() {
        let s = stores(3);
        let mut h = H::new();
        h.paginate(Some(2), vec![page(s[0..2].to_vec(), Some("m1"))]);
        h.same_step(
            DESCRIBE,
            json!({"Limit": 2, "Marker": "m1"}),
            error("KMSInternalException"),
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["pagination/page-error"]);
        assert!(
            v.findings[0]
                .message
                .contains("HTTP 500 KMSInternalException")
        );
        assert_eq!(
            v.findings[0].kind,
            "expected 200 for a NextMarker it returned, got 500 KMSInternalException"
        );
    }

    #[test]
    fn a_throttled_page_that_was_retried_is_not_an_error() {
        let s = stores(3);
        let mut h = H::new();
        h.paginate(Some(2), vec![page(s[0..2].to_vec(), Some("m1"))]);
        h.same_step(
            DESCRIBE,
            json!({"Limit": 2, "Marker": "m1"}),
            error("ThrottlingException"),
        );
        h.retry(ok(page(s[2..3].to_vec(), None)));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
    }

    #[test]
    fn bad_markers_and_limits_must_get_exactly_their_error() {
        let mut h = H::new();
        h.expecting(
            DESCRIBE,
            json!({"Marker": "not-issued"}),
            Some("InvalidMarkerException"),
            "Marker/not-issued",
            error("InvalidMarkerException"),
        );
        h.expecting(
            DESCRIBE,
            json!({"Limit": 1001}),
            Some("ValidationException"),
            "Limit/range-max",
            error("ValidationException"),
        );
        assert!(judge(&h).findings.is_empty());
        let mut h = H::new();
        h.expecting(
            DESCRIBE,
            json!({"Marker": "not-issued"}),
            Some("InvalidMarkerException"),
            "Marker/not-issued",
            ok(page(vec![], None)),
        );
        h.expecting(
            DESCRIBE,
            json!({"Limit": 0}),
            Some("ValidationException"),
            "Limit/range-min",
            error("InvalidMarkerException"),
        );
        let v = judge(&h);
        assert_eq!(
            failures(&v),
            ["pagination/invalid-marker", "pagination/limit-range"]
        );
        assert_eq!(
            v.findings[0].kind,
            "expected 400 InvalidMarkerException, got 200"
        );
        assert_eq!(
            v.findings[1].kind,
            "expected 400 ValidationException, got 400 InvalidMarkerException"
        );
    }
}
