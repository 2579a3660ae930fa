//! The fixtures' backends as generators use them: which can back a new store, which connect,
//! and the CreateCustomKeyStore bodies that name them.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::values::{input_member_shape, valid_string};
use crate::model::fixtures::{Cluster, XksProxy};
use crate::model::{Fixtures, StoreType, XksBehaviour};

/// The connectivity of a proxy reached over the internet.
pub const PUBLIC_ENDPOINT: &str = "PUBLIC_ENDPOINT";
/// The connectivity of a proxy reached through a VPC endpoint service.
pub const VPC_ENDPOINT_SERVICE: &str = "VPC_ENDPOINT_SERVICE";
/// The CloudHSM cluster state in which a cluster can back a store.
const ACTIVE: &str = "ACTIVE";

/// A fixture backend a store can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// A CloudHSM cluster, by its index in `Fixtures::clusters`.
    Cluster(usize),
    /// An XKS proxy, by its index in `Fixtures::xks_proxies`; `vpc`: reached through its VPC
    /// endpoint service.
    Proxy {
        /// Index in `Fixtures::xks_proxies`.
        index: usize,
        /// Whether the store uses VPC_ENDPOINT_SERVICE connectivity.
        vpc: bool,
    },
}

/// Wrong-but-valid values to put into a create body instead of the backend's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Another trust anchor than the cluster's (IncorrectTrustAnchorException).
    pub anchor: bool,
    /// Another password than the cluster's kmsuser password (FAILED/INVALID_CREDENTIALS).
    pub password: bool,
    /// Another secret access key than the proxy's (rejected when KMS checks the proxy).
    pub credential: bool,
    /// Another URI path than the proxy's (rejected when KMS checks the proxy).
    pub path: bool,
}

impl Backend {
    /// The kind of store this backend backs.
    pub fn store_type(self) -> StoreType {
        match self {
            Backend::Cluster(_) => StoreType::AwsCloudhsm,
            Backend::Proxy { .. } => StoreType::ExternalKeyStore,
        }
    }

    /// The cluster, if this is one.
    pub fn cluster(self, f: &Fixtures) -> Option<&Cluster> {
        match self {
            Backend::Cluster(i) => f.clusters.get(i),
            Backend::Proxy { .. } => None,
        }
    }

    /// The proxy, if this is one.
    pub fn proxy(self, f: &Fixtures) -> Option<&XksProxy> {
        match self {
            Backend::Proxy { index, .. } => f.xks_proxies.get(index),
            Backend::Cluster(_) => None,
        }
    }

    /// Whether a valid create on this backend succeeds (if nothing else holds it): for a
    /// cluster, the first usable one of its backup lineage (related clusters exclude each
    /// other).
    pub fn creatable(self, f: &Fixtures) -> bool {
        match self {
            Backend::Cluster(i) => {
                let usable = |c: &Cluster| {
                    c.state == ACTIVE && !c.invalid_configuration && c.hsms_at_create() >= 2
                };
                let c = &f.clusters[i];
                let first_of_lineage = f.clusters.iter().find(|o| {
                    usable(o) && (o.id == c.id || (!c.lineage.is_empty() && o.lineage == c.lineage))
                });
                usable(c)
                    && f.cluster(&c.id).is_some_and(|first| std::ptr::eq(first, c))
                    && first_of_lineage.is_some_and(|first| std::ptr::eq(first, c))
            }
            Backend::Proxy { index, vpc } => {
                let p = &f.xks_proxies[index];
                p.behaviour_at_create == XksBehaviour::Connects
                    && f.proxy(&p.uri_endpoint)
                        .is_some_and(|first| std::ptr::eq(first, p))
                    && (!vpc || vpc_capable(f, index))
            }
        }
    }

    /// Whether a store on this backend, created with the backend's own values, connects.
    pub fn healthy(self, f: &Fixtures) -> bool {
        match self {
            Backend::Cluster(i) => {
                let c = &f.clusters[i];
                c.connect_error.is_none() && c.active_hsms > 0
            }
            Backend::Proxy { index, .. } => {
                f.xks_proxies[index].behaviour == XksBehaviour::Connects
            }
        }
    }

    /// The same physical backend, whatever the connectivity.
    pub fn physical(self) -> Backend {
        match self {
            Backend::Proxy { index, .. } => Backend::Proxy { index, vpc: false },
            other => other,
        }
    }
}

/// Whether the proxy has a VPC endpoint service that the fixtures resolve to it.
pub fn vpc_capable(f: &Fixtures, index: usize) -> bool {
    let p = &f.xks_proxies[index];
    p.vpc_endpoint_service_name
        .as_deref()
        .and_then(|name| f.vpc_service(name))
        .is_some_and(|first| std::ptr::eq(first, p))
}

/// Every backend of the fixtures (proxies with `vpc: false`).
pub fn all(f: &Fixtures) -> Vec<Backend> {
    (0..f.clusters.len())
        .map(Backend::Cluster)
        .chain((0..f.xks_proxies.len()).map(|index| Backend::Proxy { index, vpc: false }))
        .collect()
}

/// The backends a valid create succeeds on, each physical backend once (proxies with
/// `vpc: false`): ACTIVE, well-configured clusters with distinct IDs; proxies that pass KMS's
/// check at create, with distinct endpoints.
pub fn creatable(f: &Fixtures) -> Vec<Backend> {
    all(f).into_iter().filter(|b| b.creatable(f)).collect()
}

/// A backend with its connectivity drawn: VPC_ENDPOINT_SERVICE sometimes, where it can be.
pub fn with_connectivity(f: &Fixtures, backend: Backend) -> BoxedStrategy<Backend> {
    match backend {
        Backend::Proxy { index, .. } if vpc_capable(f, index) => any::<bool>()
            .prop_map(move |vpc| Backend::Proxy { index, vpc })
            .boxed(),
        other => Just(other).boxed(),
    }
}

/// `count` distinct creatable backends, each with its connectivity drawn.
pub fn distinct_creatable(f: &Fixtures, count: usize) -> BoxedStrategy<Vec<Backend>> {
    let pool = creatable(f);
    let f = f.clone();
    proptest::sample::subsequence(pool, count)
        .prop_shuffle()
        .prop_flat_map(move |bs| {
            bs.into_iter()
                .map(|b| with_connectivity(&f, b))
                .collect::<Vec<_>>()
        })
        .boxed()
}

/// The create body for a backend with the backend's own (correct) values. `name` is put in
/// as is (usually a `$name:` reference); `explicit_type` adds CustomKeyStoreType even where
/// the default would do.
pub fn create_body(f: &Fixtures, backend: Backend, name: &str, explicit_type: bool) -> Value {
    let mut body = Map::new();
    body.insert("CustomKeyStoreName".into(), json!(name));
    match backend {
        Backend::Cluster(i) => {
            let c = &f.clusters[i];
            if explicit_type {
                body.insert(
                    "CustomKeyStoreType".into(),
                    json!(StoreType::AwsCloudhsm.as_str()),
                );
            }
            body.insert("CloudHsmClusterId".into(), json!(c.id));
            body.insert(
                "TrustAnchorCertificate".into(),
                json!(c.trust_anchor_certificate),
            );
            body.insert("KeyStorePassword".into(), json!(c.kmsuser_password));
        }
        Backend::Proxy { index, vpc } => {
            let p = &f.xks_proxies[index];
            body.insert(
                "CustomKeyStoreType".into(),
                json!(StoreType::ExternalKeyStore.as_str()),
            );
            body.insert("XksProxyUriEndpoint".into(), json!(p.uri_endpoint));
            body.insert("XksProxyUriPath".into(), json!(p.uri_path));
            body.insert(
                "XksProxyAuthenticationCredential".into(),
                credential(p, &p.secret_access_key),
            );
            let vpc_name = p.vpc_endpoint_service_name.as_deref().filter(|_| vpc);
            match vpc_name {
                Some(n) => {
                    body.insert("XksProxyConnectivity".into(), json!(VPC_ENDPOINT_SERVICE));
                    body.insert("XksProxyVpcEndpointServiceName".into(), json!(n));
                }
                None => {
                    body.insert("XksProxyConnectivity".into(), json!(PUBLIC_ENDPOINT));
                }
            }
        }
    }
    Value::Object(body)
}

/// An authentication credential with the proxy's access key ID and this secret.
pub fn credential(p: &XksProxy, secret: &str) -> Value {
    json!({ "AccessKeyId": p.access_key_id, "RawSecretAccessKey": secret })
}

/// A valid value of `shape` other than `not`.
pub fn other_than(shape: &str, not: &str) -> BoxedStrategy<String> {
    let not = not.to_string();
    valid_string(shape)
        .prop_filter("differs from the backend's own", move |s| *s != not)
        .boxed()
}

/// A create body for the backend with the given faults: wrong values drawn from the members'
/// valid space (so the request is still valid, only wrong for the backend).
pub fn faulty_create(
    f: &Fixtures,
    backend: Backend,
    name: &str,
    explicit_type: bool,
    faults: Faults,
) -> BoxedStrategy<Value> {
    let body = create_body(f, backend, name, explicit_type);
    let mut replacements: Vec<BoxedStrategy<(Vec<&'static str>, String)>> = Vec::new();
    let mut replace = |path: Vec<&'static str>, own: &str| {
        replacements.push(
            other_than(&input_member_shape("CreateCustomKeyStore", &path), own)
                .prop_map(move |v| (path.clone(), v))
                .boxed(),
        );
    };
    if let Some(c) = backend.cluster(f) {
        if faults.anchor {
            replace(vec!["TrustAnchorCertificate"], &c.trust_anchor_certificate);
        }
        if faults.password {
            replace(vec!["KeyStorePassword"], &c.kmsuser_password);
        }
    }
    if let Some(p) = backend.proxy(f) {
        if faults.credential {
            replace(
                vec!["XksProxyAuthenticationCredential", "RawSecretAccessKey"],
                &p.secret_access_key,
            );
        }
        if faults.path {
            replace(vec!["XksProxyUriPath"], &p.uri_path);
        }
    }
    replacements
        .prop_map(move |rs| {
            let mut body = body.clone();
            for (path, v) in rs {
                set_path(&mut body, &path, json!(v));
            }
            body
        })
        .boxed()
}

/// Sets a member at a path of object keys, creating objects on the way.
pub fn set_path(body: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = body;
    for p in parents {
        if !at.get(*p).is_some_and(Value::is_object) {
            at[*p] = json!({});
        }
        at = &mut at[*p];
    }
    at[*last] = value;
}

/// Removes a member at a path of object keys.
pub fn remove_path(body: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = body;
    for p in parents {
        at = &mut at[*p];
    }
    if let Some(map) = at.as_object_mut() {
        map.remove(*last);
    }
}

/// One of the proxy's usable external keys, else a valid key ID.
pub fn xks_key(f: &Fixtures, backend: Backend) -> BoxedStrategy<String> {
    match backend.proxy(f).filter(|p| !p.keys.is_empty()) {
        Some(p) => select(p.keys.clone()).boxed(),
        None => valid_string("XksKeyIdType"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::values::violations;
    use crate::spec::Spec;

    #[test]
    fn connectivity_names_are_the_spec_enum() {
        let values = Spec::kms()
            .shape("XksProxyConnectivityType")
            .enum_values
            .clone()
            .unwrap();
        assert!(values.iter().any(|v| v == PUBLIC_ENDPOINT));
        assert!(values.iter().any(|v| v == VPC_ENDPOINT_SERVICE));
    }

    #[test]
    fn builtin_creatable_backends_are_distinct_and_their_bodies_valid() {
        let f = Fixtures::builtin();
        let bs = creatable(&f);
        assert!(bs.iter().any(|b| matches!(b, Backend::Cluster(_))));
        assert!(bs.iter().any(|b| matches!(b, Backend::Proxy { .. })));
        let mut ids = std::collections::BTreeSet::new();
        for b in &bs {
            if let Some(c) = b.cluster(&f) {
                assert_eq!(c.state, ACTIVE);
                assert!(!c.invalid_configuration);
                assert!(ids.insert(c.id.clone()));
            }
            if let Some(p) = b.proxy(&f) {
                assert_eq!(p.behaviour_at_create, XksBehaviour::Connects);
                assert!(ids.insert(p.uri_endpoint.clone()));
            }
            for vpc in [false, true] {
                let b = match *b {
                    Backend::Proxy { index, .. } if vpc => Backend::Proxy { index, vpc },
                    other => other,
                };
                let body = create_body(&f, b, "name", vpc);
                let v = violations("CreateCustomKeyStoreRequest", &body);
                assert_eq!(v, Vec::<String>::new(), "{body}");
            }
        }
        // The deleted, uninitialised and badly configured clusters and the proxies broken at
        // create are not creatable.
        assert!(all(&f).len() > bs.len() + 4);
    }
}
