//! The embedded reference emulator: the model served over real HTTP as KMS serves it.

pub mod faults;
mod handler;
mod inspect;
mod regions;
mod wire;
pub mod xks_probe;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::Fault;

use crate::model::{Fixtures, IdSource, ModelConfig};
use crate::server::Limits;
use crate::sigv4::{Credential, Verifier};
use crate::spec::Spec;
use regions::Regions;

/// Everything `ckscheck serve` can be told.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Model tunables (quota, connect delay, switches).
    pub model: ModelConfig,
    /// The simulated backends.
    pub fixtures: Arc<Fixtures>,
    /// When set, signatures are checked against these credentials.
    pub verify_sigv4: Option<Vec<Credential>>,
    /// Largest accepted request body, in bytes (`Limits::max_body_bytes`; 413 beyond it).
    pub max_body_bytes: usize,
    /// How long a client may take to send its headers, and then its body; also how long a
    /// connection may sit with no request in flight (`Limits::header_timeout`, `body_timeout`).
    pub read_timeout: Duration,
    /// Deliberate conformance bugs to plant (none by default: a correct emulator).
    pub faults: Vec<Fault>,
    /// How long a real XKS proxy may take to answer KMS's health check (KMS: 250 ms).
    pub xks_budget: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            model: ModelConfig::default(),
            fixtures: Fixtures::builtin().into(),
            verify_sigv4: None,
            max_body_bytes: Limits::default().max_body_bytes,
            read_timeout: Limits::default().header_timeout,
            faults: Vec::new(),
            xks_budget: crate::xks::KMS_BUDGET,
        }
    }
}

impl EmulatorConfig {
    /// The HTTP layer's bounds: the documented defaults of `Limits` with this configuration's
    /// body cap and read timeout (header, body and drain).
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            header_timeout: self.read_timeout,
            body_timeout: self.read_timeout,
            ..Limits::default()
        }
    }
}

/// A running emulator; dropping it without `stop` leaves it running until the runtime ends.
pub struct RunningEmulator {
    /// The address it listens on.
    pub addr: SocketAddr,
    app: Arc<handler::App>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningEmulator {
    /// Forgets every store and key in every region: the emulator is as freshly started (new
    /// IDs).
    pub fn reset(&self) {
        let config = &self.app.config;
        let fresh = Regions::new(
            config.model.clone(),
            config.fixtures.clone(),
            Box::new(crate::model::SeededIds::new(rand::random())),
        );
        *self.app.regions.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:4566`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts an emulator on `listener` with IDs from `ids`, serving until stopped.
pub fn start(
    listener: TcpListener,
    config: EmulatorConfig,
    ids: Box<dyn IdSource>,
) -> std::io::Result<RunningEmulator> {
    let addr = listener.local_addr()?;
    let regions = Regions::new(config.model.clone(), config.fixtures.clone(), ids);
    let verifier = config.verify_sigv4.clone().map(|credentials| Verifier {
        credentials,
        service: Spec::kms().service.signing_name.clone(),
        region: None,
        max_skew: Duration::from_secs(300),
    });
    let app = Arc::new(handler::App {
        regions: Mutex::new(regions),
        faults: faults::Planted::new(&config.faults),
        prober: xks_probe::Prober::new(&config.model.region, config.xks_budget),
        config,
        verifier,
    });
    let (stop, stopped) = oneshot::channel();
    let limits = app.config.limits();
    let task = tokio::spawn(crate::server::serve(
        listener,
        None,
        limits,
        app.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    Ok(RunningEmulator {
        addr,
        app,
        stop: Some(stop),
        task,
    })
}

/// Binds an ephemeral loopback port and starts an emulator on it, with random IDs.
pub async fn start_on_loopback(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    start(
        listener,
        config,
        Box::new(crate::model::SeededIds::new(rand::random())),
    )
}
