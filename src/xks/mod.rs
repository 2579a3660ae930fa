//! The XKS proxy API: its client (SigV4 with signing name `kms-xks-proxy`, HTTPS via rustls),
//! the certification checks (`ckscheck xks run`) and the reference proxy (`ckscheck xks serve`).

pub mod client;
pub mod crypto;
pub mod proxy;
pub mod tls;

pub use client::{RawRequest, SendError, Signing, XksClient, XksReply, XksTarget};
