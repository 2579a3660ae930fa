//! Real XKS proxies for an embedded run: every fixture entry that the reference proxy can play
//! without changing what the model predicts gets a proxy of its own on loopback (TLS from one
//! throw-away CA, the entry's URI path and credential, the faults that make it behave as the
//! entry says), and the entry gets its `address` and `ca_cert`; an entry that is unreachable
//! throughout gets a port that refuses connections. The emulator then reaches real TCP, TLS,
//! SigV4 and health answers when KMS would check the proxy; the oracle still predicts from the
//! entry.
//!
//! What the model predicts fixes what can be played. It checks a store's path and credential
//! before the behaviour, except for an unreachable, timing-out or bad-TLS proxy, which preempts
//! them; the reference proxy answers 404 for an unknown path before any fault, and 401 for a wrong
//! credential before any fault but a moved prefix. So at Create/Update a proxy cannot play one
//! that is unreachable, has a moved prefix, or (unless it is slow throughout) times out; at
//! connect a store's settings are the ones its last check accepted, so any fault confined to the
//! connect's health check plays the entry faithfully.

use std::sync::Arc;

use crate::model::fixtures::XksProxy;
use crate::model::{Fixtures, XksBehaviour};
use crate::proxy::{self, KeyDef, Prefix, ProxyConfig, ProxyFault, RunningProxy};
use crate::sigv4::Credential;
use crate::xks::tls::Authority;

/// The KMS operations whose health checks are KMS's Create/Update check of a proxy.
const CREATE_OPERATIONS: [&str; 2] = ["CreateCustomKeyStore", "UpdateCustomKeyStore"];
/// The KMS operation whose health check is a connect.
const CONNECT_OPERATION: &str = "ConnectCustomKeyStore";

/// What plays one fixture entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Player {
    /// A reference proxy with these faults.
    Proxy(ProxyPlan),
    /// A loopback port that refuses connections: nothing is there.
    ClosedPort,
}

/// How the reference proxy plays one fixture entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlan {
    /// The faults it plants.
    pub faults: Vec<ProxyFault>,
    /// The KMS operations whose health checks get them (None: every request).
    pub fault_operations: Option<Vec<String>>,
}

/// The reference proxies of a run; they serve until this is dropped.
pub struct RealProxies {
    /// The endpoints of the entries they play, in fixture order.
    pub played: Vec<String>,
    /// Entries a proxy could play but would not start for (endpoint, why): they stay simulated.
    pub refused: Vec<(String, String)>,
    running: Vec<RunningProxy>,
    /// Bound, never listening: connecting gets a reset, and no one else gets the port.
    closed: Vec<tokio::net::TcpSocket>,
}

impl RealProxies {
    /// Stops every proxy, letting requests in flight finish.
    pub async fn stop(self) {
        for p in self.running {
            p.stop().await;
        }
    }
}

/// The fault that makes the reference proxy's health answer show `behaviour` (None: no fault
/// needed); Err where no answer of a reachable proxy can (a certificate is presented before the
/// request is seen; VPC endpoint services are not the proxy's).
fn fault_for(behaviour: XksBehaviour) -> Result<Option<ProxyFault>, ()> {
    match behaviour {
        XksBehaviour::Connects => Ok(None),
        XksBehaviour::Unreachable => Ok(Some(ProxyFault::HealthUnavailable)),
        XksBehaviour::TimesOut => Ok(Some(ProxyFault::Slow)),
        XksBehaviour::RejectsCredentials => Ok(Some(ProxyFault::RejectsCredentials)),
        XksBehaviour::AccessDenied => Ok(Some(ProxyFault::DeniesAccess)),
        XksBehaviour::InvalidResponse => Ok(Some(ProxyFault::HealthMissingMember)),
        XksBehaviour::InvalidConfiguration => Ok(Some(ProxyFault::InvalidUriPath)),
        XksBehaviour::BadTls
        | XksBehaviour::VpcServiceNotFound
        | XksBehaviour::VpcServiceInvalidConfiguration => Err(()),
    }
}

/// What plays `entry`; None where nothing can without changing what the model predicts (the
/// entry stays simulated).
pub fn plan(entry: &XksProxy) -> Option<Player> {
    use XksBehaviour::{InvalidConfiguration, TimesOut, Unreachable};
    if entry.address.is_some() {
        return None;
    }
    let (create, connect) = (entry.behaviour_at_create, entry.behaviour);
    if (create, connect) == (Unreachable, Unreachable) {
        return Some(Player::ClosedPort);
    }
    let at_create = fault_for(create).ok()?;
    let at_connect = fault_for(connect).ok()?;
    let operations = |ops: &[&str]| Some(ops.iter().map(|o| o.to_string()).collect());
    let (faults, fault_operations) = match (at_create, at_connect) {
        (None, None) => (Vec::new(), None),
        // A fleet reported UNAVAILABLE still answers 404 to a wrong path first; a moved prefix
        // answers 404 where the model checks the credential first.
        _ if matches!(create, Unreachable | InvalidConfiguration) => return None,
        (a, b) if a == b => (a.into_iter().collect(), None),
        (None, Some(f)) => (vec![f], operations(&[CONNECT_OPERATION])),
        // A confined delay does not slow the 404 a wrong path gets.
        (Some(_), None) if create == TimesOut => return None,
        (Some(f), None) => (vec![f], operations(&CREATE_OPERATIONS)),
        // Broken one way at Create and another at connect: one fault set cannot do both.
        (Some(_), Some(_)) => return None,
    };
    Some(Player::Proxy(ProxyPlan {
        faults,
        fault_operations,
    }))
}

/// Starts a reference proxy for every entry of `fixtures` that one can play, signing checks
/// for `region`, and points those entries at them; an error only when none can be set up.
pub async fn start(fixtures: &mut Fixtures, region: &str) -> Result<RealProxies, String> {
    let mut proxies = RealProxies {
        played: Vec::new(),
        refused: Vec::new(),
        running: Vec::new(),
        closed: Vec::new(),
    };
    let mut authority: Option<Arc<Authority>> = None;
    for entry in &mut fixtures.xks_proxies {
        let Some(player) = plan(entry) else {
            continue;
        };
        let ca = match &authority {
            Some(ca) => Arc::clone(ca),
            None => Arc::clone(
                authority.insert(Arc::new(Authority::generate("ckscheck run: XKS proxy CA")?)),
            ),
        };
        let plan = match player {
            Player::ClosedPort => {
                let (socket, address) =
                    closed_port().map_err(|e| format!("cannot reserve a closed port: {e}"))?;
                entry.address = Some(address);
                entry.ca_cert = Some(ca.cert_pem.clone());
                proxies.played.push(entry.uri_endpoint.clone());
                proxies.closed.push(socket);
                continue;
            }
            Player::Proxy(plan) => plan,
        };
        let Some(host) = entry.uri_endpoint.strip_prefix("https://") else {
            continue;
        };
        let mut config = ProxyConfig::reference(host);
        config.authority = Some(ca.clone());
        config.region = region.to_string();
        config.prefixes = vec![Prefix {
            uri_path: entry.uri_path.clone(),
            credentials: vec![Credential::new(
                entry.access_key_id.clone(),
                entry.secret_access_key.clone(),
            )],
        }];
        config.keys = keys_of(entry);
        config.faults = plan.faults;
        config.fault_operations = plan.fault_operations;
        // A host name or key id the proxy refuses leaves the entry simulated, not the run failed.
        let running = match proxy::start_on_loopback(config).await {
            Ok(running) => running,
            Err(why) => {
                proxies.refused.push((entry.uri_endpoint.clone(), why));
                continue;
            }
        };
        entry.address = Some(running.addr);
        entry.ca_cert = Some(ca.cert_pem.clone());
        proxies.played.push(entry.uri_endpoint.clone());
        proxies.running.push(running);
    }
    Ok(proxies)
}

/// A loopback port bound without listening (and without SO_REUSEADDR): connections to it are
/// refused, and it is handed to no one else while the socket lives.
fn closed_port() -> std::io::Result<(tokio::net::TcpSocket, std::net::SocketAddr)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
    let address = socket.local_addr()?;
    Ok((socket, address))
}

/// The entry's external keys: usable ones encrypt and decrypt, unusable ones are disabled.
fn keys_of(entry: &XksProxy) -> Vec<KeyDef> {
    let usable = entry
        .keys
        .iter()
        .map(|id| KeyDef::new(id, &["ENCRYPT", "DECRYPT"], true));
    let unusable = entry
        .unusable_keys
        .iter()
        .map(|id| KeyDef::new(id, &["ENCRYPT", "DECRYPT"], false));
    usable.chain(unusable).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_create: XksBehaviour, at_connect: XksBehaviour) -> XksProxy {
        let mut e = Fixtures::builtin()
            .proxy("https://xks-ok.example.test")
            .expect("xks-ok")
            .clone();
        e.behaviour_at_create = at_create;
        e.behaviour = at_connect;
        e
    }

    fn ops(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn plans_confine_faults_to_the_checks_where_the_entry_misbehaves() {
        use XksBehaviour::*;
        let proxy = |faults: Vec<ProxyFault>, fault_operations| {
            Some(Player::Proxy(ProxyPlan {
                faults,
                fault_operations,
            }))
        };
        assert_eq!(plan(&entry(Connects, Connects)), proxy(vec![], None));
        assert_eq!(
            plan(&entry(Connects, TimesOut)),
            proxy(vec![ProxyFault::Slow], ops(&["ConnectCustomKeyStore"]))
        );
        assert_eq!(
            plan(&entry(Connects, Unreachable)),
            proxy(
                vec![ProxyFault::HealthUnavailable],
                ops(&["ConnectCustomKeyStore"])
            )
        );
        assert_eq!(
            plan(&entry(InvalidResponse, InvalidResponse)),
            proxy(vec![ProxyFault::HealthMissingMember], None)
        );
        assert_eq!(
            plan(&entry(TimesOut, TimesOut)),
            proxy(vec![ProxyFault::Slow], None)
        );
        assert_eq!(
            plan(&entry(RejectsCredentials, Connects)),
            proxy(
                vec![ProxyFault::RejectsCredentials],
                ops(&["CreateCustomKeyStore", "UpdateCustomKeyStore"])
            )
        );
        assert_eq!(
            plan(&entry(Unreachable, Unreachable)),
            Some(Player::ClosedPort)
        );
        // What no reachable proxy's answer can show where the model would see it, or two
        // different breakages, stay simulated.
        assert_eq!(plan(&entry(Connects, BadTls)), None);
        assert_eq!(plan(&entry(Connects, VpcServiceNotFound)), None);
        assert_eq!(plan(&entry(AccessDenied, TimesOut)), None);
        assert_eq!(plan(&entry(TimesOut, Connects)), None);
        assert_eq!(plan(&entry(Unreachable, Connects)), None);
        assert_eq!(plan(&entry(Unreachable, AccessDenied)), None);
        assert_eq!(
            plan(&entry(InvalidConfiguration, InvalidConfiguration)),
            None
        );
        assert_eq!(
            plan(&entry(Connects, InvalidConfiguration)),
            proxy(
                vec![ProxyFault::InvalidUriPath],
                ops(&["ConnectCustomKeyStore"])
            )
        );
        // An entry with its own real proxy is left alone.
        let mut own = entry(Connects, Connects);
        own.address = Some("127.0.0.1:9".parse().expect("an address"));
        assert_eq!(plan(&own), None);
    }

    #[tokio::test]
    async fn an_entry_the_proxy_cannot_serve_stays_simulated() {
        let mut fixtures = Fixtures::builtin();
        fixtures
            .xks_proxies
            .retain(|p| p.uri_endpoint == "https://xks-ok.example.test");
        fixtures.xks_proxies[0].keys = vec!["no spaces allowed in key ids".into()];
        let proxies = start(&mut fixtures, "us-east-1").await.expect("no error");
        assert_eq!(proxies.played, Vec::<String>::new());
        assert_eq!(proxies.refused.len(), 1, "{:?}", proxies.refused);
        assert_eq!(fixtures.xks_proxies[0].address, None);
    }

    #[tokio::test]
    async fn the_builtin_entries_get_proxies_except_where_none_can_play_them() {
        let mut fixtures = Fixtures::builtin();
        let proxies = start(&mut fixtures, "us-east-1")
            .await
            .expect("the proxies start");
        let simulated: Vec<&str> = fixtures
            .xks_proxies
            .iter()
            .filter(|p| p.address.is_none())
            .map(|p| p.uri_endpoint.as_str())
            .collect();
        assert_eq!(
            simulated,
            [
                "https://xks-badtls.example.test",
                "https://xks-vpc-gone.example.test",
                "https://xks-vpc-broken.example.test",
            ]
        );
        assert_eq!(proxies.played.len(), fixtures.xks_proxies.len() - 3);
        assert_eq!(proxies.refused, []);
        // The entry unreachable throughout refuses connections for real.
        let dead = fixtures
            .proxy("https://xks-dead.example.test")
            .and_then(|p| p.address)
            .expect("xks-dead is played");
        let refused = tokio::net::TcpStream::connect(dead).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(
            fixtures
                .xks_proxies
                .iter()
                .all(|p| p.address.is_some() == p.ca_cert.is_some())
        );
        proxies.stop().await;
    }
}
