//! A scenario's transcript: for each step the operation, the request (secrets masked), the
//! status and request ID, and the error or the response body. It is built from the history
//! before any normalisation (except that an empty 200 body is shown as `{}`, which the API
//! allows in its place); [`super::normalise`] makes it comparable across endpoints.

use serde::Serialize;
use serde_json::Value;

use crate::generate::Step;
use crate::history::{History, Outcome};

/// The transcript of one scenario run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// One entry per step, in order.
    pub steps: Vec<Entry>,
}

/// What one step sent and got back (the last attempt of a retried step; the last poll of a
/// settle step).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Operation name.
    pub op: String,
    /// The JSON request body, secrets masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// The step (1-based) whose NextMarker this request's Marker is: the pages of one walk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker_from: Option<usize>,
    /// The raw request text, for steps that send no JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_request: Option<String>,
    /// The protocol headers sent otherwise than awsJson1_1 asks, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<String>,
    /// Why nothing was sent (a settle step whose store was never created).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_sent: Option<String>,
    /// Why no answer came (timeout, reset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<String>,
    /// HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `x-amzn-RequestId` header; null when a response lacks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Value>,
    /// The error name, for an error response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error message (normalised to `[message]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Value>,
    /// The error message, kept as it is because the scenario pins it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_message: Option<Value>,
    /// The response body of a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// A response body that is not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Entry {
    /// An entry for `op` with nothing recorded yet.
    pub fn new(op: &str) -> Entry {
        Entry {
            op: op.to_string(),
            request: None,
            marker_from: None,
            raw_request: None,
            wire: None,
            not_sent: None,
            no_answer: None,
            status: None,
            request_id: None,
            error: None,
            message: None,
            pinned_message: None,
            response: None,
            text: None,
        }
    }
}

/// The transcript of `steps` from their history; `pinned[i]` keeps step i's error message.
pub fn transcript(steps: &[Step], pinned: &[bool], history: &History) -> Transcript {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let last = history
            .exchanges
            .iter()
            .rev()
            .find(|e| e.step as usize == i);
        let Some(exchange) = last else {
            let mut entry = Entry::new(&step_operation(step));
            entry.not_sent = Some(match step {
                Step::Settle { store } => format!("store {store} was not created"),
                _ => "no request was sent".into(),
            });
            out.push(entry);
            continue;
        };
        let mut entry = Entry::new(&exchange.operation);
        if let Some(marker) = exchange.request["Marker"].as_str() {
            let issued_by = |e: &Entry| {
                e.response
                    .as_ref()
                    .is_some_and(|r| r["NextMarker"].as_str() == Some(marker))
            };
            entry.marker_from = out.iter().rposition(issued_by).map(|i| i + 1);
        }
        entry.wire = exchange.wire.as_ref().map(|w| w.describe());
        if exchange.raw {
            entry.raw_request = exchange.request.as_str().map(str::to_string);
        } else {
            entry.request = Some(exchange.request.clone());
        }
        match &exchange.outcome {
            Outcome::Unknown { reason } => entry.no_answer = Some(reason.clone()),
            Outcome::Response {
                status,
                request_id,
                body,
                text,
                ..
            } => {
                entry.status = Some(*status);
                entry.request_id = Some(request_id.clone().map_or(Value::Null, Value::String));
                // An empty 200 body is as good as `{}` (the API allows both).
                let empty = text.as_deref().is_some_and(|t| t.trim().is_empty());
                if *status == 200 && body.is_null() && empty {
                    entry.response = Some(Value::Object(Default::default()));
                } else {
                    entry.text = text.clone();
                }
                match exchange.error_name() {
                    Some(name) => {
                        entry.error = Some(name);
                        let message = body.get("message").or_else(|| body.get("Message"));
                        if pinned.get(i).copied().unwrap_or(false) {
                            entry.pinned_message = message.cloned();
                        } else {
                            entry.message = message.cloned();
                        }
                    }
                    None if !body.is_null() => entry.response = Some(body.clone()),
                    None => {}
                }
            }
        }
        out.push(entry);
    }
    Transcript { steps: out }
}

fn step_operation(step: &Step) -> String {
    match step {
        Step::Call { operation, .. } | Step::Raw { operation, .. } => operation.clone(),
        Step::Settle { .. } | Step::Paginate { .. } => "DescribeCustomKeyStores".into(),
        Step::Concurrent { .. } => "concurrent".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Exchange;
    use serde_json::json;

    fn exchange(step: u32, attempt: u32, status: u16, body: Value) -> Exchange {
        Exchange {
            sequence: 0,
            step,
            attempt,
            operation: "CreateCustomKeyStore".into(),
            request: json!({"CustomKeyStoreName": "n"}),
            raw: false,
            wire: None,
            started_ms: 0,
            elapsed_ms: 0,
            outcome: Outcome::Response {
                status,
                request_id: (attempt == 2).then(|| "rid".to_string()),
                content_type: None,
                error_type: None,
                body,
                text: None,
            },
            expect: None,
        }
    }

    #[test]
    fn one_entry_per_step_from_its_last_exchange() {
        let steps = vec![
            Step::Call {
                operation: "CreateCustomKeyStore".into(),
                body: json!({}),
                expect: None,
            },
            Step::Settle { store: 3 },
        ];
        let history = History {
            exchanges: vec![
                exchange(0, 1, 400, json!({"__type": "ThrottlingException"})),
                exchange(0, 2, 200, json!({"CustomKeyStoreId": "cks-1"})),
            ],
        };
        let t = transcript(&steps, &[false, false], &history);
        assert_eq!(t.steps.len(), 2);
        assert_eq!(t.steps[0].status, Some(200));
        assert_eq!(t.steps[0].request_id, Some(json!("rid")));
        assert_eq!(
            t.steps[0].response,
            Some(json!({"CustomKeyStoreId": "cks-1"}))
        );
        assert_eq!(t.steps[1].op, "DescribeCustomKeyStores");
        assert_eq!(
            t.steps[1].not_sent.as_deref(),
            Some("store 3 was not created")
        );
    }

    #[test]
    fn an_empty_success_body_is_shown_as_an_empty_object_and_other_text_as_text() {
        let steps = vec![Step::Call {
            operation: "ConnectCustomKeyStore".into(),
            body: json!({}),
            expect: None,
        }];
        let with_text = |status: u16, text: &str| History {
            exchanges: vec![Exchange {
                outcome: Outcome::Response {
                    status,
                    request_id: None,
                    content_type: None,
                    error_type: None,
                    body: Value::Null,
                    text: Some(text.into()),
                },
                ..exchange(0, 1, 200, json!({}))
            }],
        };
        let t = transcript(&steps, &[false], &with_text(200, ""));
        assert_eq!(t.steps[0].response, Some(json!({})));
        assert_eq!(t.steps[0].text, None);
        let t = transcript(&steps, &[false], &with_text(200, "<html>ok</html>"));
        assert_eq!(t.steps[0].response, None);
        assert_eq!(t.steps[0].text.as_deref(), Some("<html>ok</html>"));
    }

    #[test]
    fn errors_keep_name_and_message_and_a_missing_request_id_shows_as_null() {
        let steps = vec![Step::Call {
            operation: "CreateCustomKeyStore".into(),
            body: json!({}),
            expect: None,
        }];
        let history = History {
            exchanges: vec![exchange(
                0,
                1,
                400,
                json!({"__type": "com.amazonaws.kms#CustomKeyStoreNameInUseException", "Message": "taken"}),
            )],
        };
        let t = transcript(&steps, &[false], &history);
        let e = &t.steps[0];
        assert_eq!(e.error.as_deref(), Some("CustomKeyStoreNameInUseException"));
        assert_eq!(e.message, Some(json!("taken")));
        assert_eq!(e.request_id, Some(Value::Null));
        assert_eq!(e.response, None);
        let pinned = transcript(&steps, &[true], &history);
        assert_eq!(pinned.steps[0].pinned_message, Some(json!("taken")));
        assert_eq!(pinned.steps[0].message, None);
    }
}
