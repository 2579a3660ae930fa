//! ConnectCustomKeyStore, DisconnectCustomKeyStore and the timed transitions between states.

use serde_json::{Value, json};

use super::fixtures::XksBehaviour;
use super::store::{ConnectionState, Pending, Store};
use super::{ConnectWhenConnected, KmsError, Millis, Model, invalid_state};

/// The connection error code a connect to a proxy with this behaviour ends in (None: CONNECTED).
pub fn xks_connect_error(behaviour: XksBehaviour) -> Option<&'static str> {
    Some(match behaviour {
        XksBehaviour::Connects => return None,
        XksBehaviour::Unreachable => "XKS_PROXY_NOT_REACHABLE",
        XksBehaviour::TimesOut => "XKS_PROXY_TIMED_OUT",
        XksBehaviour::RejectsCredentials => "INVALID_CREDENTIALS",
        XksBehaviour::AccessDenied => "XKS_PROXY_ACCESS_DENIED",
        XksBehaviour::InvalidResponse => "XKS_PROXY_INVALID_RESPONSE",
        XksBehaviour::BadTls => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        XksBehaviour::InvalidConfiguration => "XKS_PROXY_INVALID_CONFIGURATION",
        XksBehaviour::VpcServiceNotFound => "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
        XksBehaviour::VpcServiceInvalidConfiguration => {
            "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"
        }
    })
}

/// The state a connect ends in: FAILED when it has an error code, else CONNECTED.
pub(super) fn connect_end(error_code: Option<&str>) -> ConnectionState {
    if error_code.is_some() {
        ConnectionState::Failed
    } else {
        ConnectionState::Connected
    }
}

impl Model {
    /// Completes every transition that is due at `now`.
    pub(super) fn settle(&mut self, now: Millis) {
        for store in self.stores.values_mut() {
            if store
                .pending
                .as_ref()
                .is_some_and(|p| p.at <= now && p.awaiting.is_none())
            {
                let p = store.pending.take().expect("checked above");
                store.state = p.state;
                store.error_code = p.error_code;
            }
        }
    }

    pub(super) fn connect(&mut self, now: Millis, input: &Value) -> Result<Value, KmsError> {
        let seq = self.existing(input)?;
        let store = self.stores[&seq].clone();
        match store.state {
            ConnectionState::Disconnected => {}
            ConnectionState::Connecting => return Ok(json!({})),
            ConnectionState::Connected => {
                return match self.config.switches.connect_when_connected {
                    ConnectWhenConnected::Succeed => Ok(json!({})),
                    ConnectWhenConnected::InvalidState => {
                        Err(invalid_state(&store, "ConnectCustomKeyStore"))
                    }
                };
            }
            ConnectionState::Failed | ConnectionState::Disconnecting => {
                return Err(invalid_state(&store, "ConnectCustomKeyStore"));
            }
        }
        let deferred = self.deferred_len();
        let error_code = self.connect_result(&store)?;
        let awaiting = self.deferred_after(deferred);
        let at = now + self.config.connect_delay_ms;
        let store = self.stores.get_mut(&seq).expect("found above");
        store.state = ConnectionState::Connecting;
        store.error_code = None;
        store.pending = Some(Pending {
            at,
            state: connect_end(error_code.as_deref()),
            error_code,
            awaiting,
        });
        Ok(json!({}))
    }

    /// The error code the connect will end in, or an exception raised at call time.
    fn connect_result(&mut self, store: &Store) -> Result<Option<String>, KmsError> {
        if let Some(h) = &store.cloudhsm {
            let Some(cluster) = self
                .fixtures
                .cluster(&h.cluster_id)
                .filter(|c| c.state != "DELETED")
            else {
                return Ok(Some("CLUSTER_NOT_FOUND".into()));
            };
            self.cluster_usable(&h.cluster_id)?;
            if let Some(code) = &cluster.connect_error {
                return Ok(Some(code.clone()));
            }
            if cluster.active_hsms == 0 {
                return Ok(Some("INSUFFICIENT_CLOUDHSM_HSMS".into()));
            }
            if h.password.0 != cluster.kmsuser_password {
                return Ok(Some("INVALID_CREDENTIALS".into()));
            }
            return Ok(None);
        }
        let x = store.xks.as_ref().expect("a store is CloudHSM or external");
        Ok(xks_connect_error(self.probe(x, false)).map(str::to_string))
    }

    pub(super) fn disconnect(&mut self, now: Millis, input: &Value) -> Result<Value, KmsError> {
        let seq = self.existing(input)?;
        let delay = self.config.connect_delay_ms;
        let store = self.stores.get_mut(&seq).expect("found above");
        match store.state {
            ConnectionState::Connected | ConnectionState::Connecting | ConnectionState::Failed => {
                store.state = ConnectionState::Disconnecting;
                store.error_code = None;
                store.pending = Some(Pending {
                    at: now + delay,
                    state: ConnectionState::Disconnected,
                    error_code: None,
                    awaiting: None,
                });
                Ok(json!({}))
            }
            ConnectionState::Disconnected | ConnectionState::Disconnecting => {
                Err(invalid_state(store, "DisconnectCustomKeyStore"))
            }
        }
    }
}
