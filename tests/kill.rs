//! A killed run leaves nothing behind (issue 17, part 1), through real processes on loopback:
//!
//! - `ckscheck run --endpoint-url` against a `ckscheck serve` child is SIGKILLed 20 times at
//!   seeded moments covering every phase (creating, connecting, waiting out a transition,
//!   shrinking, cleaning up, a scenario); after each kill `ckscheck cleanup --journal` leaves no
//!   store the run created, the stores that were there before (one CONNECTED) are untouched, and
//!   a second cleanup is a no-op. Every other kill also leaves a journal line cut mid-character,
//!   as a kill during a write can: it is read up to the last whole entry, with a warning.
//! - Ctrl-C (SIGINT) during a remote run cleans up by itself and exits 130.
//! - A cleanup that cannot reach the endpoint keeps the entry and exits 1.
//!
//! How a phase is reached: the run talks to the emulator through a pass-through HTTP proxy in
//! this test, which sees each request (its `X-Amz-Target`), its answer and the journal at that
//! moment. A kill is armed as (phase, N): at the N-th request that shows the phase, the proxy
//! forwards it (so the emulator acts on it) and then either holds the answer until the run is
//! dead (the run dies mid-request) or passes it on, and the test kills after a seeded delay.
//!
//! - creating: a CreateCustomKeyStore (held: the store exists, the journal has no ID for it);
//! - connecting: a ConnectCustomKeyStore;
//! - transition: a DescribeCustomKeyStores whose answer shows CONNECTING or DISCONNECTING;
//! - shrinking: against `serve --fault dates-as-strings`, `fields` with `--cases 1` fails its
//!   one drawn case, so every Create after that case's cleanup (a `gone` line in the journal,
//!   the probe's aside) belongs to a shrinking run;
//! - cleaning up: a request naming a store the journal holds as created, while the journal's
//!   last line is a `gone` (a session's cleanup is removing its stores one by one);
//! - scenario: the N-th request of a run of the `snapshot::connect` scenarios once they create
//!   stores.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use ckscheck::runner::KmsClient;
use ckscheck::sigv4::Credential;

mod common;
use common::{Emulator, ckscheck, ckscheck_command, loopback_server, scratch, text};

/// The seed every kill moment is drawn from.
const SEED: u64 = 0x17_0001;
/// The run seed: the same sequences every time.
const RUN_SEED: &str = "5";
/// Kills, and how many land in each phase.
const PLAN: [(Phase, u32); 6] = [
    (Phase::Creating, 4),
    (Phase::Connecting, 4),
    (Phase::Transition, 3),
    (Phase::Shrinking, 3),
    (Phase::CleaningUp, 3),
    (Phase::Scenario, 3),
];
/// Guards against a hang (never asserted as a duration).
const HANG_GUARD: Duration = Duration::from_secs(180);

/// A moment of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Creating,
    Connecting,
    Transition,
    Shrinking,
    CleaningUp,
    Scenario,
}

impl Phase {
    /// The N-th occurrence a kill waits for is drawn from 1..=this.
    fn most(self) -> u64 {
        match self {
            Phase::Creating => 20,
            Phase::Connecting => 8,
            Phase::Transition => 5,
            Phase::Shrinking => 6,
            Phase::CleaningUp => 3,
            Phase::Scenario => 30,
        }
    }
}

/// SplitMix64: the kill moments, from `SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An armed kill: fires at the `nth` request that shows `phase`.
#[derive(Debug, Clone)]
struct Trigger {
    phase: Phase,
    nth: u32,
    seen: u32,
    /// Hold the answer until the run is dead (else pass it on; the test kills after a delay).
    hold: bool,
    journal: PathBuf,
}

/// What the proxy and the test share.
#[derive(Default)]
struct Watch {
    armed: Mutex<Option<Trigger>>,
    fired: Mutex<Option<mpsc::Sender<String>>>,
    /// Set once the killed run has been reaped: a held answer may go.
    released: AtomicBool,
}

impl Watch {
    /// Whether this exchange is the moment; disarms when it is.
    fn moment(&self, op: &str, request: &Value, answer: &Value) -> Option<(String, bool)> {
        let mut armed = self.armed.lock().expect("not poisoned");
        let t = armed.as_mut()?;
        let shows = match t.phase {
            Phase::Creating => op == "CreateCustomKeyStore",
            Phase::Connecting => op == "ConnectCustomKeyStore",
            Phase::Transition => {
                op == "DescribeCustomKeyStores"
                    && answer["CustomKeyStores"].as_array().is_some_and(|s| {
                        s.iter().any(|s| {
                            matches!(
                                s["ConnectionState"].as_str(),
                                Some("CONNECTING" | "DISCONNECTING")
                            )
                        })
                    })
            }
            Phase::Shrinking => {
                op == "CreateCustomKeyStore"
                    && journal(&t.journal).iter().any(|e| {
                        e["event"] == "gone"
                            && !e["name"].as_str().unwrap_or_default().ends_with("-probe")
                    })
            }
            Phase::CleaningUp => {
                let lines = journal(&t.journal);
                let id = request["CustomKeyStoreId"].as_str().unwrap_or_default();
                lines.last().is_some_and(|e| e["event"] == "gone")
                    && !id.is_empty()
                    && open_ids(&lines).iter().any(|open| open == id)
            }
            // Any request once the scenarios create (the listing of foreign stores and the
            // probe come before).
            Phase::Scenario => journal(&t.journal).iter().any(|e| {
                e["event"] == "creating"
                    && !e["name"].as_str().unwrap_or_default().ends_with("-probe")
            }),
        };
        if !shows {
            return None;
        }
        t.seen += 1;
        if t.seen < t.nth {
            return None;
        }
        let t = armed.take()?;
        Some((format!("{:?} #{} ({op})", t.phase, t.nth), t.hold))
    }
}

/// The journal's readable entries.
fn journal(path: &Path) -> Vec<Value> {
    std::fs::read(path)
        .unwrap_or_default()
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// IDs the journal holds as created and not gone.
fn open_ids(lines: &[Value]) -> Vec<String> {
    let mut open: Vec<(String, String)> = Vec::new();
    for e in lines {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        match e["event"].as_str() {
            Some("created") => open.push((name, e["id"].as_str().unwrap_or_default().into())),
            Some("gone") => open.retain(|(n, _)| *n != name),
            _ => {}
        }
    }
    open.into_iter().map(|(_, id)| id).collect()
}

/// A pass-through proxy to `upstream` that tells `watch` about every exchange.
async fn proxy(upstream: String, watch: Arc<Watch>) -> SocketAddr {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    loopback_server(move |req: Request<Incoming>| {
        let (client, upstream, watch) = (client.clone(), upstream.clone(), watch.clone());
        async move { forward(req, &client, &upstream, &watch).await }
    })
    .await
}

async fn forward(
    req: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    watch: &Watch,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let op = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_string();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut outgoing = client.request(parts.method, format!("{upstream}{}", parts.uri));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.body(body).send().await else {
        return Response::builder()
            .status(502)
            .body(Full::new(Bytes::new()))
            .expect("a response");
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some((what, hold)) = watch.moment(&op, &request, &parsed) {
        if let Some(tx) = watch.fired.lock().expect("not poisoned").as_ref() {
            let _ = tx.send(what);
        }
        if hold {
            // The emulator has acted; the run must die before it hears the answer.
            for _ in 0..2000 {
                if watch.released.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response.body(Full::new(bytes)).expect("a response")
}

/// The test's own signing client, straight to the emulator.
fn client(url: &str) -> KmsClient {
    KmsClient::new(
        url,
        "us-east-1",
        Credential::new(
            "AKIDKILLTESTAAAAAAAA",
            "killTestSecretAccessKeyAAAAAAAAAAAAAAAAAA",
        ),
        Duration::from_secs(10),
    )
    .expect("a client")
}

async fn ok(c: &KmsClient, op: &str, body: Value) -> Value {
    let r = c.call(op, &body).await.expect("the emulator answers");
    assert_eq!(r.status, 200, "{op}: {}", r.text);
    r.body
}

/// Every store at the emulator: ID -> (name, state, type).
async fn stores(c: &KmsClient) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut body = json!({});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let page = ok(c, "DescribeCustomKeyStores", body).await;
        for s in page["CustomKeyStores"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            out.push((
                field("CustomKeyStoreId"),
                field("CustomKeyStoreName"),
                field("ConnectionState").to_ascii_uppercase(),
                field("CustomKeyStoreType"),
            ));
        }
        marker = page["NextMarker"].as_str().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    out.sort();
    out
}

/// Every store at the emulator in every region a run may use: the home region's as [`stores`]
/// lists them, the others' with their ID prefixed by the region (a run against an endpoint on
/// this machine plays its trials in regions of their own).
async fn everywhere(url: &str) -> Vec<(String, String, String, String)> {
    let mut out = stores(&client(url)).await;
    for region in ckscheck::suite::regions::REGION_CHOICES
        .iter()
        .filter(|r| **r != "us-east-1")
    {
        let there = KmsClient::new(
            url,
            region,
            Credential::new(
                "AKIDKILLTESTAAAAAAAA",
                "killTestSecretAccessKeyAAAAAAAAAAAAAAAAAA",
            ),
            Duration::from_secs(10),
        )
        .expect("a client");
        for (id, name, state, kind) in stores(&there).await {
            out.push((format!("{region}/{id}"), name, state, kind));
        }
    }
    out.sort();
    out
}

/// Someone else's stores, there before any run: a CONNECTED CloudHSM store, a DISCONNECTED
/// one, and an external key store.
async fn stores_before(c: &KmsClient) -> Vec<(String, String, String, String)> {
    let hsm = |name: &str, letter: char| {
        let upper = letter.to_ascii_uppercase();
        json!({
            "CustomKeyStoreName": name,
            "CloudHsmClusterId": format!("cluster-healthy{}", letter.to_string().repeat(5)),
            "TrustAnchorCertificate": format!("-----BEGIN CERTIFICATE-----\nMIIBhealthy{upper}\n-----END CERTIFICATE-----"),
            "KeyStorePassword": format!("kmsuser-pass-{letter}"),
        })
    };
    let connected =
        ok(c, "CreateCustomKeyStore", hsm("before-run-connected", 'a')).await["CustomKeyStoreId"]
            .as_str()
            .expect("an ID")
            .to_string();
    ok(
        c,
        "CreateCustomKeyStore",
        hsm("before-run-disconnected", 'b'),
    )
    .await;
    let xks = json!({
        "CustomKeyStoreName": "before-run-xks",
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyUriEndpoint": "https://xks-ok.example.test",
        "XksProxyUriPath": "/ok/kms/xks/v1",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        "XksProxyAuthenticationCredential": {
            "AccessKeyId": "OKPROXYACCESSKEYAAAA",
            "RawSecretAccessKey": "okProxySecretAccessKeyAAAAAAAAAAAAAAAAAAAA1",
        },
    });
    ok(c, "CreateCustomKeyStore", xks).await;
    ok(
        c,
        "ConnectCustomKeyStore",
        json!({ "CustomKeyStoreId": connected }),
    )
    .await;
    for _ in 0..400 {
        let all = stores(c).await;
        if all.iter().any(|s| s.0 == connected && s.2 == "CONNECTED") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the store made before the run never connected");
}

/// `ckscheck ARGS` as a child process in `dir`, with test credentials; output to files.
fn spawn(args: &[&str], dir: &Path, label: &str) -> Child {
    let out = std::fs::File::create(dir.join(format!("{label}.out"))).expect("an output file");
    let err = std::fs::File::create(dir.join(format!("{label}.err"))).expect("an output file");
    let mut command = ckscheck_command(args, dir);
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    command.spawn().expect("ckscheck starts")
}

/// What a child printed.
fn printed(dir: &Path, label: &str) -> String {
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{label}.{ext}")));
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        read("out").unwrap_or_default(),
        read("err").unwrap_or_default()
    )
}

/// The run's arguments for a phase.
fn run_args(phase: Phase, proxy: &str, journal: &str, regressions: &str) -> Vec<String> {
    let mut args: Vec<&str> = vec![
        "run",
        "--endpoint-url",
        proxy,
        "--region",
        "us-east-1",
        "--fixtures",
        "builtin",
        "--seed",
        RUN_SEED,
        "--journal",
        journal,
        "--regressions",
        regressions,
    ];
    match phase {
        Phase::Shrinking => {
            args.extend(["--filter", "fields", "--skip", "snapshot::", "--cases", "1"]);
            // This seed's one case fails against the planted fault.
            args[8] = "1";
        }
        Phase::Scenario => args.extend(["--filter", "snapshot::connect"]),
        _ => args.extend(["--filter", "states", "--skip", "snapshot::", "--cases", "6"]),
    }
    args.into_iter().map(str::to_string).collect()
}

/// Starts a run with `trigger` armed and waits until the moment comes; the child is returned
/// still running (the proxy may hold its answer) with what the moment was.
fn until_moment(
    watch: &Watch,
    trigger: Trigger,
    args: &[String],
    dir: &Path,
    label: &str,
) -> (Child, String) {
    let (tx, rx) = mpsc::channel();
    *watch.fired.lock().expect("not poisoned") = Some(tx);
    watch.released.store(false, Ordering::SeqCst);
    *watch.armed.lock().expect("not poisoned") = Some(trigger.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn(&args, dir, label);
    let started = std::time::Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(what) => return (child, what),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
        if let Ok(Some(status)) = child.try_wait() {
            *watch.armed.lock().expect("not poisoned") = None;
            panic!(
                "{label}: the run ended ({status}) before {:?} #{} came:\n{}",
                trigger.phase,
                trigger.nth,
                printed(dir, label)
            );
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label}: {:?} never came:\n{}",
                trigger.phase,
                printed(dir, label)
            );
        }
    }
}

/// Appends the start of one more `creating` entry, cut inside a two-byte character.
fn cut_journal(path: &Path, endpoint: &str) {
    let whole = serde_json::to_vec(&json!({
        "event": "creating",
        "endpoint": endpoint,
        "name": "ckscheck-cut-é-never-sent",
    }))
    .expect("JSON");
    let at = whole
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .expect("the two-byte character")
        + 1;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("the journal");
    f.write_all(&whole[..at]).expect("the cut line");
}

/// `ckscheck cleanup` on `journal`: exit code and output.
fn cleanup(journal: &Path, dir: &Path) -> (i32, String, String) {
    let out = ckscheck(
        &[
            "cleanup",
            "--journal",
            &journal.display().to_string(),
            "--region",
            "us-east-1",
        ],
        dir,
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        text(&out),
    )
}

/// One emulator with a proxy in front, and the stores that were there before any run.
struct Bench {
    emulator: Emulator,
    proxy: String,
    before: Vec<(String, String, String, String)>,
}

fn bench(runtime: &tokio::runtime::Runtime, watch: &Arc<Watch>, serve: &[&str]) -> Bench {
    let emulator = Emulator::start(serve);
    let addr = runtime.block_on(proxy(emulator.url.clone(), watch.clone()));
    let before = runtime.block_on(stores_before(&client(&emulator.url)));
    assert_eq!(before.len(), 3, "{before:?}");
    Bench {
        emulator,
        proxy: format!("http://{addr}"),
        before,
    }
}

#[test]
fn twenty_seeded_kills_across_every_phase_leave_nothing_behind() {
    let dir = scratch("kill");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let watch = Arc::new(Watch::default());
    let serve = ["--connect-delay-ms", "100", "--seed", "17"];
    let healthy = bench(&runtime, &watch, &serve);
    let mut faulty_serve = serve.to_vec();
    faulty_serve.extend(["--fault", "dates-as-strings"]);
    let faulty = bench(&runtime, &watch, &faulty_serve);
    let mut rng = Rng(SEED);
    let mut kills = 0;
    let mut cut = 0;
    let (mut left_behind, mut kills_that_left) = (0, 0);
    for (phase, count) in PLAN {
        for _ in 0..count {
            let i = kills;
            let label = format!("kill-{i:02}-{phase:?}");
            let journal = dir.join(format!("{label}.jsonl"));
            let regressions = dir.join(format!("{label}-regressions"));
            let bench = if phase == Phase::Shrinking {
                &faulty
            } else {
                &healthy
            };
            let trigger = Trigger {
                phase,
                nth: 1 + rng.below(phase.most()) as u32,
                seen: 0,
                hold: rng.below(2) == 0,
                journal: journal.clone(),
            };
            let delay = Duration::from_millis(rng.below(40));
            let args = run_args(
                phase,
                &bench.proxy,
                &journal.display().to_string(),
                &regressions.display().to_string(),
            );
            let (mut child, what) = until_moment(&watch, trigger.clone(), &args, &dir, &label);
            if !trigger.hold {
                std::thread::sleep(delay);
            }
            child.kill().expect("SIGKILL");
            let status = child.wait().expect("reaped");
            watch.released.store(true, Ordering::SeqCst);
            assert_eq!(
                status.signal(),
                Some(9),
                "{label} at {what}: the run ended by itself ({status}):\n{}",
                printed(&dir, &label)
            );
            kills += 1;
            let cut_it = rng.below(2) == 0;
            if cut_it {
                cut_journal(&journal, &bench.proxy);
                cut += 1;
            }

            let url = &bench.emulator.url;
            let left = runtime.block_on(everywhere(url)).len() - bench.before.len();
            left_behind += left;
            if left > 0 {
                kills_that_left += 1;
            }
            let (code, stdout, shown) = cleanup(&journal, &dir);
            assert_eq!(code, 0, "{label} at {what}: cleanup\n{shown}");
            if cut_it {
                assert!(
                    shown.contains("cut short"),
                    "{label}: no warning about the cut line\n{shown}"
                );
            }
            let after = runtime.block_on(everywhere(url));
            assert_eq!(
                after,
                bench.before,
                "{label} at {what}: after cleanup the emulator holds other stores than before \
                 the run (left: run leftovers or changed stores)\ncleanup said:\n{stdout}\nrun:\n{}\njournal:\n{}",
                printed(&dir, &label),
                String::from_utf8_lossy(&std::fs::read(&journal).unwrap_or_default())
            );

            let (code, stdout, shown) = cleanup(&journal, &dir);
            assert_eq!(code, 0, "{label}: second cleanup\n{shown}");
            assert!(
                stdout.contains("nothing to clean up") && !stdout.contains("removed"),
                "{label}: the second cleanup is not a no-op:\n{shown}"
            );
            assert_eq!(
                runtime.block_on(everywhere(url)),
                bench.before,
                "{label}: the second cleanup changed the stores"
            );
            eprintln!("{label}: killed at {what}; it left {left} store(s); none after cleanup");
        }
    }
    assert_eq!(kills, 20);
    assert!(cut > 0, "no journal was cut");
    // The kills proved something: most of them left stores for the cleanup to remove.
    assert!(
        kills_that_left >= 10,
        "only {kills_that_left} kill(s) left a store ({left_behind} in all)"
    );
    eprintln!("{kills} kills, {kills_that_left} left {left_behind} store(s), {cut} journal(s) cut");
}

#[test]
fn ctrl_c_during_a_remote_run_cleans_up_and_exits_130() {
    let dir = scratch("ctrl-c");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let watch = Arc::new(Watch::default());
    let bench = bench(
        &runtime,
        &watch,
        &["--connect-delay-ms", "100", "--seed", "17"],
    );
    // Mid-request, a Create's answer held (its store surely exists, the journal has no ID for
    // it); and right after a Create or a Connect, the run going on (its case would create more
    // while Ctrl-C cleans up).
    for (label, phase, nth, hold) in [
        ("ctrl-c-held-create", Phase::Creating, 5, true),
        ("ctrl-c-create-3", Phase::Creating, 3, false),
        ("ctrl-c-create-9", Phase::Creating, 9, false),
        ("ctrl-c-connect-2", Phase::Connecting, 2, false),
    ] {
        let journal = dir.join(format!("{label}.jsonl"));
        let mut args = run_args(
            Phase::Creating,
            &bench.proxy,
            &journal.display().to_string(),
            &dir.join(format!("{label}-regressions"))
                .display()
                .to_string(),
        );
        // Long enough that Ctrl-C comes mid-run.
        let last = args.len() - 1;
        args[last] = "50".into();
        let trigger = Trigger {
            phase,
            nth,
            seen: 0,
            hold,
            journal: journal.clone(),
        };
        let (mut child, what) = until_moment(&watch, trigger, &args, &dir, label);
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        // A held answer may go now: Ctrl-C waits for the Creates in flight to be answered.
        watch.released.store(true, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waits") {
                break status;
            }
            if started.elapsed() > HANG_GUARD {
                let _ = child.kill();
                panic!(
                    "{label}: the run did not end after Ctrl-C:\n{}",
                    printed(&dir, label)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        watch.released.store(true, Ordering::SeqCst);
        let shown = printed(&dir, label);
        assert_eq!(
            status.code(),
            Some(130),
            "{label} at {what}: {status}\n{shown}"
        );
        assert!(
            shown.contains("interrupted; removing the stores"),
            "{shown}"
        );
        let after = runtime.block_on(everywhere(&bench.emulator.url));
        assert_eq!(
            after,
            bench.before,
            "{label} at {what} left stores behind or changed the ones before:\n{shown}\njournal:\n{}",
            String::from_utf8_lossy(&std::fs::read(&journal).unwrap_or_default())
        );
        let (code, stdout, shown) = cleanup(&journal, &dir);
        assert_eq!(code, 0, "{shown}");
        assert!(stdout.contains("nothing to clean up"), "{label}: {shown}");
        eprintln!("{label}: Ctrl-C at {what}; exit 130, nothing left");
    }
}

#[test]
fn cleanup_that_cannot_reach_the_endpoint_keeps_the_entry_and_fails() {
    let dir = scratch("kill-unreachable");
    let journal = dir.join("journal.jsonl");
    // Nothing listens on port 1: the store may well exist, nobody can say.
    let entry = json!({
        "event": "creating",
        "endpoint": "http://127.0.0.1:1",
        "name": "ckscheck-unreachable-x",
    });
    std::fs::write(&journal, format!("{entry}\n")).expect("a journal");
    for attempt in ["first", "second"] {
        let (code, stdout, shown) = cleanup(&journal, &dir);
        assert_eq!(code, 1, "{attempt} cleanup:\n{shown}");
        assert!(
            stdout.contains("could not remove ckscheck-unreachable-x"),
            "{attempt} cleanup:\n{shown}"
        );
    }
}

/// `cleanup --transition-timeout` bounds the wait for a store stuck in CONNECTING: the entry
/// stays and the cleanup fails in about that time (with the 60 s default it would wait the
/// 30 s connect out and succeed). Fails if cleanup ignores the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_waits_for_a_transition_no_longer_than_told() {
    let served = Emulator::start(&["--connect-delay-ms", "30000"]);
    let client = KmsClient::new(
        &served.url,
        "eu-west-1",
        Credential::new("AKIDCLEANUP", "secret"),
        Duration::from_secs(10),
    )
    .expect("a client");
    let name = "ckscheck-slow-connect";
    let body = ckscheck::generate::backends::create_body(
        &ckscheck::model::Fixtures::builtin(),
        ckscheck::generate::backends::Backend::Cluster(0),
        name,
        true,
    );
    let made = client.call("CreateCustomKeyStore", &body).await.unwrap();
    assert_eq!(made.status, 200, "{}", made.text);
    let id = made.body["CustomKeyStoreId"].as_str().unwrap().to_string();
    let connect = json!({ "CustomKeyStoreId": id });
    let connecting = client
        .call("ConnectCustomKeyStore", &connect)
        .await
        .unwrap();
    assert_eq!(connecting.status, 200, "{}", connecting.text);
    let dir = scratch("kill-transition-timeout");
    let journal = dir.join("journal.jsonl");
    let entry = json!({
        "event": "created", "endpoint": served.url, "region": "eu-west-1", "name": name, "id": id,
    });
    std::fs::write(&journal, format!("{entry}\n")).expect("a journal");
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking({
        let (journal, dir) = (journal.clone(), dir.clone());
        move || {
            // No --region: the entry names its own.
            ckscheck(
                &[
                    "cleanup",
                    "--journal",
                    journal.to_str().unwrap(),
                    "--transition-timeout",
                    "1",
                ],
                &dir,
            )
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("could not remove {name}")),
        "{}",
        text(&out)
    );
    assert!(took < Duration::from_secs(20), "cleanup took {took:?}");
    let listed = client
        .call("DescribeCustomKeyStores", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        listed.body["CustomKeyStores"][0]["CustomKeyStoreId"],
        json!(id)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
