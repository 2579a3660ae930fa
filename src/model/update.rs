//! UpdateCustomKeyStore: renames, new passwords and clusters, new proxy settings.

use serde_json::{Value, json};

use super::conditions::When;
use super::create::{conditions_hold, xks_settings};
use super::store::{ConnectionState, Secret, StoreType};
use super::{KmsError, Model, UpdateWhileConnected, err, invalid_state};

const UPDATE: &str = "UpdateCustomKeyStore";

/// Members an external store may change while CONNECTED, per the UpdateCustomKeyStore page.
const XKS_WHILE_CONNECTED: [&str; 2] = ["XksProxyAuthenticationCredential", "XksProxyUriPath"];

impl Model {
    pub(super) fn update(&mut self, input: &Value) -> Result<Value, KmsError> {
        let seq = self.existing(input)?;
        let store = &self.stores[&seq];
        conditions_hold(input, UPDATE, When::StoreType(store.store_type))?;
        // Members the request shape does not have are ignored, as everywhere else.
        let request = self
            .spec
            .shape(&self.spec.operations["UpdateCustomKeyStore"].input);
        let changes: Vec<&str> = input
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
            .filter(|m| *m != "CustomKeyStoreId" && request.members.contains_key(*m))
            .collect();
        let allowed_while_connected = |m: &str| match self.config.switches.update_while_connected {
            UpdateWhileConnected::OperationPage => {
                m == "NewCustomKeyStoreName"
                    || (store.store_type == StoreType::ExternalKeyStore
                        && XKS_WHILE_CONNECTED.contains(&m))
            }
            UpdateWhileConnected::NameOnly => m == "NewCustomKeyStoreName",
            UpdateWhileConnected::DisconnectedOnly => false,
        };
        let state_ok = match store.state {
            ConnectionState::Disconnected => true,
            ConnectionState::Connected => changes.iter().all(|m| allowed_while_connected(m)),
            _ => false,
        };
        if !state_ok {
            return Err(invalid_state(store, "UpdateCustomKeyStore"));
        }
        let new_name = input.get("NewCustomKeyStoreName").and_then(Value::as_str);
        if let Some(name) = new_name {
            self.name_is_free(name, Some(seq))?;
        }
        let mut updated = store.clone();
        if let Some(h) = updated.cloudhsm.as_mut() {
            if let Some(new_cluster) = input.get("CloudHsmClusterId").and_then(Value::as_str) {
                let cluster = self.cluster_for_store(new_cluster)?;
                let old_lineage = self
                    .fixtures
                    .cluster(&h.cluster_id)
                    .map(|c| c.lineage.as_str());
                if old_lineage != Some(cluster.lineage.as_str()) {
                    return Err(err(
                        "CloudHsmClusterNotRelatedException",
                        format!(
                            "Cluster {new_cluster} does not share a backup lineage with {}.",
                            h.cluster_id
                        ),
                    ));
                }
                h.trust_anchor_certificate = cluster.trust_anchor_certificate.clone();
                h.cluster_id = new_cluster.to_string();
            }
            if let Some(p) = input.get("KeyStorePassword").and_then(Value::as_str) {
                h.password = Secret(p.to_string());
            }
        }
        if let Some(old) = updated.xks.as_ref() {
            let touches_proxy = changes.iter().any(|m| m.starts_with("XksProxy"));
            let new = xks_settings(input, Some(old), UPDATE)?;
            if touches_proxy {
                self.check_proxy(&new, Some(seq))?;
            }
            updated.xks = Some(new);
        }
        if let Some(name) = new_name {
            updated.name = name.to_string();
        }
        self.stores.insert(seq, updated);
        Ok(json!({}))
    }
}
