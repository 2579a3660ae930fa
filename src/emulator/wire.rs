//! KMS's awsJson1_1 answers: status, `__type` + `message`, request ID and error type headers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::model::KmsError;
use crate::spec::Spec;

/// The body type of every emulator answer.
pub type Body = Full<Bytes>;

/// A 200 answer with a JSON body.
pub fn success(body: &Value, request_id: &str) -> Response<Body> {
    respond(StatusCode::OK, body.to_string(), request_id, None)
}

/// An error answer with the status the spec gives the error's class.
pub fn error(e: &KmsError, request_id: &str) -> Response<Body> {
    let status =
        StatusCode::from_u16(Spec::kms().error_status(&e.name)).unwrap_or(StatusCode::BAD_REQUEST);
    error_with_status(status, e, request_id)
}

/// An error answer with an explicit status (for transport-level errors such as 413).
pub fn error_with_status(status: StatusCode, e: &KmsError, request_id: &str) -> Response<Body> {
    let body = json!({ "__type": e.name, "message": e.message }).to_string();
    respond(status, body, request_id, Some(&e.name))
}

fn respond(
    status: StatusCode,
    body: String,
    request_id: &str,
    error: Option<&str>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    if let Some(v) = error.and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert("x-amzn-errortype", v);
    }
    response
}
