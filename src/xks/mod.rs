//! The XKS proxy API: its client (SigV4 with signing name `kms-xks-proxy`, HTTPS via rustls),
//! and the certification checks (`ckscheck xks run`). The reference proxy (`ckscheck xks serve`)
//! lives apart, in `crate::proxy`: a certifier never imports the server it judges.

pub mod checks;
pub mod client;
pub mod crypto;
pub mod reproduce;
pub mod run;
pub mod selftest;
#[cfg(test)]
mod separation;
pub mod tls;

/// Sent by ckscheck's reference proxy on every answer: the milliseconds of delay it added on
/// purpose (a planted slow proxy). The reference emulator times a probe of such a proxy by
/// this, not by its clock, so that a loaded machine cannot turn a healthy answer into a
/// time-out; any other proxy is timed by the clock.
pub const REFERENCE_DELAY_HEADER: &str = "x-ckscheck-delay-ms";

/// How long KMS waits for one XKS call before it fails the KMS request.
pub const KMS_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

pub use client::{RawRequest, SendError, Signing, XksClient, XksReply, XksTarget};
