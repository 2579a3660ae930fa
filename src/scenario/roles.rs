//! Roles: which fixture backend plays `cluster:healthy`, `xks:public` and the rest, so one
//! scenario runs against any fixture set, and snapshots name the role, not the backend.

use crate::generate::backends::Backend;
use crate::model::fixtures::{Cluster, XksProxy};
use crate::model::{Fixtures, XksBehaviour};

/// A role a backend can play, e.g. `cluster:healthy` or `xks:times-out`.
pub type Role = str;

const ACTIVE: &str = "ACTIVE";
const DELETED: &str = "DELETED";

/// The backend playing `role` in `fixtures`, or why none does.
pub fn backend(fixtures: &Fixtures, role: &Role) -> Result<Backend, String> {
    let missing = || format!("no fixture plays the role {role}");
    if let Some(kind) = role.strip_prefix("cluster:") {
        return cluster(fixtures, kind)
            .map(Backend::Cluster)
            .ok_or_else(missing);
    }
    if let Some(kind) = role.strip_prefix("xks:") {
        return proxy(fixtures, kind).ok_or_else(missing);
    }
    Err(format!(
        "unknown role {role:?} (roles start with cluster: or xks:)"
    ))
}

fn healthy(c: &Cluster) -> bool {
    c.state == ACTIVE
        && c.active_hsms > 0
        && c.hsms_at_create() >= 2
        && c.connect_error.is_none()
        && !c.invalid_configuration
}

fn cluster(f: &Fixtures, kind: &str) -> Option<usize> {
    let find = |p: &dyn Fn(&Cluster) -> bool| f.clusters.iter().position(p);
    let first_healthy = find(&healthy);
    match kind {
        "healthy" => first_healthy,
        "related" | "unrelated" => {
            let h = &f.clusters[first_healthy?];
            let same = kind == "related";
            find(&|c| healthy(c) && c.id != h.id && (c.lineage == h.lineage) == same)
        }
        "not-active" => find(&|c| c.state != ACTIVE && c.state != DELETED),
        "deleted" => find(&|c| c.state == DELETED),
        "no-hsms" => find(&|c| {
            c.state == ACTIVE
                && c.active_hsms == 0
                && c.hsms_at_create() >= 2
                && c.connect_error.is_none()
                && !c.invalid_configuration
        }),
        "invalid-configuration" => find(&|c| c.state == ACTIVE && c.invalid_configuration),
        _ => {
            let code = kind.strip_prefix("fails-")?;
            find(&|c| {
                c.state == ACTIVE
                    && !c.invalid_configuration
                    && c.connect_error.as_deref() == Some(code)
            })
        }
    }
}

fn works(p: &XksProxy) -> bool {
    p.behaviour == XksBehaviour::Connects && p.behaviour_at_create == XksBehaviour::Connects
}

fn proxy(f: &Fixtures, kind: &str) -> Option<Backend> {
    let find = |p: &dyn Fn(&XksProxy) -> bool| f.xks_proxies.iter().position(p);
    let public = |p: &XksProxy| works(p) && p.vpc_endpoint_service_name.is_none();
    let at = |index: usize, vpc: bool| Backend::Proxy { index, vpc };
    match kind {
        "public" => find(&public).map(|i| at(i, false)),
        "public-2" => {
            let mut all = f.xks_proxies.iter().enumerate().filter(|(_, p)| public(p));
            all.nth(1).map(|(i, _)| at(i, false))
        }
        "vpc" => find(&|p| works(p) && p.vpc_endpoint_service_name.is_some()).map(|i| at(i, true)),
        _ => {
            if let Some(broken) = kind.strip_suffix("-at-create") {
                let b = behaviour(broken)?;
                return find(&|p| p.behaviour_at_create == b).map(|i| at(i, false));
            }
            let b = behaviour(kind).filter(|b| *b != XksBehaviour::Connects)?;
            let vpc = matches!(
                b,
                XksBehaviour::VpcServiceNotFound | XksBehaviour::VpcServiceInvalidConfiguration
            );
            find(&|p| {
                p.behaviour == b
                    && p.behaviour_at_create == XksBehaviour::Connects
                    && (!vpc || p.vpc_endpoint_service_name.is_some())
            })
            .map(|i| at(i, vpc))
        }
    }
}

fn behaviour(kebab: &str) -> Option<XksBehaviour> {
    serde_json::from_value(serde_json::Value::String(kebab.to_string())).ok()
}

/// The value `$cluster:ROLE[.FIELD]` or `$xks:ROLE.FIELD` stands for, or why there is none.
pub fn value(fixtures: &Fixtures, reference: &str) -> Result<String, String> {
    let (role, field) = match reference.rsplit_once('.') {
        Some((r, f)) if !f.contains(':') => (r, Some(f)),
        _ => (reference, None),
    };
    let backend = backend(fixtures, role)?;
    let unknown = || format!("{role} has no field {:?}", field.unwrap_or(""));
    match (backend, field) {
        (Backend::Cluster(i), f) => {
            let c = &fixtures.clusters[i];
            match f {
                None => Ok(c.id.clone()),
                Some("anchor") => Ok(c.trust_anchor_certificate.clone()),
                Some("password") => Ok(c.kmsuser_password.clone()),
                Some(_) => Err(unknown()),
            }
        }
        (Backend::Proxy { index, .. }, f) => {
            let p = &fixtures.xks_proxies[index];
            match f {
                Some("endpoint") => Ok(p.uri_endpoint.clone()),
                Some("path") => Ok(p.uri_path.clone()),
                Some("access-key-id") => Ok(p.access_key_id.clone()),
                Some("secret") => Ok(p.secret_access_key.clone()),
                Some("vpc-service") => p.vpc_endpoint_service_name.clone().ok_or_else(unknown),
                Some("key") => p.keys.first().cloned().ok_or_else(unknown),
                Some("unusable-key") => p.unusable_keys.first().cloned().ok_or_else(unknown),
                _ => Err(unknown()),
            }
        }
    }
}

/// The fixture field a member carries (`""`: the cluster ID), by member name, in requests and
/// responses alike; None for a member that carries no fixture value.
pub fn member_field(member: &str) -> Option<&'static str> {
    Some(match member {
        "CloudHsmClusterId" => "",
        "TrustAnchorCertificate" => "anchor",
        "KeyStorePassword" => "password",
        "RawSecretAccessKey" => "secret",
        "AccessKeyId" => "access-key-id",
        "XksProxyUriEndpoint" | "UriEndpoint" => "endpoint",
        "XksProxyUriPath" | "UriPath" => "path",
        "XksProxyVpcEndpointServiceName" | "VpcEndpointServiceName" => "vpc-service",
        "XksKeyId" => "unusable-key",
        _ => return None,
    })
}

/// The reference to `field` of `role` (`""`: the role itself, a cluster's ID).
pub fn reference(role: &Role, field: &str) -> String {
    if field.is_empty() {
        role.to_string()
    } else {
        format!("{role}.{field}")
    }
}

/// The fields of a role's backend that can stand in a request or a response, in the order
/// placeholders prefer them.
pub fn fields(fixtures: &Fixtures, role: &Role) -> &'static [&'static str] {
    match backend(fixtures, role) {
        Ok(Backend::Cluster(_)) => &["", "anchor", "password"],
        Ok(Backend::Proxy { .. }) => &[
            "endpoint",
            "path",
            "access-key-id",
            "secret",
            "vpc-service",
            "key",
            "unusable-key",
        ],
        Err(_) => &[],
    }
}

/// Whether a field is a secret (a history holds a masking token in its place).
pub fn is_secret(field: &str) -> bool {
    field == "password" || field == "secret"
}

/// What a snapshot shows for the value of a reference: `[ROLE]`, `[ROLE.FIELD]`, and for a
/// secret `[secret=ROLE]`.
pub fn placeholder(reference: &str) -> String {
    match reference.rsplit_once('.') {
        Some((role, field)) if role.contains(':') && is_secret(field) => {
            format!("[secret={role}]")
        }
        _ => format!("[{reference}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_role_has_a_builtin_player() {
        let f = Fixtures::builtin();
        let roles = [
            "cluster:healthy",
            "cluster:related",
            "cluster:unrelated",
            "cluster:not-active",
            "cluster:deleted",
            "cluster:no-hsms",
            "cluster:invalid-configuration",
            "cluster:fails-CLUSTER_NOT_FOUND",
            "cluster:fails-USER_LOCKED_OUT",
            "cluster:fails-SUBNET_NOT_FOUND",
            "xks:public",
            "xks:public-2",
            "xks:vpc",
            "xks:unreachable",
            "xks:times-out",
            "xks:rejects-credentials",
            "xks:access-denied",
            "xks:invalid-response",
            "xks:bad-tls",
            "xks:invalid-configuration",
            "xks:vpc-service-not-found",
            "xks:vpc-service-invalid-configuration",
            "xks:unreachable-at-create",
            "xks:invalid-response-at-create",
        ];
        let mut players = std::collections::BTreeSet::new();
        for role in roles {
            let b = backend(&f, role).unwrap_or_else(|e| panic!("{e}"));
            assert!(players.insert(b.physical()), "{role} shares its backend");
        }
    }

    #[test]
    fn roles_pick_backends_by_what_they_do() {
        let f = Fixtures::builtin();
        let id = |r: &str| value(&f, r).unwrap();
        assert_eq!(id("cluster:healthy"), "cluster-healthyaaaaa");
        assert_eq!(id("cluster:related"), "cluster-relatedaaaaa");
        assert_eq!(id("cluster:unrelated"), "cluster-healthybbbbb");
        assert_eq!(id("cluster:no-hsms"), "cluster-nohsmsaaaaaa");
        assert_eq!(
            id("xks:times-out.endpoint"),
            "https://xks-slow.example.test"
        );
        assert_eq!(
            id("xks:vpc.vpc-service"),
            "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f6a7b8"
        );
        assert_eq!(
            backend(&f, "xks:vpc-service-not-found").unwrap(),
            Backend::Proxy {
                index: 10,
                vpc: true
            }
        );
    }

    #[test]
    fn missing_and_unknown_roles_say_so() {
        let f = Fixtures::default();
        assert!(
            backend(&f, "cluster:healthy")
                .unwrap_err()
                .contains("no fixture plays")
        );
        assert!(backend(&f, "hsm:x").unwrap_err().contains("unknown role"));
        let b = Fixtures::builtin();
        assert!(
            value(&b, "cluster:healthy.colour")
                .unwrap_err()
                .contains("no field")
        );
        assert!(value(&b, "xks:public.vpc-service").is_err());
    }

    #[test]
    fn placeholders_name_roles_and_secrets_by_role() {
        assert_eq!(placeholder("cluster:healthy"), "[cluster:healthy]");
        assert_eq!(
            placeholder("cluster:healthy.anchor"),
            "[cluster:healthy.anchor]"
        );
        assert_eq!(
            placeholder("cluster:healthy.password"),
            "[secret=cluster:healthy]"
        );
        assert_eq!(placeholder("xks:public-2.secret"), "[secret=xks:public-2]");
        assert_eq!(reference("xks:vpc", "path"), "xks:vpc.path");
        assert_eq!(reference("cluster:related", ""), "cluster:related");
        assert_eq!(member_field("UriPath"), Some("path"));
        assert_eq!(member_field("CustomKeyStoreName"), None);
    }
}
