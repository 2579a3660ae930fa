//! The soak driver shared by `tests/soak.rs` and `tests/benches/soak.rs`: an in-process
//! emulator on loopback under many concurrent SigV4-signed clients, each sending a fixed number
//! of random valid custom key store requests; then the model's invariants, checked by a full
//! paginated DescribeCustomKeyStores listing against the emulator's own store table, and the
//! table's own rules on snapshots taken every few milliseconds while the clients run.
//!
//! A request fails the soak when it gets no answer, a 5xx, or a 4xx that KMS would not give
//! for a valid request (an error the operation does not declare, a validation error, a status
//! other than the spec's). Every other 4xx is a legitimate answer to a conflicting sequence
//! (name in use, quota reached, wrong state...) and is counted by name.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ckscheck::emulator::{EmulatorConfig, Fault, RunningEmulator, start_on_loopback};
use ckscheck::generate::backends::{self, Backend};
use ckscheck::model::fixtures::Cluster;
use ckscheck::model::{ConnectionState, Fixtures, ModelConfig, Store, StoreType, XksBehaviour};
use ckscheck::sigv4::{Credential, Signer};
use ckscheck::spec::Spec;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

/// The region every client signs for: the emulator's configured (default) region.
const REGION: &str = "us-east-1";
/// Store IDs a client remembers of its own creates, and the pool all clients share.
const OWN_IDS: usize = 16;
const SHARED_IDS: usize = 64;
/// Request failures kept word for word; the rest are only counted.
const KEPT_FAILURES: usize = 10;
/// How often the store table is checked while the clients run.
const OBSERVE_EVERY: Duration = Duration::from_millis(5);
/// The page size of the final listing (small, so the listing takes several pages).
const LISTING_LIMIT: u64 = 3;

/// How big a soak is and what the emulator under it is told.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Concurrent clients (one HTTP/1.1 connection and one random sequence each).
    pub clients: usize,
    /// Requests per client before the first memory reading.
    pub warmup_per_client: usize,
    /// Requests per client in the measured soak.
    pub soak_per_client: usize,
    /// Store names are drawn from `soak-0` .. `soak-{names - 1}`, so they collide.
    pub names: usize,
    /// Seed of every client's random sequence (client i uses `seed + i`).
    pub seed: u64,
    /// How long CONNECTING and DISCONNECTING last in the emulator.
    pub connect_delay_ms: u64,
    /// Planted faults (none: a correct emulator).
    pub faults: Vec<Fault>,
}

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            clients: 64,
            warmup_per_client: 10,
            soak_per_client: 50,
            names: 12,
            seed: 1,
            connect_delay_ms: 20,
            faults: Vec::new(),
        }
    }
}

/// What one phase (warm-up or soak) measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseStats {
    /// Requests sent.
    pub requests: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl PhaseStats {
    /// Requests per second over the phase.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Everything a soak found.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// The warm-up phase.
    pub warmup: PhaseStats,
    /// The measured soak.
    pub soak: PhaseStats,
    /// Resident memory after the warm-up, in KiB (None where /proc is missing).
    pub rss_after_warmup_kib: Option<u64>,
    /// Resident memory after the soak, in KiB.
    pub rss_after_soak_kib: Option<u64>,
    /// Answers by outcome: `200 OperationName` or the error name.
    pub answers: BTreeMap<String, u64>,
    /// How many requests failed (5xx, no answer, an error KMS would not give).
    pub request_failures: u64,
    /// The first few request failures, word for word (secrets redacted).
    pub failures: Vec<String>,
    /// Broken invariants: of the final state, and those seen in snapshots during the soak.
    pub violations: Vec<String>,
    /// Snapshots of the store table checked while the clients ran.
    pub snapshots: u64,
    /// Stores at the end.
    pub final_stores: usize,
}

impl SoakReport {
    /// RSS after the soak over RSS after the warm-up.
    pub fn rss_ratio(&self) -> Option<f64> {
        match (self.rss_after_warmup_kib, self.rss_after_soak_kib) {
            (Some(a), Some(b)) if a > 0 => Some(b as f64 / a as f64),
            _ => None,
        }
    }

    /// How often an answer (a `200 Operation` or an error name) came back.
    pub fn count(&self, answer: &str) -> u64 {
        self.answers.get(answer).copied().unwrap_or(0)
    }

    /// True when no request failed and every invariant held.
    pub fn clean(&self) -> bool {
        self.request_failures == 0 && self.violations.is_empty()
    }

    /// A multi-line summary: failures, violations and the answer counts.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} request failures, {} invariant violations ({} snapshots checked during the soak), {} stores at the end\n",
            self.request_failures,
            self.violations.len(),
            self.snapshots,
            self.final_stores
        );
        for f in &self.failures {
            out.push_str(&format!("  failure: {f}\n"));
        }
        for v in &self.violations {
            out.push_str(&format!("  violation: {v}\n"));
        }
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("  answers: {}\n", answers.join(", ")));
        out
    }
}

/// Resident set size of this process in KiB, from `/proc/self/status`.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The clients' credential; the emulator verifies every signature against it.
fn credential() -> Credential {
    Credential::new(
        "AKIASOAKAAAAAAAAAAAA",
        "soakSecretAccessKeyAAAAAAAAAAAAAAAAAAAAAAAA",
    )
}

/// A store ID a client knows, with the backend it was created on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    id: String,
    backend: Backend,
}

/// What all clients share.
struct Shared {
    url: String,
    host: String,
    fixtures: Arc<Fixtures>,
    /// Every backend a Create may name (all clusters and proxies, VPC where possible).
    backends: Vec<Backend>,
    names: Vec<String>,
    /// Error names each operation may answer to a valid request.
    allowed: BTreeMap<&'static str, BTreeSet<String>>,
    /// Store IDs learnt from any client's creates (the oldest fall out).
    ids: Mutex<VecDeque<Entry>>,
    /// Fixture secrets, so that no failure message prints one.
    secrets: Vec<String>,
}

/// One client: its connection, its random sequence and what it measured.
struct Client {
    http: reqwest::Client,
    rng: SmallRng,
    own: VecDeque<Entry>,
    marker: Option<String>,
    /// Latencies of the current phase in microseconds (allocated once, up front).
    latencies: Vec<u32>,
    answers: BTreeMap<String, u64>,
    failures: u64,
    kept: Vec<String>,
}

/// How a request was answered.
enum Answer {
    /// 200, with its body.
    Ok(Value),
    /// A legitimate 4xx, by error name.
    Error(String),
    /// A failure of the soak (already recorded).
    Failed,
}

const OPERATIONS: [&str; 6] = [
    "CreateCustomKeyStore",
    "DescribeCustomKeyStores",
    "UpdateCustomKeyStore",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "DeleteCustomKeyStore",
];

/// The errors a valid request may legitimately get: those the operation declares, less the
/// ones a valid request never earns (KMSInternalException is a 500; the markers sent are the
/// emulator's own).
fn allowed_errors(spec: &Spec) -> BTreeMap<&'static str, BTreeSet<String>> {
    OPERATIONS
        .iter()
        .map(|op| {
            let declared = spec
                .operation(op)
                .map(|o| o.errors.clone())
                .unwrap_or_default();
            let allowed = declared
                .into_iter()
                .filter(|e| {
                    !["KMSInternalException", "InvalidMarkerException"].contains(&e.as_str())
                })
                .collect();
            (*op, allowed)
        })
        .collect()
}

/// Every backend a Create may name: each cluster and proxy of the fixtures, and each proxy with a
/// VPC endpoint service also through it. Some refuse a Create (a 4xx KMS gives), most do not.
fn create_backends(f: &Fixtures) -> Vec<Backend> {
    let mut out = backends::all(f);
    for index in 0..f.xks_proxies.len() {
        if backends::vpc_capable(f, index) {
            out.push(Backend::Proxy { index, vpc: true });
        }
    }
    out
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

impl Shared {
    /// Signs and sends one request, judges the answer, and records it and its latency in
    /// `client`.
    async fn call(&self, client: &mut Client, operation: &str, body: &Value) -> Answer {
        let started = Instant::now();
        let outcome = self.send(&client.http, operation, body).await;
        let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        client.latencies.push(micros);
        let judged = match outcome {
            Ok((status, text)) => self.judge(operation, status, &text),
            Err(e) => Err(format!("{operation}: no answer: {e}")),
        };
        match judged {
            Ok((label, answer)) => {
                *client.answers.entry(label).or_default() += 1;
                answer
            }
            Err(failure) => {
                client.fail(redact(&failure, &self.secrets));
                Answer::Failed
            }
        }
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        operation: &str,
        body: &Value,
    ) -> Result<(u16, String), String> {
        let body = body.to_string().into_bytes();
        let credential = credential();
        let signer = Signer {
            credential: &credential,
            region: REGION,
            service: &Spec::kms().service.signing_name,
            time: SystemTime::now(),
        };
        let signed = signer.json_post(&self.host, "/", operation, &body)?;
        let mut request = http.post(&self.url).body(body);
        for (k, v) in signed {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    /// `200 Operation` or the error name for a legitimate answer (with the body of a 200), or
    /// why the answer fails the soak.
    fn judge(&self, operation: &str, status: u16, text: &str) -> Result<(String, Answer), String> {
        let short = || text.chars().take(300).collect::<String>();
        if status == 200 {
            let value: Value = serde_json::from_str(text).map_err(|e| {
                format!(
                    "{operation}: 200 with a body that is not JSON ({e}): {}",
                    short()
                )
            })?;
            return Ok((format!("200 {operation}"), Answer::Ok(value)));
        }
        if !(400..500).contains(&status) {
            return Err(format!("{operation}: HTTP {status}: {}", short()));
        }
        let name = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v["__type"].as_str().map(str::to_string))
            .ok_or_else(|| {
                format!(
                    "{operation}: HTTP {status} without an error type: {}",
                    short()
                )
            })?;
        let allowed = self
            .allowed
            .get(operation)
            .is_some_and(|a| a.contains(&name));
        if !allowed {
            return Err(format!(
                "{operation}: HTTP {status} {name}, which KMS does not answer to a valid request: {}",
                short()
            ));
        }
        let expected = Spec::kms().error_status(&name);
        if status != expected {
            return Err(format!(
                "{operation}: {name} with HTTP {status}, not {expected}"
            ));
        }
        Ok((name.clone(), Answer::Error(name)))
    }

    fn remember(&self, client: &mut Client, entry: Entry) {
        if client.own.len() == OWN_IDS {
            client.own.pop_front();
        }
        client.own.push_back(entry.clone());
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.len() == SHARED_IDS {
            ids.pop_front();
        }
        ids.push_back(entry);
    }

    fn forget(&self, client: &mut Client, id: &str) {
        client.own.retain(|e| e.id != id);
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|e| e.id != id);
    }

    /// A store to act on: mostly one of the client's own, else anyone's.
    fn pick(&self, client: &mut Client) -> Option<Entry> {
        if !client.own.is_empty() && client.rng.random_bool(0.6) {
            let i = client.rng.random_range(0..client.own.len());
            return Some(client.own[i].clone());
        }
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.is_empty() {
            return None;
        }
        let i = client.rng.random_range(0..ids.len());
        Some(ids[i].clone())
    }

    fn name(&self, client: &mut Client) -> String {
        let i = client.rng.random_range(0..self.names.len());
        self.names[i].clone()
    }

    /// One random valid request, sent and judged.
    async fn step(&self, client: &mut Client) {
        let roll = client.rng.random_range(0..100u32);
        let target = if roll < 25 { None } else { self.pick(client) };
        let Some(target) = target else {
            return self.create(client).await;
        };
        let id = json!({ "CustomKeyStoreId": target.id });
        match roll {
            25..45 => self.describe(client, &target).await,
            45..60 => self.update(client, &target).await,
            60..75 => {
                self.call(client, "ConnectCustomKeyStore", &id).await;
            }
            75..90 => {
                self.call(client, "DisconnectCustomKeyStore", &id).await;
            }
            _ => match self.call(client, "DeleteCustomKeyStore", &id).await {
                Answer::Ok(_) => self.forget(client, &target.id),
                Answer::Error(e) if e == "CustomKeyStoreNotFoundException" => {
                    self.forget(client, &target.id)
                }
                _ => {}
            },
        }
    }

    async fn create(&self, client: &mut Client) {
        let backend = self.backends[client.rng.random_range(0..self.backends.len())];
        let name = self.name(client);
        let explicit = client.rng.random_bool(0.5);
        let body = backends::create_body(&self.fixtures, backend, &name, explicit);
        let Answer::Ok(answer) = self.call(client, "CreateCustomKeyStore", &body).await else {
            return;
        };
        match answer["CustomKeyStoreId"].as_str() {
            Some(id) => {
                let entry = Entry {
                    id: id.to_string(),
                    backend,
                };
                self.remember(client, entry);
            }
            None => client.fail("CreateCustomKeyStore: 200 without a CustomKeyStoreId".into()),
        }
    }

    async fn describe(&self, client: &mut Client, target: &Entry) {
        let body = match client.rng.random_range(0..4u32) {
            0 => json!({ "CustomKeyStoreId": target.id }),
            1 => json!({ "CustomKeyStoreName": self.name(client) }),
            2 => json!({}),
            _ => {
                let limit = client.rng.random_range(1..=4u64);
                match client.marker.take() {
                    Some(marker) => json!({ "Limit": limit, "Marker": marker }),
                    None => json!({ "Limit": limit }),
                }
            }
        };
        let Answer::Ok(answer) = self.call(client, "DescribeCustomKeyStores", &body).await else {
            return;
        };
        if !answer["CustomKeyStores"].is_array() {
            client.fail("DescribeCustomKeyStores: 200 without a CustomKeyStores list".into());
        }
        if body.get("Limit").is_some() {
            client.marker = answer["NextMarker"].as_str().map(str::to_string);
        }
    }

    /// An update with valid values for the store's kind: a name from the pool, the cluster's
    /// own password, a cluster of the same backup lineage, the proxy's own path or credential.
    async fn update(&self, client: &mut Client, target: &Entry) {
        let f = &self.fixtures;
        let mut body = json!({ "CustomKeyStoreId": target.id });
        let change = client.rng.random_range(0..3u32);
        if change == 0 {
            body["NewCustomKeyStoreName"] = json!(self.name(client));
        } else if let Some(cluster) = target.backend.cluster(f) {
            if change == 1 {
                body["KeyStorePassword"] = json!(cluster.kmsuser_password);
            } else {
                let related: Vec<&Cluster> = f
                    .clusters
                    .iter()
                    .filter(|c| {
                        c.id == cluster.id
                            || (!cluster.lineage.is_empty() && c.lineage == cluster.lineage)
                    })
                    .collect();
                let c = related[client.rng.random_range(0..related.len())];
                body["CloudHsmClusterId"] = json!(c.id);
            }
        } else if let Some(proxy) = target.backend.proxy(f) {
            if change == 1 {
                body["XksProxyUriPath"] = json!(proxy.uri_path);
            } else {
                body["XksProxyAuthenticationCredential"] =
                    backends::credential(proxy, &proxy.secret_access_key);
            }
        }
        self.call(client, "UpdateCustomKeyStore", &body).await;
    }
}

impl Client {
    fn fail(&mut self, failure: String) {
        self.failures += 1;
        if self.kept.len() < KEPT_FAILURES {
            self.kept.push(failure);
        }
    }
}

/// Runs one soak: starts an emulator with `config`'s faults, warms it up, reads RSS, soaks it,
/// reads RSS again, lets transitions settle, then checks the final state's invariants.
pub async fn run(config: &SoakConfig) -> Result<SoakReport, String> {
    ckscheck::runner::install_crypto_provider();
    if config.clients == 0 || config.names == 0 {
        return Err("a soak needs at least one client and one name".into());
    }
    let fixtures = Arc::new(Fixtures::builtin());
    let emulator_config = EmulatorConfig {
        model: ModelConfig {
            connect_delay_ms: config.connect_delay_ms,
            ..ModelConfig::default()
        },
        fixtures: fixtures.clone(),
        verify_sigv4: Some(vec![credential()]),
        faults: config.faults.clone(),
        ..EmulatorConfig::default()
    };
    let emulator = start_on_loopback(emulator_config)
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let secrets = fixtures
        .clusters
        .iter()
        .map(|c| c.kmsuser_password.clone())
        .chain(
            fixtures
                .xks_proxies
                .iter()
                .map(|p| p.secret_access_key.clone()),
        )
        .chain([credential().secret_access_key])
        .collect();
    let shared = Arc::new(Shared {
        url: emulator.url(),
        host: emulator.addr.to_string(),
        backends: create_backends(&fixtures),
        fixtures: fixtures.clone(),
        names: (0..config.names).map(|i| format!("soak-{i}")).collect(),
        allowed: allowed_errors(Spec::kms()),
        ids: Mutex::new(VecDeque::with_capacity(SHARED_IDS)),
        secrets,
    });
    let capacity = config.warmup_per_client.max(config.soak_per_client);
    let clients = (0..config.clients)
        .map(|i| {
            let http = reqwest::Client::builder()
                .http1_only()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| format!("building a client: {e}"))?;
            Ok(Client {
                http,
                rng: SmallRng::seed_from_u64(config.seed.wrapping_add(i as u64)),
                own: VecDeque::with_capacity(OWN_IDS),
                marker: None,
                // Written once, so that its pages are resident before the first reading and
                // the clients' own bookkeeping does not show as growth of the emulator.
                latencies: {
                    let mut v = vec![u32::MAX; capacity];
                    v.clear();
                    v
                },
                answers: BTreeMap::new(),
                failures: 0,
                kept: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;

    let mut report = SoakReport::default();
    let done = AtomicBool::new(false);
    let phases = async {
        let phases = async {
            let (clients, warmup, rss) = phase(&shared, clients, config.warmup_per_client).await?;
            (report.warmup, report.rss_after_warmup_kib) = (warmup, rss);
            let (clients, soak, rss) = phase(&shared, clients, config.soak_per_client).await?;
            (report.soak, report.rss_after_soak_kib) = (soak, rss);
            Ok::<_, String>(clients)
        }
        .await;
        done.store(true, Ordering::Relaxed);
        phases
    };
    let (clients, (seen, snapshots)) = tokio::join!(phases, observe(&emulator, &fixtures, &done));
    let clients = clients?;
    report.snapshots = snapshots;
    for client in clients {
        for (answer, n) in client.answers {
            *report.answers.entry(answer).or_default() += n;
        }
        report.request_failures += client.failures;
        let room = KEPT_FAILURES.saturating_sub(report.failures.len());
        report.failures.extend(client.kept.into_iter().take(room));
    }

    // Let every CONNECTING and DISCONNECTING end, then compare the wire with the model.
    tokio::time::sleep(Duration::from_millis(config.connect_delay_ms + 100)).await;
    let (listing, mut violations) = list_all(&shared).await;
    let table = emulator.stores();
    violations.extend(check_invariants(
        &listing,
        &table,
        emulator.quota(),
        &fixtures,
    ));
    violations.extend(seen.into_iter().map(|v| format!("during the soak: {v}")));
    report.violations = violations
        .into_iter()
        .map(|v| redact(&v, &shared.secrets))
        .collect();
    report.final_stores = table.len();
    emulator.stop().await;
    Ok(report)
}

/// Checks the table's rules on a snapshot every [`OBSERVE_EVERY`] until `done`: the distinct
/// violations seen (the first few) and how many snapshots were checked.
async fn observe(
    emulator: &RunningEmulator,
    f: &Fixtures,
    done: &AtomicBool,
) -> (Vec<String>, u64) {
    let (mut seen, mut snapshots) = (Vec::new(), 0);
    while !done.load(Ordering::Relaxed) {
        snapshots += 1;
        for v in check_table(&emulator.stores(), emulator.quota(), f, false) {
            if seen.len() < KEPT_FAILURES && !seen.contains(&v) {
                seen.push(v);
            }
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
    (seen, snapshots)
}

/// Every client sends `per_client` requests; the clients come back with their latencies,
/// with the phase's figures and the RSS read as the last client finished (before the
/// latencies are merged).
async fn phase(
    shared: &Arc<Shared>,
    clients: Vec<Client>,
    per_client: usize,
) -> Result<(Vec<Client>, PhaseStats, Option<u64>), String> {
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let shared = shared.clone();
            tokio::spawn(async move {
                client.latencies.clear();
                for _ in 0..per_client {
                    shared.step(&mut client).await;
                }
                client
            })
        })
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        back.push(
            task.await
                .map_err(|e| format!("a client task failed: {e}"))?,
        );
    }
    let elapsed = started.elapsed();
    let rss = rss_kib();
    let mut latencies: Vec<u32> = back
        .iter()
        .flat_map(|c| c.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let i = ((latencies.len().saturating_sub(1)) as f64 * q).round() as usize;
        Duration::from_micros(latencies.get(i).copied().unwrap_or(0).into())
    };
    let stats = PhaseStats {
        requests: latencies.len() as u64,
        elapsed,
        p50: quantile(0.50),
        p99: quantile(0.99),
    };
    Ok((back, stats, rss))
}

/// The full listing, page by page with a small Limit, and what is wrong with its paging.
async fn list_all(shared: &Shared) -> (Vec<Value>, Vec<String>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let http = match reqwest::Client::builder().http1_only().build() {
        Ok(http) => http,
        Err(e) => return (entries, vec![format!("building the listing client: {e}")]),
    };
    let mut marker: Option<String> = None;
    let mut markers = BTreeSet::new();
    for page in 1.. {
        if page > 1000 {
            problems.push("the listing did not end within 1000 pages".into());
            break;
        }
        let mut body = json!({ "Limit": LISTING_LIMIT });
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let answer = match shared.send(&http, "DescribeCustomKeyStores", &body).await {
            Ok((200, text)) => serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()),
            Ok((status, text)) => Err(format!("HTTP {status}: {text}")),
            Err(e) => Err(e),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("listing page {page}: {e}"));
                break;
            }
        };
        let stores = answer["CustomKeyStores"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if stores.len() as u64 > LISTING_LIMIT {
            problems.push(format!(
                "listing page {page} holds {} stores, more than Limit {LISTING_LIMIT}",
                stores.len()
            ));
        }
        entries.extend(stores);
        let next = answer["NextMarker"].as_str().map(str::to_string);
        if answer["Truncated"].as_bool() != Some(next.is_some()) {
            problems.push(format!(
                "listing page {page}: Truncated is {} while NextMarker is {}",
                answer["Truncated"],
                if next.is_some() { "present" } else { "absent" }
            ));
        }
        match next {
            None => break,
            Some(m) if !markers.insert(m.clone()) => {
                problems.push(format!("listing page {page}: NextMarker {m} came before"));
                break;
            }
            Some(m) => marker = Some(m),
        }
    }
    (entries, problems)
}

/// `what` values that more than one store has, with those stores' IDs.
fn duplicates<'a>(items: impl IntoIterator<Item = (String, &'a str)>, what: &str) -> Vec<String> {
    let mut by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (key, id) in items {
        by.entry(key).or_default().push(id);
    }
    by.into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(key, ids)| format!("{what} {key} is shared by stores {}", ids.join(", ")))
        .collect()
}

/// Whether a connect of this store ends CONNECTED, by the fixtures.
fn connects(store: &Store, f: &Fixtures) -> bool {
    if let Some(h) = &store.cloudhsm {
        return f.cluster(&h.cluster_id).is_some_and(|c| {
            c.state == "ACTIVE"
                && !c.invalid_configuration
                && c.connect_error.is_none()
                && c.active_hsms > 0
                && c.kmsuser_password == h.password.0
        });
    }
    store.xks.as_ref().is_some_and(|x| {
        f.proxy(&x.uri_endpoint).is_some_and(|p| {
            p.behaviour == XksBehaviour::Connects
                && p.uri_path == x.uri_path
                && p.access_key_id == x.access_key_id
                && p.secret_access_key == x.secret_access_key.0
        })
    })
}

/// The model's invariants over the final state: the paginated listing is the store table and
/// holds no duplicate name, no more stores than the quota and only legal states; the table
/// keeps every rule of [`check_table`], with every transition ended.
pub fn check_invariants(
    listing: &[Value],
    table: &[Store],
    quota: usize,
    f: &Fixtures,
) -> Vec<String> {
    let mut v = check_listing(listing, table, quota);
    v.extend(check_table(table, quota, f, true));
    v
}

/// The listing against the table: the same stores in the same order with the same entries,
/// no duplicate name, no more than the quota, legal states with an error code exactly when
/// FAILED.
fn check_listing(listing: &[Value], table: &[Store], quota: usize) -> Vec<String> {
    let mut v = Vec::new();
    let listed: Vec<&str> = listing
        .iter()
        .map(|e| e["CustomKeyStoreId"].as_str().unwrap_or("(no ID)"))
        .collect();
    let held: Vec<&str> = table.iter().map(|s| s.id.as_str()).collect();
    v.extend(duplicates(
        listed.iter().map(|id| (id.to_string(), *id)),
        "listed ID",
    ));
    if listed != held {
        v.push(format!(
            "the listing names stores {listed:?}, the model holds {held:?}"
        ));
    } else {
        for (entry, store) in listing.iter().zip(table) {
            let mut wire = entry.clone();
            let mut model = store.entry();
            let dates = (wire["CreationDate"].take(), model["CreationDate"].take());
            if wire != model {
                v.push(format!(
                    "store {}: listed as {wire}, the model holds {model}",
                    store.id
                ));
            }
            let close = match (dates.0.as_f64(), dates.1.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 0.002,
                _ => false,
            };
            if !close {
                v.push(format!(
                    "store {}: CreationDate listed as {}, the model holds {}",
                    store.id, dates.0, dates.1
                ));
            }
        }
    }

    v.extend(duplicates(
        listing.iter().map(|e| {
            let name = e["CustomKeyStoreName"]
                .as_str()
                .unwrap_or("(none)")
                .to_string();
            (name, e["CustomKeyStoreId"].as_str().unwrap_or("(no ID)"))
        }),
        "listed name",
    ));
    if listing.len() > quota {
        v.push(format!(
            "the listing names {} stores, over the quota of {quota}",
            listing.len()
        ));
    }
    const LEGAL: [&str; 5] = [
        "CONNECTED",
        "CONNECTING",
        "DISCONNECTED",
        "DISCONNECTING",
        "FAILED",
    ];
    for e in listing {
        let id = e["CustomKeyStoreId"].as_str().unwrap_or("(no ID)");
        let state = e["ConnectionState"].as_str().unwrap_or("(none)");
        if !LEGAL.contains(&state) {
            v.push(format!("store {id} is listed in ConnectionState {state}"));
        }
        if e.get("ConnectionErrorCode").is_some() != (state == "FAILED") {
            v.push(format!(
                "store {id} is listed {state} with ConnectionErrorCode {}",
                e.get("ConnectionErrorCode")
                    .map_or("absent".into(), Value::to_string)
            ));
        }
    }
    v
}

/// The rules the model keeps at every moment, over a snapshot of its store table: unique
/// names; no more stores than the quota; no two CloudHSM stores on one cluster or one backup
/// lineage; no two external stores on one proxy URI, VPC proxy endpoint or VPC endpoint
/// service; an error code exactly when FAILED; CONNECTED only on a backend that connects and
/// FAILED only on one that does not. `settled`: also no CONNECTING or DISCONNECTING.
pub fn check_table(table: &[Store], quota: usize, f: &Fixtures, settled: bool) -> Vec<String> {
    let mut v = Vec::new();
    v.extend(duplicates(
        table.iter().map(|s| (s.name.clone(), s.id.as_str())),
        "name",
    ));
    if table.len() > quota {
        v.push(format!(
            "the model holds {} stores, over the quota of {quota}",
            table.len()
        ));
    }
    let mut lineages = Vec::new();
    for store in table {
        let Some(h) = &store.cloudhsm else { continue };
        match f.cluster(&h.cluster_id) {
            Some(c) if !c.lineage.is_empty() => {
                lineages.push((format!("lineage {}", c.lineage), store.id.as_str()))
            }
            Some(c) => lineages.push((format!("cluster {}", c.id), store.id.as_str())),
            None => v.push(format!(
                "store {} is backed by cluster {}, which the fixtures do not have",
                store.id, h.cluster_id
            )),
        }
    }
    v.extend(duplicates(lineages, "the CloudHSM backup"));
    let proxies = table
        .iter()
        .filter_map(|s| s.xks.as_ref().map(|x| (x, s.id.as_str())));
    v.extend(duplicates(
        proxies
            .clone()
            .map(|(x, id)| (format!("{}{}", x.uri_endpoint, x.uri_path), id)),
        "the proxy URI",
    ));
    let vpc: Vec<_> = proxies.filter(|(x, _)| x.is_vpc()).collect();
    v.extend(duplicates(
        vpc.iter().map(|(x, id)| (x.uri_endpoint.clone(), *id)),
        "the VPC proxy endpoint",
    ));
    v.extend(duplicates(
        vpc.iter()
            .map(|(x, id)| (x.vpc_endpoint_service_name.clone().unwrap_or_default(), *id)),
        "the VPC endpoint service",
    ));

    for s in table {
        let moving = matches!(
            s.state,
            ConnectionState::Connecting | ConnectionState::Disconnecting
        );
        if settled && moving {
            v.push(format!(
                "store {} is still {} after every transition should have ended",
                s.id,
                s.state.as_str()
            ));
        }
        if s.error_code.is_some() != (s.state == ConnectionState::Failed) {
            v.push(format!(
                "store {} is {} with error code {:?}",
                s.id,
                s.state.as_str(),
                s.error_code
            ));
        }
        let fits = match s.state {
            ConnectionState::Connected => connects(s, f),
            ConnectionState::Failed => !connects(s, f),
            _ => true,
        };
        if !fits {
            let kind = match s.store_type {
                StoreType::AwsCloudhsm => "CloudHSM",
                StoreType::ExternalKeyStore => "external",
            };
            v.push(format!(
                "{kind} store {} is {} although its backend {} connect",
                s.id,
                s.state.as_str(),
                if connects(s, f) { "does" } else { "does not" }
            ));
        }
    }
    v
}
