//! Real XKS proxy connections: the embedded emulator calls real proxies (fixture entries with an
//! `address`) for KMS's health checks, and their answers decide Create, Update and Connect of
//! external key stores. Everything goes over real HTTP (the emulator) and HTTPS (the proxies).

use std::time::Duration;

use ckscheck::emulator::{EmulatorConfig, RunningEmulator, start_on_loopback};
use ckscheck::model::fixtures::XksProxy;
use ckscheck::model::{Fixtures, ModelConfig, XksBehaviour};
use ckscheck::runner::{KmsClient, Reply};
use ckscheck::sigv4::Credential;
use serde_json::{Value, json};
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
    let config = EmulatorConfig {
        model: ModelConfig {
            connect_delay_ms: 0,
            ..ModelConfig::default()
        },
        fixtures,
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

/// A Create request for an external store with the entry's own path and credential.
fn create_request(name: &str, p: &XksProxy) -> Value {
    json!({
        "CustomKeyStoreName": name,
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyUriEndpoint": p.uri_endpoint,
        "XksProxyUriPath": p.uri_path,
        "XksProxyAuthenticationCredential": {
            "AccessKeyId": p.access_key_id,
            "RawSecretAccessKey": p.secret_access_key,
        },
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
    })
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
