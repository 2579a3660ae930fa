//! ckscheck: a conformance harness for the AWS KMS custom key store API and the XKS proxy API.

pub mod coverage;
pub mod deviation;
pub mod emulator;
#[path = "gen/mod.rs"]
pub mod generate;
pub mod history;
pub mod model;
pub mod oracle;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod sigv4;
pub mod spec;
pub mod suite;
pub mod xks;
