//! Interoperability with AWS's own clients: the AWS CLI (v1) and boto3 drive the whole custom key
//! store lifecycle against `ckscheck serve`, with SigV4 verification on, so the emulator is held
//! against real request signing, real error parsing and real pagination.
//!
//! The clients come from `CKSCHECK_AWS_CLI` (an `aws` executable) and `CKSCHECK_PYTHON` (a Python
//! with boto3); `.ci/run` sets both from its venv. Without them the tests are skipped, except on
//! CI (`CI` set), where a missing client is a failure.
//!
//! Each test starts its own emulator on a free port with the built-in fixtures
//! (`specs/fixtures.example.toml`) and kills it when it ends, also on failure. The clients get a
//! private environment: the emulator's key pair, region us-east-1, a config file of our own, an
//! empty credentials file, a private HOME, no instance metadata, no proxy and no retries.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use regex::Regex;
use serde_json::Value;

mod common;
use common::Emulator;

/// The key pair the emulator verifies signatures against and the clients sign with.
const ACCESS_KEY_ID: &str = "AKIDCKSCHECKINTEROP";
const SECRET_ACCESS_KEY: &str = "ckscheckInteropSecretKey0123456789abcdefgh";

/// How long one `aws` invocation may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the whole boto3 script may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a store may take to reach a state we wait for (the emulator is told 200 ms).
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// The AWS CLI v1 exits 255 for any failed command, service errors included (v2 uses 254).
const CLI_ERROR_EXIT: i32 = 255;

/// Backends from the built-in fixtures.
const CLUSTER_A: &str = "cluster-healthyaaaaa";
const ANCHOR_A: &str = "-----BEGIN CERTIFICATE-----\nMIIBhealthyA\n-----END CERTIFICATE-----";
const PASSWORD_A: &str = "kmsuser-pass-a";
const CLUSTER_B: &str = "cluster-healthybbbbb";
const ANCHOR_B: &str = "-----BEGIN CERTIFICATE-----\nMIIBhealthyB\n-----END CERTIFICATE-----";
const PASSWORD_B: &str = "kmsuser-pass-b";
const CLUSTER_D: &str = "cluster-healthyddddd";
const PROXY_ENDPOINT: &str = "https://xks-ok.example.test";
const PROXY_PATH: &str = "/ok/kms/xks/v1";
const PROXY_ACCESS_KEY_ID: &str = "OKPROXYACCESSKEYAAAA";
const PROXY_SECRET: &str = "okProxySecretAccessKeyAAAAAAAAAAAAAAAAAAAA1";

/// Text that must never appear in anything a client prints.
const NEVER_SHOWN: [&str; 5] = [
    "KeyStorePassword",
    "RawSecretAccessKey",
    PASSWORD_A,
    PASSWORD_B,
    PROXY_SECRET,
];

/// A well-formed store ID that the emulator never issued.
const UNKNOWN_ID: &str = "cks-00000000000000000";

/// Whether we run on CI (env var `CI` set and non-empty).
fn on_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The client executable named by `var`; None (skip) when unset, a failure when unset on CI.
fn client_or_skip(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => {
            let path = PathBuf::from(p);
            assert!(
                path.is_file(),
                "{var}={} does not name a file ({what})",
                path.display()
            );
            Some(path)
        }
        _ => {
            assert!(
                !on_ci(),
                "{var} is not set, but CI is: .ci/run should have set it ({what} from its venv)"
            );
            println!(
                "skipped: {var} is not set (set it to {what}, as .ci/run does, to run this test)"
            );
            None
        }
    }
}

/// A scratch directory under Cargo's target tmpdir, removed when dropped (kept on failure).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> ScratchDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("interop-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        ScratchDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("client files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a finished client process did.
struct Ran {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "{}\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    /// Fails if anything the client printed names a secret member or shows a secret value.
    fn assert_no_secrets(&self) {
        for secret in NEVER_SHOWN {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "a client output shows secret material ({}):\n{}",
                if secret.starts_with(char::is_uppercase) {
                    secret
                } else {
                    "a secret value"
                },
                self.what
            );
        }
    }
}

/// Runs `command` to completion within `timeout`, killing it if it takes longer.
fn run_bounded(mut command: Command, what: String, timeout: Duration) -> Ran {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let text = |h: JoinHandle<Vec<u8>>| {
                    String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
                };
                panic!(
                    "{what} did not finish within {timeout:?} and was killed ({status:?})\n\
                     --- stdout ---\n{}\n--- stderr ---\n{}",
                    text(out),
                    text(err)
                );
            }
        }
    };
    let text = |h: JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
    };
    Ran {
        what,
        status,
        stdout: text(out),
        stderr: text(err),
    }
}

/// A command for a client with a private, deterministic AWS environment.
fn client_command(program: &Path, scratch: &ScratchDir, config_file: &Path) -> Command {
    let credentials_file = scratch.write("credentials", "");
    let home = scratch.0.join("home");
    std::fs::create_dir_all(&home).expect("cannot create the client's HOME");
    let mut command = Command::new(program);
    let inherited: Vec<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
    for key in inherited {
        let upper = key.to_string_lossy().to_ascii_uppercase();
        if upper.starts_with("AWS_") || upper.ends_with("_PROXY") || upper == "BOTO_CONFIG" {
            command.env_remove(&key);
        }
    }
    command
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", config_file)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials_file)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("HOME", &home)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    command
}

/// The AWS CLI pointed at one emulator.
struct AwsCli<'a> {
    aws: &'a Path,
    endpoint: &'a str,
    scratch: &'a ScratchDir,
    config_file: PathBuf,
}

impl AwsCli<'_> {
    /// Runs `aws --endpoint-url URL --output json kms ARGS` with extra environment `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut command = client_command(self.aws, self.scratch, &self.config_file);
        command
            .args(["--endpoint-url", self.endpoint, "--output", "json"])
            .args(["--cli-connect-timeout", "5", "--cli-read-timeout", "30"])
            .arg("kms")
            .args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if NEVER_SHOWN.iter().any(|s| a.contains(s)) {
                    "***".to_string()
                } else {
                    format!("{a:?}")
                }
            })
            .collect();
        let what = format!("aws kms {}", shown.join(" "));
        let ran = run_bounded(command, what, CLI_TIMEOUT);
        ran.assert_no_secrets();
        ran
    }

    /// A command that must succeed; its JSON output (Null when it prints nothing).
    fn ok(&self, args: &[&str]) -> Value {
        let ran = self.run(args, &[]);
        assert!(
            ran.status.success(),
            "expected success:\n{}",
            ran.describe()
        );
        if ran.stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("output is not JSON ({e}):\n{}", ran.describe()))
    }

    /// A command that must fail with the service error `code` from `operation`.
    fn error(&self, what: &str, args: &[&str], env: &[(&str, &str)], operation: &str, code: &str) {
        let ran = self.run(args, env);
        let expected = format!("An error occurred ({code}) when calling the {operation} operation");
        assert!(
            ran.status.code() == Some(CLI_ERROR_EXIT) && ran.stderr.contains(&expected),
            "{what}: expected exit {CLI_ERROR_EXIT} and {expected:?}:\n{}",
            ran.describe()
        );
        assert!(
            ran.stdout.trim().is_empty(),
            "{what}: a failed command printed output:\n{}",
            ran.describe()
        );
        println!("ok    {what}: ({code}), exit {CLI_ERROR_EXIT}");
    }

    /// The `CustomKeyStores` of a describe with `args`.
    fn stores(&self, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["describe-custom-key-stores"];
        full.extend_from_slice(args);
        let out = self.ok(&full);
        out["CustomKeyStores"]
            .as_array()
            .unwrap_or_else(|| panic!("no CustomKeyStores list in {out}"))
            .clone()
    }

    /// Polls describe until every store in `ids` is `wanted`; other states must be `passing`.
    fn wait_for(&self, ids: &[&str], wanted: &str, passing: &str) {
        let deadline = Instant::now() + POLL_TIMEOUT;
        let mut seen: Vec<Vec<String>> = vec![Vec::new(); ids.len()];
        loop {
            let stores = self.stores(&[]);
            for (i, id) in ids.iter().enumerate() {
                let state = stores.iter().find(|s| s["CustomKeyStoreId"] == *id).map_or(
                    "(missing)".to_string(),
                    |s| {
                        s["ConnectionState"]
                            .as_str()
                            .unwrap_or("(none)")
                            .to_string()
                    },
                );
                assert!(
                    state == wanted || state == passing,
                    "waiting for {wanted}: store {id} is {state} (seen {:?})",
                    seen[i]
                );
                if seen[i].last() != Some(&state) {
                    seen[i].push(state);
                }
            }
            if seen
                .iter()
                .all(|s| s.last().map(String::as_str) == Some(wanted))
            {
                println!("ok    stores reached {wanted}; states seen: {seen:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stores {ids:?} did not reach {wanted} within {POLL_TIMEOUT:?}; seen {seen:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn id_pattern() -> Regex {
    Regex::new(r"^cks-[0-9a-f]{17}$").expect("regex")
}

/// The store ID a create printed.
fn created_id(out: &Value) -> String {
    let id = out["CustomKeyStoreId"]
        .as_str()
        .unwrap_or_else(|| panic!("no CustomKeyStoreId in {out}"))
        .to_string();
    assert!(
        id_pattern().is_match(&id),
        "store ID {id:?} is not cks- + 17 hex digits"
    );
    id
}

fn ids_of(stores: &[Value]) -> Vec<String> {
    stores
        .iter()
        .map(|s| {
            s["CustomKeyStoreId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Asserts each of `expected` appears exactly once in `got` and nothing else does.
fn assert_each_once(got: &[String], expected: &[&str], what: &str) {
    let mut sorted_got = got.to_vec();
    sorted_got.sort();
    let mut sorted_expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    sorted_expected.sort();
    assert_eq!(
        sorted_got, sorted_expected,
        "{what}: each store exactly once"
    );
}

/// Checks the fields of a describe entry against what we created.
fn check_entry(store: &Value, id: &str, name: &str, external: bool, state: &str) {
    let context = format!("entry {store:#}");
    assert_eq!(store["CustomKeyStoreId"], id, "{context}");
    assert_eq!(store["CustomKeyStoreName"], name, "{context}");
    assert_eq!(store["ConnectionState"], state, "{context}");
    assert!(
        store["CreationDate"].is_number(),
        "CreationDate is not a number: {context}"
    );
    assert!(store.get("ConnectionErrorCode").is_none(), "{context}");
    if external {
        assert_eq!(
            store["CustomKeyStoreType"], "EXTERNAL_KEY_STORE",
            "{context}"
        );
        assert!(store.get("CloudHsmClusterId").is_none(), "{context}");
        assert!(store.get("TrustAnchorCertificate").is_none(), "{context}");
        let xks = &store["XksProxyConfiguration"];
        assert_eq!(xks["Connectivity"], "PUBLIC_ENDPOINT", "{context}");
        assert_eq!(xks["AccessKeyId"], PROXY_ACCESS_KEY_ID, "{context}");
        assert_eq!(xks["UriEndpoint"], PROXY_ENDPOINT, "{context}");
        assert_eq!(xks["UriPath"], PROXY_PATH, "{context}");
        assert!(xks.get("VpcEndpointServiceName").is_none(), "{context}");
    } else {
        assert_eq!(store["CustomKeyStoreType"], "AWS_CLOUDHSM", "{context}");
        assert!(
            store["CloudHsmClusterId"]
                .as_str()
                .is_some_and(|c| c.starts_with("cluster-")),
            "{context}"
        );
        assert!(store["TrustAnchorCertificate"].is_string(), "{context}");
        assert!(store.get("XksProxyConfiguration").is_none(), "{context}");
    }
}

#[test]
fn aws_cli_drives_the_lifecycle_of_both_store_types() {
    let Some(aws) = client_or_skip("CKSCHECK_AWS_CLI", "an AWS CLI v1 `aws` executable") else {
        return;
    };
    let started = Instant::now();
    let scratch = ScratchDir::new("aws-cli");
    // The AWS CLI v1 fetches parameter values that start with https:// (the proxy endpoint)
    // unless told not to.
    let config_file = scratch.write("config", "[default]\ncli_follow_urlparam = false\n");
    let emulator = Emulator::start(&[
        "--connect-delay-ms",
        "200",
        "--verify-sigv4",
        &format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"),
    ]);
    let cli = AwsCli {
        aws: &aws,
        endpoint: &emulator.url,
        scratch: &scratch,
        config_file,
    };
    let mut version = client_command(&aws, &scratch, &cli.config_file);
    version.arg("--version");
    let version = run_bounded(version, "aws --version".into(), CLI_TIMEOUT);
    println!("client: {}{}", version.stdout.trim(), version.stderr.trim());
    let anchor_file = scratch.write("anchor-a.pem", ANCHOR_A);
    let anchor_a_param = format!("file://{}", anchor_file.display());
    let anchor_b_param = format!("--trust-anchor-certificate={ANCHOR_B}");
    let proxy_credential =
        format!("AccessKeyId={PROXY_ACCESS_KEY_ID},RawSecretAccessKey={PROXY_SECRET}");
    let (hsm_name, xks_name, hsm_b_name) =
        ("interop-cli-hsm", "interop-cli-xks", "interop-cli-hsm-b");

    assert!(
        cli.stores(&[]).is_empty(),
        "the emulator starts with stores"
    );

    // Create: a CloudHSM store (trust anchor from a file://), an external store, another CloudHSM.
    let hsm = created_id(&cli.ok(&[
        "create-custom-key-store",
        "--custom-key-store-name",
        hsm_name,
        "--cloud-hsm-cluster-id",
        CLUSTER_A,
        "--trust-anchor-certificate",
        &anchor_a_param,
        "--key-store-password",
        PASSWORD_A,
    ]));
    let xks = created_id(&cli.ok(&[
        "create-custom-key-store",
        "--custom-key-store-name",
        xks_name,
        "--custom-key-store-type",
        "EXTERNAL_KEY_STORE",
        "--xks-proxy-uri-endpoint",
        PROXY_ENDPOINT,
        "--xks-proxy-uri-path",
        PROXY_PATH,
        "--xks-proxy-connectivity",
        "PUBLIC_ENDPOINT",
        "--xks-proxy-authentication-credential",
        &proxy_credential,
    ]));
    let hsm_b = created_id(&cli.ok(&[
        "create-custom-key-store",
        "--custom-key-store-name",
        hsm_b_name,
        "--cloud-hsm-cluster-id",
        CLUSTER_B,
        &anchor_b_param,
        "--key-store-password",
        PASSWORD_B,
    ]));
    let all = [hsm.as_str(), xks.as_str(), hsm_b.as_str()];
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        3,
        "IDs are not distinct: {all:?}"
    );
    println!("ok    created {hsm} (CloudHSM), {xks} (external), {hsm_b} (CloudHSM)");

    // Describe: all, by name, by ID.
    let listed = cli.stores(&[]);
    assert_each_once(&ids_of(&listed), &all, "describe (all)");
    for store in &listed {
        let (name, external) = match store["CustomKeyStoreId"].as_str() {
            Some(id) if id == hsm => (hsm_name, false),
            Some(id) if id == xks => (xks_name, true),
            _ => (hsm_b_name, false),
        };
        let id = store["CustomKeyStoreId"].as_str().unwrap_or_default();
        check_entry(store, id, name, external, "DISCONNECTED");
    }
    assert_eq!(
        listed
            .iter()
            .find(|s| s["CustomKeyStoreId"] == *hsm)
            .map(|s| &s["TrustAnchorCertificate"]),
        Some(&Value::from(ANCHOR_A))
    );
    println!("ok    describe (all): 3 stores, fields per type, all DISCONNECTED");
    let by_name = cli.stores(&["--custom-key-store-name", xks_name]);
    assert_eq!(ids_of(&by_name), [xks.as_str()], "describe by name");
    check_entry(&by_name[0], &xks, xks_name, true, "DISCONNECTED");
    let by_id = cli.stores(&["--custom-key-store-id", &hsm]);
    assert_eq!(ids_of(&by_id), [hsm.as_str()], "describe by ID");
    check_entry(&by_id[0], &hsm, hsm_name, false, "DISCONNECTED");
    println!("ok    describe by --custom-key-store-name and by --custom-key-store-id");

    // Paging: --page-size 1 makes the CLI follow NextMarker and merge the pages.
    let paged = cli.run(
        &["describe-custom-key-stores", "--page-size", "1", "--debug"],
        &[],
    );
    assert!(
        paged.status.success(),
        "paged describe:\n{}",
        paged.describe()
    );
    let merged: Value = serde_json::from_str(&paged.stdout)
        .unwrap_or_else(|e| panic!("paged describe is not JSON ({e}):\n{}", paged.describe()));
    let merged_stores = merged["CustomKeyStores"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_each_once(&ids_of(&merged_stores), &all, "describe --page-size 1");
    assert!(
        merged.get("NextMarker").is_none() && merged.get("NextToken").is_none(),
        "{merged}"
    );
    let requests: Vec<&str> = paged
        .stderr
        .lines()
        .filter(|l| l.contains("Making request for OperationModel(name=DescribeCustomKeyStores)"))
        .collect();
    let with_marker = requests
        .iter()
        .filter(|l| l.contains("\"Marker\": \""))
        .count();
    assert!(
        requests.len() >= 3 && with_marker == requests.len() - 1,
        "expected >= 3 DescribeCustomKeyStores requests, all but the first with a Marker; \
         got {} ({with_marker} with a Marker):\n{}",
        requests.len(),
        requests.join("\n")
    );
    println!(
        "ok    describe --page-size 1: {} requests following NextMarker, each store once",
        requests.len()
    );

    // --max-items 1: one store and a NextToken; --starting-token resumes with the others.
    let first = cli.ok(&["describe-custom-key-stores", "--max-items", "1"]);
    let first_stores = first["CustomKeyStores"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let token = first["NextToken"].as_str().unwrap_or_default().to_string();
    assert!(
        first_stores.len() == 1 && !token.is_empty(),
        "--max-items 1: {first:#}"
    );
    let rest = cli.ok(&["describe-custom-key-stores", "--starting-token", &token]);
    assert!(
        rest.get("NextToken").is_none(),
        "--starting-token: {rest:#}"
    );
    let mut resumed = ids_of(&first_stores);
    resumed.extend(ids_of(
        rest["CustomKeyStores"].as_array().map_or(&[][..], |v| v),
    ));
    assert_each_once(&resumed, &all, "--max-items 1, then --starting-token");
    println!(
        "ok    describe --max-items 1 shows a NextToken; --starting-token resumes with the rest"
    );

    // Errors while disconnected.
    cli.error(
        "unknown ID",
        &[
            "describe-custom-key-stores",
            "--custom-key-store-id",
            UNKNOWN_ID,
        ],
        &[],
        "DescribeCustomKeyStores",
        "CustomKeyStoreNotFoundException",
    );
    cli.error(
        "duplicate name",
        &[
            "create-custom-key-store",
            "--custom-key-store-name",
            hsm_name,
            "--cloud-hsm-cluster-id",
            CLUSTER_D,
            "--trust-anchor-certificate",
            &anchor_a_param,
            "--key-store-password",
            PASSWORD_A,
        ],
        &[],
        "CreateCustomKeyStore",
        "CustomKeyStoreNameInUseException",
    );
    cli.error(
        "wrong trust anchor",
        &[
            "create-custom-key-store",
            "--custom-key-store-name",
            "interop-cli-bad-anchor",
            "--cloud-hsm-cluster-id",
            CLUSTER_D,
            "--trust-anchor-certificate",
            &anchor_a_param,
            "--key-store-password",
            PASSWORD_A,
        ],
        &[],
        "CreateCustomKeyStore",
        "IncorrectTrustAnchorException",
    );
    cli.error(
        "name and ID together (inferred error type)",
        &[
            "describe-custom-key-stores",
            "--custom-key-store-id",
            &hsm,
            "--custom-key-store-name",
            hsm_name,
        ],
        &[],
        "DescribeCustomKeyStores",
        "ValidationException",
    );
    let wrong_secret = format!("{SECRET_ACCESS_KEY}-wrong");
    cli.error(
        "wrong secret key",
        &["describe-custom-key-stores"],
        &[("AWS_SECRET_ACCESS_KEY", &wrong_secret)],
        "DescribeCustomKeyStores",
        "InvalidSignatureException",
    );
    cli.error(
        "unknown access key",
        &["describe-custom-key-stores"],
        &[("AWS_ACCESS_KEY_ID", "AKIDUNKNOWNTOTHESERVER")],
        "DescribeCustomKeyStores",
        "UnrecognizedClientException",
    );

    // Connect both, wait for CONNECTED.
    for id in [&hsm, &xks] {
        let out = cli.ok(&["connect-custom-key-store", "--custom-key-store-id", id]);
        assert!(
            out.is_null() || out == serde_json::json!({}),
            "connect printed {out}"
        );
    }
    cli.wait_for(&[&hsm, &xks], "CONNECTED", "CONNECTING");
    cli.error(
        "delete while CONNECTED",
        &["delete-custom-key-store", "--custom-key-store-id", &hsm],
        &[],
        "DeleteCustomKeyStore",
        "CustomKeyStoreInvalidStateException",
    );

    // Rename while CONNECTED (ckscheck's default switch update-while-connected=operation-page).
    let renamed = [
        (&hsm, "interop-cli-hsm-renamed"),
        (&xks, "interop-cli-xks-renamed"),
    ];
    for (id, new_name) in renamed {
        let out = cli.ok(&[
            "update-custom-key-store",
            "--custom-key-store-id",
            id,
            "--new-custom-key-store-name",
            new_name,
        ]);
        assert!(
            out.is_null() || out == serde_json::json!({}),
            "update printed {out}"
        );
        let found = cli.stores(&["--custom-key-store-name", new_name]);
        assert_eq!(
            ids_of(&found),
            [id.as_str()],
            "describe by the new name {new_name}"
        );
        check_entry(&found[0], id, new_name, id == &xks, "CONNECTED");
    }
    println!("ok    renamed both stores while CONNECTED");

    // Disconnect both, wait for DISCONNECTED, delete everything.
    for id in [&hsm, &xks] {
        let out = cli.ok(&["disconnect-custom-key-store", "--custom-key-store-id", id]);
        assert!(
            out.is_null() || out == serde_json::json!({}),
            "disconnect printed {out}"
        );
    }
    cli.wait_for(&[&hsm, &xks], "DISCONNECTED", "DISCONNECTING");
    for id in all {
        let out = cli.ok(&["delete-custom-key-store", "--custom-key-store-id", id]);
        assert!(
            out.is_null() || out == serde_json::json!({}),
            "delete printed {out}"
        );
    }
    assert!(cli.stores(&[]).is_empty(), "stores left after the deletes");
    println!("ok    disconnected and deleted all stores");
    cli.error(
        "delete a deleted store",
        &["delete-custom-key-store", "--custom-key-store-id", &xks],
        &[],
        "DeleteCustomKeyStore",
        "CustomKeyStoreNotFoundException",
    );
    println!("aws cli interop passed in {:.1?}", started.elapsed());
    drop(emulator);
}

#[test]
fn boto3_drives_the_lifecycle_of_both_store_types() {
    let Some(python) = client_or_skip("CKSCHECK_PYTHON", "a Python that has boto3") else {
        return;
    };
    let started = Instant::now();
    let scratch = ScratchDir::new("boto3");
    let config_file = scratch.write("config", "[default]\n");
    let emulator = Emulator::start(&[
        "--connect-delay-ms",
        "200",
        "--verify-sigv4",
        &format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"),
    ]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/boto3_lifecycle.py");
    let mut command = client_command(&python, &scratch, &config_file);
    command.arg(&script).arg(&emulator.url);
    let ran = run_bounded(
        command,
        format!("{} {} {}", python.display(), script.display(), emulator.url),
        SCRIPT_TIMEOUT,
    );
    ran.assert_no_secrets();
    assert!(
        ran.status.success(),
        "the boto3 script failed:\n{}",
        ran.describe()
    );
    print!("{}", ran.stdout);
    println!("boto3 interop passed in {:.1?}", started.elapsed());
    drop(emulator);
}
