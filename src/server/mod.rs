//! The hardened HTTP layer both reference servers (`ckscheck serve`, `ckscheck xks serve`) run
//! on: one accept loop for HTTP/1.1 and HTTP/2 (optionally over TLS), the same timeouts on every
//! protocol, capped bodies, no panic escapes a handler, and graceful shutdown.
//!
//! A server supplies a [`Handler`] and its [`Limits`]; its handler reads bodies with
//! [`read_body`] and maps a [`BodyError`] to its own error shape.

mod accept;
mod body;
mod limits;
mod watchdog;

pub use accept::{Handler, serve};
pub use body::{BodyError, read_body};
pub use limits::Limits;

/// The body type of every answer the layer sends.
pub type Body = http_body_util::Full<bytes::Bytes>;
