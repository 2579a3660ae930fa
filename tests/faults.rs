//! Planted faults on the wire: for every fault, an emulator with it planted gives the faulty
//! answer, and a clean emulator given the same requests answers correctly.

#[allow(dead_code)] // the shared helpers this file does not use
mod common;

use std::time::Duration;

use ckscheck::emulator::{EmulatorConfig, Fault, RunningEmulator};
use ckscheck::model::ModelConfig;
use ckscheck::runner::{KmsClient, Reply};
use serde_json::{Value, json};
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(5);
const UNKNOWN_ID: &str = "cks-00000000000000000";
const DESCRIBE: &str = "DescribeCustomKeyStores";

/// A running emulator and a client for it.
struct Emu {
    running: RunningEmulator,
    client: KmsClient,
}

impl Emu {
    /// Connections settle at once.
    async fn start(faults: &[Fault]) -> Emu {
        Emu::with(
            faults,
            ModelConfig {
                connect_delay_ms: 0,
                ..ModelConfig::default()
            },
        )
        .await
    }

    async fn with(faults: &[Fault], model: ModelConfig) -> Emu {
        let (running, client) = common::embedded(faults, model).await;
        Emu { running, client }
    }

    /// A faulty emulator and a clean one.
    async fn pair(fault: Fault) -> (Emu, Emu) {
        (Emu::start(&[fault]).await, Emu::start(&[]).await)
    }

    async fn call(&self, op: &str, body: Value) -> Reply {
        timeout(STEP, self.client.call(op, &body))
            .await
            .expect("answers in time")
            .expect("answers")
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        let r = self.call(op, body).await;
        assert_eq!(r.status, 200, "{op}: {}", r.text);
        r.body
    }

    /// A CloudHSM store on the healthy cluster `letter` (a-d), with `password`.
    async fn hsm_with(&self, name: &str, letter: char, password: &str) -> String {
        let upper = letter.to_ascii_uppercase();
        let body = json!({
            "CustomKeyStoreName": name,
            "CloudHsmClusterId": format!("cluster-healthy{}", letter.to_string().repeat(5)),
            "TrustAnchorCertificate": format!("-----BEGIN CERTIFICATE-----\nMIIBhealthy{upper}\n-----END CERTIFICATE-----"),
            "KeyStorePassword": password,
        });
        self.ok("CreateCustomKeyStore", body).await["CustomKeyStoreId"]
            .as_str()
            .expect("an ID")
            .to_string()
    }

    async fn hsm(&self, name: &str, letter: char) -> String {
        self.hsm_with(name, letter, &format!("kmsuser-pass-{letter}"))
            .await
    }

    async fn xks(&self, name: &str) -> String {
        let body = json!({
            "CustomKeyStoreName": name,
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyUriEndpoint": "https://xks-ok.example.test",
            "XksProxyUriPath": "/ok/kms/xks/v1",
            "XksProxyConnectivity": "PUBLIC_ENDPOINT",
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": "OKPROXYACCESSKEYAAAA",
                "RawSecretAccessKey": "okProxySecretAccessKeyAAAAAAAAAAAAAAAAAAAA1",
            },
        });
        self.ok("CreateCustomKeyStore", body).await["CustomKeyStoreId"]
            .as_str()
            .expect("an ID")
            .to_string()
    }

    /// Five stores s1..s5, in listing order.
    async fn five(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for (i, letter) in ['a', 'b', 'c', 'd'].into_iter().enumerate() {
            ids.push(self.hsm(&format!("s{}", i + 1), letter).await);
        }
        ids.push(self.xks("s5").await);
        ids
    }

    /// The entry of store `id`.
    async fn entry(&self, id: &str) -> Value {
        let body = self.ok(DESCRIBE, json!({ "CustomKeyStoreId": id })).await;
        body["CustomKeyStores"][0].clone()
    }

    /// A CloudHSM store whose connect FAILED (wrong kmsuser password).
    async fn failed_store(&self) -> String {
        let id = self.hsm_with("failing", 'a', "not-the-password").await;
        self.ok("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))
            .await;
        self.wait_for(&id, "FAILED").await;
        id
    }

    async fn connected_store(&self) -> String {
        let id = self.hsm("connected", 'a').await;
        self.ok("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))
            .await;
        self.wait_for(&id, "CONNECTED").await;
        id
    }

    /// Waits until store `id` is in `state` (in any letter case).
    async fn wait_for(&self, id: &str, state: &str) {
        for _ in 0..200 {
            let now = self.entry(id).await["ConnectionState"].clone();
            if now.as_str().is_some_and(|s| s.eq_ignore_ascii_case(state)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{id} never reached {state}");
    }

    /// Store names of every page of a listing with `limit`, following markers (at most 12
    /// pages), and the pages' (Truncated, has NextMarker) flags.
    async fn list(&self, limit: u64) -> (Vec<String>, Vec<(bool, bool)>) {
        let mut names = Vec::new();
        let mut flags = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..12 {
            let mut request = json!({ "Limit": limit });
            if let Some(m) = &marker {
                request["Marker"] = json!(m);
            }
            let page = self.ok(DESCRIBE, request).await;
            for e in page["CustomKeyStores"].as_array().expect("a list") {
                names.push(
                    e["CustomKeyStoreName"]
                        .as_str()
                        .expect("a name")
                        .to_string(),
                );
            }
            let truncated = page["Truncated"] == true;
            marker = page["NextMarker"].as_str().map(str::to_string);
            flags.push((truncated, marker.is_some()));
            if marker.is_none() {
                break;
            }
        }
        (names, flags)
    }

    async fn stop(self) {
        timeout(STEP, self.running.stop())
            .await
            .expect("stops in time");
    }
}

fn error_name(r: &Reply) -> String {
    r.error_name().unwrap_or_default()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn names_parse_and_serde_agree() {
    let mut seen = std::collections::HashSet::new();
    for f in Fault::ALL {
        assert!(seen.insert(f.name()), "{} twice", f.name());
        assert_eq!(Fault::parse(f.name()), Ok(f));
        assert_eq!(f.name().parse::<Fault>(), Ok(f));
        assert_eq!(f.to_string(), f.name());
        assert_eq!(serde_json::to_value(f).unwrap(), json!(f.name()));
        assert_eq!(serde_json::from_value::<Fault>(json!(f.name())).unwrap(), f);
        assert!(!f.describe().is_empty() && !f.describe().contains('\n'));
        assert_eq!(f.warning_only(), f == Fault::NamespacedErrorType);
    }
    assert!(Fault::ALL.len() >= 20);
    let e = Fault::parse("no-such-fault").unwrap_err();
    assert!(e.contains("no-such-fault"));
    for f in Fault::ALL {
        assert!(e.contains(f.name()), "{e} lacks {}", f.name());
    }
    assert_eq!(EmulatorConfig::default().faults, Vec::<Fault>::new());
}

#[tokio::test]
async fn overlapping_pages() {
    let (faulty, clean) = Emu::pair(Fault::OverlappingPages).await;
    for e in [&faulty, &clean] {
        e.five().await;
    }
    let (listed, _) = faulty.list(2).await;
    assert_eq!(
        listed,
        names(&["s1", "s2", "s2", "s3", "s3", "s4", "s4", "s5"])
    );
    // A page of one never advances: the same store comes back.
    let (listed, flags) = faulty.list(1).await;
    assert_eq!(listed.len(), 12);
    assert!(listed.iter().all(|n| n == "s1"), "{listed:?}");
    assert!(flags.iter().all(|f| *f == (true, true)));
    let (listed, _) = clean.list(2).await;
    assert_eq!(listed, names(&["s1", "s2", "s3", "s4", "s5"]));
    let (listed, _) = clean.list(1).await;
    assert_eq!(listed, names(&["s1", "s2", "s3", "s4", "s5"]));
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn skipped_items() {
    let (faulty, clean) = Emu::pair(Fault::SkippedItems).await;
    for e in [&faulty, &clean] {
        e.five().await;
    }
    assert_eq!(faulty.list(2).await.0, names(&["s1", "s2", "s4", "s5"]));
    // When the skipped store is the last one, the listing just ends without it.
    assert_eq!(faulty.list(4).await.0, names(&["s1", "s2", "s3", "s4"]));
    assert_eq!(faulty.list(4).await.1, vec![(false, false)]);
    assert_eq!(faulty.list(1).await.0, names(&["s1", "s3", "s5"]));
    for limit in [1, 2, 4] {
        assert_eq!(
            clean.list(limit).await.0,
            names(&["s1", "s2", "s3", "s4", "s5"])
        );
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn lying_truncated() {
    let (faulty, clean) = Emu::pair(Fault::LyingTruncated).await;
    for e in [&faulty, &clean] {
        e.five().await;
    }
    let (listed, flags) = faulty.list(2).await;
    assert_eq!(listed, names(&["s1", "s2", "s3", "s4", "s5"]));
    assert_eq!(flags, vec![(false, true), (false, true), (false, false)]);
    let (_, flags) = clean.list(2).await;
    assert_eq!(flags, vec![(true, true), (true, true), (false, false)]);
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn ignored_limit() {
    let (faulty, clean) = Emu::pair(Fault::IgnoredLimit).await;
    for e in [&faulty, &clean] {
        e.five().await;
    }
    let (listed, flags) = faulty.list(2).await;
    assert_eq!(listed, names(&["s1", "s2", "s3", "s4", "s5"]));
    assert_eq!(flags, vec![(false, false)]);
    let (_, flags) = clean.list(2).await;
    assert_eq!(flags.len(), 3);
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn name_and_id_accepted() {
    let (faulty, clean) = Emu::pair(Fault::NameAndIdAccepted).await;
    for (e, planted) in [(&faulty, true), (&clean, false)] {
        let ids = e.five().await;
        let r = e
            .call(
                DESCRIBE,
                json!({ "CustomKeyStoreId": ids[0], "CustomKeyStoreName": "s2" }),
            )
            .await;
        if planted {
            assert_eq!(r.status, 200, "{}", r.text);
            let list = r.body["CustomKeyStores"].as_array().unwrap();
            assert_eq!(list.len(), 1);
            assert_eq!(list[0]["CustomKeyStoreId"], json!(ids[0]));
            assert_eq!(list[0]["CustomKeyStoreName"], "s1");
        } else {
            assert_eq!(r.status, 400);
            assert_eq!(error_name(&r), "ValidationException");
        }
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn failed_without_error_code() {
    let (faulty, clean) = Emu::pair(Fault::FailedWithoutErrorCode).await;
    let id = faulty.failed_store().await;
    let entry = faulty.entry(&id).await;
    assert_eq!(entry["ConnectionState"], "FAILED");
    assert!(entry.get("ConnectionErrorCode").is_none(), "{entry}");
    let id = clean.failed_store().await;
    let entry = clean.entry(&id).await;
    assert_eq!(entry["ConnectionState"], "FAILED");
    assert_eq!(entry["ConnectionErrorCode"], "INVALID_CREDENTIALS");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn wrong_enum_case() {
    let (faulty, clean) = Emu::pair(Fault::WrongEnumCase).await;
    let id = faulty.connected_store().await;
    assert_eq!(faulty.entry(&id).await["ConnectionState"], "connected");
    let id = faulty.xks("fresh").await;
    assert_eq!(faulty.entry(&id).await["ConnectionState"], "disconnected");
    let id = clean.connected_store().await;
    assert_eq!(clean.entry(&id).await["ConnectionState"], "CONNECTED");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn wrong_error_type() {
    let (faulty, clean) = Emu::pair(Fault::WrongErrorType).await;
    let r = faulty
        .call(DESCRIBE, json!({ "CustomKeyStoreId": UNKNOWN_ID }))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["__type"], "ResourceNotFoundException");
    assert_eq!(r.error_type.as_deref(), Some("ResourceNotFoundException"));
    let r = faulty
        .call(
            "DeleteCustomKeyStore",
            json!({ "CustomKeyStoreId": UNKNOWN_ID }),
        )
        .await;
    assert_eq!(error_name(&r), "ResourceNotFoundException");
    // Other errors keep their names.
    let r = faulty.call(DESCRIBE, json!({ "Limit": 0 })).await;
    assert_eq!(error_name(&r), "ValidationException");
    let r = clean
        .call(DESCRIBE, json!({ "CustomKeyStoreId": UNKNOWN_ID }))
        .await;
    assert_eq!(r.body["__type"], "CustomKeyStoreNotFoundException");
    assert_eq!(error_name(&r), "CustomKeyStoreNotFoundException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn client_errors_as_500() {
    let (faulty, clean) = Emu::pair(Fault::ClientErrorsAs500).await;
    for (request, error) in [
        (
            json!({ "CustomKeyStoreId": UNKNOWN_ID }),
            "CustomKeyStoreNotFoundException",
        ),
        (json!({ "Limit": 0 }), "ValidationException"),
    ] {
        let r = faulty.call(DESCRIBE, request.clone()).await;
        assert_eq!(r.status, 500, "{}", r.text);
        assert_eq!(error_name(&r), error);
        let r = clean.call(DESCRIBE, request).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(error_name(&r), error);
    }
    // Framework errors outside the model too.
    let r = faulty.call("NoSuchOperation", json!({})).await;
    assert_eq!(
        (r.status, error_name(&r).as_str()),
        (500, "UnknownOperationException")
    );
    let r = clean.call("NoSuchOperation", json!({})).await;
    assert_eq!(
        (r.status, error_name(&r).as_str()),
        (400, "UnknownOperationException")
    );
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn leaked_password() {
    let (faulty, clean) = Emu::pair(Fault::LeakedPassword).await;
    let hsm = faulty.hsm("hsm", 'b').await;
    let xks = faulty.xks("xks").await;
    assert_eq!(
        faulty.entry(&hsm).await["KeyStorePassword"],
        "kmsuser-pass-b"
    );
    let listing = faulty.ok(DESCRIBE, json!({})).await;
    assert_eq!(
        listing["CustomKeyStores"][0]["KeyStorePassword"],
        "kmsuser-pass-b"
    );
    let entry = faulty.entry(&xks).await;
    assert!(entry.get("KeyStorePassword").is_none());
    assert!(!entry.to_string().contains("okProxySecret"));
    let hsm = clean.hsm("hsm", 'b').await;
    let entry = clean.entry(&hsm).await;
    assert!(entry.get("KeyStorePassword").is_none(), "{entry}");
    assert!(!entry.to_string().contains("kmsuser-pass"));
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn delete_while_connected() {
    let (faulty, clean) = Emu::pair(Fault::DeleteWhileConnected).await;
    let id = faulty.connected_store().await;
    faulty
        .ok("DeleteCustomKeyStore", json!({ "CustomKeyStoreId": id }))
        .await;
    let r = faulty
        .call(DESCRIBE, json!({ "CustomKeyStoreId": id }))
        .await;
    assert_eq!(error_name(&r), "CustomKeyStoreNotFoundException");
    // A store still holding keys is refused all the same, and stays connected.
    let id = faulty.connected_store().await;
    faulty
        .ok(
            "CreateKey",
            json!({ "CustomKeyStoreId": id, "Origin": "AWS_CLOUDHSM" }),
        )
        .await;
    let r = faulty
        .call("DeleteCustomKeyStore", json!({ "CustomKeyStoreId": id }))
        .await;
    assert_eq!(
        error_name(&r),
        "CustomKeyStoreHasCMKsException",
        "{}",
        r.text
    );
    assert_eq!(faulty.entry(&id).await["ConnectionState"], "CONNECTED");
    let id = clean.connected_store().await;
    let r = clean
        .call("DeleteCustomKeyStore", json!({ "CustomKeyStoreId": id }))
        .await;
    assert_eq!(error_name(&r), "CustomKeyStoreInvalidStateException");
    assert_eq!(clean.entry(&id).await["ConnectionState"], "CONNECTED");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn duplicate_names() {
    let (faulty, clean) = Emu::pair(Fault::DuplicateNames).await;
    let first = faulty.hsm("twin", 'a').await;
    let second = faulty.hsm("twin", 'b').await;
    assert_ne!(first, second);
    let twins = faulty
        .ok(DESCRIBE, json!({ "CustomKeyStoreName": "twin" }))
        .await;
    let twins = twins["CustomKeyStores"].as_array().unwrap();
    assert_eq!(twins.len(), 2);
    assert!(twins.iter().all(|e| e["CustomKeyStoreName"] == "twin"));
    assert_eq!(faulty.entry(&second).await["CustomKeyStoreName"], "twin");
    // Other checks still apply: the cluster is in use.
    let r = faulty
        .call(
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "twin",
                "CloudHsmClusterId": "cluster-healthyaaaaa",
                "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBhealthyA\n-----END CERTIFICATE-----",
                "KeyStorePassword": "kmsuser-pass-a",
            }),
        )
        .await;
    assert_eq!(error_name(&r), "CloudHsmClusterInUseException");
    clean.hsm("twin", 'a').await;
    let r = clean
        .call(
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "twin",
                "CloudHsmClusterId": "cluster-healthybbbbb",
                "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBhealthyB\n-----END CERTIFICATE-----",
                "KeyStorePassword": "kmsuser-pass-b",
            }),
        )
        .await;
    assert_eq!(error_name(&r), "CustomKeyStoreNameInUseException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn invalid_marker_restarts() {
    let (faulty, clean) = Emu::pair(Fault::InvalidMarkerRestarts).await;
    for e in [&faulty, &clean] {
        e.five().await;
    }
    let request = json!({ "Limit": 2, "Marker": "not-a-marker-we-issued" });
    let page = faulty.ok(DESCRIBE, request.clone()).await;
    let listed: Vec<&str> = page["CustomKeyStores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["CustomKeyStoreName"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["s1", "s2"]);
    assert_eq!(page["Truncated"], true);
    let r = clean.call(DESCRIBE, request).await;
    assert_eq!(error_name(&r), "InvalidMarkerException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn limit_out_of_range_accepted() {
    let (faulty, clean) = Emu::pair(Fault::LimitOutOfRangeAccepted).await;
    for e in [&faulty, &clean] {
        e.five().await;
    }
    let page = faulty.ok(DESCRIBE, json!({ "Limit": 0 })).await;
    assert_eq!(page["CustomKeyStores"].as_array().unwrap().len(), 1);
    assert_eq!(page["Truncated"], true);
    let page = faulty.ok(DESCRIBE, json!({ "Limit": -3 })).await;
    assert_eq!(page["CustomKeyStores"].as_array().unwrap().len(), 1);
    let page = faulty.ok(DESCRIBE, json!({ "Limit": 1001 })).await;
    assert_eq!(page["CustomKeyStores"].as_array().unwrap().len(), 5);
    // A Limit of the wrong type is still refused.
    let r = faulty.call(DESCRIBE, json!({ "Limit": "many" })).await;
    assert_eq!(r.status, 400);
    for limit in [0, -3, 1001] {
        let r = clean.call(DESCRIBE, json!({ "Limit": limit })).await;
        assert_eq!(error_name(&r), "ValidationException", "Limit {limit}");
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn dates_as_strings() {
    let (faulty, clean) = Emu::pair(Fault::DatesAsStrings).await;
    let id = faulty.hsm("dated", 'a').await;
    let date = faulty.entry(&id).await["CreationDate"].clone();
    let text = date.as_str().expect("a string");
    let pattern = regex::Regex::new(r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    assert!(pattern.is_match(text), "{text}");
    let id = clean.hsm("dated", 'a').await;
    let date = clean.entry(&id).await["CreationDate"].clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((date.as_f64().expect("a number") - now).abs() < 60.0);
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn xks_config_on_cloudhsm() {
    let (faulty, clean) = Emu::pair(Fault::XksConfigOnCloudhsm).await;
    let hsm = faulty.hsm("hsm", 'a').await;
    let xks = faulty.xks("xks").await;
    assert_eq!(faulty.entry(&hsm).await["XksProxyConfiguration"], json!({}));
    assert_eq!(
        faulty.entry(&xks).await["XksProxyConfiguration"]["UriPath"],
        "/ok/kms/xks/v1"
    );
    let hsm = clean.hsm("hsm", 'a').await;
    assert!(
        clean
            .entry(&hsm)
            .await
            .get("XksProxyConfiguration")
            .is_none()
    );
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn unknown_id_empty_list() {
    let (faulty, clean) = Emu::pair(Fault::UnknownIdEmptyList).await;
    for request in [
        json!({ "CustomKeyStoreId": UNKNOWN_ID }),
        json!({ "CustomKeyStoreName": "nobody" }),
    ] {
        let r = faulty.call(DESCRIBE, request.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({ "CustomKeyStores": [], "Truncated": false }));
        let r = clean.call(DESCRIBE, request).await;
        assert_eq!(error_name(&r), "CustomKeyStoreNotFoundException");
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn connect_from_failed() {
    // A connect delay, so the second connect is seen CONNECTING.
    let slow = ModelConfig {
        connect_delay_ms: 150,
        ..ModelConfig::default()
    };
    let faulty = Emu::with(&[Fault::ConnectFromFailed], slow.clone()).await;
    let clean = Emu::with(&[], slow).await;
    let id = faulty.failed_store().await;
    faulty
        .ok("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))
        .await;
    let entry = faulty.entry(&id).await;
    assert_eq!(entry["ConnectionState"], "CONNECTING");
    assert!(entry.get("ConnectionErrorCode").is_none());
    faulty.wait_for(&id, "FAILED").await;
    let id = clean.failed_store().await;
    let r = clean
        .call("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))
        .await;
    assert_eq!(error_name(&r), "CustomKeyStoreInvalidStateException");
    assert_eq!(clean.entry(&id).await["ConnectionState"], "FAILED");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn html_errors() {
    let (faulty, clean) = Emu::pair(Fault::HtmlErrors).await;
    let request = json!({ "CustomKeyStoreId": UNKNOWN_ID, "NewCustomKeyStoreName": "x" });
    let r = faulty.call("UpdateCustomKeyStore", request.clone()).await;
    assert_eq!(r.status, 500);
    assert!(
        r.content_type
            .as_deref()
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        r.content_type
    );
    assert!(r.body.is_null());
    assert!(r.text.contains("<html>"));
    assert_eq!(r.error_name(), None);
    // Successful updates and other operations' errors are untouched.
    let id = faulty.hsm("hsm", 'a').await;
    faulty
        .ok(
            "UpdateCustomKeyStore",
            json!({ "CustomKeyStoreId": id, "NewCustomKeyStoreName": "renamed" }),
        )
        .await;
    let r = faulty
        .call(DESCRIBE, json!({ "CustomKeyStoreId": UNKNOWN_ID }))
        .await;
    assert_eq!(
        (r.status, error_name(&r).as_str()),
        (400, "CustomKeyStoreNotFoundException")
    );
    let r = clean.call("UpdateCustomKeyStore", request).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(error_name(&r), "CustomKeyStoreNotFoundException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn namespaced_error_type() {
    assert!(Fault::NamespacedErrorType.warning_only());
    let (faulty, clean) = Emu::pair(Fault::NamespacedErrorType).await;
    let request = json!({ "CustomKeyStoreId": UNKNOWN_ID });
    let r = faulty.call(DESCRIBE, request.clone()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["__type"],
        "com.amazonaws.kms#CustomKeyStoreNotFoundException"
    );
    assert_eq!(
        r.error_type.as_deref(),
        Some("CustomKeyStoreNotFoundException")
    );
    // The name a client parses is still right: a style deviation only.
    assert_eq!(error_name(&r), "CustomKeyStoreNotFoundException");
    let r = clean.call(DESCRIBE, request).await;
    assert_eq!(r.body["__type"], "CustomKeyStoreNotFoundException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn secret_in_error_message() {
    let (faulty, clean) = Emu::pair(Fault::SecretInErrorMessage).await;
    let wrong_anchor = json!({
        "CustomKeyStoreName": "hsm",
        "CloudHsmClusterId": "cluster-healthyaaaaa",
        "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBwrong\n-----END CERTIFICATE-----",
        "KeyStorePassword": "kmsuser-pass-a",
    });
    let dead_proxy = json!({
        "CustomKeyStoreName": "xks",
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyUriEndpoint": "https://xks-dead.example.test",
        "XksProxyUriPath": "/dead/kms/xks/v1",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        "XksProxyAuthenticationCredential": {
            "AccessKeyId": "DEADPROXYACCESSKEYAA",
            "RawSecretAccessKey": "deadProxySecretAccessKeyAAAAAAAAAAAAAAAAAAD",
        },
    });
    for (request, error, secret) in [
        (
            wrong_anchor,
            "IncorrectTrustAnchorException",
            "kmsuser-pass-a",
        ),
        (
            dead_proxy,
            "XksProxyUriUnreachableException",
            "deadProxySecretAccessKeyAAAAAAAAAAAAAAAAAAD",
        ),
    ] {
        let r = faulty.call("CreateCustomKeyStore", request.clone()).await;
        assert_eq!(error_name(&r), error);
        assert!(
            r.body["message"].as_str().unwrap().contains(secret),
            "{}",
            r.text
        );
        let r = clean.call("CreateCustomKeyStore", request).await;
        assert_eq!(error_name(&r), error);
        assert!(!r.text.contains(secret), "{}", r.text);
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn missing_request_id() {
    let (faulty, clean) = Emu::pair(Fault::MissingRequestId).await;
    for (op, body) in [
        (DESCRIBE, json!({})),
        (DESCRIBE, json!({ "CustomKeyStoreId": UNKNOWN_ID })),
    ] {
        let r = faulty.call(op, body.clone()).await;
        assert_eq!(r.request_id, None);
        let r = clean.call(op, body).await;
        assert!(r.request_id.is_some_and(|id| !id.is_empty()));
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn wrong_content_type() {
    let (faulty, clean) = Emu::pair(Fault::WrongContentType).await;
    for body in [json!({}), json!({ "CustomKeyStoreId": UNKNOWN_ID })] {
        let r = faulty.call(DESCRIBE, body.clone()).await;
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let r = clean.call(DESCRIBE, body).await;
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/x-amz-json-1.1")
        );
    }
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn quota_off_by_one() {
    let quota = ModelConfig {
        quota: 2,
        connect_delay_ms: 0,
        ..ModelConfig::default()
    };
    let faulty = Emu::with(&[Fault::QuotaOffByOne], quota.clone()).await;
    let clean = Emu::with(&[], quota).await;
    faulty.hsm("one", 'a').await;
    faulty.hsm("two", 'b').await;
    faulty.hsm("three", 'c').await;
    let r = faulty
        .call(
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "four",
                "CloudHsmClusterId": "cluster-healthyddddd",
                "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBhealthyD\n-----END CERTIFICATE-----",
                "KeyStorePassword": "kmsuser-pass-d",
            }),
        )
        .await;
    assert_eq!(error_name(&r), "LimitExceededException");
    let listing = faulty.ok(DESCRIBE, json!({})).await;
    assert_eq!(listing["CustomKeyStores"].as_array().unwrap().len(), 3);
    clean.hsm("one", 'a').await;
    clean.hsm("two", 'b').await;
    let r = clean
        .call(
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "three",
                "CloudHsmClusterId": "cluster-healthyccccc",
                "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBhealthyC\n-----END CERTIFICATE-----",
                "KeyStorePassword": "kmsuser-pass-c",
            }),
        )
        .await;
    assert_eq!(error_name(&r), "LimitExceededException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn idempotent_disconnect() {
    let (faulty, clean) = Emu::pair(Fault::IdempotentDisconnect).await;
    let id = faulty.hsm("hsm", 'a').await;
    faulty
        .ok(
            "DisconnectCustomKeyStore",
            json!({ "CustomKeyStoreId": id }),
        )
        .await;
    assert_eq!(faulty.entry(&id).await["ConnectionState"], "DISCONNECTED");
    let r = faulty
        .call(
            "DisconnectCustomKeyStore",
            json!({ "CustomKeyStoreId": UNKNOWN_ID }),
        )
        .await;
    assert_eq!(error_name(&r), "CustomKeyStoreNotFoundException");
    let id = clean.hsm("hsm", 'a').await;
    let r = clean
        .call(
            "DisconnectCustomKeyStore",
            json!({ "CustomKeyStoreId": id }),
        )
        .await;
    assert_eq!(error_name(&r), "CustomKeyStoreInvalidStateException");
    faulty.stop().await;
    clean.stop().await;
}

#[tokio::test]
async fn length_in_bytes() {
    let (faulty, clean) = Emu::pair(Fault::LengthInBytes).await;
    // 1024 characters, 1576 UTF-8 bytes: within the Marker's limit of 1024 characters.
    let latin = "é".repeat(552) + &"a".repeat(472);
    let r = faulty.call(DESCRIBE, json!({ "Marker": latin })).await;
    assert_eq!(error_name(&r), "ValidationException");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Marker"),
        "{:?}",
        r.body
    );
    let r = clean.call(DESCRIBE, json!({ "Marker": latin })).await;
    assert_eq!(error_name(&r), "InvalidMarkerException");
    // The same length in ASCII is judged as the clean emulator judges it.
    let ascii = "a".repeat(1024);
    for e in [&faulty, &clean] {
        let r = e.call(DESCRIBE, json!({ "Marker": ascii })).await;
        assert_eq!(error_name(&r), "InvalidMarkerException");
    }
    faulty.stop().await;
    clean.stop().await;
}

/// Faults combine: the FAILED check sees the state before it is lower-cased, and header faults
/// apply to errors and successes alike.
#[tokio::test]
async fn faults_combine() {
    let faulty = Emu::start(&[
        Fault::WrongEnumCase,
        Fault::FailedWithoutErrorCode,
        Fault::ClientErrorsAs500,
        Fault::NamespacedErrorType,
        Fault::WrongErrorType,
        Fault::MissingRequestId,
    ])
    .await;
    let id = faulty.failed_store().await;
    let entry = faulty.entry(&id).await;
    assert_eq!(entry["ConnectionState"], "failed");
    assert!(entry.get("ConnectionErrorCode").is_none());
    let r = faulty
        .call(DESCRIBE, json!({ "CustomKeyStoreId": UNKNOWN_ID }))
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body["__type"],
        "com.amazonaws.kms#ResourceNotFoundException"
    );
    assert_eq!(r.request_id, None);
    faulty.stop().await;
}
