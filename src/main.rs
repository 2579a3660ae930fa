//! The `ckscheck` command line.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;

use ckscheck::emulator::{self, EmulatorConfig, Fault};
use ckscheck::model::{
    CheckOrder, ConnectWhenConnected, DeletePrecedence, ModelConfig, SeededIds, Switches,
    UpdateWhileConnected,
};
use ckscheck::report::merge::{MergeOptions, merge_command};
use ckscheck::sigv4::Credential;
use ckscheck::suite::partition::Partition;
use ckscheck::suite::record::record;
use ckscheck::suite::run::{RunOptions, UNSETTLED, load_fixtures, run};
use ckscheck::suite::{cleanup, selftest};

/// The allocator: the emulator builds many small JSON values per request, where mimalloc is
/// markedly faster than the system allocator under concurrent load (see `cargo bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Conformance harness for the AWS KMS custom key store API and the XKS proxy API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the reference KMS emulator (custom key store API) over HTTP until Ctrl-C.
    Serve(ServeArgs),
    /// Run the conformance checks and the snapshot scenarios against an endpoint (default: the
    /// embedded emulator).
    Run(Box<RunArgs>),
    /// Run the checks against the embedded emulator with each planted fault: which check
    /// catches it, after how many cases, and how short the shrunk sequence is.
    Selftest(SelftestArgs),
    /// Remove stores a crashed run left behind, from its journal.
    Cleanup(CleanupArgs),
    /// Record the scenario corpus from a reference endpoint (e.g. real KMS) as snapshot files.
    Record(Box<RecordArgs>),
    /// The XKS proxy API: certify an XKS proxy, or serve the reference one.
    Xks(XksArgs),
    /// Work on saved runs: merge the JSON reports of a run's shards, or judge a `--history`
    /// again without sending a request.
    Report(ReportArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Merge the JSON reports of a run's shards (`--partition`) into one report.
    Merge(MergeArgs),
    /// Judge a saved `run --history` again (every oracle, the snapshots, the deviation
    /// catalogue) without sending a request; same reports and exit codes as the run.
    Rejudge(RejudgeArgs),
}

#[derive(clap::Args)]
#[command(
    after_help = "Trials are concatenated in the order of the inputs; deviations seen by several \
shards are one entry (by signature), with every trial that saw it and the shortest reproducer.\n\n\
Exit codes: 0 no shard failed; 1 at least one shard failed (a failing deviation); 2 the inputs \
are not shards of one run: unreadable, written by different ckscheck versions, with different \
seeds, endpoints, planted faults or --strict, or a trial in two of them."
)]
struct MergeArgs {
    /// The shards' JSON reports (`ckscheck run --json`, `ckscheck xks run --json`).
    #[arg(value_name = "REPORT.json", required = true)]
    inputs: Vec<PathBuf>,
    /// Write the merged JSON report.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the merged JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the merged Markdown parity matrix.
    #[arg(long, value_name = "FILE.md")]
    matrix: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RejudgeArgs {
    /// The JSON Lines history `ckscheck run --history` wrote.
    history: PathBuf,
    /// Judge the scenarios against the snapshots in this folder (default: the built-in ones).
    #[arg(long)]
    snapshots: Option<PathBuf>,
    /// Known deviations: reported as known, they do not fail.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Baseline entries that no longer occur fail too.
    #[arg(long)]
    strict_baseline: bool,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the Markdown parity matrix here.
    #[arg(long)]
    matrix: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
}

#[derive(clap::Args)]
struct XksArgs {
    #[command(subcommand)]
    command: XksCommand,
}

#[derive(Subcommand)]
enum XksCommand {
    /// Certify an XKS proxy against the XKS Proxy API (default: the embedded reference proxy).
    Run(Box<ckscheck::xks::run::RunArgs>),
    /// Serve the reference XKS proxy (in-memory AES-256-GCM keys) over HTTPS until Ctrl-C.
    Serve(Box<ckscheck::proxy::serve::ServeArgs>),
}

#[derive(clap::Args)]
#[command(
    after_help = "Exit codes: 0 no failing deviation (with --baseline: none that is not in it); 1 \
at least one failing or new deviation (or, with --strict-baseline, a baseline entry no longer \
seen); 2 usage or configuration error (bad flag, unreadable fixtures or baseline, no \
credentials, unreachable endpoint).\n\nThe run ends with the deviation catalogue: each distinct \
way the endpoint departs from KMS once, with its id (OPERATION/RULE: KIND), the trials that saw \
it and the length of its shortest reproducer.\n\nEndpoint: --endpoint-url, else AWS_ENDPOINT_URL_KMS, else \
AWS_ENDPOINT_URL; with none, the embedded emulator. Credentials: AWS_ACCESS_KEY_ID / \
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the shared config and credentials files \
(AWS_PROFILE). Region: --region, AWS_REGION, AWS_DEFAULT_REGION, else the profile's."
)]
struct RunArgs {
    /// Endpoint to check (http or https URL).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Region to sign for.
    #[arg(long)]
    region: Option<String>,
    /// The backends the endpoint has (see specs/fixtures.example.toml), or `builtin` for the
    /// full built-in set [default: the built-in set against the embedded emulator; against an
    /// endpoint only its healthy backends, so nothing needs a failing backend it may not
    /// simulate].
    #[arg(long, value_name = "FILE")]
    fixtures: Option<PathBuf>,
    /// Generated cases per check [default: 256 against the embedded emulator, 16 otherwise].
    #[arg(long, value_name = "N")]
    cases: Option<u32>,
    /// Seed that replays a run exactly against the same endpoint state (printed by every run).
    #[arg(long)]
    seed: Option<u64>,
    /// Run only the checks and scenarios (`snapshot::NAME`) whose name contains this.
    #[arg(long, value_name = "SUBSTRING")]
    filter: Option<String>,
    /// Leave out the checks and scenarios whose name contains this (repeatable; e.g.
    /// `--skip snapshot::` runs the property checks alone).
    #[arg(long, value_name = "SUBSTRING")]
    skip: Vec<String>,
    /// List the checks and scenarios and exit.
    #[arg(long)]
    list: bool,
    /// List every rule of the inventory (the rules coverage counts) with its id and exit.
    #[arg(long)]
    list_rules: bool,
    /// List the unsettled points and the scenarios whose expectations are inferred (shown,
    /// failing only with --strict) and exit.
    #[arg(long, alias = "list-unsettled")]
    list_inferred: bool,
    /// Judge the scenarios against the snapshots in this folder (one `ckscheck record` wrote)
    /// instead of the ones built in.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Let unsettled and inferred expectations fail the run.
    #[arg(long)]
    strict: bool,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a machine-readable JSON report.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write every exchange as JSON Lines (secrets masked).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Write a Markdown parity matrix (operation x check family).
    #[arg(long, value_name = "FILE.md")]
    matrix: Option<PathBuf>,
    /// Write a self-contained HTML report (matrix, deviation catalogue; opens offline).
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    /// Checks and scenarios run at once [default: 16 embedded, 6 against an endpoint on this
    /// machine, 1 against any other]. Against an endpoint each runs in a region of its own,
    /// once a probe shows the endpoint keeps regions apart; else they take turns.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Requests per second per operation, 0 for unlimited [default: 5, unlimited on loopback].
    #[arg(long, value_name = "N")]
    rate: Option<u32>,
    /// Seconds to wait for CONNECTING or DISCONNECTING to end (real KMS can need 20 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    transition_timeout: u64,
    /// Custom key store quota of the endpoint (stores already there count against it).
    #[arg(long, default_value_t = 10)]
    quota: usize,
    /// Plant a fault in the embedded emulator (repeatable; see `ckscheck selftest`).
    #[arg(long = "fault", value_name = "NAME", value_parser = Fault::parse)]
    faults: Vec<Fault>,
    /// Journal of every store the run may create (for `ckscheck cleanup`).
    #[arg(long, value_name = "FILE", default_value = "ckscheck-journal.jsonl")]
    journal: PathBuf,
    /// Directory where shrunk failing sequences are saved and replayed first.
    #[arg(long, value_name = "DIR", default_value = "ckscheck-regressions")]
    regressions: PathBuf,
    /// Known deviations (a file --write-baseline wrote): each is reported as known and does not
    /// fail the run; a deviation not in the file fails it; an entry no longer seen is reported
    /// as fixed.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write the run's failing, unsettled and known deviations to FILE as a baseline (TOML; the
    /// `reason` of each entry a previous baseline gave is kept).
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// With --baseline: an entry that is no longer seen fails the run too, so the file only
    /// ever shrinks.
    #[arg(long, requires = "baseline")]
    strict_baseline: bool,
    /// The most distinct deviations one check shrinks and reports; the report says when a
    /// check reached it.
    #[arg(long, value_name = "N", default_value_t = ckscheck::suite::MAX_DEVIATIONS)]
    max_deviations: usize,
    /// Requests one shrink may send; when spent, the shortest sequence found so far that showed
    /// the deviation is reported, marked as stopped early [default: unlimited embedded, 300
    /// against an endpoint].
    #[arg(long, value_name = "N")]
    shrink_requests: Option<u64>,
    /// Seconds one shrink may take [default: 60 for a check's first deviation and 15 for each
    /// further one embedded, 20 against an endpoint].
    #[arg(long, value_name = "SECONDS")]
    shrink_time: Option<u64>,
    /// Run only shard M of N of the selected checks and scenarios, as cargo-nextest splits
    /// tests: `count:M/N` (round robin in list order, after --filter and --skip) or `hash:M/N`
    /// (by a hash of the name). Each shard's stores carry `-sMofN-` in their name prefix;
    /// `ckscheck report merge` joins the shards' JSON reports.
    #[arg(long, value_name = "count:M/N|hash:M/N", value_parser = Partition::parse)]
    partition: Option<Partition>,
}

#[derive(clap::Args)]
#[command(
    after_help = "Endpoint, credentials and region as for `ckscheck run`; with no endpoint, the \
embedded emulator. Scenarios need the backends their roles name: give a real account's backends \
with --fixtures. A scenario the reference cannot run (a role no fixture plays, no answer) is \
listed and no file is written for it. Exit codes: 0 all recorded; 1 some not recorded; 2 usage \
or configuration error (e.g. snapshots exist and --force was not given)."
)]
struct RecordArgs {
    /// The reference endpoint (http or https URL).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Folder to write `<scenario>.snap` files into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Overwrite snapshots that already exist in the folder.
    #[arg(long)]
    force: bool,
    /// Region to sign for.
    #[arg(long)]
    region: Option<String>,
    /// The backends the reference has (see specs/fixtures.example.toml), or `builtin` [default:
    /// the built-in set for the embedded emulator, only its healthy backends for an endpoint].
    #[arg(long, value_name = "FILE")]
    fixtures: Option<PathBuf>,
    /// Record only the scenarios whose name contains this.
    #[arg(long, value_name = "SUBSTRING")]
    filter: Option<String>,
    /// Seconds to wait for CONNECTING or DISCONNECTING to end (real KMS can need 20 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    transition_timeout: u64,
    /// Journal of every store the recording may create (for `ckscheck cleanup`).
    #[arg(long, value_name = "FILE", default_value = "ckscheck-journal.jsonl")]
    journal: PathBuf,
}

#[derive(clap::Args)]
struct SelftestArgs {
    /// Generated cases per check.
    #[arg(long, default_value_t = 256)]
    cases: u32,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Only the faults whose name contains this.
    #[arg(long, value_name = "SUBSTRING")]
    filter: Option<String>,
}

#[derive(clap::Args)]
struct CleanupArgs {
    /// The journal a run wrote.
    #[arg(long, value_name = "FILE", default_value = "ckscheck-journal.jsonl")]
    journal: PathBuf,
    /// Region to sign for, for journal entries that name none (older journals).
    #[arg(long)]
    region: Option<String>,
    /// Seconds to wait for a store to leave CONNECTING or DISCONNECTING before deleting it
    /// (real KMS can need 20 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    transition_timeout: u64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 4599)]
    port: u16,
    /// Address to bind; loopback unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Backends to simulate (TOML, see specs/fixtures.example.toml); built-in set if omitted
    /// or `builtin`.
    #[arg(long, value_name = "FILE")]
    fixtures: Option<PathBuf>,
    /// Maximum number of custom key stores.
    #[arg(long, default_value_t = 10)]
    quota: usize,
    /// How long CONNECTING and DISCONNECTING last, in milliseconds (0 settles at once).
    #[arg(long, default_value_t = 300)]
    connect_delay_ms: u64,
    /// Check SigV4 signatures against this key pair, given as ACCESS_KEY:SECRET.
    #[arg(long, value_name = "ACCESS_KEY:SECRET", env = "CKSCHECK_VERIFY_SIGV4", hide_env_values = true, value_parser = Credential::parse_pair)]
    verify_sigv4: Option<Credential>,
    /// Connect on a CONNECTED store: succeed (ConnectCustomKeyStore page) or invalid-state.
    #[arg(long, default_value = "succeed", value_parser = switch::<ConnectWhenConnected>)]
    connect_when_connected: ConnectWhenConnected,
    /// What Update may change while CONNECTED: operation-page, name-only or disconnected-only.
    #[arg(long, default_value = "operation-page", value_parser = switch::<UpdateWhileConnected>)]
    update_while_connected: UpdateWhileConnected,
    /// Delete of a connected store with keys: state-first (InvalidState) or keys-first (HasCMKs).
    #[arg(long, default_value = "state-first", value_parser = switch::<DeletePrecedence>)]
    delete_precedence: DeletePrecedence,
    /// Unknown store ID with invalid members: validation-first or not-found-first.
    #[arg(long, default_value = "validation-first", value_parser = switch::<CheckOrder>)]
    check_order: CheckOrder,
    /// Seed for store and key IDs (random if omitted).
    #[arg(long)]
    seed: Option<u64>,
    /// Plant a deliberate conformance bug (repeatable; `ckscheck selftest` lists them).
    #[arg(long = "fault", value_name = "NAME", value_parser = Fault::parse)]
    faults: Vec<Fault>,
}

/// Parses a kebab-case switch value through its serde name.
fn switch<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| e.to_string())
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let fixtures = load_fixtures(args.fixtures.as_deref())?;
    let config = EmulatorConfig {
        model: ModelConfig {
            quota: args.quota,
            connect_delay_ms: args.connect_delay_ms,
            switches: Switches {
                connect_when_connected: args.connect_when_connected,
                update_while_connected: args.update_while_connected,
                delete_precedence: args.delete_precedence,
                check_order: args.check_order,
            },
            ..ModelConfig::default()
        },
        fixtures: fixtures.into(),
        verify_sigv4: args.verify_sigv4.map(|c| vec![c]),
        faults: args.faults,
        ..EmulatorConfig::default()
    };
    let config_faults = config.faults.clone();
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let running = emulator::start(listener, config, Box::new(SeededIds::new(seed)))
        .map_err(|e| e.to_string())?;
    for f in &config_faults {
        println!("planted fault {f}: {}", f.describe());
    }
    println!("ckscheck emulator listening on {}", running.url());
    println!("stop with Ctrl-C");
    shutdown_signal().await;
    running.stop().await;
    println!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn run_command(args: RunArgs, runtime: &tokio::runtime::Runtime) -> Result<u8, String> {
    if args.list_rules {
        let rules = ckscheck::coverage::inventory::inventory();
        for r in &rules {
            println!("{}  {}", r.id, r.says);
        }
        println!("{} rules", rules.len());
        let unreached = ckscheck::coverage::inventory::unreached();
        if !unreached.is_empty() {
            println!("\ndeclared errors no fixture can lead to (not counted):");
            for (id, why) in unreached {
                println!("  {id}  {why}");
            }
        }
        return Ok(0);
    }
    if args.list_inferred {
        println!("unsettled points (the documentation conflicts or is silent):");
        for (point, reading) in UNSETTLED {
            println!("  {point}: {reading}");
        }
        println!("\nscenarios whose expectations are inferred, not documented:");
        for s in ckscheck::scenario::builtin() {
            if let Some(why) = &s.inferred {
                println!("  {} ({}): {why}", s.name, s.file);
            }
        }
        return Ok(0);
    }
    let options = RunOptions {
        endpoint_url: args.endpoint_url,
        region: args.region,
        fixtures: args.fixtures,
        cases: args.cases,
        seed: args.seed,
        filter: args.filter,
        skip: args.skip,
        list: args.list,
        junit: args.junit,
        json: args.json,
        history: args.history,
        matrix: args.matrix,
        html: args.html,
        jobs: args.jobs,
        rate: args.rate,
        transition_timeout: Duration::from_secs(args.transition_timeout),
        strict: args.strict,
        quota: args.quota,
        faults: args.faults,
        journal: args.journal,
        regressions: Some(args.regressions),
        snapshots: args.snapshots,
        baseline: args.baseline,
        write_baseline: args.write_baseline,
        strict_baseline: args.strict_baseline,
        max_deviations: Some(args.max_deviations),
        shrink_requests: args.shrink_requests,
        shrink_time: args.shrink_time.map(Duration::from_secs),
        partition: args.partition,
        ..RunOptions::default()
    };
    run(options, runtime)
}

fn record_command(args: RecordArgs, runtime: &tokio::runtime::Runtime) -> Result<u8, String> {
    let options = RunOptions {
        endpoint_url: args.endpoint_url,
        region: args.region,
        fixtures: args.fixtures,
        filter: args.filter,
        transition_timeout: Duration::from_secs(args.transition_timeout),
        journal: args.journal,
        ..RunOptions::default()
    };
    record(&options, &args.out, args.force, runtime)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ckscheck: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)).map(|()| 0),
        Command::Run(args) => run_command(*args, &runtime),
        Command::Selftest(args) => {
            selftest::selftest(args.cases, args.seed, args.filter.as_deref(), &runtime)
        }
        Command::Record(args) => record_command(*args, &runtime),
        Command::Cleanup(args) => runtime.block_on(cleanup::cleanup(
            &args.journal,
            args.region.as_deref(),
            Duration::from_secs(args.transition_timeout),
        )),
        Command::Report(args) => match args.command {
            ReportCommand::Merge(args) => merge_command(&MergeOptions {
                inputs: args.inputs,
                json: args.json,
                junit: args.junit,
                matrix: args.matrix,
                html: args.html,
            }),
            ReportCommand::Rejudge(args) => ckscheck::suite::rejudge::rejudge(
                &ckscheck::suite::rejudge::RejudgeOptions {
                    history: args.history,
                    snapshots: args.snapshots,
                    baseline: args.baseline,
                    strict_baseline: args.strict_baseline,
                    junit: args.junit,
                    json: args.json,
                    matrix: args.matrix,
                    html: args.html,
                },
                &runtime,
            ),
        },
        Command::Xks(args) => match args.command {
            XksCommand::Run(args) => ckscheck::xks::run::run(*args, &runtime),
            XksCommand::Serve(args) => runtime
                .block_on(ckscheck::proxy::serve::serve(*args))
                .map(|()| 0),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ckscheck: {e}");
            ExitCode::from(2)
        }
    }
}
