//! Replays generated steps through the reference model, as a session would run them against
//! an endpoint: `$store:N` becomes the ID the Nth create got, `$name:REST` a prefix + REST.
//! Generators use it to predict the state a sequence reaches; tests use it to check what the
//! steps provoke.

use serde_json::{Value, json};

use super::{GenContext, NAME_REF, STORE_REF, Step};
use crate::model::{Millis, Model, ModelConfig, Outcome, SeededIds, Store};

/// An ID the model never issues (it issues `cks-` and 17 hex digits).
pub(crate) const UNKNOWN_ID: &str = "cks-unknown-to-everyone";

/// The model's answer to one request of a replayed step.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Answer {
    /// The operation.
    pub operation: String,
    /// The resolved request body (null for raw bodies).
    pub body: Value,
    /// What the model answered.
    pub outcome: Outcome,
}

#[cfg_attr(not(test), allow(dead_code))]
impl Answer {
    /// The error name, if the answer is an error.
    pub fn error(&self) -> Option<&str> {
        self.outcome.as_ref().err().map(|e| e.name.as_str())
    }
}

/// A model with a clock, the references of one sequence, and a name prefix.
#[derive(Clone)]
pub(crate) struct Replay {
    model: Model,
    now: Millis,
    delay: u64,
    prefix: String,
    created: Vec<Option<String>>,
}

impl Replay {
    /// A fresh model with the context's quota and backends; CONNECTING and DISCONNECTING last
    /// `delay_ms` (a Settle step waits them out).
    pub fn new(ctx: &GenContext, delay_ms: u64) -> Replay {
        let config = ModelConfig {
            quota: ctx.quota,
            connect_delay_ms: delay_ms,
            ..ModelConfig::default()
        };
        Replay {
            model: Model::new(config, ctx.fixtures.clone(), Box::new(SeededIds::new(7))),
            now: 1_700_000_000_000,
            delay: delay_ms,
            prefix: "p".repeat(ctx.name_prefix_len),
            created: Vec::new(),
        }
    }

    /// The name prefix `$name:` stands for.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The ID each create step got so far (None: it failed).
    pub fn created(&self) -> &[Option<String>] {
        &self.created
    }

    /// The model's stores now.
    pub fn stores(&mut self) -> Vec<Store> {
        self.model.stores(self.now)
    }

    /// The IDs of the stores that hold keys.
    pub fn stores_with_keys(&self) -> Vec<String> {
        self.model
            .keys()
            .iter()
            .filter_map(|k| k.custom_key_store_id.clone())
            .collect()
    }

    /// Runs one step and returns the model's answers, in order.
    pub fn run(&mut self, step: &Step) -> Vec<Answer> {
        match step {
            Step::Call {
                operation, body, ..
            } => vec![self.call(operation, body)],
            Step::Raw {
                operation,
                body,
                wire,
                ..
            } => {
                self.now += 1;
                // The model never sees headers: a request without X-Amz-Target or with another
                // Content-Type names no operation, and is answered as the emulator answers it.
                let outcome = match wire {
                    Some(_) => Err(crate::model::KmsError {
                        name: super::protocol::UNKNOWN_OPERATION.into(),
                        message: "no awsJson1_1 operation".into(),
                    }),
                    None => self.model.apply(self.now, operation, body.as_bytes()),
                };
                vec![Answer {
                    operation: operation.clone(),
                    body: Value::Null,
                    outcome,
                }]
            }
            Step::Settle { .. } => {
                self.now += self.delay + 1;
                Vec::new()
            }
            Step::Paginate { limit } => {
                let mut answers = Vec::new();
                let mut marker: Option<String> = None;
                for _ in 0..1100 {
                    let mut body = json!({});
                    if let Some(l) = limit {
                        body["Limit"] = json!(l);
                    }
                    if let Some(m) = &marker {
                        body["Marker"] = json!(m);
                    }
                    let answer = self.call("DescribeCustomKeyStores", &body);
                    marker = answer
                        .outcome
                        .as_ref()
                        .ok()
                        .and_then(|b| b["NextMarker"].as_str())
                        .map(str::to_string);
                    answers.push(answer);
                    if marker.is_none() {
                        break;
                    }
                }
                answers
            }
            Step::Concurrent { steps } => steps.iter().flat_map(|s| self.run(s)).collect(),
        }
    }

    fn call(&mut self, operation: &str, body: &Value) -> Answer {
        let body = self.resolve(body);
        self.now += 1;
        let text = serde_json::to_vec(&body).expect("JSON values serialise");
        let outcome = self.model.apply(self.now, operation, &text);
        if operation == "CreateCustomKeyStore" {
            let id = outcome
                .as_ref()
                .ok()
                .and_then(|b| b["CustomKeyStoreId"].as_str())
                .map(str::to_string);
            self.created.push(id);
        }
        Answer {
            operation: operation.to_string(),
            body,
            outcome,
        }
    }

    /// Replaces `$store:N` and `$name:REST` references, as a session does.
    pub fn resolve(&self, body: &Value) -> Value {
        match body {
            Value::String(s) => {
                if let Some(n) = s
                    .strip_prefix(STORE_REF)
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    let id = self.created.get(n).cloned().flatten();
                    Value::String(id.unwrap_or_else(|| UNKNOWN_ID.to_string()))
                } else if let Some(rest) = s.strip_prefix(NAME_REF) {
                    Value::String(format!("{}{rest}", self.prefix))
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
}
