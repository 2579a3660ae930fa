//! `ckscheck xks run`: certify an XKS proxy (default: the embedded reference proxy, over TLS)
//! with the certification checks as libtest trials, the same reports and exit codes as
//! `ckscheck run`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

use super::checks::{self, Ctx, Keys, XksCheck};
use super::client::{SendError, XksClient, XksTarget};
use super::reproduce::{self, Facts};
use super::tls::{Identity, Roots};
use crate::proxy::{self, ProxyConfig, ProxyFault, RunningProxy};
use crate::report::reproducer::sh_word;
use crate::report::{CheckReport, EMBEDDED_PROXY, RunReport};
use crate::sigv4::Credential;
use crate::spec::Spec;
use crate::suite::partition::Partition;

/// Where `ckscheck xks serve` listens by default: reproducers of an embedded run point here.
pub const SERVE_PORT: u16 = 4443;

/// How long one request may take: eight times KMS's 250 ms budget, so a slow answer is still
/// measured and a hung proxy costs little.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What a run against a plain `http://` endpoint says at the top of every report.
pub const PLAIN_HTTP_CAVEAT: &str = "plain HTTP: TLS was not part of this certification (no server certificate, cipher suite or mutual TLS check); KMS connects to an XKS proxy only over HTTPS, so certify the TLS in front of it separately";

/// Where `ckscheck xks serve` writes its CA certificate by default.
pub const SERVE_CA_FILE: &str = "ckscheck-xks-ca.pem";

/// `ckscheck xks run`'s command line.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(
    after_help = "Exit codes: 0 every check passed; 1 at least one check found non-conformance; \
2 usage or configuration error (e.g. the proxy cannot be reached or its certificate is not \
trusted).\n\nWith no --endpoint-url the embedded reference proxy is started in-process over TLS. \
Against a proxy, give --key-id and the credential: --access-key-id / --secret-access-key or \
XKS_ACCESS_KEY_ID / XKS_SECRET_ACCESS_KEY (never printed). A second credential for the same URI \
path (XKS_ACCESS_KEY_ID_2 / XKS_SECRET_ACCESS_KEY_2) tests rotation. SHOULD-level rules (clock \
skew, rotation, mTLS) warn, and fail only with --strict; inferred rules say so in their message.\n\n\
An http:// endpoint (a proxy behind a TLS-terminating load balancer, or in development; e.g. \
`ckscheck xks serve --plain-http`) is certified without TLS: every report says so, the SHOULD \
finding tls/https-required is reported, and the TLS checks (server certificate, mutual TLS) are \
reported as not run."
)]
pub struct RunArgs {
    /// The proxy: https://HOST[:PORT], or http://HOST[:PORT] without TLS (TLS then not
    /// certified) [default: the embedded reference proxy].
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The proxy's URI path, [/PREFIX]/kms/xks/v1 [default: /kms/xks/v1 against a proxy].
    #[arg(long, value_name = "PATH")]
    pub uri_path: Option<String>,
    /// An enabled AES-256 key allowed to encrypt and decrypt (required against a proxy).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// A key allowed only to encrypt (enables part of xks-key-usage).
    #[arg(long, value_name = "ID")]
    pub key_id_encrypt_only: Option<String>,
    /// A key allowed only to decrypt (enables part of xks-key-usage).
    #[arg(long, value_name = "ID")]
    pub key_id_decrypt_only: Option<String>,
    /// A key with no usage at all, neither ENCRYPT nor DECRYPT (enables part of xks-key-usage).
    #[arg(long, value_name = "ID")]
    pub key_id_no_usage: Option<String>,
    /// A disabled key (enables part of xks-key-usage).
    #[arg(long, value_name = "ID")]
    pub key_id_disabled: Option<String>,
    /// PEM file of the CA that signed the proxy's certificate [default: the system roots].
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// The region requests are signed for (KMS signs with its own region).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Access key id of the proxy credential.
    #[arg(long, env = "XKS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    /// Secret access key of the proxy credential (prefer the environment variable).
    #[arg(long, env = "XKS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// Generated cases per property check.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub cases: u32,
    /// Seed that replays the generated inputs (printed by every run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Let SHOULD-level findings (otherwise warnings) fail the run.
    #[arg(long)]
    pub strict: bool,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a machine-readable JSON report.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with the certification summary (opens offline).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Run only the checks whose name contains this.
    #[arg(long, value_name = "SUBSTRING")]
    pub filter: Option<String>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
    /// Plant a fault in the embedded proxy (repeatable; see `ckscheck xks serve --help`).
    #[arg(long = "fault", value_name = "NAME", value_parser = ProxyFault::parse)]
    pub faults: Vec<ProxyFault>,
    /// Run only shard M of N of the selected checks, as cargo-nextest splits tests: `count:M/N`
    /// (round robin in list order) or `hash:M/N` (by a hash of the name); `ckscheck report
    /// merge` joins the shards' JSON reports.
    #[arg(long, value_name = "count:M/N|hash:M/N", value_parser = Partition::parse)]
    pub partition: Option<Partition>,
}

/// A run ready to go: the checks' context, the embedded proxy if any, and the report facts.
pub struct Prepared {
    /// What every check gets.
    pub ctx: Arc<Ctx>,
    /// The embedded proxy (kept running while the checks run).
    pub proxy: Option<RunningProxy>,
    /// What curl reproducers need.
    pub facts: Facts,
    /// The endpoint as the report names it.
    pub endpoint: String,
    /// What the run does not certify (plain HTTP: TLS), said at the top of every report.
    pub caveats: Vec<String>,
    /// The replay command without `--seed` and `--filter`.
    replay_flags: String,
}

fn read(path: &PathBuf, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// Resolves the target (starting the embedded proxy when there is none), credentials and keys.
pub fn prepare(args: &RunArgs, runtime: &tokio::runtime::Runtime) -> Result<Prepared, String> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let spec = Spec::xks();
    let identity = match (&args.client_cert, &args.client_key) {
        (Some(c), Some(k)) => Some(Identity::from_pem(
            &read(c, "the client certificate")?,
            &read(k, "the client key")?,
        )?),
        _ => None,
    };
    let mut replay_flags = String::new();
    let (target, proxy, facts, endpoint, keys, rotated) = match &args.endpoint_url {
        None => {
            if args.key_id.is_some() || args.ca_cert.is_some() {
                return Err(
                    "--key-id and --ca-cert describe a proxy given with --endpoint-url".into(),
                );
            }
            let mut config = ProxyConfig::reference("localhost");
            config.faults = args.faults.clone();
            let running = runtime.block_on(proxy::start_on_loopback(config))?;
            let credential = proxy::DEFAULT_CREDENTIAL.clone();
            let target = XksTarget {
                endpoint: running.url(),
                uri_path: proxy::DEFAULT_URI_PATH.into(),
                region: proxy::DEFAULT_REGION.into(),
                credential: credential.clone(),
                roots: Roots::Pem(running.ca_pem.clone()),
                identity: None,
                resolve: Some(running.addr),
                timeout: REQUEST_TIMEOUT,
            };
            for f in &args.faults {
                replay_flags.push_str(&format!(" --fault {f}"));
            }
            let serve = format!(
                "ckscheck xks serve --port {SERVE_PORT}{replay_flags}, and export XKS_ACCESS_KEY_ID={} and XKS_SECRET_ACCESS_KEY (the reference test credential, see the README)",
                credential.access_key_id
            );
            let facts = Facts {
                url: format!("https://localhost:{SERVE_PORT}"),
                credential,
                rotated: Some(proxy::ROTATED_CREDENTIAL.clone()),
                ca_file: Some(SERVE_CA_FILE.into()),
                client_cert: None,
                first: Some(serve),
            };
            let keys = Keys {
                main: proxy::KEY_MAIN.into(),
                encrypt_only: Some(proxy::KEY_ENCRYPT_ONLY.into()),
                decrypt_only: Some(proxy::KEY_DECRYPT_ONLY.into()),
                no_usage: Some(proxy::KEY_NO_USAGE.into()),
                disabled: Some(proxy::KEY_DISABLED.into()),
            };
            let rotated = Some(proxy::ROTATED_CREDENTIAL.clone());
            (
                target,
                Some(running),
                facts,
                EMBEDDED_PROXY.to_string(),
                keys,
                rotated,
            )
        }
        Some(url) => {
            if !args.faults.is_empty() {
                return Err("--fault plants bugs in the embedded proxy; it cannot be used with --endpoint-url".into());
            }
            let parsed =
                url::Url::parse(url).map_err(|e| format!("bad --endpoint-url {url:?}: {e}"))?;
            let plain = parsed.scheme() == "http";
            if !(plain || parsed.scheme() == "https") || parsed.host_str().is_none() {
                return Err(format!(
                    "--endpoint-url must be https://HOST[:PORT] (or http://HOST[:PORT] for a proxy behind a TLS-terminating load balancer), got {url:?}"
                ));
            }
            if plain && (args.ca_cert.is_some() || args.client_cert.is_some()) {
                return Err(format!(
                    "--ca-cert, --client-cert and --client-key are for TLS, and {url:?} is plain http://"
                ));
            }
            let key = args
                .key_id
                .clone()
                .ok_or("give --key-id: an enabled key allowed to encrypt and decrypt")?;
            let (Some(ak), Some(sk)) = (&args.access_key_id, &args.secret_access_key) else {
                return Err("give the proxy credential: --access-key-id and --secret-access-key, or XKS_ACCESS_KEY_ID and XKS_SECRET_ACCESS_KEY".into());
            };
            let credential = Credential::new(ak, sk);
            let uri_path = args
                .uri_path
                .clone()
                .unwrap_or_else(|| "/kms/xks/v1".into());
            let pattern_ok = spec
                .service
                .uri_path_pattern
                .as_deref()
                .is_none_or(|p| regex::Regex::new(p).is_ok_and(|r| r.is_match(&uri_path)));
            if !pattern_ok || uri_path.len() > 128 {
                return Err(format!(
                    "--uri-path {uri_path:?} is not [/PREFIX]/kms/xks/vN (at most 128 characters of a-z A-Z 0-9 / - _)"
                ));
            }
            let roots = match &args.ca_cert {
                Some(p) => Roots::Pem(read(p, "the CA certificate")?),
                None => Roots::System,
            };
            let endpoint = url.trim_end_matches('/').to_string();
            replay_flags.push_str(&format!(
                " --endpoint-url {} --uri-path {} --key-id {} --region {}",
                sh_word(&endpoint),
                sh_word(&uri_path),
                sh_word(&key),
                sh_word(&args.region)
            ));
            for (flag, v) in [
                ("--key-id-encrypt-only", &args.key_id_encrypt_only),
                ("--key-id-decrypt-only", &args.key_id_decrypt_only),
                ("--key-id-no-usage", &args.key_id_no_usage),
                ("--key-id-disabled", &args.key_id_disabled),
            ] {
                if let Some(v) = v {
                    replay_flags.push_str(&format!(" {flag} {}", sh_word(v)));
                }
            }
            let path_text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
            if let Some(ca) = path_text(&args.ca_cert) {
                replay_flags.push_str(&format!(" --ca-cert {}", sh_word(&ca)));
            }
            let client_cert = path_text(&args.client_cert).zip(path_text(&args.client_key));
            if let Some((c, k)) = &client_cert {
                replay_flags.push_str(&format!(
                    " --client-cert {} --client-key {}",
                    sh_word(c),
                    sh_word(k)
                ));
            }
            let rotated = match (
                std::env::var("XKS_ACCESS_KEY_ID_2"),
                std::env::var("XKS_SECRET_ACCESS_KEY_2"),
            ) {
                (Ok(a), Ok(s)) if !a.is_empty() && !s.is_empty() => Some(Credential::new(a, s)),
                _ => None,
            };
            let target = XksTarget {
                endpoint: endpoint.clone(),
                uri_path,
                region: args.region.clone(),
                credential: credential.clone(),
                roots,
                identity: identity.clone(),
                resolve: None,
                timeout: REQUEST_TIMEOUT,
            };
            let facts = Facts {
                url: endpoint.clone(),
                credential,
                rotated: rotated.clone(),
                ca_file: path_text(&args.ca_cert),
                client_cert,
                first: None,
            };
            let keys = Keys {
                main: key,
                encrypt_only: args.key_id_encrypt_only.clone(),
                decrypt_only: args.key_id_decrypt_only.clone(),
                no_usage: args.key_id_no_usage.clone(),
                disabled: args.key_id_disabled.clone(),
            };
            (target, None, facts, endpoint, keys, rotated)
        }
    };
    let caveats = if target.is_plain_http() {
        vec![PLAIN_HTTP_CAVEAT.to_string()]
    } else {
        Vec::new()
    };
    let client = XksClient::new(target)?;
    if args.strict {
        replay_flags.push_str(" --strict");
    }
    let ctx = Ctx {
        client,
        runtime: runtime.handle().clone(),
        keys,
        cases: args.cases,
        seed,
        strict: args.strict,
        spec,
        rotated,
        ivs: Mutex::new(HashSet::new()),
        requests: AtomicU64::new(0),
        timeouts: Default::default(),
    };
    Ok(Prepared {
        ctx: Arc::new(ctx),
        proxy,
        facts,
        endpoint,
        caveats,
        replay_flags,
    })
}

impl Prepared {
    /// The command that replays `check` with the run's seed.
    pub fn replay(&self, check: &str) -> String {
        format!(
            "ckscheck xks run --seed {} --filter {}{}",
            self.ctx.seed,
            sh_word(check),
            self.replay_flags
        )
    }

    /// Runs one check and reports it.
    pub fn run_check(&self, check: &XksCheck) -> CheckReport {
        self.run_check_counted(check).0
    }

    /// Runs one check and reports it, with the number of exchanges its counterexample has
    /// (0 when it passed).
    pub fn run_check_counted(&self, check: &XksCheck) -> (CheckReport, usize) {
        let started = Instant::now();
        let before = self.ctx.requests.load(Ordering::Relaxed);
        let outcome = (check.run)(&self.ctx);
        let requests = self.ctx.requests.load(Ordering::Relaxed) - before;
        let replay = self.replay(check.name);
        let exchanges = outcome.failure.as_ref().map_or(0, |c| c.exchanges.len());
        let report = checks::report(
            check,
            outcome,
            started,
            requests,
            |c| {
                (
                    reproduce::render(c, &self.facts),
                    replay.clone(),
                    reproduce::structured(c, &self.facts),
                )
            },
            self.ctx.seed,
            self.ctx.strict,
        );
        (report, exchanges)
    }

    /// The proxy as the HTML report's certification summary names it.
    pub fn certification(&self) -> crate::report::html::Certification {
        let target = &self.ctx.client.target;
        let k = &self.ctx.keys;
        let keys = [
            ("main", Some(&k.main)),
            ("encrypt-only", k.encrypt_only.as_ref()),
            ("decrypt-only", k.decrypt_only.as_ref()),
            ("no-usage", k.no_usage.as_ref()),
            ("disabled", k.disabled.as_ref()),
        ]
        .into_iter()
        .filter_map(|(role, id)| id.map(|id| (role.to_string(), id.clone())))
        .collect();
        crate::report::html::Certification {
            endpoint: if self.proxy.is_some() {
                format!("{} ({})", target.endpoint, EMBEDDED_PROXY)
            } else {
                self.endpoint.clone()
            },
            uri_path: target.uri_path.clone(),
            keys,
            tls: !target.is_plain_http(),
            mtls: target.identity.is_some(),
            spec_version: self.ctx.spec.service.api_version.clone(),
        }
    }

    /// A quick call before the checks: a proxy that cannot be reached at all (refused, TLS)
    /// is a configuration error, with the reason.
    pub fn preflight(&self) -> Result<(), String> {
        let client = &self.ctx.client;
        let request = client.request(
            "GetHealthStatus",
            None,
            &checks::requests::health("KmsHealthCheck"),
        );
        match self.ctx.block_on(self.ctx.send(&request)) {
            Err(SendError::Tls(why)) => Err(format!(
                "the TLS handshake with {} failed: {why}; give the CA that signed its certificate with --ca-cert",
                self.endpoint
            )),
            Err(e @ (SendError::Connect(_) | SendError::NotSent(_))) => {
                Err(format!("cannot reach the XKS proxy {}: {e}", self.endpoint))
            }
            _ => Ok(()),
        }
    }
}

/// Runs `ckscheck xks run`; the process exit code (0 pass, 1 non-conformance).
pub fn run(args: RunArgs, runtime: &tokio::runtime::Runtime) -> Result<u8, String> {
    if !args.list {
        if args.cases == 0 {
            return Err("--cases must be at least 1: a run of 0 cases checks nothing".into());
        }
        let names: Vec<&str> = checks::checks().iter().map(|c| c.name).collect();
        if let Some(f) = &args.filter
            && !names.iter().any(|n| n.contains(f.as_str()))
        {
            return Err(format!(
                "--filter {f:?} selects none of the {} checks, so the run would check nothing \
                 (they are: {})",
                names.len(),
                names.join(", ")
            ));
        }
    }
    let prepared = Arc::new(prepare(&args, runtime)?);
    let ctx = prepared.ctx.clone();
    let faults: Vec<String> = args.faults.iter().map(|f| f.name().to_string()).collect();
    let facts = Arc::new(RunReport {
        seed: ctx.seed,
        endpoint: prepared.endpoint.clone(),
        region: ctx.client.target.region.clone(),
        strict: args.strict,
        faults,
        checks: Vec::new(),
        catalogue: Default::default(),
        caveats: prepared.caveats.clone(),
        partition: args.partition.map(|p| p.to_string()),
    });
    if !args.list {
        prepared.preflight()?;
        println!(
            "ckscheck xks run: {}, URI path {}, region {}, seed {}, {} cases per property",
            facts.endpoint_label(),
            ctx.client.target.uri_path,
            ctx.client.target.region,
            ctx.seed,
            ctx.cases
        );
        for caveat in &facts.caveats {
            println!("note: {caveat}");
        }
    }
    let results: Arc<Mutex<Vec<CheckReport>>> = Arc::default();
    let mut rows = Vec::new();
    let mut trials: Vec<Trial> = checks::checks()
        .into_iter()
        .map(|check| {
            let unmet = (check.needs)(&ctx);
            rows.push((check.name, check.family, check.explain, unmet.clone()));
            let (prepared, results, facts) = (prepared.clone(), results.clone(), facts.clone());
            let kind = check.family.title().replace(' ', "-");
            Trial::test(check.name, move || {
                let report = prepared.run_check(&check);
                let text = (!report.failures.is_empty())
                    .then(|| crate::report::failure::failure_text(&report, &facts));
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(report);
                text.map_or(Ok(()), |t| Err(Failed::from(t)))
            })
            .with_kind(kind)
            .with_ignored_flag(unmet.is_some())
        })
        .collect();
    let arguments = Arguments {
        filter: args.filter.clone(),
        list: args.list,
        // One at a time: the latency check measures an otherwise idle proxy.
        test_threads: Some(1),
        ..Arguments::default()
    };
    if let Some(p) = &args.partition {
        trials = crate::suite::run::take_shard(p, &arguments, trials)?;
        let names: Vec<&str> = trials.iter().map(|t| t.name()).collect();
        rows.retain(|(name, ..)| names.contains(name));
    }
    if !args.list {
        let why = |name: &str| {
            rows.iter()
                .find(|(n, ..)| *n == name)
                .and_then(|(.., unmet)| unmet.clone())
        };
        crate::suite::run::something_runs(&arguments, &trials, why)?;
    }
    let conclusion = libtest_mimic::run(&arguments, trials);
    if args.list {
        return Ok(0);
    }
    let mut done = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    let mut ordered = Vec::new();
    for (name, family, explain, unmet) in rows {
        match done.iter().position(|c| c.name == name) {
            Some(i) => ordered.push(done.swap_remove(i)),
            None => ordered.push(CheckReport::not_run(
                name.into(),
                family,
                match unmet {
                    Some(why) => format!("{explain} (not run: {why})"),
                    None => explain.into(),
                },
            )),
        }
    }
    let mut report = RunReport {
        checks: ordered,
        ..(*facts).clone()
    };
    let policy = crate::deviation::Policy {
        strict: args.strict,
        ..Default::default()
    };
    report.catalogue = crate::deviation::catalogue(&report, &policy);
    print_latency(&report);
    crate::suite::run::print_notes(&report);
    print!(
        "{}",
        crate::report::catalogue::catalogue_text(&report, false)
    );
    crate::suite::run::write_report_files(
        args.junit.as_deref(),
        args.json.as_deref(),
        None,
        &report,
    )?;
    if let Some(path) = &args.html {
        let context = crate::report::html::HtmlContext {
            certification: Some(prepared.certification()),
            ..crate::report::html::HtmlContext::now()
        };
        crate::report::html::write_html(path, &report, &context)?;
    }
    if let Some(p) = Arc::into_inner(prepared).and_then(|p| p.proxy) {
        runtime.block_on(p.stop());
    }
    for caveat in &report.caveats {
        println!("note: {caveat}");
    }
    println!("seed {} (replay with --seed {})", ctx.seed, ctx.seed);
    Ok(if conclusion.has_failed() { 1 } else { 0 })
}

fn print_latency(report: &RunReport) {
    let Some(latency) = report.checks.iter().find(|c| !c.metrics.is_empty()) else {
        return;
    };
    println!("\nlatency (sequential calls; KMS gives up after 250 ms):");
    for op in ["GetHealthStatus", "GetKeyMetadata", "Encrypt", "Decrypt"] {
        let get = |p: &str| latency.metrics.get(&format!("{op} {p}")).cloned();
        if let (Some(p50), Some(p99)) = (get("p50"), get("p99")) {
            println!("  {op:16} p50 {p50:>9}   p99 {p99:>9}");
        }
    }
}
