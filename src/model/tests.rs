//! Unit tests of the reference model against the fact sheet (`shared/kms-custom-key-stores.md`):
//! the state machine table, timed transitions, connection outcomes, uniqueness and quota,
//! CreateKey, the four switches, validation order and messages, paging, IDs and secrets.
//!
//! Backend values (passwords, trust anchors, proxy paths and credentials) are read from
//! `Fixtures::builtin()`, never repeated here; only the fixture names (cluster IDs, endpoints)
//! appear as constants.

use serde_json::{Value, json};

use super::fixtures::{Cluster, XksProxy};
use super::*;

/// The harness's start time, with a millisecond part: 2023-11-14T22:13:20.123Z.
const T0: Millis = 1_700_000_000_123;
/// How long CONNECTING and DISCONNECTING last in the harness's default model.
const DELAY: u64 = 300;

/// Healthy clusters: A and B share lineage alpha; C (gamma) and D (delta) are related to neither.
const HEALTHY_A: &str = "cluster-healthyaaaaa";
const HEALTHY_B: &str = "cluster-healthybbbbb";
const HEALTHY_C: &str = "cluster-healthyccccc";
const HEALTHY_D: &str = "cluster-healthyddddd";
/// Restored from the same backup as HEALTHY_A: related to it, same anchor and password.
const RELATED_A: &str = "cluster-relatedaaaaa";
/// Healthy proxies: two public ones and one behind a VPC endpoint service.
const XKS_OK: &str = "https://xks-ok.example.test";
const XKS_OK_2: &str = "https://xks-ok-2.example.test";
const XKS_VPC: &str = "https://xks-vpc.example.test";

const INVALID_STATE: &str = "CustomKeyStoreInvalidStateException";
const NOT_FOUND: &str = "CustomKeyStoreNotFoundException";
const VALIDATION: &str = "ValidationException";
const SERIALIZATION: &str = "SerializationException";

const STATES: [&str; 5] = [
    "CONNECTED",
    "CONNECTING",
    "FAILED",
    "DISCONNECTED",
    "DISCONNECTING",
];

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A model with a hand-driven clock.
struct Harness {
    model: Model,
    now: Millis,
}

/// The harness's default tunables: KMS's defaults with a non-zero connect delay.
fn config() -> ModelConfig {
    ModelConfig {
        connect_delay_ms: DELAY,
        ..ModelConfig::default()
    }
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(config())
    }

    fn with_config(config: ModelConfig) -> Harness {
        Harness::with_fixtures(config, Fixtures::builtin())
    }

    fn with_switches(switches: Switches) -> Harness {
        Harness::with_config(ModelConfig {
            switches,
            ..config()
        })
    }

    fn with_fixtures(config: ModelConfig, fixtures: Fixtures) -> Harness {
        Harness {
            model: Model::new(config, fixtures.into(), Box::new(SeededIds::new(1))),
            now: T0,
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// Moves the clock exactly to the end of a transition started now.
    fn settle(&mut self) {
        let delay = self.model.config().connect_delay_ms;
        self.advance(delay);
    }

    /// Sends raw body bytes. Every error must be one the spec lets this operation return.
    fn raw(&mut self, op: &str, body: &[u8]) -> Outcome {
        let outcome = self.model.apply(self.now, op, body);
        if let Err(e) = &outcome {
            assert!(
                self.model.spec.may_return(op, &e.name),
                "{op} may not return {}: {}",
                e.name,
                e.message
            );
        }
        outcome
    }

    fn call(&mut self, op: &str, body: Value) -> Outcome {
        self.raw(op, body.to_string().as_bytes())
    }

    fn ok(&mut self, op: &str, body: Value) -> Value {
        let shown = body.to_string();
        self.call(op, body)
            .unwrap_or_else(|e| panic!("{op} {shown} failed: {} ({})", e.name, e.message))
    }

    fn fail(&mut self, op: &str, body: Value, name: &str) -> KmsError {
        expect_err(self.call(op, body), name)
    }

    // --- fixtures -----------------------------------------------------------------------------

    fn cluster(&self, id: &str) -> Cluster {
        self.model
            .fixtures
            .cluster(id)
            .expect("fixture cluster")
            .clone()
    }

    fn proxy(&self, endpoint: &str) -> XksProxy {
        self.model
            .fixtures
            .proxy(endpoint)
            .expect("fixture proxy")
            .clone()
    }

    fn cluster_mut(&mut self, id: &str) -> &mut Cluster {
        std::sync::Arc::make_mut(&mut self.model.fixtures)
            .clusters
            .iter_mut()
            .find(|c| c.id == id)
            .expect("fixture cluster")
    }

    fn proxy_mut(&mut self, endpoint: &str) -> &mut XksProxy {
        std::sync::Arc::make_mut(&mut self.model.fixtures)
            .xks_proxies
            .iter_mut()
            .find(|p| p.uri_endpoint == endpoint)
            .expect("fixture proxy")
    }

    /// A Create request for a CloudHSM store with the cluster's own anchor and password.
    fn hsm_request(&self, name: &str, cluster: &str) -> Value {
        let c = self.cluster(cluster);
        json!({
            "CustomKeyStoreName": name,
            "CloudHsmClusterId": c.id,
            "TrustAnchorCertificate": c.trust_anchor_certificate,
            "KeyStorePassword": c.kmsuser_password,
        })
    }

    /// A Create request for an external store on this proxy, with its path and credential;
    /// VPC_ENDPOINT_SERVICE connectivity when the proxy has a VPC endpoint service.
    fn xks_request(&self, name: &str, endpoint: &str) -> Value {
        let p = self.proxy(endpoint);
        let mut body = json!({
            "CustomKeyStoreName": name,
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyUriEndpoint": p.uri_endpoint,
            "XksProxyUriPath": p.uri_path,
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": p.access_key_id,
                "RawSecretAccessKey": p.secret_access_key,
            },
            "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        });
        if let Some(service) = p.vpc_endpoint_service_name {
            body["XksProxyConnectivity"] = json!("VPC_ENDPOINT_SERVICE");
            body["XksProxyVpcEndpointServiceName"] = json!(service);
            body["XksProxyVpcEndpointServiceOwner"] = json!("444455556666");
        }
        body
    }

    /// The first proxy that connects at Create and shows `behaviour` at connect.
    fn proxy_with(&self, behaviour: XksBehaviour) -> String {
        self.model
            .fixtures
            .xks_proxies
            .iter()
            .find(|p| p.behaviour == behaviour && p.behaviour_at_create == XksBehaviour::Connects)
            .unwrap_or_else(|| panic!("no fixture proxy {behaviour:?}"))
            .uri_endpoint
            .clone()
    }

    // --- operations ---------------------------------------------------------------------------

    fn create(&mut self, body: Value) -> String {
        let out = self.ok("CreateCustomKeyStore", body);
        out["CustomKeyStoreId"].as_str().expect("an ID").to_string()
    }

    fn create_hsm(&mut self, name: &str, cluster: &str) -> String {
        let body = self.hsm_request(name, cluster);
        self.create(body)
    }

    fn create_xks(&mut self, name: &str, endpoint: &str) -> String {
        let body = self.xks_request(name, endpoint);
        self.create(body)
    }

    fn connect(&mut self, id: &str) -> Outcome {
        self.call("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))
    }

    fn disconnect(&mut self, id: &str) -> Outcome {
        self.call(
            "DisconnectCustomKeyStore",
            json!({ "CustomKeyStoreId": id }),
        )
    }

    fn delete(&mut self, id: &str) -> Outcome {
        self.call("DeleteCustomKeyStore", json!({ "CustomKeyStoreId": id }))
    }

    /// UpdateCustomKeyStore with these members besides the ID.
    fn update(&mut self, id: &str, mut changes: Value) -> Outcome {
        changes["CustomKeyStoreId"] = json!(id);
        self.call("UpdateCustomKeyStore", changes)
    }

    /// A CreateKey request for this store with the right Origin (and XksKeyId, if external).
    fn key_request(&mut self, id: &str, xks_key: &str) -> Value {
        let store_type = self.store(id).store_type;
        match store_type {
            StoreType::AwsCloudhsm => json!({ "CustomKeyStoreId": id, "Origin": "AWS_CLOUDHSM" }),
            StoreType::ExternalKeyStore => json!({
                "CustomKeyStoreId": id,
                "Origin": "EXTERNAL_KEY_STORE",
                "XksKeyId": xks_key,
            }),
        }
    }

    fn create_key(&mut self, id: &str) -> Outcome {
        let body = self.key_request(id, "xks-key-1");
        self.call("CreateKey", body)
    }

    /// Creates and connects a CloudHSM store and lets the connect finish.
    fn connected_hsm(&mut self, name: &str, cluster: &str) -> String {
        let id = self.create_hsm(name, cluster);
        self.connect(&id).expect("connect");
        self.settle();
        assert_eq!(self.state(&id), "CONNECTED");
        id
    }

    /// Creates and connects an external store and lets the connect finish.
    fn connected_xks(&mut self, name: &str, endpoint: &str) -> String {
        let id = self.create_xks(name, endpoint);
        self.connect(&id).expect("connect");
        self.settle();
        assert_eq!(self.state(&id), "CONNECTED");
        id
    }

    // --- observations -------------------------------------------------------------------------

    /// The Describe entry of one store (looked up by ID), checked for consistency.
    fn entry(&mut self, id: &str) -> Value {
        let out = self.ok("DescribeCustomKeyStores", json!({ "CustomKeyStoreId": id }));
        let list = out["CustomKeyStores"].as_array().expect("a list");
        assert_eq!(
            list.len(),
            1,
            "by-ID Describe returns exactly one entry: {out}"
        );
        assert_eq!(out["Truncated"], json!(false));
        let entry = list[0].clone();
        assert_eq!(entry["CustomKeyStoreId"], json!(id));
        assert_consistent(&entry);
        entry
    }

    fn state(&mut self, id: &str) -> String {
        self.entry(id)["ConnectionState"]
            .as_str()
            .expect("a state")
            .to_string()
    }

    fn error_code(&mut self, id: &str) -> Option<String> {
        self.entry(id)
            .get("ConnectionErrorCode")
            .map(|c| c.as_str().expect("a string").to_string())
    }

    /// Every entry, from one unpaged Describe.
    fn all_entries(&mut self) -> Vec<Value> {
        let out = self.ok("DescribeCustomKeyStores", json!({}));
        assert_eq!(out["Truncated"], json!(false));
        let entries = out["CustomKeyStores"].as_array().expect("a list").clone();
        entries.iter().for_each(assert_consistent);
        entries
    }

    fn ids(&mut self) -> Vec<String> {
        self.all_entries()
            .iter()
            .map(|e| e["CustomKeyStoreId"].as_str().expect("an ID").to_string())
            .collect()
    }

    /// The model's stores as of now (for before/after comparisons).
    fn snapshot(&mut self) -> (Vec<Store>, Vec<Key>) {
        (self.model.stores(self.now), self.model.keys().to_vec())
    }

    fn store(&mut self, id: &str) -> Store {
        self.model
            .stores(self.now)
            .into_iter()
            .find(|s| s.id == id)
            .expect("a store with this ID")
    }
}

fn expect_err(outcome: Outcome, name: &str) -> KmsError {
    match outcome {
        Ok(v) => panic!("expected {name}, got success {v}"),
        Err(e) => {
            assert_eq!(e.name, name, "message: {}", e.message);
            e
        }
    }
}

/// ConnectionErrorCode is present exactly when the state is FAILED.
fn assert_consistent(entry: &Value) {
    let failed = entry["ConnectionState"] == json!("FAILED");
    assert_eq!(
        entry.get("ConnectionErrorCode").is_some(),
        failed,
        "ConnectionErrorCode present exactly when FAILED: {entry}"
    );
}

// ---------------------------------------------------------------------------------------------
// Preconditions on the built-in fixtures the tests rely on
// ---------------------------------------------------------------------------------------------

#[test]
fn builtin_fixtures_have_what_these_tests_assume() {
    let f = Fixtures::builtin();
    let cluster = |id: &str| f.cluster(id).expect("cluster").clone();
    let (a, b, c, d) = (
        cluster(HEALTHY_A),
        cluster(HEALTHY_B),
        cluster(HEALTHY_C),
        cluster(HEALTHY_D),
    );
    let related = cluster(RELATED_A);
    assert_eq!(a.kmsuser_password, "kmsuser-pass-a");
    assert_eq!(
        a.lineage, related.lineage,
        "a and its restored copy are related"
    );
    assert_eq!(a.trust_anchor_certificate, related.trust_anchor_certificate);
    assert_eq!(a.kmsuser_password, related.kmsuser_password);
    assert_ne!(a.lineage, b.lineage, "a and b are not");
    assert_ne!(a.lineage, c.lineage, "a and c are not");
    assert_ne!(a.trust_anchor_certificate, b.trust_anchor_certificate);
    for healthy in [&a, &b, &c, &d] {
        assert_eq!(healthy.state, "ACTIVE");
        assert!(healthy.active_hsms > 0 && !healthy.invalid_configuration);
        assert!(healthy.connect_error.is_none());
    }
    for endpoint in [XKS_OK, XKS_OK_2, XKS_VPC] {
        let p = f.proxy(endpoint).expect("proxy");
        assert_eq!(p.behaviour, XksBehaviour::Connects);
        assert_eq!(p.behaviour_at_create, XksBehaviour::Connects);
    }
    assert!(
        f.proxy(XKS_OK)
            .unwrap()
            .keys
            .contains(&"xks-key-1".to_string())
    );
    assert!(
        f.proxy(XKS_OK_2)
            .unwrap()
            .keys
            .contains(&"xks-key-1".to_string())
    );
    assert!(
        f.proxy(XKS_VPC)
            .unwrap()
            .vpc_endpoint_service_name
            .is_some()
    );
    assert!(f.proxy(XKS_OK).unwrap().vpc_endpoint_service_name.is_none());
}

// ---------------------------------------------------------------------------------------------
// 1. The state machine table
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hsm,
    Xks,
}

/// One operation of the state machine table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableOp {
    Connect,
    Disconnect,
    /// Update (CloudHSM): a new KeyStorePassword.
    UpdateHsmPassword,
    /// Update (external): a whole new proxy (endpoint, path, credential).
    UpdateXksProxy,
    /// Update (external): the URI path and credential (allowed while CONNECTED).
    UpdateXksPathAndCredential,
    /// Update (external): the name (allowed while CONNECTED).
    UpdateXksName,
    Delete,
    CreateKey,
}

impl TableOp {
    fn kinds(self) -> &'static [Kind] {
        match self {
            TableOp::UpdateHsmPassword => &[Kind::Hsm],
            TableOp::UpdateXksProxy
            | TableOp::UpdateXksPathAndCredential
            | TableOp::UpdateXksName => &[Kind::Xks],
            _ => &[Kind::Hsm, Kind::Xks],
        }
    }

    fn apply(self, h: &mut Harness, id: &str) -> Outcome {
        match self {
            TableOp::Connect => h.connect(id),
            TableOp::Disconnect => h.disconnect(id),
            TableOp::UpdateHsmPassword => {
                let password = h.cluster(HEALTHY_A).kmsuser_password;
                h.update(id, json!({ "KeyStorePassword": password }))
            }
            TableOp::UpdateXksProxy => {
                let mut body = h.xks_request("unused", XKS_OK_2);
                let body = body.as_object_mut().expect("an object");
                body.remove("CustomKeyStoreName");
                body.remove("CustomKeyStoreType");
                h.update(id, Value::Object(body.clone()))
            }
            TableOp::UpdateXksPathAndCredential => {
                let x = h.store(id).xks.expect("an external store");
                h.update(
                    id,
                    json!({
                        "XksProxyUriPath": x.uri_path,
                        "XksProxyAuthenticationCredential": {
                            "AccessKeyId": x.access_key_id,
                            "RawSecretAccessKey": x.secret_access_key.0,
                        },
                    }),
                )
            }
            TableOp::UpdateXksName => h.update(id, json!({ "NewCustomKeyStoreName": "renamed" })),
            TableOp::Delete => h.delete(id),
            TableOp::CreateKey => h.create_key(id),
        }
    }

    /// The state the store is in right after an allowed call (None: the store is gone).
    fn state_after(self, from: &str) -> Option<&'static str> {
        match self {
            TableOp::Connect if from == "DISCONNECTED" => Some("CONNECTING"),
            TableOp::Disconnect => Some("DISCONNECTING"),
            TableOp::Delete => None,
            _ => STATES.iter().copied().find(|s| *s == from),
        }
    }
}

/// A fresh store of this kind brought into `state` (FAILED through a failing backend).
fn store_in(h: &mut Harness, kind: Kind, state: &str) -> String {
    let id = match (kind, state) {
        (Kind::Hsm, "FAILED") => {
            let mut body = h.hsm_request("store", HEALTHY_A);
            body["KeyStorePassword"] = json!("not-the-kmsuser-password");
            h.create(body)
        }
        (Kind::Hsm, _) => h.create_hsm("store", HEALTHY_A),
        (Kind::Xks, "FAILED") => {
            let endpoint = h.proxy_with(XksBehaviour::Unreachable);
            h.create_xks("store", &endpoint)
        }
        (Kind::Xks, _) => h.create_xks("store", XKS_OK),
    };
    match state {
        "DISCONNECTED" => {}
        "CONNECTING" => {
            h.connect(&id).expect("connect");
        }
        "CONNECTED" | "FAILED" => {
            h.connect(&id).expect("connect");
            h.settle();
        }
        "DISCONNECTING" => {
            h.connect(&id).expect("connect");
            h.settle();
            h.disconnect(&id).expect("disconnect");
        }
        other => panic!("unknown state {other}"),
    }
    assert_eq!(h.state(&id), state, "{kind:?} store brought into {state}");
    id
}

#[test]
fn state_machine_table_with_default_switches() {
    let table: [(TableOp, &[&str]); 8] = [
        (
            TableOp::Connect,
            &["DISCONNECTED", "CONNECTING", "CONNECTED"],
        ),
        (TableOp::Disconnect, &["CONNECTED", "CONNECTING", "FAILED"]),
        (TableOp::UpdateHsmPassword, &["DISCONNECTED"]),
        (TableOp::UpdateXksProxy, &["DISCONNECTED"]),
        (
            TableOp::UpdateXksPathAndCredential,
            &["DISCONNECTED", "CONNECTED"],
        ),
        (TableOp::UpdateXksName, &["DISCONNECTED", "CONNECTED"]),
        (TableOp::Delete, &["DISCONNECTED"]),
        (TableOp::CreateKey, &["CONNECTED"]),
    ];
    let mut wrong = Vec::new();
    let mut cases = 0;
    for (op, allowed) in table {
        for &kind in op.kinds() {
            for state in STATES {
                cases += 1;
                let mut h = Harness::new();
                let id = store_in(&mut h, kind, state);
                let before = h.snapshot();
                let outcome = op.apply(&mut h, &id);
                let case = format!("{op:?} on a {state} {kind:?} store");
                if allowed.contains(&state) {
                    match outcome {
                        Err(e) => wrong.push(format!("{case}: {} ({})", e.name, e.message)),
                        Ok(_) => {
                            let stores = h.snapshot().0;
                            let after =
                                stores.iter().find(|s| s.id == id).map(|s| s.state.as_str());
                            if after != op.state_after(state) {
                                wrong.push(format!("{case}: left the store in {after:?}"));
                            }
                        }
                    }
                } else {
                    match outcome {
                        Err(e) if e.name == INVALID_STATE => {
                            if h.snapshot() != before {
                                wrong.push(format!("{case}: rejected but changed the model"));
                            }
                            if !e.message.contains(state) {
                                wrong.push(format!(
                                    "{case}: message lacks the state: {}",
                                    e.message
                                ));
                            }
                        }
                        other => wrong.push(format!("{case}: {other:?}, not {INVALID_STATE}")),
                    }
                }
            }
        }
    }
    // Connect, Disconnect, Delete and CreateKey for both kinds; one CloudHSM and three external
    // Update rows.
    assert_eq!(cases, 5 * (4 * 2 + 1 + 3));
    assert!(
        wrong.is_empty(),
        "{} of {cases} cases wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Transitions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_store_is_disconnected_and_never_connects_by_itself() {
    let mut h = Harness::new();
    let id = h.create_hsm("idle", HEALTHY_A);
    assert_eq!(h.state(&id), "DISCONNECTED");
    h.advance(24 * 3600 * 1000);
    assert_eq!(h.state(&id), "DISCONNECTED");
    assert_eq!(h.error_code(&id), None);
}

#[test]
fn connect_goes_connecting_then_connected_when_the_delay_has_passed() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    assert_eq!(h.connect(&id).expect("connect"), json!({}));
    assert_eq!(h.state(&id), "CONNECTING");
    h.advance(DELAY - 1);
    assert_eq!(h.state(&id), "CONNECTING");
    h.advance(1);
    assert_eq!(h.state(&id), "CONNECTED");
    assert_eq!(h.error_code(&id), None);
}

#[test]
fn a_failing_connect_goes_connecting_then_failed_with_its_error_code() {
    let mut h = Harness::new();
    let endpoint = h.proxy_with(XksBehaviour::TimesOut);
    let id = h.create_xks("slow", &endpoint);
    h.connect(&id).expect("connect");
    assert_eq!(h.state(&id), "CONNECTING");
    assert_eq!(h.error_code(&id), None, "no error code while CONNECTING");
    h.advance(DELAY - 1);
    assert_eq!(h.state(&id), "CONNECTING");
    h.advance(1);
    assert_eq!(h.state(&id), "FAILED");
    assert_eq!(h.error_code(&id).as_deref(), Some("XKS_PROXY_TIMED_OUT"));
}

#[test]
fn with_no_delay_connect_and_disconnect_settle_at_once() {
    let mut h = Harness::with_config(ModelConfig {
        connect_delay_ms: 0,
        ..config()
    });
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.connect(&id).expect("connect");
    assert_eq!(h.state(&id), "CONNECTED");
    h.disconnect(&id).expect("disconnect");
    assert_eq!(h.state(&id), "DISCONNECTED");

    let mut bad = h.hsm_request("bad", HEALTHY_B);
    bad["KeyStorePassword"] = json!("wrong-password");
    let bad = h.create(bad);
    h.connect(&bad).expect("connect");
    assert_eq!(h.state(&bad), "FAILED");
    assert_eq!(h.error_code(&bad).as_deref(), Some("INVALID_CREDENTIALS"));
}

#[test]
fn disconnect_goes_disconnecting_then_disconnected() {
    let mut h = Harness::new();
    let id = h.connected_xks("xks", XKS_OK);
    assert_eq!(h.disconnect(&id).expect("disconnect"), json!({}));
    assert_eq!(h.state(&id), "DISCONNECTING");
    h.advance(DELAY - 1);
    assert_eq!(h.state(&id), "DISCONNECTING");
    h.advance(1);
    assert_eq!(h.state(&id), "DISCONNECTED");
}

#[test]
fn disconnecting_a_failed_store_clears_its_error_code() {
    let mut h = Harness::new();
    let id = store_in(&mut h, Kind::Hsm, "FAILED");
    assert_eq!(h.error_code(&id).as_deref(), Some("INVALID_CREDENTIALS"));
    h.disconnect(&id).expect("disconnect");
    assert_eq!(h.state(&id), "DISCONNECTING");
    assert_eq!(h.error_code(&id), None);
    h.settle();
    assert_eq!(h.state(&id), "DISCONNECTED");
    assert_eq!(h.error_code(&id), None);
}

#[test]
fn a_failed_store_must_be_disconnected_before_it_connects_again() {
    let mut h = Harness::new();
    let mut body = h.hsm_request("hsm", HEALTHY_A);
    body["KeyStorePassword"] = json!("wrong-password");
    let id = h.create(body);
    h.connect(&id).expect("connect");
    h.settle();
    assert_eq!(h.state(&id), "FAILED");

    expect_err(h.connect(&id), INVALID_STATE);
    assert_eq!(h.state(&id), "FAILED");
    assert_eq!(h.error_code(&id).as_deref(), Some("INVALID_CREDENTIALS"));

    h.disconnect(&id).expect("disconnect");
    h.settle();
    let password = h.cluster(HEALTHY_A).kmsuser_password;
    h.update(&id, json!({ "KeyStorePassword": password }))
        .expect("update the password");
    h.connect(&id).expect("connect again");
    assert_eq!(h.state(&id), "CONNECTING");
    h.settle();
    assert_eq!(h.state(&id), "CONNECTED");
    assert_eq!(h.error_code(&id), None);
}

#[test]
fn connect_while_connecting_is_a_no_op_that_does_not_restart_the_clock() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.connect(&id).expect("connect");
    h.advance(DELAY / 2);
    assert_eq!(h.connect(&id).expect("connect again"), json!({}));
    assert_eq!(h.state(&id), "CONNECTING");
    h.advance(DELAY - DELAY / 2);
    assert_eq!(
        h.state(&id),
        "CONNECTED",
        "done DELAY after the first connect"
    );
}

#[test]
fn disconnect_while_connecting_cancels_the_connect() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.connect(&id).expect("connect");
    h.advance(DELAY / 2);
    h.disconnect(&id).expect("disconnect");
    assert_eq!(h.state(&id), "DISCONNECTING");
    h.advance(DELAY);
    assert_eq!(
        h.state(&id),
        "DISCONNECTED",
        "the pending connect never lands"
    );
    h.advance(10 * DELAY);
    assert_eq!(h.state(&id), "DISCONNECTED");
}

#[test]
fn transitions_complete_even_when_only_stores_is_asked() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.connect(&id).expect("connect");
    let at_once = h.model.stores(h.now);
    assert_eq!(at_once[0].state, ConnectionState::Connecting);
    let later = h.model.stores(h.now + DELAY);
    assert_eq!(later[0].state, ConnectionState::Connected);
    assert_eq!(later[0].error_code, None);
}

// ---------------------------------------------------------------------------------------------
// 3. Connection outcomes
// ---------------------------------------------------------------------------------------------

/// Connects the store, lets the connect finish and returns (state, error code).
fn connect_outcome(h: &mut Harness, id: &str) -> (String, Option<String>) {
    h.connect(id).expect("connect starts");
    assert_eq!(h.state(id), "CONNECTING");
    h.settle();
    (h.state(id), h.error_code(id))
}

fn failed(code: &str) -> (String, Option<String>) {
    ("FAILED".to_string(), Some(code.to_string()))
}

#[test]
fn cloudhsm_connect_to_a_healthy_cluster_connects() {
    let mut h = Harness::new();
    for cluster in [HEALTHY_A, HEALTHY_B, HEALTHY_C, HEALTHY_D] {
        let id = h.create_hsm(cluster, cluster);
        assert_eq!(
            connect_outcome(&mut h, &id),
            ("CONNECTED".to_string(), None)
        );
    }
}

#[test]
fn cloudhsm_connect_with_a_wrong_password_fails_with_invalid_credentials() {
    let mut h = Harness::new();
    let mut body = h.hsm_request("hsm", HEALTHY_A);
    body["KeyStorePassword"] = json!("kmsuser-pass-b");
    let id = h.create(body);
    assert_eq!(connect_outcome(&mut h, &id), failed("INVALID_CREDENTIALS"));
}

#[test]
fn cloudhsm_connect_without_active_hsms_fails_with_insufficient_hsms() {
    let mut h = Harness::new();
    let cluster = h
        .model
        .fixtures
        .clusters
        .iter()
        .find(|c| c.active_hsms == 0 && c.state == "ACTIVE")
        .expect("a cluster without HSMs")
        .id
        .clone();
    let id = h.create_hsm("hsm", &cluster);
    assert_eq!(
        connect_outcome(&mut h, &id),
        failed("INSUFFICIENT_CLOUDHSM_HSMS")
    );
}

#[test]
fn cloudhsm_connect_errors_of_the_fixtures_become_the_error_code() {
    let mut h = Harness::new();
    let with_errors: Vec<(String, String)> = h
        .model
        .fixtures
        .clusters
        .iter()
        .filter_map(|c| c.connect_error.clone().map(|e| (c.id.clone(), e)))
        .collect();
    let codes: Vec<&str> = with_errors.iter().map(|(_, e)| e.as_str()).collect();
    for needed in ["USER_LOCKED_OUT", "SUBNET_NOT_FOUND", "CLUSTER_NOT_FOUND"] {
        assert!(
            codes.contains(&needed),
            "fixtures have a cluster ending in {needed}"
        );
    }
    for (cluster, code) in &with_errors {
        let id = h.create_hsm(cluster, cluster);
        assert_eq!(connect_outcome(&mut h, &id), failed(code), "{cluster}");
    }
}

#[test]
fn cloudhsm_connect_to_a_cluster_deleted_after_create_fails_with_cluster_not_found() {
    let mut h = Harness::new();
    let deleted = h.create_hsm("deleted", HEALTHY_A);
    let removed = h.create_hsm("removed", HEALTHY_B);
    h.cluster_mut(HEALTHY_A).state = "DELETED".into();
    std::sync::Arc::make_mut(&mut h.model.fixtures)
        .clusters
        .retain(|c| c.id != HEALTHY_B);
    assert_eq!(
        connect_outcome(&mut h, &deleted),
        failed("CLUSTER_NOT_FOUND")
    );
    assert_eq!(
        connect_outcome(&mut h, &removed),
        failed("CLUSTER_NOT_FOUND")
    );
}

#[test]
fn cloudhsm_connect_to_a_cluster_no_longer_active_is_rejected_at_call_time() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.cluster_mut(HEALTHY_A).state = "INITIALIZED".into();
    let before = h.snapshot();
    expect_err(h.connect(&id), "CloudHsmClusterNotActiveException");
    assert_eq!(h.snapshot(), before);
    assert_eq!(h.state(&id), "DISCONNECTED");

    h.cluster_mut(HEALTHY_A).state = "ACTIVE".into();
    assert_eq!(
        connect_outcome(&mut h, &id),
        ("CONNECTED".to_string(), None)
    );
}

#[test]
fn cloudhsm_connect_to_a_misconfigured_cluster_is_rejected_at_call_time() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.cluster_mut(HEALTHY_A).invalid_configuration = true;
    expect_err(
        h.connect(&id),
        "CloudHsmClusterInvalidConfigurationException",
    );
    assert_eq!(h.state(&id), "DISCONNECTED");
}

#[test]
fn cloudhsm_create_rejects_unusable_clusters() {
    let mut h = Harness::new();
    let cases = [
        ("cluster-uninitialized", "CloudHsmClusterNotActiveException"),
        ("cluster-deletedaaaaa", "CloudHsmClusterNotFoundException"),
        (
            "cluster-badnetworkaa",
            "CloudHsmClusterInvalidConfigurationException",
        ),
    ];
    for (cluster, error) in cases {
        let body = h.hsm_request("hsm", cluster);
        h.fail("CreateCustomKeyStore", body, error);
    }
    let mut unknown = h.hsm_request("hsm", HEALTHY_A);
    unknown["CloudHsmClusterId"] = json!("cluster-notafixtureaa");
    h.fail(
        "CreateCustomKeyStore",
        unknown,
        "CloudHsmClusterNotFoundException",
    );
    assert!(h.all_entries().is_empty());
}

#[test]
fn external_connect_outcome_for_every_proxy_behaviour() {
    let cases = [
        (XksBehaviour::Connects, None),
        (XksBehaviour::Unreachable, Some("XKS_PROXY_NOT_REACHABLE")),
        (XksBehaviour::TimesOut, Some("XKS_PROXY_TIMED_OUT")),
        (
            XksBehaviour::RejectsCredentials,
            Some("INVALID_CREDENTIALS"),
        ),
        (XksBehaviour::AccessDenied, Some("XKS_PROXY_ACCESS_DENIED")),
        (
            XksBehaviour::InvalidResponse,
            Some("XKS_PROXY_INVALID_RESPONSE"),
        ),
        (
            XksBehaviour::BadTls,
            Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
        ),
        (
            XksBehaviour::InvalidConfiguration,
            Some("XKS_PROXY_INVALID_CONFIGURATION"),
        ),
        (
            XksBehaviour::VpcServiceNotFound,
            Some("XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"),
        ),
        (
            XksBehaviour::VpcServiceInvalidConfiguration,
            Some("XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"),
        ),
    ];
    let mut h = Harness::new();
    for (behaviour, code) in cases {
        let endpoint = h.proxy_with(behaviour);
        let id = h.create_xks(&format!("{behaviour:?}"), &endpoint);
        let expected = match code {
            None => ("CONNECTED".to_string(), None),
            Some(code) => failed(code),
        };
        assert_eq!(
            connect_outcome(&mut h, &id),
            expected,
            "{behaviour:?} at {endpoint}"
        );
        assert_eq!(connection::xks_connect_error(behaviour), code);
    }
}

#[test]
fn external_connect_after_the_proxy_rotated_its_credential_fails_with_invalid_credentials() {
    let mut h = Harness::new();
    let id = h.create_xks("xks", XKS_OK);
    h.proxy_mut(XKS_OK).secret_access_key = "rotatedSecretAccessKeyRotatedSecretAccessKey".into();
    assert_eq!(connect_outcome(&mut h, &id), failed("INVALID_CREDENTIALS"));
}

#[test]
fn external_create_fails_when_kms_cannot_use_the_proxy() {
    let mut h = Harness::new();
    let find_at_create = |h: &Harness, b: XksBehaviour| {
        h.model
            .fixtures
            .xks_proxies
            .iter()
            .find(|p| p.behaviour_at_create == b)
            .unwrap_or_else(|| panic!("no proxy broken at create with {b:?}"))
            .uri_endpoint
            .clone()
    };

    let dead = find_at_create(&h, XksBehaviour::Unreachable);
    let body = h.xks_request("dead", &dead);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "XksProxyUriUnreachableException",
    );

    let nonsense = find_at_create(&h, XksBehaviour::InvalidResponse);
    let body = h.xks_request("nonsense", &nonsense);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "XksProxyInvalidResponseException",
    );

    let mut unknown = h.xks_request("unknown", XKS_OK);
    unknown["XksProxyUriEndpoint"] = json!("https://no-such-proxy.example.test");
    h.fail(
        "CreateCustomKeyStore",
        unknown,
        "XksProxyUriUnreachableException",
    );

    let mut wrong_secret = h.xks_request("wrong-secret", XKS_OK);
    let other = h.proxy(XKS_OK_2);
    wrong_secret["XksProxyAuthenticationCredential"]["RawSecretAccessKey"] =
        json!(other.secret_access_key);
    h.fail(
        "CreateCustomKeyStore",
        wrong_secret,
        "XksProxyIncorrectAuthenticationCredentialException",
    );

    let mut wrong_key_id = h.xks_request("wrong-key-id", XKS_OK);
    wrong_key_id["XksProxyAuthenticationCredential"]["AccessKeyId"] = json!(other.access_key_id);
    h.fail(
        "CreateCustomKeyStore",
        wrong_key_id,
        "XksProxyIncorrectAuthenticationCredentialException",
    );

    let mut wrong_path = h.xks_request("wrong-path", XKS_OK);
    wrong_path["XksProxyUriPath"] = json!("/wrong/kms/xks/v1");
    h.fail(
        "CreateCustomKeyStore",
        wrong_path,
        "XksProxyInvalidConfigurationException",
    );

    let mut no_service = h.xks_request("no-service", XKS_VPC);
    no_service["XksProxyVpcEndpointServiceName"] =
        json!("com.amazonaws.vpce.us-east-1.vpce-svc-0ffffffffffffffff");
    h.fail(
        "CreateCustomKeyStore",
        no_service,
        "XksProxyVpcEndpointServiceNotFoundException",
    );

    // The service exists but serves another proxy.
    let mut foreign_service = h.xks_request("foreign-service", XKS_OK);
    foreign_service["XksProxyConnectivity"] = json!("VPC_ENDPOINT_SERVICE");
    foreign_service["XksProxyVpcEndpointServiceName"] =
        json!(h.proxy(XKS_VPC).vpc_endpoint_service_name);
    h.fail(
        "CreateCustomKeyStore",
        foreign_service,
        "XksProxyVpcEndpointServiceInvalidConfigurationException",
    );

    assert!(h.all_entries().is_empty(), "no failed Create left a store");
}

#[test]
fn external_create_exception_for_every_behaviour_at_create() {
    let cases = [
        (XksBehaviour::Connects, None),
        (
            XksBehaviour::Unreachable,
            Some("XksProxyUriUnreachableException"),
        ),
        (
            XksBehaviour::TimesOut,
            Some("XksProxyUriUnreachableException"),
        ),
        (
            XksBehaviour::RejectsCredentials,
            Some("XksProxyIncorrectAuthenticationCredentialException"),
        ),
        // No Create exception is documented for a 403; the model lets Create succeed.
        (XksBehaviour::AccessDenied, None),
        (
            XksBehaviour::InvalidResponse,
            Some("XksProxyInvalidResponseException"),
        ),
        (
            XksBehaviour::BadTls,
            Some("XksProxyUriUnreachableException"),
        ),
        (
            XksBehaviour::InvalidConfiguration,
            Some("XksProxyInvalidConfigurationException"),
        ),
        (
            XksBehaviour::VpcServiceNotFound,
            Some("XksProxyVpcEndpointServiceNotFoundException"),
        ),
        (
            XksBehaviour::VpcServiceInvalidConfiguration,
            Some("XksProxyVpcEndpointServiceInvalidConfigurationException"),
        ),
    ];
    for (behaviour, error) in cases {
        let mut h = Harness::new();
        h.proxy_mut(XKS_OK).behaviour_at_create = behaviour;
        let body = h.xks_request("xks", XKS_OK);
        match error {
            None => {
                h.ok("CreateCustomKeyStore", body);
            }
            Some(name) => {
                h.fail("CreateCustomKeyStore", body, name);
            }
        }
    }
}

#[test]
fn external_update_of_proxy_settings_checks_the_proxy_again() {
    let mut h = Harness::new();
    let id = h.create_xks("xks", XKS_OK);
    let dead = h
        .model
        .fixtures
        .xks_proxies
        .iter()
        .find(|p| p.behaviour_at_create == XksBehaviour::Unreachable)
        .expect("a dead proxy")
        .clone();
    let before = h.snapshot();
    let out = h.update(
        &id,
        json!({
            "XksProxyUriEndpoint": dead.uri_endpoint,
            "XksProxyUriPath": dead.uri_path,
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": dead.access_key_id,
                "RawSecretAccessKey": dead.secret_access_key,
            },
        }),
    );
    expect_err(out, "XksProxyUriUnreachableException");
    assert_eq!(h.snapshot(), before);

    let out = h.update(&id, json!({ "XksProxyUriPath": "/elsewhere/kms/xks/v1" }));
    expect_err(out, "XksProxyInvalidConfigurationException");
    assert_eq!(h.snapshot(), before);
}

// ---------------------------------------------------------------------------------------------
// 3b. The proxy seam: real proxies, dry runs and observations
// ---------------------------------------------------------------------------------------------

/// Where the tests pretend a real proxy listens (nothing is called: the model does no I/O).
const REAL_ADDRESS: &str = "127.0.0.1:9443";

/// A harness whose XKS_OK entry is played by a real proxy at REAL_ADDRESS.
fn with_real_ok() -> Harness {
    let mut h = Harness::new();
    h.proxy_mut(XKS_OK).address = Some(REAL_ADDRESS.parse().expect("an address"));
    h.proxy_mut(XKS_OK).ca_cert =
        Some("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----".into());
    h
}

/// Applies the request with `observed` as what the real proxy did (as the emulator does).
fn apply_observed(
    model: &mut Model,
    now: Millis,
    op: &str,
    body: &Value,
    observed: XksObservation,
) -> Outcome {
    let bytes = body.to_string();
    model.with_observation(Some(observed), |m| m.apply(now, op, bytes.as_bytes()))
}

impl Harness {
    /// The real proxy the request would have the model check now.
    fn probe_target(&self, op: &str, body: &Value) -> Option<ProbeTarget> {
        let bytes = body.to_string();
        self.model.probe_target_of(|model| {
            let _ = model.apply(self.now, op, bytes.as_bytes());
        })
    }

    /// Applies the request with the real proxy behaving as `behaviour` (the target the dry
    /// run names; the request must be one that calls a real proxy).
    fn observed(&mut self, op: &str, body: Value, behaviour: XksBehaviour) -> Outcome {
        let target = self
            .probe_target(op, &body)
            .unwrap_or_else(|| panic!("{op} {body} calls no real proxy"));
        let observed = XksObservation { target, behaviour };
        let outcome = apply_observed(&mut self.model, self.now, op, &body, observed);
        if let Err(e) = &outcome {
            assert!(
                self.model.spec.may_return(op, &e.name),
                "{op} may not return {}",
                e.name
            );
        }
        outcome
    }
}

impl Harness {
    /// Connects `id` with calls to real proxies deferred; the calls the model wants made.
    fn connect_deferring(&mut self, id: &str) -> Vec<ProbeTarget> {
        let body = json!({ "CustomKeyStoreId": id }).to_string();
        let now = self.now;
        let (outcome, deferred) = self
            .model
            .deferring_connects(|m| m.apply(now, "ConnectCustomKeyStore", body.as_bytes()));
        outcome.expect("the connect is accepted");
        deferred
    }
}

#[test]
fn a_deferred_connect_stays_connecting_until_the_proxy_answers_then_ends_as_it_says() {
    for (behaviour, state, code) in [
        (XksBehaviour::Connects, "CONNECTED", None),
        (
            XksBehaviour::TimesOut,
            "FAILED",
            Some("XKS_PROXY_TIMED_OUT"),
        ),
    ] {
        let mut h = with_real_ok();
        let id = h.create_xks("xks", XKS_OK);
        let deferred = h.connect_deferring(&id);
        assert_eq!(deferred.len(), 1, "one call to the real proxy");
        assert!(!deferred[0].at_create);
        // Long past the transition delay, the store still waits for the proxy.
        h.advance(DELAY * 10);
        assert_eq!(h.state(&id), "CONNECTING");
        // An answer for other settings is not this connect's.
        let mut other = deferred[0].clone();
        other.uri_path = "/other/kms/xks/v1".into();
        h.model.resolve_connect(XksObservation {
            target: other,
            behaviour: XksBehaviour::InvalidConfiguration,
        });
        assert_eq!(h.state(&id), "CONNECTING");
        h.model.resolve_connect(XksObservation {
            target: deferred[0].clone(),
            behaviour,
        });
        assert_eq!(h.state(&id), state, "{behaviour:?}");
        assert_eq!(
            h.entry(&id)["ConnectionErrorCode"].as_str(),
            code,
            "{behaviour:?}"
        );
    }
}

#[test]
fn a_proxy_answer_after_the_store_was_disconnected_changes_nothing() {
    let mut h = with_real_ok();
    let id = h.create_xks("xks", XKS_OK);
    let deferred = h.connect_deferring(&id);
    h.ok(
        "DisconnectCustomKeyStore",
        json!({ "CustomKeyStoreId": id }),
    );
    h.settle();
    assert_eq!(h.state(&id), "DISCONNECTED");
    h.model.resolve_connect(XksObservation {
        target: deferred[0].clone(),
        behaviour: XksBehaviour::TimesOut,
    });
    h.advance(DELAY);
    assert_eq!(h.state(&id), "DISCONNECTED");
    assert_eq!(h.entry(&id)["ConnectionErrorCode"], Value::Null);
}

#[test]
fn only_connects_to_real_proxies_are_deferred() {
    let mut h = with_real_ok();
    // A simulated proxy and a CloudHSM cluster connect on the model's clock, as before.
    let simulated = h.create_xks("sim", XKS_OK_2);
    assert!(h.connect_deferring(&simulated).is_empty());
    let hsm = h.create_hsm("hsm", HEALTHY_A);
    assert!(h.connect_deferring(&hsm).is_empty());
    h.settle();
    assert_eq!(h.state(&simulated), "CONNECTED");
    assert_eq!(h.state(&hsm), "CONNECTED");
    // Create and Update of a store on a real proxy are checked within the call, not deferred.
    let body = h.xks_request("real", XKS_OK).to_string();
    let now = h.now;
    let (created, deferred) = h
        .model
        .deferring_connects(|m| m.apply(now, "CreateCustomKeyStore", body.as_bytes()));
    assert!(created.is_ok(), "{created:?}");
    assert!(deferred.is_empty());
}

#[test]
fn the_dry_run_names_the_real_proxy_and_the_stores_settings_where_kms_checks_it() {
    let mut h = with_real_ok();
    let mut body = h.xks_request("xks", XKS_OK);
    // The store's own settings are probed, not the fixture's.
    body["XksProxyUriPath"] = json!("/other/kms/xks/v1");
    let target = h
        .probe_target("CreateCustomKeyStore", &body)
        .expect("Create checks the proxy");
    let fixture = h.proxy(XKS_OK);
    assert_eq!(target.uri_endpoint, XKS_OK);
    assert_eq!(target.uri_path, "/other/kms/xks/v1");
    assert_eq!(target.access_key_id, fixture.access_key_id);
    assert_eq!(target.secret_access_key.0, fixture.secret_access_key);
    assert_eq!(target.address.to_string(), REAL_ADDRESS);
    assert_eq!(target.ca_cert, fixture.ca_cert);
    assert!(target.at_create);

    // The dry run changes nothing: not the stores, not the IDs to come.
    let before = h.snapshot();
    let id = h.create_xks("xks", XKS_OK);
    let mut plain = Harness::new();
    assert_eq!(
        plain.create_xks("xks", XKS_OK),
        id,
        "same IDs as without a dry run"
    );
    assert!(before.0.is_empty());

    // A request refused before the proxy check calls no proxy.
    let taken = h.xks_request("xks", XKS_OK);
    assert_eq!(h.probe_target("CreateCustomKeyStore", &taken), None);
    // Nor do simulated proxies, CloudHSM stores, or operations that never check the proxy.
    let simulated = h.xks_request("other", XKS_OK_2);
    assert_eq!(h.probe_target("CreateCustomKeyStore", &simulated), None);
    let hsm = h.hsm_request("hsm", HEALTHY_A);
    assert_eq!(h.probe_target("CreateCustomKeyStore", &hsm), None);
    let by_id = json!({ "CustomKeyStoreId": id });
    assert_eq!(h.probe_target("DescribeCustomKeyStores", &by_id), None);
    assert_eq!(h.probe_target("DisconnectCustomKeyStore", &by_id), None);

    // Update checks the proxy only when proxy settings change.
    let rename = json!({ "CustomKeyStoreId": id, "NewCustomKeyStoreName": "renamed" });
    assert_eq!(h.probe_target("UpdateCustomKeyStore", &rename), None);
    let new_path = json!({ "CustomKeyStoreId": id, "XksProxyUriPath": "/new/kms/xks/v1" });
    let target = h
        .probe_target("UpdateCustomKeyStore", &new_path)
        .expect("Update of the path checks the proxy");
    assert_eq!(
        (target.uri_path.as_str(), target.at_create),
        ("/new/kms/xks/v1", true)
    );

    // Connect checks it from DISCONNECTED only.
    let target = h
        .probe_target("ConnectCustomKeyStore", &by_id)
        .expect("Connect of a DISCONNECTED store checks the proxy");
    assert_eq!(
        (target.uri_path, target.at_create),
        (fixture.uri_path, false)
    );
    h.connect(&id).expect("connect starts");
    assert_eq!(
        h.probe_target("ConnectCustomKeyStore", &by_id),
        None,
        "CONNECTING"
    );
    h.settle();
    assert_eq!(h.state(&id), "CONNECTED");
    assert_eq!(
        h.probe_target("ConnectCustomKeyStore", &by_id),
        None,
        "CONNECTED"
    );
}

/// The fact sheet's table (§4, §5), per behaviour of a real proxy: the Create/Update exception
/// (None: it succeeds) and the connection error code (None: CONNECTED).
const SEAM_TABLE: [(XksBehaviour, Option<&str>, Option<&str>); 8] = [
    (XksBehaviour::Connects, None, None),
    (
        XksBehaviour::Unreachable,
        Some("XksProxyUriUnreachableException"),
        Some("XKS_PROXY_NOT_REACHABLE"),
    ),
    (
        XksBehaviour::TimesOut,
        Some("XksProxyUriUnreachableException"),
        Some("XKS_PROXY_TIMED_OUT"),
    ),
    (
        XksBehaviour::RejectsCredentials,
        Some("XksProxyIncorrectAuthenticationCredentialException"),
        Some("INVALID_CREDENTIALS"),
    ),
    (
        XksBehaviour::AccessDenied,
        None,
        Some("XKS_PROXY_ACCESS_DENIED"),
    ),
    (
        XksBehaviour::InvalidResponse,
        Some("XksProxyInvalidResponseException"),
        Some("XKS_PROXY_INVALID_RESPONSE"),
    ),
    (
        XksBehaviour::BadTls,
        Some("XksProxyUriUnreachableException"),
        Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
    ),
    (
        XksBehaviour::InvalidConfiguration,
        Some("XksProxyInvalidConfigurationException"),
        Some("XKS_PROXY_INVALID_CONFIGURATION"),
    ),
];

#[test]
fn an_observation_decides_create_update_and_connect_of_a_real_proxy() {
    for (behaviour, exception, code) in SEAM_TABLE {
        let mut h = with_real_ok();
        let body = h.xks_request("xks", XKS_OK);
        let created = h.observed("CreateCustomKeyStore", body, behaviour);
        match exception {
            None => assert!(created.is_ok(), "{behaviour:?}: {created:?}"),
            Some(name) => {
                expect_err(created, name);
                assert!(h.all_entries().is_empty(), "{behaviour:?} left a store");
            }
        }

        // Update of the path: the same exceptions; a refused update changes nothing.
        let mut h = with_real_ok();
        let id = h.create_xks("xks", XKS_OK);
        let before = h.snapshot();
        let path = h.proxy(XKS_OK).uri_path;
        let update = json!({ "CustomKeyStoreId": id, "XksProxyUriPath": path });
        match (
            h.observed("UpdateCustomKeyStore", update, behaviour),
            exception,
        ) {
            (Ok(_), None) => {}
            (Err(e), Some(name)) => {
                assert_eq!(e.name, name, "{behaviour:?}");
                assert_eq!(h.snapshot(), before);
            }
            (outcome, _) => panic!("{behaviour:?}: Update gave {outcome:?}, want {exception:?}"),
        }

        let connect = json!({ "CustomKeyStoreId": id });
        h.observed("ConnectCustomKeyStore", connect, behaviour)
            .expect("connect starts");
        h.settle();
        let expected = match code {
            None => ("CONNECTED".to_string(), None),
            Some(code) => failed(code),
        };
        assert_eq!((h.state(&id), h.error_code(&id)), expected, "{behaviour:?}");
    }
}

#[test]
fn without_an_observation_a_real_proxy_is_predicted_from_its_fixture_entry() {
    let mut h = with_real_ok();
    h.proxy_mut(XKS_OK).behaviour = XksBehaviour::AccessDenied;
    let id = h.create_xks("xks", XKS_OK);
    assert_eq!(
        connect_outcome(&mut h, &id),
        failed("XKS_PROXY_ACCESS_DENIED")
    );
}

#[test]
fn an_observation_counts_only_for_the_settings_and_request_it_was_made_for() {
    let mut h = with_real_ok();
    let body = h.xks_request("xks", XKS_OK);
    let target = h
        .probe_target("CreateCustomKeyStore", &body)
        .expect("a probe");
    let stale = |target: &ProbeTarget| XksObservation {
        target: ProbeTarget {
            uri_path: "/stale/kms/xks/v1".into(),
            ..target.clone()
        },
        behaviour: XksBehaviour::Unreachable,
    };
    // Made for other settings (the store changed after the dry run): the fixture decides.
    apply_observed(
        &mut h.model,
        h.now,
        "CreateCustomKeyStore",
        &body,
        stale(&target),
    )
    .expect("the fixture entry connects");
    // Made for a connect, offered to a Create check: ignored too.
    let mut second = with_real_ok();
    let wrong_kind = XksObservation {
        target: ProbeTarget {
            at_create: false,
            ..target
        },
        behaviour: XksBehaviour::Unreachable,
    };
    apply_observed(
        &mut second.model,
        second.now,
        "CreateCustomKeyStore",
        &body,
        wrong_kind,
    )
    .expect("an observation of a connect does not decide a Create");
    // An observation lasts one request: the next one simulates.
    let id = h.ids().pop().expect("the store");
    assert_eq!(
        connect_outcome(&mut h, &id),
        ("CONNECTED".to_string(), None)
    );
    // A simulated proxy ignores observations, even one naming its settings.
    let simulated = h.xks_request("sim", XKS_OK_2);
    let p2 = h.proxy(XKS_OK_2);
    let fake = XksObservation {
        target: ProbeTarget {
            uri_endpoint: p2.uri_endpoint.clone(),
            uri_path: p2.uri_path.clone(),
            access_key_id: p2.access_key_id.clone(),
            secret_access_key: Secret(p2.secret_access_key.clone()),
            address: REAL_ADDRESS.parse().expect("an address"),
            ca_cert: None,
            at_create: true,
        },
        behaviour: XksBehaviour::Unreachable,
    };
    apply_observed(
        &mut h.model,
        h.now,
        "CreateCustomKeyStore",
        &simulated,
        fake,
    )
    .expect("the simulated proxy connects");
}

// ---------------------------------------------------------------------------------------------
// 4. Uniqueness
// ---------------------------------------------------------------------------------------------

#[test]
fn store_names_are_unique_across_both_types() {
    let mut h = Harness::new();
    h.create_hsm("shared-name", HEALTHY_A);
    let body = h.hsm_request("shared-name", HEALTHY_B);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "CustomKeyStoreNameInUseException",
    );
    let body = h.xks_request("shared-name", XKS_OK);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "CustomKeyStoreNameInUseException",
    );
    assert_eq!(h.all_entries().len(), 1);
}

#[test]
fn rename_to_a_taken_name_fails_and_to_its_own_name_succeeds() {
    let mut h = Harness::new();
    let first = h.create_hsm("first", HEALTHY_A);
    let second = h.create_xks("second", XKS_OK);
    let out = h.update(&second, json!({ "NewCustomKeyStoreName": "first" }));
    expect_err(out, "CustomKeyStoreNameInUseException");
    assert_eq!(h.entry(&second)["CustomKeyStoreName"], json!("second"));

    h.update(&second, json!({ "NewCustomKeyStoreName": "second" }))
        .expect("own name");
    h.update(&first, json!({ "NewCustomKeyStoreName": "third" }))
        .expect("free name");
    assert_eq!(h.entry(&first)["CustomKeyStoreName"], json!("third"));
    h.update(&second, json!({ "NewCustomKeyStoreName": "first" }))
        .expect("the old name is free after the rename");
    assert_eq!(h.entry(&second)["CustomKeyStoreName"], json!("first"));
}

#[test]
fn a_name_is_reusable_after_its_store_is_deleted() {
    let mut h = Harness::new();
    let id = h.create_hsm("reused", HEALTHY_A);
    h.delete(&id).expect("delete");
    let again = h.create_hsm("reused", HEALTHY_A);
    assert_ne!(again, id, "a new store gets a new ID");
    assert_eq!(h.ids(), vec![again]);
}

#[test]
fn a_cluster_backs_at_most_one_store() {
    let mut h = Harness::new();
    let id = h.create_hsm("first", HEALTHY_A);
    let body = h.hsm_request("second", HEALTHY_A);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "CloudHsmClusterInUseException",
    );
    h.delete(&id).expect("delete");
    h.create_hsm("second", HEALTHY_A);
}

#[test]
fn the_trust_anchor_must_be_the_clusters() {
    let mut h = Harness::new();
    let mut body = h.hsm_request("hsm", HEALTHY_A);
    body["TrustAnchorCertificate"] = json!(h.cluster(HEALTHY_B).trust_anchor_certificate);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "IncorrectTrustAnchorException",
    );
    assert!(h.all_entries().is_empty());
}

#[test]
fn update_moves_only_to_a_related_cluster() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    let before = h.snapshot();
    let out = h.update(&id, json!({ "CloudHsmClusterId": HEALTHY_C }));
    expect_err(out, "CloudHsmClusterNotRelatedException");
    assert_eq!(h.snapshot(), before);

    let out = h.update(&id, json!({ "CloudHsmClusterId": "cluster-uninitialized" }));
    expect_err(out, "CloudHsmClusterNotActiveException");
    let out = h.update(&id, json!({ "CloudHsmClusterId": "cluster-notafixtureaa" }));
    expect_err(out, "CloudHsmClusterNotFoundException");

    h.update(&id, json!({ "CloudHsmClusterId": RELATED_A }))
        .expect("a related cluster");
    let entry = h.entry(&id);
    let related = h.cluster(RELATED_A);
    assert_eq!(entry["CloudHsmClusterId"], json!(RELATED_A));
    assert_eq!(
        entry["TrustAnchorCertificate"],
        json!(related.trust_anchor_certificate)
    );
    // The old cluster shares the new one's backup history: still not free for a store.
    let body = h.hsm_request("on-a", HEALTHY_A);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "CloudHsmClusterInUseException",
    );
}

#[test]
fn a_cluster_that_shares_a_backup_history_with_a_stores_cluster_is_in_use() {
    let mut h = Harness::new();
    h.create_hsm("hsm", HEALTHY_A);
    let body = h.hsm_request("related", RELATED_A);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "CloudHsmClusterInUseException",
    );
    // An unrelated cluster is free.
    h.create_hsm("other", HEALTHY_C);
}

#[test]
fn a_store_needs_two_active_hsms_at_create_and_one_to_connect() {
    let mut h = Harness::new();
    let mut two_down = h.cluster(HEALTHY_C);
    two_down.id = "cluster-onehsmaaaaaa".into();
    two_down.lineage = "one".into();
    two_down.active_hsms = 1;
    std::sync::Arc::make_mut(&mut h.model.fixtures)
        .clusters
        .push(two_down);
    let body = h.hsm_request("one-hsm", "cluster-onehsmaaaaaa");
    h.fail(
        "CreateCustomKeyStore",
        body,
        "CloudHsmClusterInvalidConfigurationException",
    );
    // Two HSMs at create, none left when it connects: FAILED, not an exception.
    let id = h.create_hsm("lost-hsms", "cluster-nohsmsaaaaaa");
    h.ok("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }));
    h.settle();
    let entry = h.entry(&id);
    assert_eq!(entry["ConnectionState"], json!("FAILED"));
    assert_eq!(
        entry["ConnectionErrorCode"],
        json!("INSUFFICIENT_CLOUDHSM_HSMS")
    );
}

#[test]
fn endpoint_and_path_of_an_external_store_are_unique() {
    let mut h = Harness::new();
    let first = h.create_xks("first", XKS_OK);
    let body = h.xks_request("second", XKS_OK);
    h.fail("CreateCustomKeyStore", body, "XksProxyUriInUseException");

    // The same endpoint with another path is not a URI clash (the proxy then answers 404).
    let mut other_path = h.xks_request("second", XKS_OK);
    other_path["XksProxyUriPath"] = json!("/other/kms/xks/v1");
    h.fail(
        "CreateCustomKeyStore",
        other_path,
        "XksProxyInvalidConfigurationException",
    );

    // An update may not move another store onto the URI either.
    let second = h.create_xks("second", XKS_OK_2);
    let p = h.proxy(XKS_OK);
    let out = h.update(
        &second,
        json!({
            "XksProxyUriEndpoint": p.uri_endpoint,
            "XksProxyUriPath": p.uri_path,
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": p.access_key_id,
                "RawSecretAccessKey": p.secret_access_key,
            },
        }),
    );
    expect_err(out, "XksProxyUriInUseException");
    // A store does not clash with itself.
    h.update(&first, json!({ "XksProxyUriPath": p.uri_path }))
        .expect("the store's own URI");

    h.delete(&first).expect("delete");
    h.create_xks("third", XKS_OK);
}

#[test]
fn a_vpc_endpoint_is_unique_with_vpc_connectivity() {
    let mut h = Harness::new();
    h.create_xks("first", XKS_VPC);
    let mut body = h.xks_request("second", XKS_VPC);
    body["XksProxyUriPath"] = json!("/other/kms/xks/v1");
    body["XksProxyVpcEndpointServiceName"] =
        json!("com.amazonaws.vpce.us-east-1.vpce-svc-0eeeeeeeeeeeeeeee");
    h.fail(
        "CreateCustomKeyStore",
        body,
        "XksProxyUriEndpointInUseException",
    );
}

#[test]
fn a_vpc_endpoint_service_backs_at_most_one_store() {
    let mut h = Harness::new();
    let first = h.create_xks("first", XKS_VPC);
    let service = h.proxy(XKS_VPC).vpc_endpoint_service_name;
    let mut body = h.xks_request("second", XKS_OK);
    body["XksProxyConnectivity"] = json!("VPC_ENDPOINT_SERVICE");
    body["XksProxyVpcEndpointServiceName"] = json!(service);
    h.fail(
        "CreateCustomKeyStore",
        body,
        "XksProxyVpcEndpointServiceInUseException",
    );
    h.delete(&first).expect("delete");
    h.create_xks("again", XKS_VPC);
}

#[test]
fn an_external_key_backs_at_most_one_kms_key_per_store() {
    let mut h = Harness::new();
    let first = h.connected_xks("first", XKS_OK);
    let second = h.connected_xks("second", XKS_OK_2);
    h.create_key(&first).expect("first key");
    let before = h.snapshot();
    expect_err(h.create_key(&first), "XksKeyAlreadyInUseException");
    assert_eq!(h.snapshot(), before);
    let body = h.key_request(&first, "xks-key-2");
    h.ok("CreateKey", body);
    // The same external key ID in another store (another proxy) is another key.
    h.create_key(&second).expect("same ID, other store");
    assert_eq!(h.model.keys().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// 5. Quota
// ---------------------------------------------------------------------------------------------

/// Create requests that succeed against the built-in fixtures, one per usable backend.
fn creatable(h: &Harness) -> Vec<Value> {
    let f = &h.model.fixtures;
    // One cluster per backup lineage: related clusters exclude each other.
    let mut lineages = std::collections::BTreeSet::new();
    let clusters = f
        .clusters
        .iter()
        .filter(|c| c.state == "ACTIVE" && !c.invalid_configuration && c.hsms_at_create() >= 2)
        .filter(|c| lineages.insert(c.lineage.clone()))
        .map(|c| h.hsm_request(&format!("store-{}", c.id), &c.id));
    let proxies = f
        .xks_proxies
        .iter()
        .filter(|p| p.behaviour_at_create == XksBehaviour::Connects)
        .map(|p| h.xks_request(&format!("store-{}", p.uri_endpoint), &p.uri_endpoint));
    clusters.chain(proxies).collect()
}

fn check_quota(quota: usize, config: ModelConfig) {
    let mut h = Harness::with_config(config);
    let bodies = creatable(&h);
    assert!(
        bodies.len() > quota + 1,
        "enough fixtures for quota {quota}"
    );
    let ids: Vec<String> = bodies[..quota]
        .iter()
        .map(|b| h.create(b.clone()))
        .collect();
    let before = h.snapshot();
    let e = h.fail(
        "CreateCustomKeyStore",
        bodies[quota].clone(),
        "LimitExceededException",
    );
    assert!(e.message.contains(&quota.to_string()), "{}", e.message);
    assert_eq!(h.snapshot(), before);

    h.delete(&ids[0]).expect("delete");
    h.create(bodies[quota].clone());
    h.fail(
        "CreateCustomKeyStore",
        bodies[quota + 1].clone(),
        "LimitExceededException",
    );
    assert_eq!(h.all_entries().len(), quota);
}

#[test]
fn the_default_quota_is_ten_stores() {
    assert_eq!(ModelConfig::default().quota, 10);
    check_quota(10, config());
}

#[test]
fn the_quota_is_configurable() {
    check_quota(
        3,
        ModelConfig {
            quota: 3,
            ..config()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 6. CreateKey
// ---------------------------------------------------------------------------------------------

#[test]
fn create_key_in_a_connected_cloudhsm_store() {
    let mut h = Harness::new();
    let id = h.connected_hsm("hsm", HEALTHY_A);
    let out = h.create_key(&id).expect("create key");
    let meta = &out["KeyMetadata"];
    assert_eq!(meta["CustomKeyStoreId"], json!(id));
    assert_eq!(meta["CloudHsmClusterId"], json!(HEALTHY_A));
    assert_eq!(meta["Origin"], json!("AWS_CLOUDHSM"));
    assert_eq!(meta["KeySpec"], json!("SYMMETRIC_DEFAULT"));
    assert!(meta.get("XksKeyConfiguration").is_none());
    let keys = h.model.keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(meta["KeyId"], json!(keys[0].key_id));
    assert_eq!(keys[0].custom_key_store_id.as_deref(), Some(id.as_str()));
}

#[test]
fn create_key_in_a_connected_external_store() {
    let mut h = Harness::new();
    let id = h.connected_xks("xks", XKS_OK);
    let out = h.create_key(&id).expect("create key");
    let meta = &out["KeyMetadata"];
    assert_eq!(meta["CustomKeyStoreId"], json!(id));
    assert_eq!(meta["Origin"], json!("EXTERNAL_KEY_STORE"));
    assert_eq!(meta["XksKeyConfiguration"], json!({ "Id": "xks-key-1" }));
    assert!(meta.get("CloudHsmClusterId").is_none());
}

#[test]
fn create_key_needs_a_connected_store() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    let e = expect_err(h.create_key(&id), INVALID_STATE);
    assert!(e.message.contains("DISCONNECTED"), "{}", e.message);
    h.connect(&id).expect("connect");
    expect_err(h.create_key(&id), INVALID_STATE);
    h.settle();
    h.create_key(&id).expect("connected");
    assert_eq!(h.model.keys().len(), 1);
}

#[test]
fn a_store_with_keys_cannot_be_deleted() {
    let mut h = Harness::new();
    let id = h.connected_xks("xks", XKS_OK);
    h.create_key(&id).expect("key");
    h.disconnect(&id).expect("disconnect");
    h.settle();
    let before = h.snapshot();
    expect_err(h.delete(&id), "CustomKeyStoreHasCMKsException");
    assert_eq!(h.snapshot(), before);
    let empty = h.create_hsm("empty", HEALTHY_A);
    h.delete(&empty).expect("a store without keys");
}

#[test]
fn create_key_rejects_unknown_and_unusable_external_keys() {
    let mut h = Harness::new();
    let id = h.connected_xks("xks", XKS_OK);
    let disabled = h.proxy(XKS_OK).unusable_keys[0].clone();
    let body = h.key_request(&id, "xks-key-nope");
    h.fail("CreateKey", body, "XksKeyNotFoundException");
    let body = h.key_request(&id, &disabled);
    h.fail("CreateKey", body, "XksKeyInvalidConfigurationException");
    assert!(h.model.keys().is_empty());
}

#[test]
fn create_key_origin_must_match_the_store() {
    let mut h = Harness::new();
    let hsm = h.connected_hsm("hsm", HEALTHY_A);
    let xks = h.connected_xks("xks", XKS_OK);
    let cases = [
        json!({ "CustomKeyStoreId": hsm, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "xks-key-1" }),
        json!({ "CustomKeyStoreId": xks, "Origin": "AWS_CLOUDHSM" }),
        json!({ "CustomKeyStoreId": hsm }),
        json!({ "CustomKeyStoreId": xks, "Origin": "AWS_KMS", "XksKeyId": "xks-key-1" }),
        json!({ "CustomKeyStoreId": xks, "Origin": "EXTERNAL_KEY_STORE" }),
        json!({ "CustomKeyStoreId": hsm, "Origin": "AWS_CLOUDHSM", "XksKeyId": "xks-key-1" }),
        json!({ "Origin": "AWS_CLOUDHSM" }),
        json!({ "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "xks-key-1" }),
    ];
    for body in cases {
        h.fail("CreateKey", body, VALIDATION);
    }
    assert!(h.model.keys().is_empty());
}

#[test]
fn create_key_in_an_unknown_store_and_of_an_unsupported_spec() {
    let mut h = Harness::new();
    let id = h.connected_hsm("hsm", HEALTHY_A);
    h.fail(
        "CreateKey",
        json!({ "CustomKeyStoreId": "cks-00000000000000000", "Origin": "AWS_CLOUDHSM" }),
        NOT_FOUND,
    );
    h.fail(
        "CreateKey",
        json!({ "CustomKeyStoreId": id, "Origin": "AWS_CLOUDHSM", "KeySpec": "RSA_2048" }),
        "UnsupportedOperationException",
    );
    h.fail(
        "CreateKey",
        json!({ "CustomKeyStoreId": id, "Origin": "AWS_CLOUDHSM", "KeyUsage": "SIGN_VERIFY" }),
        "UnsupportedOperationException",
    );
    assert!(h.model.keys().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. Switches
// ---------------------------------------------------------------------------------------------

#[test]
fn switch_connect_when_connected() {
    let mut h = Harness::with_switches(Switches {
        connect_when_connected: ConnectWhenConnected::Succeed,
        ..Switches::default()
    });
    let id = h.connected_hsm("hsm", HEALTHY_A);
    assert_eq!(h.connect(&id).expect("no-op"), json!({}));
    assert_eq!(h.state(&id), "CONNECTED");

    let mut h = Harness::with_switches(Switches {
        connect_when_connected: ConnectWhenConnected::InvalidState,
        ..Switches::default()
    });
    let id = h.connected_xks("xks", XKS_OK);
    let before = h.snapshot();
    expect_err(h.connect(&id), INVALID_STATE);
    assert_eq!(h.snapshot(), before);
    assert_eq!(h.state(&id), "CONNECTED");
    // The switch changes nothing for a DISCONNECTED or CONNECTING store.
    let other = h.create_hsm("hsm", HEALTHY_A);
    h.connect(&other).expect("from DISCONNECTED");
    h.connect(&other).expect("from CONNECTING");
}

/// Updates to try on a store: (label, store ID, members to change).
fn update_while_connected_cases(
    h: &Harness,
    hsm: &str,
    xks: &str,
) -> Vec<(&'static str, String, Value)> {
    let p = h.proxy(XKS_OK);
    let p2 = h.proxy(XKS_OK_2);
    let password = h.cluster(HEALTHY_A).kmsuser_password;
    let credential = json!({
        "AccessKeyId": p.access_key_id,
        "RawSecretAccessKey": p.secret_access_key,
    });
    vec![
        (
            "hsm name",
            hsm.to_string(),
            json!({ "NewCustomKeyStoreName": "hsm-renamed" }),
        ),
        (
            "hsm password",
            hsm.to_string(),
            json!({ "KeyStorePassword": password }),
        ),
        (
            "hsm cluster",
            hsm.to_string(),
            json!({ "CloudHsmClusterId": RELATED_A }),
        ),
        (
            "xks name",
            xks.to_string(),
            json!({ "NewCustomKeyStoreName": "xks-renamed" }),
        ),
        (
            "xks credential",
            xks.to_string(),
            json!({ "XksProxyAuthenticationCredential": credential }),
        ),
        (
            "xks path",
            xks.to_string(),
            json!({ "XksProxyUriPath": p.uri_path }),
        ),
        (
            "xks name, credential and path",
            xks.to_string(),
            json!({
                "NewCustomKeyStoreName": "xks-renamed-again",
                "XksProxyAuthenticationCredential": credential,
                "XksProxyUriPath": p.uri_path,
            }),
        ),
        (
            "xks endpoint",
            xks.to_string(),
            json!({
                "XksProxyUriEndpoint": p2.uri_endpoint,
                "XksProxyUriPath": p2.uri_path,
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": p2.access_key_id,
                    "RawSecretAccessKey": p2.secret_access_key,
                },
            }),
        ),
        (
            "xks connectivity",
            xks.to_string(),
            json!({ "XksProxyConnectivity": "PUBLIC_ENDPOINT" }),
        ),
        (
            "xks name and endpoint",
            xks.to_string(),
            json!({ "NewCustomKeyStoreName": "x", "XksProxyUriEndpoint": p2.uri_endpoint }),
        ),
    ]
}

#[test]
fn switch_update_while_connected() {
    let expectations: [(UpdateWhileConnected, &[&str]); 3] = [
        (
            UpdateWhileConnected::OperationPage,
            &[
                "hsm name",
                "xks name",
                "xks credential",
                "xks path",
                "xks name, credential and path",
            ],
        ),
        (UpdateWhileConnected::NameOnly, &["hsm name", "xks name"]),
        (UpdateWhileConnected::DisconnectedOnly, &[]),
    ];
    for (switch, allowed) in expectations {
        let switches = Switches {
            update_while_connected: switch,
            ..Switches::default()
        };
        let mut h = Harness::with_switches(switches);
        let hsm = h.connected_hsm("hsm", HEALTHY_A);
        let xks = h.connected_xks("xks", XKS_OK);
        for (what, id, changes) in update_while_connected_cases(&h, &hsm, &xks) {
            let before = h.snapshot();
            let outcome = h.update(&id, changes.clone());
            if allowed.contains(&what) {
                assert!(outcome.is_ok(), "{switch:?}: {what}: {outcome:?}");
                if let Some(name) = changes.get("NewCustomKeyStoreName") {
                    assert_eq!(h.entry(&id)["CustomKeyStoreName"], *name);
                }
            } else {
                expect_err(outcome, INVALID_STATE);
                assert_eq!(h.snapshot(), before, "{switch:?}: {what} changed the model");
            }
            assert_eq!(h.state(&id), "CONNECTED");
        }

        // Whatever the switch, a DISCONNECTED store takes every change.
        let mut h = Harness::with_switches(switches);
        let hsm = h.create_hsm("hsm", HEALTHY_A);
        let xks = h.create_xks("xks", XKS_OK);
        for (what, id, changes) in update_while_connected_cases(&h, &hsm, &xks) {
            if what == "xks name and endpoint" {
                continue; // moves to another proxy without its path and credential
            }
            let outcome = h.update(&id, changes);
            assert!(
                outcome.is_ok(),
                "{switch:?}: {what} while DISCONNECTED: {outcome:?}"
            );
        }
    }
}

#[test]
fn external_credential_rotation_while_connected() {
    let mut h = Harness::new();
    let id = h.connected_xks("xks", XKS_OK);
    let new_key_id = "ROTATEDACCESSKEYIDAAAA";
    let new_secret = "rotatedSecretAccessKeyForTheOkProxyAAAAAAAAA";
    {
        let p = h.proxy_mut(XKS_OK);
        p.access_key_id = new_key_id.into();
        p.secret_access_key = new_secret.into();
    }
    h.update(
        &id,
        json!({
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": new_key_id,
                "RawSecretAccessKey": new_secret,
            }
        }),
    )
    .expect("rotate while CONNECTED");
    let entry = h.entry(&id);
    assert_eq!(entry["ConnectionState"], json!("CONNECTED"));
    assert_eq!(
        entry["XksProxyConfiguration"]["AccessKeyId"],
        json!(new_key_id)
    );
    assert!(!entry.to_string().contains(new_secret));
    assert_eq!(h.store(&id).xks.unwrap().secret_access_key.0, new_secret);
}

#[test]
fn switch_delete_precedence() {
    for (precedence, expected) in [
        (DeletePrecedence::StateFirst, INVALID_STATE),
        (
            DeletePrecedence::KeysFirst,
            "CustomKeyStoreHasCMKsException",
        ),
    ] {
        let mut h = Harness::with_switches(Switches {
            delete_precedence: precedence,
            ..Switches::default()
        });
        let with_keys = h.connected_hsm("with-keys", HEALTHY_A);
        h.create_key(&with_keys).expect("key");
        let without_keys = h.connected_xks("without-keys", XKS_OK);
        let before = h.snapshot();
        expect_err(h.delete(&with_keys), expected);
        // Only one of the two problems: the same answer whatever the switch.
        expect_err(h.delete(&without_keys), INVALID_STATE);
        assert_eq!(h.snapshot(), before);
        h.disconnect(&with_keys).expect("disconnect");
        h.settle();
        expect_err(h.delete(&with_keys), "CustomKeyStoreHasCMKsException");
    }
}

#[test]
fn switch_check_order() {
    let unknown_too_long = "c".repeat(65);
    for (order, expected) in [
        (CheckOrder::ValidationFirst, VALIDATION),
        (CheckOrder::NotFoundFirst, NOT_FOUND),
    ] {
        let mut h = Harness::with_switches(Switches {
            check_order: order,
            ..Switches::default()
        });
        let known = h.create_hsm("hsm", HEALTHY_A);
        let e = h.fail(
            "ConnectCustomKeyStore",
            json!({ "CustomKeyStoreId": unknown_too_long }),
            expected,
        );
        if order == CheckOrder::ValidationFirst {
            assert!(
                e.message.contains("length less than or equal to 64"),
                "{}",
                e.message
            );
        }
        // An unknown (well-formed) ID with another bad member.
        h.fail(
            "UpdateCustomKeyStore",
            json!({ "CustomKeyStoreId": "cks-00000000000000000", "NewCustomKeyStoreName": "" }),
            expected,
        );
        // Either way: a known store with a bad member is a ValidationException...
        h.fail(
            "UpdateCustomKeyStore",
            json!({ "CustomKeyStoreId": known, "NewCustomKeyStoreName": "" }),
            VALIDATION,
        );
        // ...name and ID together are a ValidationException...
        h.fail(
            "DescribeCustomKeyStores",
            json!({ "CustomKeyStoreId": "cks-00000000000000000", "CustomKeyStoreName": "nope" }),
            VALIDATION,
        );
        // ...and serialization problems come before everything.
        let malformed = h.raw("ConnectCustomKeyStore", br#"{"CustomKeyStoreId": "#);
        expect_err(malformed, SERIALIZATION);
        h.fail(
            "ConnectCustomKeyStore",
            json!({ "CustomKeyStoreId": 12 }),
            SERIALIZATION,
        );
        h.fail(
            "UpdateCustomKeyStore",
            json!({ "CustomKeyStoreId": "cks-00000000000000000", "NewCustomKeyStoreName": 7 }),
            SERIALIZATION,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Validation: order, messages, secrets, no side effects
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_and_non_object_bodies_are_serialization_errors() {
    let mut h = Harness::new();
    let bodies: [&[u8]; 9] = [
        b"{",
        b"{\"CustomKeyStoreId\": }",
        b"not json",
        b"[]",
        b"\"cks-00000000000000000\"",
        b"42",
        b"null",
        b"true",
        b"{} {}",
    ];
    for body in bodies {
        let e = expect_err(h.raw("ConnectCustomKeyStore", body), SERIALIZATION);
        assert!(!e.message.is_empty());
    }
}

#[test]
fn members_of_the_wrong_json_type_are_serialization_errors() {
    let mut h = Harness::new();
    let cases = [
        ("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": 1 })),
        (
            "ConnectCustomKeyStore",
            json!({ "CustomKeyStoreId": ["a"] }),
        ),
        ("DescribeCustomKeyStores", json!({ "Limit": "5" })),
        ("DescribeCustomKeyStores", json!({ "Limit": 1.5 })),
        ("DescribeCustomKeyStores", json!({ "Limit": true })),
        (
            "DescribeCustomKeyStores",
            json!({ "CustomKeyStoreName": { "a": 1 } }),
        ),
        (
            "CreateCustomKeyStore",
            json!({ "CustomKeyStoreName": "x", "XksProxyAuthenticationCredential": "creds" }),
        ),
        (
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "x",
                "XksProxyAuthenticationCredential": { "AccessKeyId": 5, "RawSecretAccessKey": "s" },
            }),
        ),
        // A wrong type wins over a constraint violation in another member.
        (
            "CreateCustomKeyStore",
            json!({ "CustomKeyStoreName": "", "KeyStorePassword": 1234567 }),
        ),
    ];
    for (op, body) in cases {
        h.fail(op, body, SERIALIZATION);
    }
}

#[test]
fn an_empty_body_is_an_empty_object() {
    let mut h = Harness::new();
    let out = h.raw("DescribeCustomKeyStores", b"").expect("empty body");
    assert_eq!(out, json!({ "CustomKeyStores": [], "Truncated": false }));
    let e = expect_err(h.raw("ConnectCustomKeyStore", b"  \n"), VALIDATION);
    assert!(e.message.contains("'customKeyStoreId'"), "{}", e.message);
}

#[test]
fn an_unknown_operation_is_rejected_first() {
    let mut h = Harness::new();
    expect_err(h.raw("ListKeys", b"not json"), "UnknownOperationException");
}

#[test]
fn constraint_violations_are_validation_errors_with_kms_style_messages() {
    let mut h = Harness::new();
    let e = h.fail("ConnectCustomKeyStore", json!({}), VALIDATION);
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'customKeyStoreId' failed to satisfy \
         constraint: Member must not be null"
    );
    let e = h.fail(
        "ConnectCustomKeyStore",
        json!({ "CustomKeyStoreId": "" }),
        VALIDATION,
    );
    assert_eq!(
        e.message,
        "1 validation error detected: Value '' at 'customKeyStoreId' failed to satisfy \
         constraint: Member must have length greater than or equal to 1"
    );
    let e = h.fail("DescribeCustomKeyStores", json!({ "Limit": 0 }), VALIDATION);
    assert!(
        e.message.contains("Value '0' at 'limit'")
            && e.message.contains("value greater than or equal to 1"),
        "{}",
        e.message
    );
    let e = h.fail(
        "DescribeCustomKeyStores",
        json!({ "Limit": 1001 }),
        VALIDATION,
    );
    assert!(
        e.message.contains("value less than or equal to 1000"),
        "{}",
        e.message
    );
    let e = h.fail(
        "CreateCustomKeyStore",
        json!({ "CustomKeyStoreName": "", "CustomKeyStoreType": "BOGUS" }),
        VALIDATION,
    );
    assert!(
        e.message.starts_with("2 validation errors detected: "),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("Member must satisfy enum value set: [AWS_CLOUDHSM, EXTERNAL_KEY_STORE]"),
        "{}",
        e.message
    );
}

#[test]
fn every_kind_of_constraint_is_checked() {
    let mut h = Harness::new();
    let hsm = |h: &Harness, member: &str, value: Value| {
        let mut body = h.hsm_request("hsm", HEALTHY_A);
        body[member] = value;
        body
    };
    let xks = |h: &Harness, member: &str, value: Value| {
        let mut body = h.xks_request("xks", XKS_OK);
        body[member] = value;
        body
    };
    let cases = vec![
        (
            "name too long",
            hsm(&h, "CustomKeyStoreName", json!("n".repeat(257))),
        ),
        ("name empty", hsm(&h, "CustomKeyStoreName", json!(""))),
        (
            "cluster ID from the documentation (has a 1)",
            hsm(&h, "CloudHsmClusterId", json!("cluster-1a23b4cdefg")),
        ),
        (
            "cluster ID too long",
            hsm(&h, "CloudHsmClusterId", json!("cluster-aaaaaaaaaaaaaaaaa")),
        ),
        (
            "empty trust anchor",
            hsm(&h, "TrustAnchorCertificate", json!("")),
        ),
        (
            "password too short",
            hsm(&h, "KeyStorePassword", json!("short6")),
        ),
        (
            "password too long",
            hsm(&h, "KeyStorePassword", json!("p".repeat(33))),
        ),
        (
            "type enum",
            hsm(&h, "CustomKeyStoreType", json!("CLOUDHSM")),
        ),
        (
            "endpoint with a port",
            xks(
                &h,
                "XksProxyUriEndpoint",
                json!("https://xks-ok.example.test:443"),
            ),
        ),
        (
            "endpoint not https",
            xks(
                &h,
                "XksProxyUriEndpoint",
                json!("http://xks-ok.example.test"),
            ),
        ),
        (
            "path pattern",
            xks(&h, "XksProxyUriPath", json!("/ok/kms/xks/v123")),
        ),
        (
            "path too short",
            xks(&h, "XksProxyUriPath", json!("/kms/xks")),
        ),
        (
            "connectivity enum",
            xks(&h, "XksProxyConnectivity", json!("PRIVATE")),
        ),
        (
            "service owner pattern",
            xks(&h, "XksProxyVpcEndpointServiceOwner", json!("12345678901a")),
        ),
        (
            "service name pattern",
            xks(
                &h,
                "XksProxyVpcEndpointServiceName",
                json!("vpce-svc-0a1b2c3d4e5f6a7b8"),
            ),
        ),
        (
            "access key ID pattern",
            xks(
                &h,
                "XksProxyAuthenticationCredential",
                json!({
                    "AccessKeyId": "OKPROXYACCESSKEY1111",
                    "RawSecretAccessKey": h.proxy(XKS_OK).secret_access_key,
                }),
            ),
        ),
        (
            "credential without a secret",
            xks(
                &h,
                "XksProxyAuthenticationCredential",
                json!({ "AccessKeyId": h.proxy(XKS_OK).access_key_id }),
            ),
        ),
    ];
    for (what, body) in cases {
        let out = h.call("CreateCustomKeyStore", body);
        assert!(
            matches!(&out, Err(e) if e.name == VALIDATION),
            "{what}: {out:?}"
        );
    }
    // The edges of the ranges are fine.
    let body = hsm(&h, "CustomKeyStoreName", json!("n".repeat(256)));
    h.create(body);
    let body = xks(&h, "CustomKeyStoreName", json!("x"));
    h.create(body);
    for limit in [1, 1000] {
        h.ok("DescribeCustomKeyStores", json!({ "Limit": limit }));
    }
    for marker in ["".to_string(), "m".repeat(1025), "\u{0100}".to_string()] {
        h.fail(
            "DescribeCustomKeyStores",
            json!({ "Marker": marker }),
            VALIDATION,
        );
    }
}

#[test]
fn members_must_fit_the_store_type() {
    let mut h = Harness::new();
    let mut hsm_with_xks = h.hsm_request("hsm", HEALTHY_A);
    hsm_with_xks["XksProxyUriPath"] = json!("/ok/kms/xks/v1");
    h.fail("CreateCustomKeyStore", hsm_with_xks, VALIDATION);
    let mut xks_with_hsm = h.xks_request("xks", XKS_OK);
    xks_with_hsm["KeyStorePassword"] = json!("kmsuser-pass");
    h.fail("CreateCustomKeyStore", xks_with_hsm, VALIDATION);
    for missing in [
        "CloudHsmClusterId",
        "TrustAnchorCertificate",
        "KeyStorePassword",
    ] {
        let mut body = h.hsm_request("hsm", HEALTHY_A);
        body.as_object_mut().unwrap().remove(missing);
        let e = h.fail("CreateCustomKeyStore", body, VALIDATION);
        assert!(e.message.contains(missing), "{}", e.message);
    }
    for missing in [
        "XksProxyUriEndpoint",
        "XksProxyUriPath",
        "XksProxyAuthenticationCredential",
        "XksProxyConnectivity",
    ] {
        let mut body = h.xks_request("xks", XKS_OK);
        body.as_object_mut().unwrap().remove(missing);
        let e = h.fail("CreateCustomKeyStore", body, VALIDATION);
        assert!(e.message.contains(missing), "{}", e.message);
    }
    let mut vpc_without_service = h.xks_request("xks", XKS_VPC);
    vpc_without_service
        .as_object_mut()
        .unwrap()
        .remove("XksProxyVpcEndpointServiceName");
    h.fail("CreateCustomKeyStore", vpc_without_service, VALIDATION);
    let mut public_with_service = h.xks_request("xks", XKS_VPC);
    public_with_service["XksProxyConnectivity"] = json!("PUBLIC_ENDPOINT");
    h.fail("CreateCustomKeyStore", public_with_service, VALIDATION);

    let hsm = h.create_hsm("hsm", HEALTHY_A);
    let xks = h.create_xks("xks", XKS_OK);
    let path = h.proxy(XKS_OK).uri_path;
    let out = h.update(&hsm, json!({ "XksProxyUriPath": path }));
    expect_err(out, VALIDATION);
    let out = h.update(&xks, json!({ "CloudHsmClusterId": HEALTHY_B }));
    expect_err(out, VALIDATION);
    assert!(h.all_entries().len() == 2);
}

#[test]
fn a_null_member_is_treated_as_absent() {
    let mut h = Harness::new();
    let e = h.fail(
        "ConnectCustomKeyStore",
        json!({ "CustomKeyStoreId": null }),
        VALIDATION,
    );
    assert!(e.message.contains("must not be null"), "{}", e.message);

    let mut body = h.hsm_request("hsm", HEALTHY_A);
    body["XksProxyUriEndpoint"] = Value::Null;
    body["XksProxyAuthenticationCredential"] = Value::Null;
    body["CustomKeyStoreType"] = Value::Null;
    let id = h.create(body);
    let entry = h.entry(&id);
    assert_eq!(entry["CustomKeyStoreType"], json!("AWS_CLOUDHSM"));
    assert!(entry.get("XksProxyConfiguration").is_none());

    let out = h.ok(
        "DescribeCustomKeyStores",
        json!({ "CustomKeyStoreName": null, "CustomKeyStoreId": null, "Limit": null, "Marker": null }),
    );
    assert_eq!(out["CustomKeyStores"].as_array().unwrap().len(), 1);

    h.update(
        &id,
        json!({ "NewCustomKeyStoreName": null, "CloudHsmClusterId": null }),
    )
    .expect("an update that changes nothing");
    assert_eq!(h.entry(&id)["CustomKeyStoreName"], json!("hsm"));
}

#[test]
fn members_the_spec_does_not_know_are_ignored_even_while_connected() {
    let mut h = Harness::new();
    let hsm = h.connected_hsm("hsm", HEALTHY_A);
    h.update(
        &hsm,
        json!({ "NewCustomKeyStoreName": "renamed", "NotAMember": "x" }),
    )
    .expect("an unknown member changes nothing");
    assert_eq!(h.entry(&hsm)["CustomKeyStoreName"], json!("renamed"));
    assert_eq!(h.state(&hsm), "CONNECTED");
    h.ok(
        "ConnectCustomKeyStore",
        json!({ "CustomKeyStoreId": hsm, "NotAMember": 1 }),
    );
    let mut body = h.xks_request("xks", XKS_OK);
    body["NotAMember"] = json!({ "deep": true });
    h.create(body);
}

#[test]
fn sensitive_values_never_appear_in_error_messages() {
    let mut h = Harness::new();
    let secrets = [
        "pw#1",                                             // too short
        "PasswordThatIsWayTooLongForKMS12345",              // too long
        "lowercase-access-key-id-x",                        // access key ID breaking its pattern
        "Secret#With#Forbidden#Characters#AAAAAAAAAAAAAAA", // secret breaking its pattern
        "short-secret",                                     // secret too short
    ];
    let mut messages = Vec::new();
    let mut push = |out: Outcome| match out {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => messages.push(e),
    };
    for password in &secrets[..2] {
        let mut body = h.hsm_request("hsm", HEALTHY_A);
        body["KeyStorePassword"] = json!(password);
        push(h.call("CreateCustomKeyStore", body));
    }
    let p = h.proxy(XKS_OK);
    let credentials = [
        json!({ "AccessKeyId": secrets[2], "RawSecretAccessKey": p.secret_access_key }),
        json!({ "AccessKeyId": p.access_key_id, "RawSecretAccessKey": secrets[3] }),
        json!({ "AccessKeyId": p.access_key_id, "RawSecretAccessKey": secrets[4] }),
        json!({ "AccessKeyId": secrets[2], "RawSecretAccessKey": secrets[4] }),
    ];
    for credential in credentials {
        let mut body = h.xks_request("xks", XKS_OK);
        body["XksProxyAuthenticationCredential"] = credential;
        push(h.call("CreateCustomKeyStore", body));
    }
    // Valid-looking but wrong secrets rejected by the backends.
    let wrong_secret = "wrongButWellFormedSecretAccessKeyAAAAAAAAAAA";
    let mut body = h.xks_request("xks", XKS_OK);
    body["XksProxyAuthenticationCredential"]["RawSecretAccessKey"] = json!(wrong_secret);
    push(h.call("CreateCustomKeyStore", body));
    let id = h.create_hsm("hsm", HEALTHY_A);
    let wrong_password = "wrong-but-valid-password";
    push(h.update(
        &id,
        json!({ "KeyStorePassword": wrong_password, "CloudHsmClusterId": HEALTHY_C }),
    ));
    push(h.update(
        &id,
        json!({ "KeyStorePassword": wrong_password, "NewCustomKeyStoreName": "" }),
    ));

    assert_eq!(messages.len(), 9);
    let real_secrets = [
        h.cluster(HEALTHY_A).kmsuser_password,
        p.secret_access_key.clone(),
        p.access_key_id.clone(),
    ];
    for e in &messages {
        let all = secrets
            .iter()
            .copied()
            .chain([wrong_secret, wrong_password])
            .chain(real_secrets.iter().map(String::as_str));
        for secret in all {
            assert!(
                !e.message.contains(secret),
                "{} message shows a secret: {}",
                e.name,
                e.message
            );
        }
    }
    let validation: Vec<_> = messages.iter().filter(|e| e.name == VALIDATION).collect();
    assert_eq!(validation.len(), 7);
    assert!(
        validation[0]
            .message
            .contains("Value at 'keyStorePassword'")
    );
    assert!(
        validation[3]
            .message
            .contains("Value at 'xksProxyAuthenticationCredential.rawSecretAccessKey'"),
        "{}",
        validation[3].message
    );
}

#[test]
fn a_rejected_request_changes_nothing() {
    let mut h = Harness::new();
    let hsm = h.connected_hsm("hsm", HEALTHY_A);
    h.create_key(&hsm).expect("key");
    let xks = h.create_xks("xks", XKS_OK);
    let vpc = h.create_xks("vpc", XKS_VPC);
    let unknown = "cks-00000000000000000";
    let rejected = vec![
        ("CreateCustomKeyStore", h.hsm_request("hsm", HEALTHY_B)),
        ("CreateCustomKeyStore", h.hsm_request("other", HEALTHY_A)),
        ("CreateCustomKeyStore", h.xks_request("other", XKS_OK)),
        ("CreateCustomKeyStore", json!({ "CustomKeyStoreName": "" })),
        (
            "ConnectCustomKeyStore",
            json!({ "CustomKeyStoreId": unknown }),
        ),
        (
            "DisconnectCustomKeyStore",
            json!({ "CustomKeyStoreId": xks }),
        ),
        ("DeleteCustomKeyStore", json!({ "CustomKeyStoreId": hsm })),
        (
            "UpdateCustomKeyStore",
            json!({ "CustomKeyStoreId": hsm, "KeyStorePassword": "new-password" }),
        ),
        (
            "UpdateCustomKeyStore",
            json!({ "CustomKeyStoreId": xks, "NewCustomKeyStoreName": "vpc" }),
        ),
        (
            "UpdateCustomKeyStore",
            json!({
                "CustomKeyStoreId": xks,
                "NewCustomKeyStoreName": "fresh-name",
                "XksProxyUriPath": "/wrong/kms/xks/v1",
            }),
        ),
        (
            "UpdateCustomKeyStore",
            json!({
                "CustomKeyStoreId": vpc,
                "NewCustomKeyStoreName": "fresh-name",
                "XksProxyVpcEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0ffffffffffffffff",
            }),
        ),
        (
            "CreateKey",
            json!({ "CustomKeyStoreId": xks, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "xks-key-1" }),
        ),
        ("DescribeCustomKeyStores", json!({ "Marker": "foreign" })),
    ];
    for (op, body) in rejected {
        let before = h.snapshot();
        let shown = body.to_string();
        assert!(h.call(op, body).is_err(), "{op} {shown} was accepted");
        assert_eq!(h.snapshot(), before, "{op} {shown} changed the model");
    }
    let garbage: [&[u8]; 2] = [b"{", b"[1]"];
    for body in garbage {
        let before = h.snapshot();
        assert!(h.raw("DeleteCustomKeyStore", body).is_err());
        assert_eq!(h.snapshot(), before);
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Describe
// ---------------------------------------------------------------------------------------------

#[test]
fn paging_with_every_limit_yields_every_store_once_in_creation_order() {
    let mut h = Harness::new();
    let mut created = Vec::new();
    for cluster in [HEALTHY_A, HEALTHY_B, HEALTHY_C, HEALTHY_D] {
        created.push(h.create_hsm(cluster, cluster));
    }
    for endpoint in [XKS_OK, XKS_OK_2] {
        created.push(h.create_xks(endpoint, endpoint));
    }
    // The clock does not move: the order is the creation order, not a time order.
    let n = created.len();
    assert_eq!(h.ids(), created);
    for limit in 1..=n + 1 {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut body = json!({ "Limit": limit });
            if let Some(m) = &marker {
                body["Marker"] = json!(m);
            }
            let out = h.ok("DescribeCustomKeyStores", body);
            pages += 1;
            let page = out["CustomKeyStores"].as_array().expect("a list");
            assert!(
                !page.is_empty() && page.len() <= limit,
                "limit {limit}: {out}"
            );
            seen.extend(
                page.iter()
                    .map(|e| e["CustomKeyStoreId"].as_str().unwrap().to_string()),
            );
            let truncated = out["Truncated"].as_bool().expect("Truncated is a boolean");
            assert_eq!(
                out.get("NextMarker").is_some(),
                truncated,
                "NextMarker exactly when Truncated: {out}"
            );
            match out.get("NextMarker") {
                Some(m) => marker = Some(m.as_str().expect("a string").to_string()),
                None => break,
            }
            assert!(pages <= n, "limit {limit}: paging does not end");
        }
        assert_eq!(seen, created, "limit {limit}");
        assert_eq!(pages, n.div_ceil(limit), "limit {limit}");
    }
}

#[test]
fn a_marker_resumes_correctly_after_the_store_it_points_to_was_deleted() {
    let mut h = Harness::new();
    let ids: Vec<String> = [HEALTHY_A, HEALTHY_B, HEALTHY_C, HEALTHY_D]
        .iter()
        .map(|c| h.create_hsm(c, c))
        .collect();
    let first = h.ok("DescribeCustomKeyStores", json!({ "Limit": 2 }));
    let marker = first["NextMarker"].as_str().expect("a marker").to_string();
    h.delete(&ids[2])
        .expect("delete the store the marker points to");
    h.delete(&ids[0]).expect("delete a store already listed");
    let rest = h.ok(
        "DescribeCustomKeyStores",
        json!({ "Limit": 2, "Marker": marker }),
    );
    assert_eq!(
        rest["CustomKeyStores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["CustomKeyStoreId"].clone())
            .collect::<Vec<_>>(),
        vec![json!(ids[3])]
    );
    assert_eq!(rest["Truncated"], json!(false));
    assert!(rest.get("NextMarker").is_none());

    // A marker to a position past every store gives an empty last page.
    h.delete(&ids[3]).expect("delete the last store");
    let empty = h.ok("DescribeCustomKeyStores", json!({ "Marker": marker }));
    assert_eq!(empty, json!({ "CustomKeyStores": [], "Truncated": false }));
}

#[test]
fn a_foreign_marker_is_an_invalid_marker() {
    let mut h = Harness::new();
    h.create_hsm("hsm", HEALTHY_A);
    for marker in ["foreign", "eyJNYXJrZXIiOiAiMSJ9", "ckscheck-marker-v1:zz"] {
        h.fail(
            "DescribeCustomKeyStores",
            json!({ "Marker": marker }),
            "InvalidMarkerException",
        );
    }
}

#[test]
fn describe_by_id_and_by_name_return_exactly_that_store() {
    let mut h = Harness::new();
    let a = h.create_hsm("alpha", HEALTHY_A);
    let b = h.create_xks("beta", XKS_OK);
    let out = h.ok(
        "DescribeCustomKeyStores",
        json!({ "CustomKeyStoreName": "beta" }),
    );
    assert_eq!(out["CustomKeyStores"].as_array().unwrap().len(), 1);
    assert_eq!(out["CustomKeyStores"][0]["CustomKeyStoreId"], json!(b));
    assert_eq!(h.entry(&a)["CustomKeyStoreName"], json!("alpha"));

    h.fail(
        "DescribeCustomKeyStores",
        json!({ "CustomKeyStoreId": "cks-00000000000000000" }),
        NOT_FOUND,
    );
    h.fail(
        "DescribeCustomKeyStores",
        json!({ "CustomKeyStoreName": "gamma" }),
        NOT_FOUND,
    );
    h.fail(
        "DescribeCustomKeyStores",
        json!({ "CustomKeyStoreId": a, "CustomKeyStoreName": "alpha" }),
        VALIDATION,
    );
    h.delete(&a).expect("delete");
    h.fail(
        "DescribeCustomKeyStores",
        json!({ "CustomKeyStoreId": a }),
        NOT_FOUND,
    );
}

#[test]
fn operations_on_an_unknown_store_are_not_found() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.delete(&id).expect("delete");
    for op in [
        "ConnectCustomKeyStore",
        "DisconnectCustomKeyStore",
        "UpdateCustomKeyStore",
        "DeleteCustomKeyStore",
    ] {
        let e = h.fail(op, json!({ "CustomKeyStoreId": id }), NOT_FOUND);
        assert!(e.message.contains(&id), "{}", e.message);
    }
}

#[test]
fn describe_entries_have_the_fields_of_their_type() {
    let mut h = Harness::new();
    let hsm = h.create_hsm("hsm", HEALTHY_A);
    let public = h.create_xks("public", XKS_OK);
    let vpc = h.create_xks("vpc", XKS_VPC);

    let e = h.entry(&hsm);
    let a = h.cluster(HEALTHY_A);
    assert_eq!(e["CustomKeyStoreName"], json!("hsm"));
    assert_eq!(e["CustomKeyStoreType"], json!("AWS_CLOUDHSM"));
    assert_eq!(e["ConnectionState"], json!("DISCONNECTED"));
    assert_eq!(e["CloudHsmClusterId"], json!(HEALTHY_A));
    assert_eq!(
        e["TrustAnchorCertificate"],
        json!(a.trust_anchor_certificate)
    );
    assert!(e.get("XksProxyConfiguration").is_none());

    let p = h.proxy(XKS_OK);
    let e = h.entry(&public);
    assert_eq!(e["CustomKeyStoreType"], json!("EXTERNAL_KEY_STORE"));
    assert!(e.get("CloudHsmClusterId").is_none());
    assert!(e.get("TrustAnchorCertificate").is_none());
    assert_eq!(
        e["XksProxyConfiguration"],
        json!({
            "Connectivity": "PUBLIC_ENDPOINT",
            "AccessKeyId": p.access_key_id,
            "UriEndpoint": p.uri_endpoint,
            "UriPath": p.uri_path,
        })
    );

    let v = h.proxy(XKS_VPC);
    let e = h.entry(&vpc);
    assert_eq!(
        e["XksProxyConfiguration"],
        json!({
            "Connectivity": "VPC_ENDPOINT_SERVICE",
            "AccessKeyId": v.access_key_id,
            "UriEndpoint": v.uri_endpoint,
            "UriPath": v.uri_path,
            "VpcEndpointServiceName": v.vpc_endpoint_service_name,
            "VpcEndpointServiceOwner": "444455556666",
        })
    );
}

// ---------------------------------------------------------------------------------------------
// 10. IDs, dates and secrets in entries
// ---------------------------------------------------------------------------------------------

#[test]
fn ids_look_like_kms_ids_and_are_deterministic_per_seed() {
    let pattern = regex::Regex::new("^cks-[0-9a-f]{17}$").unwrap();
    let make = || {
        let mut h = Harness::new();
        let bodies = creatable(&h);
        let ids: Vec<String> = bodies[..10].iter().map(|b| h.create(b.clone())).collect();
        ids
    };
    let ids = make();
    for id in &ids {
        assert!(pattern.is_match(id), "{id}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "IDs are unique");
    assert_eq!(make(), ids, "the same seed yields the same IDs");
}

#[test]
fn creation_date_is_epoch_seconds_with_milliseconds() {
    let mut h = Harness::new();
    let id = h.create_hsm("hsm", HEALTHY_A);
    h.advance(1_877);
    let later = h.create_hsm("later", HEALTHY_B);
    let e = h.entry(&id);
    let date = &e["CreationDate"];
    assert!(date.is_f64(), "a JSON number with a fraction: {date}");
    assert_eq!(date.as_f64(), Some(1_700_000_000.123));
    assert!(
        e.to_string().contains("\"CreationDate\":1700000000.123"),
        "{e}"
    );
    let later_date = h.entry(&later)["CreationDate"].as_f64().unwrap();
    assert_eq!(((later_date - 1_700_000_000.0) * 1000.0).round(), 2_000.0);
    // The date is the creation time: it does not move with the clock or with updates.
    h.advance(60_000);
    h.update(&id, json!({ "NewCustomKeyStoreName": "renamed" }))
        .expect("rename");
    assert_eq!(
        h.entry(&id)["CreationDate"].as_f64(),
        Some(1_700_000_000.123)
    );

    let mut whole = Harness::new();
    whole.now = 1_700_000_001_000;
    let id = whole.create_hsm("hsm", HEALTHY_A);
    let date = &whole.entry(&id)["CreationDate"];
    assert!(date.is_number());
    assert_eq!(date.as_f64(), Some(1_700_000_001.0));
}

#[test]
fn no_entry_ever_contains_a_password_or_raw_secret() {
    let mut h = Harness::new();
    let hsm = h.create_hsm("hsm", HEALTHY_A);
    let mut wrong = h.hsm_request("wrong", HEALTHY_B);
    let wrong_password = "wrong-kmsuser-password";
    wrong["KeyStorePassword"] = json!(wrong_password);
    let failing = h.create(wrong);
    h.connect(&failing).expect("connect");
    let public = h.connected_xks("public", XKS_OK);
    let vpc = h.create_xks("vpc", XKS_VPC);
    h.settle();
    let updated_password = h.cluster(HEALTHY_A).kmsuser_password;
    h.update(&hsm, json!({ "KeyStorePassword": updated_password }))
        .expect("password update");
    let v = h.proxy(XKS_VPC);
    h.update(
        &vpc,
        json!({ "XksProxyAuthenticationCredential": {
            "AccessKeyId": v.access_key_id,
            "RawSecretAccessKey": v.secret_access_key,
        }}),
    )
    .expect("credential update");
    assert_eq!(h.state(&failing), "FAILED");
    assert_eq!(h.state(&public), "CONNECTED");

    let mut secrets: Vec<String> = h
        .model
        .fixtures
        .clusters
        .iter()
        .map(|c| c.kmsuser_password.clone())
        .chain(
            h.model
                .fixtures
                .xks_proxies
                .iter()
                .map(|p| p.secret_access_key.clone()),
        )
        .collect();
    secrets.push(wrong_password.to_string());

    let listing = h.ok("DescribeCustomKeyStores", json!({})).to_string();
    let paged: String = (0..4)
        .scan(None::<String>, |marker, _| {
            let mut body = json!({ "Limit": 1 });
            if let Some(m) = marker.as_ref() {
                body["Marker"] = json!(m);
            }
            let out = h.ok("DescribeCustomKeyStores", body);
            *marker = out
                .get("NextMarker")
                .and_then(Value::as_str)
                .map(String::from);
            Some(out.to_string())
        })
        .collect();
    let debug = format!("{:?}", h.model.stores(h.now));
    for text in [&listing, &paged, &debug] {
        assert!(
            text.contains(HEALTHY_A),
            "the text is about the stores: {text}"
        );
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} shown in {text}");
        }
    }
}

proptest::proptest! {
    /// Dates print with exactly the millisecond digits: the division is the decimal number.
    #[test]
    fn epoch_seconds_is_the_three_decimal_number(ms in 0u64..(1u64 << 53)) {
        let date = super::store::epoch_seconds(ms);
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        proptest::prop_assert_eq!(date.as_f64(), text.parse::<f64>().ok());
    }
}
