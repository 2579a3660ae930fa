//! ckscheck: a conformance harness for the AWS KMS custom key store API and the XKS proxy API.

pub mod emulator;
pub mod model;
pub mod runner;
pub mod sigv4;
pub mod spec;
