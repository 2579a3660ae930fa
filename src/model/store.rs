//! A custom key store as the model holds it, and its DescribeCustomKeyStores entry.

use serde_json::{Map, Value, json};

use super::Millis;

/// The two kinds of custom key store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Backed by a CloudHSM cluster.
    AwsCloudhsm,
    /// Backed by an external key manager through an XKS proxy.
    ExternalKeyStore,
}

impl StoreType {
    /// The wire name (`AWS_CLOUDHSM`, `EXTERNAL_KEY_STORE`).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::AwsCloudhsm => "AWS_CLOUDHSM",
            StoreType::ExternalKeyStore => "EXTERNAL_KEY_STORE",
        }
    }
}

/// A store's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connected and usable.
    Connected,
    /// A connect is under way.
    Connecting,
    /// The last connect failed; see the error code.
    Failed,
    /// Not connected (the state after Create).
    Disconnected,
    /// A disconnect is under way.
    Disconnecting,
}

impl ConnectionState {
    /// Every state, in the order the documentation lists them.
    pub const ALL: [ConnectionState; 5] = [
        ConnectionState::Connected,
        ConnectionState::Connecting,
        ConnectionState::Failed,
        ConnectionState::Disconnected,
        ConnectionState::Disconnecting,
    ];

    /// The wire name, e.g. `CONNECTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Connecting => "CONNECTING",
            ConnectionState::Failed => "FAILED",
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Disconnecting => "DISCONNECTING",
        }
    }
}

/// A secret value (password, secret access key): never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The CloudHSM side of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudHsmSettings {
    /// The backing cluster.
    pub cluster_id: String,
    /// Its trust anchor certificate.
    pub trust_anchor_certificate: String,
    /// The `kmsuser` password the store holds.
    pub password: Secret,
}

/// The external side of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksSettings {
    /// `PUBLIC_ENDPOINT` or `VPC_ENDPOINT_SERVICE`.
    pub connectivity: String,
    /// Proxy URI endpoint.
    pub uri_endpoint: String,
    /// Proxy URI path.
    pub uri_path: String,
    /// Access key ID of the proxy credential.
    pub access_key_id: String,
    /// Secret access key of the proxy credential.
    pub secret_access_key: Secret,
    /// VPC endpoint service name (VPC connectivity only).
    pub vpc_endpoint_service_name: Option<String>,
    /// VPC endpoint service owner (VPC connectivity only).
    pub vpc_endpoint_service_owner: Option<String>,
}

impl XksSettings {
    /// Whether the proxy is reached through a VPC endpoint service.
    pub fn is_vpc(&self) -> bool {
        self.connectivity == "VPC_ENDPOINT_SERVICE"
    }
}

/// A transition that completes at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub at: Millis,
    pub state: ConnectionState,
    pub error_code: Option<String>,
    /// A connect that waits for a real proxy's answer ([`super::Model::resolve_connect`]):
    /// it does not complete before that answer, whatever `at` says.
    pub awaiting: Option<super::ProbeTarget>,
}

/// One custom key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// `cks-` + 17 hex digits.
    pub id: String,
    /// Friendly name, unique in the account and Region.
    pub name: String,
    /// Kind of store.
    pub store_type: StoreType,
    /// Connection state.
    pub state: ConnectionState,
    /// Connection error code, present exactly when FAILED.
    pub error_code: Option<String>,
    /// Creation time.
    pub created: Millis,
    /// CloudHSM settings (CloudHSM stores only).
    pub cloudhsm: Option<CloudHsmSettings>,
    /// Proxy settings (external stores only).
    pub xks: Option<XksSettings>,
    pub(crate) pending: Option<Pending>,
}

impl Store {
    /// The store as a DescribeCustomKeyStores list entry (secrets never included).
    pub fn entry(&self) -> Value {
        let mut e = Map::new();
        e.insert("CustomKeyStoreId".into(), json!(self.id));
        e.insert("CustomKeyStoreName".into(), json!(self.name));
        e.insert("CustomKeyStoreType".into(), json!(self.store_type.as_str()));
        e.insert("ConnectionState".into(), json!(self.state.as_str()));
        if let Some(code) = &self.error_code {
            e.insert("ConnectionErrorCode".into(), json!(code));
        }
        e.insert("CreationDate".into(), epoch_seconds(self.created));
        if let Some(h) = &self.cloudhsm {
            e.insert("CloudHsmClusterId".into(), json!(h.cluster_id));
            e.insert(
                "TrustAnchorCertificate".into(),
                json!(h.trust_anchor_certificate),
            );
        }
        if let Some(x) = &self.xks {
            let mut c = Map::new();
            c.insert("Connectivity".into(), json!(x.connectivity));
            c.insert("AccessKeyId".into(), json!(x.access_key_id));
            c.insert("UriEndpoint".into(), json!(x.uri_endpoint));
            c.insert("UriPath".into(), json!(x.uri_path));
            if x.is_vpc() {
                if let Some(n) = &x.vpc_endpoint_service_name {
                    c.insert("VpcEndpointServiceName".into(), json!(n));
                }
                if let Some(o) = &x.vpc_endpoint_service_owner {
                    c.insert("VpcEndpointServiceOwner".into(), json!(o));
                }
            }
            e.insert("XksProxyConfiguration".into(), Value::Object(c));
        }
        Value::Object(e)
    }
}

/// A time as a JSON number of epoch seconds with millisecond fraction, e.g. 1537582718.431.
pub fn epoch_seconds(ms: Millis) -> Value {
    // IEEE division is correctly rounded, so this is the double nearest to the exact decimal
    // `ms / 1000`: the same number parsing its three-decimal text would give.
    json!(ms as f64 / 1000.0)
}
