//! The XKS client: signs requests with SigV4 (signing name `kms-xks-proxy`) and sends them over
//! HTTPS (rustls), with the knobs the certification checks need to send bad requests on purpose.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::tls::{self, Identity, Roots};
use crate::runner::{BODY_LIMIT, BodyError, OVER_LIMIT, error_chain, read_capped};
use crate::sigv4::{Credential, Signable, Signer};

/// The SigV4 signing name of the XKS proxy API.
pub const SIGNING_NAME: &str = "kms-xks-proxy";

/// Where a proxy is and how to reach it.
#[derive(Clone)]
pub struct XksTarget {
    /// `https://HOST[:PORT]` (or `http://` for a proxy without TLS).
    pub endpoint: String,
    /// The URI path prefix, e.g. `/example/kms/xks/v1`.
    pub uri_path: String,
    /// The region requests are signed for.
    pub region: String,
    /// The proxy's access key pair.
    pub credential: Credential,
    /// The certificate authorities trusted.
    pub roots: Roots,
    /// A client certificate for mutual TLS.
    pub identity: Option<Identity>,
    /// Connect to this address instead of resolving the endpoint's host name.
    pub resolve: Option<SocketAddr>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Why a request got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The request could not be built or signed.
    #[error("not sent: {0}")]
    NotSent(String),
    /// No TCP connection (refused, unroutable, DNS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (untrusted or wrong-host certificate, no common suite).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection broke before a full answer came, or the answer was longer than the
    /// harness reads ([`BODY_LIMIT`]; the reason then starts with [`OVER_LIMIT`]).
    #[error("no answer: {0}")]
    Broken(String),
}

impl SendError {
    /// What went wrong in a few words with no address, port or duration, for finding kinds:
    /// `not sent`, `no connection`, `a TLS handshake failure`, `a timeout`, `a broken
    /// connection`, `an answer over 1 MiB`.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::NotSent(_) => "not sent",
            SendError::Connect(_) => "no connection",
            SendError::Tls(_) => "a TLS handshake failure",
            SendError::Timeout(_) => "a timeout",
            SendError::Broken(why) if why.starts_with(OVER_LIMIT) => "an answer over 1 MiB",
            SendError::Broken(_) => "a broken connection",
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct XksReply {
    /// HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub body: Value,
    /// The raw body text (lossy UTF-8).
    pub text: String,
    /// From sending the request to the end of the body.
    pub latency: Duration,
    /// The delay a ckscheck reference proxy says it added on purpose
    /// ([`super::REFERENCE_DELAY_HEADER`]); None from any other server.
    pub declared_delay: Option<Duration>,
}

impl XksReply {
    /// `errorName` of an error body.
    pub fn error_name(&self) -> Option<&str> {
        self.body.get("errorName").and_then(Value::as_str)
    }
}

/// How a request is signed, when it is.
#[derive(Debug, Clone)]
pub struct Signing {
    /// The key pair.
    pub credential: Credential,
    /// Region of the credential scope.
    pub region: String,
    /// Service name of the credential scope.
    pub service: String,
    /// Signing time (`x-amz-date`).
    pub time: SystemTime,
}

/// A request in full: what the checks send, and what a curl reproducer shows.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// HTTP method.
    pub method: String,
    /// The full path, prefix included.
    pub path: String,
    /// The body bytes that are signed.
    pub body: Vec<u8>,
    /// How it is signed; None sends no `Authorization` header.
    pub signing: Option<Signing>,
    /// Bytes sent instead of `body` after signing (a body changed in flight).
    pub sent_body: Option<Vec<u8>>,
}

/// A connected XKS client for one proxy and prefix.
#[derive(Clone)]
pub struct XksClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    /// The target it was made for.
    pub target: Arc<XksTarget>,
}

impl XksTarget {
    /// Whether the endpoint is plain `http://` (no TLS: a proxy behind a TLS-terminating load
    /// balancer, or in development).
    pub fn is_plain_http(&self) -> bool {
        self.endpoint
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    }
}

impl XksClient {
    /// A client for `target`; an error for a bad URL or a TLS set-up the client refuses.
    pub fn new(target: XksTarget) -> Result<XksClient, String> {
        let endpoint = reqwest::Url::parse(&target.endpoint)
            .map_err(|e| format!("bad endpoint URL {:?}: {e}", target.endpoint))?;
        let plain = match endpoint.scheme() {
            "https" => false,
            "http" => true,
            _ => {
                return Err(format!(
                    "the XKS endpoint must be https:// or http:// (got {:?})",
                    target.endpoint
                ));
            }
        };
        let host = endpoint
            .host_str()
            .ok_or_else(|| format!("the endpoint {:?} has no host", target.endpoint))?
            .to_string();
        crate::runner::install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if !plain {
            let tls = tls::client_config(&target.roots, target.identity.as_ref())?;
            builder = builder.use_preconfigured_tls(tls);
        }
        let mut builder = builder
            .timeout(target.timeout)
            .http1_only()
            .pool_max_idle_per_host(64);
        if let Some(addr) = target.resolve {
            builder = builder.resolve(&host, addr);
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(XksClient {
            http,
            endpoint,
            target: Arc::new(target),
        })
    }

    /// The full path of an operation: `P/health`, `P/keys/{id}/metadata|encrypt|decrypt`.
    pub fn path(&self, operation: &str, key_id: Option<&str>) -> String {
        let p = self.target.uri_path.trim_end_matches('/');
        let key = key_id.unwrap_or_default();
        match operation {
            "GetHealthStatus" => format!("{p}/health"),
            "GetKeyMetadata" => format!("{p}/keys/{key}/metadata"),
            "Encrypt" => format!("{p}/keys/{key}/encrypt"),
            "Decrypt" => format!("{p}/keys/{key}/decrypt"),
            other => format!("{p}/{other}"),
        }
    }

    /// The default signing: the target's credential and region, service `kms-xks-proxy`, now.
    pub fn signing(&self) -> Signing {
        Signing {
            credential: self.target.credential.clone(),
            region: self.target.region.clone(),
            service: SIGNING_NAME.into(),
            time: SystemTime::now(),
        }
    }

    /// A correctly signed POST of `body` to `operation`'s path.
    pub fn request(&self, operation: &str, key_id: Option<&str>, body: &Value) -> RawRequest {
        RawRequest {
            method: "POST".into(),
            path: self.path(operation, key_id),
            body: body.to_string().into_bytes(),
            signing: Some(self.signing()),
            sent_body: None,
        }
    }

    /// Sends a correctly signed POST of `body` to `operation`.
    pub async fn call(
        &self,
        operation: &str,
        key_id: Option<&str>,
        body: &Value,
    ) -> Result<XksReply, SendError> {
        self.send(&self.request(operation, key_id, body)).await
    }

    /// The `host` header value the request carries (host, and port when the URL has one).
    pub fn host_header(&self) -> String {
        match (self.endpoint.host_str(), self.endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        }
    }

    /// Sends a request exactly as described.
    pub async fn send(&self, request: &RawRequest) -> Result<XksReply, SendError> {
        let method = http::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| SendError::NotSent(e.to_string()))?;
        let mut url = self.endpoint.clone();
        url.set_path(&request.path);
        let host = self.host_header();
        let mut builder = self
            .http
            .request(method, url)
            .header("content-type", "application/json");
        if let Some(s) = &request.signing {
            let headers = [
                ("host", host.as_str()),
                ("content-type", "application/json"),
            ];
            // Sign host and x-amz-date as KMS does; content-type goes unsigned.
            let signer = Signer {
                credential: &s.credential,
                region: &s.region,
                service: &s.service,
                time: s.time,
            };
            let signable = Signable {
                method: &request.method,
                uri: &request.path,
                headers: &headers[..1],
                body: &request.body,
            };
            let (signed, _) = signer.sign(&signable).map_err(SendError::NotSent)?;
            for (k, v) in signed {
                builder = builder.header(k, v);
            }
        }
        let body = request.sent_body.as_ref().unwrap_or(&request.body).clone();
        let started = Instant::now();
        let response = builder
            .body(body)
            .send()
            .await
            .map_err(|e| classify(e, self.target.timeout))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let declared_delay = response
            .headers()
            .get(super::REFERENCE_DELAY_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        let bytes = read_capped(response, BODY_LIMIT)
            .await
            .map_err(|e| match e {
                BodyError::Read(e) => classify(e, self.target.timeout),
                too_large => SendError::Broken(too_large.to_string()),
            })?;
        let latency = started.elapsed();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(XksReply {
            status,
            content_type,
            body,
            text,
            latency,
            declared_delay,
        })
    }
}

/// True when `e` is a rustls error, or an I/O error wrapping one (however deeply: the
/// connector wraps the handshake's `InvalidData` error in another I/O error, and an I/O error's
/// `source` skips what it wraps).
fn holds_rustls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        Some(inner) => holds_rustls_error(inner),
        None => false,
    }
}

/// Sorts a reqwest failure: timeout, TLS handshake, connect, or a broken exchange.
fn classify(e: reqwest::Error, timeout: Duration) -> SendError {
    if e.is_timeout() {
        return SendError::Timeout(timeout);
    }
    let mut tls = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        tls |= holds_rustls_error(s);
        source = s.source();
    }
    let chain = error_chain(&e);
    if tls {
        SendError::Tls(chain)
    } else if e.is_connect() {
        SendError::Connect(chain)
    } else {
        SendError::Broken(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rustls_error_inside_nested_io_errors_is_found() {
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls);
        let outer = std::io::Error::other(inner);
        assert!(holds_rustls_error(&outer));
        let plain =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!holds_rustls_error(&plain));
    }

    #[test]
    fn an_answer_over_the_limit_has_a_kind_of_its_own() {
        let over = SendError::Broken(BodyError::Overflow.to_string());
        assert_eq!(over.kind(), "an answer over 1 MiB");
        let cut = SendError::Broken("end of file before message length reached".into());
        assert_eq!(cut.kind(), "a broken connection");
    }
}
