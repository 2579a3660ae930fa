//! The proxy seam: what an XKS proxy does when KMS checks it (Create, Update, Connect).
//!
//! A simulated proxy does what its fixture entry says. A proxy entry with an `address` is
//! played by a real proxy. For Create and Update, whose check is part of the call, the emulator
//! asks the model which proxy settings the request would check ([`Model::probe_target_of`], a
//! dry run), calls that proxy itself (outside the model, with a clock), and applies the request
//! with what it saw ([`Model::with_observation`]). A connect, which KMS answers at once, leaves the
//! store CONNECTING with the call to make ([`Model::deferring_connects`]) until the emulator
//! brings the proxy's answer ([`Model::resolve_connect`]). Without an observation the model
//! still predicts from the fixture entry, as the oracle does: an entry for a real proxy states
//! what that proxy is expected to do.

use std::net::SocketAddr;

use super::Model;
use super::fixtures::{XksBehaviour, XksProxy};
use super::store::{Secret, XksSettings};

/// The proxy settings KMS's check would call a real proxy with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The store's `XksProxyUriEndpoint` (`https://` + host name).
    pub uri_endpoint: String,
    /// The store's URI path.
    pub uri_path: String,
    /// The store's access key ID.
    pub access_key_id: String,
    /// The store's secret access key. A secret: never printed.
    pub secret_access_key: Secret,
    /// Where the real proxy listens.
    pub address: SocketAddr,
    /// PEM text of the CA its certificate must chain to (none: the system roots).
    pub ca_cert: Option<String>,
    /// True for the check of Create and Update, false for a connect.
    pub at_create: bool,
}

/// What the emulator saw when it called a real proxy for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksObservation {
    /// The settings it called the proxy with.
    pub target: ProbeTarget,
    /// What the proxy did.
    pub behaviour: XksBehaviour,
}

/// Where [`Model::probe`] takes a real proxy's behaviour from.
#[derive(Debug, Clone, Default)]
pub(super) enum Seam {
    /// From the fixture entry (the oracle's prediction; the emulator's without an observation).
    #[default]
    Simulate,
    /// From this observation, when the settings probed are the ones it was made with.
    Observed(XksObservation),
    /// From the fixture entry, noting the first real proxy a probe would call (a dry run).
    Record(Option<ProbeTarget>),
    /// A connect's call to a real proxy is not made now: the store waits, CONNECTING, for
    /// [`Model::resolve_connect`]. Holds the calls deferred so far (Create and Update
    /// simulate: their check is part of the call).
    Defer(Vec<ProbeTarget>),
}

impl Model {
    /// The first real proxy `run` makes a copy of this model check, if any (a dry run of
    /// whatever drives the model, e.g. the emulator's planted faults around `apply`).
    pub fn probe_target_of(&self, run: impl FnOnce(&mut Model)) -> Option<ProbeTarget> {
        if !self.fixtures.has_real_proxies() {
            return None;
        }
        let mut copy = self.clone();
        copy.seam = Seam::Record(None);
        run(&mut copy);
        match copy.seam {
            Seam::Record(target) => target,
            _ => None,
        }
    }

    /// Runs `run` on this model with `observed` as what a real proxy did; afterwards the
    /// model forgets it. A probe of other settings than the observed ones simulates.
    pub fn with_observation<R>(
        &mut self,
        observed: Option<XksObservation>,
        run: impl FnOnce(&mut Model) -> R,
    ) -> R {
        let before = std::mem::replace(
            &mut self.seam,
            observed.map_or(Seam::Simulate, Seam::Observed),
        );
        let result = run(self);
        self.seam = before;
        result
    }

    /// Runs `run` (a request being applied) with each connect's call to a real proxy deferred,
    /// as KMS connects asynchronously: such a store stays CONNECTING until
    /// [`Model::resolve_connect`] brings what the proxy did. Returns what `run` returned and
    /// the calls to make.
    pub fn deferring_connects<R>(
        &mut self,
        run: impl FnOnce(&mut Model) -> R,
    ) -> (R, Vec<ProbeTarget>) {
        let before = std::mem::replace(&mut self.seam, Seam::Defer(Vec::new()));
        let result = run(self);
        let deferred = match std::mem::replace(&mut self.seam, before) {
            Seam::Defer(deferred) => deferred,
            _ => Vec::new(),
        };
        (result, deferred)
    }

    /// Completes the connect that waits for this call to a real proxy with what the proxy did
    /// (FAILED with its error code, or CONNECTED), at the connect's due time or now if that has
    /// passed. A connect no longer waiting (disconnected meanwhile, or the model was reset)
    /// ignores it.
    pub fn resolve_connect(&mut self, observed: XksObservation) {
        let waiting = self.stores.values_mut().find_map(|store| {
            store
                .pending
                .as_mut()
                .filter(|p| p.awaiting.as_ref() == Some(&observed.target))
        });
        if let Some(pending) = waiting {
            let error_code = super::connection::xks_connect_error(observed.behaviour);
            pending.state = super::connection::connect_end(error_code);
            pending.error_code = error_code.map(str::to_string);
            pending.awaiting = None;
        }
    }

    /// How many calls to real proxies have been deferred so far (0 when none can be).
    pub(super) fn deferred_len(&self) -> usize {
        match &self.seam {
            Seam::Defer(deferred) => deferred.len(),
            _ => 0,
        }
    }

    /// The call deferred after the first `n`, if one was.
    pub(super) fn deferred_after(&self, n: usize) -> Option<ProbeTarget> {
        match &self.seam {
            Seam::Defer(deferred) => deferred.get(n).cloned(),
            _ => None,
        }
    }

    /// What the proxy named by these settings does when KMS calls it.
    pub(super) fn probe(&mut self, x: &XksSettings, at_create: bool) -> XksBehaviour {
        let Some(proxy) = self.fixtures.proxy(&x.uri_endpoint) else {
            return XksBehaviour::Unreachable;
        };
        if let Some(address) = proxy.address {
            let target = ProbeTarget {
                uri_endpoint: x.uri_endpoint.clone(),
                uri_path: x.uri_path.clone(),
                access_key_id: x.access_key_id.clone(),
                secret_access_key: x.secret_access_key.clone(),
                address,
                ca_cert: proxy.ca_cert.clone(),
                at_create,
            };
            match &mut self.seam {
                Seam::Observed(o) if o.target == target => return o.behaviour,
                Seam::Record(slot @ None) => *slot = Some(target),
                // The placeholder answer never shows: the store waits for the real one.
                Seam::Defer(deferred) if !at_create => {
                    deferred.push(target);
                    return XksBehaviour::Connects;
                }
                _ => {}
            }
        }
        simulate(proxy, x, at_create)
    }
}

/// What a simulated proxy does for a store with these settings.
fn simulate(proxy: &XksProxy, x: &XksSettings, at_create: bool) -> XksBehaviour {
    let behaviour = if at_create {
        proxy.behaviour_at_create
    } else {
        proxy.behaviour
    };
    if matches!(
        behaviour,
        XksBehaviour::Unreachable | XksBehaviour::TimesOut | XksBehaviour::BadTls
    ) {
        return behaviour;
    }
    if x.uri_path != proxy.uri_path {
        return XksBehaviour::InvalidConfiguration;
    }
    if x.access_key_id != proxy.access_key_id || x.secret_access_key.0 != proxy.secret_access_key {
        return XksBehaviour::RejectsCredentials;
    }
    behaviour
}
