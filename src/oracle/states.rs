//! The connection state machine: Connect, Disconnect, Update, Delete and CreateKey are allowed
//! or refused by the store's state as last observed, and states change by themselves only along
//! CONNECTING → CONNECTED/FAILED/DISCONNECTING and DISCONNECTING → DISCONNECTED.

use serde_json::Value;

use super::common::{
    CONNECT, CREATE_KEY, DELETE, DESCRIBE, DISCONNECT, HAS_CMKS, INVALID_STATE, THROTTLING,
    Tracker, UPDATE, answer, concurrent_flags, entries, expected_got, is_success, redacted,
    sequences, store_id,
};
use super::{Context, Judged, Severity, Verdict};
use crate::coverage::ids;
use crate::history::{Exchange, History};
use crate::model::{
    ConnectWhenConnected, ConnectionState, DeletePrecedence, Switches, UpdateWhileConnected,
};

/// What the check enforces, in one line.
pub const EXPLAIN_STATES: &str = "Connect, Disconnect, Update, Delete and CreateKey are allowed \
     or refused with CustomKeyStoreInvalidStateException as the state table says, for the state \
     last observed; no store changes state by itself except out of CONNECTING or DISCONNECTING";

/// Members an external store may change while CONNECTED, per the UpdateCustomKeyStore page.
const XKS_WHILE_CONNECTED: [&str; 2] = ["XksProxyAuthenticationCredential", "XksProxyUriPath"];

/// What the state table says about one operation in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judgement {
    /// Must not be refused with CustomKeyStoreInvalidStateException.
    Allowed,
    /// Must be refused with CustomKeyStoreInvalidStateException.
    Refused,
    /// The documentation disagrees; `allowed` is the configured reading.
    Unsettled { allowed: bool, rule: &'static str },
}

/// Checks every state-dependent call against the state table, and every observed change.
pub fn states(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    let concurrent = concurrent_flags(history);
    for indices in sequences(history).values() {
        let mut tracker = Tracker::default();
        for &i in indices {
            let e = &history.exchanges[i];
            if !concurrent[i] {
                judge_call(ctx, &tracker, e, i, &mut verdict);
            }
            let changes = tracker.record(e, concurrent[i]);
            if e.operation == DESCRIBE
                && !concurrent[i]
                && e.status() == Some(200)
                && !entries(e.body()).is_empty()
            {
                verdict.judged(DESCRIBE);
            }
            for c in changes {
                verdict.fail(
                    DESCRIBE,
                    "states/spontaneous",
                    format!(
                        "expected {} to stay or settle, got {}",
                        c.from.as_str(),
                        c.to.as_str()
                    ),
                    format!(
                        "store {}: expected {} to stay or settle, got {} with no request for the store in between",
                        c.id,
                        c.from.as_str(),
                        c.to.as_str()
                    ),
                    Some(i),
                );
            }
        }
    }
    redacted(ctx, verdict)
}

/// The state table for one operation in one state (None: cannot tell, e.g. unknown store type).
fn table(
    switches: &Switches,
    op: &str,
    state: ConnectionState,
    request: &Value,
    store_type: Option<&str>,
    update_members: &[&str],
) -> Option<Judgement> {
    use ConnectionState::*;
    use Judgement::*;
    Some(match (op, state) {
        (CONNECT, Disconnected | Connecting) => Allowed,
        (CONNECT, Connected) => Unsettled {
            allowed: switches.connect_when_connected == ConnectWhenConnected::Succeed,
            rule: "states/connect-when-connected",
        },
        (CONNECT, Failed | Disconnecting) => Refused,
        (DISCONNECT, Connected | Connecting | Failed) => Allowed,
        (DISCONNECT, Disconnected | Disconnecting) => Refused,
        (DELETE, Disconnected) => Allowed,
        (DELETE, _) => Refused,
        (CREATE_KEY, Connected) => Allowed,
        (CREATE_KEY, _) => Refused,
        (UPDATE, Disconnected) => Allowed,
        (UPDATE, Connected) => {
            let changes: Vec<&str> = request
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
                .map(String::as_str)
                .filter(|m| *m != "CustomKeyStoreId" && update_members.contains(m))
                .collect();
            let xks_member = |m: &str| XKS_WHILE_CONNECTED.contains(&m);
            if changes.iter().any(|m| xks_member(m)) && store_type.is_none() {
                return None;
            }
            let external = store_type == Some("EXTERNAL_KEY_STORE");
            let debatable = changes
                .iter()
                .all(|m| *m == "NewCustomKeyStoreName" || (external && xks_member(m)));
            if !debatable {
                Refused
            } else {
                let allowed = match switches.update_while_connected {
                    UpdateWhileConnected::OperationPage => true,
                    UpdateWhileConnected::NameOnly => {
                        changes.iter().all(|m| *m == "NewCustomKeyStoreName")
                    }
                    UpdateWhileConnected::DisconnectedOnly => false,
                };
                Unsettled {
                    allowed,
                    rule: "states/update-while-connected",
                }
            }
        }
        (UPDATE, _) => Refused,
        _ => return None,
    })
}

/// The operations the state table covers: those that act on one store named by ID.
pub const TABLE_OPERATIONS: [&str; 5] = [CONNECT, DISCONNECT, UPDATE, DELETE, CREATE_KEY];

/// What the state table says about `op` in `state` under the default readings, in words, e.g.
/// `refused` or `a rename: allowed (unsettled); other changes: refused`.
pub fn cell(op: &str, state: ConnectionState) -> String {
    let switches = Switches::default();
    let word = |j: Option<Judgement>| match j {
        Some(Judgement::Allowed) => "allowed".to_string(),
        Some(Judgement::Refused) => "refused".to_string(),
        Some(Judgement::Unsettled { allowed, .. }) => {
            format!(
                "{} (unsettled)",
                if allowed { "allowed" } else { "refused" }
            )
        }
        None => "not in the table".to_string(),
    };
    let members = ["NewCustomKeyStoreName", "KeyStorePassword"];
    let judge = |request: Value| {
        table(
            &switches,
            op,
            state,
            &request,
            Some("AWS_CLOUDHSM"),
            &members,
        )
    };
    let rename = judge(serde_json::json!({ "NewCustomKeyStoreName": "n" }));
    let other = judge(serde_json::json!({ "KeyStorePassword": "p" }));
    if rename == other {
        word(rename)
    } else {
        format!("a rename: {}; other changes: {}", word(rename), word(other))
    }
}

/// Judges one call against the state its store was last seen in, and counts the state-table
/// cell it exercised: the state last observed (or the one state the store can be in).
fn judge_call(ctx: &Context<'_>, tracker: &Tracker, e: &Exchange, i: usize, verdict: &mut Verdict) {
    let before = verdict.findings.len();
    let Some((state, judged)) = judge_in_state(ctx, tracker, e, i, verdict) else {
        return;
    };
    let result = if judged {
        verdict.judged_since(before)
    } else {
        // The states the store may have reached since disagree: the cell is sent but not told.
        Judged::Unsettled
    };
    verdict.cover(ids::state(&e.operation, state.as_str()), result);
}

/// Judges one call; returns the cell's state and whether the table could judge it (None: no
/// store state known, nothing exercised).
fn judge_in_state(
    ctx: &Context<'_>,
    tracker: &Tracker,
    e: &Exchange,
    i: usize,
    verdict: &mut Verdict,
) -> Option<(ConnectionState, bool)> {
    let op = e.operation.as_str();
    if ![CONNECT, DISCONNECT, UPDATE, DELETE, CREATE_KEY].contains(&op)
        || e.raw
        || e.is_unknown()
        || e.expect.as_ref().is_some_and(|x| x.error.is_some())
    {
        return None;
    }
    let id = store_id(&e.request)?;
    let name = e.error_name();
    if name.as_deref() == Some(THROTTLING) {
        return None;
    }
    let facts = tracker.facts(id)?;
    let possible = facts.possible.filter(|p| !p.has_gone() && !p.is_empty())?;
    let mut states = possible.states();
    let cell = facts
        .last_seen
        .filter(|s| possible.contains(*s))
        .or_else(|| match (states.next(), states.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        })?;
    let update_members: Vec<&str> = ctx
        .spec
        .operation(UPDATE)
        .map(|o| {
            ctx.spec
                .shape(&o.input)
                .members
                .keys()
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    let switches = &ctx.model.switches;
    let judgements: Option<Vec<Judgement>> = possible
        .states()
        .map(|s| {
            table(
                switches,
                op,
                s,
                &e.request,
                facts.store_type.as_deref(),
                &update_members,
            )
        })
        .collect();
    let Some(judgements) = judgements else {
        return Some((cell, false));
    };
    let judgement = match judgements.as_slice() {
        [one] => *one,
        many if many.iter().all(|j| *j == Judgement::Allowed) => Judgement::Allowed,
        many if many.iter().all(|j| *j == Judgement::Refused) => Judgement::Refused,
        _ => return Some((cell, false)),
    };
    verdict.judged(op);
    let state = possible.show();
    let success = is_success(e);
    let refused = name.as_deref() == Some(INVALID_STATE);
    let keys = facts.keys;
    let status = e.status().unwrap_or(0);
    let on = format!("{op} on store {id} ({state})");
    match judgement {
        Judgement::Allowed => {
            if refused {
                verdict.fail(
                    op,
                    "states/allowed-refused",
                    expected_got(&format!("it allowed in {state}"), e),
                    format!("{on}: expected it to be allowed, got HTTP {status} {INVALID_STATE}"),
                    Some(i),
                );
            } else if op == DELETE && keys == Some(true) && success {
                verdict.fail(
                    op,
                    "states/has-cmks",
                    expected_got(&format!("{HAS_CMKS} with keys in {state}"), e),
                    format!(
                        "{on} that holds KMS keys: expected {HAS_CMKS}, got {}",
                        answer(e)
                    ),
                    Some(i),
                );
            }
        }
        Judgement::Refused => {
            let keys_first = switches.delete_precedence == DeletePrecedence::KeysFirst;
            if success {
                verdict.fail(
                    op,
                    "states/refused-allowed",
                    expected_got(&format!("{INVALID_STATE} in {state}"), e),
                    format!("{on}: expected {INVALID_STATE}, got {}", answer(e)),
                    Some(i),
                );
            } else if refused {
                if op == DELETE && keys == Some(true) && keys_first {
                    verdict.find(
                        Severity::Unsettled,
                        op,
                        "states/delete-with-keys",
                        expected_got(
                            &format!("{HAS_CMKS} with keys in {state} (keys-first reading)"),
                            e,
                        ),
                        format!(
                            "{on} that holds KMS keys: expected {HAS_CMKS} (keys-first reading), got {INVALID_STATE}"
                        ),
                        Some(i),
                    );
                }
            } else if op == DELETE && name.as_deref() == Some(HAS_CMKS) && keys != Some(false) {
                if keys == Some(true) && !keys_first {
                    verdict.find(
                        Severity::Unsettled,
                        op,
                        "states/delete-with-keys",
                        expected_got(
                            &format!("{INVALID_STATE} with keys in {state} (state-first reading)"),
                            e,
                        ),
                        format!(
                            "{on} that holds KMS keys: expected {INVALID_STATE} (state-first reading), got {HAS_CMKS}"
                        ),
                        Some(i),
                    );
                }
            } else {
                let severity =
                    if status >= 500 || (op == DELETE && name.as_deref() == Some(HAS_CMKS)) {
                        Severity::Failure
                    } else {
                        // Which check comes first is not documented.
                        Severity::Unsettled
                    };
                verdict.find(
                    severity,
                    op,
                    "states/refused-other-error",
                    expected_got(&format!("{INVALID_STATE} in {state}"), e),
                    format!("{on}: expected {INVALID_STATE}, got {}", answer(e)),
                    Some(i),
                );
            }
        }
        Judgement::Unsettled { allowed, rule } => {
            if success && !allowed {
                verdict.find(
                    Severity::Unsettled,
                    op,
                    rule,
                    expected_got(
                        &format!("{INVALID_STATE} in {state} (configured reading)"),
                        e,
                    ),
                    format!(
                        "{on}: expected {INVALID_STATE} (configured reading), got {}",
                        answer(e)
                    ),
                    Some(i),
                );
            } else if refused && allowed {
                verdict.find(
                    Severity::Unsettled,
                    op,
                    rule,
                    expected_got(&format!("it allowed in {state} (configured reading)"), e),
                    format!(
                        "{on}: expected it to be allowed (configured reading), got {INVALID_STATE}"
                    ),
                    Some(i),
                );
            }
        }
    }
    Some((cell, true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oracle::common::CREATE;
    use crate::oracle::common::testing::*;

    fn judge(h: &H) -> Verdict {
        states(&ctx(), &h.history())
    }

    fn id() -> Value {
        json!({"CustomKeyStoreId": "cks-1"})
    }

    /// Creates cks-1 (CloudHSM) in a fresh history.
    fn created() -> H {
        let mut h = H::new();
        h.call(
            CREATE,
            json!({"CustomKeyStoreName": format!("{PREFIX}a")}),
            ok(json!({"CustomKeyStoreId": "cks-1"})),
        );
        h
    }

    fn seen(h: &mut H, state: &str) {
        h.describe(vec![entry("cks-1", "a", state)]);
    }

    #[test]
    fn a_faithful_lifecycle_passes() {
        let mut h = created();
        h.call(DISCONNECT, id(), error(INVALID_STATE));
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTING");
        seen(&mut h, "CONNECTED");
        h.call(CREATE_KEY, id(), ok(json!({"KeyMetadata": {"KeyId": "k"}})));
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(DELETE, id(), error(INVALID_STATE));
        h.call(
            UPDATE,
            json!({"CustomKeyStoreId": "cks-1", "KeyStorePassword": "[secret=other]"}),
            error(INVALID_STATE),
        );
        h.call(DISCONNECT, id(), ok(json!({})));
        seen(&mut h, "DISCONNECTING");
        seen(&mut h, "DISCONNECTED");
        h.call(CREATE_KEY, id(), error(INVALID_STATE));
        h.call(DELETE, id(), error(HAS_CMKS));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[DELETE], 2);
        assert_eq!(v.exercised[CONNECT], 2);
    }

    #[test]
    fn each_call_counts_the_cell_of_the_state_last_seen() {
        let mut h = created();
        h.call(DISCONNECT, id(), error(INVALID_STATE));
        h.call(CONNECT, id(), ok(json!({})));
        // Sent with no listing since the Connect: no cell is known.
        h.call(DELETE, id(), error(INVALID_STATE));
        seen(&mut h, "CONNECTED");
        h.call(DELETE, id(), error(INVALID_STATE));
        let v = judge(&h);
        let t = |id: &str| v.covered.get(id).copied().unwrap_or_default();
        assert_eq!(
            t("state/DisconnectCustomKeyStore/DISCONNECTED").exercised,
            1
        );
        assert_eq!(t("state/ConnectCustomKeyStore/DISCONNECTED").exercised, 1);
        let delete = t("state/DeleteCustomKeyStore/CONNECTED");
        assert_eq!((delete.exercised, delete.failed), (1, 0));
        assert_eq!(v.covered.len(), 3, "{:?}", v.covered);
        // The same cell answered wrongly fails it.
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(DELETE, id(), ok(json!({})));
        let v = judge(&h);
        assert_eq!(v.covered["state/DeleteCustomKeyStore/CONNECTED"].failed, 1);
    }

    #[test]
    fn invalid_state_on_an_allowed_connect_is_caught() {
        let mut h = created();
        h.call(CONNECT, id(), error(INVALID_STATE));
        let v = judge(&h);
        assert_eq!(failures(&v), ["states/allowed-refused"]);
        assert_eq!(
            v.findings[0].kind,
            "expected it allowed in DISCONNECTED, got 400 CustomKeyStoreInvalidStateException"
        );
    }

    #[test]
    fn delete_succeeding_on_a_connected_store_is_caught() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(DELETE, id(), ok(json!({})));
        let v = judge(&h);
        assert_eq!(failures(&v), ["states/refused-allowed"]);
        assert_eq!(
            v.findings[0].signature(),
            "DeleteCustomKeyStore/states/refused-allowed: \
             expected CustomKeyStoreInvalidStateException in CONNECTED, got 200"
        );
    }

    #[test]
    fn after_a_successful_connect_the_state_is_unknown_until_listed() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        h.call(DELETE, id(), error(INVALID_STATE));
        h.call(DELETE, id(), ok(json!({})));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert!(!v.exercised.contains_key(DELETE));
    }

    #[test]
    fn a_transitional_state_is_judged_only_where_every_outcome_agrees() {
        // DISCONNECTING may have become DISCONNECTED: Disconnect is refused either way, Delete
        // may go either way.
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(DISCONNECT, id(), ok(json!({})));
        seen(&mut h, "DISCONNECTING");
        h.call(DELETE, id(), ok(json!({})));
        assert!(judge(&h).findings.is_empty());
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(DISCONNECT, id(), ok(json!({})));
        seen(&mut h, "DISCONNECTING");
        h.call(DISCONNECT, id(), ok(json!({})));
        assert_eq!(failures(&judge(&h)), ["states/refused-allowed"]);
    }

    #[test]
    fn unsettled_points_are_unsettled_not_failures() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(CONNECT, id(), error(INVALID_STATE));
        h.call(
            UPDATE,
            json!({"CustomKeyStoreId": "cks-1", "NewCustomKeyStoreName": "x"}),
            error(INVALID_STATE),
        );
        h.call(CREATE_KEY, id(), ok(json!({})));
        h.call(DELETE, id(), error(HAS_CMKS));
        let v = judge(&h);
        assert_no_failure(&v);
        assert_eq!(
            rules(&v, Severity::Unsettled),
            [
                "states/connect-when-connected",
                "states/update-while-connected",
                "states/delete-with-keys"
            ]
        );
    }

    #[test]
    fn update_of_the_cluster_while_connected_must_be_refused() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(
            UPDATE,
            json!({"CustomKeyStoreId": "cks-1", "CloudHsmClusterId": "cluster-healthybbbbb"}),
            ok(json!({})),
        );
        assert_eq!(failures(&judge(&h)), ["states/refused-allowed"]);
    }

    #[test]
    fn delete_of_a_disconnected_store_with_keys_must_not_succeed() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.call(CREATE_KEY, id(), ok(json!({})));
        h.call(DISCONNECT, id(), ok(json!({})));
        seen(&mut h, "DISCONNECTED");
        h.call(DELETE, id(), ok(json!({})));
        assert_eq!(failures(&judge(&h)), ["states/has-cmks"]);
    }

    #[test]
    fn a_store_connecting_by_itself_is_caught() {
        let mut h = created();
        seen(&mut h, "CONNECTED");
        let v = judge(&h);
        assert_eq!(failures(&v), ["states/spontaneous"]);
        assert!(v.findings[0].message.contains("DISCONNECTED"));
        assert_eq!(
            v.findings[0].kind,
            "expected DISCONNECTED to stay or settle, got CONNECTED"
        );
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTING");
        seen(&mut h, "FAILED");
        seen(&mut h, "DISCONNECTED");
        assert_eq!(failures(&judge(&h)), ["states/spontaneous"]);
    }

    #[test]
    fn a_stale_listing_after_a_connect_is_not_learnt_from() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "DISCONNECTED");
        h.call(DELETE, id(), error(INVALID_STATE));
        seen(&mut h, "CONNECTING");
        seen(&mut h, "CONNECTED");
        h.call(DELETE, id(), error(INVALID_STATE));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[DELETE], 1);
    }

    #[test]
    fn a_state_change_after_a_request_for_the_store_is_not_spontaneous() {
        let mut h = created();
        h.call(CONNECT, id(), ok(json!({})));
        seen(&mut h, "CONNECTED");
        h.next_sequence();
        seen(&mut h, "CONNECTED");
        assert!(judge(&h).findings.is_empty());
    }

    #[test]
    fn concurrent_calls_are_not_judged_and_leave_the_state_unknown() {
        let mut h = created();
        h.concurrent(vec![
            (CONNECT, id(), ok(json!({}))),
            (DISCONNECT, id(), error(INVALID_STATE)),
        ]);
        h.call(DELETE, id(), ok(json!({})));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert!(v.exercised.is_empty());
    }
}
