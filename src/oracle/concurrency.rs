//! Requests sent at the same time: concurrent creates of one name have exactly one winner, and
//! concurrent Connect/Disconnect/Delete of one store behave as some serial order of them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::common::{
    CONNECT, CREATE, DELETE, DESCRIBE, DISCONNECT, HAS_CMKS, INVALID_STATE, NOT_FOUND, StateSet,
    StepGroup, THROTTLING, Tracker, answer, concurrent_flags, effect_unknown, entries,
    expected_got, is_success, parse_state, present, redacted, sequences, step_groups, store_id,
};
use super::{Context, Severity, Verdict};
use crate::history::{Exchange, History};
use crate::model::ConnectionState;

/// What the check enforces, in one line.
pub const EXPLAIN_CONCURRENCY: &str = "concurrent creates of one name have exactly one winner, \
     the others CustomKeyStoreNameInUseException; concurrent Connect, Disconnect and Delete of \
     one store give no unexpected error and leave a state some serial order explains";

/// The most requests on one store whose serial orders are searched.
const MAX_SERIAL: usize = 8;

/// Errors a losing concurrent create may plausibly get instead of NameInUse (undocumented order).
const OTHER_CONFLICTS: [&str; 6] = [
    "CloudHsmClusterInUseException",
    "XksProxyUriInUseException",
    "XksProxyUriEndpointInUseException",
    "XksProxyVpcEndpointServiceInUseException",
    "LimitExceededException",
    "CustomKeyStoreNotFoundException",
];

/// The next observation of a store after a concurrent step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Listed in this state.
    Present(ConnectionState),
    /// Not there any more.
    Absent,
}

/// Checks every Concurrent step.
pub fn concurrency(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    let groups: Vec<StepGroup> = step_groups(history)
        .into_iter()
        .filter(|g| g.is_concurrent(history))
        .collect();
    let starts: BTreeMap<usize, &StepGroup> = groups.iter().map(|g| (g.indices[0], g)).collect();
    let concurrent = concurrent_flags(history);
    for indices in sequences(history).values() {
        let mut tracker = Tracker::default();
        for &i in indices {
            if let Some(group) = starts.get(&i) {
                let after: Vec<usize> = indices
                    .iter()
                    .copied()
                    .filter(|&j| j > *group.indices.last().expect("a group has members"))
                    .collect();
                judge_group(history, group, &tracker, &after, &concurrent, &mut verdict);
            }
            tracker.record(&history.exchanges[i], concurrent[i]);
        }
    }
    redacted(ctx, verdict)
}

fn judge_group(
    history: &History,
    group: &StepGroup,
    tracker: &Tracker,
    after: &[usize],
    concurrent: &[bool],
    verdict: &mut Verdict,
) {
    let members: Vec<(usize, &Exchange)> = group
        .indices
        .iter()
        .map(|&i| (i, &history.exchanges[i]))
        .filter(|(_, e)| !e.raw && e.expect.as_ref().is_none_or(|x| x.error.is_none()))
        .collect();
    let names: Vec<Option<&str>> = members
        .iter()
        .map(|(_, e)| e.request.get("CustomKeyStoreName").and_then(Value::as_str))
        .collect();
    if members.len() > 1
        && members.iter().all(|(_, e)| e.operation == CREATE)
        && let Some(name) = names[0]
        && names.iter().all(|n| *n == Some(name))
    {
        judge_creates(tracker, name, &members, verdict);
        return;
    }
    let mut by_store: BTreeMap<&str, Vec<(usize, &Exchange)>> = BTreeMap::new();
    for (i, e) in &members {
        if [CONNECT, DISCONNECT, DELETE].contains(&e.operation.as_str())
            && let Some(id) = store_id(&e.request)
        {
            by_store.entry(id).or_default().push((*i, e));
        }
    }
    for (id, calls) in by_store.into_iter().filter(|(_, c)| c.len() > 1) {
        judge_store(
            history, tracker, id, &calls, group, after, concurrent, verdict,
        );
    }
}

/// Concurrent creates of one name.
fn judge_creates(
    tracker: &Tracker,
    name: &str,
    members: &[(usize, &Exchange)],
    verdict: &mut Verdict,
) {
    let answered: Vec<&(usize, &Exchange)> =
        members.iter().filter(|(_, e)| !e.is_unknown()).collect();
    for _ in &answered {
        verdict.judged(CREATE);
    }
    let winners: Vec<usize> = answered
        .iter()
        .filter(|(_, e)| is_success(e))
        .map(|(i, _)| *i)
        .collect();
    let unknown = members.len() - answered.len();
    let taken = tracker
        .stores
        .values()
        .any(|f| f.name.as_deref() == Some(name) && !f.possible.is_some_and(StateSet::has_gone));
    let n = members.len();
    let first = members[0].0;
    if winners.len() > 1 {
        verdict.fail(
            CREATE,
            "concurrency/one-winner",
            "expected one create of a name to succeed, got several",
            format!(
                "{n} concurrent creates of one name: expected exactly one to succeed, got {} (exchanges {})",
                winners.len(),
                winners
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(winners[1]),
        );
        return;
    }
    if taken && !winners.is_empty() {
        verdict.fail(
            CREATE,
            "concurrency/one-winner",
            "expected no create of a taken name to succeed, got one",
            "a create succeeded although a store of that name already existed in this sequence",
            Some(winners[0]),
        );
        return;
    }
    let in_use = answered
        .iter()
        .any(|(_, e)| e.error_name().as_deref() == Some("CustomKeyStoreNameInUseException"));
    if winners.is_empty() && unknown == 0 && !taken {
        if in_use {
            verdict.fail(
                CREATE,
                "concurrency/one-winner",
                "expected one create of a new name to succeed, got none and CustomKeyStoreNameInUseException",
                format!(
                    "{n} concurrent creates of a new name: expected one winner, got none, yet CustomKeyStoreNameInUseException"
                ),
                Some(first),
            );
        }
        // Every create failed for some other reason (quota, backends): nothing to judge.
        return;
    }
    for (i, e) in answered.iter().filter(|(_, e)| !is_success(e)) {
        let got = e.error_name();
        match got.as_deref() {
            Some("CustomKeyStoreNameInUseException") | Some(THROTTLING) => {}
            Some(other) if OTHER_CONFLICTS.contains(&other) && e.status() == Some(400) => {
                verdict.find(
                    Severity::Unsettled,
                    CREATE,
                    "concurrency/one-winner",
                    expected_got("CustomKeyStoreNameInUseException", e),
                    format!(
                        "a losing concurrent create: expected CustomKeyStoreNameInUseException, got {other} (which check comes first is undocumented)"
                    ),
                    Some(*i),
                )
            }
            _ => verdict.fail(
                CREATE,
                "concurrency/one-winner",
                expected_got("CustomKeyStoreNameInUseException", e),
                format!(
                    "a losing concurrent create: expected HTTP 400 CustomKeyStoreNameInUseException, got {}",
                    answer(e)
                ),
                Some(*i),
            ),
        }
    }
}

/// Concurrent Connect/Disconnect/Delete of one store.
#[allow(clippy::too_many_arguments)]
fn judge_store(
    history: &History,
    tracker: &Tracker,
    id: &str,
    calls: &[(usize, &Exchange)],
    group: &StepGroup,
    after: &[usize],
    concurrent: &[bool],
    verdict: &mut Verdict,
) {
    for (i, e) in calls {
        if e.is_unknown() {
            continue;
        }
        verdict.judged(&e.operation);
        let name = e.error_name();
        let fine = is_success(e)
            || e.status().is_some_and(|s| s < 500)
                && match name.as_deref() {
                    Some(INVALID_STATE | NOT_FOUND | THROTTLING) => true,
                    Some(HAS_CMKS) => e.operation == DELETE,
                    _ => false,
                };
        if !fine {
            verdict.fail(
                &e.operation,
                "concurrency/unexpected-error",
                expected_got("success or a state error", e),
                format!(
                    "concurrent {} of store {id}: expected success, {INVALID_STATE} or {NOT_FOUND}, got {}",
                    e.operation,
                    answer(e)
                ),
                Some(*i),
            );
        }
    }
    // Other requests for the store in the same step make the serial orders unknowable.
    let others = group.indices.iter().any(|&i| {
        let e = &history.exchanges[i];
        e.operation != DESCRIBE
            && store_id(&e.request) == Some(id)
            && !calls.iter().any(|(j, _)| *j == i)
    });
    if others || calls.len() > MAX_SERIAL {
        return;
    }
    let Some((seen, at)) = next_sighting(history, id, after, concurrent) else {
        return;
    };
    let done: Vec<&str> = calls
        .iter()
        .filter(|(_, e)| is_success(e))
        .map(|(_, e)| e.operation.as_str())
        .collect();
    let maybe: Vec<&str> = calls
        .iter()
        .filter(|(_, e)| effect_unknown(e))
        .map(|(_, e)| e.operation.as_str())
        .collect();
    let pre = tracker
        .facts(id)
        .and_then(|f| f.possible)
        .unwrap_or_else(|| StateSet::any_state().union(StateSet::gone()));
    if !explained(pre, &done, &maybe, seen) {
        let shown = match seen {
            Seen::Present(s) => s.as_str().to_string(),
            Seen::Absent => "it gone".to_string(),
        };
        let summary: Vec<String> = calls
            .iter()
            .map(|(_, e)| format!("{} ({})", short(&e.operation), answer(e)))
            .collect();
        // Which requests raced, which succeeded and what the listing showed all depend on the
        // generated sequence and on timing: one signature per race, under the first of its
        // operations in a fixed order, whatever the interleaving.
        let operation = calls
            .iter()
            .map(|(_, e)| e.operation.as_str())
            .min()
            .unwrap_or(CONNECT);
        verdict.fail(
            operation,
            "concurrency/serializable",
            "expected a state some serial order of the successful requests explains, got another",
            format!(
                "store {id} ({} before): after concurrent {}, expected a state some serial order of the successful requests explains, the next listing (exchange {at}) shows {shown}",
                pre.show(),
                summary.join(", ")
            ),
            Some(at),
        );
    }
}

/// `ConnectCustomKeyStore` → `Connect`.
fn short(op: &str) -> &str {
    op.strip_suffix("CustomKeyStore").unwrap_or(op)
}

/// The first listing of the store after the step, unless a request for it comes first.
fn next_sighting(
    history: &History,
    id: &str,
    after: &[usize],
    concurrent: &[bool],
) -> Option<(Seen, usize)> {
    for &i in after {
        let e = &history.exchanges[i];
        if e.raw {
            if e.request.as_str().is_some_and(|t| t.contains(id)) {
                return None;
            }
            continue;
        }
        if e.operation != DESCRIBE {
            if store_id(&e.request) == Some(id) {
                return None;
            }
            continue;
        }
        if concurrent[i] {
            continue;
        }
        let by_id = store_id(&e.request) == Some(id);
        if e.status() == Some(200) {
            let body = e.body();
            if let Some(entry) = entries(body).iter().find(|x| store_id(x) == Some(id)) {
                let state = entry
                    .get("ConnectionState")
                    .and_then(Value::as_str)
                    .and_then(parse_state)?;
                return Some((Seen::Present(state), i));
            }
            let whole = e.request.as_object().is_some_and(|m| m.is_empty())
                && !present(body, "NextMarker")
                && body.get("Truncated") != Some(&Value::Bool(true));
            if by_id || whole {
                return Some((Seen::Absent, i));
            }
        } else if by_id && e.error_name().as_deref() == Some(NOT_FOUND) {
            return Some((Seen::Absent, i));
        }
    }
    None
}

/// The states a successful `op` leaves a store in, from any of `from` (before settling).
fn apply(op: &str, from: StateSet) -> StateSet {
    use ConnectionState::*;
    from.states().fold(StateSet::EMPTY, |acc, s| {
        let to = match (op, s) {
            (CONNECT, Disconnected | Connecting) => StateSet::of(Connecting),
            (CONNECT, Connected) => StateSet::of(Connected),
            (DISCONNECT, Connected | Connecting | Failed) => StateSet::of(Disconnecting),
            (DELETE, Disconnected) => StateSet::gone(),
            _ => StateSet::EMPTY,
        };
        acc.union(to)
    })
}

/// Whether some serial order of the `done` requests, and of any subset of the `maybe` ones,
/// starting in `pre`, can end in what was seen.
fn explained(pre: StateSet, done: &[&str], maybe: &[&str], seen: Seen) -> bool {
    (0u32..1 << maybe.len()).any(|mask| {
        let mut ops: Vec<&str> = done.to_vec();
        ops.extend(
            maybe
                .iter()
                .enumerate()
                .filter(|(k, _)| mask & (1 << k) != 0)
                .map(|(_, op)| *op),
        );
        search(pre.closure(), &mut ops, seen)
    })
}

fn search(set: StateSet, remaining: &mut Vec<&str>, seen: Seen) -> bool {
    if remaining.is_empty() {
        return match seen {
            Seen::Present(s) => set.contains(s),
            Seen::Absent => set.has_gone(),
        };
    }
    for k in 0..remaining.len() {
        let op = remaining.remove(k);
        let next = apply(op, set).closure();
        let found = !next.is_empty() && search(next, remaining, seen);
        remaining.insert(k, op);
        if found {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oracle::common::testing::*;

    fn judge(h: &H) -> Verdict {
        concurrency(&ctx(), &h.history())
    }

    fn create_req() -> Value {
        json!({"CustomKeyStoreName": format!("{PREFIX}same"), "CloudHsmClusterId": "cluster-healthyaaaaa"})
    }

    fn id() -> Value {
        json!({"CustomKeyStoreId": "cks-1"})
    }

    fn created() -> H {
        let mut h = H::new();
        h.call(
            CREATE,
            json!({"CustomKeyStoreName": format!("{PREFIX}a")}),
            ok(json!({"CustomKeyStoreId": "cks-1"})),
        );
        h
    }

    #[test]
    fn one_winner_and_a_serializable_race_pass() {
        let mut h = H::new();
        h.concurrent(vec![
            (
                CREATE,
                create_req(),
                ok(json!({"CustomKeyStoreId": "cks-1"})),
            ),
            (
                CREATE,
                create_req(),
                error("CustomKeyStoreNameInUseException"),
            ),
            (
                CREATE,
                create_req(),
                error("CustomKeyStoreNameInUseException"),
            ),
        ]);
        h.concurrent(vec![
            (CONNECT, id(), ok(json!({}))),
            (DISCONNECT, id(), error(INVALID_STATE)),
            (DELETE, id(), error(INVALID_STATE)),
        ]);
        h.describe(vec![entry("cks-1", "same", "CONNECTING")]);
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[CREATE], 3);
        assert_eq!(v.exercised[DELETE], 1);
    }

    #[test]
    fn two_winners_of_a_concurrent_create_are_caught() {
        let mut h = H::new();
        h.concurrent(vec![
            (
                CREATE,
                create_req(),
                ok(json!({"CustomKeyStoreId": "cks-1"})),
            ),
            (
                CREATE,
                create_req(),
                ok(json!({"CustomKeyStoreId": "cks-2"})),
            ),
        ]);
        let v = judge(&h);
        assert_eq!(failures(&v), ["concurrency/one-winner"]);
        assert_eq!(
            v.findings[0].kind,
            "expected one create of a name to succeed, got several"
        );
    }

    #[test]
    fn a_loser_with_a_fault_or_no_winner_at_all_is_caught() {
        let mut h = H::new();
        h.concurrent(vec![
            (
                CREATE,
                create_req(),
                ok(json!({"CustomKeyStoreId": "cks-1"})),
            ),
            (CREATE, create_req(), error("KMSInternalException")),
            (CREATE, create_req(), error("CloudHsmClusterInUseException")),
        ]);
        let v = judge(&h);
        assert_eq!(failures(&v), ["concurrency/one-winner"]);
        assert_eq!(rules(&v, Severity::Unsettled), ["concurrency/one-winner"]);
        let mut h = H::new();
        h.concurrent(vec![
            (
                CREATE,
                create_req(),
                error("CustomKeyStoreNameInUseException"),
            ),
            (
                CREATE,
                create_req(),
                error("CustomKeyStoreNameInUseException"),
            ),
        ]);
        assert_eq!(failures(&judge(&h)), ["concurrency/one-winner"]);
    }

    #[test]
    fn no_winner_is_right_when_the_name_was_taken_before() {
        let mut h = created();
        let same = json!({"CustomKeyStoreName": format!("{PREFIX}a")});
        h.concurrent(vec![
            (
                CREATE,
                same.clone(),
                error("CustomKeyStoreNameInUseException"),
            ),
            (CREATE, same, error("CustomKeyStoreNameInUseException")),
        ]);
        assert!(judge(&h).findings.is_empty());
    }

    #[test]
    fn a_store_still_listed_after_a_successful_delete_is_caught() {
        let mut h = created();
        h.concurrent(vec![
            (CONNECT, id(), ok(json!({}))),
            (DELETE, id(), ok(json!({}))),
        ]);
        h.describe(vec![entry("cks-1", "a", "CONNECTED")]);
        let v = judge(&h);
        assert_eq!(failures(&v), ["concurrency/serializable"]);
        assert_eq!(
            v.findings[0].signature(),
            "ConnectCustomKeyStore/concurrency/serializable: expected a state some serial order \
             of the successful requests explains, got another"
        );
        let mut h = created();
        h.concurrent(vec![
            (CONNECT, id(), ok(json!({}))),
            (DELETE, id(), ok(json!({}))),
        ]);
        h.call(DESCRIBE, id(), error(NOT_FOUND));
        assert!(judge(&h).findings.is_empty());
    }

    #[test]
    fn a_state_no_order_explains_is_caught() {
        // Two successful disconnects of a DISCONNECTED store: neither can succeed.
        let mut h = created();
        h.concurrent(vec![
            (DISCONNECT, id(), ok(json!({}))),
            (DISCONNECT, id(), error(INVALID_STATE)),
        ]);
        h.describe(vec![entry("cks-1", "a", "DISCONNECTED")]);
        assert_eq!(failures(&judge(&h)), ["concurrency/serializable"]);
    }

    #[test]
    fn a_fault_or_a_strange_error_in_a_race_is_caught() {
        let mut h = created();
        h.concurrent(vec![
            (CONNECT, id(), error("KMSInternalException")),
            (DISCONNECT, id(), error("CustomKeyStoreHasCMKsException")),
            (DELETE, id(), ok(json!({}))),
        ]);
        assert_eq!(
            failures(&judge(&h)),
            [
                "concurrency/unexpected-error",
                "concurrency/unexpected-error"
            ]
        );
    }
}
