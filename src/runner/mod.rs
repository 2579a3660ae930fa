//! Turns requests into signed awsJson1_1 calls on the wire and records what came back.

pub mod smoke;

use std::time::{Duration, SystemTime};

use serde_json::Value;

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
    /// The response body parsed as JSON (`Value::Null` if it is not JSON).
    pub body: Value,
    /// The raw body text.
    pub text: String,
}

impl Reply {
    /// The error name, parsed as AWS's protocol tests tell clients to, if this is an error.
    pub fn error_name(&self) -> Option<String> {
        if self.status < 300 {
            return None;
        }
        let raw = self
            .body
            .get("__type")
            .or_else(|| self.body.get("code"))
            .and_then(Value::as_str)?;
        let bare = raw.rsplit('#').next().unwrap_or(raw);
        Some(bare.split(':').next().unwrap_or(bare).to_string())
    }
}

/// A signing KMS client for one endpoint.
pub struct KmsClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
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
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(KmsClient {
            http,
            endpoint,
            region: region.into(),
            credential,
        })
    }

    /// Calls `operation` with a JSON body and returns the reply, or a transport error.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Reply, String> {
        self.call_raw(operation, body.to_string().into_bytes())
            .await
    }

    /// Calls `operation` with raw body bytes (which need not be valid JSON).
    pub async fn call_raw(&self, operation: &str, body: Vec<u8>) -> Result<Reply, String> {
        let spec = Spec::kms();
        let target = format!("{}.{operation}", spec.service.target_prefix);
        let host = match (self.endpoint.host_str(), self.endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Err("endpoint has no host".into()),
        };
        let base = [
            ("host", host.as_str()),
            ("content-type", spec.service.content_type.as_str()),
            ("x-amz-target", target.as_str()),
        ];
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
        let (signed, _) = signer.sign(&signable)?;
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header("content-type", &spec.service.content_type)
            .header("x-amz-target", &target);
        for (k, v) in signed {
            request = request.header(k, v);
        }
        let response = request.body(body).send().await.map_err(|e| e.to_string())?;
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
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            request_id,
            content_type,
            body,
            text,
        })
    }
}
