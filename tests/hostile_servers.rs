//! Hostile bytes against both reference servers (the KMS emulator and the reference XKS proxy,
//! plain HTTP), each started in-process on loopback on the shared layer `ckscheck::server`.
//!
//! Malformed HTTP/1.1 goes over raw `tokio::net::TcpStream`s; the HTTP/2 cases use a raw
//! preface or the `h2` crate. The servers of the malformed cases run with
//! `Limits::with_timeouts(T)` (T = 500 ms) so slow clients are cut off quickly.
//!
//! The bound of every malformed case: the server answers with a 4xx only, and closes the
//! connection, within `BOUND` = T + 2 s of the last byte sent. After every case a well-formed
//! request on a new connection (a SigV4-signed DescribeCustomKeyStores for the emulator, which
//! verifies signatures here; a signed GetKeyMetadata for the proxy) still gets a 200.
//!
//! The fuzz tests send proptest-generated requests (random methods, targets or paths, JSON
//! documents with the operations' member names holding random values, random headers; signed,
//! so they reach dispatch) and random raw bytes: no answer is a 5xx except the documented ones
//! (a 5xx error type the KMS spec declares; the proxy's 501 UnsupportedOperationException for
//! input over its limits), no connection dies, and the server still serves afterwards. By
//! default 200 requests and 50 raw byte strings per server; `HOSTILE_CASES=N` changes the
//! request count, and the ignored `fuzz_long_*` tests run 100 000 requests and 5 000 raw byte
//! strings per server (`cargo test --release --test hostile_servers -- --ignored`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ckscheck::emulator::{EmulatorConfig, RunningEmulator, start_on_loopback};
use ckscheck::model::ModelConfig;
use ckscheck::proxy::{self, DEFAULT_CREDENTIAL, DEFAULT_URI_PATH, KEY_MAIN, ProxyConfig};
use ckscheck::server::Limits;
use ckscheck::sigv4::{Credential, Signable, Signer};
use ckscheck::spec::Spec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The timeouts of the servers the malformed cases run against.
const T: Duration = Duration::from_millis(500);
/// How long a malformed case may take to be answered and closed.
const BOUND: Duration = Duration::from_millis(2500);
/// The body cap both servers run with (the documented default).
const CAP: usize = 1024 * 1024;
/// The emulator's test credential (it verifies signatures in these tests).
const ACCESS_KEY: &str = "AKIDHOSTILETESTAAAAA";
const SECRET: &str = "hostileTestSecretAccessKeyAAAAAAAAAAAAAAA";
const REGION: &str = "us-east-1";

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Emulator,
    Proxy,
}

/// A running server of either kind.
enum Running {
    Emulator(RunningEmulator),
    Proxy(proxy::RunningProxy),
}

/// A server under test: its address and how to sign for it.
struct Server {
    kind: Kind,
    addr: SocketAddr,
    running: Option<Running>,
}

impl Server {
    /// Starts a `kind` server on loopback with `limits` (plain HTTP).
    async fn start(kind: Kind, limits: Limits) -> Server {
        match kind {
            Kind::Emulator => {
                let config = EmulatorConfig {
                    model: ModelConfig {
                        connect_delay_ms: 0,
                        ..ModelConfig::default()
                    },
                    verify_sigv4: Some(vec![emulator_credential()]),
                    read_timeout: limits.header_timeout,
                    max_body_bytes: limits.max_body_bytes,
                    ..EmulatorConfig::default()
                };
                let running = start_on_loopback(config)
                    .await
                    .expect("the emulator starts");
                Server {
                    kind,
                    addr: running.addr,
                    running: Some(Running::Emulator(running)),
                }
            }
            Kind::Proxy => {
                let mut config = ProxyConfig::reference("localhost");
                config.plain_http = true;
                config.limits = limits;
                let running = proxy::start_on_loopback(config)
                    .await
                    .expect("the proxy starts");
                Server {
                    kind,
                    addr: running.addr,
                    running: Some(Running::Proxy(running)),
                }
            }
        }
    }

    async fn stop(mut self) {
        let stopped = async {
            match self.running.take() {
                Some(Running::Emulator(e)) => e.stop().await,
                Some(Running::Proxy(p)) => p.stop().await,
                None => {}
            }
        };
        timeout(Duration::from_secs(10), stopped)
            .await
            .expect("the server stops in time");
    }

    /// The path a well-formed request goes to.
    fn path(&self) -> &'static str {
        match self.kind {
            Kind::Emulator => "/",
            Kind::Proxy => "/ckscheck/kms/xks/v1/keys/ckscheck-aes-1/metadata",
        }
    }

    /// The signed headers (host, content-type, target, authorization, date) of a request with
    /// this method, path, target (emulator) and body.
    fn signed(&self, method: &str, path: &str, target: &str, body: &[u8]) -> Vec<(String, String)> {
        let host = self.addr.to_string();
        let (content_type, service, credential) = match self.kind {
            Kind::Emulator => ("application/x-amz-json-1.1", "kms", emulator_credential()),
            Kind::Proxy => (
                "application/json",
                "kms-xks-proxy",
                DEFAULT_CREDENTIAL.clone(),
            ),
        };
        let mut headers = vec![("host", host.as_str()), ("content-type", content_type)];
        if self.kind == Kind::Emulator {
            headers.push(("x-amz-target", target));
        }
        let signer = Signer {
            credential: &credential,
            region: REGION,
            service,
            time: SystemTime::now(),
        };
        let request = Signable {
            method,
            uri: path,
            headers: &headers,
            body,
        };
        let (added, _) = signer.sign(&request).expect("signing works");
        let mut out: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.extend(added);
        out
    }

    /// A well-formed, signed request that must get a 200, as raw HTTP/1.1 bytes.
    fn well_formed(&self) -> Vec<u8> {
        let body = match self.kind {
            Kind::Emulator => b"{}".to_vec(),
            Kind::Proxy => xks_metadata_body().to_string().into_bytes(),
        };
        let headers = self.signed(
            "POST",
            self.path(),
            "TrentService.DescribeCustomKeyStores",
            &body,
        );
        let mut out = format!("POST {} HTTP/1.1\r\n", self.path());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ));
        let mut out = out.into_bytes();
        out.extend(body);
        out
    }

    /// The head of an unsigned POST to the well-formed path, with these extra header lines.
    fn head(&self, extra: &str) -> String {
        format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             x-amz-target: TrentService.DescribeCustomKeyStores\r\n{extra}\r\n",
            self.path(),
            self.addr
        )
    }

    /// Asserts a well-formed request on a new connection gets a 200.
    async fn assert_serves(&self, after: &str) {
        let mut stream = connect(self.addr).await;
        stream
            .write_all(&self.well_formed())
            .await
            .expect("write the request");
        let (statuses, closed) = answers(&mut stream, BOUND).await;
        assert!(
            closed && statuses == [200],
            "{:?} after {after}: a well-formed request got {statuses:?} (closed: {closed})",
            self.kind
        );
    }
}

fn emulator_credential() -> Credential {
    Credential::new(ACCESS_KEY, SECRET)
}

fn xks_metadata_body() -> Value {
    json!({"requestMetadata": {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/hostile",
        "kmsOperation": "DescribeKey",
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae"
    }})
}

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(BOUND, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Reads responses until the server closes or `within` passes: the status of each complete
/// response, and whether the connection was closed in time.
async fn answers(stream: &mut TcpStream, within: Duration) -> (Vec<u16>, bool) {
    let mut buf = Vec::new();
    let closed = matches!(
        timeout(within, read_to_end_or_reset(stream, &mut buf)).await,
        Ok(())
    );
    (statuses(&buf), closed)
}

/// Reads until EOF; a reset counts as the end.
async fn read_to_end_or_reset(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The statuses of the Content-Length-framed HTTP/1.1 responses in `buf`.
fn statuses(mut buf: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let Some(status) = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
        else {
            out.push(0);
            break;
        };
        out.push(status);
        let length: usize = head
            .lines()
            .filter_map(|l| l.strip_prefix("content-length:"))
            .find_map(|v| v.trim().parse().ok())
            .unwrap_or(0);
        buf = buf.get(end + 4 + length..).unwrap_or_default();
    }
    out
}

/// Asserts the server answered only 4xx (or nothing) and closed within `BOUND`; the statuses.
async fn assert_refused(server: &Server, case: &str, stream: &mut TcpStream) -> Vec<u16> {
    let started = Instant::now();
    let (statuses, closed) = answers(stream, BOUND).await;
    assert!(
        closed,
        "{:?} {case}: connection still open after {:?} (answers {statuses:?})",
        server.kind,
        started.elapsed()
    );
    assert!(
        statuses.iter().all(|s| (400..500).contains(s)),
        "{:?} {case}: answers {statuses:?}",
        server.kind
    );
    statuses
}

/// Sends `bytes` on a new connection, then holds the connection open.
async fn send(server: &Server, bytes: &[u8]) -> TcpStream {
    let mut stream = connect(server.addr).await;
    // The server may close before it has read everything (that is allowed).
    let _ = stream.write_all(bytes).await;
    stream
}

async fn both(limits: Limits) -> Vec<Server> {
    vec![
        Server::start(Kind::Emulator, limits).await,
        Server::start(Kind::Proxy, limits).await,
    ]
}

// ------------------------------------------------------------------------------------------------
// HTTP/1.1: malformed framing.
// ------------------------------------------------------------------------------------------------

/// Catches a server that hangs on, answers non-4xx to, or dies of: a garbage request line, 100
/// KiB of headers, 10 000 headers, bad chunk sizes, a body longer or shorter than its
/// Content-Length (e.g. `max_headers`/`max_buf_size` removed from the builder, or the body
/// timeout removed: the short body then hangs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http1_gets_a_4xx_or_a_close_and_the_next_request_is_served() {
    for server in both(Limits::with_timeouts(T)).await {
        let many_headers: String = (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect();
        let big_header = format!("x-big: {}\r\n", "a".repeat(100 * 1024));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "a garbage request line",
                b"\x00\xffGARBAGE \x01 lol\r\n\r\n".to_vec(),
            ),
            ("100 KiB of headers", server.head(&big_header).into_bytes()),
            ("10 000 headers", server.head(&many_headers).into_bytes()),
            ("a body longer than its Content-Length", {
                let mut b = server.head("content-length: 10\r\n").into_bytes();
                b.extend_from_slice(&[b'x'; 200]);
                b
            }),
            ("a body shorter than its Content-Length", {
                let mut b = server.head("content-length: 100\r\n").into_bytes();
                b.extend_from_slice(b"{\"short\":");
                b
            }),
            ("a chunk size that is not hex", {
                let mut b = server.head("transfer-encoding: chunked\r\n").into_bytes();
                b.extend_from_slice(b"zz\r\nabc\r\n0\r\n\r\n");
                b
            }),
            ("a chunk size that overflows", {
                let mut b = server.head("transfer-encoding: chunked\r\n").into_bytes();
                b.extend_from_slice(b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n");
                b
            }),
            ("a chunk longer than its size", {
                let mut b = server.head("transfer-encoding: chunked\r\n").into_bytes();
                b.extend_from_slice(b"2\r\nabcdef\r\n0\r\n\r\n");
                b
            }),
            (
                "both Content-Length and chunked",
                server
                    .head("content-length: 5\r\ntransfer-encoding: chunked\r\n")
                    .into_bytes(),
            ),
        ];
        for (case, bytes) in cases {
            let mut stream = send(&server, &bytes).await;
            let statuses = assert_refused(&server, case, &mut stream).await;
            if case.contains("headers") {
                // Refused for its size, before any handler saw it (a handler says 400/401).
                assert!(
                    statuses.iter().all(|s| *s == 431),
                    "{:?} {case}: {statuses:?}",
                    server.kind
                );
            }
            server.assert_serves(case).await;
        }
        server.stop().await;
    }
}

/// Catches a missing header read timeout (hyper's, and the idle watchdog): a client sending one
/// header byte every T/5 holds its connection past `BOUND`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_cut_off_and_others_are_served_meanwhile() {
    for server in both(Limits::with_timeouts(T)).await {
        let head = server.head("content-length: 2\r\n");
        let mut stream = connect(server.addr).await;
        let started = Instant::now();
        let mut cut = false;
        for byte in head.bytes() {
            if stream.write_all(&[byte]).await.is_err() {
                cut = true;
                break;
            }
            let mut probe = [0u8; 1024];
            match timeout(T / 5, stream.read(&mut probe)).await {
                Err(_) => {}
                Ok(Ok(0) | Err(_)) => {
                    cut = true;
                    break;
                }
                Ok(Ok(n)) => {
                    let text = String::from_utf8_lossy(&probe[..n]);
                    assert!(text.starts_with("HTTP/1.1 4"), "{:?}: {text}", server.kind);
                }
            }
            if started.elapsed() > BOUND {
                break;
            }
        }
        assert!(
            cut,
            "{:?}: a slowloris kept its connection for {:?}",
            server.kind,
            started.elapsed()
        );
        assert!(started.elapsed() < BOUND, "{:?}", server.kind);
        server.assert_serves("a slowloris").await;
        server.stop().await;
    }
}

/// Catches a body cap that reads the whole body first (or is gone): a body announced (or
/// streamed chunked) past 1 MiB must get 413 after only part of it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_before_it_is_sent_whole() {
    for server in both(Limits::with_timeouts(Duration::from_secs(5))).await {
        // Announced: 8 MiB; the 413 comes after the head and 4 KiB.
        let announced = 8 * CAP;
        let mut stream = send(
            &server,
            server
                .head(&format!("content-length: {announced}\r\n"))
                .as_bytes(),
        )
        .await;
        stream.write_all(&[b' '; 4096]).await.expect("a few KiB");
        let (statuses, _) = answers(&mut stream, BOUND).await;
        assert_eq!(
            statuses,
            [413],
            "{:?}: Content-Length over the cap",
            server.kind
        );
        server.assert_serves("an announced oversized body").await;

        // Chunked: 64 KiB chunks, one past the cap, then read before sending more.
        let mut stream = send(
            &server,
            server.head("transfer-encoding: chunked\r\n").as_bytes(),
        )
        .await;
        let chunk = [b"10000\r\n".as_slice(), &[b' '; 0x10000], b"\r\n"].concat();
        for _ in 0..=CAP / 0x10000 {
            if stream.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let (statuses, closed) = answers(&mut stream, BOUND).await;
        assert_eq!(statuses, [413], "{:?}: chunked past the cap", server.kind);
        assert!(closed, "{:?}: kept reading an oversized body", server.kind);
        server.assert_serves("a chunked oversized body").await;
        server.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP/2.
// ------------------------------------------------------------------------------------------------

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Catches HTTP/2 without timeouts: a client that sends the preface (or half of it) and then
/// nothing is never disconnected (remove the idle watchdog and the h2 keep-alive: it hangs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_preface_followed_by_nothing_is_disconnected() {
    for server in both(Limits::with_timeouts(T)).await {
        for (case, bytes) in [
            ("an HTTP/2 preface and nothing else", PREFACE),
            ("half an HTTP/2 preface", &PREFACE[..10]),
        ] {
            let started = Instant::now();
            let mut stream = send(&server, bytes).await;
            let mut buf = Vec::new();
            let closed = timeout(BOUND, read_to_end_or_reset(&mut stream, &mut buf)).await;
            assert!(
                closed.is_ok(),
                "{:?} {case}: still open after {:?}",
                server.kind,
                started.elapsed()
            );
            server.assert_serves(case).await;
        }
        server.stop().await;
    }
}

/// An HTTP/2 connection (h2c by prior knowledge) and its driver task.
async fn h2_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = connect(addr).await;
    let (client, connection) = timeout(BOUND, h2::client::handshake(tcp))
        .await
        .expect("h2 handshake in time")
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Catches an HTTP/2 body read without a timeout (the stream hangs) and an h2 body cap that
/// waits for the whole body: headers whose body never comes get a 4xx within `BOUND`; an h2
/// request announcing 8 MiB gets 413 after 4 KiB; then the same h2 connection serves a
/// well-formed signed request (catches a server that no longer speaks h2c).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_whose_body_never_comes_gets_a_4xx() {
    for server in both(Limits::with_timeouts(T)).await {
        let mut client = h2_client(server.addr).await;
        let uri = format!("http://{}{}", server.addr, server.path());
        for (case, length, sent) in [
            ("an h2 body that never comes", 100usize, 0usize),
            ("an h2 body over the cap", 8 * CAP, 4096),
        ] {
            let request = http::Request::post(&uri)
                .header("content-type", "application/json")
                .header("x-amz-target", "TrentService.DescribeCustomKeyStores")
                .header("content-length", length)
                .body(())
                .expect("a request");
            client = timeout(BOUND, client.ready())
                .await
                .expect("ready in time")
                .expect("ready");
            let (response, mut body) = client.send_request(request, false).expect("send");
            if sent > 0 {
                body.reserve_capacity(sent);
                body.send_data(Bytes::from(vec![b' '; sent]), false)
                    .expect("send data");
            }
            let started = Instant::now();
            let response = timeout(BOUND, response).await;
            let status = match response {
                Ok(Ok(r)) => r.status().as_u16(),
                Ok(Err(e)) => panic!("{:?} {case}: stream error {e}", server.kind),
                Err(_) => panic!(
                    "{:?} {case}: no answer after {:?}",
                    server.kind,
                    started.elapsed()
                ),
            };
            assert!(
                (400..500).contains(&status),
                "{:?} {case}: {status}",
                server.kind
            );
            if sent > 0 {
                assert_eq!(status, 413, "{:?} {case}", server.kind);
            }
            drop(body);
            server.assert_serves(case).await;
        }
        // The same connection still serves a well-formed, signed request over HTTP/2.
        let body = match server.kind {
            Kind::Emulator => b"{}".to_vec(),
            Kind::Proxy => xks_metadata_body().to_string().into_bytes(),
        };
        let target = "TrentService.DescribeCustomKeyStores";
        let mut request = http::Request::post(&uri);
        for (k, v) in server.signed("POST", server.path(), target, &body) {
            request = request.header(k, v);
        }
        let request = request
            .header("content-length", body.len())
            .body(())
            .expect("a request");
        client = timeout(BOUND, client.ready())
            .await
            .expect("ready in time")
            .expect("ready");
        let (response, mut stream) = client.send_request(request, false).expect("send");
        stream
            .send_data(Bytes::from(body), true)
            .expect("send the body");
        let response = timeout(BOUND, response)
            .await
            .expect("an h2 answer in time")
            .expect("an h2 answer");
        assert_eq!(
            response.status(),
            200,
            "{:?}: a well-formed h2 request",
            server.kind
        );
        server.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Property fuzzing of parsing and dispatch.
// ------------------------------------------------------------------------------------------------

/// One generated request.
#[derive(Debug, Clone)]
struct Fuzzed {
    method: &'static str,
    /// The emulator's X-Amz-Target, or the proxy's path.
    target: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    signed: bool,
}

const KMS_OPERATIONS: [&str; 7] = [
    "CreateCustomKeyStore",
    "DescribeCustomKeyStores",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
    "Encrypt",
];

const KMS_MEMBERS: [&str; 17] = [
    "CustomKeyStoreName",
    "CustomKeyStoreId",
    "CloudHsmClusterId",
    "TrustAnchorCertificate",
    "KeyStorePassword",
    "CustomKeyStoreType",
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyAuthenticationCredential",
    "AccessKeyId",
    "RawSecretAccessKey",
    "XksProxyConnectivity",
    "NewCustomKeyStoreName",
    "Limit",
    "Marker",
    "XksProxyVpcEndpointServiceOwner",
];

const XKS_MEMBERS: [&str; 16] = [
    "requestMetadata",
    "awsPrincipalArn",
    "kmsOperation",
    "kmsRequestId",
    "kmsKeyArn",
    "awsSourceVpc",
    "awsSourceVpce",
    "kmsViaService",
    "plaintext",
    "additionalAuthenticatedData",
    "encryptionAlgorithm",
    "ciphertextDataIntegrityValueAlgorithm",
    "ciphertext",
    "initializationVector",
    "authenticationTag",
    "ciphertextMetadata",
];

/// A random JSON scalar: often a plausible value (base64, enum-like, a known id), else noise.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[ -~]{0,40}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(|b| {
            use base64::Engine;
            Value::from(base64::engine::general_purpose::STANDARD.encode(b))
        }),
        prop::sample::select(vec![
            "AES_GCM",
            "SHA_256",
            "AWS_CLOUDHSM",
            "EXTERNAL_KEY_STORE",
            "PUBLIC_ENDPOINT",
            "VPC_ENDPOINT_SERVICE",
            "cks-1234567890abcdef0",
            "cluster-healthyaaaaa",
            "/kms/xks/v1",
            "DescribeKey",
            "Encrypt",
        ])
        .prop_map(Value::from),
    ]
}

/// A random JSON document whose object keys are mostly the server's member names.
fn document(members: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        4 => prop::sample::select(members).prop_map(str::to_string),
        1 => "[A-Za-z]{1,12}",
    ];
    scalar().prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plausible XKS requestMetadata: the required members, each sometimes dropped or replaced.
fn xks_metadata() -> impl Strategy<Value = Value> {
    let member = |name: &'static str, plausible: &'static str| {
        prop_oneof![
            6 => Just(Some((name.to_string(), Value::from(plausible)))),
            1 => Just(None),
            1 => scalar().prop_map(move |v| Some((name.to_string(), v))),
        ]
    };
    (
        member("awsPrincipalArn", "arn:aws:iam::123456789012:user/fuzz"),
        member("kmsOperation", "Encrypt"),
        member("kmsRequestId", "4112f4d6-db54-4af4-ae30-c55a22a8dfae"),
        member("kmsKeyArn", "arn:aws:kms:us-east-1:123456789012:key/fuzz"),
    )
        .prop_map(|(a, b, c, d)| Value::Object([a, b, c, d].into_iter().flatten().collect()))
}

/// A random header (never one that frames the message).
fn header() -> impl Strategy<Value = (String, String)> {
    let name = "[a-z][a-z0-9-]{0,15}".prop_filter("not framing", |n| {
        !matches!(
            n.as_str(),
            "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "te"
                | "upgrade"
                | "keep-alive"
                | "expect"
                | "proxy-connection"
        )
    });
    let name = prop_oneof![
        3 => name,
        1 => prop::sample::select(vec!["x-amz-date", "authorization", "content-type",
            "x-amz-security-token", "x-amz-target", "content-encoding"]).prop_map(str::to_string),
    ];
    (name, "[ -~]{0,60}".prop_map(|v| v.trim().to_string()))
}

fn fuzzed(kind: Kind) -> BoxedStrategy<Fuzzed> {
    let method = prop_oneof![
        8 => Just("POST"),
        1 => prop::sample::select(vec!["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    ];
    let (target, members): (BoxedStrategy<String>, &'static [&'static str]) = match kind {
        Kind::Emulator => (
            prop_oneof![
                4 => prop::sample::select(KMS_OPERATIONS.to_vec())
                    .prop_map(|op| format!("TrentService.{op}")),
                1 => "[ -~]{0,40}",
            ]
            .boxed(),
            &KMS_MEMBERS,
        ),
        Kind::Proxy => {
            let key = prop_oneof![
                Just(KEY_MAIN.to_string()),
                Just("ckscheck-aes-disabled".to_string()),
                "[A-Za-z0-9._-]{1,20}",
            ];
            let op = prop::sample::select(vec!["metadata", "encrypt", "decrypt", "sign"]);
            (
                prop_oneof![
                    2 => Just(format!("{DEFAULT_URI_PATH}/health")),
                    6 => (key, op).prop_map(|(k, o)| format!("{DEFAULT_URI_PATH}/keys/{k}/{o}")),
                    1 => "/[a-zA-Z0-9/._~-]{0,40}",
                ]
                .boxed(),
                &XKS_MEMBERS,
            )
        }
    };
    let top = proptest::collection::btree_map(
        prop::sample::select(members).prop_map(str::to_string),
        document(members),
        0..6,
    );
    let metadata = proptest::option::weighted(0.7, xks_metadata());
    let object = (top, metadata).prop_map(move |(top, metadata)| {
        let mut object: serde_json::Map<String, Value> = top.into_iter().collect();
        if let Some(m) = metadata.filter(|_| kind == Kind::Proxy) {
            object.insert("requestMetadata".into(), m);
        }
        Value::Object(object).to_string().into_bytes()
    });
    let body = prop_oneof![
        6 => object,
        2 => document(members).prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    (
        method,
        target,
        body,
        proptest::collection::vec(header(), 0..4),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(method, target, body, headers, signed)| Fuzzed {
            method,
            target,
            body,
            headers,
            signed,
        })
        .boxed()
}

/// Whether a 5xx answer is one the server documents.
fn documented_5xx(kind: Kind, status: u16, body: &str) -> bool {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match kind {
        Kind::Emulator => value["__type"]
            .as_str()
            .is_some_and(|t| Spec::kms().error_status(t) == status),
        Kind::Proxy => status == 501 && value["errorName"] == "UnsupportedOperationException",
    }
}

/// Sends one fuzzed request over `client`; an error for a 5xx that is not documented or a
/// dead connection.
async fn fuzz_one(
    server: &Server,
    client: &reqwest::Client,
    case: &Fuzzed,
) -> Result<String, String> {
    let (path, target) = match server.kind {
        Kind::Emulator => ("/".to_string(), case.target.as_str()),
        Kind::Proxy => (case.target.clone(), ""),
    };
    let url = format!("http://{}{}", server.addr, path);
    let url = reqwest::Url::parse(&url).map_err(|e| format!("bad url {url}: {e}"))?;
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("a method");
    let mut request = client.request(method, url.clone()).body(case.body.clone());
    let mut names = Vec::new();
    if case.signed {
        let uri = &url[url::Position::BeforePath..];
        for (k, v) in server.signed(case.method, uri, target, &case.body) {
            if k != "host" {
                names.push(k.clone());
                request = request.header(k, v);
            }
        }
    } else if server.kind == Kind::Emulator {
        request = request.header("x-amz-target", target);
    }
    for (k, v) in &case.headers {
        if !names.contains(k) {
            request = request.header(k.as_str(), v.as_str());
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("no answer: {e:?}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("no body: {e:?}"))?;
    if status >= 500 && !documented_5xx(server.kind, status, &body) {
        return Err(format!("{status}: {body}"));
    }
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let name = value["__type"].as_str().or(value["errorName"].as_str());
    Ok(format!("{status} {}", name.unwrap_or_default()))
}

/// Random raw bytes (often after a plausible request line) on a new connection, half-closed:
/// only 4xx answers, and a close within `BOUND`.
async fn fuzz_raw(server: &Server, bytes: &[u8]) -> Result<(), String> {
    let mut stream = TcpStream::connect(server.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let (statuses, closed) = answers(&mut stream, BOUND).await;
    if !closed {
        return Err("not closed in time".into());
    }
    if statuses.iter().any(|s| *s >= 500) {
        return Err(format!("answers {statuses:?}"));
    }
    Ok(())
}

fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::sample::select(vec![
        "",
        "POST / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nhost: x\r\n",
        "POST /ckscheck/kms/xks/v1/health HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ]);
    (line, proptest::collection::vec(any::<u8>(), 0..256)).prop_map(|(l, mut b)| {
        let mut out = l.as_bytes().to_vec();
        out.append(&mut b);
        out
    })
}

/// Runs `requests` fuzzed requests and `raw` raw byte strings against a `kind` server with
/// default limits; the count of each and the time taken.
fn fuzz(kind: Kind, requests: u32, raw: u32) -> (u32, u32, Duration) {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime"),
    );
    let server = rt.block_on(Server::start(kind, Limits::default()));
    ckscheck::runner::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let started = Instant::now();
    let config = |cases| Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let sent = Cell::new(0);
    let seen = RefCell::new(BTreeMap::new());
    let outcome = TestRunner::new(config(requests)).run(&fuzzed(kind), |case| {
        sent.set(sent.get() + 1);
        let status = rt
            .block_on(fuzz_one(&server, &client, &case))
            .map_err(TestCaseError::fail)?;
        *seen.borrow_mut().entry(status).or_insert(0u32) += 1;
        Ok(())
    });
    eprintln!("{kind:?} statuses: {:?}", seen.borrow());
    if let Err(e) = outcome {
        panic!("{kind:?}: {e}");
    }
    let raw_sent = Cell::new(0);
    let outcome = TestRunner::new(config(raw)).run(&raw_bytes(), |bytes| {
        raw_sent.set(raw_sent.get() + 1);
        rt.block_on(fuzz_raw(&server, &bytes))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = outcome {
        panic!("{kind:?} raw bytes: {e}");
    }
    let elapsed = started.elapsed();
    rt.block_on(async {
        server.assert_serves("the fuzzing").await;
        server.stop().await;
    });
    (sent.get(), raw_sent.get(), elapsed)
}

fn default_cases() -> u32 {
    std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn report(kind: Kind, (sent, raw, elapsed): (u32, u32, Duration)) {
    eprintln!(
        "{kind:?}: {sent} fuzzed requests and {raw} raw byte strings in {:.1} s",
        elapsed.as_secs_f64()
    );
}

/// Catches a panic, an undocumented 5xx or a dropped connection anywhere in the emulator's
/// parsing and dispatch (e.g. an `unwrap` on a member's type: the layer answers 500).
#[test]
fn fuzz_emulator() {
    report(Kind::Emulator, fuzz(Kind::Emulator, default_cases(), 50));
}

/// As `fuzz_emulator`, for the proxy.
#[test]
fn fuzz_proxy() {
    report(Kind::Proxy, fuzz(Kind::Proxy, default_cases(), 50));
}

/// 100 000 fuzzed requests and 5 000 raw byte strings against the emulator (release: about a
/// minute).
#[test]
#[ignore = "long: run with --release -- --ignored"]
fn fuzz_long_emulator() {
    report(Kind::Emulator, fuzz(Kind::Emulator, 100_000, 5_000));
}

/// 100 000 fuzzed requests and 5 000 raw byte strings against the proxy.
#[test]
#[ignore = "long: run with --release -- --ignored"]
fn fuzz_long_proxy() {
    report(Kind::Proxy, fuzz(Kind::Proxy, 100_000, 5_000));
}
