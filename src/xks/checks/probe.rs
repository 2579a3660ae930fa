//! A case's recorder: sends requests, keeps every exchange, and turns what came back into
//! findings with the weight the spec gives the rule (MUST fails, SHOULD warns).

use serde_json::Value;

use super::Ctx;
use super::shape::{problem_kinds, problems};
use crate::oracle::{Severity, Verdict};
use crate::spec::Level;
use crate::xks::client::{RawRequest, SendError, XksReply};

/// One request and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The XKS operation.
    pub operation: String,
    /// What the request is, in words (e.g. `Encrypt, plaintext 4300 bytes`).
    pub what: String,
    /// The request as sent.
    pub request: RawRequest,
    /// The answer, or why there was none.
    pub reply: Result<XksReply, SendError>,
}

impl Exchange {
    /// `200`, `400 ValidationException`, or the transport failure, in a few words.
    pub fn outcome(&self) -> String {
        match &self.reply {
            Ok(r) => match r.error_name() {
                Some(name) => format!("{} {name}", r.status),
                None if r.body.is_null() && !r.text.is_empty() => {
                    format!("{} (not JSON)", r.status)
                }
                None => r.status.to_string(),
            },
            Err(e) => e.to_string(),
        }
    }

    /// The outcome as a finding kind reads it: `200`, `400 ValidationException`, `500 (not
    /// JSON)`, or what went wrong without an address or duration (`a timeout`).
    pub fn outcome_kind(&self) -> String {
        reply_kind(&self.reply)
    }
}

/// A reply as a finding kind reads it (see [`Exchange::outcome_kind`]).
pub fn reply_kind(reply: &Result<XksReply, SendError>) -> String {
    match reply {
        Ok(r) => match r.error_name() {
            Some(name) => format!("{} {name}", r.status),
            None if r.body.is_null() && !r.text.is_empty() => format!("{} (not JSON)", r.status),
            None => r.status.to_string(),
        },
        Err(e) => e.kind().to_string(),
    }
}

/// `CASE: KIND`, or `KIND` when there is no case label.
pub fn labelled(case: &str, kind: &str) -> String {
    if case.is_empty() {
        kind.to_string()
    } else {
        format!("{case}: {kind}")
    }
}

/// Records one case.
pub struct Probe<'a> {
    /// The run's context.
    pub ctx: &'a Ctx,
    /// The findings of this case.
    pub verdict: Verdict,
    /// Every exchange, in order.
    pub exchanges: Vec<Exchange>,
}

impl<'a> Probe<'a> {
    /// An empty record.
    pub fn new(ctx: &'a Ctx) -> Probe<'a> {
        Probe {
            ctx,
            verdict: Verdict::default(),
            exchanges: Vec::new(),
        }
    }

    /// Sends `request` and records the exchange; returns its index.
    pub fn send(&mut self, operation: &str, what: impl Into<String>, request: RawRequest) -> usize {
        let reply = self.ctx.block_on(self.ctx.send(&request));
        self.verdict.judged(operation);
        self.exchanges.push(Exchange {
            operation: operation.into(),
            what: what.into(),
            request,
            reply,
        });
        self.exchanges.len() - 1
    }

    /// A correctly signed request for `operation` (on `key`) with `body`.
    pub fn request(&self, operation: &str, key: Option<&str>, body: &Value) -> RawRequest {
        self.ctx.client.request(operation, key, body)
    }

    /// Records a finding against requirement `rule`, weighed by the spec's level for it;
    /// `kind` says what was expected and what came back with no key ID or random value.
    pub fn find(
        &mut self,
        operation: &str,
        rule: &str,
        kind: impl Into<String>,
        message: impl Into<String>,
        at: Option<usize>,
    ) {
        let r = self.ctx.spec.requirement(rule);
        let message = message.into();
        // A SHOULD warns (fails under --strict); an inferred rule says so in its message.
        let (severity, message) = match (r.level, r.inferred) {
            (Level::Must, false) => (Severity::Failure, message),
            (Level::Must, true) => (Severity::Failure, format!("(inferred) {message}")),
            (Level::Should, false) => (Severity::Unsettled, format!("(SHOULD) {message}")),
            (Level::Should, true) => (Severity::Unsettled, format!("(SHOULD, inferred) {message}")),
        };
        self.verdict
            .find(severity, operation, rule, kind, message, at);
    }

    /// Sends a request that must succeed with a body of `shape`; returns the body when it did.
    /// `case` labels the finding's kind and holds no key ID or random value (`""`: none).
    pub fn expect_ok(
        &mut self,
        operation: &str,
        rule: &str,
        case: &str,
        what: impl Into<String>,
        request: RawRequest,
        shape: &str,
    ) -> Option<Value> {
        let what = what.into();
        let i = self.send(operation, what.clone(), request);
        let ex = &self.exchanges[i];
        let reply = match &ex.reply {
            Ok(r) if r.status == 200 => r.clone(),
            _ => {
                self.not_200(i, operation, rule, case, &what);
                return None;
            }
        };
        let found = problems(self.ctx.spec, shape, &reply.body);
        if !found.is_empty() {
            let list = found.join("; ");
            let kinds = problem_kinds(self.ctx.spec, shape, &reply.body).join("; ");
            self.find(
                operation,
                rule,
                labelled(case, &format!("breaks {shape}: {kinds}")),
                format!("{what}: the answer breaks {shape}: {list}"),
                Some(i),
            );
            return None;
        }
        Some(reply.body)
    }

    /// Sends a request that must succeed, for a check that needs only that: a 200 with a JSON
    /// object, whose values are judged by the check they belong to (`xks-metadata`,
    /// `xks-round-trip`, ...), not here. Returns the body when it came. `case` as for
    /// [`Probe::expect_ok`].
    pub fn expect_200(
        &mut self,
        operation: &str,
        rule: &str,
        case: &str,
        what: impl Into<String>,
        request: RawRequest,
    ) -> Option<Value> {
        let what = what.into();
        let i = self.send(operation, what.clone(), request);
        let ex = &self.exchanges[i];
        if let Ok(r) = &ex.reply
            && r.status == 200
            && r.body.is_object()
        {
            return Some(r.body.clone());
        }
        if matches!(&ex.reply, Ok(r) if r.status == 200) {
            let kind = "expected 200 with a JSON object, got 200 without one";
            let message =
                format!("{what}: expected 200 with a JSON object, got a body that is not one");
            self.find(operation, rule, labelled(case, kind), message, Some(i));
        } else {
            self.not_200(i, operation, rule, case, &what);
        }
        None
    }

    /// The finding for exchange `i`, which should have been a 200 and was not.
    fn not_200(&mut self, i: usize, operation: &str, rule: &str, case: &str, what: &str) {
        let ex = &self.exchanges[i];
        let kind = labelled(case, &format!("expected 200, got {}", ex.outcome_kind()));
        let message = format!("{what}: expected 200, got {}", ex.outcome());
        self.find(operation, rule, kind, message, Some(i));
    }

    /// Sends a request that must fail with `error` (and its status); true when it did.
    /// `case` labels the finding's kind and holds no key ID or random value (`""`: none).
    pub fn expect_error(
        &mut self,
        operation: &str,
        rule: &str,
        case: &str,
        what: impl Into<String>,
        request: RawRequest,
        error: &str,
    ) -> bool {
        let what = what.into();
        let i = self.send(operation, what.clone(), request);
        self.judge_error(i, rule, case, &what, &[error])
    }

    /// Judges exchange `i` against one of the `allowed` errors; true when it matched. `case`
    /// labels the finding's kind (see [`Probe::expect_error`]).
    pub fn judge_error(
        &mut self,
        i: usize,
        rule: &str,
        case: &str,
        what: &str,
        allowed: &[&str],
    ) -> bool {
        let ex = &self.exchanges[i];
        let operation = ex.operation.clone();
        let spec = self.ctx.spec;
        let wanted = allowed
            .iter()
            .map(|e| format!("{} {e}", spec.error_status(e)))
            .collect::<Vec<_>>()
            .join(" or ");
        let kind = labelled(
            case,
            &format!("expected {wanted}, got {}", ex.outcome_kind()),
        );
        let Ok(reply) = ex.reply.clone() else {
            let got = ex.outcome();
            self.find(
                &operation,
                rule,
                kind,
                format!("{what}: expected {wanted}, got {got}"),
                Some(i),
            );
            return false;
        };
        let name = reply.error_name().map(str::to_string);
        let matched = name
            .as_deref()
            .filter(|n| allowed.contains(n) && reply.status == spec.error_status(n));
        if matched.is_none() {
            let got = ex.outcome();
            let extra = if reply.status == 200 {
                " (the request was accepted)"
            } else {
                ""
            };
            self.find(
                &operation,
                rule,
                kind,
                format!("{what}: expected {wanted}, got {got}{extra}"),
                Some(i),
            );
            return false;
        }
        self.judge_error_body(i, &reply, what);
        true
    }

    /// Holds an error answer to the error body rules: `errorName` a string, its status the
    /// spec's, `errorMessage` fewer than 512 printable ASCII characters.
    pub fn judge_error_body(&mut self, i: usize, reply: &XksReply, what: &str) {
        let operation = self.exchanges[i].operation.clone();
        let found = problems(self.ctx.spec, "ErrorBody", &reply.body);
        if !found.is_empty() {
            let list = found.join("; ");
            let kinds = problem_kinds(self.ctx.spec, "ErrorBody", &reply.body).join("; ");
            self.find(
                &operation,
                "errors/body",
                format!("breaks ErrorBody: {kinds}"),
                format!("{what}: the error body breaks ErrorBody: {list}"),
                Some(i),
            );
        }
        if let Some(name) = reply.error_name()
            && self.ctx.spec.errors.contains_key(name)
            && self.ctx.spec.error_status(name) != reply.status
        {
            let want = self.ctx.spec.error_status(name);
            self.find(
                &operation,
                "errors/body",
                format!("expected {want} {name}, got {} {name}", reply.status),
                format!(
                    "{what}: {name} came with HTTP {}, the spec gives it {want}",
                    reply.status
                ),
                Some(i),
            );
        }
    }

    /// Whether this case has a finding that fails the check.
    pub fn failed(&self) -> bool {
        self.verdict.failures(self.ctx.strict).next().is_some()
    }
}
