//! Low-level hooks for the emulator's planted faults (`crate::emulator::faults`).
//!
//! Each hook breaks an invariant the model otherwise keeps (unique names, the quota, the
//! connection state machine). Nothing in the model calls them; a clean emulator never does.

use serde_json::{Value, json};

use super::conditions::{When, condition, first_present};
use super::create::{conditions_hold, xks_settings};
use super::store::{CloudHsmSettings, ConnectionState, Secret, StoreType};
use super::{Millis, Model, Outcome, err, validate};

const CREATE: &str = "CreateCustomKeyStore";

impl Model {
    /// Renames store `id` to `name` without the uniqueness check; false if there is no such store.
    pub(crate) fn hook_rename(&mut self, id: &str, name: &str) -> bool {
        match self.stores.values_mut().find(|s| s.id == id) {
            Some(store) => {
                store.name = name.to_string();
                true
            }
            None => false,
        }
    }

    /// Puts store `id` in `state` with `error_code` at once, dropping any transition under way;
    /// false if there is no such store.
    pub(crate) fn hook_set_state(
        &mut self,
        id: &str,
        state: ConnectionState,
        error_code: Option<String>,
    ) -> bool {
        match self.stores.values_mut().find(|s| s.id == id) {
            Some(store) => {
                store.state = state;
                store.error_code = error_code;
                store.pending = None;
                true
            }
            None => false,
        }
    }

    /// Replaces the store quota and returns the old one.
    pub(crate) fn hook_set_quota(&mut self, quota: usize) -> usize {
        std::mem::replace(&mut self.config.quota, quota)
    }

    /// UpdateCustomKeyStore without the member constraint checks (length, pattern, enum,
    /// range, required, JSON types): the rest of the update as usual.
    pub(crate) fn hook_update_unvalidated(&mut self, now: Millis, input: &Value) -> Outcome {
        self.settle(now);
        let outcome = self.update(input);
        self.settle(now);
        outcome
    }

    /// CreateCustomKeyStore that lets the members its type requires be absent: the members
    /// are validated and forbidden ones refused as usual, the name and the quota checked, and
    /// the store is created with whatever the request holds (no backend is checked).
    pub(crate) fn hook_create_without_required(&mut self, now: Millis, input: &Value) -> Outcome {
        self.settle(now);
        validate::check_input(self.spec, CREATE, input)?;
        let store_type = match input.get("CustomKeyStoreType").and_then(Value::as_str) {
            Some("EXTERNAL_KEY_STORE") => StoreType::ExternalKeyStore,
            _ => StoreType::AwsCloudhsm,
        };
        let when = When::RequestType(store_type);
        if condition(CREATE, when).is_some_and(|c| first_present(input, c.forbids).is_some()) {
            return conditions_hold(input, CREATE, when).map(|()| json!({}));
        }
        let text = |m: &str| input.get(m).and_then(Value::as_str).unwrap_or_default();
        let name = text("CustomKeyStoreName").to_string();
        self.name_is_free(&name, None)?;
        if self.stores.len() >= self.config.quota {
            return Err(err(
                "LimitExceededException",
                "The number of custom key stores would exceed the quota.",
            ));
        }
        let (cloudhsm, xks) = match store_type {
            StoreType::AwsCloudhsm => (
                Some(CloudHsmSettings {
                    cluster_id: text("CloudHsmClusterId").to_string(),
                    trust_anchor_certificate: text("TrustAnchorCertificate").to_string(),
                    password: Secret(text("KeyStorePassword").to_string()),
                }),
                None,
            ),
            StoreType::ExternalKeyStore => (None, Some(xks_settings(input, None, CREATE)?)),
        };
        Ok(self.insert_new(now, name, store_type, (cloudhsm, xks)))
    }
}
