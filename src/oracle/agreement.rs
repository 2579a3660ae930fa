//! Model agreement: replays each sequence of a history through the reference model and checks
//! that status, error type and the listed stores match what the model predicts.
//!
//! Endpoint IDs are mapped to the model's as stores are created. Transitions are allowed for:
//! the model's connect delay is infinite, and a store's in-flight transition is completed only
//! when the endpoint shows evidence of it (a listing showing the final state, or an answer only
//! the final state explains). Where the default reading of an unsettled point does not explain
//! an answer but another reading does, the finding is Unsettled and the sequence continues
//! with that reading.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::common::{INVALID_STATE, expected_got, expected_got_plain, no_answer_kind};
use super::{Context, Finding, Judged, OracleFn, Severity, Verdict};
use crate::coverage::ids;
use crate::history::{Exchange, History, Outcome, SECRET_TOKEN, unmask_secret};
use crate::model::{
    CheckOrder, ConnectWhenConnected, ConnectionState, DeletePrecedence, Model, ModelConfig,
    SeededIds, Switches, UpdateWhileConnected,
};

/// What the check enforces, in one line.
pub const EXPLAIN_AGREEMENT: &str = "every answer (status, error type, listed stores and their fields) is \
     what the reference model predicts for the same sequence, allowing for transitional states";

/// Fields of a listing entry the model and the endpoint must agree on.
const COMPARED_FIELDS: [&str; 6] = [
    "CustomKeyStoreName",
    "CustomKeyStoreType",
    "ConnectionErrorCode",
    "CloudHsmClusterId",
    "TrustAnchorCertificate",
    "XksProxyConfiguration",
];

/// Checks that every answer agrees with the reference model. Where a model-free oracle
/// (states, exclusion, validation, fields, errors, pagination) already explains a disagreeing
/// answer, its findings are reported instead of the model's: one deviation has one signature,
/// whichever check meets it.
pub fn agreement(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    // Run only when some answer disagrees with the model: most cases agree.
    let free = std::cell::OnceCell::new();
    let explained = |i: usize| {
        free.get_or_init(|| model_free(ctx, history))
            .get(&i)
            .cloned()
    };
    let mut sequences: BTreeMap<u64, Vec<(usize, &Exchange)>> = BTreeMap::new();
    for (i, e) in history.exchanges.iter().enumerate() {
        sequences.entry(e.sequence).or_default().push((i, e));
    }
    for exchanges in sequences.values() {
        judge_sequence(ctx, exchanges, &explained, &mut verdict);
    }
    verdict
}

/// The model-free oracles' failing and unsettled findings, by the exchange they point at.
fn model_free(ctx: &Context<'_>, history: &History) -> BTreeMap<usize, Vec<Finding>> {
    let oracles: [OracleFn; 6] = [
        super::states::states,
        super::exclusion::exclusion,
        super::validation::validation,
        super::fields::fields,
        super::errors::errors,
        super::pagination::pagination,
    ];
    let mut out: BTreeMap<usize, Vec<Finding>> = BTreeMap::new();
    for oracle in oracles {
        for f in oracle(ctx, history).findings {
            if let (Some(i), Severity::Failure | Severity::Unsettled) = (f.exchange, f.severity) {
                let at = out.entry(i).or_default();
                if !at.iter().any(|g| g.signature() == f.signature()) {
                    at.push(f);
                }
            }
        }
    }
    out
}

/// Why an answer disagrees with the model: a kind for the signature (no IDs) and a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Mismatch {
    /// The rule, when not `agreement/OPERATION` (a state-table rule, see [`Mismatch::in_state`]).
    rule: Option<&'static str>,
    /// What the model expected and what came back, with no store ID or name.
    kind: String,
    /// The same in one line for people, IDs included.
    message: String,
    /// For a disagreeing answer: the error the model predicted (None: success).
    predicted: Option<Option<String>>,
}

impl Mismatch {
    fn new(kind: impl Into<String>, message: impl Into<String>) -> Mismatch {
        Mismatch {
            kind: kind.into(),
            message: message.into(),
            ..Mismatch::default()
        }
    }

    fn answer(predicted: Option<&str>, kind: String, message: String) -> Mismatch {
        Mismatch {
            predicted: Some(predicted.map(str::to_string)),
            ..Mismatch::new(kind, message)
        }
    }

    /// The same disagreement named as the state table names it (the `states` check's rule and
    /// kind), when it is one: the model refused the request for the store's state and the
    /// endpoint did not, or the other way round. `state` is the store's state in the model.
    fn in_state(mut self, e: &Exchange, state: Option<ConnectionState>) -> Mismatch {
        let (Some(predicted), Some(state)) = (&self.predicted, state) else {
            return self;
        };
        let state = state.as_str();
        let got = e.error_name();
        match (predicted.as_deref(), got.as_deref()) {
            (Some(INVALID_STATE), None) => {
                self.rule = Some("states/refused-allowed");
                self.kind = expected_got(&format!("{INVALID_STATE} in {state}"), e);
            }
            (Some(INVALID_STATE), Some(_)) => {
                self.rule = Some("states/refused-other-error");
                self.kind = expected_got(&format!("{INVALID_STATE} in {state}"), e);
            }
            (None, Some(INVALID_STATE)) => {
                self.rule = Some("states/allowed-refused");
                self.kind = expected_got(&format!("it allowed in {state}"), e);
            }
            _ => {}
        }
        self
    }
}

struct Replay<'a> {
    ctx: &'a Context<'a>,
    model: Model,
    /// Endpoint store ID to model store ID.
    ids: BTreeMap<String, String>,
    /// The error the model predicted for the last exchange, under the reading that explained
    /// it (or the default reading when none did).
    predicted: Option<String>,
}

fn judge_sequence(
    ctx: &Context<'_>,
    exchanges: &[(usize, &Exchange)],
    explained: &dyn Fn(usize) -> Option<Vec<Finding>>,
    verdict: &mut Verdict,
) {
    let config = ModelConfig {
        connect_delay_ms: u64::MAX / 4,
        ..ctx.model.clone()
    };
    let mut replay = Replay {
        ctx,
        model: Model::new(config, ctx.fixtures.clone(), Box::new(SeededIds::new(0))),
        ids: BTreeMap::new(),
        predicted: None,
    };
    for (pos, (index, e)) in exchanges.iter().enumerate() {
        // A throttled attempt did nothing; only the last attempt of a step counts.
        let retried = exchanges
            .get(pos + 1)
            .is_some_and(|(_, next)| next.step == e.step && next.attempt > e.attempt);
        if retried && e.error_name().as_deref() == Some("ThrottlingException") {
            continue;
        }
        if let Outcome::Unknown { reason } = &e.outcome {
            verdict.find(
                Severity::Warning,
                &e.operation,
                "agreement/indeterminate",
                format!("expected an answer, got {}", no_answer_kind(reason)),
                format!("no answer ({reason}); the rest of this sequence is not compared"),
                Some(*index),
            );
            return;
        }
        verdict.judged(&e.operation);
        let outcome = replay.step(e);
        // A declared error the reference predicts is a rule exercised, however it came out.
        if let Some(name) = replay.predicted.take()
            && ctx.spec.may_return(&e.operation, &name)
            && ctx
                .spec
                .operation(&e.operation)
                .is_some_and(|op| op.errors.contains(&name))
        {
            let result = match &outcome {
                Ok(()) => Judged::Pass,
                Err((Severity::Failure, _)) => Judged::Fail,
                Err(_) => Judged::Unsettled,
            };
            verdict.cover(ids::error(&e.operation, &name), result);
        }
        if let Err((severity, mismatch)) = outcome {
            match explained(*index) {
                Some(findings) => verdict.findings.extend(findings),
                None => verdict.find(
                    severity,
                    &e.operation,
                    mismatch
                        .rule
                        .map_or_else(|| format!("agreement/{}", e.operation), str::to_string)
                        .as_str(),
                    mismatch.kind,
                    mismatch.message,
                    Some(*index),
                ),
            }
            if severity == Severity::Failure {
                // The states have diverged: later answers would only repeat this finding.
                return;
            }
        }
    }
}

impl Replay<'_> {
    /// Applies one exchange to the model; Err when no reading explains the endpoint's answer.
    fn step(&mut self, e: &Exchange) -> Result<(), (Severity, Mismatch)> {
        let body = self.request_body(e);
        let target = e.request["CustomKeyStoreId"]
            .as_str()
            .and_then(|id| self.ids.get(id))
            .cloned();
        // The model as it is, then with the target store's transition completed.
        let mut candidates = vec![self.model.clone()];
        if let Some(id) = &target {
            let mut settled = self.model.clone();
            if settled.finish_transition(id) {
                candidates.push(settled);
            }
        }
        let mut first_mismatch = None;
        let mut first_prediction: Option<Option<String>> = None;
        for candidate in &candidates {
            let mut m = candidate.clone();
            let predicted = m.apply(e.started_ms, &e.operation, &body);
            if first_prediction.is_none() {
                first_prediction = Some(predicted.as_ref().err().map(|x| x.name.clone()));
                self.predicted = first_prediction.clone().flatten();
            }
            match self.compare(e, &predicted, &mut m) {
                Ok(()) => {
                    self.predicted = predicted.as_ref().err().map(|x| x.name.clone());
                    self.model = m;
                    self.learn_ids(e, &predicted);
                    return Ok(());
                }
                Err(why) => {
                    first_mismatch.get_or_insert(why);
                }
            }
        }
        let mismatch = first_mismatch.unwrap_or_default();
        // Another reading of the unsettled points may explain the answer.
        for switches in alternative_switches(self.model.config().switches) {
            for candidate in &candidates {
                let mut m = candidate.clone();
                m.set_switches(switches);
                let predicted = m.apply(e.started_ms, &e.operation, &body);
                if self.compare(e, &predicted, &mut m).is_ok() {
                    self.predicted = predicted.as_ref().err().map(|x| x.name.clone());
                    let current = self.model.config().switches;
                    self.model = m;
                    self.learn_ids(e, &predicted);
                    return Err((
                        Severity::Unsettled,
                        Mismatch::new(
                            format!(
                                "{} (matches the reading {})",
                                mismatch.kind,
                                changed_switches(current, switches)
                            ),
                            format!(
                                "{}; the answer matches the reading {}",
                                mismatch.message,
                                describe_switches(switches)
                            ),
                        ),
                    ));
                }
            }
        }
        // Both readings refused it (the store as the model has it, and with its transition
        // over): name the state the transition ends in, as the endpoint's own listings show it
        // once it is over, so that one deviation has one name.
        let settled = candidates
            .last()
            .cloned()
            .unwrap_or_else(|| self.model.clone());
        let state = target.and_then(|id| {
            let mut model = settled;
            model
                .stores(e.started_ms)
                .into_iter()
                .find(|s| s.id == id)
                .map(|s| s.state)
        });
        Err((Severity::Failure, mismatch.in_state(e, state)))
    }

    /// The request as the model should see it: IDs mapped, secrets unmasked.
    fn request_body(&self, e: &Exchange) -> Vec<u8> {
        if e.raw {
            return e.request.as_str().unwrap_or_default().as_bytes().to_vec();
        }
        let mapped = map_values(&e.request, &|s| {
            if let Some(model_id) = self.ids.get(s) {
                Some(model_id.clone())
            } else if s.starts_with(SECRET_TOKEN) {
                Some(unmask_secret(self.ctx.fixtures, s))
            } else {
                None
            }
        });
        serde_json::to_vec(&mapped).unwrap_or_default()
    }

    fn learn_ids(&mut self, e: &Exchange, predicted: &Result<Value, crate::model::KmsError>) {
        if e.operation != "CreateCustomKeyStore" {
            return;
        }
        if let (Some(endpoint_id), Ok(p)) = (e.body()["CustomKeyStoreId"].as_str(), predicted)
            && let Some(model_id) = p["CustomKeyStoreId"].as_str()
        {
            self.ids
                .insert(endpoint_id.to_string(), model_id.to_string());
        }
    }

    /// Compares an answer with a prediction. For listings, a store the endpoint shows in the
    /// final state of its in-flight transition has that transition completed in `model`.
    fn compare(
        &self,
        e: &Exchange,
        predicted: &Result<Value, crate::model::KmsError>,
        model: &mut Model,
    ) -> Result<(), Mismatch> {
        let status = e.status().unwrap_or(0);
        match (predicted, e.error_name()) {
            (Err(p), Some(got)) if p.name == got => Ok(()),
            (Err(p), Some(got)) => Err(Mismatch::answer(
                Some(&p.name),
                expected_got_plain(&p.name, e),
                format!(
                    "the model predicts {}, the endpoint answered {got} (HTTP {status})",
                    p.name
                ),
            )),
            (Err(p), None) => Err(Mismatch::answer(
                Some(&p.name),
                expected_got_plain(&p.name, e),
                format!(
                    "the model predicts {}, the endpoint answered HTTP {status} without an error",
                    p.name
                ),
            )),
            (Ok(_), Some(got)) => Err(Mismatch::answer(
                None,
                expected_got_plain("success", e),
                format!("the model predicts success, the endpoint answered {got} (HTTP {status})"),
            )),
            (Ok(p), None) if e.operation == "DescribeCustomKeyStores" => {
                self.compare_listing(e, p, model)
            }
            (Ok(_), None) => Ok(()),
        }
    }

    fn compare_listing(
        &self,
        e: &Exchange,
        predicted: &Value,
        model: &mut Model,
    ) -> Result<(), Mismatch> {
        let reverse: BTreeMap<&str, &str> = self
            .ids
            .iter()
            .map(|(endpoint, model)| (model.as_str(), endpoint.as_str()))
            .collect();
        let ours = |entry: &&Value| {
            entry["CustomKeyStoreName"]
                .as_str()
                .is_some_and(|n| n.starts_with(self.ctx.name_prefix))
        };
        let got: Vec<&Value> = list(e.body()).filter(ours).collect();
        let expected: Vec<&Value> = list(predicted).collect();
        let paged = e.request.get("Limit").is_some() || e.request.get("Marker").is_some();
        for entry in &got {
            let id = entry["CustomKeyStoreId"].as_str().unwrap_or_default();
            let Some(model_id) = self.ids.get(id) else {
                return Err(Mismatch::new(
                    "listed a store the model does not know",
                    format!("the endpoint lists store {id}, which the model does not know"),
                ));
            };
            let Some(want) = expected
                .iter()
                .find(|p| p["CustomKeyStoreId"] == model_id.as_str())
            else {
                if paged {
                    continue;
                }
                return Err(Mismatch::new(
                    "listed a store the model says is gone",
                    format!("the endpoint lists store {id}, which the model says is gone"),
                ));
            };
            let got_state = entry["ConnectionState"].as_str().unwrap_or_default();
            let want_state = want["ConnectionState"].as_str().unwrap_or_default();
            if got_state != want_state {
                let pending = model.pending_state(model_id);
                let finishing = pending.is_some_and(|s| s.as_str() == got_state);
                if !finishing {
                    // A store on its way somewhere is expected there (or still on its way).
                    let expected = pending.map_or(want_state, |s| s.as_str());
                    return Err(Mismatch::new(
                        format!(
                            "ConnectionState expected {}, got {}",
                            word(expected),
                            word(got_state)
                        ),
                        format!(
                            "store {id}: the model predicts ConnectionState {want_state}, the endpoint shows {got_state}"
                        ),
                    ));
                }
                model.finish_transition(model_id);
            }
            let want_now = model_entry(model, model_id).unwrap_or_else(|| (*want).clone());
            for field in COMPARED_FIELDS {
                if entry.get(field) != want_now.get(field) {
                    return Err(Mismatch::new(
                        field_kind(field, want_now.get(field), entry.get(field)),
                        format!(
                            "store {id}: the model predicts {field} {}, the endpoint shows {}",
                            show(want_now.get(field)),
                            show(entry.get(field))
                        ),
                    ));
                }
            }
        }
        if !paged {
            for want in &expected {
                let model_id = want["CustomKeyStoreId"].as_str().unwrap_or_default();
                let listed = reverse
                    .get(model_id)
                    .is_some_and(|id| got.iter().any(|g| g["CustomKeyStoreId"] == *id));
                if !listed {
                    return Err(Mismatch::new(
                        "did not list a store the model predicts",
                        format!(
                            "the model predicts store {} in the listing, the endpoint does not list it",
                            reverse.get(model_id).copied().unwrap_or(model_id)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn model_entry(model: &mut Model, id: &str) -> Option<Value> {
    model
        .stores(0)
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| s.entry())
}

fn list(body: &Value) -> impl Iterator<Item = &Value> {
    body["CustomKeyStores"].as_array().into_iter().flatten()
}

fn show(v: Option<&Value>) -> String {
    v.map_or("(absent)".to_string(), Value::to_string)
}

/// Fields whose values are enum words, not IDs, names or certificates: a kind may show them.
const ENUM_FIELDS: [&str; 3] = ["CustomKeyStoreType", "ConnectionErrorCode", "Connectivity"];

/// A state or enum value for a kind: `(empty)` for an empty or absent one.
fn word(s: &str) -> &str {
    if s.is_empty() { "(empty)" } else { s }
}

/// How a compared field differs, with no value that varies between runs: presence, enum
/// values, or the first differing member of an object (`XksProxyConfiguration.UriPath differs
/// from the model`).
fn field_kind(field: &str, want: Option<&Value>, got: Option<&Value>) -> String {
    let want = want.filter(|v| !v.is_null());
    let got = got.filter(|v| !v.is_null());
    let leaf = field.rsplit('.').next().unwrap_or(field);
    match (want, got) {
        (None, Some(_)) => format!("{field} expected absent, got present"),
        (Some(_), None) => format!("{field} expected present, got absent"),
        (Some(Value::Object(w)), Some(Value::Object(g))) => {
            let mut keys: Vec<&String> = w.keys().chain(g.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .find(|k| w.get(*k).filter(|v| !v.is_null()) != g.get(*k).filter(|v| !v.is_null()))
                .map_or_else(
                    || format!("{field} differs from the model"),
                    |k| field_kind(&format!("{field}.{k}"), w.get(k), g.get(k)),
                )
        }
        (Some(Value::String(w)), Some(Value::String(g))) if ENUM_FIELDS.contains(&leaf) => {
            format!("{field} expected {w}, got {g}")
        }
        _ => format!("{field} differs from the model"),
    }
}

/// The switches of `alternative` that differ from `current`, as command-line flags.
fn changed_switches(current: Switches, alternative: Switches) -> String {
    let mut flags = Vec::new();
    if current.connect_when_connected != alternative.connect_when_connected {
        flags.push(format!(
            "--connect-when-connected {}",
            kebab(&alternative.connect_when_connected)
        ));
    }
    if current.update_while_connected != alternative.update_while_connected {
        flags.push(format!(
            "--update-while-connected {}",
            kebab(&alternative.update_while_connected)
        ));
    }
    if current.delete_precedence != alternative.delete_precedence {
        flags.push(format!(
            "--delete-precedence {}",
            kebab(&alternative.delete_precedence)
        ));
    }
    if current.check_order != alternative.check_order {
        flags.push(format!("--check-order {}", kebab(&alternative.check_order)));
    }
    flags.join(" ")
}

/// Rewrites every string for which `f` gives a replacement.
fn map_values(v: &Value, f: &dyn Fn(&str) -> Option<String>) -> Value {
    match v {
        Value::String(s) => Value::String(f(s).unwrap_or_else(|| s.clone())),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), map_values(v, f)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_values(x, f)).collect()),
        other => other.clone(),
    }
}

/// Every combination of the unsettled switches other than `current`.
fn alternative_switches(current: Switches) -> Vec<Switches> {
    let mut out = Vec::new();
    for connect_when_connected in [
        ConnectWhenConnected::Succeed,
        ConnectWhenConnected::InvalidState,
    ] {
        for update_while_connected in [
            UpdateWhileConnected::OperationPage,
            UpdateWhileConnected::NameOnly,
            UpdateWhileConnected::DisconnectedOnly,
        ] {
            for delete_precedence in [DeletePrecedence::StateFirst, DeletePrecedence::KeysFirst] {
                for check_order in [CheckOrder::ValidationFirst, CheckOrder::NotFoundFirst] {
                    let s = Switches {
                        connect_when_connected,
                        update_while_connected,
                        delete_precedence,
                        check_order,
                    };
                    if s != current {
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

fn describe_switches(s: Switches) -> String {
    format!(
        "--connect-when-connected {} --update-while-connected {} --delete-precedence {} --check-order {}",
        kebab(&s.connect_when_connected),
        kebab(&s.update_while_connected),
        kebab(&s.delete_precedence),
        kebab(&s.check_order)
    )
}

/// A switch value's command-line (serde) name.
fn kebab<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Exchange, mask_secrets};
    use crate::model::Fixtures;
    use crate::spec::Spec;
    use serde_json::json;

    const PREFIX: &str = "ckscheck-test-";

    /// Runs requests through a model acting as the endpoint and records them as a history.
    /// In bodies, the string "#N" stands for the ID of the Nth store created.
    struct Endpoint {
        model: Model,
        fixtures: Fixtures,
        ids: Vec<String>,
        history: History,
    }

    impl Endpoint {
        fn new(switches: Switches) -> Endpoint {
            let fixtures = Fixtures::builtin();
            let config = ModelConfig {
                connect_delay_ms: 100,
                switches,
                ..ModelConfig::default()
            };
            Endpoint {
                model: Model::new(
                    config,
                    fixtures.clone().into(),
                    Box::new(SeededIds::new(99)),
                ),
                fixtures,
                ids: Vec::new(),
                history: History::default(),
            }
        }

        fn send(&mut self, at: u64, op: &str, body: Value) -> usize {
            let body = map_values(&body, &|s| {
                s.strip_prefix('#')
                    .and_then(|n| n.parse::<usize>().ok())
                    .map(|n| self.ids[n].clone())
            });
            let answer = self.model.apply(at, op, body.to_string().as_bytes());
            if let Ok(v) = &answer
                && let Some(id) = v["CustomKeyStoreId"].as_str()
                && op == "CreateCustomKeyStore"
            {
                self.ids.push(id.to_string());
            }
            let (status, body_out, error_type) = match answer {
                Ok(v) => (200, v, None),
                Err(e) => (
                    400,
                    json!({"__type": e.name, "message": e.message}),
                    Some(e.name),
                ),
            };
            self.history.exchanges.push(Exchange {
                sequence: 1,
                step: self.history.exchanges.len() as u32,
                attempt: 1,
                operation: op.to_string(),
                request: mask_secrets(Spec::kms(), &self.fixtures, op, &body),
                raw: false,
                wire: None,
                started_ms: at,
                elapsed_ms: 1,
                outcome: Outcome::Response {
                    status,
                    request_id: Some("r".into()),
                    content_type: Some("application/x-amz-json-1.1".into()),
                    error_type,
                    body: body_out,
                    text: None,
                },
                expect: None,
            });
            self.history.exchanges.len() - 1
        }

        fn create_hsm(&mut self, at: u64, name: &str, cluster: usize) {
            let c = self.fixtures.clusters[cluster].clone();
            self.send(
                at,
                "CreateCustomKeyStore",
                json!({
                    "CustomKeyStoreName": format!("{PREFIX}{name}"),
                    "CloudHsmClusterId": c.id,
                    "TrustAnchorCertificate": c.trust_anchor_certificate,
                    "KeyStorePassword": c.kmsuser_password,
                }),
            );
        }
    }

    /// Judges with `oracle` in the built-in fixtures' context.
    fn judge_with(oracle: crate::oracle::OracleFn, history: &History) -> Verdict {
        let fixtures = std::sync::Arc::new(Fixtures::builtin());
        let model = ModelConfig::default();
        let ctx = Context {
            spec: Spec::kms(),
            fixtures: &fixtures,
            model: &model,
            name_prefix: PREFIX,
        };
        oracle(&ctx, history)
    }

    fn judge(history: &History) -> Verdict {
        judge_with(agreement, history)
    }

    fn rules(v: &Verdict, severity: Severity) -> Vec<String> {
        v.findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.rule.clone())
            .collect()
    }

    fn lifecycle(e: &mut Endpoint) {
        e.create_hsm(0, "a", 0);
        e.create_hsm(1, "b", 1);
        e.send(
            2,
            "ConnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(
            3,
            "ConnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#1"}),
        );
        e.send(4, "DescribeCustomKeyStores", json!({}));
        e.send(150, "DescribeCustomKeyStores", json!({"Limit": 1}));
        e.send(
            151,
            "DeleteCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(
            152,
            "DisconnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(
            153,
            "DescribeCustomKeyStores",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(400, "DescribeCustomKeyStores", json!({}));
        e.send(
            401,
            "DeleteCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(
            402,
            "DescribeCustomKeyStores",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(403, "DescribeCustomKeyStores", json!({}));
    }

    #[test]
    fn a_faithful_endpoint_agrees_through_transitions_and_id_mapping() {
        let mut e = Endpoint::new(Switches::default());
        lifecycle(&mut e);
        let v = judge(&e.history);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised["DescribeCustomKeyStores"], 6);
    }

    /// Plants a fault in a [`lifecycle`]: its Delete of the CONNECTED store answers 200; the
    /// exchange's index.
    fn delete_succeeds(e: &mut Endpoint) -> usize {
        let i = e
            .history
            .exchanges
            .iter()
            .position(|x| x.operation == "DeleteCustomKeyStore")
            .unwrap();
        e.history.exchanges[i].outcome = Outcome::Response {
            status: 200,
            request_id: Some("r-1".into()),
            content_type: Some("application/x-amz-json-1.1".into()),
            error_type: None,
            body: json!({}),
            text: None,
        };
        i
    }

    #[test]
    fn a_predicted_declared_error_counts_its_rule_and_fails_it_when_not_given() {
        let mut e = Endpoint::new(Switches::default());
        lifecycle(&mut e);
        let v = judge(&e.history);
        let id = "error/DeleteCustomKeyStore/CustomKeyStoreInvalidStateException";
        assert_eq!((v.covered[id].exercised, v.covered[id].failed), (1, 0));
        assert!(
            crate::coverage::inventory::inventory()
                .iter()
                .any(|r| r.id == id)
        );
        // The same Delete answered 200: the rule was exercised and failed.
        delete_succeeds(&mut e);
        let v = judge(&e.history);
        assert_eq!((v.covered[id].exercised, v.covered[id].failed), (1, 1));
    }

    #[test]
    fn delete_of_a_connected_store_that_succeeds_is_caught() {
        let mut e = Endpoint::new(Switches::default());
        lifecycle(&mut e);
        // Plant the fault: the Delete on the CONNECTED store answers 200.
        let i = delete_succeeds(&mut e);
        let v = judge(&e.history);
        assert_eq!(rules(&v, Severity::Failure), ["states/refused-allowed"]);
        assert_eq!(v.findings[0].exchange, Some(i));
        // The states oracle explains it: its finding, not the model's, so the two checks report
        // one deviation.
        let states = judge_with(crate::oracle::states::states, &e.history);
        assert_eq!(
            v.findings[0].signature(),
            states.findings[0].signature(),
            "{:#?}",
            v.findings
        );
        assert_eq!(
            v.findings[0].signature(),
            "DeleteCustomKeyStore/states/refused-allowed: \
             expected CustomKeyStoreInvalidStateException in CONNECTED, got 200"
        );
    }

    #[test]
    fn a_store_missing_from_the_listing_is_caught() {
        let mut e = Endpoint::new(Switches::default());
        e.create_hsm(0, "a", 0);
        e.create_hsm(1, "b", 1);
        let i = e.send(2, "DescribeCustomKeyStores", json!({}));
        if let Outcome::Response { body, .. } = &mut e.history.exchanges[i].outcome {
            body["CustomKeyStores"].as_array_mut().unwrap().pop();
        }
        let v = judge(&e.history);
        assert_eq!(
            rules(&v, Severity::Failure),
            ["agreement/DescribeCustomKeyStores"]
        );
        assert!(
            v.findings[0].message.contains("does not list it"),
            "{}",
            v.findings[0].message
        );
        assert_eq!(
            v.findings[0].kind,
            "did not list a store the model predicts"
        );
    }

    #[test]
    fn a_wrong_field_value_is_caught() {
        let mut e = Endpoint::new(Switches::default());
        e.create_hsm(0, "a", 0);
        let i = e.send(2, "DescribeCustomKeyStores", json!({}));
        if let Outcome::Response { body, .. } = &mut e.history.exchanges[i].outcome {
            body["CustomKeyStores"][0]["CloudHsmClusterId"] = json!("cluster-somethingelse");
        }
        let v = judge(&e.history);
        assert_eq!(
            rules(&v, Severity::Failure),
            ["agreement/DescribeCustomKeyStores"]
        );
        assert!(v.findings[0].message.contains("CloudHsmClusterId"));
        assert_eq!(
            v.findings[0].kind,
            "CloudHsmClusterId differs from the model"
        );
    }

    #[test]
    fn another_reading_of_an_unsettled_point_is_unsettled_not_a_failure() {
        let other = Switches {
            connect_when_connected: ConnectWhenConnected::InvalidState,
            ..Switches::default()
        };
        let mut e = Endpoint::new(other);
        e.create_hsm(0, "a", 0);
        e.send(
            1,
            "ConnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(200, "DescribeCustomKeyStores", json!({}));
        e.send(
            201,
            "ConnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        e.send(
            202,
            "DisconnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        let v = judge(&e.history);
        assert_eq!(rules(&v, Severity::Failure), Vec::<String>::new());
        // The states oracle names this unsettled point too: its finding is the one reported.
        assert_eq!(
            rules(&v, Severity::Unsettled),
            ["states/connect-when-connected"]
        );
        // Without the states oracle's explanation, the model's own reading is reported.
        fn unexplained(ctx: &Context<'_>, history: &History) -> Verdict {
            let mut own = Verdict::default();
            let exchanges: Vec<(usize, &Exchange)> = history.exchanges.iter().enumerate().collect();
            judge_sequence(ctx, &exchanges, &|_| None, &mut own);
            own
        }
        let own = judge_with(unexplained, &e.history);
        assert_eq!(
            rules(&own, Severity::Unsettled),
            ["agreement/ConnectCustomKeyStore"]
        );
        assert!(
            own.findings[0]
                .message
                .contains("--connect-when-connected invalid-state")
        );
        assert_eq!(
            own.findings[0].kind,
            "expected success, got 400 CustomKeyStoreInvalidStateException \
             (matches the reading --connect-when-connected invalid-state)"
        );
    }

    #[test]
    fn a_wrong_connection_outcome_is_caught() {
        let mut e = Endpoint::new(Switches::default());
        // Cluster 6 has no active HSM: connecting it must FAIL.
        let nohsm = e
            .fixtures
            .clusters
            .iter()
            .position(|c| c.active_hsms == 0)
            .unwrap();
        e.create_hsm(0, "a", nohsm);
        e.send(
            1,
            "ConnectCustomKeyStore",
            json!({"CustomKeyStoreId": "#0"}),
        );
        let i = e.send(200, "DescribeCustomKeyStores", json!({}));
        if let Outcome::Response { body, .. } = &mut e.history.exchanges[i].outcome {
            let entry = &mut body["CustomKeyStores"][0];
            entry["ConnectionState"] = json!("CONNECTED");
            entry.as_object_mut().unwrap().remove("ConnectionErrorCode");
        }
        let v = judge(&e.history);
        assert_eq!(
            rules(&v, Severity::Failure),
            ["agreement/DescribeCustomKeyStores"]
        );
        assert_eq!(
            v.findings[0].kind,
            "ConnectionState expected FAILED, got CONNECTED"
        );
    }

    #[test]
    fn an_unknown_outcome_stops_the_comparison_with_a_warning() {
        let mut e = Endpoint::new(Switches::default());
        e.create_hsm(0, "a", 0);
        e.history.exchanges[0].outcome = Outcome::Unknown {
            reason: "timed out".into(),
        };
        e.send(1, "DescribeCustomKeyStores", json!({}));
        let v = judge(&e.history);
        assert_eq!(rules(&v, Severity::Warning), ["agreement/indeterminate"]);
        assert_eq!(v.findings[0].kind, "expected an answer, got a timeout");
        assert_eq!(rules(&v, Severity::Failure), Vec::<String>::new());
    }

    #[test]
    fn field_kinds_name_the_member_but_no_value() {
        let w = json!({"Connectivity": "PUBLIC_ENDPOINT", "UriPath": "/a/kms/xks/v1"});
        let g = json!({"Connectivity": "VPC_ENDPOINT_SERVICE", "UriPath": "/a/kms/xks/v1"});
        assert_eq!(
            field_kind("XksProxyConfiguration", Some(&w), Some(&g)),
            "XksProxyConfiguration.Connectivity expected PUBLIC_ENDPOINT, got VPC_ENDPOINT_SERVICE"
        );
        let g = json!({"Connectivity": "PUBLIC_ENDPOINT", "UriPath": "/b/kms/xks/v1"});
        assert_eq!(
            field_kind("XksProxyConfiguration", Some(&w), Some(&g)),
            "XksProxyConfiguration.UriPath differs from the model"
        );
        assert_eq!(
            field_kind("ConnectionErrorCode", Some(&json!("NETWORK_ERRORS")), None),
            "ConnectionErrorCode expected present, got absent"
        );
        assert_eq!(
            field_kind(
                "ConnectionErrorCode",
                Some(&json!("NETWORK_ERRORS")),
                Some(&json!("INTERNAL_ERROR"))
            ),
            "ConnectionErrorCode expected NETWORK_ERRORS, got INTERNAL_ERROR"
        );
    }
}
