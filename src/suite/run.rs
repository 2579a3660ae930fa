//! `ckscheck run`: resolve the target, run every check as a libtest trial, write the reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::json;

use super::partition::Partition;
use super::regions::{Region, Regions};
use super::{MAX_DEVIATIONS, ShrinkBudget, Suite, Target, checks, proxies, scenarios};
use crate::deviation::{self, Baseline, Policy};
use crate::emulator::{EmulatorConfig, Fault};
use crate::generate::GenContext;
use crate::model::{Fixtures, ModelConfig};
use crate::oracle::Family;
use crate::report::{self, CheckReport, RunReport};
use crate::runner::KmsClient;
use crate::runner::config;
use crate::runner::journal::Journal;
use crate::runner::session::{Endpoint, RetryPolicy, remove_journaled};
use crate::scenario::{self, Snapshots};
use crate::sigv4::Credential;

/// Everything `ckscheck run` can be told.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Endpoint URL (else from the environment; none: the embedded emulator).
    pub endpoint_url: Option<String>,
    /// Region (else from the environment or the shared config).
    pub region: Option<String>,
    /// The endpoint's backends (default: the built-in set).
    pub fixtures: Option<PathBuf>,
    /// Cases per check.
    pub cases: Option<u32>,
    /// Run seed (random if absent).
    pub seed: Option<u64>,
    /// Run only checks whose name contains this.
    pub filter: Option<String>,
    /// Leave out the checks and scenarios whose name contains any of these.
    pub skip: Vec<String>,
    /// List the checks instead of running them.
    pub list: bool,
    /// JUnit XML report path.
    pub junit: Option<PathBuf>,
    /// JSON report path.
    pub json: Option<PathBuf>,
    /// JSON Lines history path.
    pub history: Option<PathBuf>,
    /// Markdown parity matrix path.
    pub matrix: Option<PathBuf>,
    /// Self-contained HTML report path.
    pub html: Option<PathBuf>,
    /// Checks run at once.
    pub jobs: Option<usize>,
    /// Requests per second per operation (0: unlimited).
    pub rate: Option<u32>,
    /// How long to wait for CONNECTING or DISCONNECTING to end.
    pub transition_timeout: Duration,
    /// Unsettled expectations fail too.
    pub strict: bool,
    /// Store quota of the endpoint.
    pub quota: usize,
    /// Faults planted in the embedded emulator.
    pub faults: Vec<Fault>,
    /// Journal path for remote endpoints.
    pub journal: PathBuf,
    /// Where shrunk failures are saved and replayed from.
    pub regressions: Option<PathBuf>,
    /// The snapshots the scenarios are judged against (None: the ones built in).
    pub snapshots: Option<PathBuf>,
    /// Embedded runs: simulate every XKS proxy instead of playing entries with real ones.
    pub simulated_proxies: bool,
    /// Embedded runs: cases of a check run at once (None: [`EMBEDDED_LANES`]). Remote runs
    /// always run one at a time.
    pub lanes: Option<usize>,
    /// Known deviations: reported as known, they do not fail the run.
    pub baseline: Option<PathBuf>,
    /// Where to write the run's deviations as a baseline.
    pub write_baseline: Option<PathBuf>,
    /// Baseline entries that no longer occur fail the run too.
    pub strict_baseline: bool,
    /// The most distinct deviations one check reports (None: [`MAX_DEVIATIONS`]).
    pub max_deviations: Option<usize>,
    /// Requests one shrink may send (None: unlimited embedded, 300 against an endpoint).
    pub shrink_requests: Option<u64>,
    /// Time one shrink may take (None: 60 s / 15 s embedded, 20 s against an endpoint).
    pub shrink_time: Option<Duration>,
    /// Run only this shard of the selected trials (`--partition`).
    pub partition: Option<Partition>,
}

impl Default for RunOptions {
    /// The command line's defaults, except that nothing is saved or written.
    fn default() -> Self {
        RunOptions {
            endpoint_url: None,
            region: None,
            fixtures: None,
            cases: None,
            seed: None,
            filter: None,
            skip: Vec::new(),
            list: false,
            junit: None,
            json: None,
            history: None,
            matrix: None,
            html: None,
            jobs: None,
            rate: None,
            transition_timeout: Duration::from_secs(60),
            strict: false,
            quota: 10,
            faults: Vec::new(),
            journal: PathBuf::from("ckscheck-journal.jsonl"),
            regressions: None,
            snapshots: None,
            simulated_proxies: false,
            lanes: None,
            baseline: None,
            write_baseline: None,
            strict_baseline: false,
            max_deviations: None,
            shrink_requests: None,
            shrink_time: None,
            partition: None,
        }
    }
}

/// Cases of a check in flight at once against the embedded emulator, each lane an emulator of
/// its own: a case that waits (a slow proxy, a transition) does not hold up the others.
pub const EMBEDDED_LANES: usize = 8;

/// Checks and scenarios run at once against the embedded emulator when `--jobs` is not given:
/// every property check (each with lanes of its own) and as many scenarios, which mostly wait
/// out transitions. More would start so many first calls to the reference proxies at once that
/// a healthy one could miss KMS's 250 ms budget on a 2-core machine.
const EMBEDDED_JOBS: usize = 16;

/// Trials run at once against an endpoint on this machine when `--jobs` is not given, each in
/// a region of its own (see [`Regions`]): they mostly wait out transitions.
pub const LOOPBACK_JOBS: usize = 6;

/// Trials run at once when `--jobs` is not given: against the embedded emulator
/// `EMBEDDED_JOBS` (cases spend much of their time waiting on loopback round trips,
/// proxies and transitions, so more checks than cores keep the cores busy); against an
/// endpoint on this machine `LOOPBACK_JOBS`, each in a region of its own; against any other
/// endpoint one, since a real account's backends live in one region and its quota of
/// requests is shared.
pub fn default_jobs(embedded: bool, loopback: bool) -> usize {
    match (embedded, loopback) {
        (true, _) => EMBEDDED_JOBS,
        (false, true) => LOOPBACK_JOBS,
        (false, false) => 1,
    }
}

/// `--fixtures builtin`: the full built-in set, failing backends included.
pub const BUILTIN_FIXTURES: &str = "builtin";

/// A usage or configuration error (exit code 2).
pub type ConfigError = String;

/// The unsettled and inferred points the run records but does not fail on without `--strict`.
pub const UNSETTLED: [(&str, &str); 6] = [
    (
        "DescribeCustomKeyStores: name and ID together",
        "rejected as documented; the error type ValidationException is inferred",
    ),
    (
        "ConnectCustomKeyStore on a CONNECTED store",
        "no-op success (ConnectCustomKeyStore page) or CustomKeyStoreInvalidStateException (older XKS page)",
    ),
    (
        "UpdateCustomKeyStore while CONNECTED",
        "name, credential and path (UpdateCustomKeyStore page) or only the name (CustomKeyStoreInvalidStateException page)",
    ),
    (
        "DeleteCustomKeyStore of a connected store with keys",
        "CustomKeyStoreInvalidStateException or CustomKeyStoreHasCMKsException first",
    ),
    (
        "an unknown store ID in a request that breaks a constraint",
        "ValidationException or CustomKeyStoreNotFoundException first",
    ),
    (
        "a response field that breaks its own pattern",
        "a warning: the documentation's own examples do",
    ),
];

/// A suite ready to run, with the facts the reports need.
pub struct Prepared {
    /// The suite.
    pub suite: Arc<Suite>,
    /// The journal, for remote endpoints.
    pub journal: Option<Arc<Journal>>,
    /// The endpoint as reports name it.
    pub endpoint_label: String,
    /// Whether the target is the embedded emulator.
    pub embedded: bool,
    /// Whether only healthy backends are assumed (an endpoint and no `--fixtures`).
    pub healthy_only: bool,
    /// Whether the endpoint is on this machine.
    pub loopback: bool,
}

/// Resolves the target, credentials, region, fixtures and quota into a suite.
pub fn prepare(
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<Prepared, ConfigError> {
    let seed = options.seed.unwrap_or_else(rand::random);
    let baseline = options
        .baseline
        .as_deref()
        .map(Baseline::load)
        .transpose()?;
    if options.max_deviations == Some(0) {
        return Err("--max-deviations must be at least 1".into());
    }
    if options.cases == Some(0) && !options.list {
        return Err(
            "--cases must be at least 1: a run of 0 cases checks nothing (to run the \
                    scenarios alone, give --filter snapshot::)"
                .into(),
        );
    }
    let env = |k: &str| std::env::var(k).ok();
    let url = config::endpoint_url(options.endpoint_url.as_deref(), &env);
    let healthy_only = url.is_some() && options.fixtures.is_none();
    let mut fixtures = if healthy_only {
        Fixtures::builtin_healthy()
    } else {
        load_fixtures(options.fixtures.as_deref())?
    };
    let mut model = ModelConfig {
        quota: options.quota,
        ..ModelConfig::default()
    };
    // Embedded runs reach real connects: reference proxies play the entries they can.
    let proxies = match (&url, options.simulated_proxies || options.list) {
        (None, false) => Some(
            runtime
                .block_on(proxies::start(&mut fixtures, &model.region))
                .map_err(|e| format!("cannot start the XKS proxies: {e}"))?,
        ),
        _ => None,
    };
    let fixtures = Arc::new(fixtures);
    let run_id = format!("{:08x}", rand::random::<u32>());
    // A shard's stores say which shard made them.
    let prefix = match &options.partition {
        Some(p) => format!("ckscheck-{run_id}-{}-", p.tag()),
        None => format!("ckscheck-{run_id}-"),
    };
    let embedded = url.is_none();
    let loopback = match &url {
        Some(url) => config::is_loopback(&config::check_endpoint_url(url)?),
        None => true,
    };
    let (target, credential, region, rate, journal, allow_create_key) = match &url {
        None => {
            // Fast transitions keep the default run short; CONNECTING is still observable.
            model.connect_delay_ms = 2;
            let config = EmulatorConfig {
                model: model.clone(),
                fixtures: fixtures.clone(),
                faults: options.faults.clone(),
                ..EmulatorConfig::default()
            };
            let credential = Credential::new("AKIDCKSCHECKEMBEDDED", "ckscheck-embedded-emulator");
            let region = options.region.clone().unwrap_or_else(|| "us-east-1".into());
            (
                Target::Embedded(config),
                credential,
                region,
                options.rate,
                None,
                true,
            )
        }
        Some(url) => {
            if !options.faults.is_empty() {
                return Err("--fault plants bugs in the embedded emulator; it cannot be used with an endpoint".into());
            }
            let region = runtime
                .block_on(config::region(options.region.as_deref(), &env))
                .ok_or("no region: give --region, or set AWS_REGION or AWS_DEFAULT_REGION")?;
            let credential = runtime.block_on(config::credentials())?;
            let rate = options.rate.or(if loopback { None } else { Some(5) });
            let journal = Journal::open(&options.journal).map_err(|e| {
                format!("cannot open the journal {}: {e}", options.journal.display())
            })?;
            let target = Target::Remote { url: url.clone() };
            // No CreateKey against an endpoint: a store that holds a key cannot be deleted (its
            // keys wait days for deletion), so it would stay, hold its backend and the quota,
            // and show up in every later case's listings: findings about the harness's own
            // leftovers, not about the endpoint.
            (
                target,
                credential,
                region,
                rate,
                Some(Arc::new(journal)),
                false,
            )
        }
    };
    let cases = options.cases.unwrap_or(if embedded { 256 } else { 16 });
    let endpoint_label = url.clone().unwrap_or_else(|| "embedded emulator".into());
    let mut quota = options.quota;
    let mut foreign = 0;
    if let Some(url) = &url
        && !options.list
    {
        foreign = runtime.block_on(foreign_stores(url, &region, &credential))?;
        if foreign > 0 {
            println!(
                "{foreign} store(s) already exist at {url}; they are left alone and count against the quota"
            );
        }
        quota = quota.saturating_sub(foreign);
        model.quota = quota;
    }
    let mut suite = Suite {
        runtime: runtime.handle().clone(),
        target,
        credential,
        region: region.clone(),
        rate: rate.filter(|r| *r > 0),
        request_timeout: Duration::from_secs(10),
        transition_timeout: options.transition_timeout,
        journal: journal.clone(),
        fixtures: fixtures.clone(),
        regions: Regions::shared(Region::new(
            &region,
            &model,
            &GenContext {
                fixtures: fixtures.clone(),
                quota,
                allow_create_key,
                name_prefix_len: prefix.chars().count(),
            },
            quota,
        )),
        prefix,
        cases,
        seed,
        strict: options.strict,
        regressions: options.regressions.clone(),
        history: open_history(options.history.as_deref())?,
        sequences: Default::default(),
        lanes: if embedded {
            options.lanes.unwrap_or(EMBEDDED_LANES).max(1)
        } else {
            1
        },
        proxies,
        policy: Policy {
            strict: options.strict,
            baseline,
            unimplemented: Default::default(),
        },
        max_deviations: options.max_deviations.unwrap_or(MAX_DEVIATIONS),
        shrink_budget: ShrinkBudget::resolve(
            options.shrink_requests,
            options.shrink_time,
            embedded,
        ),
        census: Default::default(),
    };
    if !options.list {
        suite.record_line(&history_header(
            &suite,
            options,
            (embedded, healthy_only),
            foreign,
        ));
        suite.policy.unimplemented = suite.probe_unimplemented();
    }
    if !embedded {
        // One trial at a time until `run` has probed for more regions.
        suite.regions = Regions::exclusive(suite.regions.home.clone(), Vec::new());
    }
    let suite = Arc::new(suite);
    Ok(Prepared {
        suite,
        journal,
        endpoint_label,
        embedded,
        healthy_only,
        loopback,
    })
}

/// The first line of the run's history: the facts re-judging it needs (secrets stood in for).
fn history_header(
    suite: &Suite,
    options: &RunOptions,
    (embedded, healthy_only): (bool, bool),
    foreign_stores: usize,
) -> crate::history::Line {
    let home = &suite.regions.home;
    crate::history::Line::Header {
        header: Box::new(crate::history::Header {
            format: crate::history::HISTORY_FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            seed: suite.seed,
            endpoint: endpoint_label(suite),
            embedded,
            healthy_only,
            region: suite.region.clone(),
            strict: suite.strict,
            faults: options
                .faults
                .iter()
                .map(|f| f.name().to_string())
                .collect(),
            name_prefix: suite.prefix.clone(),
            fixtures: crate::history::stand_in_fixtures(crate::spec::Spec::kms(), &suite.fixtures),
            quota: home.model.quota,
            foreign_stores,
            connect_delay_ms: home.model.connect_delay_ms,
            cases: suite.cases,
            max_deviations: suite.max_deviations,
            filter: options.filter.clone(),
            skip: options.skip.clone(),
        }),
    }
}

/// The endpoint as the reports name it.
fn endpoint_label(suite: &Suite) -> String {
    match &suite.target {
        Target::Remote { url } => url.clone(),
        Target::Embedded(_) => "embedded emulator".into(),
    }
}

/// Runs the suite; returns the process exit code (0 pass, 1 non-conformance, 2 configuration).
pub fn run(options: RunOptions, runtime: &tokio::runtime::Runtime) -> Result<u8, ConfigError> {
    selects_something(&options)?;
    let Prepared {
        suite,
        journal,
        endpoint_label,
        embedded,
        healthy_only,
        loopback,
    } = prepare(&options, runtime)?;
    let (seed, region) = (suite.seed, suite.region.clone());
    if !options.list {
        println!(
            "ckscheck run: {endpoint_label}, region {region}, seed {seed}, {} cases per check",
            suite.cases
        );
        if let Some(p) = &suite.proxies {
            let simulated = suite.fixtures.xks_proxies.len() - p.played.len();
            println!(
                "XKS proxies: {} fixture entries played by reference proxies on loopback, {simulated} simulated",
                p.played.len()
            );
            for (endpoint, why) in &p.refused {
                println!("  {endpoint} stays simulated: {why}");
            }
        }
        for (op, u) in &suite.policy.unimplemented {
            println!(
                "{op} is not implemented by this endpoint (it answers {}): its findings are folded under one deviation and the scenarios that need it are not played",
                u.answer
            );
        }
        if let Some(j) = &journal {
            install_cleanup_on_interrupt(runtime, suite.clone(), j.clone());
        }
    }
    let results: Arc<Mutex<Vec<CheckReport>>> = Arc::default();
    // Failure texts need the run's facts but no other check's results.
    let faults: Vec<String> = options
        .faults
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let facts = Arc::new(RunReport {
        seed,
        endpoint: endpoint_label.clone(),
        region: region.clone(),
        strict: options.strict,
        faults: faults.clone(),
        checks: Vec::new(),
        catalogue: Default::default(),
        caveats: Vec::new(),
        partition: options.partition.map(|p| p.to_string()),
    });
    let all = checks();
    let scenarios = scenario::builtin();
    let progress = report::progress::Progress::new((all.len() + scenarios.len()) as u64);
    let mut trials: Vec<Trial> = all
        .into_iter()
        .map(|check| {
            let (suite, results, progress) = (suite.clone(), results.clone(), progress.clone());
            let facts = facts.clone();
            let kind = check.family.title().replace(' ', "-");
            Trial::test(check.name, move || {
                progress.set_message(check.name);
                let report = suite.run_check(&check);
                progress.inc();
                conclude(report, &suite.policy, &results, &facts)
            })
            .with_kind(kind)
        })
        .collect();
    let snapshots_dir = options.snapshots.clone();
    // Each scenario's trial name and what its report says if it does not run.
    let mut scenario_rows: Vec<(String, String)> = Vec::new();
    let full_set = Fixtures::builtin();
    let mut need_failing: Vec<String> = Vec::new();
    for s in scenarios {
        let (suite, results, progress) = (suite.clone(), results.clone(), progress.clone());
        let (facts, dir) = (facts.clone(), snapshots_dir.clone());
        let name = scenarios::trial_name(&s);
        let runnable = suite.scenario_runnable(&s).map_err(|why| {
            if healthy_only && scenario::script::script(&s, &full_set).is_ok() {
                need_failing.push(s.name.clone());
                format!("{why}: it needs a failing backend, {HEALTHY_ONLY}")
            } else {
                why
            }
        });
        let not_run = runnable.as_ref().err().map(String::as_str);
        scenario_rows.push((name.clone(), scenarios::explain(&s, not_run)));
        let trial = Trial::test(name.clone(), move || {
            progress.set_message(&name);
            let snapshots = dir.as_deref().map_or(Snapshots::Builtin, Snapshots::Dir);
            let report = suite.run_scenario(&s, snapshots);
            progress.inc();
            conclude(report, &suite.policy, &results, &facts)
        })
        .with_kind("snapshot")
        .with_ignored_flag(runnable.is_err());
        trials.push(trial);
    }
    let mut arguments = Arguments {
        filter: options.filter.clone(),
        skip: options.skip.clone(),
        list: options.list,
        ..Arguments::default()
    };
    // A shard keeps its part of the selected trials; the rest are neither run nor reported.
    let shard: Option<Vec<String>> = match &options.partition {
        Some(p) => {
            trials = take_shard(p, &arguments, trials)?;
            progress.set_total(trials.len() as u64);
            Some(trials.iter().map(|t| t.name().to_string()).collect())
        }
        None => None,
    };
    // More regions only for as many trials as will run; probed once Ctrl-C cleans up, as a
    // probe creates a store.
    let runs = trials
        .iter()
        .filter(|t| !t.has_ignored_flag() && !arguments.is_filtered_out(t))
        .count();
    let wanted = options
        .jobs
        .unwrap_or_else(|| default_jobs(embedded, loopback))
        .min(runs)
        .max(1);
    if !embedded && !options.list && wanted > 1 {
        let (extra, line) = suite.more_regions(wanted - 1, options.quota);
        suite.regions.add(extra);
        println!("{line}");
    }
    arguments = Arguments {
        test_threads: Some(match suite.regions.count() {
            Some(regions) => regions,
            None => options.jobs.unwrap_or_else(|| default_jobs(true, true)),
        }),
        ..arguments
    };
    if !options.list {
        let selected_names: Vec<&str> = trials
            .iter()
            .filter(|t| !arguments.is_filtered_out(t))
            .map(|t| t.name())
            .collect();
        let need_failing: Vec<&String> = need_failing
            .iter()
            .filter(|n| selected_names.contains(&format!("snapshot::{n}").as_str()))
            .collect();
        if !need_failing.is_empty() {
            println!(
                "healthy backends assumed (an endpoint and no --fixtures): {} scenario(s) that \
                 need a failing backend are not run: {}. Include them with --fixtures FILE \
                 naming the failure roles (see specs/fixtures.example.toml), or --fixtures \
                 {BUILTIN_FIXTURES} for the full built-in set.",
                need_failing.len(),
                need_failing
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let why = |name: &str| {
            scenario_rows
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, explain)| explain.clone())
        };
        if let Err(e) = something_runs(&arguments, &trials, why) {
            if let Some(j) = &journal {
                runtime.block_on(clean_from_journal(&suite, j));
            }
            return Err(e);
        }
    }
    let conclusion = libtest_mimic::run(&arguments, trials);
    progress.finish();
    if options.list {
        return Ok(0);
    }
    if let Some(j) = &journal {
        runtime.block_on(clean_from_journal(&suite, j));
    }
    let mut checks_run = std::mem::take(&mut *results.lock().expect("not poisoned"));
    let not_run = CheckReport::not_run;
    let in_shard = |name: &str| shard.as_ref().is_none_or(|s| s.iter().any(|n| n == name));
    let mut order: Vec<String> = Vec::new();
    for check in checks() {
        order.push(check.name.into());
        if in_shard(check.name) && !checks_run.iter().any(|c| c.name == check.name) {
            checks_run.push(not_run(
                check.name.into(),
                check.family,
                check.explain.into(),
            ));
        }
    }
    for (name, explain) in scenario_rows {
        order.push(name.clone());
        if in_shard(&name) && !checks_run.iter().any(|c| c.name == name) {
            checks_run.push(not_run(name, Family::Snapshots, explain));
        }
    }
    checks_run.sort_by_key(|c| order.iter().position(|n| *n == c.name));
    let mut run_report = RunReport {
        seed,
        endpoint: endpoint_label.clone(),
        region,
        strict: options.strict,
        faults,
        checks: checks_run,
        catalogue: Default::default(),
        caveats: Vec::new(),
        partition: options.partition.map(|p| p.to_string()),
    };
    let mut catalogue = deviation::catalogue(&run_report, &suite.policy);
    {
        let census = suite.census.lock().unwrap_or_else(|p| p.into_inner());
        for (op, answers) in census.iter() {
            catalogue.unconfirmed_not_implemented(op, answers.total, answers.not_implemented);
        }
    }
    run_report.catalogue = catalogue;
    print!("{}", report::cost::cost_text(&run_report));
    print_notes(&run_report);
    print!("{}", report::coverage::run_coverage_text(&run_report));
    print!(
        "{}",
        report::catalogue::catalogue_text(&run_report, options.strict_baseline)
    );
    write_reports(&options, &run_report)?;
    if let Some(path) = &options.write_baseline {
        let previous = suite.policy.baseline.as_ref();
        let previous_file = if previous.is_none() && path.exists() {
            Some(Baseline::load(path)?)
        } else {
            None
        };
        let written = run_report
            .catalogue
            .to_baseline(previous.or(previous_file.as_ref()));
        written.write(path)?;
        println!(
            "wrote {} deviation(s) to the baseline {}",
            written.deviations.len(),
            path.display()
        );
    }
    println!("seed {seed} (replay with --seed {seed})");
    let failed = run_report.catalogue.fails(options.strict_baseline) || conclusion.has_failed();
    Ok(if failed { 1 } else { 0 })
}

/// Why a scenario that needs a failing backend is not run against an endpoint without fixtures.
pub(super) const HEALTHY_ONLY: &str = "and against an endpoint without --fixtures only healthy backends are \
     assumed (give --fixtures naming the failure roles, or --fixtures builtin)";

/// A usage error when every trial `arguments` selects is ignored (cannot run here), each named
/// with `why` it cannot: a run that checks nothing must not pass.
pub(crate) fn something_runs(
    arguments: &Arguments,
    trials: &[Trial],
    why: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let selected: Vec<&Trial> = trials
        .iter()
        .filter(|t| !arguments.is_filtered_out(t))
        .collect();
    if !selected.iter().all(|t| t.has_ignored_flag()) {
        return Ok(());
    }
    let lines: Vec<String> = selected
        .iter()
        .map(|t| format!("  {}: {}", t.name(), why(t.name()).unwrap_or_default()))
        .collect();
    Err(format!(
        "none of the {} trials selected can run here, so the run would check nothing:\n{}",
        selected.len(),
        lines.join("\n")
    ))
}

/// The trials of shard `partition` among those `arguments` select (see
/// [`super::partition`]), in list order; a usage error when the shard is empty.
pub(crate) fn take_shard(
    partition: &Partition,
    arguments: &Arguments,
    trials: Vec<Trial>,
) -> Result<Vec<Trial>, ConfigError> {
    let selected: Vec<Trial> = trials
        .into_iter()
        .filter(|t| !arguments.is_filtered_out(t))
        .collect();
    let count = selected.len();
    let inside = partition.select(selected.iter().map(|t| t.name()));
    let shard: Vec<Trial> = selected
        .into_iter()
        .zip(inside)
        .filter_map(|(t, keep)| keep.then_some(t))
        .collect();
    if shard.is_empty() {
        return Err(format!(
            "--partition {partition} holds none of the {count} selected trials, so the run \
             would check nothing (use fewer shards)"
        ));
    }
    Ok(shard)
}

/// A usage error when `--filter` and `--skip` leave no check and no scenario: a run that
/// checks nothing must not pass.
fn selects_something(options: &RunOptions) -> Result<(), ConfigError> {
    if options.list {
        return Ok(());
    }
    let names: Vec<String> = checks()
        .iter()
        .map(|c| c.name.to_string())
        .chain(scenario::builtin().iter().map(scenarios::trial_name))
        .collect();
    let selected = names.iter().filter(|n| {
        options.filter.as_deref().is_none_or(|f| n.contains(f))
            && !options.skip.iter().any(|s| n.contains(s.as_str()))
    });
    if selected.count() > 0 {
        return Ok(());
    }
    let mut given = Vec::new();
    if let Some(f) = &options.filter {
        given.push(format!("--filter {f:?}"));
    }
    given.extend(options.skip.iter().map(|s| format!("--skip {s:?}")));
    Err(format!(
        "{}: none of the {} checks and scenarios is selected, so the run would check nothing \
         (`ckscheck run --list` names them)",
        given.join(" "),
        names.len()
    ))
}

/// Decides a finished trial's deviations, files its report and turns it into libtest's verdict.
fn conclude(
    mut report: CheckReport,
    policy: &Policy,
    results: &Mutex<Vec<CheckReport>>,
    facts: &RunReport,
) -> Result<(), Failed> {
    policy.resolve(&mut report);
    let text = (report.status() == report::Status::Failed)
        .then(|| report::failure::failure_text(&report, facts));
    results.lock().expect("not poisoned").push(report);
    match text {
        Some(t) => Err(Failed::from(t)),
        None => Ok(()),
    }
}

/// The fixtures a file names; none or `builtin`: the built-in set.
pub fn load_fixtures(path: Option<&Path>) -> Result<Fixtures, ConfigError> {
    let Some(path) = path.filter(|p| *p != Path::new(BUILTIN_FIXTURES)) else {
        return Ok(Fixtures::builtin());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read fixtures {}: {e}", path.display()))?;
    Fixtures::from_toml(&text).map_err(|e| format!("fixtures {} are invalid: {e}", path.display()))
}

fn open_history(
    path: Option<&Path>,
) -> Result<Option<Mutex<std::io::BufWriter<std::fs::File>>>, ConfigError> {
    path.map(|p| {
        std::fs::File::create(p)
            .map(|f| Mutex::new(std::io::BufWriter::new(f)))
            .map_err(|e| format!("cannot write the history {}: {e}", p.display()))
    })
    .transpose()
}

/// How many stores the endpoint already holds (they are someone else's).
pub(super) async fn foreign_stores(
    url: &str,
    region: &str,
    credential: &Credential,
) -> Result<usize, ConfigError> {
    let client = KmsClient::new(url, region, credential.clone(), Duration::from_secs(10))?;
    let listing = list_all(&client, 1000)
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    // A page that is not a listing is no configuration error: the checks report what the
    // endpoint does. The stores seen until then count.
    Ok(listing.stores.len())
}

/// The stores of a full, unfiltered listing, followed for at most `pages` pages.
pub(super) struct Listing {
    /// Every store entry the pages held.
    pub stores: Vec<serde_json::Value>,
    /// Why the listing is not whole (a page that was not a 200 listing, too many pages).
    pub cut: Option<String>,
}

/// Walks DescribeCustomKeyStores from the first page (Err: a page got no answer).
pub(super) async fn list_all(client: &KmsClient, pages: usize) -> Result<Listing, String> {
    let mut stores = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..pages {
        let mut body = json!({});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let reply = client
            .call("DescribeCustomKeyStores", &body)
            .await
            .map_err(|e| e.to_string())?;
        let Some(page) = reply.body["CustomKeyStores"]
            .as_array()
            .filter(|_| reply.status == 200)
        else {
            let cut = Some(format!("answered {}", reply.status));
            return Ok(Listing { stores, cut });
        };
        stores.extend(page.iter().cloned());
        marker = reply.body["NextMarker"].as_str().map(str::to_string);
        if marker.is_none() {
            return Ok(Listing { stores, cut: None });
        }
    }
    let cut = Some(format!("more than {pages} pages"));
    Ok(Listing { stores, cut })
}

/// Removes every store this run journaled and did not remove yet.
pub(super) async fn clean_from_journal(suite: &Suite, journal: &Journal) {
    let Ok(leftovers) = Journal::leftovers(journal.path()) else {
        return;
    };
    for warning in &leftovers.warnings {
        eprintln!("ckscheck: warning: {warning}");
    }
    let ours: Vec<_> = leftovers
        .stores
        .into_iter()
        .filter(|l| l.name.starts_with(&suite.prefix))
        .collect();
    let Target::Remote { url } = &suite.target else {
        return;
    };
    for leftover in ours {
        let region = leftover.region.as_deref().unwrap_or(&suite.region);
        let Ok(client) = KmsClient::new(
            url,
            region,
            suite.credential.clone(),
            Duration::from_secs(10),
        ) else {
            return;
        };
        let endpoint = Endpoint {
            client,
            url: url.clone(),
            rate: suite.rate.and_then(Endpoint::rate_limiter),
            retry: RetryPolicy::default(),
            journal: None,
            fixtures: suite.fixtures.clone(),
            transition_timeout: suite.transition_timeout,
        };
        match remove_journaled(&endpoint, &leftover.name, leftover.id).await {
            Ok(_) => {
                let _ = journal.record(&crate::runner::journal::Entry::Gone {
                    endpoint: leftover.endpoint,
                    region: leftover.region,
                    name: leftover.name,
                });
            }
            Err(why) => eprintln!(
                "ckscheck: left behind {}: {why}; `ckscheck cleanup --journal {}` retries",
                leftover.name,
                journal.path().display()
            ),
        }
    }
}

/// How long Ctrl-C waits for Creates already sent to be answered before it cleans up.
const INTERRUPT_GRACE: Duration = Duration::from_secs(30);

/// On Ctrl-C: seals the journal (no new Create is sent), waits for the Creates in flight to be
/// answered, removes what the run journaled, then exits with 130.
pub(super) fn install_cleanup_on_interrupt(
    runtime: &tokio::runtime::Runtime,
    suite: Arc<Suite>,
    journal: Arc<Journal>,
) {
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nckscheck: interrupted; removing the stores this run created...");
            let deadline = tokio::time::Instant::now() + INTERRUPT_GRACE;
            // Cases still running keep going, but create nothing more; a Create in flight is
            // waited for, so its store is in the journal with its ID (or known not made).
            while journal.seal() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            clean_from_journal(&suite, &journal).await;
            std::process::exit(130);
        }
    });
}

/// Prints the findings that do not fail the run: unsettled points and warnings.
pub(crate) fn print_notes(report: &RunReport) {
    let mut unsettled = 0;
    let mut warnings = 0;
    for c in &report.checks {
        for f in &c.verdict.findings {
            match f.severity {
                crate::oracle::Severity::Unsettled => unsettled += 1,
                crate::oracle::Severity::Warning => warnings += 1,
                crate::oracle::Severity::Failure => {}
            }
        }
    }
    if unsettled + warnings == 0 {
        return;
    }
    println!(
        "\nnotes ({unsettled} unsettled, {warnings} warnings; unsettled points fail only with --strict):"
    );
    for c in &report.checks {
        for f in c
            .verdict
            .findings
            .iter()
            .filter(|f| f.severity != crate::oracle::Severity::Failure)
        {
            let kind = if f.severity == crate::oracle::Severity::Unsettled {
                "unsettled"
            } else {
                "warning"
            };
            println!(
                "  {kind:9} {} {} [{}]: {}",
                c.name, f.operation, f.rule, f.message
            );
        }
    }
}

fn write_reports(options: &RunOptions, report: &RunReport) -> Result<(), ConfigError> {
    write_report_files(
        options.junit.as_deref(),
        options.json.as_deref(),
        options.matrix.as_deref(),
        report,
    )?;
    if let Some(path) = &options.html {
        let context = report::html::HtmlContext {
            fixtures: Some(report::html::fixtures_label(options.fixtures.as_deref())),
            baseline: options.baseline.as_ref().map(|b| b.display().to_string()),
            strict_baseline: options.strict_baseline,
            ..report::html::HtmlContext::now()
        };
        report::html::write_html(path, report, &context)?;
    }
    Ok(())
}

/// Writes the JUnit XML, JSON and Markdown matrix reports that were asked for.
pub(crate) fn write_report_files(
    junit: Option<&Path>,
    json: Option<&Path>,
    matrix: Option<&Path>,
    report: &RunReport,
) -> Result<(), ConfigError> {
    let write = |path: &Path, text: String| {
        std::fs::File::create(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    if let Some(p) = junit {
        write(p, report::junit::junit_xml(report))?;
    }
    if let Some(p) = json {
        let text =
            serde_json::to_string_pretty(&report::json::json_report(report)).unwrap_or_default();
        write(p, text)?;
    }
    if let Some(p) = matrix {
        write(p, report::matrix::parity_matrix(report))?;
    }
    Ok(())
}
