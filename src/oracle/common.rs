//! Helpers shared by the model-free oracles: final attempts, step groups, listing entries,
//! connection-state sets, a per-sequence store tracker, and secret redaction.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Context, Verdict};
use crate::history::{Exchange, History, Outcome, Owner};
use crate::model::ConnectionState;

/// DescribeCustomKeyStores.
pub const DESCRIBE: &str = "DescribeCustomKeyStores";
/// CreateCustomKeyStore.
pub const CREATE: &str = "CreateCustomKeyStore";
/// ConnectCustomKeyStore.
pub const CONNECT: &str = "ConnectCustomKeyStore";
/// DisconnectCustomKeyStore.
pub const DISCONNECT: &str = "DisconnectCustomKeyStore";
/// UpdateCustomKeyStore.
pub const UPDATE: &str = "UpdateCustomKeyStore";
/// DeleteCustomKeyStore.
pub const DELETE: &str = "DeleteCustomKeyStore";
/// CreateKey.
pub const CREATE_KEY: &str = "CreateKey";

/// CustomKeyStoreInvalidStateException.
pub const INVALID_STATE: &str = "CustomKeyStoreInvalidStateException";
/// CustomKeyStoreNotFoundException.
pub const NOT_FOUND: &str = "CustomKeyStoreNotFoundException";
/// CustomKeyStoreHasCMKsException.
pub const HAS_CMKS: &str = "CustomKeyStoreHasCMKsException";
/// ThrottlingException.
pub const THROTTLING: &str = "ThrottlingException";

/// Whether exchange `i` was retried: the next exchange is the next attempt of the same request.
pub fn superseded(history: &History, i: usize) -> bool {
    let (Some(e), Some(next)) = (history.exchanges.get(i), history.exchanges.get(i + 1)) else {
        return false;
    };
    next.sequence == e.sequence
        && next.step == e.step
        && next.operation == e.operation
        && next.attempt == e.attempt + 1
}

/// Indices of the exchanges that are the final attempt of their request, in history order.
pub fn final_attempts(history: &History) -> Vec<usize> {
    (0..history.exchanges.len())
        .filter(|&i| !superseded(history, i))
        .collect()
}

/// The final attempts of one generated step (one `(sequence, step)`), in history order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepGroup {
    /// The sequence.
    pub sequence: u64,
    /// The step within it.
    pub step: u32,
    /// Indices of the final attempts.
    pub indices: Vec<usize>,
}

/// Final attempts grouped by `(sequence, step)`, groups in order of first appearance.
pub fn step_groups(history: &History) -> Vec<StepGroup> {
    let mut groups: Vec<StepGroup> = Vec::new();
    let mut position: BTreeMap<(u64, u32), usize> = BTreeMap::new();
    for i in final_attempts(history) {
        let e = &history.exchanges[i];
        let key = (e.sequence, e.step);
        match position.get(&key) {
            Some(&g) => groups[g].indices.push(i),
            None => {
                position.insert(key, groups.len());
                groups.push(StepGroup {
                    sequence: e.sequence,
                    step: e.step,
                    indices: vec![i],
                });
            }
        }
    }
    groups
}

impl StepGroup {
    /// Whether the group is a Concurrent step: several requests, not all of them listings
    /// (a Paginate or Settle step is a run of DescribeCustomKeyStores calls).
    pub fn is_concurrent(&self, history: &History) -> bool {
        self.indices.len() > 1
            && self
                .indices
                .iter()
                .any(|&i| history.exchanges[i].operation != DESCRIBE)
    }
}

/// For every exchange index: whether it is a final attempt inside a Concurrent step.
pub fn concurrent_flags(history: &History) -> Vec<bool> {
    let mut flags = vec![false; history.exchanges.len()];
    for g in step_groups(history) {
        if g.is_concurrent(history) {
            for &i in &g.indices {
                flags[i] = true;
            }
        }
    }
    flags
}

/// Final attempts by sequence, each in history order.
pub fn sequences(history: &History) -> BTreeMap<u64, Vec<usize>> {
    let mut out: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for i in final_attempts(history) {
        out.entry(history.exchanges[i].sequence)
            .or_default()
            .push(i);
    }
    out
}

/// The entries of a DescribeCustomKeyStores body (empty when there are none).
pub fn entries(body: &Value) -> &[Value] {
    body.get("CustomKeyStores")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The `CustomKeyStoreId` of an entry or a request.
pub fn store_id(v: &Value) -> Option<&str> {
    v.get("CustomKeyStoreId").and_then(Value::as_str)
}

/// Whether a JSON member is present and not null.
pub fn present(v: &Value, member: &str) -> bool {
    v.get(member).is_some_and(|m| !m.is_null())
}

/// The HTTP status, if a response came back.
pub fn status(e: &Exchange) -> Option<u16> {
    e.status()
}

/// Whether the exchange got a 2xx response.
pub fn is_success(e: &Exchange) -> bool {
    status(e).is_some_and(|s| (200..300).contains(&s))
}

/// Whether the exchange got a 5xx response, or no response at all: its effect is unknown.
pub fn effect_unknown(e: &Exchange) -> bool {
    match &e.outcome {
        Outcome::Unknown { .. } => true,
        Outcome::Response { status, .. } => *status >= 500,
    }
}

/// How an answer reads in a message: `200`, `HTTP 400 NameOfError`, `HTTP 502 (no error name)`,
/// or `no answer (reason)`.
pub fn answer(e: &Exchange) -> String {
    match &e.outcome {
        Outcome::Unknown { reason } => format!("no answer ({reason})"),
        Outcome::Response { status, .. } if (200..300).contains(status) => format!("HTTP {status}"),
        Outcome::Response { status, .. } => match e.error_name() {
            Some(name) => format!("HTTP {status} {name}"),
            None => format!("HTTP {status} (no error name)"),
        },
    }
}

/// An answer as a signature reads it, with nothing that varies between runs: `200`,
/// `400 CustomKeyStoreNotFoundException`, `500 text/html` (no error name: the content type, or
/// `without an error name`), or `no answer`. A 200 listing adds how many stores it held when
/// that is none (`200 with 0 stores`) and `with stores` otherwise.
pub fn answer_kind(e: &Exchange) -> String {
    match &e.outcome {
        Outcome::Unknown { .. } => "no answer".into(),
        Outcome::Response { status, body, .. } if (200..300).contains(status) => {
            if e.operation == DESCRIBE && body.get("CustomKeyStores").is_some() {
                match entries(body).len() {
                    0 => format!("{status} with 0 stores"),
                    _ => format!("{status} with stores"),
                }
            } else {
                status.to_string()
            }
        }
        Outcome::Response {
            status,
            content_type,
            ..
        } => match e.error_name() {
            Some(name) => format!("{status} {name}"),
            None => match content_type.as_deref().and_then(|c| c.split(';').next()) {
                Some(ct) if !ct.trim().is_empty() => format!("{status} {}", ct.trim()),
                _ => format!("{status} without an error name"),
            },
        },
    }
}

/// Why no answer came, in words that hold no address or port: `a timeout`, `an answer over
/// 1 MiB` (the harness reads no more), `a connection reset`, `a refused connection`, `a cut
/// answer` (the body ended before its length or its last chunk), `a broken answer` (its body
/// could not be read otherwise), or `none`.
pub fn no_answer_kind(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| r.contains(w));
    if any(&["timed out", "timeout"]) {
        "a timeout"
    } else if r.contains(&crate::runner::OVER_LIMIT.to_ascii_lowercase()) {
        "an answer over 1 MiB"
    } else if r.contains("reset") {
        "a connection reset"
    } else if r.contains("refused") {
        "a refused connection"
    } else if any(&[
        "unexpected eof",
        "end of file before message length reached",
        "incomplete",
        "closed before message completed",
    ]) {
        "a cut answer"
    } else if any(&["error reading a body", "error decoding response body"]) {
        "a broken answer"
    } else {
        "none"
    }
}

/// `expected WANT, got ANSWER` (see [`answer_kind`]): the kind of a finding about an answer.
pub fn expected_got(want: &str, e: &Exchange) -> String {
    format!("expected {want}, got {}", answer_kind(e))
}

/// [`answer_kind`] without what a listing held: a 2xx is just its status. For findings where
/// an accepted listing is the deviation whatever it held (a bad Limit or Marker accepted), so
/// that whether stores happened to exist at that point of the sequence does not split one
/// deviation in two.
pub fn plain_answer_kind(e: &Exchange) -> String {
    match e.status() {
        Some(s) if (200..300).contains(&s) => s.to_string(),
        _ => answer_kind(e),
    }
}

/// `expected WANT, got ANSWER` with [`plain_answer_kind`].
pub fn expected_got_plain(want: &str, e: &Exchange) -> String {
    format!("expected {want}, got {}", plain_answer_kind(e))
}

/// The JSON type word of a value, for kinds: `string`, `number`, `boolean`, `array`, `object`
/// or `null`.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a store entry belongs to this run (its name starts with the run's prefix).
pub fn ours(ctx: &Context<'_>, entry: &Value) -> bool {
    entry
        .get("CustomKeyStoreName")
        .and_then(Value::as_str)
        .is_some_and(|n| n.starts_with(ctx.name_prefix))
}

/// Parses a wire connection state, case-sensitively.
pub fn parse_state(s: &str) -> Option<ConnectionState> {
    Some(match s {
        "CONNECTED" => ConnectionState::Connected,
        "CONNECTING" => ConnectionState::Connecting,
        "FAILED" => ConnectionState::Failed,
        "DISCONNECTED" => ConnectionState::Disconnected,
        "DISCONNECTING" => ConnectionState::Disconnecting,
        _ => return None,
    })
}

/// Every connection state.
pub const ALL_STATES: [ConnectionState; 5] = [
    ConnectionState::Connected,
    ConnectionState::Connecting,
    ConnectionState::Failed,
    ConnectionState::Disconnected,
    ConnectionState::Disconnecting,
];

/// A set of states a store may be in; `gone` stands for "deleted".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSet(u8);

const GONE_BIT: u8 = 1 << 5;

fn bit(s: ConnectionState) -> u8 {
    1 << ALL_STATES.iter().position(|&t| t == s).unwrap_or(0)
}

impl StateSet {
    /// The empty set.
    pub const EMPTY: StateSet = StateSet(0);

    /// Exactly one state.
    pub fn of(s: ConnectionState) -> StateSet {
        StateSet(bit(s))
    }

    /// Deleted.
    pub fn gone() -> StateSet {
        StateSet(GONE_BIT)
    }

    /// Any connection state (the store exists, its state is unknown).
    pub fn any_state() -> StateSet {
        StateSet(ALL_STATES.iter().fold(0, |acc, &s| acc | bit(s)))
    }

    /// Whether `s` is in the set.
    pub fn contains(self, s: ConnectionState) -> bool {
        self.0 & bit(s) != 0
    }

    /// Whether "deleted" is in the set.
    pub fn has_gone(self) -> bool {
        self.0 & GONE_BIT != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    pub fn union(self, other: StateSet) -> StateSet {
        StateSet(self.0 | other.0)
    }

    /// The connection states in the set (not "deleted").
    pub fn states(self) -> impl Iterator<Item = ConnectionState> {
        ALL_STATES.into_iter().filter(move |&s| self.contains(s))
    }

    /// Every state the set's states can reach with no request, itself included.
    pub fn closure(self) -> StateSet {
        let mut out = StateSet(self.0 & GONE_BIT);
        for s in self.states() {
            out = out.union(spontaneous(s));
        }
        out
    }

    /// The states, as wire names joined by `/` (`gone` for deleted).
    pub fn show(self) -> String {
        let mut names: Vec<&str> = self.states().map(ConnectionState::as_str).collect();
        if self.has_gone() {
            names.push("gone");
        }
        names.join("/")
    }
}

/// The states a store in state `s` can reach without a request (itself included): CONNECTING
/// ends in CONNECTED or FAILED (or goes on to DISCONNECTING), DISCONNECTING ends in DISCONNECTED.
pub fn spontaneous(s: ConnectionState) -> StateSet {
    use ConnectionState::*;
    let reach: &[ConnectionState] = match s {
        Connecting => &[Connecting, Connected, Failed, Disconnecting, Disconnected],
        Disconnecting => &[Disconnecting, Disconnected],
        Connected => &[Connected],
        Failed => &[Failed],
        Disconnected => &[Disconnected],
    };
    reach
        .iter()
        .fold(StateSet::EMPTY, |acc, &t| acc.union(StateSet::of(t)))
}

/// What is known about one store in one sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreFacts {
    /// The states it may be in now (None: unknown).
    pub possible: Option<StateSet>,
    /// Whether it holds KMS keys (None: unknown).
    pub keys: Option<bool>,
    /// `AWS_CLOUDHSM` or `EXTERNAL_KEY_STORE`, when known.
    pub store_type: Option<String>,
    /// Its name, when known.
    pub name: Option<String>,
    /// The state last observed (or inferred) with no request for it sent since.
    pub last_seen: Option<ConnectionState>,
    /// After a successful Connect or Disconnect: the states that show its effect. A listing
    /// showing another state is taken as stale (eventual consistency) and not learnt from.
    pub awaiting: Option<StateSet>,
}

/// A state change no request explains, seen between two observations of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spontaneous {
    /// The store.
    pub id: String,
    /// The earlier observation.
    pub from: ConnectionState,
    /// The later one.
    pub to: ConnectionState,
}

/// Follows the stores of one sequence through its exchanges: states from listings and from
/// effects known with certainty, keys created in them, types and names.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// Facts by store ID.
    pub stores: BTreeMap<String, StoreFacts>,
}

impl Tracker {
    /// The facts about a store, if any.
    pub fn facts(&self, id: &str) -> Option<&StoreFacts> {
        self.stores.get(id)
    }

    /// Learns from one final attempt. `concurrent`: it was sent together with other requests,
    /// so its listing is not ordered with them and is not used. Returns the spontaneous state
    /// changes its listing shows.
    pub fn record(&mut self, e: &Exchange, concurrent: bool) -> Vec<Spontaneous> {
        let mut found = Vec::new();
        if e.raw {
            let text = e.request.as_str().unwrap_or_default();
            for (id, facts) in self.stores.iter_mut() {
                if text.contains(id.as_str()) {
                    facts.last_seen = None;
                }
            }
            return found;
        }
        match e.operation.as_str() {
            DESCRIBE => {
                if concurrent {
                    return found;
                }
                if status(e) == Some(200) {
                    for entry in entries(e.body()) {
                        let Some(id) = store_id(entry) else { continue };
                        let facts = self.stores.entry(id.to_string()).or_default();
                        let state = entry
                            .get("ConnectionState")
                            .and_then(Value::as_str)
                            .and_then(parse_state);
                        if let (Some(effect), Some(s)) = (facts.awaiting, state)
                            && !effect.contains(s)
                        {
                            continue;
                        }
                        facts.awaiting = None;
                        if let (Some(from), Some(to)) = (facts.last_seen, state)
                            && !spontaneous(from).contains(to)
                        {
                            found.push(Spontaneous {
                                id: id.to_string(),
                                from,
                                to,
                            });
                        }
                        facts.possible = state.map(spontaneous);
                        facts.last_seen = state;
                        if let Some(t) = entry.get("CustomKeyStoreType").and_then(Value::as_str) {
                            facts.store_type = Some(t.to_string());
                        }
                        if let Some(n) = entry.get("CustomKeyStoreName").and_then(Value::as_str) {
                            facts.name = Some(n.to_string());
                        }
                    }
                } else if e.error_name().as_deref() == Some(NOT_FOUND)
                    && let Some(facts) = store_id(&e.request).and_then(|id| self.stores.get_mut(id))
                    && !facts.possible.is_some_and(StateSet::has_gone)
                {
                    facts.possible = None;
                    facts.last_seen = None;
                }
            }
            CREATE => {
                if is_success(e)
                    && let Some(id) = store_id(e.body())
                {
                    let store_type = e
                        .request
                        .get("CustomKeyStoreType")
                        .and_then(Value::as_str)
                        .unwrap_or("AWS_CLOUDHSM");
                    self.stores.insert(
                        id.to_string(),
                        StoreFacts {
                            possible: Some(StateSet::of(ConnectionState::Disconnected)),
                            keys: Some(false),
                            store_type: Some(store_type.to_string()),
                            name: e
                                .request
                                .get("CustomKeyStoreName")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            last_seen: Some(ConnectionState::Disconnected),
                            awaiting: None,
                        },
                    );
                }
            }
            op => {
                let Some(id) = store_id(&e.request) else {
                    return found;
                };
                let facts = self.stores.entry(id.to_string()).or_default();
                facts.last_seen = None;
                if effect_unknown(e) {
                    facts.possible = None;
                    facts.awaiting = None;
                    if op == CREATE_KEY && facts.keys == Some(false) {
                        facts.keys = None;
                    }
                } else if is_success(e) {
                    match op {
                        CONNECT | DISCONNECT => {
                            use ConnectionState::*;
                            let effect: &[ConnectionState] = if op == CONNECT {
                                &[Connecting, Connected, Failed]
                            } else {
                                &[Disconnecting, Disconnected]
                            };
                            facts.possible = None;
                            facts.awaiting = Some(
                                effect
                                    .iter()
                                    .fold(StateSet::EMPTY, |acc, &s| acc.union(StateSet::of(s))),
                            );
                        }
                        DELETE => {
                            facts.possible = Some(StateSet::gone());
                            facts.awaiting = None;
                        }
                        CREATE_KEY => facts.keys = Some(true),
                        UPDATE => {
                            if let Some(n) = e
                                .request
                                .get("NewCustomKeyStoreName")
                                .and_then(Value::as_str)
                            {
                                facts.name = Some(n.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        found
    }
}

/// One fixture secret, as the oracles see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureSecret<'a> {
    /// Its owner in words, without its value (it may name a cluster ID or an endpoint).
    pub label: String,
    /// The secret itself.
    pub value: &'a str,
    /// The token a history masks it with.
    pub token: String,
    /// What kind of secret it is, with no ID: `a kmsuser password` or `a proxy secret access
    /// key` (for finding kinds).
    pub what: &'static str,
}

/// The fixture secrets (non-empty, each once).
pub fn fixture_secrets<'a>(ctx: &Context<'a>) -> Vec<FixtureSecret<'a>> {
    let mut seen = BTreeSet::new();
    crate::history::fixture_secrets(ctx.fixtures)
        .filter(|(s, _)| !s.is_empty() && seen.insert(*s))
        .map(|(s, owner)| FixtureSecret {
            label: owner.describe(),
            value: s,
            token: owner.token(),
            what: match owner {
                Owner::Cluster(_) => "a kmsuser password",
                Owner::Proxy(_) => "a proxy secret access key",
            },
        })
        .collect()
}

/// `text` with every fixture secret replaced by `[secret]`.
pub fn redact(ctx: &Context<'_>, text: &str) -> String {
    fixture_secrets(ctx)
        .into_iter()
        .fold(text.to_string(), |t, s| t.replace(s.value, "[secret]"))
}

/// The verdict with every fixture secret redacted from its messages and kinds: an oracle
/// quoting what came back must not repeat a leaked secret.
pub fn redacted(ctx: &Context<'_>, mut verdict: Verdict) -> Verdict {
    for f in &mut verdict.findings {
        f.message = redact(ctx, &f.message);
        f.kind = redact(ctx, &f.kind);
    }
    verdict
}

/// The first `n` characters of `text` on one line, with `…` when cut.
pub fn snippet(text: &str, n: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line.to_string()
    }
}

/// A list of IDs for a message: at most five, then `and N more`.
pub fn show_ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> String {
    let ids: Vec<&String> = ids.into_iter().collect();
    let mut shown: Vec<String> = ids.iter().take(5).map(|s| s.to_string()).collect();
    if ids.len() > 5 {
        shown.push(format!("and {} more", ids.len() - 5));
    }
    shown.join(", ")
}

/// The set of our store IDs in a listing body.
pub fn our_ids(ctx: &Context<'_>, body: &Value) -> BTreeSet<String> {
    entries(body)
        .iter()
        .filter(|e| ours(ctx, e))
        .filter_map(|e| store_id(e).map(str::to_string))
        .collect()
}

/// Builders for oracle unit tests.
#[cfg(test)]
pub mod testing {
    use serde_json::{Value, json};

    use crate::history::{Exchange, Expectation, History, Outcome};
    use crate::model::{Fixtures, ModelConfig};
    use crate::oracle::{Context, Severity, Verdict};
    use crate::spec::Spec;

    /// The name prefix of test stores.
    pub const PREFIX: &str = "ckscheck-t-";

    /// A context over the built-in fixtures and the default model configuration.
    pub fn ctx() -> Context<'static> {
        let fixtures: &'static std::sync::Arc<Fixtures> =
            Box::leak(Box::new(std::sync::Arc::new(Fixtures::builtin())));
        let model: &'static ModelConfig = Box::leak(Box::new(ModelConfig::default()));
        Context {
            spec: Spec::kms(),
            fixtures,
            model,
            name_prefix: PREFIX,
        }
    }

    /// A well-formed JSON response.
    pub fn response(status: u16, body: Value) -> Outcome {
        Outcome::Response {
            status,
            request_id: Some("req-1".into()),
            content_type: Some("application/x-amz-json-1.1".into()),
            error_type: None,
            body,
            text: None,
        }
    }

    /// A 200 with this body.
    pub fn ok(body: Value) -> Outcome {
        response(200, body)
    }

    /// A well-formed error answer, with the status the spec gives the error.
    pub fn error(name: &str) -> Outcome {
        response(
            Spec::kms().error_status(name),
            json!({"__type": name, "message": "m"}),
        )
    }

    /// No answer.
    pub fn unknown() -> Outcome {
        Outcome::Unknown {
            reason: "timed out".into(),
        }
    }

    /// A CloudHSM listing entry of our store `id`, named PREFIX + `name`.
    pub fn entry(id: &str, name: &str, state: &str) -> Value {
        let mut e = json!({
            "CustomKeyStoreId": id,
            "CustomKeyStoreName": format!("{PREFIX}{name}"),
            "CustomKeyStoreType": "AWS_CLOUDHSM",
            "CloudHsmClusterId": "cluster-healthyaaaaa",
            "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----",
            "ConnectionState": state,
            "CreationDate": 1537582718.431,
        });
        if state == "FAILED" {
            e["ConnectionErrorCode"] = json!("NETWORK_ERRORS");
        }
        e
    }

    /// An external key store entry of our store `id` with public-endpoint connectivity.
    pub fn xks_entry(id: &str, name: &str, state: &str) -> Value {
        let mut e = json!({
            "CustomKeyStoreId": id,
            "CustomKeyStoreName": format!("{PREFIX}{name}"),
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "ConnectionState": state,
            "CreationDate": 1537582718,
            "XksProxyConfiguration": {
                "Connectivity": "PUBLIC_ENDPOINT",
                "AccessKeyId": "ABCDEFGHIJKLMNOPQRST",
                "UriEndpoint": "https://xks-ok.example.test",
                "UriPath": "/kms/xks/v1",
            },
        });
        if state == "FAILED" {
            e["ConnectionErrorCode"] = json!("XKS_PROXY_NOT_REACHABLE");
        }
        e
    }

    /// An entry of someone else's store.
    pub fn foreign(id: &str) -> Value {
        let mut e = entry(id, "x", "DISCONNECTED");
        e["CustomKeyStoreName"] = json!(format!("other-{id}"));
        e
    }

    /// A listing page: Truncated and NextMarker as a correct endpoint sends them.
    pub fn page(stores: Vec<Value>, next: Option<&str>) -> Value {
        match next {
            Some(m) => json!({"CustomKeyStores": stores, "NextMarker": m, "Truncated": true}),
            None => json!({"CustomKeyStores": stores, "Truncated": false}),
        }
    }

    /// A history under construction: every push is a new step unless said otherwise.
    #[derive(Default)]
    pub struct H {
        /// The exchanges so far.
        pub exchanges: Vec<Exchange>,
        sequence: u64,
        step: u32,
    }

    impl H {
        /// An empty history at sequence 0.
        pub fn new() -> H {
            H::default()
        }

        fn exchange(&self, op: &str, request: Value, outcome: Outcome) -> Exchange {
            Exchange {
                sequence: self.sequence,
                step: self.step,
                attempt: 1,
                operation: op.into(),
                request,
                raw: false,
                wire: None,
                started_ms: 0,
                elapsed_ms: 1,
                outcome,
                expect: None,
            }
        }

        /// A Call step; returns the exchange index.
        pub fn call(&mut self, op: &str, request: Value, outcome: Outcome) -> usize {
            self.step += 1;
            self.same_step(op, request, outcome)
        }

        /// Another exchange in the current step (a concurrent request or a poll).
        pub fn same_step(&mut self, op: &str, request: Value, outcome: Outcome) -> usize {
            let e = self.exchange(op, request, outcome);
            self.exchanges.push(e);
            self.exchanges.len() - 1
        }

        /// A retry of the last exchange (attempt + 1).
        pub fn retry(&mut self, outcome: Outcome) -> usize {
            let mut e = self.exchanges.last().expect("something to retry").clone();
            e.attempt += 1;
            e.outcome = outcome;
            self.exchanges.push(e);
            self.exchanges.len() - 1
        }

        /// A Call step built to break `rule`, expecting `error`.
        pub fn expecting(
            &mut self,
            op: &str,
            request: Value,
            error: Option<&str>,
            rule: &str,
            outcome: Outcome,
        ) -> usize {
            let i = self.call(op, request, outcome);
            self.exchanges[i].expect = Some(Expectation {
                error: error.map(str::to_string),
                rule: rule.into(),
                unsettled: false,
            });
            i
        }

        /// A Paginate step: one exchange per page body, requests chained by NextMarker.
        pub fn paginate(&mut self, limit: Option<u32>, pages: Vec<Value>) -> Vec<usize> {
            self.step += 1;
            let mut marker: Option<String> = None;
            let mut out = Vec::new();
            for body in pages {
                let mut request = serde_json::Map::new();
                if let Some(l) = limit {
                    request.insert("Limit".into(), json!(l));
                }
                if let Some(m) = &marker {
                    request.insert("Marker".into(), json!(m));
                }
                marker = body
                    .get("NextMarker")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                out.push(self.same_step(super::DESCRIBE, Value::Object(request), ok(body)));
            }
            out
        }

        /// A Settle-like poll (or any Describe by ID) as its own step.
        pub fn describe(&mut self, stores: Vec<Value>) -> usize {
            self.call(super::DESCRIBE, json!({}), ok(page(stores, None)))
        }

        /// A Concurrent step.
        pub fn concurrent(&mut self, items: Vec<(&str, Value, Outcome)>) -> Vec<usize> {
            self.step += 1;
            items
                .into_iter()
                .map(|(op, request, outcome)| self.same_step(op, request, outcome))
                .collect()
        }

        /// Starts a new sequence.
        pub fn next_sequence(&mut self) {
            self.sequence += 1;
            self.step = 0;
        }

        /// The history.
        pub fn history(&self) -> History {
            History {
                exchanges: self.exchanges.clone(),
            }
        }
    }

    /// The rule IDs of the findings of one severity, in order.
    pub fn rules(v: &Verdict, severity: Severity) -> Vec<String> {
        v.findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.rule.clone())
            .collect()
    }

    /// The rule IDs of the failures.
    pub fn failures(v: &Verdict) -> Vec<String> {
        rules(v, Severity::Failure)
    }

    /// Panics with the findings unless there is no Failure.
    pub fn assert_no_failure(v: &Verdict) {
        assert!(
            failures(v).is_empty(),
            "unexpected failures: {:#?}",
            v.findings
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::testing::*;
    use super::*;

    fn one(op: &str, outcome: Outcome) -> Exchange {
        let mut h = H::new();
        h.call(op, json!({}), outcome);
        h.exchanges.remove(0)
    }

    #[test]
    fn answer_kind_of_a_listing_says_only_whether_it_is_empty() {
        let empty = one(DESCRIBE, ok(page(vec![], None)));
        assert_eq!(answer_kind(&empty), "200 with 0 stores");
        let two = one(
            DESCRIBE,
            ok(page(
                vec![
                    entry("cks-1", "a", "CONNECTED"),
                    entry("cks-2", "b", "FAILED"),
                ],
                None,
            )),
        );
        assert_eq!(answer_kind(&two), "200 with stores");
        assert_eq!(
            expected_got(NOT_FOUND, &empty),
            "expected CustomKeyStoreNotFoundException, got 200 with 0 stores"
        );
        assert_eq!(answer_kind(&one(CONNECT, ok(json!({})))), "200");
    }

    #[test]
    fn answer_kind_of_an_error_names_it_or_its_content_type() {
        let named = one(CONNECT, error(INVALID_STATE));
        assert_eq!(
            answer_kind(&named),
            "400 CustomKeyStoreInvalidStateException"
        );
        let html = one(
            DESCRIBE,
            Outcome::Response {
                status: 500,
                request_id: None,
                content_type: Some("text/html; charset=utf-8".into()),
                error_type: None,
                body: Value::Null,
                text: Some("<html>oops</html>".into()),
            },
        );
        assert_eq!(answer_kind(&html), "500 text/html");
        let bare = one(
            DESCRIBE,
            Outcome::Response {
                status: 502,
                request_id: None,
                content_type: None,
                error_type: None,
                body: Value::Null,
                text: None,
            },
        );
        assert_eq!(answer_kind(&bare), "502 without an error name");
    }

    #[test]
    fn answer_kind_of_no_answer_holds_no_reason() {
        let e = one(CONNECT, unknown());
        assert_eq!(answer_kind(&e), "no answer");
        assert_eq!(
            expected_got("success", &e),
            "expected success, got no answer"
        );
    }

    #[test]
    fn no_answer_kinds_hold_no_address() {
        assert_eq!(
            no_answer_kind("timed out (error sending request for url (http://127.0.0.1:4711/))"),
            "a timeout"
        );
        assert_eq!(
            no_answer_kind("connection reset by peer (os error 104)"),
            "a connection reset"
        );
        assert_eq!(
            no_answer_kind("tcp connect error: Connection refused (os error 111)"),
            "a refused connection"
        );
        assert_eq!(no_answer_kind("error sending request"), "none");
    }

    #[test]
    fn broken_answers_are_transport_kinds_not_none() {
        // The reasons the clients give for the hostile answers of tests/hostile_endpoints.rs.
        let read = "error decoding response body: request or response body error: \
                    error reading a body from connection";
        for (reason, kind) in [
            (
                "answer over 1 MiB: more than 1048576 bytes came and reading stopped there",
                "an answer over 1 MiB",
            ),
            (
                "answer over 1 MiB: Content-Length 10485760 (the harness reads at most 1048576 bytes)",
                "an answer over 1 MiB",
            ),
            (
                &format!("{read}: Connection reset by peer (os error 104)"),
                "a connection reset",
            ),
            (
                &format!("{read}: end of file before message length reached"),
                "a cut answer",
            ),
            (
                &format!("{read}: unexpected EOF during chunk size line"),
                "a cut answer",
            ),
            (
                &format!("{read}: invalid chunk size line"),
                "a broken answer",
            ),
            (read, "a broken answer"),
            (
                &format!("timed out ({read}: operation timed out)"),
                "a timeout",
            ),
        ] {
            assert_eq!(no_answer_kind(reason), kind, "{reason}");
        }
    }
}
