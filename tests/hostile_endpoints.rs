//! The harness's clients against hostile endpoints: every broken answer is a finding in the
//! report and the run goes on — no panic, no hang, no unbounded read.
//!
//! The hostile servers here are raw tokio `TcpListener`s that read requests and write their
//! answers byte by byte (that is the point: no HTTP library would write them). Each one mangles
//! answers in one way: a reset mid-body, a chunked body cut short, 10 MiB of JSON (chunked, and
//! with its Content-Length), a Content-Length longer or shorter than the body, HTML with a 200,
//! headers and then nothing, and a listener that never accepts. For `ckscheck run` the server
//! is a proxy in front of a real `ckscheck serve` that mangles only the answers to
//! CreateCustomKeyStore (so the store really exists while its answer is lost); for `ckscheck
//! xks run` it answers every request itself.
//!
//! Every run is held to a wall-clock guard ([`GUARD`]): a hang kills the run and fails the test.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use ckscheck::model::Fixtures;
use ckscheck::oracle::common::no_answer_kind;
use ckscheck::runner::journal::{Journal, Leftovers};
use ckscheck::runner::session::{Endpoint, RetryPolicy, Session};
use ckscheck::runner::{CallError, KmsClient};
use ckscheck::sigv4::Credential;

mod common;
use common::{Emulator, ckscheck_command, scratch};

/// The longest any run may take before it counts as hung (never asserted as a duration).
const GUARD: Duration = Duration::from_secs(60);
/// The size of the huge answers: ten times what the harness reads.
const HUGE: usize = 10 << 20;
/// The XKS credential of the hostile proxy (it checks nothing).
const XKS_ENV: [(&str, &str); 2] = [
    ("XKS_ACCESS_KEY_ID", "AKIDHOSTILEHOSTILE00"),
    (
        "XKS_SECRET_ACCESS_KEY",
        "hostileSecretNeverShown0123456789abcdef",
    ),
];

/// How a hostile endpoint mangles an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hostile {
    /// Half the body, then a reset (RST, not FIN).
    ResetMidBody,
    /// A chunked body whose chunk is cut short by a close.
    CutChunked,
    /// The answer's JSON padded to 10 MiB, chunked (no Content-Length).
    HugeChunked,
    /// The answer's JSON padded to 10 MiB, with its Content-Length.
    HugeDeclared,
    /// A Content-Length 64 bytes longer than the body, then a close.
    LengthLonger,
    /// A Content-Length half the body: the rest is never read as this answer.
    LengthShorter,
    /// 200 with an HTML page.
    Html200,
    /// The status line and headers, then nothing while the connection stays open.
    HangAfterHeaders,
}

/// Which answers a hostile server mangles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mangles {
    /// Only the answers to CreateCustomKeyStore (the rest pass through unchanged).
    Creates,
    /// Every answer.
    All,
}

/// What a hostile server saw.
#[derive(Debug, Default)]
struct Log {
    /// Every region a request was signed for.
    regions: BTreeSet<String>,
    /// Answers mangled.
    mangled: usize,
    /// (region, ID) of every store a Create made upstream whose answer was mangled.
    created: Vec<(String, String)>,
}

/// A hostile server on loopback.
struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request as read off the wire.
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The region of the SigV4 credential scope (`Credential=AKID/DATE/REGION/...`).
    fn region(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let scope = auth.split("Credential=").nth(1)?;
        scope.split('/').nth(2).map(str::to_string)
    }

    fn is_create(&self) -> bool {
        self.header("x-amz-target")
            .is_some_and(|t| t.ends_with(".CreateCustomKeyStore"))
    }
}

/// An answer: status, headers and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Starts a hostile server on `runtime`: a proxy in front of `upstream` (or, with none, an
/// endpoint answering `{"status":"ACTIVE"}` to everything) that mangles what `mangles` selects
/// as `hostile` says. One request per connection; every answer closes it.
fn start(
    runtime: &tokio::runtime::Runtime,
    upstream: Option<String>,
    hostile: Hostile,
    mangles: Mangles,
) -> Server {
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = log.clone();
    ckscheck::runner::install_crypto_provider();
    let client = reqwest::Client::new();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (upstream, log, client) = (upstream.clone(), shared.clone(), client.clone());
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                if let Some(region) = request.region() {
                    lock(&log).regions.insert(region);
                }
                let answer = match &upstream {
                    Some(url) => forward(&client, url, &request).await,
                    None => Answer {
                        status: 200,
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: br#"{"status":"ACTIVE"}"#.to_vec(),
                    },
                };
                let mut stream = stream.into_inner();
                let mangle = match mangles {
                    Mangles::Creates => request.is_create(),
                    Mangles::All => true,
                };
                if !mangle {
                    let _ = write_plain(&mut stream, &answer).await;
                    let _ = stream.shutdown().await;
                    return;
                }
                {
                    let mut log = lock(&log);
                    log.mangled += 1;
                    if let (Some(region), Some(id)) = (
                        request.region(),
                        serde_json::from_slice::<Value>(&answer.body)
                            .ok()
                            .and_then(|b| b["CustomKeyStoreId"].as_str().map(str::to_string)),
                    ) {
                        log.created.push((region, id));
                    }
                }
                let _ = write_hostile(stream, &answer, hostile).await;
            });
        }
    });
    Server { addr, log }
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one HTTP/1.1 request (head line by line, then a Content-Length body).
async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut first = String::new();
    stream.read_line(&mut first).await.ok()?;
    let path = first.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request {
        path,
        headers,
        body,
    })
}

/// Sends the request on to `upstream` and brings back its answer (502 if it has none).
async fn forward(client: &reqwest::Client, upstream: &str, request: &Request) -> Answer {
    let mut outgoing = client.post(format!("{upstream}{}", request.path));
    for (name, value) in &request.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(reply) = outgoing.body(request.body.clone()).send().await else {
        return Answer {
            status: 502,
            headers: Vec::new(),
            body: Vec::new(),
        };
    };
    let status = reply.status().as_u16();
    let headers = reply
        .headers()
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            )
        })
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = reply.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// The status line and headers (Content-Length and Connection are given separately).
fn head(answer: &Answer, content_type: Option<&str>, framing: &str) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} Whatever\r\n", answer.status);
    for (name, value) in &answer.headers {
        if content_type.is_some() && name == "content-type" {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str(framing);
    head.push_str("connection: close\r\n\r\n");
    head.into_bytes()
}

async fn write_plain(stream: &mut TcpStream, answer: &Answer) -> std::io::Result<()> {
    let length = format!("content-length: {}\r\n", answer.body.len());
    stream.write_all(&head(answer, None, &length)).await?;
    stream.write_all(&answer.body).await
}

/// The answer's JSON object with a `Padding` member that makes it exactly [`HUGE`] bytes long
/// (valid JSON a reader without a cap would take whole).
fn huge_json(body: &[u8]) -> Vec<u8> {
    let object = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut out = serde_json::to_vec(&object).expect("JSON");
    out.pop(); // the closing brace
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(br#""Padding":""#);
    out.resize(HUGE - 2, b'x');
    out.extend_from_slice(b"\"}");
    out
}

async fn write_hostile(
    mut stream: TcpStream,
    answer: &Answer,
    hostile: Hostile,
) -> std::io::Result<()> {
    let body = &answer.body;
    let half = &body[..body.len() / 2];
    match hostile {
        Hostile::ResetMidBody => {
            let length = format!("content-length: {}\r\n", body.len());
            stream.write_all(&head(answer, None, &length)).await?;
            stream.write_all(half).await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            // SO_LINGER 0: the close sends a reset, not an orderly FIN.
            stream.set_zero_linger()?;
            drop(stream);
            return Ok(());
        }
        Hostile::CutChunked => {
            let framing = "transfer-encoding: chunked\r\n";
            stream.write_all(&head(answer, None, framing)).await?;
            stream
                .write_all(format!("{:x}\r\n", body.len().max(2)).as_bytes())
                .await?;
            stream.write_all(half).await?;
        }
        Hostile::HugeChunked => {
            let framing = "transfer-encoding: chunked\r\n";
            stream.write_all(&head(answer, None, framing)).await?;
            for piece in huge_json(body).chunks(64 << 10) {
                stream
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                stream.write_all(piece).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        Hostile::HugeDeclared => {
            let huge = huge_json(body);
            let length = format!("content-length: {}\r\n", huge.len());
            stream.write_all(&head(answer, None, &length)).await?;
            stream.write_all(&huge).await?;
        }
        Hostile::LengthLonger => {
            let length = format!("content-length: {}\r\n", body.len() + 64);
            stream.write_all(&head(answer, None, &length)).await?;
            stream.write_all(body).await?;
        }
        Hostile::LengthShorter => {
            let length = format!("content-length: {}\r\n", body.len() / 2);
            stream.write_all(&head(answer, None, &length)).await?;
            stream.write_all(body).await?;
        }
        Hostile::Html200 => {
            let page = b"<html><body><h1>Welcome to nginx!</h1></body></html>";
            let ok = Answer {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            };
            let length = format!("content-length: {}\r\n", page.len());
            stream
                .write_all(&head(&ok, Some("text/html"), &length))
                .await?;
            stream.write_all(page).await?;
        }
        Hostile::HangAfterHeaders => {
            let length = format!("content-length: {}\r\n", body.len().max(1));
            stream.write_all(&head(answer, None, &length)).await?;
            stream.flush().await?;
            // Holds the connection until the client gives up on it.
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(GUARD, async {
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            return Ok(());
        }
    }
    stream.flush().await?;
    stream.shutdown().await
}

/// A listener that never accepts: the kernel completes the handshake, nobody ever reads.
fn never_accepts(runtime: &tokio::runtime::Runtime) -> (TcpListener, SocketAddr) {
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    (listener, addr)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs ckscheck with ARGS (and ENV) in `dir` under the wall-clock guard: its exit code and
/// everything it printed. A run still going after [`GUARD`] is killed and fails the test.
fn guarded(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (i32, String) {
    let out = dir.join("out.txt");
    let err = dir.join("err.txt");
    let mut command = ckscheck_command(args, dir);
    command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("an output file"))
        .stderr(std::fs::File::create(&err).expect("an output file"));
    let mut child = command.spawn().expect("ckscheck starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("ckscheck can be waited for") {
            break Some(status);
        }
        if started.elapsed() > GUARD {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let shown = format!(
        "{}\n--- stderr ---\n{}",
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    eprintln!(
        "ckscheck {}: {:.1} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    match status {
        Some(status) => (status.code().unwrap_or(-1), shown),
        None => panic!("ckscheck {args:?} still ran after {GUARD:?} (hung):\n{shown}"),
    }
}

/// The JSON report a run wrote to `report.json` in `dir`.
fn json_report(dir: &Path, shown: &str) -> Value {
    std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no JSON report: {shown}"))
}

/// Every finding of every check in a report.
fn findings(report: &Value) -> Vec<&Value> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .collect()
}

/// A test credential the emulator accepts.
fn credential() -> Credential {
    Credential {
        access_key_id: "AKIDCKSCHECKRECORD".into(),
        secret_access_key: "ckscheckRecordTestSecret0123456789".into(),
        session_token: None,
    }
}

/// The stores `emulator` holds in `region`, asked directly (not through the hostile proxy).
fn stores_in(runtime: &tokio::runtime::Runtime, emulator: &str, region: &str) -> Vec<Value> {
    let client =
        KmsClient::new(emulator, region, credential(), Duration::from_secs(5)).expect("a client");
    let reply = runtime
        .block_on(client.call("DescribeCustomKeyStores", &json!({})))
        .expect("the emulator answers");
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["CustomKeyStores"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `ckscheck run --filter errors` through a proxy in front of a fresh `ckscheck serve` that
/// mangles every CreateCustomKeyStore answer as `hostile` says. Asserts: exit 1 within the
/// guard; a finding on CreateCustomKeyStore whose kind says `kind` and whose message holds
/// `message`; at least one Create really made a store; and no store is left on the emulator in
/// any region the run used.
fn kms_run_finds(name: &str, hostile: Hostile, kind: &str, message: &str) {
    let dir = scratch(&format!("hostile-{name}"));
    let emulator = Emulator::start(&[]);
    let runtime = runtime();
    let proxy = start(
        &runtime,
        Some(emulator.url.clone()),
        hostile,
        Mangles::Creates,
    );
    let url = proxy.url();
    let (code, shown) = guarded(
        &[
            "run",
            "--endpoint-url",
            &url,
            "--region",
            "us-east-1",
            "--filter",
            "errors",
            "--cases",
            "2",
            "--seed",
            "1",
            "--shrink-requests",
            "40",
            "--json",
            "report.json",
        ],
        &[],
        &dir,
    );
    assert_eq!(code, 1, "{hostile:?}: {shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    let report = json_report(&dir, &shown);
    let all = findings(&report);
    let found = all.iter().any(|f| {
        f["operation"] == "CreateCustomKeyStore"
            && f["kind"].as_str().is_some_and(|k| k.contains(kind))
            && f["message"].as_str().is_some_and(|m| m.contains(message))
    });
    assert!(
        found,
        "{hostile:?}: no CreateCustomKeyStore finding of kind {kind:?} saying {message:?} in:\n{}",
        serde_json::to_string_pretty(&all).unwrap_or_default()
    );
    let (regions, created) = {
        let log = proxy.log();
        assert!(log.mangled > 0, "{hostile:?}: no answer was mangled");
        (log.regions.clone(), log.created.clone())
    };
    assert!(
        !created.is_empty(),
        "{hostile:?}: no mangled Create made a store, so nothing tests the cleanup"
    );
    for region in &regions {
        let left = stores_in(&runtime, &emulator.url, region);
        assert!(
            left.is_empty(),
            "{hostile:?}: left behind in {region}: {left:#?}\n(created behind mangled answers: {created:?})"
        );
    }
}

/// Catches: the reset's error chain dropped (the finding would only say "error sending
/// request"), the reason no longer sorted as a reset, a lost store behind the broken answer.
#[test]
fn kms_a_reset_mid_body_is_a_finding_and_nothing_is_left() {
    kms_run_finds(
        "reset",
        Hostile::ResetMidBody,
        "got a connection reset",
        "reset by peer",
    );
}

/// Catches: a cut chunked body sorted as "none", its cause missing from the message.
#[test]
fn kms_a_cut_chunked_body_is_a_finding_and_nothing_is_left() {
    kms_run_finds(
        "chunked",
        Hostile::CutChunked,
        "got a cut answer",
        "end of file before message length reached",
    );
}

/// Catches: the body cap removed (10 MiB of valid JSON would be read whole and pass as a 200),
/// or the over-limit reason no longer recognised by the oracles.
#[test]
fn kms_ten_mib_of_json_is_read_no_further_than_one() {
    kms_run_finds(
        "huge-chunked",
        Hostile::HugeChunked,
        "got an answer over 1 MiB",
        "more than 1048576 bytes came",
    );
    kms_run_finds(
        "huge-declared",
        Hostile::HugeDeclared,
        "got an answer over 1 MiB",
        "Content-Length 10485760",
    );
}

/// Catches: a Content-Length longer than the body accepted as a whole answer; one shorter than
/// the body whose 200 (a cut JSON) loses the store it created.
#[test]
fn kms_a_lying_content_length_is_a_finding_and_nothing_is_left() {
    kms_run_finds("longer", Hostile::LengthLonger, "got a cut answer", "");
    kms_run_finds(
        "shorter",
        Hostile::LengthShorter,
        "expected a JSON object body",
        "HTTP 200",
    );
}

/// Catches: a 200 HTML page taken for a success, or the store that Create made lost.
#[test]
fn kms_html_with_a_200_is_a_finding_and_nothing_is_left() {
    kms_run_finds(
        "html",
        Hostile::Html200,
        "got text/html text",
        "Welcome to nginx",
    );
}

/// Headers and then nothing, or a listener that never accepts: the KMS client's timeout
/// covers the body too, and the reason reads as a timeout. Catches: a timeout that covers only
/// the headers (the call would wait for the guard).
#[test]
fn kms_a_hang_after_headers_or_a_listener_that_never_accepts_times_out() {
    let runtime = runtime();
    let hung = start(&runtime, None, Hostile::HangAfterHeaders, Mangles::All);
    let (_listener, silent) = never_accepts(&runtime);
    for url in [hung.url(), format!("http://{silent}")] {
        let client = KmsClient::new(&url, "us-east-1", credential(), Duration::from_secs(1))
            .expect("a client");
        let started = Instant::now();
        let result = runtime.block_on(async {
            tokio::time::timeout(GUARD, client.call("DescribeCustomKeyStores", &json!({}))).await
        });
        let took = started.elapsed();
        let Ok(result) = result else {
            panic!("{url}: still waiting after {GUARD:?}");
        };
        match result {
            Err(CallError::Unknown(reason)) => {
                assert_eq!(no_answer_kind(&reason), "a timeout", "{url}: {reason}");
            }
            other => panic!("{url}: expected no answer, got {other:?}"),
        }
        assert!(took < Duration::from_secs(10), "{url}: took {took:?}");
    }
}

/// A Create answered 200 with a cut body (Content-Length shorter than it) that did create the
/// store: the session finds it by name and removes it, and the journal keeps the name open so
/// `ckscheck cleanup --journal` finds it when the session cannot, even after another Create of
/// the name was refused as in use. Catches: a session that trusts a 200 without an ID to have
/// created nothing (the store stays on the emulator); a NameInUse refusal that marks the name
/// gone in the journal (cleanup would no longer look for it).
#[test]
fn a_create_answered_200_with_a_cut_body_is_found_by_name() {
    let dir = scratch("hostile-session");
    let emulator = Emulator::start(&[]);
    let runtime = runtime();
    let proxy = start(
        &runtime,
        Some(emulator.url.clone()),
        Hostile::LengthShorter,
        Mangles::Creates,
    );
    let fixtures = Fixtures::builtin_healthy();
    let cluster = fixtures
        .clusters
        .first()
        .expect("a healthy cluster")
        .clone();
    let journal_path = dir.join("journal.jsonl");
    let journal = Arc::new(Journal::open(&journal_path).expect("a journal"));
    let endpoint = Arc::new(Endpoint {
        client: KmsClient::new(
            &proxy.url(),
            "us-east-1",
            credential(),
            Duration::from_secs(5),
        )
        .expect("a client"),
        url: proxy.url(),
        rate: None,
        retry: RetryPolicy::default(),
        journal: Some(journal.clone()),
        fixtures: Arc::new(fixtures),
        transition_timeout: Duration::from_secs(10),
    });
    let create = |name: &str| ckscheck::generate::Step::Call {
        operation: "CreateCustomKeyStore".into(),
        body: json!({
            "CustomKeyStoreName": name,
            "CloudHsmClusterId": cluster.id,
            "TrustAnchorCertificate": cluster.trust_anchor_certificate,
            "KeyStorePassword": cluster.kmsuser_password,
        }),
        expect: None,
    };

    // The session removes it by itself.
    let mut session = Session::new(endpoint.clone(), "ckscheck-hostile-", 1);
    runtime.block_on(session.run(&[create("ckscheck-hostile-a")]));
    let answer = &session.history().exchanges[0];
    assert_eq!(answer.status(), Some(200), "{answer:?}");
    assert!(answer.body().is_null(), "the body is cut: {answer:?}");
    assert_eq!(stores_in(&runtime, &emulator.url, "us-east-1").len(), 1);
    let left = runtime.block_on(session.cleanup());
    assert!(left.is_empty(), "{left:?}");
    assert!(
        stores_in(&runtime, &emulator.url, "us-east-1").is_empty(),
        "the session lost the store behind a cut 200"
    );

    // A session that never cleans up (the run crashed): the journal still names the store.
    let mut crashed = Session::new(endpoint.clone(), "ckscheck-hostile-", 2);
    runtime.block_on(crashed.run(&[create("ckscheck-hostile-b")]));
    drop(crashed);
    // Another session sends the same name: refused as in use, which must not close the line.
    let mut again = Session::new(endpoint, "ckscheck-hostile-", 3);
    runtime.block_on(again.run(&[create("ckscheck-hostile-b")]));
    let refused = &again.history().exchanges[0];
    assert_eq!(
        refused.error_name().as_deref(),
        Some("CustomKeyStoreNameInUseException"),
        "{refused:?}"
    );
    drop(again);
    let Leftovers { stores, .. } = Journal::leftovers(&journal_path).expect("readable");
    let open: Vec<&str> = stores.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(open, ["ckscheck-hostile-b"], "{stores:?}");
    assert_eq!(stores_in(&runtime, &emulator.url, "us-east-1").len(), 1);
    let journal_arg = journal_path.display().to_string();
    let (code, shown) = guarded(
        &[
            "cleanup",
            "--journal",
            &journal_arg,
            "--region",
            "us-east-1",
        ],
        &[],
        &dir,
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        stores_in(&runtime, &emulator.url, "us-east-1").is_empty(),
        "cleanup --journal did not find it: {shown}"
    );
}

/// `ckscheck xks run --cases 2` (only the checks `filter` selects, when given) against a
/// hostile XKS proxy at `url`: exit 1 within the guard, a JSON report, and `kind` and
/// `message` somewhere in its findings.
fn xks_run_finds(name: &str, url: &str, filter: Option<&str>, kind: &str, message: &str) {
    let dir = scratch(&format!("hostile-xks-{name}"));
    let mut args = vec![
        "xks",
        "run",
        "--endpoint-url",
        url,
        "--key-id",
        "k",
        "--cases",
        "2",
        "--seed",
        "1",
        "--json",
        "report.json",
    ];
    if let Some(f) = filter {
        args.extend(["--filter", f]);
    }
    let (code, shown) = guarded(&args, &XKS_ENV, &dir);
    assert_eq!(code, 1, "{name}: {shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    assert!(!shown.contains(XKS_ENV[1].1), "the secret leaked: {shown}");
    let report = json_report(&dir, &shown);
    let all = serde_json::to_string(&findings(&report)).unwrap_or_default();
    assert!(
        all.contains(kind),
        "{name}: no {kind:?} in the findings: {all}"
    );
    assert!(
        all.contains(message),
        "{name}: no {message:?} in the findings: {all}"
    );
}

/// The whole certification against a proxy whose every answer is cut, lies about its length or
/// is an HTML page: a report, exit 1. Catches: a cut chunk without its cause in the message, a
/// crash or a hang on any of them.
#[test]
fn xks_run_reports_cut_and_html_answers() {
    let runtime = runtime();
    for (name, hostile, kind, message) in [
        (
            "chunked",
            Hostile::CutChunked,
            "a broken connection",
            "end of file before message length reached",
        ),
        (
            "longer",
            Hostile::LengthLonger,
            "a broken connection",
            "end of file before message length reached",
        ),
        ("shorter", Hostile::LengthShorter, "200 (not JSON)", ""),
        ("html", Hostile::Html200, "200 (not JSON)", ""),
    ] {
        let server = start(&runtime, None, hostile, Mangles::All);
        xks_run_finds(name, &server.url(), None, kind, message);
    }
}

/// 10 MiB answers (valid JSON) and resets mid-body, against xks-health (each of the ~250
/// requests of a whole run would cost a megabyte read or a pause before the reset). Catches:
/// the XKS client's body cap removed (the health answer would be read whole and judged as
/// JSON), a reset without its cause in the message.
#[test]
fn xks_run_reads_no_more_than_one_mib_and_names_a_reset() {
    let runtime = runtime();
    let huge = start(&runtime, None, Hostile::HugeChunked, Mangles::All);
    xks_run_finds(
        "huge",
        &huge.url(),
        Some("xks-health"),
        "an answer over 1 MiB",
        "more than 1048576 bytes came",
    );
    let reset = start(&runtime, None, Hostile::ResetMidBody, Mangles::All);
    xks_run_finds(
        "reset",
        &reset.url(),
        Some("xks-health"),
        "a broken connection",
        "reset by peer",
    );
}

/// Headers and then nothing: the XKS client's timeout covers the body, each wait is a timeout
/// finding, and after three in a row the run stops waiting. Catches: a timeout that covers
/// only the headers (the run would wait for the guard).
#[test]
fn xks_run_reports_a_proxy_that_hangs_after_headers() {
    let runtime = runtime();
    let hung = start(&runtime, None, Hostile::HangAfterHeaders, Mangles::All);
    xks_run_finds("hang", &hung.url(), None, "a timeout", "timed out");
}

/// A listener that never accepts: timeouts, a report, exit 1 (not a configuration error: the
/// kernel accepted the connection). Catches: a run that waits on it for good.
#[test]
fn xks_run_reports_a_proxy_that_never_accepts() {
    let runtime = runtime();
    let (_listener, silent) = never_accepts(&runtime);
    xks_run_finds(
        "silent",
        &format!("http://{silent}"),
        None,
        "a timeout",
        "timed out",
    );
}
