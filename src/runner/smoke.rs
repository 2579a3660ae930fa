//! The emulator self-check run by `ckscheck run` until the property-based harness lands:
//! one lifecycle of each store type and a few error cases, over real signed HTTP.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::KmsClient;

/// One step of the self-check and whether it passed.
pub struct StepResult {
    /// What the step checks.
    pub name: String,
    /// None on success, else what went wrong.
    pub failure: Option<String>,
}

struct Steps<'a> {
    client: &'a KmsClient,
    results: Vec<StepResult>,
}

impl Steps<'_> {
    async fn expect_ok(&mut self, name: &str, op: &str, body: Value) -> Value {
        let failure = match self.client.call(op, &body).await {
            Ok(r) if r.status == 200 => {
                self.results.push(StepResult {
                    name: name.into(),
                    failure: None,
                });
                return r.body;
            }
            Ok(r) => format!("{op}: HTTP {} {}", r.status, r.text),
            Err(e) => format!("{op}: {e}"),
        };
        self.results.push(StepResult {
            name: name.into(),
            failure: Some(failure),
        });
        Value::Null
    }

    async fn expect_error(&mut self, name: &str, op: &str, body: Value, error: &str) {
        let failure = match self.client.call(op, &body).await {
            Ok(r) if r.error_name().as_deref() == Some(error) && r.status == 400 => None,
            Ok(r) => Some(format!(
                "{op}: wanted 400 {error}, got HTTP {} {}",
                r.status, r.text
            )),
            Err(e) => Some(format!("{op}: {e}")),
        };
        self.results.push(StepResult {
            name: name.into(),
            failure,
        });
    }

    async fn wait_for(&mut self, id: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .call("DescribeCustomKeyStores", &json!({"CustomKeyStoreId": id}))
                .await
            {
                last = r.body["CustomKeyStores"][0]["ConnectionState"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if last == state {
                    self.results.push(StepResult {
                        name: format!("{id} reaches {state}"),
                        failure: None,
                    });
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let failure = Some(format!("still {last:?} after 10 s"));
        self.results.push(StepResult {
            name: format!("{id} reaches {state}"),
            failure,
        });
    }
}

/// Runs the self-check lifecycle against `client` (an endpoint with the default fixtures).
pub async fn run(client: &KmsClient) -> Vec<StepResult> {
    let mut s = Steps {
        client,
        results: Vec::new(),
    };
    let hsm = s
        .expect_ok(
            "create an AWS_CLOUDHSM store",
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "ckscheck-smoke-hsm",
                "CloudHsmClusterId": "cluster-healthyaaaaa",
                "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBhealthyA\n-----END CERTIFICATE-----",
                "KeyStorePassword": "kmsuser-pass-a",
            }),
        )
        .await["CustomKeyStoreId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let xks = s
        .expect_ok(
            "create an EXTERNAL_KEY_STORE store",
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "ckscheck-smoke-xks",
                "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
                "XksProxyUriEndpoint": "https://xks-ok.example.test",
                "XksProxyUriPath": "/ok/kms/xks/v1",
                "XksProxyConnectivity": "PUBLIC_ENDPOINT",
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": "OKPROXYACCESSKEYAAAA",
                    "RawSecretAccessKey": "okProxySecretAccessKeyAAAAAAAAAAAAAAAAAAAA1",
                },
            }),
        )
        .await["CustomKeyStoreId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.expect_ok("describe all stores", "DescribeCustomKeyStores", json!({}))
        .await;
    s.expect_ok(
        "describe by name",
        "DescribeCustomKeyStores",
        json!({"CustomKeyStoreName": "ckscheck-smoke-xks"}),
    )
    .await;
    s.expect_ok(
        "describe a page of one",
        "DescribeCustomKeyStores",
        json!({"Limit": 1}),
    )
    .await;
    s.expect_error(
        "name and ID together are rejected",
        "DescribeCustomKeyStores",
        json!({"CustomKeyStoreId": hsm, "CustomKeyStoreName": "ckscheck-smoke-hsm"}),
        "ValidationException",
    )
    .await;
    s.expect_error(
        "an unknown ID is not found",
        "DescribeCustomKeyStores",
        json!({"CustomKeyStoreId": "cks-00000000000000000"}),
        "CustomKeyStoreNotFoundException",
    )
    .await;
    for id in [&hsm, &xks] {
        s.expect_ok(
            "connect",
            "ConnectCustomKeyStore",
            json!({"CustomKeyStoreId": id}),
        )
        .await;
        s.wait_for(id, "CONNECTED").await;
        s.expect_error(
            "delete while connected is refused",
            "DeleteCustomKeyStore",
            json!({"CustomKeyStoreId": id}),
            "CustomKeyStoreInvalidStateException",
        )
        .await;
        s.expect_ok(
            "disconnect",
            "DisconnectCustomKeyStore",
            json!({"CustomKeyStoreId": id}),
        )
        .await;
        s.wait_for(id, "DISCONNECTED").await;
        s.expect_ok(
            "rename",
            "UpdateCustomKeyStore",
            json!({"CustomKeyStoreId": id, "NewCustomKeyStoreName": format!("{id}-renamed")}),
        )
        .await;
        s.expect_ok(
            "delete",
            "DeleteCustomKeyStore",
            json!({"CustomKeyStoreId": id}),
        )
        .await;
    }
    s.results
}
