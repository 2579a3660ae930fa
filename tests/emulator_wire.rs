//! The embedded emulator on the wire: every test starts its own emulator on an ephemeral loopback
//! port and talks real HTTP/1.1 to it, through `reqwest` (signed with our SigV4 code, or
//! deliberately not) or through a raw `TcpStream` where byte-level control is needed (slow and
//! stalled clients, oversized bodies, keep-alive connections).
//!
//! Every answer that comes back as an HTTP response is held to the awsJson1_1 envelope (see
//! `/work/shared/kms-custom-key-stores.md`, "Wire protocol"): `content-type:
//! application/x-amz-json-1.1`, a non-empty `x-amzn-RequestId` that no other answer of the test
//! carried, and for errors a bare `__type`, a `message`, and an `x-amzn-ErrorType` header naming
//! the same error. Every await that could hang is bounded.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ckscheck::emulator::{EmulatorConfig, RunningEmulator, start_on_loopback};
use ckscheck::model::fixtures::{Cluster, XksProxy};
use ckscheck::model::{Fixtures, ModelConfig};
use ckscheck::runner::KmsClient;
use ckscheck::sigv4::{Credential, Signable, Signer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const PREFIX: &str = "TrentService";
const REGION: &str = "us-east-1";
/// Bound on any single await that talks to the emulator.
const STEP: Duration = Duration::from_secs(5);
/// The credential our signed requests use (and the one `verify_sigv4` accepts when set).
const ACCESS_KEY: &str = "AKIDWIRETESTAAAAAAAA";
const SECRET: &str = "wireTestSecretAccessKeyAAAAAAAAAAAAAAAAAAA";
/// A well-formed store ID that no emulator issues in these tests.
const UNKNOWN_ID: &str = "cks-00000000000000000";

/// SigV4 headers (`authorization`, `x-amz-date`) for a POST/GET to `/` with these headers.
fn sign(
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credential: &Credential,
    time: SystemTime,
) -> Vec<(String, String)> {
    let signer = Signer {
        credential,
        region: REGION,
        service: "kms",
        time,
    };
    let request = Signable {
        method,
        uri: "/",
        headers,
        body,
    };
    signer.sign(&request).expect("signing works").0
}

fn credential() -> Credential {
    Credential::new(ACCESS_KEY, SECRET)
}

/// Defaults, except that connections settle at once.
fn quick_config() -> EmulatorConfig {
    EmulatorConfig {
        model: ModelConfig {
            connect_delay_ms: 0,
            ..ModelConfig::default()
        },
        ..EmulatorConfig::default()
    }
}

async fn start(config: EmulatorConfig) -> RunningEmulator {
    timeout(STEP, start_on_loopback(config))
        .await
        .expect("the emulator starts in time")
        .expect("the emulator binds a loopback port")
}

async fn stop(emulator: RunningEmulator) {
    timeout(STEP, emulator.stop())
        .await
        .expect("the emulator stops in time");
}

fn builtin_cluster(id: &str) -> Cluster {
    Fixtures::builtin()
        .cluster(id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is in the built-in fixtures"))
}

fn builtin_proxy(endpoint: &str) -> XksProxy {
    Fixtures::builtin()
        .proxy(endpoint)
        .cloned()
        .unwrap_or_else(|| panic!("{endpoint} is in the built-in fixtures"))
}

/// A healthy cluster generated for test `i` (`cluster-concurrent` + two letters; i < 676).
fn generated_cluster(i: usize) -> Cluster {
    let letter = |n: usize| char::from(b'a' + u8::try_from(n % 26).expect("small"));
    Cluster {
        id: format!("cluster-concurrent{}{}", letter(i / 26), letter(i)),
        state: "ACTIVE".into(),
        active_hsms: 2,
        active_hsms_at_create: None,
        trust_anchor_certificate: format!(
            "-----BEGIN CERTIFICATE-----\nMIIBgenerated{i}\n-----END CERTIFICATE-----"
        ),
        kmsuser_password: "kmsuser-pass-generated".into(),
        lineage: format!("generated-{i}"),
        invalid_configuration: false,
        connect_error: None,
    }
}

fn cloudhsm_create(name: &str, cluster: &Cluster) -> Value {
    json!({
        "CustomKeyStoreName": name,
        "CloudHsmClusterId": cluster.id,
        "TrustAnchorCertificate": cluster.trust_anchor_certificate,
        "KeyStorePassword": cluster.kmsuser_password,
    })
}

fn xks_create(name: &str, proxy: &XksProxy) -> Value {
    json!({
        "CustomKeyStoreName": name,
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyUriEndpoint": proxy.uri_endpoint,
        "XksProxyUriPath": proxy.uri_path,
        "XksProxyAuthenticationCredential": {
            "AccessKeyId": proxy.access_key_id,
            "RawSecretAccessKey": proxy.secret_access_key,
        },
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
    })
}

// ------------------------------------------------------------------------------------------------
// A client that sends exactly what a test asks for, and checks the envelope of every answer.
// ------------------------------------------------------------------------------------------------

/// How a request authenticates.
#[derive(Clone)]
enum Auth {
    /// No `Authorization` header at all.
    Absent,
    /// This literal `Authorization` header.
    Literal(&'static str),
    /// SigV4 with this credential at this time; over `signed_body` if given, else the real body.
    Sign {
        credential: Credential,
        at: SystemTime,
        signed_body: Option<Vec<u8>>,
    },
}

impl Auth {
    fn now() -> Auth {
        Auth::Sign {
            credential: credential(),
            at: SystemTime::now(),
            signed_body: None,
        }
    }
}

/// One request as it goes on the wire.
struct Req {
    method: &'static str,
    /// The whole `X-Amz-Target` value, or no header.
    target: Option<String>,
    body: Vec<u8>,
    auth: Auth,
}

impl Req {
    fn op(operation: &str, body: impl Into<Vec<u8>>) -> Req {
        Req {
            method: "POST",
            target: Some(format!("{PREFIX}.{operation}")),
            body: body.into(),
            auth: Auth::now(),
        }
    }

    fn auth(mut self, auth: Auth) -> Req {
        self.auth = auth;
        self
    }
}

/// An answer that passed the envelope checks.
#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

impl Answer {
    fn error_name(&self) -> Option<&str> {
        (self.status >= 300).then(|| self.json["__type"].as_str().unwrap_or_default())
    }

    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(
            self.status, 200,
            "expected success, got {}: {}",
            self.status, self.text
        );
        &self.json
    }

    #[track_caller]
    fn fails(&self, status: u16, name: &str) {
        assert_eq!(
            (self.status, self.error_name()),
            (status, Some(name)),
            "answer: {}",
            self.text
        );
    }
}

/// Checks the awsJson1_1 envelope of one answer; `seen` collects request IDs to prove them unique.
#[track_caller]
fn check_envelope(
    status: u16,
    header: impl Fn(&str) -> Option<String>,
    text: &str,
    seen: &Mutex<HashSet<String>>,
) -> Value {
    assert_eq!(
        header("content-type").as_deref(),
        Some(CONTENT_TYPE),
        "content type of a {status} answer: {text}"
    );
    let request_id = header("x-amzn-requestid").unwrap_or_default();
    assert!(
        !request_id.trim().is_empty(),
        "a {status} answer has no x-amzn-RequestId: {text}"
    );
    assert!(
        seen.lock().unwrap().insert(request_id.clone()),
        "request ID {request_id} was issued twice"
    );
    let json: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("a {status} answer is not JSON ({e}): {text:?}"));
    assert!(
        json.is_object(),
        "a {status} answer is not a JSON object: {text}"
    );
    let error_type = header("x-amzn-errortype");
    if status >= 300 {
        let name = json["__type"]
            .as_str()
            .unwrap_or_else(|| panic!("no __type: {text}"));
        assert!(
            !name.is_empty() && !name.contains('#') && !name.contains(':'),
            "__type should be the bare error name: {name:?}"
        );
        let message = json["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {text}"));
        assert!(!message.trim().is_empty(), "empty message: {text}");
        let header_name = error_type.unwrap_or_else(|| panic!("no x-amzn-ErrorType: {text}"));
        let header_name = header_name.split(':').next().unwrap_or_default();
        assert_eq!(header_name, name, "x-amzn-ErrorType and __type disagree");
        assert!(status < 500, "a 5xx answer: {text}");
    } else {
        assert_eq!(status, 200, "unexpected success status: {text}");
        assert!(
            error_type.is_none(),
            "x-amzn-ErrorType on a success: {text}"
        );
        assert!(json.get("__type").is_none(), "__type on a success: {text}");
    }
    json
}

struct Wire {
    http: reqwest::Client,
    addr: SocketAddr,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Wire {
    /// A client that keeps connections alive between requests, as SDKs do.
    fn new(emulator: &RunningEmulator) -> Arc<Wire> {
        Wire::build(emulator, reqwest::Client::builder())
    }

    /// A client with a new connection per request. For emulators with a short `read_timeout`:
    /// hyper's header read timeout also closes idle keep-alive connections, and a request sent
    /// on a pooled connection just as the server closes it fails in transit (a race every HTTP
    /// client has with idle timeouts; reqwest does not retry a POST).
    fn unpooled(emulator: &RunningEmulator) -> Arc<Wire> {
        Wire::build(
            emulator,
            reqwest::Client::builder().pool_max_idle_per_host(0),
        )
    }

    fn build(emulator: &RunningEmulator, builder: reqwest::ClientBuilder) -> Arc<Wire> {
        ckscheck::runner::install_crypto_provider();
        Arc::new(Wire {
            http: builder.timeout(STEP).build().expect("a reqwest client"),
            addr: emulator.addr,
            seen: Arc::default(),
        })
    }

    async fn call(&self, operation: &str, body: &Value) -> Answer {
        self.send(Req::op(operation, body.to_string())).await
    }

    async fn send(&self, req: Req) -> Answer {
        let host = self.addr.to_string();
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host.clone()),
            ("content-type".into(), CONTENT_TYPE.into()),
        ];
        if let Some(t) = &req.target {
            headers.push(("x-amz-target".into(), t.clone()));
        }
        match &req.auth {
            Auth::Absent => {}
            Auth::Literal(v) => headers.push(("authorization".into(), (*v).into())),
            Auth::Sign {
                credential,
                at,
                signed_body,
            } => {
                let base: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let signed = sign(
                    req.method,
                    &base,
                    signed_body.as_deref().unwrap_or(&req.body),
                    credential,
                    *at,
                );
                headers.extend(signed);
            }
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, format!("http://{host}/"));
        for (k, v) in headers.into_iter().filter(|(k, _)| k != "host") {
            request = request.header(k, v);
        }
        let response = timeout(STEP, request.body(req.body).send())
            .await
            .expect("an answer in time")
            .expect("an HTTP answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = timeout(STEP, response.text())
            .await
            .expect("a body in time")
            .expect("a readable body");
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let json = check_envelope(status, header, &text, &self.seen);
        Answer { status, text, json }
    }

    /// The DescribeCustomKeyStores listing, in one page.
    async fn listing(&self) -> Value {
        let answer = self
            .call("DescribeCustomKeyStores", &json!({"Limit": 1000}))
            .await;
        let body = answer.ok();
        assert_eq!(body["Truncated"], json!(false), "one page: {}", answer.text);
        body["CustomKeyStores"].clone()
    }
}

// ------------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over TCP.
// ------------------------------------------------------------------------------------------------

/// A response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn check(&self, seen: &Mutex<HashSet<String>>) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        check_envelope(self.status, |n| self.header(n), &text, seen)
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// The head of a POST with the given target and Content-Length, with a dummy Authorization
/// (enough while `verify_sigv4` is off).
fn raw_head(addr: SocketAddr, operation: &str, content_length: usize) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {CONTENT_TYPE}\r\n\
         X-Amz-Target: {PREFIX}.{operation}\r\nAuthorization: test\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
}

/// Reads one Content-Length-framed response; None if the peer closed or reset the connection
/// first (or in the middle).
async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(RawResponse {
        status,
        headers,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// Waits for the peer to close: Ok(()) on EOF or reset, Err(bytes) if it sent something instead.
async fn closed(stream: &mut TcpStream) -> Result<(), Vec<u8>> {
    let mut chunk = [0u8; 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => Ok(()),
        Ok(n) => Err(chunk[..n].to_vec()),
    }
}

// ------------------------------------------------------------------------------------------------
// 1. Success wire format.
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn success_answers_have_the_kms_wire_format() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    let cluster = builtin_cluster("cluster-healthyaaaaa");

    // Create through the harness's own client, to check the two agree on the wire.
    let client = KmsClient::new(&emulator.url(), REGION, credential(), STEP).expect("a client");
    let before = SystemTime::now();
    let reply = timeout(
        STEP,
        client.call("CreateCustomKeyStore", &cloudhsm_create("wire-a", &cluster)),
    )
    .await
    .expect("in time")
    .expect("an answer");
    let after = SystemTime::now();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.content_type.as_deref(), Some(CONTENT_TYPE));
    assert!(reply.request_id.as_deref().is_some_and(|r| !r.is_empty()));
    assert_eq!(reply.error_name(), None);
    let object = reply.body.as_object().expect("an object");
    assert_eq!(object.len(), 1, "only CustomKeyStoreId: {}", reply.text);
    let id = object["CustomKeyStoreId"]
        .as_str()
        .expect("a string ID")
        .to_string();
    let id_pattern = regex::Regex::new("^cks-[0-9a-f]{17}$").unwrap();
    assert!(id_pattern.is_match(&id), "store ID {id:?}");

    // Describe: CreationDate is a JSON number of epoch seconds with at most 3 decimals.
    let answer = wire
        .call("DescribeCustomKeyStores", &json!({"CustomKeyStoreId": id}))
        .await;
    let entries = answer.ok()["CustomKeyStores"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(entries.len(), 1, "{}", answer.text);
    let entry = &entries[0];
    assert_eq!(entry["CustomKeyStoreId"], json!(id));
    assert_eq!(entry["CustomKeyStoreName"], json!("wire-a"));
    assert_eq!(entry["CustomKeyStoreType"], json!("AWS_CLOUDHSM"));
    assert_eq!(entry["ConnectionState"], json!("DISCONNECTED"));
    assert!(entry.get("XksProxyConfiguration").is_none());
    assert!(entry.get("KeyStorePassword").is_none());
    assert!(entry["CreationDate"].is_number(), "{}", answer.text);
    let date_text = regex::Regex::new(r#""CreationDate"\s*:\s*([^,}\s]+)"#)
        .unwrap()
        .captures(&answer.text)
        .expect("CreationDate in the text")[1]
        .to_string();
    let date_format = regex::Regex::new(r"^[0-9]+(\.[0-9]{1,3})?$").unwrap();
    assert!(
        date_format.is_match(&date_text),
        "CreationDate {date_text} is not epoch seconds with at most 3 decimals"
    );
    let seconds: f64 = date_text.parse().unwrap();
    let epoch = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    assert!(
        seconds >= epoch(before) - 1.0 && seconds <= epoch(after) + 1.0,
        "CreationDate {seconds} is not the time of the Create ({} .. {})",
        epoch(before),
        epoch(after)
    );

    // Connect, Disconnect, Update, Delete: `{}`.
    let by_id = json!({"CustomKeyStoreId": id});
    for (operation, body) in [
        ("ConnectCustomKeyStore", by_id.clone()),
        ("DisconnectCustomKeyStore", by_id.clone()),
        (
            "UpdateCustomKeyStore",
            json!({"CustomKeyStoreId": id, "NewCustomKeyStoreName": "wire-a-renamed"}),
        ),
        ("DeleteCustomKeyStore", by_id.clone()),
    ] {
        let answer = wire.call(operation, &body).await;
        assert_eq!(answer.ok(), &json!({}), "{operation}: {}", answer.text);
    }
    wire.call("DescribeCustomKeyStores", &by_id)
        .await
        .fails(400, "CustomKeyStoreNotFoundException");
    // An empty account lists an empty page, not an absent list.
    assert_eq!(wire.listing().await, json!([]));
    stop(emulator).await;
}

// ------------------------------------------------------------------------------------------------
// 2. Client errors.
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_400_with_a_bare_type() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    let unknown = json!({"CustomKeyStoreId": UNKNOWN_ID});
    for operation in [
        "DescribeCustomKeyStores",
        "ConnectCustomKeyStore",
        "DisconnectCustomKeyStore",
        "DeleteCustomKeyStore",
    ] {
        wire.call(operation, &unknown)
            .await
            .fails(400, "CustomKeyStoreNotFoundException");
    }
    wire.call(
        "UpdateCustomKeyStore",
        &json!({"CustomKeyStoreId": UNKNOWN_ID, "NewCustomKeyStoreName": "x"}),
    )
    .await
    .fails(400, "CustomKeyStoreNotFoundException");
    wire.call(
        "DescribeCustomKeyStores",
        &json!({"CustomKeyStoreName": "nobody"}),
    )
    .await
    .fails(400, "CustomKeyStoreNotFoundException");
    wire.call("DescribeCustomKeyStores", &json!({"Limit": 0}))
        .await
        .fails(400, "ValidationException");
    wire.call("DescribeCustomKeyStores", &json!({"Marker": "not-ours"}))
        .await
        .fails(400, "InvalidMarkerException");
    let cluster = builtin_cluster("cluster-healthyaaaaa");
    wire.call("CreateCustomKeyStore", &cloudhsm_create("dup", &cluster))
        .await
        .ok();
    let other = builtin_cluster("cluster-healthybbbbb");
    wire.call("CreateCustomKeyStore", &cloudhsm_create("dup", &other))
        .await
        .fails(400, "CustomKeyStoreNameInUseException");
    wire.call("CreateCustomKeyStore", &cloudhsm_create("dup-2", &cluster))
        .await
        .fails(400, "CloudHsmClusterInUseException");

    // The harness's client parses the same errors.
    let client = KmsClient::new(&emulator.url(), REGION, credential(), STEP).expect("a client");
    let reply = timeout(STEP, client.call("DeleteCustomKeyStore", &unknown))
        .await
        .expect("in time")
        .expect("an answer");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.error_name().as_deref(),
        Some("CustomKeyStoreNotFoundException")
    );
    assert!(reply.request_id.is_some_and(|r| !r.is_empty()));
    stop(emulator).await;
}

// ------------------------------------------------------------------------------------------------
// 3. Authentication.
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_authorization_is_refused_even_when_signatures_are_not_checked() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    wire.send(Req::op("DescribeCustomKeyStores", "{}").auth(Auth::Absent))
        .await
        .fails(400, "MissingAuthenticationTokenException");
    // Without verify_sigv4 any Authorization header is accepted.
    wire.send(Req::op("DescribeCustomKeyStores", "{}").auth(Auth::Literal("anything")))
        .await
        .ok();
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_verified_as_kms_does() {
    let emulator = start(EmulatorConfig {
        verify_sigv4: Some(vec![credential()]),
        ..quick_config()
    })
    .await;
    let wire = Wire::new(&emulator);
    let describe = || Req::op("DescribeCustomKeyStores", r#"{"Limit":5}"#);
    let signed = |credential: Credential, at: SystemTime| Auth::Sign {
        credential,
        at,
        signed_body: None,
    };
    let now = SystemTime::now();

    wire.send(describe()).await.ok();
    wire.send(describe().auth(Auth::Absent))
        .await
        .fails(400, "MissingAuthenticationTokenException");
    wire.send(describe().auth(signed(Credential::new(ACCESS_KEY, "anotherSecret"), now)))
        .await
        .fails(400, "InvalidSignatureException");
    wire.send(describe().auth(signed(Credential::new("AKIDUNKNOWNAAAAAAAAA", SECRET), now)))
        .await
        .fails(400, "UnrecognizedClientException");
    let tampered = Auth::Sign {
        credential: credential(),
        at: now,
        signed_body: Some(br#"{"Limit":6}"#.to_vec()),
    };
    wire.send(describe().auth(tampered))
        .await
        .fails(400, "InvalidSignatureException");
    let six_minutes = Duration::from_secs(360);
    wire.send(describe().auth(signed(credential(), now - six_minutes)))
        .await
        .fails(400, "InvalidSignatureException");
    wire.send(describe().auth(signed(credential(), now + six_minutes)))
        .await
        .fails(400, "InvalidSignatureException");
    // Four minutes off is within KMS's five-minute window.
    wire.send(describe().auth(signed(credential(), now - Duration::from_secs(240))))
        .await
        .ok();
    // A signature over another operation does not authorise this one: the target is signed.
    let signed_for_describe = {
        // Sign the Describe headers, then send them with the Delete target.
        let base = [
            ("host", emulator.addr.to_string()),
            ("content-type", CONTENT_TYPE.to_string()),
            ("x-amz-target", format!("{PREFIX}.DescribeCustomKeyStores")),
        ];
        let base: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sign("POST", &base, br#"{"Limit":5}"#, &credential(), now)
    };
    let authorization = signed_for_describe
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .expect("an authorization header");
    let amz_date = signed_for_describe
        .iter()
        .find(|(k, _)| k == "x-amz-date")
        .map(|(_, v)| v.clone())
        .expect("an x-amz-date header");
    let response = timeout(
        STEP,
        wire.http
            .post(emulator.url())
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", format!("{PREFIX}.DeleteCustomKeyStore"))
            .header("authorization", authorization)
            .header("x-amz-date", amz_date)
            .body(r#"{"Limit":5}"#)
            .send(),
    )
    .await
    .expect("in time")
    .expect("an answer");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["__type"], json!("InvalidSignatureException"));
    // A header that is not SigV4 at all. Real KMS answers IncompleteSignatureException (not in
    // our spec's framework errors); the emulator folds it into InvalidSignatureException.
    let garbage = wire
        .send(describe().auth(Auth::Literal("Bearer not-a-sigv4-header")))
        .await;
    assert_eq!(garbage.status, 400, "{}", garbage.text);
    assert!(
        matches!(
            garbage.error_name(),
            Some("InvalidSignatureException" | "IncompleteSignatureException")
        ),
        "{}",
        garbage.text
    );
    stop(emulator).await;
}

// ------------------------------------------------------------------------------------------------
// 4. Bad input.
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_and_wrong_types_are_serialization_errors() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    let describe: Vec<Vec<u8>> = vec![
        br#"{"Limit":"#.to_vec(),
        b"[]".to_vec(),
        br#""x""#.to_vec(),
        b"5".to_vec(),
        b"true".to_vec(),
        b"{} trailing".to_vec(),
        br#"{"Limit":"5"}"#.to_vec(),
        br#"{"Limit":true}"#.to_vec(),
        br#"{"CustomKeyStoreId":["cks-1"]}"#.to_vec(),
        // Not UTF-8.
        b"{\"CustomKeyStoreName\":\"\xff\xfe\"}".to_vec(),
        // Nested far deeper than any parser should recurse: must not overflow the stack.
        [b"{\"Bogus\":".as_slice(), &b"[".repeat(100_000)].concat(),
    ];
    for body in describe {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let answer = wire.send(Req::op("DescribeCustomKeyStores", body)).await;
        assert_eq!(
            (answer.status, answer.error_name()),
            (400, Some("SerializationException")),
            "body {shown:?}: {}",
            answer.text
        );
    }
    let proxy = builtin_proxy("https://xks-ok.example.test");
    let mut credential_as_string = xks_create("xks-string-credential", &proxy);
    credential_as_string["XksProxyAuthenticationCredential"] = json!(format!(
        "{}:{}",
        proxy.access_key_id, proxy.secret_access_key
    ));
    let mut credential_member_wrong = xks_create("xks-number-key", &proxy);
    credential_member_wrong["XksProxyAuthenticationCredential"]["AccessKeyId"] = json!(5);
    let mut name_as_number = cloudhsm_create("x", &builtin_cluster("cluster-healthyaaaaa"));
    name_as_number["CustomKeyStoreName"] = json!(5);
    for body in [
        name_as_number,
        credential_as_string,
        credential_member_wrong,
    ] {
        wire.call("CreateCustomKeyStore", &body)
            .await
            .fails(400, "SerializationException");
    }
    wire.call(
        "UpdateCustomKeyStore",
        &json!({"CustomKeyStoreId": UNKNOWN_ID, "NewCustomKeyStoreName": ["x"]}),
    )
    .await
    .fails(400, "SerializationException");
    // None of these created anything.
    assert_eq!(wire.listing().await, json!([]));
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_targets_are_unknown_operations() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    for target in [
        Some("TrentService.Bogus"),
        Some("TrentService.describeCustomKeyStores"),
        Some("KmsService.DescribeCustomKeyStores"),
        Some("TrentService_20141101.DescribeCustomKeyStores"),
        Some("TrentService"),
        Some("TrentService."),
        Some(".DescribeCustomKeyStores"),
        Some(""),
        None,
    ] {
        let mut req = Req::op("DescribeCustomKeyStores", "{}");
        req.target = target.map(str::to_string);
        wire.send(req).await.fails(400, "UnknownOperationException");
    }
    // The right target with another method than POST (emulator's choice of error).
    let mut get = Req::op("DescribeCustomKeyStores", "");
    get.method = "GET";
    wire.send(get).await.fails(400, "UnknownOperationException");
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_members_and_empty_bodies_are_accepted() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    // Inferred behaviour: AWS JSON services ignore members their model does not know (clients
    // newer than the service send them), so an unknown member is accepted and ignored. To be
    // confirmed by re-recording against real KMS.
    let answer = wire
        .call("DescribeCustomKeyStores", &json!({"Bogus": 1}))
        .await;
    assert_eq!(
        answer.ok(),
        &json!({"CustomKeyStores": [], "Truncated": false})
    );
    let cluster = builtin_cluster("cluster-healthyaaaaa");
    let mut with_extra = cloudhsm_create("extra", &cluster);
    with_extra["Bogus"] = json!({"nested": [1, 2]});
    wire.call("CreateCustomKeyStore", &with_extra).await.ok();
    // An empty body, or only whitespace, is the empty input.
    for body in ["", " \r\n\t"] {
        let answer = wire.send(Req::op("DescribeCustomKeyStores", body)).await;
        assert_eq!(
            answer.ok()["CustomKeyStores"].as_array().map(Vec::len),
            Some(1)
        );
    }
    // ...which for an operation with a required member is a ValidationException.
    wire.send(Req::op("ConnectCustomKeyStore", ""))
        .await
        .fails(400, "ValidationException");
    // null means absent.
    let answer = wire
        .send(Req::op(
            "DescribeCustomKeyStores",
            r#"{"CustomKeyStoreId":null}"#,
        ))
        .await;
    assert_eq!(
        answer.ok()["CustomKeyStores"].as_array().map(Vec::len),
        Some(1)
    );
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413_and_the_server_keeps_serving() {
    let config = quick_config();
    let limit = config.max_body_bytes;
    let emulator = start(config).await;
    let wire = Wire::new(&emulator);
    // A JSON object of exactly `size` bytes: {"Bogus":"aaa..."}.
    let body_of = |size: usize| {
        let overhead = r#"{"Bogus":""}"#.len();
        format!(r#"{{"Bogus":"{}"}}"#, "a".repeat(size - overhead)).into_bytes()
    };
    let at_limit = body_of(limit);
    assert_eq!(at_limit.len(), limit);
    wire.send(Req::op("DescribeCustomKeyStores", at_limit))
        .await
        .ok();
    wire.send(Req::op("DescribeCustomKeyStores", body_of(limit + 1)))
        .await
        .fails(413, "RequestEntityTooLargeException");
    wire.send(Req::op("DescribeCustomKeyStores", "{}"))
        .await
        .ok();

    // Far more than the limit, announced up front and sent by a client that does not wait for an
    // answer: a 413 or a closed connection, soon, and the server still serves afterwards.
    let total = 8 * limit;
    let mut stream = connect(emulator.addr).await;
    stream
        .write_all(raw_head(emulator.addr, "DescribeCustomKeyStores", total).as_bytes())
        .await
        .expect("write the head");
    let (mut reader, mut writer) = stream.into_split();
    let pump = tokio::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..total / chunk.len() {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut response = Vec::new();
    let read = timeout(STEP, reader.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed the connection"
    );
    if !response.is_empty() {
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains("RequestEntityTooLargeException"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    pump.abort();
    wire.send(Req::op("DescribeCustomKeyStores", "{}"))
        .await
        .ok();
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_times_out_while_others_are_served() {
    let read_timeout = Duration::from_millis(300);
    let emulator = start(EmulatorConfig {
        read_timeout,
        ..quick_config()
    })
    .await;
    let wire = Wire::unpooled(&emulator);
    let body = br#"{"Limit": 10, "Bogus": "...................."}"#;
    let mut stream = connect(emulator.addr).await;
    stream
        .write_all(raw_head(emulator.addr, "DescribeCustomKeyStores", body.len()).as_bytes())
        .await
        .expect("write the head");
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 100 ms: the whole body would take about 5 s.
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        writer
    });
    let started = Instant::now();
    // Meanwhile the server answers others promptly.
    let others = {
        let wire = wire.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                let t = Instant::now();
                wire.send(Req::op("DescribeCustomKeyStores", "{}"))
                    .await
                    .ok();
                assert!(
                    t.elapsed() < Duration::from_secs(1),
                    "a request was held up"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut response = Vec::new();
    let read = timeout(STEP, reader.read_to_end(&mut response)).await;
    let elapsed = started.elapsed();
    assert!(
        read.is_ok(),
        "the slow client was neither answered nor disconnected"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "the slow client held its connection for {elapsed:?}"
    );
    if !response.is_empty() {
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("RequestTimeoutException"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("x-amzn-requestid"),
            "{text}"
        );
    }
    timeout(STEP, others)
        .await
        .expect("others finish in time")
        .expect("others were served");
    trickle.abort();
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stalls_in_its_headers_is_disconnected() {
    let read_timeout = Duration::from_millis(300);
    let emulator = start(EmulatorConfig {
        read_timeout,
        ..quick_config()
    })
    .await;
    let wire = Wire::unpooled(&emulator);
    let mut stream = connect(emulator.addr).await;
    let half = format!("POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Tar", emulator.addr);
    stream.write_all(half.as_bytes()).await.expect("write");
    let started = Instant::now();
    // Served meanwhile.
    wire.send(Req::op("DescribeCustomKeyStores", "{}"))
        .await
        .ok();
    let mut rest = Vec::new();
    let read = timeout(STEP, stream.read_to_end(&mut rest)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "a stalled client was never disconnected");
    assert!(
        elapsed < Duration::from_secs(2),
        "the stalled client was disconnected only after {elapsed:?}"
    );
    // hyper may say 408 before closing; anything it says is not a success.
    if !rest.is_empty() {
        let text = String::from_utf8_lossy(&rest);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    }
    wire.send(Req::op("DescribeCustomKeyStores", "{}"))
        .await
        .ok();
    // A connection that never sends a byte is not kept forever either: the header read timeout
    // runs from the moment the server waits for a request head.
    let mut idle = connect(emulator.addr).await;
    let started = Instant::now();
    let close = timeout(STEP, closed(&mut idle)).await;
    assert!(
        matches!(close, Ok(Ok(()))),
        "an idle connection was kept: {close:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_that_are_not_http_are_refused_without_harm() {
    let emulator = start(quick_config()).await;
    let wire = Wire::new(&emulator);
    for garbage in [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".as_slice(), // a TLS ClientHello
        b"HELLO THERE\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ] {
        let mut stream = connect(emulator.addr).await;
        stream.write_all(garbage).await.expect("write");
        let mut answer = Vec::new();
        let read = timeout(STEP, stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer and no close for {garbage:?}");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || text.starts_with("HTTP/1.1 4"),
            "{garbage:?} got {text}"
        );
    }
    wire.send(Req::op("DescribeCustomKeyStores", "{}"))
        .await
        .ok();
    stop(emulator).await;
}

// ------------------------------------------------------------------------------------------------
// 5. Rejected requests leave the state alone.
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn rejected_requests_never_change_state() {
    let mut model = ModelConfig {
        connect_delay_ms: 0,
        ..ModelConfig::default()
    };
    model.quota = 2;
    let emulator = start(EmulatorConfig {
        model,
        verify_sigv4: Some(vec![credential()]),
        read_timeout: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let wire = Wire::unpooled(&emulator);
    let (a, b, c) = (
        builtin_cluster("cluster-healthyaaaaa"),
        builtin_cluster("cluster-healthybbbbb"),
        builtin_cluster("cluster-healthyccccc"),
    );
    let proxy = builtin_proxy("https://xks-ok.example.test");
    let id_a = wire
        .call("CreateCustomKeyStore", &cloudhsm_create("state-a", &a))
        .await
        .ok()["CustomKeyStoreId"]
        .as_str()
        .unwrap()
        .to_string();
    let id_b = wire
        .call("CreateCustomKeyStore", &xks_create("state-b", &proxy))
        .await
        .ok()["CustomKeyStoreId"]
        .as_str()
        .unwrap()
        .to_string();
    let snapshot = wire.listing().await;
    assert_eq!(snapshot.as_array().map(Vec::len), Some(2));

    let valid_c = cloudhsm_create("state-c", &c).to_string().into_bytes();
    let mut wrong_anchor = cloudhsm_create("state-c", &c);
    wrong_anchor["TrustAnchorCertificate"] =
        json!("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----");
    let mut foreign_member = cloudhsm_create("state-c", &c);
    foreign_member["XksProxyUriPath"] = json!("/kms/xks/v1");
    let mut padded_c = cloudhsm_create("state-c", &c);
    padded_c["Bogus"] = json!("a".repeat(emulator_limit()));
    let create = |body: Vec<u8>| Req::op("CreateCustomKeyStore", body);
    let json_create = |v: &Value| create(v.to_string().into_bytes());
    let batch: Vec<(Req, u16, &str)> = vec![
        (
            create(br#"{"CustomKeyStoreName":"#.to_vec()),
            400,
            "SerializationException",
        ),
        (
            json_create(&cloudhsm_create("state-a", &b)),
            400,
            "CustomKeyStoreNameInUseException",
        ),
        // The quota (2) is full: a Create that is otherwise fine is refused.
        (create(valid_c.clone()), 400, "LimitExceededException"),
        // The model checks the quota before the backend, so a wrong trust anchor meets the full
        // quota first (KMS documents no order between the two).
        (json_create(&wrong_anchor), 400, "LimitExceededException"),
        (json_create(&foreign_member), 400, "ValidationException"),
        (
            create(valid_c.clone()).auth(Auth::Sign {
                credential: Credential::new(ACCESS_KEY, "wrong"),
                at: SystemTime::now(),
                signed_body: None,
            }),
            400,
            "InvalidSignatureException",
        ),
        (
            create(valid_c.clone()).auth(Auth::Absent),
            400,
            "MissingAuthenticationTokenException",
        ),
        (
            create(valid_c.clone()).auth(Auth::Sign {
                credential: credential(),
                at: SystemTime::now(),
                signed_body: Some(b"{}".to_vec()),
            }),
            400,
            "InvalidSignatureException",
        ),
        (
            Req {
                target: Some("KmsService.CreateCustomKeyStore".into()),
                ..create(valid_c.clone())
            },
            400,
            "UnknownOperationException",
        ),
        (
            json_create(&padded_c),
            413,
            "RequestEntityTooLargeException",
        ),
        (
            Req::op(
                "UpdateCustomKeyStore",
                json!({"CustomKeyStoreId": id_a, "NewCustomKeyStoreName": "state-b"}).to_string(),
            ),
            400,
            "CustomKeyStoreNameInUseException",
        ),
        (
            Req::op(
                "UpdateCustomKeyStore",
                json!({"CustomKeyStoreId": id_a, "NewCustomKeyStoreName": ""}).to_string(),
            ),
            400,
            "ValidationException",
        ),
        (
            Req::op(
                "UpdateCustomKeyStore",
                json!({"CustomKeyStoreId": id_a, "CloudHsmClusterId": c.id}).to_string(),
            ),
            400,
            "CloudHsmClusterNotRelatedException",
        ),
        (
            Req::op(
                "UpdateCustomKeyStore",
                json!({"CustomKeyStoreId": id_b, "XksProxyUriPath": "/other/kms/xks/v1"})
                    .to_string(),
            ),
            400,
            "XksProxyInvalidConfigurationException",
        ),
        (
            Req::op(
                "DeleteCustomKeyStore",
                json!({"CustomKeyStoreId": UNKNOWN_ID}).to_string(),
            ),
            400,
            "CustomKeyStoreNotFoundException",
        ),
        (
            Req::op(
                "ConnectCustomKeyStore",
                json!({"CustomKeyStoreId": 5}).to_string(),
            ),
            400,
            "SerializationException",
        ),
        (
            Req::op(
                "DisconnectCustomKeyStore",
                json!({"CustomKeyStoreId": id_a}).to_string(),
            ),
            400,
            "CustomKeyStoreInvalidStateException",
        ),
        (
            Req::op(
                "DeleteCustomKeyStore",
                json!({"CustomKeyStoreId": id_b, "Bogus": "x".repeat(emulator_limit())})
                    .to_string(),
            ),
            413,
            "RequestEntityTooLargeException",
        ),
    ];
    for (req, status, name) in batch {
        wire.send(req).await.fails(status, name);
    }
    // A valid Delete whose body never arrives in time: refused, store kept.
    let delete_b = json!({"CustomKeyStoreId": id_b}).to_string();
    let mut stream = connect(emulator.addr).await;
    let signed = {
        let base = [
            ("host", emulator.addr.to_string()),
            ("content-type", CONTENT_TYPE.to_string()),
            ("x-amz-target", format!("{PREFIX}.DeleteCustomKeyStore")),
        ];
        let base: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sign(
            "POST",
            &base,
            delete_b.as_bytes(),
            &credential(),
            SystemTime::now(),
        )
    };
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: {CONTENT_TYPE}\r\n\
         X-Amz-Target: {PREFIX}.DeleteCustomKeyStore\r\nContent-Length: {}\r\n",
        emulator.addr,
        delete_b.len()
    );
    for (k, v) in signed {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
        .write_all(&delete_b.as_bytes()[..delete_b.len() - 1])
        .await
        .expect("write");
    let answered = timeout(STEP, read_response(&mut stream))
        .await
        .expect("the stalled Delete is answered or disconnected in time");
    if let Some(response) = answered {
        assert_eq!(response.status, 408);
        assert_eq!(
            response.check(&wire.seen)["__type"],
            json!("RequestTimeoutException")
        );
    }
    drop(stream);

    assert_eq!(
        wire.listing().await,
        snapshot,
        "a rejected request changed the state"
    );
    for id in [&id_a, &id_b] {
        wire.call("DescribeCustomKeyStores", &json!({"CustomKeyStoreId": id}))
            .await
            .ok();
    }
    stop(emulator).await;
}

/// The default body limit, for padding requests past it.
fn emulator_limit() -> usize {
    EmulatorConfig::default().max_body_bytes
}

// ------------------------------------------------------------------------------------------------
// 6. Concurrency.
// ------------------------------------------------------------------------------------------------

/// A config with `n` generated clusters, a quota of 1000 and the given connect delay.
fn many_clusters(n: usize, connect_delay_ms: u64) -> (EmulatorConfig, Vec<Cluster>) {
    let clusters: Vec<Cluster> = (0..n).map(generated_cluster).collect();
    let config = EmulatorConfig {
        model: ModelConfig {
            quota: 1000,
            connect_delay_ms,
            ..ModelConfig::default()
        },
        fixtures: Fixtures {
            clusters: clusters.clone(),
            xks_proxies: Vec::new(),
        }
        .into(),
        ..EmulatorConfig::default()
    };
    (config, clusters)
}

async fn join_all<T: 'static>(mut tasks: JoinSet<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(joined) = timeout(STEP, tasks.join_next())
        .await
        .expect("every task finishes in time")
    {
        out.push(joined.expect("no task panics"));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_of_distinct_names_all_succeed() {
    let (config, clusters) = many_clusters(64, 0);
    let emulator = start(config).await;
    let wire = Wire::new(&emulator);
    let mut tasks = JoinSet::new();
    for (i, cluster) in clusters.into_iter().enumerate() {
        let wire = wire.clone();
        tasks.spawn(async move {
            let name = format!("parallel-{i:02}");
            let answer = wire
                .call("CreateCustomKeyStore", &cloudhsm_create(&name, &cluster))
                .await;
            let id = answer.ok()["CustomKeyStoreId"]
                .as_str()
                .unwrap()
                .to_string();
            (name, id)
        });
    }
    let created = join_all(tasks).await;
    assert_eq!(created.len(), 64);
    let ids: BTreeSet<&str> = created.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 64, "duplicate store IDs were issued");

    let listing = wire.listing().await;
    let listing = listing.as_array().expect("a list");
    assert_eq!(listing.len(), 64);
    let listed_ids: Vec<&str> = listing
        .iter()
        .map(|e| e["CustomKeyStoreId"].as_str().unwrap())
        .collect();
    let listed_set: BTreeSet<&str> = listed_ids.iter().copied().collect();
    assert_eq!(
        listed_set.len(),
        listed_ids.len(),
        "a store is listed twice"
    );
    assert_eq!(listed_set, ids);
    let listed_names: BTreeSet<&str> = listing
        .iter()
        .map(|e| e["CustomKeyStoreName"].as_str().unwrap())
        .collect();
    let names: BTreeSet<&str> = created.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed_names, names);
    // Paging over the same stores in pages of 10 sees each exactly once too.
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10 {
        let mut body = json!({"Limit": 10});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let answer = wire.call("DescribeCustomKeyStores", &body).await;
        let page = answer.ok();
        paged.extend(
            page["CustomKeyStores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["CustomKeyStoreId"].as_str().unwrap().to_string()),
        );
        marker = page["NextMarker"].as_str().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(paged, listed_ids);
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_of_one_name_admit_exactly_one() {
    let (config, clusters) = many_clusters(32, 0);
    let emulator = start(config).await;
    let wire = Wire::new(&emulator);
    let mut tasks = JoinSet::new();
    for cluster in clusters {
        let wire = wire.clone();
        tasks.spawn(async move {
            let answer = wire
                .call(
                    "CreateCustomKeyStore",
                    &cloudhsm_create("contested", &cluster),
                )
                .await;
            (answer.status, answer.error_name().map(str::to_string))
        });
    }
    let outcomes = join_all(tasks).await;
    let won = outcomes.iter().filter(|(s, _)| *s == 200).count();
    let lost = outcomes
        .iter()
        .filter(|o| **o == (400, Some("CustomKeyStoreNameInUseException".into())))
        .count();
    assert_eq!((won, lost), (1, 31), "{outcomes:?}");
    let listing = wire.listing().await;
    assert_eq!(listing.as_array().map(Vec::len), Some(1));
    assert_eq!(listing[0]["CustomKeyStoreName"], json!("contested"));
    stop(emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_connects_and_disconnects_never_fault() {
    let (config, clusters) = many_clusters(1, 5);
    let emulator = start(config).await;
    let wire = Wire::new(&emulator);
    let id = wire
        .call(
            "CreateCustomKeyStore",
            &cloudhsm_create("flapping", &clusters[0]),
        )
        .await
        .ok()["CustomKeyStoreId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tasks = JoinSet::new();
    for task in 0..32 {
        let wire = wire.clone();
        let id = id.clone();
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            for round in 0..8 {
                let operation = match (task + round) % 3 {
                    0 => "ConnectCustomKeyStore",
                    1 => "DisconnectCustomKeyStore",
                    _ => "DescribeCustomKeyStores",
                };
                let answer = wire.call(operation, &json!({"CustomKeyStoreId": id})).await;
                outcomes.push((
                    operation,
                    answer.status,
                    answer.error_name().map(str::to_string),
                ));
            }
            outcomes
        });
    }
    let outcomes: Vec<_> = join_all(tasks).await.into_iter().flatten().collect();
    assert_eq!(outcomes.len(), 32 * 8);
    for (operation, status, name) in &outcomes {
        let fine = *status == 200
            || (*status == 400
                && *operation != "DescribeCustomKeyStores"
                && name.as_deref() == Some("CustomKeyStoreInvalidStateException"));
        assert!(fine, "{operation} answered {status} {name:?}");
    }
    assert!(
        outcomes
            .iter()
            .any(|(o, s, _)| *o == "ConnectCustomKeyStore" && *s == 200)
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let listing = wire.listing().await;
    assert_eq!(listing.as_array().map(Vec::len), Some(1));
    let state = listing[0]["ConnectionState"].as_str().unwrap();
    assert!(
        matches!(state, "CONNECTED" | "DISCONNECTED"),
        "settled in {state}"
    );
    stop(emulator).await;
}

// ------------------------------------------------------------------------------------------------
// 7. Graceful stop.
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stop_returns_promptly_with_an_idle_keep_alive_connection() {
    let emulator = start(quick_config()).await;
    let addr = emulator.addr;
    let seen = Mutex::new(HashSet::new());
    // One full request on a keep-alive connection, then the connection sits idle.
    let mut stream = connect(addr).await;
    stream
        .write_all(format!("{}{{}}", raw_head(addr, "DescribeCustomKeyStores", 2)).as_bytes())
        .await
        .expect("write");
    let response = timeout(STEP, read_response(&mut stream))
        .await
        .expect("in time")
        .expect("a response");
    assert_eq!(response.status, 200);
    response.check(&seen);
    // The same connection serves a second request (it really is keep-alive).
    stream
        .write_all(format!("{}{{}}", raw_head(addr, "DescribeCustomKeyStores", 2)).as_bytes())
        .await
        .expect("write");
    let response = timeout(STEP, read_response(&mut stream))
        .await
        .expect("in time")
        .expect("a second response on the same connection");
    assert_eq!(response.status, 200);
    response.check(&seen);

    // A connection that has sent nothing yet. (One in the middle of its first request's headers
    // is a request in flight: hyper lets it finish, so stop waits for the header timeout, or
    // for its own 5 s drain limit, whichever comes first.)
    let mut silent = connect(addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    timeout(Duration::from_secs(4), emulator.stop())
        .await
        .expect("stop returns");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "stop took {elapsed:?}");
    // The idle connection is closed, and nobody listens any more.
    let close = timeout(Duration::from_secs(1), closed(&mut stream)).await;
    assert!(
        matches!(close, Ok(Ok(()))),
        "the idle connection was not closed: {close:?}"
    );
    let close = timeout(Duration::from_secs(1), closed(&mut silent)).await;
    assert!(
        matches!(close, Ok(Ok(()))),
        "the silent connection was not closed: {close:?}"
    );
    let again = timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
    assert!(
        matches!(again, Ok(Err(_))),
        "the port still accepts connections after stop"
    );
}
