//! SigV4 signing and verification (via the aws-sigv4 crate), shared by clients and servers.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// An access key pair. The secret is never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .finish()
    }
}

impl Credential {
    /// A long-term credential.
    pub fn new(access_key_id: impl Into<String>, secret: impl Into<String>) -> Credential {
        Credential {
            access_key_id: access_key_id.into(),
            secret_access_key: secret.into(),
            session_token: None,
        }
    }

    /// Parses `ACCESS_KEY:SECRET`.
    pub fn parse_pair(text: &str) -> Result<Credential, String> {
        match text.split_once(':') {
            Some((ak, sk)) if !ak.is_empty() && !sk.is_empty() => Ok(Credential::new(ak, sk)),
            _ => Err("expected ACCESS_KEY:SECRET (both non-empty)".into()),
        }
    }
}

/// Why a request's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    Missing,
    /// The header cannot be parsed, or names another algorithm, service or date.
    #[error("{0}")]
    Malformed(String),
    /// The access key ID is not known.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The request time is too far from the server's clock.
    #[error("Signature expired: the request time {0} is more than 5 minutes from the server time.")]
    Expired(String),
    /// The signature does not match.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    BadSignature,
}

/// The signing scope of a request: who signed it for which region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Access key ID.
    pub access_key_id: String,
    /// `yyyymmdd`.
    pub date: String,
    /// Region.
    pub region: String,
    /// Service signing name.
    pub service: String,
}

struct ParsedAuthorization {
    scope: Scope,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(value: &str) -> Result<ParsedAuthorization, AuthError> {
    let malformed = |m: &str| AuthError::Malformed(m.to_string());
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| malformed("Authorization header must use AWS4-HMAC-SHA256."))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(malformed("Authorization header has an unknown part.")),
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(malformed(
            "Authorization header needs Credential, SignedHeaders and Signature.",
        ));
    };
    let fields: Vec<&str> = credential.split('/').collect();
    let [ak, date, region, service, "aws4_request"] = fields[..] else {
        return Err(malformed(
            "Credential must be AKID/yyyymmdd/region/service/aws4_request.",
        ));
    };
    Ok(ParsedAuthorization {
        scope: Scope {
            access_key_id: ak.into(),
            date: date.into(),
            region: region.into(),
            service: service.into(),
        },
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: signature.to_string(),
    })
}

/// Parses an `x-amz-date` value (`yyyymmddThhmmssZ`).
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// The parts of an HTTP request that SigV4 covers; `headers` must include `host`.
pub struct Signable<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path and query, already URI-encoded.
    pub uri: &'a str,
    /// The headers to sign.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// Who signs, for which region and service, and at what time.
pub struct Signer<'a> {
    /// The key pair.
    pub credential: &'a Credential,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Service signing name, e.g. `kms` or `kms-xks-proxy`.
    pub service: &'a str,
    /// Signing time.
    pub time: SystemTime,
}

impl Signer<'_> {
    /// Signs a request: the headers to add (`authorization`, `x-amz-date`, and the session
    /// token header for temporary credentials) and the signature.
    pub fn sign(&self, request: &Signable<'_>) -> Result<(Vec<(String, String)>, String), String> {
        let identity = Credentials::new(
            &self.credential.access_key_id,
            &self.credential.secret_access_key,
            self.credential.session_token.clone(),
            None,
            "ckscheck",
        )
        .into();
        let mut settings = SigningSettings::default();
        // Sign exactly the headers given: a verifier passes the client's signed headers.
        settings.excluded_headers = None;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            request.method,
            request.uri,
            request.headers.iter().copied(),
            SignableBody::Bytes(request.body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, signature) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let (headers, _) = instructions.into_parts();
        let headers = headers
            .into_iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        Ok((headers, signature))
    }
}

impl Signer<'_> {
    /// Every header of a signed awsJson1_1 POST of `operation` to `host` and `path`: Host,
    /// Content-Type, X-Amz-Target (of the KMS spec) and the signature's.
    pub fn json_post(
        &self,
        host: &str,
        path: &str,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        let service = &crate::spec::Spec::kms().service;
        let target = format!("{}.{operation}", service.target_prefix);
        let base = [
            ("host", host),
            ("content-type", service.content_type.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        let (signed, _) = self.sign(&Signable {
            method: "POST",
            uri: path,
            headers: &base,
            body,
        })?;
        Ok(base
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(signed)
            .collect())
    }
}

/// Checks SigV4 signatures for one service against a set of known credentials.
pub struct Verifier {
    /// The credentials requests may be signed with.
    pub credentials: Vec<Credential>,
    /// The service signing name requests must be scoped to.
    pub service: String,
    /// The region requests must be scoped to; any region when None.
    pub region: Option<String>,
    /// Largest accepted distance between the request time and the server clock.
    pub max_skew: Duration,
}

impl Verifier {
    /// Verifies one request against the server clock `now`; returns its signing scope.
    pub fn verify(
        &self,
        method: &str,
        uri: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Scope, AuthError> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?
            .to_str()
            .map_err(|_| AuthError::Malformed("Authorization header is not text.".into()))?;
        let auth = parse_authorization(value)?;
        if auth.scope.service != self.service {
            return Err(AuthError::Malformed(format!(
                "Credential should be scoped to correct service: '{}'.",
                self.service
            )));
        }
        if let Some(region) = &self.region
            && auth.scope.region != *region
        {
            return Err(AuthError::Malformed(format!(
                "Credential should be scoped to a valid region: '{region}'."
            )));
        }
        let credential = self
            .credentials
            .iter()
            .find(|c| c.access_key_id == auth.scope.access_key_id)
            .ok_or(AuthError::UnknownAccessKey)?;
        let date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AuthError::Malformed("The request has no valid x-amz-date header.".into())
            })?;
        let time = parse_amz_date(date).ok_or_else(|| {
            AuthError::Malformed(format!("x-amz-date {date:?} is not yyyymmddThhmmssZ."))
        })?;
        if !date.starts_with(&auth.scope.date) {
            return Err(AuthError::Malformed(
                "The credential scope date does not match x-amz-date.".into(),
            ));
        }
        let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
        if skew > self.max_skew {
            return Err(AuthError::Expired(date.to_string()));
        }
        let mut signing_credential = credential.clone();
        signing_credential.session_token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut signed: Vec<(&str, &str)> = Vec::new();
        for name in &auth.signed_headers {
            if name == "x-amz-date" || name == "x-amz-security-token" {
                continue;
            }
            let Some(v) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) else {
                return Err(AuthError::BadSignature);
            };
            signed.push((name.as_str(), v));
        }
        let signer = Signer {
            credential: &signing_credential,
            region: &auth.scope.region,
            service: &self.service,
            time,
        };
        let request = Signable {
            method,
            uri,
            headers: &signed,
            body,
        };
        let (_, expected) = signer.sign(&request).map_err(AuthError::Malformed)?;
        if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
            Ok(auth.scope)
        } else {
            Err(AuthError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 3] = [
        ("host", "127.0.0.1:4566"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.DescribeCustomKeyStores"),
    ];

    fn signed_headers(body: &[u8], cred: &Credential, time: SystemTime) -> HeaderMap {
        let signer = Signer {
            credential: cred,
            region: "us-east-1",
            service: "kms",
            time,
        };
        let request = Signable {
            method: "POST",
            uri: "/",
            headers: &BASE,
            body,
        };
        let (added, _) = signer.sign(&request).unwrap();
        let mut map = HeaderMap::new();
        let base = BASE.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        for (k, v) in base.chain(added) {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn verifier(credentials: Vec<Credential>, service: &str) -> Verifier {
        Verifier {
            credentials,
            service: service.into(),
            region: None,
            max_skew: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let cred = Credential::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let now = SystemTime::now();
        let body = br#"{"Limit":5}"#;
        let h = signed_headers(body, &cred, now);
        let good = verifier(vec![cred.clone()], "kms");
        assert_eq!(
            good.verify("POST", "/", &h, body, now).unwrap().region,
            "us-east-1"
        );
        let changed = good.verify("POST", "/", &h, br#"{"Limit":6}"#, now);
        assert_eq!(changed, Err(AuthError::BadSignature));
        let other = verifier(vec![Credential::new("AKIDEXAMPLE", "another")], "kms");
        assert_eq!(
            other.verify("POST", "/", &h, body, now),
            Err(AuthError::BadSignature)
        );
        let unknown = verifier(vec![Credential::new("AKIDOTHER", "x")], "kms");
        assert_eq!(
            unknown.verify("POST", "/", &h, body, now),
            Err(AuthError::UnknownAccessKey)
        );
        let mut region = verifier(vec![cred.clone()], "kms");
        region.region = Some("eu-west-1".into());
        assert!(matches!(
            region.verify("POST", "/", &h, body, now),
            Err(AuthError::Malformed(m)) if m.contains("region")
        ));
        region.region = Some("us-east-1".into());
        assert!(region.verify("POST", "/", &h, body, now).is_ok());
        let service = verifier(vec![cred.clone()], "kms-xks-proxy");
        assert!(matches!(
            service.verify("POST", "/", &h, body, now),
            Err(AuthError::Malformed(_))
        ));
        let late = now + Duration::from_secs(360);
        assert!(matches!(
            good.verify("POST", "/", &h, body, late),
            Err(AuthError::Expired(_))
        ));
        let early = now - Duration::from_secs(360);
        assert!(matches!(
            good.verify("POST", "/", &h, body, early),
            Err(AuthError::Expired(_))
        ));
    }

    #[test]
    fn amz_dates_parse_to_the_right_instant() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_440_938_160);
        assert!(parse_amz_date("20151330T123600Z").is_none());
        assert!(parse_amz_date("2015-08-30").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let cred = Credential::new("AKID", "very-secret-value");
        assert!(!format!("{cred:?}").contains("very-secret-value"));
    }
}
