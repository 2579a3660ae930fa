//! Real XKS proxy connections: the embedded emulator calls real proxies (fixture entries with an
//! `address`) for KMS's health checks, and their answers decide Create, Update and Connect of
//! external key stores. Everything goes over real HTTP (the emulator) and HTTPS (the proxies).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ckscheck::emulator::{EmulatorConfig, RunningEmulator, start_on_loopback};
use ckscheck::generate::backends::{Backend, create_body};
use ckscheck::model::fixtures::XksProxy;
use ckscheck::model::{Fixtures, ModelConfig, XksBehaviour};
use ckscheck::proxy::{
    self, DEFAULT_CREDENTIAL, Prefix, ProxyConfig, ProxyFault, ROTATED_CREDENTIAL, RunningProxy,
};
use ckscheck::runner::{KmsClient, Reply};
use ckscheck::sigv4::Credential;
use ckscheck::xks::tls::Authority;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Bound on any single await.
const STEP: Duration = Duration::from_secs(5);

fn builtin_proxy(endpoint: &str) -> XksProxy {
    Fixtures::builtin()
        .proxy(endpoint)
        .expect("a built-in proxy")
        .clone()
}

async fn emulator(fixtures: Fixtures) -> (RunningEmulator, KmsClient) {
    emulator_with_delay(fixtures, 0).await
}

/// An emulator whose CONNECTING and DISCONNECTING last `delay_ms`.
async fn emulator_with_delay(fixtures: Fixtures, delay_ms: u64) -> (RunningEmulator, KmsClient) {
    let config = EmulatorConfig {
        model: ModelConfig {
            connect_delay_ms: delay_ms,
            ..ModelConfig::default()
        },
        fixtures: fixtures.into(),
        ..EmulatorConfig::default()
    };
    let emulator = timeout(STEP, start_on_loopback(config))
        .await
        .expect("the emulator starts in time")
        .expect("the emulator starts");
    let client = KmsClient::new(
        &emulator.url(),
        "us-east-1",
        Credential::new(
            "AKIDXKSCONNECTTESTAA",
            "xksConnectTestSecretAAAAAAAAAAAAAAAAAAAAAA",
        ),
        STEP,
    )
    .expect("a client");
    (emulator, client)
}

async fn call(client: &KmsClient, operation: &str, body: &Value) -> Reply {
    timeout(STEP, client.call(operation, body))
        .await
        .expect("an answer in time")
        .expect("an HTTP answer")
}

/// A Create request for an external store with the entry's own path and credential (the
/// generator's body for the entry, public endpoint).
fn create_request(name: &str, p: &XksProxy) -> Value {
    let fixtures = Fixtures {
        clusters: Vec::new(),
        xks_proxies: vec![p.clone()],
    };
    create_body(
        &fixtures,
        Backend::Proxy {
            index: 0,
            vpc: false,
        },
        name,
        true,
    )
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("its address");
    drop(listener);
    address
}

#[tokio::test]
async fn a_real_proxy_that_is_not_there_makes_create_fail_although_its_entry_connects() {
    let mut fixtures = Fixtures::builtin();
    let entry = fixtures
        .xks_proxies
        .iter_mut()
        .find(|p| p.uri_endpoint == "https://xks-ok.example.test")
        .expect("xks-ok");
    assert_eq!(entry.behaviour_at_create, XksBehaviour::Connects);
    entry.address = Some(closed_port());
    let (emulator, client) = emulator(fixtures).await;

    let ok = builtin_proxy("https://xks-ok.example.test");
    let reply = call(
        &client,
        "CreateCustomKeyStore",
        &create_request("gone", &ok),
    )
    .await;
    assert_eq!(
        reply.error_name().as_deref(),
        Some("XksProxyUriUnreachableException"),
        "{}",
        reply.text
    );
    // A simulated entry next to it still answers from its fixture entry.
    let ok2 = builtin_proxy("https://xks-ok-2.example.test");
    let reply = call(
        &client,
        "CreateCustomKeyStore",
        &create_request("sim", &ok2),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    emulator.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Against the reference proxy: CONNECTED, then every FAILED code the way it happens in life
// ---------------------------------------------------------------------------------------------

/// The host the proxy's certificate names (KMS's endpoint is `https://` + this, no port).
const HOST: &str = "xks-ok.example.test";
/// The prefix the store under test connects through.
const PATH_CONNECT: &str = "/connect/kms/xks/v1";
/// The prefix the Create and Update checks use (a second store on the same proxy).
const PATH_CREATE: &str = "/create/kms/xks/v1";

/// How the proxy is changed between Create and Connect, as it happens in life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Healthy, as configured.
    None,
    /// Stopped: nothing listens on its port.
    Stopped,
    /// Restarted with another credential only (a rotation gone wrong).
    OtherCredential,
    /// Restarted with other URI path prefixes.
    OtherPath,
    /// Restarted with a certificate from a CA KMS does not trust.
    OtherCa,
    /// Restarted with a planted fault.
    Fault(ProxyFault),
}

/// What the fact sheet (§4, §5) says KMS does against a proxy changed so: the Create/Update
/// exception (None: they succeed) and the connection error code (None: CONNECTED).
fn expected(change: Change) -> (Option<&'static str>, Option<&'static str>) {
    match change {
        Change::None => (None, None),
        Change::Stopped => (
            Some("XksProxyUriUnreachableException"),
            Some("XKS_PROXY_NOT_REACHABLE"),
        ),
        Change::OtherCredential => (
            Some("XksProxyIncorrectAuthenticationCredentialException"),
            Some("INVALID_CREDENTIALS"),
        ),
        Change::OtherPath => (
            Some("XksProxyInvalidConfigurationException"),
            Some("XKS_PROXY_INVALID_CONFIGURATION"),
        ),
        Change::OtherCa => (
            Some("XksProxyUriUnreachableException"),
            Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
        ),
        Change::Fault(ProxyFault::Slow) => (
            Some("XksProxyUriUnreachableException"),
            Some("XKS_PROXY_TIMED_OUT"),
        ),
        // GetHealthStatus is exempt from secondary authorization: no Create exception exists.
        Change::Fault(ProxyFault::DeniesAccess) => (None, Some("XKS_PROXY_ACCESS_DENIED")),
        Change::Fault(ProxyFault::HealthMissingMember) => (
            Some("XksProxyInvalidResponseException"),
            Some("XKS_PROXY_INVALID_RESPONSE"),
        ),
        Change::Fault(ProxyFault::HealthUnavailable) => (
            Some("XksProxyUriUnreachableException"),
            Some("XKS_PROXY_NOT_REACHABLE"),
        ),
        Change::Fault(other) => panic!("no expectation for {other}"),
    }
}

/// The reference proxy on a fixed loopback port, restartable with changes.
struct Proxy {
    address: SocketAddr,
    ca: Arc<Authority>,
    running: Option<RunningProxy>,
}

impl Proxy {
    async fn start(ca: Arc<Authority>) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
        let address = listener.local_addr().expect("its address");
        let mut p = Proxy {
            address,
            ca,
            running: None,
        };
        p.running = Some(p.serve(listener, Change::None).await);
        p
    }

    async fn serve(&self, listener: TcpListener, change: Change) -> RunningProxy {
        let mut config = ProxyConfig::reference(HOST);
        config.authority = Some(self.ca.clone());
        let credential = match change {
            Change::OtherCredential => ROTATED_CREDENTIAL.clone(),
            _ => DEFAULT_CREDENTIAL.clone(),
        };
        let paths = match change {
            Change::OtherPath => ["/moved/kms/xks/v1", "/moved-too/kms/xks/v1"],
            _ => [PATH_CONNECT, PATH_CREATE],
        };
        config.prefixes = paths
            .iter()
            .map(|p| Prefix {
                uri_path: p.to_string(),
                credentials: vec![credential.clone()],
            })
            .collect();
        if change == Change::OtherCa {
            let stranger = Authority::generate("a CA KMS does not trust").expect("a CA");
            config.authority = Some(Arc::new(stranger));
        }
        if let Change::Fault(f) = change {
            config.faults = vec![f];
        }
        timeout(STEP, proxy::start(listener, config))
            .await
            .expect("the proxy starts in time")
            .expect("the proxy starts")
    }

    /// Stops the proxy and, unless the change is `Stopped`, starts it again on the same port.
    async fn change(&mut self, change: Change) {
        if let Some(running) = self.running.take() {
            timeout(STEP, running.stop())
                .await
                .expect("the proxy stops");
        }
        if change != Change::Stopped {
            let listener = TcpListener::bind(self.address)
                .await
                .expect("the proxy's port is free again");
            self.running = Some(self.serve(listener, change).await);
        }
    }

    /// The fixture entry for this proxy: expected to connect (the emulator must find out).
    fn entry(&self) -> XksProxy {
        let mut entry = builtin_proxy("https://xks-ok.example.test");
        entry.uri_path = PATH_CONNECT.into();
        entry.access_key_id = DEFAULT_CREDENTIAL.access_key_id.clone();
        entry.secret_access_key = DEFAULT_CREDENTIAL.secret_access_key.clone();
        entry.address = Some(self.address);
        entry.ca_cert = Some(self.ca.cert_pem.clone());
        entry
    }
}

fn store_request(name: &str, entry: &XksProxy, path: &str) -> Value {
    let mut body = create_request(name, entry);
    body["XksProxyUriPath"] = json!(path);
    body
}

/// Polls Describe until the store leaves CONNECTING/DISCONNECTING; its state and error code.
async fn settled(client: &KmsClient, id: &str) -> (String, Option<String>) {
    let deadline = Instant::now() + STEP;
    loop {
        let reply = call(
            client,
            "DescribeCustomKeyStores",
            &json!({ "CustomKeyStoreId": id }),
        )
        .await;
        let entry = &reply.body["CustomKeyStores"][0];
        let state = entry["ConnectionState"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !state.ends_with("ING") {
            let code = entry["ConnectionErrorCode"].as_str().map(str::to_string);
            return (state, code);
        }
        assert!(Instant::now() < deadline, "{id} stays {state}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The error name of a reply, None for a 200.
fn outcome(reply: &Reply) -> Option<String> {
    if reply.status == 200 {
        None
    } else {
        Some(reply.error_name().unwrap_or_else(|| reply.text.clone()))
    }
}

/// A reference proxy playing xks-ok, an emulator whose transitions last `delay_ms`, and a
/// DISCONNECTED store on the proxy with path PATH_CONNECT: (proxy, its entry, emulator,
/// client, store ID).
async fn store_on_reference_proxy(
    delay_ms: u64,
) -> (Proxy, XksProxy, RunningEmulator, KmsClient, String) {
    let ca = Arc::new(Authority::generate("ckscheck xks_connect test CA").expect("a CA"));
    let proxy = Proxy::start(ca).await;
    let entry = proxy.entry();
    let mut fixtures = Fixtures::builtin();
    let slot = fixtures
        .xks_proxies
        .iter_mut()
        .find(|p| p.uri_endpoint == entry.uri_endpoint)
        .expect("xks-ok");
    *slot = entry.clone();
    let (emulator, client) = emulator_with_delay(fixtures, delay_ms).await;
    let created = call(
        &client,
        "CreateCustomKeyStore",
        &store_request("xks", &entry, PATH_CONNECT),
    )
    .await;
    assert_eq!(outcome(&created), None, "{}", created.text);
    let id = created.body["CustomKeyStoreId"]
        .as_str()
        .expect("an ID")
        .to_string();
    (proxy, entry, emulator, client, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_through_the_reference_proxy_and_fails_with_each_code_as_the_proxy_breaks() {
    let started = Instant::now();
    let (mut proxy, entry, emulator, client, id) = store_on_reference_proxy(20).await;
    let by_id = json!({ "CustomKeyStoreId": id });

    let changes = [
        Change::None,
        Change::Stopped,
        Change::OtherCredential,
        Change::OtherPath,
        Change::OtherCa,
        Change::Fault(ProxyFault::Slow),
        Change::Fault(ProxyFault::DeniesAccess),
        Change::Fault(ProxyFault::HealthMissingMember),
        Change::Fault(ProxyFault::HealthUnavailable),
        Change::None,
    ];
    let mut seen = Vec::new();
    for change in changes {
        proxy.change(change).await;

        // Create of a second store on the same proxy, and Update of the first one's path.
        let second = call(
            &client,
            "CreateCustomKeyStore",
            &store_request("second", &entry, PATH_CREATE),
        )
        .await;
        let update = json!({ "CustomKeyStoreId": id, "XksProxyUriPath": PATH_CONNECT });
        let updated = call(&client, "UpdateCustomKeyStore", &update).await;
        if let Some(second_id) = second.body["CustomKeyStoreId"].as_str() {
            let delete = json!({ "CustomKeyStoreId": second_id });
            let deleted = call(&client, "DeleteCustomKeyStore", &delete).await;
            assert_eq!(deleted.status, 200, "{}", deleted.text);
        }

        call(&client, "ConnectCustomKeyStore", &by_id).await;
        let connected = settled(&client, &id).await;
        seen.push((
            change,
            outcome(&second),
            outcome(&updated),
            connected.clone(),
        ));

        // Back to DISCONNECTED for the next attempt (FAILED must be disconnected first).
        let disconnected = call(&client, "DisconnectCustomKeyStore", &by_id).await;
        assert_eq!(disconnected.status, 200, "{}", disconnected.text);
        assert_eq!(
            settled(&client, &id).await,
            ("DISCONNECTED".to_string(), None)
        );
    }
    let wanted: Vec<_> = changes
        .iter()
        .map(|&change| {
            let (exception, code) = expected(change);
            let state = if code.is_some() {
                "FAILED"
            } else {
                "CONNECTED"
            };
            (
                change,
                exception.map(str::to_string),
                exception.map(str::to_string),
                (state.to_string(), code.map(str::to_string)),
            )
        })
        .collect();
    assert_eq!(seen, wanted);
    proxy.change(Change::Stopped).await;
    emulator.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// KMS answers ConnectCustomKeyStore at once and calls the proxy meanwhile: with no transition
/// delay, a connect to a proxy slower than KMS's budget is still CONNECTING right after the
/// answer (a connect that called the proxy first would have settled by then), and ends FAILED
/// with XKS_PROXY_TIMED_OUT once the budget has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_answers_at_once_and_the_store_waits_for_the_proxy() {
    let (mut proxy, _, emulator, client, id) = store_on_reference_proxy(0).await;
    let by_id = json!({ "CustomKeyStoreId": id });

    proxy.change(Change::Fault(ProxyFault::Slow)).await;
    let connected = call(&client, "ConnectCustomKeyStore", &by_id).await;
    assert_eq!(outcome(&connected), None, "{}", connected.text);
    let described = call(&client, "DescribeCustomKeyStores", &by_id).await;
    assert_eq!(
        described.body["CustomKeyStores"][0]["ConnectionState"], "CONNECTING",
        "{}",
        described.text
    );
    assert_eq!(
        settled(&client, &id).await,
        (
            "FAILED".to_string(),
            Some("XKS_PROXY_TIMED_OUT".to_string())
        )
    );
    proxy.change(Change::Stopped).await;
    emulator.stop().await;
}
