//! Helpers shared by integration tests: a `ckscheck serve` child process, and the ckscheck
//! binary run with test credentials in a scratch folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use regex::Regex;

/// How long the emulator may take to print its URL.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A `ckscheck serve` child process; killed (and its output shown on failure) when dropped.
pub struct Emulator {
    child: Child,
    /// The URL it serves on.
    pub url: String,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Starts `ckscheck serve --port 0 ARGS...` and waits for the line that names its URL.
    pub fn start(args: &[&str]) -> Emulator {
        let child = Command::new(env!("CARGO_BIN_EXE_ckscheck"))
            .args(["serve", "--port", "0"])
            .args(args)
            .env_remove("CKSCHECK_VERIFY_SIGV4")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start ckscheck serve");
        // From here on the guard owns the child: any panic below kills it.
        let mut emulator = Emulator {
            child,
            url: String::new(),
            log: Arc::new(Mutex::new(String::new())),
            readers: Vec::new(),
        };
        let (tx, rx) = mpsc::channel();
        let stdout = emulator.child.stdout.take().expect("piped stdout");
        let log = emulator.log.clone();
        // Keeps draining after the URL line, so the server never writes to a closed pipe.
        emulator.readers.push(thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("ckscheck emulator listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                append(&log, "stdout", &line);
            }
        }));
        let stderr = emulator.child.stderr.take().expect("piped stderr");
        let log = emulator.log.clone();
        emulator.readers.push(thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                append(&log, "stderr", &line);
            }
        }));
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) => emulator.url = url,
            Err(e) => {
                let _ = emulator.child.kill();
                let _ = emulator.child.wait();
                for reader in emulator.readers.drain(..) {
                    let _ = reader.join();
                }
                panic!(
                    "ckscheck serve did not print its URL ({e:?}); status {:?}, output:\n{}",
                    emulator.child.try_wait(),
                    emulator.output()
                );
            }
        }
        assert!(
            Regex::new(r"^http://127\.0\.0\.1:[1-9][0-9]*$")
                .expect("regex")
                .is_match(&emulator.url),
            "unexpected emulator URL {:?}",
            emulator.url
        );
        emulator
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn append(log: &Mutex<String>, stream: &str, line: &str) {
    if let Ok(mut log) = log.lock() {
        log.push_str(&format!("[{stream}] {line}\n"));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if thread::panicking() {
            eprintln!("emulator at {} said:\n{}", self.url, self.output());
        }
    }
}

#[allow(dead_code)]
/// Runs the ckscheck binary with test credentials and no ambient AWS configuration.
pub fn ckscheck(args: &[&str], scratch: &Path) -> Output {
    ckscheck_command(args, scratch)
        .output()
        .expect("ckscheck runs")
}

#[allow(dead_code)]
/// The ckscheck binary with ARGS in `scratch`, test credentials and no ambient AWS
/// configuration, ready to run or spawn.
pub fn ckscheck_command(args: &[&str], scratch: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ckscheck"));
    command
        .args(args)
        .current_dir(scratch)
        .env("AWS_ACCESS_KEY_ID", "AKIDCKSCHECKRECORD")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "ckscheckRecordTestSecret0123456789",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", scratch)
        .env("CI", "true");
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_KMS",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        command.env_remove(var);
    }
    command
}

#[allow(dead_code)]
/// A loopback HTTP/1.1 server whose every request `handle` answers (a proxy in front of an
/// endpoint, say, that watches or changes what passes); its address. It serves until the
/// runtime it was started on ends.
pub async fn loopback_server<H, F>(handle: H) -> std::net::SocketAddr
where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>>
        + Send
        + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[allow(dead_code)]
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ckscheck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

#[allow(dead_code)]
pub fn text(o: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[allow(dead_code)]
/// Each trial's status and the sorted deviation ids of a JSON report.
pub fn report_verdicts(path: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let report = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(path).expect("a JSON report"),
    )
    .unwrap();
    let trials = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("status"))
        })
        .collect();
    let mut ids: Vec<String> = report["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    (trials, ids)
}

#[allow(dead_code)]
/// An in-process emulator on loopback with `faults` planted and `model`, and a signed client
/// for it (5 s to start and per call).
pub async fn embedded(
    faults: &[ckscheck::emulator::Fault],
    model: ckscheck::model::ModelConfig,
) -> (
    ckscheck::emulator::RunningEmulator,
    ckscheck::runner::KmsClient,
) {
    let step = Duration::from_secs(5);
    let config = ckscheck::emulator::EmulatorConfig {
        model,
        faults: faults.to_vec(),
        ..ckscheck::emulator::EmulatorConfig::default()
    };
    let running = tokio::time::timeout(step, ckscheck::emulator::start_on_loopback(config))
        .await
        .expect("starts in time")
        .expect("starts");
    let client = ckscheck::runner::KmsClient::new(
        &running.url(),
        "us-east-1",
        ckscheck::sigv4::Credential::new(
            "AKIDEMBEDDEDTESTAAAA",
            "embeddedTestSecretAccessKeyAAAAAAAAAAAAAA",
        ),
        step,
    )
    .expect("client");
    (running, client)
}
