//! CreateKey: KMS keys in custom key stores (the part of CreateKey that touches them).

use serde_json::{Map, Value, json};

use super::store::{ConnectionState, StoreType, epoch_seconds};
use super::{Key, KmsError, Millis, Model, err, invalid, invalid_state};

impl Model {
    pub(super) fn create_key(&mut self, now: Millis, input: &Value) -> Result<Value, KmsError> {
        let text = |m: &str| input.get(m).and_then(Value::as_str);
        let origin = text("Origin").unwrap_or("AWS_KMS");
        let store_origin = matches!(origin, "AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE");
        let Some(store_id) = text("CustomKeyStoreId") else {
            if store_origin {
                return Err(invalid(format!(
                    "Origin {origin} requires a CustomKeyStoreId."
                )));
            }
            if text("XksKeyId").is_some() {
                return Err(invalid(
                    "XksKeyId is valid only with Origin EXTERNAL_KEY_STORE.",
                ));
            }
            return Ok(self.new_key(now, input, None, None, None));
        };
        let seq = self
            .find(store_id)
            .ok_or_else(|| super::not_found(store_id))?;
        let store = &self.stores[&seq];
        let wanted_origin = match store.store_type {
            StoreType::AwsCloudhsm => "AWS_CLOUDHSM",
            StoreType::ExternalKeyStore => "EXTERNAL_KEY_STORE",
        };
        if origin != wanted_origin {
            return Err(invalid(format!(
                "A key in custom key store {store_id} needs Origin {wanted_origin}."
            )));
        }
        let xks_key = text("XksKeyId");
        match (store.store_type, xks_key) {
            (StoreType::ExternalKeyStore, None) => {
                return Err(invalid(
                    "XksKeyId is required with Origin EXTERNAL_KEY_STORE.",
                ));
            }
            (StoreType::AwsCloudhsm, Some(_)) => {
                return Err(invalid(
                    "XksKeyId is valid only with Origin EXTERNAL_KEY_STORE.",
                ));
            }
            _ => {}
        }
        let symmetric = text("KeySpec").is_none_or(|s| s == "SYMMETRIC_DEFAULT")
            && text("KeyUsage").is_none_or(|u| u == "ENCRYPT_DECRYPT");
        if !symmetric {
            return Err(err(
                "UnsupportedOperationException",
                "Custom key stores hold only symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT).",
            ));
        }
        if store.state != ConnectionState::Connected {
            return Err(invalid_state(store, "CreateKey"));
        }
        if let (Some(x), Some(key)) = (&store.xks, xks_key) {
            let proxy = self.fixtures.proxy(&x.uri_endpoint);
            if proxy.is_some_and(|p| p.unusable_keys.iter().any(|k| k == key)) {
                return Err(err(
                    "XksKeyInvalidConfigurationException",
                    format!("External key {key} is disabled or cannot encrypt and decrypt."),
                ));
            }
            if !proxy.is_some_and(|p| p.keys.iter().any(|k| k == key)) {
                return Err(err(
                    "XksKeyNotFoundException",
                    format!("The external key store proxy has no key {key}."),
                ));
            }
            let in_use = self.keys.iter().any(|k| {
                k.custom_key_store_id.as_deref() == Some(store_id)
                    && k.xks_key_id.as_deref() == Some(key)
            });
            if in_use {
                return Err(err(
                    "XksKeyAlreadyInUseException",
                    format!("External key {key} already backs a KMS key in this store."),
                ));
            }
        }
        let cluster = store.cloudhsm.as_ref().map(|h| h.cluster_id.clone());
        let (store_id, xks_key) = (store_id.to_string(), xks_key.map(str::to_string));
        Ok(self.new_key(now, input, Some(store_id), cluster, xks_key))
    }

    fn new_key(
        &mut self,
        now: Millis,
        input: &Value,
        store_id: Option<String>,
        cluster: Option<String>,
        xks_key: Option<String>,
    ) -> Value {
        let bits = self.ids.next_bits();
        let h = format!("{bits:032x}");
        let key_id = format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        );
        let text = |m: &str, default: &str| {
            input
                .get(m)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()
        };
        let mut meta = Map::new();
        meta.insert("AWSAccountId".into(), json!(self.config.account_id));
        meta.insert("KeyId".into(), json!(key_id));
        meta.insert(
            "Arn".into(),
            json!(format!(
                "arn:aws:kms:{}:{}:key/{key_id}",
                self.config.region, self.config.account_id
            )),
        );
        meta.insert("CreationDate".into(), epoch_seconds(now));
        meta.insert("Enabled".into(), json!(true));
        meta.insert("Description".into(), json!(text("Description", "")));
        meta.insert(
            "KeyUsage".into(),
            json!(text("KeyUsage", "ENCRYPT_DECRYPT")),
        );
        meta.insert("KeyState".into(), json!("Enabled"));
        meta.insert("Origin".into(), json!(text("Origin", "AWS_KMS")));
        meta.insert("KeyManager".into(), json!("CUSTOMER"));
        let spec = text("KeySpec", "SYMMETRIC_DEFAULT");
        meta.insert("CustomerMasterKeySpec".into(), json!(spec));
        meta.insert("KeySpec".into(), json!(spec));
        meta.insert("EncryptionAlgorithms".into(), json!(["SYMMETRIC_DEFAULT"]));
        meta.insert("MultiRegion".into(), json!(false));
        if let Some(id) = &store_id {
            meta.insert("CustomKeyStoreId".into(), json!(id));
        }
        if let Some(c) = cluster {
            meta.insert("CloudHsmClusterId".into(), json!(c));
        }
        if let Some(k) = &xks_key {
            meta.insert("XksKeyConfiguration".into(), json!({ "Id": k }));
        }
        self.keys.push(Key {
            key_id,
            custom_key_store_id: store_id,
            xks_key_id: xks_key,
        });
        json!({ "KeyMetadata": meta })
    }
}
