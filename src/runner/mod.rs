//! Turns requests into signed awsJson1_1 calls on the wire and records what came back.

pub mod config;
pub mod journal;
pub mod session;
pub mod transitions;

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::history::{Outcome, Wire};
use crate::sigv4::{Credential, Signable, Signer};
use crate::spec::Spec;

/// What one call got back: status, error type or body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The `x-amzn-RequestId` header, if any.
    pub request_id: Option<String>,
    /// The response `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The `X-Amzn-ErrorType` header, if any.
    pub error_type: Option<String>,
    /// The response body parsed as JSON (`Value::Null` if it is not JSON).
    pub body: Value,
    /// The raw body text.
    pub text: String,
}

impl Reply {
    /// The error name, parsed as AWS's protocol tests tell clients to, if this is an error.
    pub fn error_name(&self) -> Option<String> {
        crate::history::error_name(self.status, self.error_type.as_deref(), &self.body)
    }

    /// The reply as a history outcome (non-JSON text kept, cut to 2 KiB).
    pub fn into_outcome(self) -> Outcome {
        let text = self.body.is_null().then(|| {
            let mut t = self.text;
            if t.len() > 2048 {
                let mut cut = 2048;
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                t.truncate(cut);
            }
            t
        });
        Outcome::Response {
            status: self.status,
            request_id: self.request_id,
            content_type: self.content_type,
            error_type: self.error_type,
            body: self.body,
            text,
        }
    }
}

/// Installs the process-wide rustls crypto provider (ring) that every TLS client here uses;
/// call it before building a reqwest client. Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A call that got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request never left: bad URL, signing failure, connection refused.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached the endpoint, but no answer came (timeout, reset).
    #[error("no answer: {0}")]
    Unknown(String),
}

impl CallError {
    fn from_reqwest(e: reqwest::Error) -> CallError {
        let chain = error_chain(&e);
        let reason = if e.is_timeout() {
            format!("timed out ({chain})")
        } else {
            chain
        };
        if e.is_connect() || e.is_builder() {
            CallError::NotSent(reason)
        } else {
            CallError::Unknown(reason)
        }
    }

    fn from_body(e: BodyError) -> CallError {
        match e {
            BodyError::Read(e) => CallError::from_reqwest(e),
            too_large => CallError::Unknown(too_large.to_string()),
        }
    }
}

/// The most bytes of an answer's body the harness reads (1 MiB); the rest of a longer answer
/// is never read, and the call is a transport finding instead.
pub const BODY_LIMIT: usize = 1 << 20;

/// The words every over-limit error starts with (the oracles recognise them).
pub const OVER_LIMIT: &str = "answer over 1 MiB";

/// Why an answer's body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Its `Content-Length` says it is longer than the limit: none of it was read.
    #[error(
        "{OVER_LIMIT}: Content-Length {declared} (the harness reads at most {BODY_LIMIT} bytes)"
    )]
    Declared {
        /// The length the answer declared.
        declared: u64,
    },
    /// More than the limit came: reading stopped there.
    #[error("{OVER_LIMIT}: more than {BODY_LIMIT} bytes came and reading stopped there")]
    Overflow,
    /// Reading failed (connection reset, body cut short, timeout).
    #[error("{}", error_chain(.0))]
    Read(reqwest::Error),
}

/// Reads `response`'s body chunk by chunk, at most `limit` bytes: an answer that declares or
/// sends more is an error, and what lies past the limit is never read. The request's timeout
/// covers the body too.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if let Some(declared) = response.content_length()
        && declared > limit as u64
    {
        return Err(BodyError::Declared { declared });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::Overflow);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error and its `source()` chain as one line, `outer: cause: root cause` (a cause whose
/// text its parent already shows is left out), so a transport finding says what happened.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = s.source();
    }
    chain
}

/// A new HTTP client. Building one the default way loads and parses the system's trust roots,
/// which cost more than a whole generated case against the embedded emulator, and each check
/// makes clients of its own: the TLS configuration is built once and shared.
fn http_client() -> Result<reqwest::Client, String> {
    static TLS: std::sync::OnceLock<Option<rustls::ClientConfig>> = std::sync::OnceLock::new();
    install_crypto_provider();
    let tls = TLS.get_or_init(|| {
        let mut config =
            crate::xks::tls::client_config(&crate::xks::tls::Roots::System, None).ok()?;
        config.alpn_protocols.clear();
        Some(config)
    });
    let builder = reqwest::Client::builder();
    let builder = match tls {
        Some(config) => builder.use_preconfigured_tls(config.clone()),
        None => builder,
    };
    builder.build().map_err(|e| e.to_string())
}

/// A signing KMS client for one endpoint.
pub struct KmsClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    timeout: Duration,
    region: String,
    credential: Credential,
}

impl KmsClient {
    /// A client for `endpoint` signing as `credential` in `region`, with a per-request timeout.
    pub fn new(
        endpoint: &str,
        region: &str,
        credential: Credential,
        timeout: Duration,
    ) -> Result<KmsClient, String> {
        let endpoint = reqwest::Url::parse(endpoint)
            .map_err(|e| format!("bad endpoint URL {endpoint:?}: {e}"))?;
        Ok(KmsClient {
            http: http_client()?,
            endpoint,
            region: region.into(),
            credential,
            timeout,
        })
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls `operation` with a JSON body and returns the reply, or a transport error.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Reply, CallError> {
        self.call_raw(operation, body.to_string().into_bytes(), None)
            .await
    }

    /// Calls `operation` with raw body bytes (which need not be valid JSON), with the
    /// protocol headers `wire` asks for instead of awsJson1_1's (no `X-Amz-Target`, another
    /// `Content-Type`) when given. What is sent is what is signed.
    pub async fn call_raw(
        &self,
        operation: &str,
        body: Vec<u8>,
        wire: Option<&Wire>,
    ) -> Result<Reply, CallError> {
        let spec = Spec::kms();
        let target = format!("{}.{operation}", spec.service.target_prefix);
        let host = match (self.endpoint.host_str(), self.endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Err(CallError::NotSent("endpoint has no host".into())),
        };
        let content_type = wire
            .and_then(|w| w.content_type.as_deref())
            .unwrap_or(&spec.service.content_type);
        let send_target = !wire.is_some_and(|w| w.no_target);
        let mut base = vec![("host", host.as_str()), ("content-type", content_type)];
        if send_target {
            base.push(("x-amz-target", target.as_str()));
        }
        let signer = Signer {
            credential: &self.credential,
            region: &self.region,
            service: &spec.service.signing_name,
            time: SystemTime::now(),
        };
        let signable = Signable {
            method: "POST",
            uri: self.endpoint.path(),
            headers: &base,
            body: &body,
        };
        let (signed, _) = signer.sign(&signable).map_err(CallError::NotSent)?;
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .timeout(self.timeout)
            .header("content-type", content_type);
        if send_target {
            request = request.header("x-amz-target", &target);
        }
        for (k, v) in signed {
            request = request.header(k, v);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(CallError::from_reqwest)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-amzn-requestid");
        let content_type = header("content-type");
        let error_type = header("x-amzn-errortype");
        let bytes = read_capped(response, BODY_LIMIT)
            .await
            .map_err(CallError::from_body)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            request_id,
            content_type,
            error_type,
            body,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(text: &'static str, source: Option<Layer>) -> Layer {
        Layer {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn an_error_chain_names_every_cause_once() {
        let root = layer("connection reset by peer", None);
        let middle = layer("error reading a body from connection", Some(root));
        let top = layer("error decoding response body", Some(middle));
        assert_eq!(
            error_chain(&top),
            "error decoding response body: error reading a body from connection: connection reset by peer"
        );
        // A cause whose text the outer error already shows is not said twice.
        let echo = layer("timed out: deadline", Some(layer("deadline", None)));
        assert_eq!(error_chain(&echo), "timed out: deadline");
    }

    #[test]
    fn over_limit_errors_start_with_the_words_the_oracles_look_for() {
        for e in [
            BodyError::Declared { declared: 10 << 20 },
            BodyError::Overflow,
        ] {
            assert!(e.to_string().starts_with(OVER_LIMIT), "{e}");
            let call = CallError::from_body(e);
            assert!(matches!(call, CallError::Unknown(ref r) if r.starts_with(OVER_LIMIT)));
        }
    }
}
