//! The reference semantics of the KMS custom key store API as a pure state machine.
//!
//! `Model::apply(now, operation, body)` is the whole public face: no I/O, no clock, no
//! randomness of its own (the time is an argument, IDs come from an injected [`IdSource`]).
//! Real XKS proxies are the one seam: `probe_target_of` names the proxy a request would have
//! KMS check, and `with_observation` applies it with what the caller saw when it called that
//! proxy (`probe.rs`).

pub mod conditions;
mod connection;
mod create;
mod delete;
mod describe;
pub mod fixtures;
mod hooks;
mod keys;
mod probe;
mod store;
mod update;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{RngExt, SeedableRng, rngs::SmallRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::Spec;
pub use fixtures::{Fixtures, XksBehaviour};
pub use probe::{ProbeTarget, XksObservation};
pub use store::{ConnectionState, Secret, Store, StoreType};

/// Milliseconds since the Unix epoch, as the injected clock reports them.
pub type Millis = u64;

/// An error answer: the bare error name and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsError {
    /// Bare error name, e.g. `CustomKeyStoreNotFoundException`.
    pub name: String,
    /// Message text.
    pub message: String,
}

/// The result of one request: the response body, or an error.
pub type Outcome = Result<Value, KmsError>;

/// Where the model gets fresh random bits for IDs.
pub trait IdSource: Send {
    /// 128 fresh random bits.
    fn next_bits(&mut self) -> u128;

    /// A copy that yields the same bits from here on.
    fn box_clone(&self) -> Box<dyn IdSource>;
}

/// A deterministic [`IdSource`] from a seed.
#[derive(Clone)]
pub struct SeededIds(SmallRng);

impl SeededIds {
    /// An ID source that yields the same IDs for the same seed.
    pub fn new(seed: u64) -> SeededIds {
        SeededIds(SmallRng::seed_from_u64(seed))
    }
}

impl IdSource for SeededIds {
    fn next_bits(&mut self) -> u128 {
        self.0.random()
    }

    fn box_clone(&self) -> Box<dyn IdSource> {
        Box::new(self.clone())
    }
}

/// What ConnectCustomKeyStore does on a CONNECTED store (the documentation disagrees).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectWhenConnected {
    /// Succeeds and changes nothing (the ConnectCustomKeyStore page).
    #[default]
    Succeed,
    /// CustomKeyStoreInvalidStateException (an older external key store page).
    InvalidState,
}

/// What UpdateCustomKeyStore may change while the store is CONNECTED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateWhileConnected {
    /// The name; for external stores also the credential and the URI path (the Update page).
    #[default]
    OperationPage,
    /// Only the name (the CustomKeyStoreInvalidStateException page).
    NameOnly,
    /// Nothing: every update needs a DISCONNECTED store.
    DisconnectedOnly,
}

/// Which error Delete reports for a store that is not disconnected and still has keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletePrecedence {
    /// CustomKeyStoreInvalidStateException first (state checks before content checks).
    #[default]
    StateFirst,
    /// CustomKeyStoreHasCMKsException first.
    KeysFirst,
}

/// Whether constraint validation or the existence check of the store ID comes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckOrder {
    /// ValidationException before CustomKeyStoreNotFoundException (KMS's general order).
    #[default]
    ValidationFirst,
    /// CustomKeyStoreNotFoundException for an unknown ID even when other members are invalid.
    NotFoundFirst,
}

/// The documented-but-unsettled points, each a named switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Switches {
    /// Connect on a CONNECTED store.
    #[serde(default)]
    pub connect_when_connected: ConnectWhenConnected,
    /// Update while CONNECTED.
    #[serde(default)]
    pub update_while_connected: UpdateWhileConnected,
    /// HasCMKs vs InvalidState on Delete.
    #[serde(default)]
    pub delete_precedence: DeletePrecedence,
    /// Validation vs not-found.
    #[serde(default)]
    pub check_order: CheckOrder,
}

/// Tunables of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Maximum number of custom key stores (KMS default 10).
    pub quota: usize,
    /// How long CONNECTING and DISCONNECTING last, in milliseconds (0: settle at once).
    pub connect_delay_ms: u64,
    /// Page size of DescribeCustomKeyStores when no Limit is given (KMS documents none).
    pub default_page_size: usize,
    /// Region used in key ARNs.
    pub region: String,
    /// Account ID used in key ARNs.
    pub account_id: String,
    /// The unsettled points.
    pub switches: Switches,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            quota: 10,
            connect_delay_ms: 300,
            default_page_size: 100,
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            switches: Switches::default(),
        }
    }
}

/// A KMS key created in (or outside) a custom key store.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Key ID (a UUID).
    pub key_id: String,
    /// The store holding it, if any.
    pub custom_key_store_id: Option<String>,
    /// The external key it is backed by, for external key stores.
    pub xks_key_id: Option<String>,
}

/// The reference model: custom key stores, keys, backends and the rules between them.
#[derive(Clone)]
pub struct Model {
    spec: &'static Spec,
    config: ModelConfig,
    fixtures: Arc<Fixtures>,
    ids: Box<dyn IdSource>,
    /// Stores by creation sequence number (the listing order).
    stores: BTreeMap<u64, Store>,
    next_seq: u64,
    keys: Vec<Key>,
    /// Where real proxies' behaviour comes from for the request being applied.
    seam: probe::Seam,
}

impl Model {
    /// A model with no stores, the given tunables, backends and ID source.
    pub fn new(config: ModelConfig, fixtures: Arc<Fixtures>, ids: Box<dyn IdSource>) -> Model {
        Model {
            spec: Spec::kms(),
            config,
            fixtures,
            ids,
            stores: BTreeMap::new(),
            next_seq: 1,
            keys: Vec::new(),
            seam: probe::Seam::Simulate,
        }
    }

    /// The model's tunables.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Changes how the unsettled points are decided from now on.
    pub fn set_switches(&mut self, switches: Switches) {
        self.config.switches = switches;
    }

    /// The state an in-flight transition of store `id` will end in, if one is under way.
    pub fn pending_state(&self, id: &str) -> Option<ConnectionState> {
        let seq = self.find(id)?;
        self.stores[&seq].pending.as_ref().map(|p| p.state)
    }

    /// Completes store `id`'s in-flight transition now; false if it had none.
    pub fn finish_transition(&mut self, id: &str) -> bool {
        let Some(seq) = self.find(id) else {
            return false;
        };
        let store = self.stores.get_mut(&seq).expect("found above");
        match store.pending.take() {
            Some(p) => {
                store.state = p.state;
                store.error_code = p.error_code;
                true
            }
            None => false,
        }
    }

    /// The stores as of `now`, in listing order.
    pub fn stores(&mut self, now: Millis) -> Vec<Store> {
        self.settle(now);
        self.stores.values().cloned().collect()
    }

    /// The keys created so far.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Applies one request with raw body bytes at time `now` and returns the answer.
    ///
    /// Errors come in KMS's order: unknown operation, serialization, validation, existence,
    /// state, then uniqueness and backends. A rejected request changes nothing.
    pub fn apply(&mut self, now: Millis, operation: &str, body: &[u8]) -> Outcome {
        self.settle(now);
        let outcome = self.dispatch(now, operation, body);
        self.settle(now);
        outcome
    }

    fn dispatch(&mut self, now: Millis, operation: &str, body: &[u8]) -> Outcome {
        let Some(op) = self.spec.operation(operation) else {
            return Err(err(
                "UnknownOperationException",
                format!("Unknown operation {operation}"),
            ));
        };
        let input = validate::parse_body(body)?;
        if self.config.switches.check_order == CheckOrder::NotFoundFirst {
            validate::check_types(self.spec, &op.input, &input)?;
            let both =
                input.get("CustomKeyStoreName").is_some() && operation.starts_with("Describe");
            if let Some(id) = input.get("CustomKeyStoreId").and_then(Value::as_str)
                && !both
                && self.find(id).is_none()
            {
                return Err(not_found(id));
            }
        }
        validate::check_input(self.spec, operation, &input)?;
        match operation {
            "CreateCustomKeyStore" => self.create(now, &input),
            "DescribeCustomKeyStores" => self.describe(&input),
            "ConnectCustomKeyStore" => self.connect(now, &input),
            "DisconnectCustomKeyStore" => self.disconnect(now, &input),
            "UpdateCustomKeyStore" => self.update(&input),
            "DeleteCustomKeyStore" => self.delete(&input),
            "CreateKey" => self.create_key(now, &input),
            _ => Err(err(
                "UnknownOperationException",
                format!("Unknown operation {operation}"),
            )),
        }
    }

    /// The sequence number of the store with this ID.
    fn find(&self, id: &str) -> Option<u64> {
        self.stores
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(k, _)| *k)
    }

    /// The store with this ID, or CustomKeyStoreNotFoundException.
    fn existing(&self, input: &Value) -> Result<u64, KmsError> {
        let id = input["CustomKeyStoreId"].as_str().unwrap_or_default();
        self.find(id).ok_or_else(|| not_found(id))
    }

    /// A fresh store ID: `cks-` and 17 hex digits, unique among live stores.
    fn new_store_id(&mut self) -> String {
        loop {
            let bits = self.ids.next_bits() & ((1u128 << 68) - 1);
            let id = format!("cks-{bits:017x}");
            if self.find(&id).is_none() {
                return id;
            }
        }
    }
}

/// An error with a name and message.
pub(crate) fn err(name: &str, message: impl Into<String>) -> KmsError {
    KmsError {
        name: name.to_string(),
        message: message.into(),
    }
}

/// CustomKeyStoreNotFoundException for an ID.
pub(crate) fn not_found(id: &str) -> KmsError {
    err(
        "CustomKeyStoreNotFoundException",
        format!("Custom key store {id} does not exist in this account and Region."),
    )
}

/// ValidationException with a message.
pub(crate) fn invalid(message: impl Into<String>) -> KmsError {
    err("ValidationException", message)
}

/// CustomKeyStoreInvalidStateException for a store in a state that forbids the operation.
pub(crate) fn invalid_state(store: &Store, operation: &str) -> KmsError {
    err(
        "CustomKeyStoreInvalidStateException",
        format!(
            "{operation} is not allowed for custom key store {} in connection state {}.",
            store.id,
            store.state.as_str()
        ),
    )
}

#[cfg(test)]
mod tests;

impl Clone for Box<dyn IdSource> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}
