//! KMS's check of a real XKS proxy: one GetHealthStatus call within KMS's 250 ms budget for
//! Create, Update and Connect of an external key store, and what its answer means to KMS.
//!
//! | answer | behaviour | Connect | Create/Update |
//! |---|---|---|---|
//! | 200, valid health body | connects | CONNECTED | succeeds |
//! | 200, every fleet entry UNAVAILABLE | unreachable | XKS_PROXY_NOT_REACHABLE | XksProxyUriUnreachableException |
//! | 200 with an invalid body, 400, 500, any other status | invalid-response | XKS_PROXY_INVALID_RESPONSE | XksProxyInvalidResponseException |
//! | 401 | rejects-credentials | INVALID_CREDENTIALS | XksProxyIncorrectAuthenticationCredentialException |
//! | 403 | access-denied | XKS_PROXY_ACCESS_DENIED | succeeds (the health check is exempt from authorization) |
//! | 404 | invalid-configuration | XKS_PROXY_INVALID_CONFIGURATION | XksProxyInvalidConfigurationException |
//! | 429, 503; refused or broken connection | unreachable | XKS_PROXY_NOT_REACHABLE | XksProxyUriUnreachableException |
//! | no answer within the budget | times-out | XKS_PROXY_TIMED_OUT | XksProxyUriUnreachableException |
//! | TLS handshake failure | bad-tls | XKS_PROXY_INVALID_TLS_CONFIGURATION | XksProxyUriUnreachableException |
//!
//! The last two columns are the model's (`xks_connect_error`, `proxy_check_error`); this file
//! only turns an answer into a behaviour.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::model::{ProbeTarget, XksBehaviour, XksObservation};
use crate::sigv4::Credential;
use crate::xks::client::SIGNING_NAME;
use crate::xks::tls::Roots;
use crate::xks::{RawRequest, SendError, Signing, XksClient, XksReply, XksTarget};

/// What a valid GetHealthStatus body says about the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetHealth {
    /// At least one entry is ACTIVE or DEGRADED.
    Serving,
    /// Every entry is UNAVAILABLE.
    Unavailable,
}

/// Checks a GetHealthStatus body against the XKS spec's response shape (the one the
/// certification checks use); the error names the first problem.
pub fn check_health_body(body: &Value) -> Result<FleetHealth, String> {
    let spec = crate::spec::Spec::xks();
    if let Some(first) = crate::xks::checks::shape::problems(spec, "GetHealthStatusResponse", body)
        .into_iter()
        .next()
    {
        return Err(first);
    }
    let serving = body["ekmFleetDetails"]
        .as_array()
        .is_some_and(|fleet| fleet.iter().any(|e| e["healthStatus"] != "UNAVAILABLE"));
    Ok(if serving {
        FleetHealth::Serving
    } else {
        FleetHealth::Unavailable
    })
}

/// What KMS makes of a GetHealthStatus answer (or of getting none) within `budget`.
pub fn classify(answer: &Result<XksReply, SendError>, budget: Duration) -> XksBehaviour {
    let reply = match answer {
        Err(SendError::Timeout(_)) => return XksBehaviour::TimesOut,
        Err(SendError::Tls(_)) => return XksBehaviour::BadTls,
        Err(SendError::Connect(_) | SendError::Broken(_) | SendError::NotSent(_)) => {
            return XksBehaviour::Unreachable;
        }
        Ok(reply) => reply,
    };
    // A reference proxy says how late it answers on purpose: the clock would also count the
    // machine's load, which is no behaviour of the proxy.
    if reply.declared_delay.map_or(reply.latency, |d| d) > budget {
        return XksBehaviour::TimesOut;
    }
    match reply.status {
        200 => match check_health_body(&reply.body) {
            Ok(FleetHealth::Serving) => XksBehaviour::Connects,
            Ok(FleetHealth::Unavailable) => XksBehaviour::Unreachable,
            Err(_) => XksBehaviour::InvalidResponse,
        },
        401 => XksBehaviour::RejectsCredentials,
        403 => XksBehaviour::AccessDenied,
        404 => XksBehaviour::InvalidConfiguration,
        429 | 503 => XksBehaviour::Unreachable,
        _ => XksBehaviour::InvalidResponse,
    }
}

/// The GetHealthStatus request body KMS sends for `operation`.
pub fn health_request(kms_request_id: &str, operation: &str) -> Value {
    json!({
        "requestMetadata": { "kmsRequestId": kms_request_id, "kmsOperation": operation }
    })
}

/// Which HTTPS client reaches a proxy: its endpoint, address, trusted CA and time budget.
type ClientKey = (String, std::net::SocketAddr, Option<String>, Duration);

/// One kept-alive client per proxy, shared by every emulator of the process (an embedded run
/// starts many, all checking the same proxies): connections and TLS sessions are reused as
/// KMS reuses its connections to a proxy, rather than each emulator handshaking anew.
static CLIENTS: LazyLock<Mutex<HashMap<ClientKey, XksClient>>> = LazyLock::new(Mutex::default);

/// Calls real proxies for one emulator.
pub struct Prober {
    budget: Duration,
    region: String,
}

impl Prober {
    /// A prober that signs for `region` and waits `budget` for each answer.
    pub fn new(region: &str, budget: Duration) -> Prober {
        Prober {
            budget,
            region: region.to_string(),
        }
    }

    /// How long a probe waits for an answer: longer than KMS's budget, so that a reference
    /// proxy's answer (timed by the delay it declares) arrives on a loaded machine; an answer
    /// later than the budget from any other proxy is a time-out all the same.
    fn wait(&self) -> Duration {
        self.budget * 8
    }

    /// Calls the proxy's GetHealthStatus as KMS does for `operation`, and says what it saw.
    pub async fn observe(&self, target: ProbeTarget, operation: &str) -> XksObservation {
        let behaviour = match self.client(&target) {
            Ok(client) => {
                let call = async {
                    match self.health(&client, &target, operation).await {
                        // A kept-alive connection the proxy closed meanwhile (it restarted):
                        // once more, on a fresh connection, within what is left of the budget.
                        Err(SendError::Broken(_)) => self.health(&client, &target, operation).await,
                        answer => answer,
                    }
                };
                let wait = self.wait();
                let answer = tokio::time::timeout(wait, call)
                    .await
                    .unwrap_or(Err(SendError::Timeout(wait)));
                classify(&answer, self.budget)
            }
            // A CA certificate rustls refuses: nothing the proxy presents can be trusted.
            Err(_) => XksBehaviour::BadTls,
        };
        XksObservation { target, behaviour }
    }

    async fn health(
        &self,
        client: &XksClient,
        target: &ProbeTarget,
        operation: &str,
    ) -> Result<XksReply, SendError> {
        let body = health_request(&uuid::Uuid::new_v4().to_string(), operation);
        let request = RawRequest {
            method: "POST".into(),
            path: format!("{}/health", target.uri_path.trim_end_matches('/')),
            body: body.to_string().into_bytes(),
            signing: Some(Signing {
                credential: Credential::new(
                    target.access_key_id.clone(),
                    target.secret_access_key.0.clone(),
                ),
                region: self.region.clone(),
                service: SIGNING_NAME.into(),
                time: SystemTime::now(),
            }),
            sent_body: None,
        };
        client.send(&request).await
    }

    /// The client for the proxy of `target`, made on first use.
    fn client(&self, target: &ProbeTarget) -> Result<XksClient, String> {
        let key = (
            target.uri_endpoint.clone(),
            target.address,
            target.ca_cert.clone(),
            self.budget,
        );
        let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let host = target
            .uri_endpoint
            .strip_prefix("https://")
            .unwrap_or(&target.uri_endpoint);
        let client = XksClient::new(XksTarget {
            endpoint: format!("https://{host}:{}", target.address.port()),
            uri_path: target.uri_path.clone(),
            region: self.region.clone(),
            // Requests are signed one by one with the store's credential (see `health`).
            credential: Credential::new("", ""),
            roots: target.ca_cert.clone().map_or(Roots::System, Roots::Pem),
            identity: None,
            resolve: Some(target.address),
            timeout: self.wait(),
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = crate::xks::KMS_BUDGET;

    fn healthy() -> Value {
        json!({
            "xksProxyFleetSize": 2,
            "xksProxyVendor": "ckscheck",
            "xksProxyModel": "reference 0.1",
            "ekmVendor": "ckscheck",
            "ekmFleetDetails": [
                { "id": "hsm-1", "model": "soft", "healthStatus": "ACTIVE" },
                { "id": "hsm-2", "model": "soft", "healthStatus": "UNAVAILABLE" },
            ],
        })
    }

    fn reply(status: u16, body: Value, latency_ms: u64) -> Result<XksReply, SendError> {
        Ok(XksReply {
            status,
            content_type: Some("application/json".into()),
            text: body.to_string(),
            body,
            latency: Duration::from_millis(latency_ms),
            declared_delay: None,
        })
    }

    fn error(name: &str) -> Value {
        json!({ "errorName": name })
    }

    fn with(mut body: Value, pointer: &str, value: Value) -> Value {
        *body.pointer_mut(pointer).expect("the member exists") = value;
        body
    }

    fn without(mut body: Value, member: &str) -> Value {
        body.as_object_mut().expect("an object").remove(member);
        body
    }

    /// The mapping of the fact sheet (§4, §5: `shared/xks-proxy-api.md`), case by case.
    fn expectations() -> Vec<(&'static str, Result<XksReply, SendError>, XksBehaviour)> {
        use XksBehaviour::*;
        let all_unavailable = with(
            healthy(),
            "/ekmFleetDetails/0/healthStatus",
            json!("UNAVAILABLE"),
        );
        let degraded = with(
            healthy(),
            "/ekmFleetDetails/0/healthStatus",
            json!("DEGRADED"),
        );
        vec![
            ("healthy", reply(200, healthy(), 3), Connects),
            (
                "one DEGRADED entry still serves",
                reply(200, degraded, 3),
                Connects,
            ),
            (
                "every entry UNAVAILABLE",
                reply(200, all_unavailable, 3),
                Unreachable,
            ),
            (
                "missing ekmVendor",
                reply(200, without(healthy(), "ekmVendor"), 3),
                InvalidResponse,
            ),
            (
                "fleet size 0",
                reply(200, with(healthy(), "/xksProxyFleetSize", json!(0)), 3),
                InvalidResponse,
            ),
            (
                "empty fleet",
                reply(200, with(healthy(), "/ekmFleetDetails", json!([])), 3),
                InvalidResponse,
            ),
            (
                "unknown health status",
                reply(
                    200,
                    with(healthy(), "/ekmFleetDetails/1/healthStatus", json!("FINE")),
                    3,
                ),
                InvalidResponse,
            ),
            ("not JSON", reply(200, Value::Null, 3), InvalidResponse),
            (
                "400 ValidationException",
                reply(400, error("ValidationException"), 3),
                InvalidResponse,
            ),
            (
                "401 AuthenticationFailedException",
                reply(401, error("AuthenticationFailedException"), 3),
                RejectsCredentials,
            ),
            (
                "403 AccessDeniedException",
                reply(403, error("AccessDeniedException"), 3),
                AccessDenied,
            ),
            (
                "404 InvalidUriPathException",
                reply(404, error("InvalidUriPathException"), 3),
                InvalidConfiguration,
            ),
            (
                "429 ThrottlingException",
                reply(429, error("ThrottlingException"), 3),
                Unreachable,
            ),
            (
                "500 InternalException",
                reply(500, error("InternalException"), 3),
                InvalidResponse,
            ),
            (
                "501 UnsupportedOperationException",
                reply(501, error("UnsupportedOperationException"), 3),
                InvalidResponse,
            ),
            (
                "503 DependencyTimeoutException",
                reply(503, error("DependencyTimeoutException"), 3),
                Unreachable,
            ),
            (
                "healthy but after the budget",
                reply(200, healthy(), 400),
                TimesOut,
            ),
            (
                "no answer in time",
                Err(SendError::Timeout(BUDGET)),
                TimesOut,
            ),
            (
                "connection refused",
                Err(SendError::Connect("refused".into())),
                Unreachable,
            ),
            (
                "connection broken",
                Err(SendError::Broken("reset".into())),
                Unreachable,
            ),
            (
                "untrusted certificate",
                Err(SendError::Tls("UnknownIssuer".into())),
                BadTls,
            ),
        ]
    }

    /// The cases where `map` disagrees with the fact sheet.
    fn disagreements(
        map: impl Fn(&Result<XksReply, SendError>, Duration) -> XksBehaviour,
    ) -> Vec<String> {
        expectations()
            .into_iter()
            .filter_map(|(case, answer, want)| {
                let got = map(&answer, BUDGET);
                (got != want).then(|| format!("{case}: {got:?}, want {want:?}"))
            })
            .collect()
    }

    #[test]
    fn answers_map_to_the_fact_sheet_behaviours() {
        assert_eq!(disagreements(classify), Vec::<String>::new());
    }

    /// Fails when a reference proxy's healthy answer delivered late by a loaded machine is
    /// taken for a time-out, or when its declared delay is ignored.
    #[test]
    fn a_reference_proxy_is_timed_by_the_delay_it_declares() {
        let declared = |latency_ms, delay_ms: Option<u64>| {
            let mut answer = reply(200, healthy(), latency_ms);
            if let Ok(r) = answer.as_mut() {
                r.declared_delay = delay_ms.map(Duration::from_millis);
            }
            classify(&answer, BUDGET)
        };
        assert_eq!(declared(900, Some(0)), XksBehaviour::Connects);
        assert_eq!(declared(10, Some(300)), XksBehaviour::TimesOut);
        assert_eq!(declared(900, None), XksBehaviour::TimesOut);
        assert_eq!(declared(10, None), XksBehaviour::Connects);
    }

    #[test]
    fn a_planted_wrong_mapping_is_caught() {
        // 401 and 403 swapped, and an all-UNAVAILABLE fleet taken for a healthy one.
        let wrong = |answer: &Result<XksReply, SendError>, budget| match answer {
            Ok(r) if r.status == 401 => XksBehaviour::AccessDenied,
            Ok(r) if r.status == 403 => XksBehaviour::RejectsCredentials,
            Ok(r) if check_health_body(&r.body) == Ok(FleetHealth::Unavailable) => {
                XksBehaviour::Connects
            }
            _ => classify(answer, budget),
        };
        let found = disagreements(wrong);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("401 ")), "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("403 ")), "{found:?}");
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("every entry UNAVAILABLE")),
            "{found:?}"
        );
    }

    #[test]
    fn health_body_problems_are_named() {
        let e = check_health_body(&without(healthy(), "xksProxyModel")).unwrap_err();
        assert!(e.contains("xksProxyModel"), "{e}");
        let eleven: Vec<Value> = (0..11)
            .map(|i| json!({ "id": format!("e{i}"), "model": "m", "healthStatus": "ACTIVE" }))
            .collect();
        let e = check_health_body(&with(healthy(), "/ekmFleetDetails", json!(eleven))).unwrap_err();
        assert!(e.contains("11 entries"), "{e}");
        assert_eq!(check_health_body(&healthy()), Ok(FleetHealth::Serving));
    }

    #[test]
    fn the_request_names_the_kms_operation() {
        let body = health_request("id-1", "ConnectCustomKeyStore");
        assert_eq!(
            body["requestMetadata"]["kmsOperation"],
            "ConnectCustomKeyStore"
        );
        assert_eq!(body["requestMetadata"]["kmsRequestId"], "id-1");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_a_bad_ca_is_bad_tls() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let target = ProbeTarget {
            uri_endpoint: "https://xks-ok.example.test".into(),
            uri_path: "/kms/xks/v1".into(),
            access_key_id: "AKIDPROBETESTAAAAAAA".into(),
            secret_access_key: crate::model::Secret("s".repeat(43)),
            address,
            ca_cert: Some(crate::xks::tls::Authority::generate("t").unwrap().cert_pem),
            at_create: false,
        };
        let prober = Prober::new("us-east-1", BUDGET);
        let seen = prober
            .observe(target.clone(), "ConnectCustomKeyStore")
            .await;
        assert_eq!(seen.behaviour, XksBehaviour::Unreachable);
        assert_eq!(seen.target, target);
        let bad_ca = ProbeTarget {
            ca_cert: Some("not a certificate".into()),
            ..target
        };
        let seen = prober.observe(bad_ca, "ConnectCustomKeyStore").await;
        assert_eq!(seen.behaviour, XksBehaviour::BadTls);
    }
}
