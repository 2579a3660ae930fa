//! CreateCustomKeyStore and the backend checks it shares with UpdateCustomKeyStore.

use serde_json::{Value, json};

use super::conditions::{PUBLIC_ENDPOINT, VPC_ENDPOINT_SERVICE, When, condition, first_present};
use super::fixtures::XksBehaviour;
use super::store::{CloudHsmSettings, ConnectionState, Secret, Store, StoreType, XksSettings};
use super::{KmsError, Millis, Model, err, invalid};

const CREATE: &str = "CreateCustomKeyStore";

fn text(input: &Value, member: &str) -> Option<String> {
    input
        .get(member)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// ValidationException if the request holds a member forbidden under `when`, or lacks one
/// required (the conditions table; inferred error type).
pub(super) fn conditions_hold(input: &Value, operation: &str, when: When) -> Result<(), KmsError> {
    let Some(c) = condition(operation, when) else {
        return Ok(());
    };
    if let Some(m) = first_present(input, c.forbids) {
        return Err(invalid(format!(
            "{m} is not valid for a custom key store with {}.",
            when.label()
        )));
    }
    match c.requires.iter().find(|m| input.get(**m).is_none()) {
        Some(m) => Err(invalid(format!(
            "{m} is required for a custom key store with {}.",
            when.label()
        ))),
        None => Ok(()),
    }
}

/// The exception KMS raises when its Create/Update check of the proxy sees this behaviour.
fn proxy_check_error(behaviour: XksBehaviour) -> Option<KmsError> {
    let name = match behaviour {
        XksBehaviour::Connects | XksBehaviour::AccessDenied => return None,
        XksBehaviour::Unreachable | XksBehaviour::TimesOut | XksBehaviour::BadTls => {
            "XksProxyUriUnreachableException"
        }
        XksBehaviour::RejectsCredentials => "XksProxyIncorrectAuthenticationCredentialException",
        XksBehaviour::InvalidResponse => "XksProxyInvalidResponseException",
        XksBehaviour::InvalidConfiguration => "XksProxyInvalidConfigurationException",
        XksBehaviour::VpcServiceNotFound => "XksProxyVpcEndpointServiceNotFoundException",
        XksBehaviour::VpcServiceInvalidConfiguration => {
            "XksProxyVpcEndpointServiceInvalidConfigurationException"
        }
    };
    Some(err(
        name,
        format!("The XKS proxy check failed: the proxy is {behaviour:?}."),
    ))
}

impl Model {
    pub(super) fn create(&mut self, now: Millis, input: &Value) -> Result<Value, KmsError> {
        let store_type = match input.get("CustomKeyStoreType").and_then(Value::as_str) {
            Some("EXTERNAL_KEY_STORE") => StoreType::ExternalKeyStore,
            _ => StoreType::AwsCloudhsm,
        };
        conditions_hold(input, CREATE, When::RequestType(store_type))?;
        let xks = match store_type {
            StoreType::AwsCloudhsm => None,
            StoreType::ExternalKeyStore => Some(xks_settings(input, None, CREATE)?),
        };
        let name = text(input, "CustomKeyStoreName").unwrap_or_default();
        self.name_is_free(&name, None)?;
        if self.stores.len() >= self.config.quota {
            return Err(err(
                "LimitExceededException",
                format!(
                    "The number of custom key stores in this account and Region would exceed the quota of {}.",
                    self.config.quota
                ),
            ));
        }
        let cloudhsm = match store_type {
            StoreType::AwsCloudhsm => Some(self.check_new_cluster(input)?),
            StoreType::ExternalKeyStore => None,
        };
        if let Some(x) = &xks {
            self.check_proxy(x, None)?;
        }
        Ok(self.insert_new(now, name, store_type, (cloudhsm, xks)))
    }

    /// Adds a new DISCONNECTED store with a fresh ID; the Create answer.
    pub(super) fn insert_new(
        &mut self,
        now: Millis,
        name: String,
        store_type: StoreType,
        (cloudhsm, xks): (Option<CloudHsmSettings>, Option<XksSettings>),
    ) -> Value {
        let id = self.new_store_id();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stores.insert(
            seq,
            Store {
                id: id.clone(),
                name,
                store_type,
                state: ConnectionState::Disconnected,
                error_code: None,
                created: now,
                cloudhsm,
                xks,
                pending: None,
            },
        );
        json!({ "CustomKeyStoreId": id })
    }

    /// CustomKeyStoreNameInUseException if another store than `except` has this name.
    pub(super) fn name_is_free(&self, name: &str, except: Option<u64>) -> Result<(), KmsError> {
        let taken = self
            .stores
            .iter()
            .any(|(seq, s)| s.name == name && Some(*seq) != except);
        if taken {
            return Err(err(
                "CustomKeyStoreNameInUseException",
                format!("A custom key store named {name} already exists."),
            ));
        }
        Ok(())
    }

    fn check_new_cluster(&self, input: &Value) -> Result<CloudHsmSettings, KmsError> {
        let cluster_id = text(input, "CloudHsmClusterId").unwrap_or_default();
        let cluster = self.cluster_for_store(&cluster_id)?;
        let related = |id: &str| {
            id == cluster_id
                || (!cluster.lineage.is_empty()
                    && self
                        .fixtures
                        .cluster(id)
                        .is_some_and(|c| c.lineage == cluster.lineage))
        };
        if self
            .stores
            .values()
            .any(|s| s.cloudhsm.as_ref().is_some_and(|h| related(&h.cluster_id)))
        {
            return Err(err(
                "CloudHsmClusterInUseException",
                format!(
                    "Cluster {cluster_id} backs a custom key store or shares a backup history with one that does."
                ),
            ));
        }
        let anchor = text(input, "TrustAnchorCertificate").unwrap_or_default();
        if anchor != cluster.trust_anchor_certificate {
            return Err(err(
                "IncorrectTrustAnchorException",
                format!(
                    "The trust anchor certificate does not match the one of cluster {cluster_id}."
                ),
            ));
        }
        Ok(CloudHsmSettings {
            cluster_id,
            trust_anchor_certificate: anchor,
            password: Secret(text(input, "KeyStorePassword").unwrap_or_default()),
        })
    }

    /// The cluster if a store may be put on it (Create, Update): usable, and with the two
    /// active HSMs KMS requires there.
    pub(super) fn cluster_for_store(
        &self,
        id: &str,
    ) -> Result<&super::fixtures::Cluster, KmsError> {
        let cluster = self.cluster_usable(id)?;
        if cluster.hsms_at_create() < 2 {
            return Err(err(
                "CloudHsmClusterInvalidConfigurationException",
                format!(
                    "Cluster {id} needs at least two active HSMs in different Availability Zones."
                ),
            ));
        }
        Ok(cluster)
    }

    /// The cluster if it exists, is active and is configured well enough for KMS.
    pub(super) fn cluster_usable(&self, id: &str) -> Result<&super::fixtures::Cluster, KmsError> {
        let cluster = self
            .fixtures
            .cluster(id)
            .filter(|c| c.state != "DELETED")
            .ok_or_else(|| {
                err(
                    "CloudHsmClusterNotFoundException",
                    format!("Cluster {id} was not found."),
                )
            })?;
        if cluster.state != "ACTIVE" {
            return Err(err(
                "CloudHsmClusterNotActiveException",
                format!("Cluster {id} is not active (state {}).", cluster.state),
            ));
        }
        if cluster.invalid_configuration {
            return Err(err(
                "CloudHsmClusterInvalidConfigurationException",
                format!("Cluster {id} is not configured as KMS requires."),
            ));
        }
        Ok(cluster)
    }

    /// Uniqueness of the proxy settings among other stores, then KMS's check of the proxy.
    pub(super) fn check_proxy(
        &mut self,
        x: &XksSettings,
        except: Option<u64>,
    ) -> Result<(), KmsError> {
        for (seq, other) in &self.stores {
            let Some(o) = other.xks.as_ref().filter(|_| Some(*seq) != except) else {
                continue;
            };
            if x.is_vpc() && o.is_vpc() && o.uri_endpoint == x.uri_endpoint {
                return Err(err(
                    "XksProxyUriEndpointInUseException",
                    format!("The proxy endpoint {} is already in use.", x.uri_endpoint),
                ));
            }
            if o.uri_endpoint == x.uri_endpoint && o.uri_path == x.uri_path {
                return Err(err(
                    "XksProxyUriInUseException",
                    "The proxy endpoint and path are already in use.",
                ));
            }
            if x.is_vpc()
                && x.vpc_endpoint_service_name.is_some()
                && o.vpc_endpoint_service_name == x.vpc_endpoint_service_name
            {
                return Err(err(
                    "XksProxyVpcEndpointServiceInUseException",
                    "The VPC endpoint service is already in use.",
                ));
            }
        }
        if x.is_vpc() {
            let name = x.vpc_endpoint_service_name.as_deref().unwrap_or_default();
            match self.fixtures.vpc_service(name) {
                None => {
                    return Err(err(
                        "XksProxyVpcEndpointServiceNotFoundException",
                        format!("VPC endpoint service {name} was not found."),
                    ));
                }
                Some(p) if p.uri_endpoint != x.uri_endpoint => {
                    return Err(err(
                        "XksProxyVpcEndpointServiceInvalidConfigurationException",
                        format!(
                            "VPC endpoint service {name} does not serve {}.",
                            x.uri_endpoint
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        match proxy_check_error(self.probe(x, true)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The proxy settings from a Create or Update request, on top of `old` for an Update.
pub(super) fn xks_settings(
    input: &Value,
    old: Option<&XksSettings>,
    operation: &str,
) -> Result<XksSettings, KmsError> {
    let pick = |member: &str, old: Option<&String>| text(input, member).or_else(|| old.cloned());
    let credential = input.get("XksProxyAuthenticationCredential");
    let cred = |member: &str| {
        credential
            .and_then(|c| c.get(member))
            .and_then(Value::as_str)
    };
    let connectivity =
        pick("XksProxyConnectivity", old.map(|o| &o.connectivity)).unwrap_or_default();
    let mut settings = XksSettings {
        uri_endpoint: pick("XksProxyUriEndpoint", old.map(|o| &o.uri_endpoint)).unwrap_or_default(),
        uri_path: pick("XksProxyUriPath", old.map(|o| &o.uri_path)).unwrap_or_default(),
        access_key_id: cred("AccessKeyId")
            .map(str::to_string)
            .or_else(|| old.map(|o| o.access_key_id.clone()))
            .unwrap_or_default(),
        secret_access_key: Secret(
            cred("RawSecretAccessKey")
                .map(str::to_string)
                .or_else(|| old.map(|o| o.secret_access_key.0.clone()))
                .unwrap_or_default(),
        ),
        vpc_endpoint_service_name: pick(
            "XksProxyVpcEndpointServiceName",
            old.and_then(|o| o.vpc_endpoint_service_name.as_ref()),
        ),
        vpc_endpoint_service_owner: pick(
            "XksProxyVpcEndpointServiceOwner",
            old.and_then(|o| o.vpc_endpoint_service_owner.as_ref()),
        ),
        connectivity,
    };
    let connectivity = if settings.is_vpc() {
        VPC_ENDPOINT_SERVICE
    } else {
        PUBLIC_ENDPOINT
    };
    // A required member counts when the settings in effect (the store's, overlaid with the
    // request's) hold it.
    let holds = |m: &str| match m {
        "XksProxyVpcEndpointServiceName" => settings.vpc_endpoint_service_name.is_some(),
        "XksProxyVpcEndpointServiceOwner" => settings.vpc_endpoint_service_owner.is_some(),
        _ => input.get(m).is_some(),
    };
    if let Some(c) = condition(operation, When::Connectivity(connectivity)) {
        if let Some(m) = first_present(input, c.forbids) {
            return Err(invalid(format!(
                "{m} is valid only when XksProxyConnectivity is {VPC_ENDPOINT_SERVICE}."
            )));
        }
        if let Some(m) = c.requires.iter().find(|m| !holds(m)) {
            return Err(invalid(format!(
                "{m} is required when XksProxyConnectivity is {connectivity}."
            )));
        }
    }
    if !settings.is_vpc() {
        settings.vpc_endpoint_service_name = None;
        settings.vpc_endpoint_service_owner = None;
    }
    Ok(settings)
}
