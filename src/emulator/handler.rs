//! One request: read the body within limits, authenticate, route by `X-Amz-Target`, apply.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::EmulatorConfig;
use super::faults::{self, Planted};
use super::regions::{Regions, signed_region};
use super::wire::Body;
use super::xks_probe::Prober;
use crate::model::{KmsError, Model, XksObservation};
use crate::server::{self, BodyError};
use crate::sigv4::{AuthError, Verifier};
use crate::spec::Spec;

/// Shared state of a running emulator.
pub struct App {
    /// The models, one per region, behind a lock: one request applies at a time.
    pub regions: Mutex<Regions>,
    /// The emulator's settings.
    pub config: EmulatorConfig,
    /// Signature checks, when the emulator verifies SigV4.
    pub verifier: Option<Verifier>,
    /// The planted faults (none in a correct emulator).
    pub faults: Planted,
    /// Calls real XKS proxies for KMS's health checks.
    pub prober: Prober,
}

impl server::Handler for App {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        handle(&self, request).await
    }
}

fn kms_error(name: &str, message: impl Into<String>) -> KmsError {
    KmsError {
        name: name.into(),
        message: message.into(),
    }
}

/// Answers one request. Never panics on client input; every rejection is a KMS-shaped error.
pub async fn handle(app: &Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    // Every error answer; the target names the operation for faults that hit one operation.
    let fail = |status: Option<StatusCode>, e: &KmsError| {
        let named = faults::target_operation(&parts.headers);
        app.faults.error(named, status, e, &request_id)
    };
    let body = match server::read_body(&parts.headers, body, &app.config.limits()).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let e = kms_error(
                "RequestEntityTooLargeException",
                format!(
                    "The request body exceeds the limit of {} bytes.",
                    app.config.max_body_bytes
                ),
            );
            return fail(Some(StatusCode::PAYLOAD_TOO_LARGE), &e);
        }
        Err(BodyError::Broken) => {
            let e = kms_error(
                "SerializationException",
                "The request body could not be read.",
            );
            return fail(None, &e);
        }
        Err(BodyError::Timeout) => {
            let e = kms_error(
                "RequestTimeoutException",
                "The client did not send the request body in time.",
            );
            return fail(Some(StatusCode::REQUEST_TIMEOUT), &e);
        }
    };
    if let Err(e) = authenticate(app, &parts, &body) {
        return fail(None, &e);
    }
    let spec = Spec::kms();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = match target.split_once('.') {
        Some((prefix, op))
            if prefix == spec.service.target_prefix && parts.method == http::Method::POST =>
        {
            op
        }
        _ => {
            // Also a request without X-Amz-Target: it names no operation (our inference; see
            // `generate::protocol`).
            let e = kms_error(
                "UnknownOperationException",
                format!(
                    "Unknown operation: X-Amz-Target {target:?} with method {}.",
                    parts.method
                ),
            );
            return fail(None, &e);
        }
    };
    if let Some(e) = wrong_content_type(&parts.headers, &spec.service.content_type) {
        return fail(None, &e);
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let region = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signed_region)
        .map(str::to_string);
    let region = region.as_deref();
    let observed = match observe_proxy(app, region, now, operation, &body).await {
        Ok(observed) => observed,
        Err(e) => return fail(None, &e),
    };
    let (outcome, deferred) = {
        let mut regions = app
            .regions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let model = match regions.model(region) {
            Ok(model) => model,
            Err(e) => return fail(None, &e),
        };
        let apply = |model: &mut Model| app.faults.apply(model, now, operation, &body);
        if operation == "ConnectCustomKeyStore" {
            model.deferring_connects(apply)
        } else {
            (model.with_observation(observed, apply), Vec::new())
        }
    };
    // As KMS, answer a connect at once and call the proxy meanwhile; the store stays
    // CONNECTING until the proxy has answered (or KMS's budget has passed).
    for target in deferred {
        let (app, region) = (app.clone(), region.map(str::to_string));
        tokio::spawn(async move {
            let observed = app.prober.observe(target, "ConnectCustomKeyStore").await;
            let mut regions = app
                .regions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Ok(model) = regions.model(region.as_deref()) {
                model.resolve_connect(observed);
            }
        });
    }
    match outcome {
        Ok(value) => app.faults.success(&value, &request_id),
        Err(e) => fail(None, &e),
    }
}

/// Calls the real proxy a Create or Update would have KMS check, if any, outside the model
/// lock (KMS checks the proxy within those calls). A change to the store between this dry run
/// and the apply makes the model simulate instead.
async fn observe_proxy(
    app: &App,
    region: Option<&str>,
    now: u64,
    operation: &str,
    body: &[u8],
) -> Result<Option<XksObservation>, KmsError> {
    if !matches!(operation, "CreateCustomKeyStore" | "UpdateCustomKeyStore") {
        return Ok(None);
    }
    let target = {
        let mut regions = app
            .regions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        regions.model(region)?.probe_target_of(|model| {
            let _ = app.faults.apply(model, now, operation, body);
        })
    };
    Ok(match target {
        Some(target) => Some(app.prober.observe(target, operation).await),
        None => None,
    })
}

/// The refusal of a request whose `Content-Type` is present and not the protocol's (its
/// parameters aside): no awsJson1_1 operation answers it, so it is an unknown operation (our
/// inference; see `generate::protocol`). A request without a `Content-Type` is served.
fn wrong_content_type(headers: &http::HeaderMap, expected: &str) -> Option<KmsError> {
    let sent = headers.get(http::header::CONTENT_TYPE)?;
    let media = sent
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if media.is_some_and(|m| m.eq_ignore_ascii_case(expected)) {
        return None;
    }
    Some(kms_error(
        "UnknownOperationException",
        format!(
            "Unknown operation: Content-Type {:?} is not {expected}.",
            String::from_utf8_lossy(sent.as_bytes())
        ),
    ))
}

fn authenticate(app: &App, parts: &http::request::Parts, body: &[u8]) -> Result<(), KmsError> {
    if !parts.headers.contains_key(http::header::AUTHORIZATION) {
        return Err(kms_error(
            "MissingAuthenticationTokenException",
            AuthError::Missing.to_string(),
        ));
    }
    let Some(verifier) = &app.verifier else {
        return Ok(());
    };
    let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    verifier
        .verify(
            parts.method.as_str(),
            uri,
            &parts.headers,
            body,
            SystemTime::now(),
        )
        .map(|_| ())
        .map_err(|e| {
            let name = match e {
                AuthError::UnknownAccessKey => "UnrecognizedClientException",
                AuthError::Missing => "MissingAuthenticationTokenException",
                _ => "InvalidSignatureException",
            };
            kms_error(name, e.to_string())
        })
}
