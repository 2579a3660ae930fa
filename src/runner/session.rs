//! A session runs generated steps against one endpoint and records every exchange: it resolves
//! store references, prefixes names, journals creates, rate-limits, retries throttling, waits
//! for transitions and cleans up what it created. It never judges.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngExt;
use serde_json::{Value, json};

use super::journal::{Entry, Journal};
use super::transitions::{self, Schedule};
use super::{CallError, KmsClient};
use crate::generate::{MARKER_REF, NAME_REF, STORE_REF, Step};
use crate::history::{
    Exchange, Expectation, History, Outcome, SECRET_TOKEN, mask_raw, mask_response, mask_secrets,
    secret_pairs, unmask_secret,
};
use crate::model::Fixtures;
use crate::spec::Spec;

/// An ID no endpoint issues, used for references to stores that were never created.
pub const UNKNOWN_STORE_ID: &str = "cks-00000000000000000";

/// Retries of throttled requests: capped exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub base: Duration,
    /// Largest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

/// What sessions on one endpoint share: the client, limits, journal and fixtures.
pub struct Endpoint {
    /// The signing client.
    pub client: KmsClient,
    /// The endpoint URL (for the journal and reproducers).
    pub url: String,
    /// Per-operation request rate limit, if any.
    pub rate: Option<DefaultKeyedRateLimiter<String>>,
    /// Throttling retries.
    pub retry: RetryPolicy,
    /// Where creates are journaled before they are sent.
    pub journal: Option<Arc<Journal>>,
    /// The backends, for masking secrets in the history.
    pub fixtures: Arc<Fixtures>,
    /// How long to wait for CONNECTING or DISCONNECTING to end.
    pub transition_timeout: Duration,
}

impl Endpoint {
    /// A rate limiter allowing `per_second` requests per second for each operation.
    pub fn rate_limiter(per_second: u32) -> Option<DefaultKeyedRateLimiter<String>> {
        NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n)))
    }
}

/// One sequence's run against an endpoint.
pub struct Session {
    endpoint: Arc<Endpoint>,
    prefix: String,
    sequence: u64,
    history: History,
    /// The ID each Create step got (None: it failed or its outcome is unknown).
    created: Vec<Option<String>>,
    /// Names sent in Creates whose outcome is unknown.
    maybe_created: Vec<String>,
    create_steps: usize,
    /// Create slots journaled whose answer has not come back yet.
    journaled: Vec<usize>,
    /// The secrets this session has sent, with their tokens, masked in every response.
    sent_secrets: std::sync::Mutex<Vec<(String, String)>>,
}

impl Session {
    /// A session for sequence number `sequence`, naming what it creates with `prefix`.
    pub fn new(endpoint: Arc<Endpoint>, prefix: &str, sequence: u64) -> Session {
        Session {
            endpoint,
            prefix: prefix.to_string(),
            sequence,
            history: History::default(),
            created: Vec::new(),
            maybe_created: Vec::new(),
            create_steps: 0,
            journaled: Vec::new(),
            sent_secrets: Default::default(),
        }
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The history, giving up the session.
    pub fn into_history(self) -> History {
        self.history
    }

    /// The IDs of the stores this session created, in order.
    pub fn created(&self) -> impl Iterator<Item = &str> {
        self.created.iter().flatten().map(String::as_str)
    }

    /// Runs the steps in order.
    pub async fn run(&mut self, steps: &[Step]) {
        for (i, step) in steps.iter().enumerate() {
            self.run_step(i as u32, step).await;
        }
    }

    async fn run_step(&mut self, index: u32, step: &Step) {
        match step {
            Step::Call {
                operation,
                body,
                expect,
            } => {
                let body = self.resolve(body);
                let Ok(slot) = self.before_create(operation, &body) else {
                    return;
                };
                let exchanges = self
                    .send(
                        index,
                        operation,
                        Payload::Json(body.clone()),
                        expect.clone(),
                    )
                    .await;
                self.after_create(slot, &body, exchanges.last());
                self.history.exchanges.extend(exchanges);
            }
            Step::Raw {
                operation,
                body,
                expect,
                wire,
            } => {
                let exchanges = self
                    .send(
                        index,
                        operation,
                        Payload::Raw(body.clone(), wire.clone()),
                        Some(expect.clone()),
                    )
                    .await;
                self.history.exchanges.extend(exchanges);
            }
            Step::Paginate { limit } => self.paginate(index, *limit).await,
            Step::Settle { store } => {
                if let Some(Some(id)) = self.created.get(*store).cloned() {
                    self.settle(index, &id).await;
                }
            }
            Step::Concurrent { steps } => {
                let mut prepared = Vec::new();
                for s in steps {
                    if let Step::Call {
                        operation,
                        body,
                        expect,
                    } = s
                    {
                        let body = self.resolve(body);
                        let Ok(slot) = self.before_create(operation, &body) else {
                            continue;
                        };
                        prepared.push((operation.clone(), body, expect.clone(), slot));
                    }
                }
                let this = &*self;
                let sends = prepared.iter().map(|(op, body, expect, _)| {
                    this.send(index, op, Payload::Json(body.clone()), expect.clone())
                });
                let results = futures::future::join_all(sends).await;
                for ((_, body, _, slot), exchanges) in prepared.iter().zip(results) {
                    self.after_create(*slot, body, exchanges.last());
                    self.history.exchanges.extend(exchanges);
                }
            }
        }
    }

    /// Replaces `$store:N`, `$name:` and `$marker` references in a body.
    fn resolve(&self, body: &Value) -> Value {
        match body {
            Value::String(s) => {
                if let Some(n) = s
                    .strip_prefix(STORE_REF)
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    let id = self.created.get(n).cloned().flatten();
                    Value::String(id.unwrap_or_else(|| UNKNOWN_STORE_ID.to_string()))
                } else if let Some(rest) = s.strip_prefix(NAME_REF) {
                    Value::String(format!("{}{rest}", self.prefix))
                } else if s == MARKER_REF {
                    let latest = self.history.exchanges.iter().rev().find_map(|e| {
                        e.body()["NextMarker"]
                            .as_str()
                            .filter(|_| e.status() == Some(200))
                    });
                    Value::String(latest.unwrap_or(MARKER_REF).to_string())
                } else if s.starts_with(SECRET_TOKEN) {
                    // A saved (masked) sequence: send the fixture secret the token names.
                    Value::String(unmask_secret(&self.endpoint.fixtures, s))
                } else {
                    body.clone()
                }
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.resolve(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect()),
            other => other.clone(),
        }
    }

    /// Reserves a handle for a Create step and journals its name; None for other operations.
    /// Err when the journal is sealed (the run is interrupted): the Create must not be sent.
    fn before_create(&mut self, operation: &str, body: &Value) -> Result<Option<usize>, ()> {
        if operation != "CreateCustomKeyStore" {
            return Ok(None);
        }
        let slot = self.create_steps;
        self.create_steps += 1;
        self.created.push(None);
        if let (Some(journal), Some(name)) =
            (&self.endpoint.journal, body["CustomKeyStoreName"].as_str())
        {
            let entry = Entry::Creating {
                endpoint: self.endpoint.url.clone(),
                region: Some(self.endpoint.client.region().to_string()),
                name: name.to_string(),
            };
            match journal.record(&entry) {
                Ok(()) => self.journaled.push(slot),
                // Interrupted: the run's cleanup has begun; this Create is not sent.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(()),
                Err(e) => eprintln!(
                    "ckscheck: cannot write the journal {}: {e}",
                    journal.path().display()
                ),
            }
        }
        Ok(Some(slot))
    }

    fn after_create(&mut self, slot: Option<usize>, body: &Value, last: Option<&Exchange>) {
        if let (Some(slot), Some(journal)) = (slot, &self.endpoint.journal)
            && let Some(at) = self.journaled.iter().position(|s| *s == slot)
        {
            self.journaled.swap_remove(at);
            journal.answered();
        }
        let (Some(slot), Some(last)) = (slot, last) else {
            return;
        };
        let name = body["CustomKeyStoreName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if last.is_unknown() {
            if !self.maybe_created.contains(&name) {
                self.maybe_created.push(name);
            }
            return;
        }
        // A client error created nothing: unless an earlier Create of this session holds the
        // name, the journal need not look for it (a name refused as invalid could not even be
        // looked up). A name refused as in use says a store of that name exists (one whose
        // Create answer was lost, in this session or another): its journal line stays open.
        let refused = last.status().is_some_and(|s| (400..500).contains(&s));
        let in_use = last.error_name().as_deref() == Some("CustomKeyStoreNameInUseException");
        if refused
            && !in_use
            && !self.maybe_created.contains(&name)
            && !self.history.exchanges.iter().any(|e| {
                e.operation == "CreateCustomKeyStore"
                    && e.request["CustomKeyStoreName"] == name.as_str()
                    && (e.status() == Some(200) || e.is_unknown())
            })
            && let Some(journal) = &self.endpoint.journal
        {
            let _ = journal.record(&Entry::Gone {
                endpoint: self.endpoint.url.clone(),
                region: Some(self.endpoint.client.region().to_string()),
                name: name.clone(),
            });
        }
        let id = last.body()["CustomKeyStoreId"]
            .as_str()
            .filter(|_| last.status() == Some(200));
        if id.is_none() && !refused {
            // An answer that names no store but refuses nothing (a 200 whose body is cut short
            // or not JSON, a 5xx) may still have created one: cleanup looks it up by name, and
            // the journal keeps its `creating` line open for `ckscheck cleanup`.
            if !self.maybe_created.contains(&name) {
                self.maybe_created.push(name.clone());
            }
            return;
        }
        if let Some(id) = id {
            self.created[slot] = Some(id.to_string());
            if let Some(journal) = &self.endpoint.journal {
                let entry = Entry::Created {
                    endpoint: self.endpoint.url.clone(),
                    region: Some(self.endpoint.client.region().to_string()),
                    name,
                    id: id.to_string(),
                };
                let _ = journal.record(&entry);
            }
        }
    }

    /// Sends one request, retrying throttling; returns every attempt as an exchange.
    async fn send(
        &self,
        step: u32,
        operation: &str,
        payload: Payload,
        expect: Option<Expectation>,
    ) -> Vec<Exchange> {
        let spec = Spec::kms();
        let request = match &payload {
            Payload::Json(body) => {
                let masked = mask_secrets(spec, &self.endpoint.fixtures, operation, body);
                let mut sent = self.sent_secrets.lock().expect("not poisoned");
                secret_pairs(body, &masked, &mut sent);
                masked
            }
            Payload::Raw(text, _) => {
                Value::String(mask_raw(spec, &self.endpoint.fixtures, operation, text))
            }
        };
        let retry = &self.endpoint.retry;
        let mut exchanges = Vec::new();
        for attempt in 1..=retry.max_attempts.max(1) {
            if let Some(rate) = &self.endpoint.rate {
                rate.until_key_ready(&operation.to_string()).await;
            }
            let started = Instant::now();
            let started_ms = epoch_ms();
            let result = match &payload {
                Payload::Json(body) => self.endpoint.client.call(operation, body).await,
                Payload::Raw(text, wire) => {
                    self.endpoint
                        .client
                        .call_raw(operation, text.clone().into_bytes(), wire.as_ref())
                        .await
                }
            };
            let outcome = match result {
                Ok(reply) => {
                    let sent = self.sent_secrets.lock().expect("not poisoned");
                    mask_response(
                        &self.endpoint.fixtures,
                        &sent,
                        &request,
                        reply.into_outcome(),
                    )
                }
                Err(CallError::Unknown(reason)) | Err(CallError::NotSent(reason)) => {
                    Outcome::Unknown { reason }
                }
            };
            let exchange = Exchange {
                sequence: self.sequence,
                step,
                attempt,
                operation: operation.to_string(),
                request: request.clone(),
                raw: matches!(payload, Payload::Raw(..)),
                started_ms,
                elapsed_ms: started.elapsed().as_millis() as u64,
                outcome,
                expect: expect.clone(),
                wire: match &payload {
                    Payload::Raw(_, wire) => wire.clone(),
                    Payload::Json(_) => None,
                },
            };
            let throttled = exchange.error_name().as_deref() == Some("ThrottlingException");
            exchanges.push(exchange);
            if !throttled || attempt == retry.max_attempts {
                break;
            }
            tokio::time::sleep(backoff(retry, attempt)).await;
        }
        exchanges
    }

    /// Polls Describe for one store until it is neither CONNECTING nor DISCONNECTING, or the
    /// transition timeout passes, pausing as the endpoint's earlier transitions suggest (see
    /// [`transitions`]). Every poll is recorded.
    async fn settle(&mut self, step: u32, id: &str) {
        let started = Instant::now();
        let deadline = started + self.endpoint.transition_timeout;
        let mut schedule = Schedule::new(transitions::learned(&self.endpoint.url));
        loop {
            let body = json!({ "CustomKeyStoreId": id });
            let exchanges = self
                .send(step, "DescribeCustomKeyStores", Payload::Json(body), None)
                .await;
            let state = exchanges
                .last()
                .and_then(|e| e.body()["CustomKeyStores"][0]["ConnectionState"].as_str())
                .map(str::to_string);
            self.history.exchanges.extend(exchanges);
            let transitional = matches!(state.as_deref(), Some("CONNECTING" | "DISCONNECTING"));
            if transitional {
                transitions::observe(&self.endpoint.url, started.elapsed());
            }
            if !transitional || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(schedule.pause()).await;
        }
    }

    /// Follows NextMarker from the first page until no marker comes back, a marker comes back
    /// a second time (the listing cycles), or 1100 pages.
    async fn paginate(&mut self, step: u32, limit: Option<u32>) {
        let mut marker: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1100 {
            let mut body = serde_json::Map::new();
            if let Some(l) = limit {
                body.insert("Limit".into(), json!(l));
            }
            if let Some(m) = &marker {
                body.insert("Marker".into(), json!(m));
            }
            let exchanges = self
                .send(
                    step,
                    "DescribeCustomKeyStores",
                    Payload::Json(Value::Object(body)),
                    None,
                )
                .await;
            marker = exchanges
                .last()
                .filter(|e| e.status() == Some(200))
                .and_then(|e| e.body()["NextMarker"].as_str())
                .map(str::to_string);
            self.history.exchanges.extend(exchanges);
            match &marker {
                Some(m) if seen.insert(m.clone()) => {}
                _ => return,
            }
        }
    }

    /// Disconnects and deletes every store this session created (or may have created).
    /// Returns the IDs it could not delete, with the reason.
    pub async fn cleanup(&mut self) -> Vec<(String, String)> {
        // Each store with the name it was created under, when known.
        let mut ids: Vec<(String, Option<String>)> = self
            .created
            .iter()
            .flatten()
            .map(|id| (id.clone(), None))
            .collect();
        for name in std::mem::take(&mut self.maybe_created) {
            let reply = self
                .endpoint
                .client
                .call(
                    "DescribeCustomKeyStores",
                    &json!({ "CustomKeyStoreName": name }),
                )
                .await;
            if let Ok(r) = reply
                && let Some(id) = r.body["CustomKeyStores"][0]["CustomKeyStoreId"].as_str()
                && !ids.iter().any(|(known, _)| known == id)
            {
                ids.push((id.to_string(), Some(name)));
            }
        }
        let mut leftovers = Vec::new();
        for (id, name) in ids {
            if let Err(why) = remove_store(&self.endpoint, &id).await {
                leftovers.push((id, why));
            } else if let Some(journal) = &self.endpoint.journal {
                let name = name.or_else(|| {
                    self.history.exchanges.iter().find_map(|e| {
                        (e.operation == "CreateCustomKeyStore"
                            && e.body()["CustomKeyStoreId"] == id.as_str())
                        .then(|| e.request["CustomKeyStoreName"].as_str().map(str::to_string))
                        .flatten()
                    })
                });
                if let Some(name) = name {
                    let _ = journal.record(&Entry::Gone {
                        endpoint: self.endpoint.url.clone(),
                        region: Some(self.endpoint.client.region().to_string()),
                        name,
                    });
                }
            }
        }
        leftovers
    }
}

/// Removes a journaled store: by its ID when known, else found by its name. Absent counts as
/// removed. Returns the ID it removed, if there was one.
pub async fn remove_journaled(
    endpoint: &Endpoint,
    name: &str,
    id: Option<String>,
) -> Result<Option<String>, String> {
    let id = match id {
        Some(id) => Some(id),
        None => {
            // Only an answer that the name is unknown counts as absent: an unreachable or
            // failing endpoint says nothing about the store.
            let r = endpoint
                .client
                .call(
                    "DescribeCustomKeyStores",
                    &json!({ "CustomKeyStoreName": name }),
                )
                .await
                .map_err(|e| format!("cannot look it up by name: {e}"))?;
            let unknown = r
                .error_name()
                .is_some_and(|n| n.ends_with("NotFoundException"));
            if r.status != 200 && !unknown {
                return Err(format!(
                    "cannot look it up by name: DescribeCustomKeyStores answered {} {}",
                    r.status,
                    r.error_name().unwrap_or_default()
                ));
            }
            r.body["CustomKeyStores"][0]["CustomKeyStoreId"]
                .as_str()
                .map(str::to_string)
        }
    };
    if let Some(id) = &id {
        remove_store(endpoint, id)
            .await
            .map_err(|why| format!("store {id}: {why}"))?;
    }
    Ok(id)
}

/// Disconnects (if needed), waits, and deletes one store. Absent counts as removed.
pub async fn remove_store(endpoint: &Endpoint, id: &str) -> Result<(), String> {
    let client = &endpoint.client;
    let body = json!({ "CustomKeyStoreId": id });
    let deadline = Instant::now() + endpoint.transition_timeout;
    let mut pause = Duration::from_millis(5);
    // Cleanup judges nothing: any "not found" error counts as gone, and a state in the wrong
    // case still says what it is.
    let gone = |e: &Option<String>| {
        e.as_deref()
            .is_some_and(|n| n.ends_with("NotFoundException"))
    };
    loop {
        let r = client
            .call("DescribeCustomKeyStores", &body)
            .await
            .map_err(|e| e.to_string())?;
        let error = r.error_name();
        if gone(&error) {
            return Ok(());
        }
        let state = r.body["CustomKeyStores"][0]["ConnectionState"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if error.as_deref() != Some("ThrottlingException") {
            let busy = ["CONNECTED", "FAILED", "CONNECTING", "DISCONNECTING"];
            // DISCONNECTED, or a state it cannot read: Delete is tried.
            let refused = if busy.contains(&state.as_str()) {
                None
            } else {
                let d = client
                    .call("DeleteCustomKeyStore", &body)
                    .await
                    .map_err(|e| e.to_string())?;
                let d_error = d.error_name();
                if d.status == 200 || gone(&d_error) {
                    return Ok(());
                }
                Some((d.status, d_error.unwrap_or_default()))
            };
            match refused {
                Some((_, e)) if e == "CustomKeyStoreHasCMKsException" => {
                    return Err("it still holds KMS keys (schedule their deletion first)".into());
                }
                // The endpoint will not say what state the store is in: no waiting.
                Some((status, e)) if r.status != 200 => {
                    return Err(format!(
                        "cannot tell its state: DescribeCustomKeyStores answered {} {}, Delete {status} {e}",
                        r.status,
                        error.unwrap_or_default(),
                    ));
                }
                Some(_) if state == "DISCONNECTED" => {}
                None if state == "DISCONNECTING" => {}
                _ => {
                    let _ = client.call("DisconnectCustomKeyStore", &body).await;
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("still {state} after the transition timeout"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

enum Payload {
    Json(Value),
    Raw(String, Option<crate::history::Wire>),
}

/// Full-jitter backoff: a random pause up to min(cap, base * 2^(attempt-1)).
fn backoff(retry: &RetryPolicy, attempt: u32) -> Duration {
    let ceiling = retry
        .base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(retry.cap);
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_grows() {
        let p = RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(800),
        };
        for _ in 0..200 {
            assert!(backoff(&p, 1) <= Duration::from_millis(100));
            assert!(backoff(&p, 3) <= Duration::from_millis(400));
            assert!(backoff(&p, 30) <= Duration::from_millis(800));
        }
    }
}
