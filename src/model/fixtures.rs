//! Fixtures: the backends (CloudHSM clusters, XKS proxies, VPC endpoint services) an endpoint has.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The backends a KMS endpoint can reach, as read from a fixtures TOML file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// CloudHSM clusters.
    #[serde(default, rename = "cluster")]
    pub clusters: Vec<Cluster>,
    /// External key store proxies.
    #[serde(default, rename = "xks_proxy")]
    pub xks_proxies: Vec<XksProxy>,
}

/// A simulated CloudHSM cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Cluster ID, e.g. `cluster-abcdefghijk`.
    pub id: String,
    /// CloudHSM cluster state: `ACTIVE`, `UNINITIALIZED`, `INITIALIZED`, `DEGRADED`, `DELETED`...
    #[serde(default = "active")]
    pub state: String,
    /// Number of active HSMs in the cluster when a store connects.
    #[serde(default = "two")]
    pub active_hsms: u32,
    /// Number of active HSMs when KMS checks the cluster in Create or Update (default:
    /// `active_hsms`); KMS needs two there, and one to connect.
    #[serde(default)]
    pub active_hsms_at_create: Option<u32>,
    /// The cluster's trust anchor certificate (PEM text).
    pub trust_anchor_certificate: String,
    /// The `kmsuser` password a store must hold to connect. A secret: never printed.
    pub kmsuser_password: String,
    /// Backup lineage: clusters with the same lineage are related (restored from one backup,
    /// so they share the trust anchor and the kmsuser password), and only one of them may
    /// back a store.
    #[serde(default)]
    pub lineage: String,
    /// True when the cluster's network set-up is unusable for KMS.
    #[serde(default)]
    pub invalid_configuration: bool,
    /// A connection error code every connect ends in, e.g. `USER_LOCKED_OUT`.
    #[serde(default)]
    pub connect_error: Option<String>,
}

/// What a simulated XKS proxy does when KMS calls it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum XksBehaviour {
    /// Answers GetHealthStatus correctly.
    #[default]
    Connects,
    /// Does not accept TCP connections.
    Unreachable,
    /// Answers after KMS's 250 ms budget.
    TimesOut,
    /// Answers 401 AuthenticationFailedException.
    RejectsCredentials,
    /// Answers 403 AccessDeniedException.
    AccessDenied,
    /// Answers something that is not a valid GetHealthStatus response.
    InvalidResponse,
    /// Presents a certificate KMS does not trust.
    BadTls,
    /// Answers 404 InvalidUriPathException.
    InvalidConfiguration,
    /// Its VPC endpoint service does not exist.
    VpcServiceNotFound,
    /// Its VPC endpoint service is misconfigured.
    VpcServiceInvalidConfiguration,
}

/// A simulated XKS proxy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XksProxy {
    /// `https://` + host name; no port, no path.
    pub uri_endpoint: String,
    /// The proxy's URI path, e.g. `/example/kms/xks/v1`; another path answers 404.
    pub uri_path: String,
    /// The access key ID the proxy accepts.
    pub access_key_id: String,
    /// The secret access key the proxy accepts. A secret: never printed.
    pub secret_access_key: String,
    /// What the proxy does when a store connects.
    #[serde(default)]
    pub behaviour: XksBehaviour,
    /// What it does when KMS checks it during Create or Update (default: connects).
    #[serde(default)]
    pub behaviour_at_create: XksBehaviour,
    /// VPC endpoint service name, for proxies reached with VPC_ENDPOINT_SERVICE connectivity.
    #[serde(default)]
    pub vpc_endpoint_service_name: Option<String>,
    /// External key IDs the proxy holds, usable for KMS keys.
    #[serde(default)]
    pub keys: Vec<String>,
    /// External key IDs the proxy holds that are disabled or lack ENCRYPT/DECRYPT.
    #[serde(default)]
    pub unusable_keys: Vec<String>,
    /// Where a real proxy playing this entry listens (`127.0.0.1:8443`): the emulator calls it
    /// there under the endpoint's host name, and its answers replace `behaviour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    /// PEM text of the CA the real proxy's certificate must chain to (none: the system roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
}

/// The fixture set used when none is given (`specs/fixtures.example.toml`).
pub const DEFAULT_FIXTURES_TOML: &str = include_str!("../../specs/fixtures.example.toml");

impl Cluster {
    /// Active HSMs when KMS checks the cluster in Create or Update.
    pub fn hsms_at_create(&self) -> u32 {
        self.active_hsms_at_create.unwrap_or(self.active_hsms)
    }
}

impl Fixtures {
    /// Parses fixtures from TOML text.
    pub fn from_toml(text: &str) -> Result<Fixtures, toml::de::Error> {
        toml::from_str(text)
    }

    /// The built-in default set: one backend for every connection outcome.
    pub fn builtin() -> Fixtures {
        Fixtures::from_toml(DEFAULT_FIXTURES_TOML).expect("the bundled fixtures are valid")
    }

    /// The built-in set without its failing backends: only clusters a store can be created on
    /// and connect to, and proxies that pass KMS's checks at create and at connect. This is what
    /// an endpoint is assumed to have when no fixtures are given: most emulators simulate no
    /// failing backend, so expecting one would assert what they never claimed.
    pub fn builtin_healthy() -> Fixtures {
        let mut f = Fixtures::builtin();
        f.clusters.retain(|c| {
            c.state == "ACTIVE"
                && c.active_hsms > 0
                && c.hsms_at_create() >= 2
                && c.connect_error.is_none()
                && !c.invalid_configuration
        });
        f.xks_proxies.retain(|p| {
            p.behaviour == XksBehaviour::Connects && p.behaviour_at_create == XksBehaviour::Connects
        });
        f
    }

    /// The cluster with this ID.
    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    /// The proxy answering at this endpoint.
    pub fn proxy(&self, uri_endpoint: &str) -> Option<&XksProxy> {
        self.xks_proxies
            .iter()
            .find(|p| p.uri_endpoint == uri_endpoint)
    }

    /// True when some proxy entry is played by a real proxy (has an `address`).
    pub fn has_real_proxies(&self) -> bool {
        self.xks_proxies.iter().any(|p| p.address.is_some())
    }

    /// The proxy whose VPC endpoint service has this name.
    pub fn vpc_service(&self, name: &str) -> Option<&XksProxy> {
        self.xks_proxies
            .iter()
            .find(|p| p.vpc_endpoint_service_name.as_deref() == Some(name))
    }
}

fn active() -> String {
    "ACTIVE".into()
}

fn two() -> u32 {
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_fixtures_cover_every_proxy_behaviour_and_cluster_outcome() {
        let f = Fixtures::builtin();
        for b in [
            XksBehaviour::Connects,
            XksBehaviour::Unreachable,
            XksBehaviour::TimesOut,
            XksBehaviour::RejectsCredentials,
            XksBehaviour::AccessDenied,
            XksBehaviour::InvalidResponse,
            XksBehaviour::BadTls,
            XksBehaviour::InvalidConfiguration,
            XksBehaviour::VpcServiceNotFound,
            XksBehaviour::VpcServiceInvalidConfiguration,
        ] {
            assert!(
                f.xks_proxies.iter().any(|p| p.behaviour == b),
                "no proxy {b:?}"
            );
        }
        assert!(f.clusters.iter().any(|c| c.state != "ACTIVE"));
        assert!(f.clusters.iter().any(|c| c.active_hsms == 0));
        assert!(f.clusters.iter().any(|c| c.connect_error.is_some()));
        assert!(f.clusters.iter().any(|c| c.invalid_configuration));
    }

    #[test]
    fn a_real_proxy_entry_carries_its_address_and_ca() {
        let text = r#"
            [[xks_proxy]]
            uri_endpoint = "https://xks-real.example.test"
            uri_path = "/kms/xks/v1"
            access_key_id = "REALPROXYACCESSKEYAA"
            secret_access_key = "realProxySecretAccessKeyAAAAAAAAAAAAAAAAAAA"
            address = "127.0.0.1:8443"
            ca_cert = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----"
        "#;
        let f = Fixtures::from_toml(text).unwrap();
        let p = f.proxy("https://xks-real.example.test").unwrap();
        assert_eq!(p.address, Some("127.0.0.1:8443".parse().unwrap()));
        assert!(p.ca_cert.as_deref().unwrap().starts_with("-----BEGIN"));
        assert!(f.has_real_proxies());
        let err = Fixtures::from_toml(&text.replace("127.0.0.1:8443", "xks:443")).unwrap_err();
        assert!(err.to_string().contains("address"), "{err}");
        // The built-in set needs no proxy running.
        assert!(!Fixtures::builtin().has_real_proxies());
    }

    #[test]
    fn the_healthy_set_keeps_every_working_backend_and_no_failing_one() {
        let all = Fixtures::builtin();
        let healthy = Fixtures::builtin_healthy();
        assert!(healthy.clusters.len() >= 3, "{:?}", healthy.clusters);
        assert!(healthy.clusters.len() < all.clusters.len());
        assert!(healthy.xks_proxies.len() >= 3);
        assert!(healthy.xks_proxies.len() < all.xks_proxies.len());
        assert!(
            healthy
                .xks_proxies
                .iter()
                .any(|p| p.vpc_endpoint_service_name.is_some())
        );
        for c in &healthy.clusters {
            assert!(c.connect_error.is_none() && c.active_hsms > 0 && c.state == "ACTIVE");
        }
        for p in &healthy.xks_proxies {
            assert_eq!(p.behaviour, XksBehaviour::Connects, "{}", p.uri_endpoint);
            assert_eq!(p.behaviour_at_create, XksBehaviour::Connects);
        }
        // Related clusters (one lineage) are healthy and stay.
        let lineages: Vec<&str> = healthy
            .clusters
            .iter()
            .map(|c| c.lineage.as_str())
            .collect();
        assert!(
            lineages
                .iter()
                .enumerate()
                .any(|(i, l)| !l.is_empty() && lineages[i + 1..].contains(l)),
            "{lineages:?}"
        );
    }

    #[test]
    fn unknown_fixture_keys_are_refused() {
        let err = Fixtures::from_toml("[[cluster]]\nid = \"x\"\nbogus = 1\n").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
