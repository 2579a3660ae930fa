//! One request: route by URI path (404 before SigV4, since credentials are per prefix), 405 for
//! other methods, read the body within limits, authenticate (401), validate (400), then
//! GetHealthStatus, GetKeyMetadata, Encrypt or Decrypt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::faults::{Planted, ProxyFault};
use super::keys::{Key, KeyError, Keyring};
use super::request::{self, Operation};
use super::wire::{self, Body, ProxyError};
use super::{Prefix, ProxyConfig};
use crate::server::{self, BodyError, Limits};
use crate::sigv4::{AuthError, Verifier};
use crate::xks::client::SIGNING_NAME;

/// In-flight requests (or open connections) above which the `throttles-bursts` fault answers 429.
const FAULTY_MAX_IN_FLIGHT: usize = 4;
/// The delay of the `slow` fault.
const SLOW_DELAY: Duration = Duration::from_millis(300);

/// One prefix: its path and the signature checks of its credentials.
struct Route {
    uri_path: String,
    verifier: Verifier,
}

/// GetHealthStatus requests whose `kmsOperation` is listed get the planted faults; with no
/// list, every request does (`ProxyConfig::fault_operations`).
type FaultOperations = Option<Vec<String>>;

/// Shared state of a running proxy.
pub(super) struct App {
    routes: Vec<Route>,
    keys: Keyring,
    planted: Planted,
    /// No faults: what requests outside `fault_operations` get.
    clean: Planted,
    fault_operations: FaultOperations,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
    /// The HTTP layer's bounds (the body cap and timeout apply here).
    limits: Limits,
}

/// Counts a request in flight, or an open connection, until dropped.
pub(super) struct InFlight<'a>(pub(super) &'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts an open connection until dropped (for the `throttles-bursts` fault).
pub(super) struct Connected(Arc<App>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl server::Handler for App {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        handle(&self, request).await
    }

    fn connected(self: Arc<Self>) -> impl Send + 'static {
        self.connections.fetch_add(1, Ordering::SeqCst);
        Connected(self)
    }
}

/// A routed request: the prefix it came under, the operation and the key id.
struct Routed<'a> {
    route: &'a Route,
    operation: Operation,
    key_id: Option<&'a str>,
}

impl App {
    /// The state for `config`; an error for a prefix or key it cannot serve.
    pub fn new(config: &ProxyConfig) -> Result<App, String> {
        if config.prefixes.is_empty() {
            return Err("the proxy needs at least one URI path prefix".into());
        }
        let planted = Planted::new(&config.faults);
        let max_skew = if planted.has(ProxyFault::IgnoresSkew) {
            Duration::MAX
        } else {
            config.max_skew
        };
        let mut routes: Vec<Route> = Vec::new();
        for Prefix {
            uri_path,
            credentials,
        } in &config.prefixes
        {
            let path = uri_path.trim_end_matches('/');
            if !path.starts_with('/') || path.contains("//") {
                return Err(format!(
                    "URI path prefix {uri_path:?} must start with / and hold no empty segment"
                ));
            }
            if credentials.is_empty() {
                return Err(format!("URI path prefix {uri_path:?} has no credentials"));
            }
            if routes.iter().any(|r| r.uri_path == path) {
                return Err(format!("URI path prefix {uri_path:?} is given twice"));
            }
            routes.push(Route {
                uri_path: path.to_string(),
                verifier: Verifier {
                    credentials: credentials.clone(),
                    service: SIGNING_NAME.into(),
                    region: Some(config.region.clone()),
                    max_skew,
                },
            });
        }
        Ok(App {
            routes,
            keys: Keyring::new(&config.keys)?,
            planted,
            clean: Planted::default(),
            fault_operations: config.fault_operations.clone(),
            in_flight: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            limits: config.limits,
        })
    }

    /// The faults a request gets before its body is read: all of them, unless they are
    /// confined to some health checks.
    fn unconfined(&self) -> &Planted {
        match self.fault_operations {
            None => &self.planted,
            Some(_) => &self.clean,
        }
    }

    /// The faults a request to `operation` with this body gets.
    fn faults_for(&self, operation: Operation, body: &[u8]) -> &Planted {
        let Some(listed) = &self.fault_operations else {
            return &self.planted;
        };
        let kms_operation = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            v.pointer("/requestMetadata/kmsOperation")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        match kms_operation {
            Some(op) if operation == Operation::Health && listed.contains(&op) => &self.planted,
            _ => &self.clean,
        }
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The prefix, operation and key id of a path; None for a path this proxy does not serve.
    fn route<'a>(&'a self, path: &'a str) -> Option<Routed<'a>> {
        self.routes.iter().find_map(|route| {
            let rest = path.strip_prefix(route.uri_path.as_str())?;
            let (operation, key_id) = if rest == "/health" {
                (Operation::Health, None)
            } else {
                let rest = rest.strip_prefix("/keys/")?;
                let (id, op) = rest.split_once('/')?;
                let operation = match op {
                    "metadata" => Operation::Metadata,
                    "encrypt" => Operation::Encrypt,
                    "decrypt" => Operation::Decrypt,
                    _ => return None,
                };
                if id.is_empty() {
                    return None;
                }
                (operation, Some(id))
            };
            Some(Routed {
                route,
                operation,
                key_id,
            })
        })
    }
}

/// Answers one request. Never panics on client input; every rejection is an XKS error body.
pub(super) async fn handle(app: &App, request: Request<Incoming>) -> Response<Body> {
    let mut planted = app.unconfined();
    let mut response = match answer(app, request, &mut planted).await {
        Ok(value) => wire::success(&value),
        Err(e) => wire::error(&e, planted),
    };
    let delay = if planted.has(ProxyFault::Slow) {
        SLOW_DELAY
    } else {
        Duration::ZERO
    };
    response.headers_mut().insert(
        crate::xks::REFERENCE_DELAY_HEADER,
        hyper::header::HeaderValue::from(delay.as_millis() as u64),
    );
    tokio::time::sleep(delay).await;
    response
}

/// The answer; `planted` becomes the faults this request gets once its body is read.
async fn answer<'a>(
    app: &'a App,
    request: Request<Incoming>,
    planted: &mut &'a Planted,
) -> Result<Value, ProxyError> {
    app.in_flight.fetch_add(1, Ordering::SeqCst);
    let guard = InFlight(&app.in_flight);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let routed = app.route(path).ok_or_else(|| {
        ProxyError::invalid_uri_path(format!("The URI path {path} is not served by this proxy."))
    })?;
    if parts.method != Method::POST {
        return Err(ProxyError::method_not_allowed(format!(
            "{} is not allowed on {path}; XKS operations are POST.",
            parts.method
        )));
    }
    if planted.has(ProxyFault::ThrottlesBursts)
        && (guard.0.load(Ordering::SeqCst) > FAULTY_MAX_IN_FLIGHT
            || app.connections.load(Ordering::SeqCst) > FAULTY_MAX_IN_FLIGHT)
    {
        return Err(ProxyError::throttling(
            "Too many requests in flight; retry later.",
        ));
    }
    let body = read_body(app, &parts.headers, body).await?;
    *planted = app.faults_for(routed.operation, &body);
    let planted: &Planted = planted;
    if planted.has(ProxyFault::InvalidUriPath) {
        return Err(ProxyError::invalid_uri_path(format!(
            "The URI path {path} is not served by this proxy."
        )));
    }
    let uri = parts.uri.path_and_query().map_or(path, |p| p.as_str());
    authenticate(
        planted,
        routed.route,
        parts.method.as_str(),
        uri,
        &parts.headers,
        &body,
    )?;
    if planted.has(ProxyFault::DeniesAccess) {
        return Err(ProxyError::access_denied(
            "The caller is not authorized for this operation.",
        ));
    }
    match routed.operation {
        Operation::Health => {
            request::health(&body)?;
            Ok(health(app, planted))
        }
        Operation::Metadata => {
            request::metadata(&body)?;
            let key = find_key(app, routed.key_id)?;
            Ok(metadata(planted, key))
        }
        Operation::Encrypt => {
            let req = request::encrypt(&body, planted)?;
            let key = find_key(app, routed.key_id)?;
            key.check("ENCRYPT", planted).map_err(key_error)?;
            // A CDIV promises that decrypt will work (the spec advises a trial decrypt): a key
            // that may not decrypt cannot give one. AWS's test client expects this refusal.
            if req.cdiv && !planted.has(ProxyFault::CdivWithoutDecryptUsage) {
                key.check("DECRYPT", planted).map_err(key_error)?;
            }
            let sealed = key
                .encrypt(&req.plaintext, &req.aad, req.cdiv, planted)
                .map_err(key_error)?;
            let mut out = json!({
                "ciphertext": STANDARD.encode(&sealed.ciphertext),
                "initializationVector": STANDARD.encode(sealed.iv),
                "authenticationTag": STANDARD.encode(sealed.tag),
                "ciphertextMetadata": STANDARD.encode(sealed.ctm),
            });
            if let Some(cdiv) = sealed.cdiv {
                out["ciphertextDataIntegrityValue"] = json!(STANDARD.encode(cdiv));
            }
            Ok(out)
        }
        Operation::Decrypt => {
            let req = request::decrypt(&body, planted)?;
            let key = find_key(app, routed.key_id)?;
            key.check("DECRYPT", planted).map_err(key_error)?;
            let plaintext = key
                .decrypt(
                    &req.ciphertext,
                    &req.aad,
                    &req.ctm,
                    &req.iv,
                    &req.tag,
                    planted,
                )
                .map_err(key_error)?;
            Ok(json!({ "plaintext": STANDARD.encode(plaintext) }))
        }
    }
}

/// The body within the layer's cap (413) and body timeout.
async fn read_body(
    app: &App,
    headers: &http::HeaderMap,
    body: Incoming,
) -> Result<Vec<u8>, ProxyError> {
    let limits = &app.limits;
    server::read_body(headers, body, limits)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| match e {
            BodyError::TooLarge => ProxyError::too_large(format!(
                "The request body is over this proxy's limit of {} bytes.",
                limits.max_body_bytes
            )),
            BodyError::Broken => ProxyError::validation("The request body could not be read."),
            BodyError::Timeout => ProxyError::validation(format!(
                "The request body did not arrive within {} ms.",
                limits.body_timeout.as_millis()
            )),
        })
}

/// SigV4 against the prefix's credentials and the configured region; the signature faults
/// are planted here.
fn authenticate(
    planted: &Planted,
    route: &Route,
    method: &str,
    uri: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), ProxyError> {
    match route
        .verifier
        .verify(method, uri, headers, body, SystemTime::now())
    {
        Ok(_) if planted.has(ProxyFault::RejectsCredentials) => Err(ProxyError::authentication(
            "The signature does not match any credential of this prefix.",
        )),
        Ok(_) => Ok(()),
        Err(AuthError::BadSignature) if planted.has(ProxyFault::AcceptsBadSignatures) => Ok(()),
        Err(e) => Err(ProxyError::authentication(e.to_string())),
    }
}

fn find_key<'a>(app: &'a App, id: Option<&str>) -> Result<&'a Key, ProxyError> {
    let id = id.unwrap_or_default();
    app.keys
        .get(id)
        .ok_or_else(|| ProxyError::key_not_found(format!("No external key has the id {id:?}.")))
}

fn key_error(e: KeyError) -> ProxyError {
    match e {
        KeyError::Disabled => ProxyError::invalid_state("The external key is disabled."),
        KeyError::Usage(usage) => ProxyError::invalid_key_usage(format!(
            "The external key's usage does not include {usage}."
        )),
        KeyError::BadCiphertext => ProxyError::invalid_ciphertext(
            "The ciphertext, IV, tag, AAD or ciphertext metadata do not authenticate.",
        ),
        KeyError::Internal(why) => ProxyError::internal(format!("Key manager failure: {why}.")),
    }
}

fn health(app: &App, planted: &Planted) -> Value {
    let status = if planted.has(ProxyFault::HealthUnavailable) || !app.keys.healthy() {
        "UNAVAILABLE"
    } else {
        "ACTIVE"
    };
    let mut out = json!({
        "xksProxyFleetSize": 1,
        "xksProxyVendor": "ckscheck",
        "xksProxyModel": concat!("ckscheck reference XKS proxy ", env!("CARGO_PKG_VERSION")),
        "ekmVendor": "ckscheck (in-memory key manager)",
        "ekmFleetDetails": [{
            "id": "ckscheck-ekm-1",
            "model": concat!("ckscheck in-memory AES-256-GCM ", env!("CARGO_PKG_VERSION")),
            "healthStatus": status,
        }],
    });
    if planted.has(ProxyFault::HealthMissingMember)
        && let Some(object) = out.as_object_mut()
    {
        object.remove("ekmVendor");
    }
    out
}

fn metadata(planted: &Planted, key: &Key) -> Value {
    let key_spec = if planted.has(ProxyFault::MetadataWrongKeyspec) {
        "AES_128"
    } else {
        "AES_256"
    };
    let usage: Vec<&str> = if planted.has(ProxyFault::MetadataEmptyKeyusage) {
        Vec::new()
    } else {
        key.def.usage.iter().map(String::as_str).collect()
    };
    json!({
        "keySpec": key_spec,
        "keyUsage": usage,
        "keyStatus": if key.def.enabled { "ENABLED" } else { "DISABLED" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(config: &ProxyConfig) -> App {
        App::new(config).unwrap()
    }

    #[test]
    fn paths_route_to_their_operation_under_each_prefix_and_nothing_else() {
        let mut config = ProxyConfig::reference("h");
        config.prefixes.push(Prefix {
            uri_path: "/other/kms/xks/v1/".into(),
            credentials: vec![super::super::ROTATED_CREDENTIAL.clone()],
        });
        let app = app(&config);
        let r = app.route("/ckscheck/kms/xks/v1/health").unwrap();
        assert_eq!((r.operation, r.key_id), (Operation::Health, None));
        let r = app
            .route("/ckscheck/kms/xks/v1/keys/k.1_a-b/decrypt")
            .unwrap();
        assert_eq!(
            (r.operation, r.key_id),
            (Operation::Decrypt, Some("k.1_a-b"))
        );
        let r = app.route("/other/kms/xks/v1/keys/x/metadata").unwrap();
        assert_eq!(r.route.uri_path, "/other/kms/xks/v1");
        for bad in [
            "/",
            "/kms/xks/v1/health",
            "/ckscheck/kms/xks/v1",
            "/ckscheck/kms/xks/v1/",
            "/ckscheck/kms/xks/v1/healthz",
            "/ckscheck/kms/xks/v1/health/",
            "/ckscheck/kms/xks/v1/keys//encrypt",
            "/ckscheck/kms/xks/v1/keys/k/sign",
            "/ckscheck/kms/xks/v1/keys/k/encrypt/x",
            "/ckscheck/kms/xks/v2/health",
        ] {
            assert!(app.route(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn configurations_it_cannot_serve_are_refused() {
        let mut no_prefix = ProxyConfig::reference("h");
        no_prefix.prefixes.clear();
        assert!(App::new(&no_prefix).is_err());
        let mut no_creds = ProxyConfig::reference("h");
        no_creds.prefixes[0].credentials.clear();
        assert!(App::new(&no_creds).is_err());
        let mut relative = ProxyConfig::reference("h");
        relative.prefixes[0].uri_path = "kms/xks/v1".into();
        assert!(App::new(&relative).is_err());
        let mut twice = ProxyConfig::reference("h");
        twice.prefixes.push(twice.prefixes[0].clone());
        assert!(App::new(&twice).is_err());
    }

    #[test]
    fn health_and_metadata_answers_have_every_member_and_the_faults_change_them() {
        let clean = app(&ProxyConfig::reference("h"));
        let h = health(&clean, &clean.planted);
        for member in ["xksProxyVendor", "xksProxyModel", "ekmVendor"] {
            assert!(h[member].is_string(), "{member}");
        }
        assert_eq!(h["xksProxyFleetSize"], 1);
        assert_eq!(h["ekmFleetDetails"][0]["healthStatus"], "ACTIVE");
        let key = clean.keys.get(super::super::KEY_DISABLED).unwrap();
        let m = metadata(&clean.planted, key);
        assert_eq!(
            m,
            json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "DISABLED"})
        );

        let mut config = ProxyConfig::reference("h");
        config.faults = vec![
            ProxyFault::HealthMissingMember,
            ProxyFault::HealthUnavailable,
            ProxyFault::MetadataWrongKeyspec,
            ProxyFault::MetadataEmptyKeyusage,
        ];
        let faulty = app(&config);
        let h = health(&faulty, &faulty.planted);
        assert!(h.get("ekmVendor").is_none());
        assert_eq!(h["ekmFleetDetails"][0]["healthStatus"], "UNAVAILABLE");
        let key = faulty.keys.get(super::super::KEY_MAIN).unwrap();
        let m = metadata(&faulty.planted, key);
        assert_eq!(m["keySpec"], "AES_128");
        assert_eq!(m["keyUsage"], json!([]));
        assert_eq!(m["keyStatus"], "ENABLED");
    }
}
