//! The XKS answers: JSON bodies with `Content-Type: application/json`, and the error shape
//! `{"errorName", "errorMessage"}` with the status the spec gives each error name.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::faults::{Planted, ProxyFault};

/// The body type of every proxy answer.
pub(super) type Body = Full<Bytes>;

/// Longest errorMessage sent (the spec: under 512 characters).
const MAX_MESSAGE: usize = 511;

/// An XKS error: its HTTP status, errorName and errorMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProxyError {
    /// HTTP status.
    pub status: StatusCode,
    /// errorName.
    pub name: &'static str,
    /// errorMessage (made printable ASCII and short when sent).
    pub message: String,
}

impl ProxyError {
    fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> ProxyError {
        ProxyError {
            status,
            name,
            message: message.into(),
        }
    }

    /// 400 ValidationException.
    pub fn validation(message: impl Into<String>) -> ProxyError {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    /// 400 InvalidStateException.
    pub fn invalid_state(message: impl Into<String>) -> ProxyError {
        Self::new(StatusCode::BAD_REQUEST, "InvalidStateException", message)
    }

    /// 400 InvalidCiphertextException.
    pub fn invalid_ciphertext(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidCiphertextException",
            message,
        )
    }

    /// 400 InvalidKeyUsageException.
    pub fn invalid_key_usage(message: impl Into<String>) -> ProxyError {
        Self::new(StatusCode::BAD_REQUEST, "InvalidKeyUsageException", message)
    }

    /// 401 AuthenticationFailedException.
    pub fn authentication(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailedException",
            message,
        )
    }

    /// 403 AccessDeniedException.
    pub fn access_denied(message: impl Into<String>) -> ProxyError {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }

    /// 404 KeyNotFoundException.
    pub fn key_not_found(message: impl Into<String>) -> ProxyError {
        Self::new(StatusCode::NOT_FOUND, "KeyNotFoundException", message)
    }

    /// 404 InvalidUriPathException.
    pub fn invalid_uri_path(message: impl Into<String>) -> ProxyError {
        Self::new(StatusCode::NOT_FOUND, "InvalidUriPathException", message)
    }

    /// 405 for a method other than POST on an operation's URI.
    pub fn method_not_allowed(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedOperationException",
            message,
        )
    }

    /// 413 for a request body over the HTTP layer's cap (`Limits::max_body_bytes`); the XKS
    /// spec names no error for it, so it keeps the name of this proxy's other limits.
    pub fn too_large(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "UnsupportedOperationException",
            message,
        )
    }

    /// 429 ThrottlingException.
    pub fn throttling(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            message,
        )
    }

    /// 500 InternalException.
    pub fn internal(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalException",
            message,
        )
    }

    /// 501 UnsupportedOperationException (also: input over this proxy's limits).
    pub fn unsupported(message: impl Into<String>) -> ProxyError {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "UnsupportedOperationException",
            message,
        )
    }
}

/// A 200 answer with a JSON body.
pub(super) fn success(body: &Value) -> Response<Body> {
    respond(StatusCode::OK, body.to_string())
}

/// An error answer; the error-shape faults are planted here.
pub(super) fn error(e: &ProxyError, planted: &Planted) -> Response<Body> {
    let mut status = e.status;
    let mut name = e.name;
    if name == "ValidationException" {
        if planted.has(ProxyFault::WrongErrorStatus) {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        if planted.has(ProxyFault::WrongErrorName) {
            name = "ValidationError";
        }
    }
    let body = json!({ "errorName": name, "errorMessage": printable(&e.message) });
    let mut response = respond(status, body.to_string());
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert("allow", HeaderValue::from_static("POST"));
    }
    response
}

/// The message as printable ASCII (0x20-0x7E), other characters as `?`, at most 511 chars.
fn printable(message: &str) -> String {
    message
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(MAX_MESSAGE)
        .collect()
}

fn respond(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response<Body>) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_carry_name_status_json_type_and_a_short_printable_message() {
        let long = format!("caf\u{e9}\n{}", "x".repeat(2000));
        let response = error(&ProxyError::key_not_found(long), &Planted::default());
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = body_of(response).await;
        assert_eq!(body["errorName"], "KeyNotFoundException");
        let message = body["errorMessage"].as_str().unwrap();
        assert!(message.len() < 512, "{}", message.len());
        assert!(message.starts_with("caf??x"), "{message}");
        assert!(message.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    }

    #[tokio::test]
    async fn the_error_shape_faults_change_only_validation_errors() {
        let planted = Planted::new(&[ProxyFault::WrongErrorStatus, ProxyFault::WrongErrorName]);
        let response = error(&ProxyError::validation("bad"), &planted);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_of(response).await["errorName"], "ValidationError");
        let response = error(&ProxyError::invalid_state("off"), &planted);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_of(response).await["errorName"],
            "InvalidStateException"
        );
        let clean = error(&ProxyError::validation("bad"), &Planted::default());
        assert_eq!(clean.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(clean).await["errorName"], "ValidationException");
    }

    #[tokio::test]
    async fn method_not_allowed_names_post() {
        let response = error(&ProxyError::method_not_allowed("GET"), &Planted::default());
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "POST");
    }
}
