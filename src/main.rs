//! The `ckscheck` command line.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;

use ckscheck::emulator::{self, EmulatorConfig};
use ckscheck::model::{
    CheckOrder, ConnectWhenConnected, DeletePrecedence, Fixtures, ModelConfig, SeededIds, Switches,
    UpdateWhileConnected,
};
use ckscheck::runner::{KmsClient, smoke};
use ckscheck::sigv4::Credential;

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
    /// Start the embedded emulator and run the self-check lifecycle against it.
    Run,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 4599)]
    port: u16,
    /// Address to bind; loopback unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Backends to simulate (TOML, see specs/fixtures.example.toml); built-in set if omitted.
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
}

/// Parses a kebab-case switch value through its serde name.
fn switch<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| e.to_string())
}

fn load_fixtures(path: Option<&PathBuf>) -> Result<Fixtures, String> {
    let Some(path) = path else {
        return Ok(Fixtures::builtin());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read fixtures {}: {e}", path.display()))?;
    Fixtures::from_toml(&text).map_err(|e| format!("fixtures {} are invalid: {e}", path.display()))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let fixtures = load_fixtures(args.fixtures.as_ref())?;
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
        fixtures,
        verify_sigv4: args.verify_sigv4.map(|c| vec![c]),
        ..EmulatorConfig::default()
    };
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let running = emulator::start(listener, config, Box::new(SeededIds::new(seed)))
        .map_err(|e| e.to_string())?;
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

async fn self_check() -> Result<bool, String> {
    let running = emulator::start_on_loopback(EmulatorConfig::default())
        .await
        .map_err(|e| format!("cannot start the embedded emulator: {e}"))?;
    println!("embedded emulator at {}", running.url());
    let credential = Credential::new("AKIDCKSCHECKSELFTEST", "ckscheck-self-check-secret");
    let client = KmsClient::new(
        &running.url(),
        "us-east-1",
        credential,
        Duration::from_secs(10),
    )?;
    let results = smoke::run(&client).await;
    running.stop().await;
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    for r in &results {
        match &r.failure {
            None => println!("ok      {}", r.name),
            Some(why) => println!("FAILED  {}: {why}", r.name),
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    Ok(failed == 0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| true),
        Command::Run => self_check().await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ckscheck: {e}");
            ExitCode::from(2)
        }
    }
}
