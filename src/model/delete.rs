//! DeleteCustomKeyStore.

use serde_json::{Value, json};

use super::store::ConnectionState;
use super::{DeletePrecedence, KmsError, Model, err, invalid_state};

impl Model {
    pub(super) fn delete(&mut self, input: &Value) -> Result<Value, KmsError> {
        let seq = self.existing(input)?;
        let store = &self.stores[&seq];
        let state_error = (store.state != ConnectionState::Disconnected)
            .then(|| invalid_state(store, "DeleteCustomKeyStore"));
        let keys_error = self
            .keys
            .iter()
            .any(|k| k.custom_key_store_id.as_deref() == Some(&store.id))
            .then(|| {
                err(
                    "CustomKeyStoreHasCMKsException",
                    format!("Custom key store {} still holds KMS keys.", store.id),
                )
            });
        let first = match self.config.switches.delete_precedence {
            DeletePrecedence::StateFirst => state_error.or(keys_error),
            DeletePrecedence::KeysFirst => keys_error.or(state_error),
        };
        if let Some(e) = first {
            return Err(e);
        }
        self.stores.remove(&seq);
        Ok(json!({}))
    }
}
