//! The bounds every connection and request is held to.

use std::time::Duration;

/// Timeouts and sizes enforced on HTTP/1.1 and HTTP/2 alike. `Limits::default()` documents the
/// bounds the reference servers run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's head: the HTTP/1.1 header read timeout,
    /// the TLS handshake timeout, the HTTP/2 keep-alive ping interval and ack timeout, and how
    /// long a connection may sit with no request in flight (idle, or sending an incomplete head,
    /// on either protocol) before it is closed. Default 10 s.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's whole body once its head has arrived
    /// (HTTP/1.1 and HTTP/2). Default 10 s.
    pub body_timeout: Duration,
    /// Largest request head: HTTP/1.1 read buffer while parsing the head (431 or a closed
    /// connection beyond it), HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1.1 request (431 beyond it); HTTP/2 header lists are
    /// bounded by `max_header_bytes`. Default 100.
    pub max_headers: usize,
    /// Most concurrent HTTP/2 streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    /// Default 100.
    pub max_h2_streams: u32,
    /// Largest request body: 413 beyond it, decided from `Content-Length` before any body byte
    /// is read, or as soon as a chunked/unsized body passes the cap. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long requests in flight may take to finish once the server stops. Default 5 s.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_h2_streams: 100,
            max_body_bytes: 1024 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// The default sizes with every timeout (header, body, drain) set to `timeout`: for tests
    /// that must see a slow client cut off quickly.
    pub fn with_timeouts(timeout: Duration) -> Limits {
        Limits {
            header_timeout: timeout,
            body_timeout: timeout,
            drain_timeout: timeout,
            ..Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_bounds_and_with_timeouts_keeps_the_sizes() {
        let d = Limits::default();
        assert_eq!(d.header_timeout, Duration::from_secs(10));
        assert_eq!(d.body_timeout, Duration::from_secs(10));
        assert_eq!((d.max_header_bytes, d.max_headers), (65536, 100));
        assert_eq!((d.max_h2_streams, d.max_body_bytes), (100, 1 << 20));
        let quick = Limits::with_timeouts(Duration::from_millis(200));
        assert_eq!(quick.header_timeout, Duration::from_millis(200));
        assert_eq!(quick.body_timeout, Duration::from_millis(200));
        assert_eq!(quick.max_body_bytes, d.max_body_bytes);
    }
}
