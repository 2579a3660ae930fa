//! Error answers and the wire format of every answer: statuses by error class, declared error
//! names, parseable and bare `__type`s, messages, request IDs, JSON success bodies.

use serde_json::Value;

use super::common::{
    CONNECT, DELETE, DISCONNECT, UPDATE, expected_got, json_type, no_answer_kind, redact, redacted,
    snippet,
};
use super::{Context, Severity, Verdict};
use crate::history::{History, Outcome};

/// What the check enforces, in one line.
pub const EXPLAIN_ERRORS: &str = "every error answers 400 for client errors and 500 for faults \
     with a parseable name the operation declares (or a framework error); successes are JSON \
     of the awsJson1_1 content type; every request gets an answer and a request ID";

/// Operations whose success body may be empty.
const EMPTY_OK: [&str; 4] = [CONNECT, DISCONNECT, UPDATE, DELETE];

/// Checks statuses, error names and the wire format of every answer.
pub fn errors(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    let json_media = ctx.spec.service.content_type.as_str();
    for (i, e) in history.exchanges.iter().enumerate() {
        // A made-up operation name has no row (see `Exchange::row_operation`).
        let op = e.row_operation();
        if op != crate::history::NO_OPERATION {
            verdict.judged(op);
        }
        let (status, request_id, content_type, body, text) = match &e.outcome {
            Outcome::Unknown { reason } => {
                verdict.fail(
                    op,
                    "errors/no-answer",
                    format!("expected an answer, got {}", no_answer_kind(reason)),
                    format!(
                        "expected an answer, got {}: {}",
                        no_answer_kind(reason),
                        redact(ctx, reason)
                    ),
                    Some(i),
                );
                continue;
            }
            Outcome::Response {
                status,
                request_id,
                content_type,
                body,
                text,
                ..
            } => (*status, request_id, content_type, body, text),
        };
        if request_id.as_deref().is_none_or(str::is_empty) {
            // KMS puts x-amzn-RequestId on every response; support cases and SDK errors cite it.
            verdict.fail(
                op,
                "errors/request-id",
                if (200..300).contains(&status) {
                    "missing on a success"
                } else {
                    "missing on an error"
                },
                format!("expected an x-amzn-RequestId header, got none (HTTP {status})"),
                Some(i),
            );
        }
        let ct = content_type.as_deref().unwrap_or("no content type");
        if (200..300).contains(&status) {
            let empty = body.is_null() && text.as_deref().is_none_or(|t| t.trim().is_empty());
            if empty && EMPTY_OK.contains(&op) {
                continue;
            }
            let media = ct.split(';').next().unwrap_or_default().trim();
            if !body.is_object() {
                let (got, kind) = match text.as_deref().filter(|t| !t.trim().is_empty()) {
                    Some(t) if body.is_null() => (
                        format!("{ct} text {:?}", snippet(&redact(ctx, t), 60)),
                        format!("{} text", media_or_none(media)),
                    ),
                    _ if empty => ("an empty body".to_string(), "an empty body".to_string()),
                    _ => (
                        format!("JSON {}", snippet(&body.to_string(), 40)),
                        format!("a JSON {}", json_type(body)),
                    ),
                };
                verdict.fail(
                    op,
                    "errors/content-type",
                    format!("expected a JSON object body, got {kind}"),
                    format!(
                        "HTTP {status}: expected a JSON object body, got {}",
                        redact(ctx, &got)
                    ),
                    Some(i),
                );
            } else if !media.eq_ignore_ascii_case(json_media) {
                verdict.fail(
                    op,
                    "errors/content-type",
                    format!(
                        "expected content type {json_media}, got {}",
                        media_or_none(media)
                    ),
                    format!("HTTP {status}: expected content type {json_media}, got {ct}"),
                    Some(i),
                );
            }
            continue;
        }
        if status < 300 {
            continue;
        }
        let Some(name) = e.error_name() else {
            let what = match text.as_deref().filter(|t| !t.trim().is_empty()) {
                Some(t) if body.is_null() => format!(
                    "operation apparently not implemented: {:?}",
                    snippet(&redact(ctx, t), 80)
                ),
                _ if body.is_object() => {
                    let keys: Vec<&str> = body
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(String::as_str)
                        .collect();
                    format!(
                        "JSON body without __type or code (members: {})",
                        keys.join(", ")
                    )
                }
                _ => "empty body, no X-Amzn-ErrorType".to_string(),
            };
            verdict.fail(
                op,
                "errors/unparseable",
                expected_got("an error name", e),
                format!("{op}: HTTP {status} {ct}, {what}"),
                Some(i),
            );
            continue;
        };
        match ctx.spec.errors.get(&name) {
            Some(def) if def.class.status() != status => verdict.fail(
                op,
                "errors/status",
                expected_got(&format!("{} {name}", def.class.status()), e),
                format!(
                    "{name}: expected HTTP {} ({:?} error), got HTTP {status}",
                    def.class.status(),
                    def.class
                ),
                Some(i),
            ),
            None if !(400..600).contains(&status) => verdict.fail(
                op,
                "errors/status",
                expected_got("a 4xx or 5xx status", e),
                format!(
                    "{name} (not in the spec): expected a 4xx or 5xx status, got HTTP {status}"
                ),
                Some(i),
            ),
            _ => {}
        }
        if !ctx.spec.may_return(op, &name) {
            verdict.fail(
                op,
                "errors/declared",
                format!("expected a declared error, got {}", snippet(&name, 80)),
                format!(
                    "expected an error {op} declares or a framework error, got {}",
                    snippet(&name, 80)
                ),
                Some(i),
            );
        }
        if let Some(raw) = body.get("__type").and_then(Value::as_str)
            && (raw.contains('#') || raw.contains(':'))
        {
            verdict.find(
                Severity::Warning,
                op,
                "errors/bare-type",
                "expected a bare error name, got a namespaced one",
                format!(
                    "expected the bare error name in __type, got {:?}",
                    snippet(raw, 100)
                ),
                Some(i),
            );
        }
        let has_message = ["message", "Message"]
            .iter()
            .any(|m| body.get(*m).is_some_and(Value::is_string));
        if !has_message {
            verdict.find(
                Severity::Warning,
                op,
                "errors/message",
                format!("missing in {name}"),
                format!("{name}: expected a message (or Message) string, got none"),
                Some(i),
            );
        }
    }
    redacted(ctx, verdict)
}

/// A media type for a kind (`no content type` when there is none).
fn media_or_none(media: &str) -> &str {
    if media.is_empty() {
        "no content type"
    } else {
        media
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oracle::common::testing::*;
    use crate::oracle::common::{CREATE, DESCRIBE};

    fn judge(h: &H) -> Verdict {
        errors(&ctx(), &h.history())
    }

    fn raw(status: u16, content_type: &str, body: Value, text: Option<&str>) -> Outcome {
        Outcome::Response {
            status,
            request_id: Some("r".into()),
            content_type: Some(content_type.into()),
            error_type: None,
            body,
            text: text.map(str::to_string),
        }
    }

    #[test]
    fn conformant_answers_pass() {
        let mut h = H::new();
        h.call(DESCRIBE, json!({}), ok(page(vec![], None)));
        h.call(CONNECT, json!({"CustomKeyStoreId": "c"}), ok(json!({})));
        h.call(
            DELETE,
            json!({"CustomKeyStoreId": "c"}),
            raw(200, "application/x-amz-json-1.1", Value::Null, None),
        );
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "c"}),
            error("CustomKeyStoreNotFoundException"),
        );
        h.call(CREATE, json!({}), error("KMSInternalException"));
        h.call(CREATE, json!({}), error("ThrottlingException"));
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[CREATE], 2);
    }

    #[test]
    fn an_html_500_is_unparseable_and_says_what_came_back() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            json!({}),
            raw(
                500,
                "text/html",
                Value::Null,
                Some("<html><body>Not Implemented</body></html>"),
            ),
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["errors/unparseable"]);
        let m = &v.findings[0].message;
        assert!(
            m.starts_with(
                "DescribeCustomKeyStores: HTTP 500 text/html, operation apparently not implemented"
            ),
            "{m}"
        );
    }

    #[test]
    fn a_client_error_as_500_and_a_fault_as_400_are_caught() {
        let mut h = H::new();
        h.call(
            CONNECT,
            json!({}),
            response(
                500,
                json!({"__type": "CustomKeyStoreInvalidStateException", "message": "m"}),
            ),
        );
        h.call(
            CONNECT,
            json!({}),
            response(
                400,
                json!({"__type": "KMSInternalException", "message": "m"}),
            ),
        );
        h.call(
            CONNECT,
            json!({}),
            response(
                302,
                json!({"__type": "SomethingNewException", "message": "m"}),
            ),
        );
        assert_eq!(
            failures(&judge(&h)),
            [
                "errors/status",
                "errors/status",
                "errors/status",
                "errors/declared"
            ]
        );
    }

    #[test]
    fn an_undeclared_error_name_is_caught() {
        let mut h = H::new();
        h.call(DESCRIBE, json!({}), error("CustomKeyStoreHasCMKsException"));
        assert_eq!(failures(&judge(&h)), ["errors/declared"]);
    }

    #[test]
    fn a_namespaced_type_is_only_a_warning_and_a_missing_message_too() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            json!({}),
            response(
                400,
                json!({"__type": "com.amazonaws.kms#InvalidMarkerException", "Message": "m"}),
            ),
        );
        h.call(
            DESCRIBE,
            json!({}),
            response(400, json!({"__type": "InvalidMarkerException"})),
        );
        let v = judge(&h);
        assert_no_failure(&v);
        assert_eq!(
            rules(&v, Severity::Warning),
            ["errors/bare-type", "errors/message"]
        );
    }

    #[test]
    fn wrong_success_bodies_and_content_types_are_caught() {
        let mut h = H::new();
        h.call(
            DESCRIBE,
            json!({}),
            raw(200, "text/plain", Value::Null, Some("ok")),
        );
        h.call(
            DESCRIBE,
            json!({}),
            raw(200, "application/json", json!({}), None),
        );
        h.call(
            CREATE,
            json!({}),
            raw(200, "application/x-amz-json-1.1", Value::Null, None),
        );
        h.call(
            CONNECT,
            json!({}),
            raw(
                200,
                "application/x-amz-json-1.1; charset=utf-8",
                json!({}),
                None,
            ),
        );
        assert_eq!(
            failures(&judge(&h)),
            [
                "errors/content-type",
                "errors/content-type",
                "errors/content-type"
            ]
        );
    }

    #[test]
    fn no_answer_and_no_request_id_are_caught() {
        let mut h = H::new();
        h.call(CONNECT, json!({}), unknown());
        let mut answer = ok(json!({}));
        if let Outcome::Response { request_id, .. } = &mut answer {
            *request_id = None;
        }
        h.call(CONNECT, json!({}), answer);
        let v = judge(&h);
        assert_eq!(failures(&v), ["errors/no-answer", "errors/request-id"]);
        assert!(v.findings[0].message.contains("timed out"));
    }
}
