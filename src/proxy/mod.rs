//! The reference XKS proxy (`ckscheck xks serve`): the four XKS operations over HTTPS with SigV4,
//! in memory (AES-256-GCM keys held by the process), with deliberate bugs it can be told to plant.
//! It is served by the hardened layer of `crate::server` (HTTP/1.1 and HTTP/2, the same bounds
//! as the emulator), and lives outside `crate::xks`: the certifier must not import it to judge.

pub mod faults;
mod handler;
mod keys;
mod request;
pub mod serve;
#[cfg(test)]
mod tests;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::ProxyFault;
pub use keys::parse_keys_toml;

use crate::server::{self, Limits};
use crate::sigv4::Credential;
use crate::xks::tls;

/// The URI path prefix of the reference configuration.
pub const DEFAULT_URI_PATH: &str = "/ckscheck/kms/xks/v1";
/// The region of the reference configuration.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The access key id of the documented default credential (30 chars of `A-Z2-7`).
pub const DEFAULT_ACCESS_KEY_ID: &str = "CKSCHECKXKSPROXYREFERENCEKEY27";
/// The secret of the documented default credential (64 chars; public, for tests only).
pub const DEFAULT_SECRET_ACCESS_KEY: &str =
    "ckscheck/reference+XKS+proxy/secret/for/tests/only/NOT/A/SECRET=";
/// The access key id of the rotated credential (20 chars of `A-Z2-7`).
pub const ROTATED_ACCESS_KEY_ID: &str = "CKSCHECKROTATEDKEY23";
/// The secret of the rotated credential (43 chars; public, for tests only).
pub const ROTATED_SECRET_ACCESS_KEY: &str = "ckscheck+rotated/XKS/secret/for/tests/only=";
/// An enabled key allowed to encrypt and decrypt.
pub const KEY_MAIN: &str = "ckscheck-aes-1";
/// An enabled key allowed to encrypt only.
pub const KEY_ENCRYPT_ONLY: &str = "ckscheck-aes-encrypt-only";
/// An enabled key allowed to decrypt only.
pub const KEY_DECRYPT_ONLY: &str = "ckscheck-aes-decrypt-only";
/// An enabled key with no usage at all (AWS's test client's "impotent key").
pub const KEY_NO_USAGE: &str = "ckscheck-aes-no-usage";
/// A disabled key with both usages.
pub const KEY_DISABLED: &str = "ckscheck-aes-disabled";

/// The documented default credential of the reference configuration.
pub static DEFAULT_CREDENTIAL: LazyLock<Credential> =
    LazyLock::new(|| Credential::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY));
/// The second (rotated) credential of the reference configuration's prefix.
pub static ROTATED_CREDENTIAL: LazyLock<Credential> =
    LazyLock::new(|| Credential::new(ROTATED_ACCESS_KEY_ID, ROTATED_SECRET_ACCESS_KEY));

/// Everything a proxy is started with.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The DNS name on the server certificate (and in `RunningProxy::url`).
    pub host: String,
    /// The CA that signs the server certificate; a fresh one is generated when None.
    pub authority: Option<Arc<tls::Authority>>,
    /// The region requests must be signed for.
    pub region: String,
    /// The URI path prefixes served, each with its own credentials.
    pub prefixes: Vec<Prefix>,
    /// The external keys.
    pub keys: Vec<KeyDef>,
    /// Deliberate bugs to plant (none: a correct proxy).
    pub faults: Vec<ProxyFault>,
    /// When set, clients must present a certificate chaining to this CA (mutual TLS).
    pub client_ca: Option<CertificateDer<'static>>,
    /// Largest accepted distance between a request's `x-amz-date` and the proxy clock.
    pub max_skew: Duration,
    /// When set, the faults apply only to GetHealthStatus requests whose `kmsOperation` is
    /// listed (e.g. `ConnectCustomKeyStore`: a proxy that broke after its store was created);
    /// every other request is answered as by a correct proxy. `ignores-skew` stays global.
    pub fault_operations: Option<Vec<String>>,
    /// Serve plain HTTP instead of HTTPS (a proxy behind a TLS-terminating load balancer);
    /// KMS itself connects only over HTTPS.
    pub plain_http: bool,
    /// Timeouts and sizes of the HTTP layer (the documented defaults of `Limits`).
    pub limits: Limits,
}

/// One URI path prefix (`[/<prefix>]/kms/xks/v1`) and the credentials that may call it.
#[derive(Clone, Debug)]
pub struct Prefix {
    /// The prefix, e.g. `/ckscheck/kms/xks/v1`.
    pub uri_path: String,
    /// Accepted key pairs (two = rotation); the access key id picks the secret.
    pub credentials: Vec<Credential>,
}

/// One external key, as in a keys file: `[[key]] id=.. usage=[..] enabled=true material="b64"`.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDef {
    /// The external key id (≤ 128 chars of `A-Z a-z 0-9 - . _`).
    pub id: String,
    /// Allowed usages as GetKeyMetadata reports them, e.g. `ENCRYPT`, `DECRYPT` (`[]`: none).
    pub usage: Vec<String>,
    /// False: GetKeyMetadata says DISABLED and Encrypt/Decrypt fail with InvalidStateException
    /// (default true).
    #[serde(default = "keys::enabled_by_default")]
    pub enabled: bool,
    /// The AES-256 key (base64 in the file); random when absent.
    #[serde(default, deserialize_with = "keys::material_from_base64")]
    pub material: Option<[u8; 32]>,
}

impl std::fmt::Debug for KeyDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyDef")
            .field("id", &self.id)
            .field("usage", &self.usage)
            .field("enabled", &self.enabled)
            .field("material", &self.material.map(|_| "***"))
            .finish()
    }
}

impl KeyDef {
    /// A key with random material.
    pub fn new(id: &str, usage: &[&str], enabled: bool) -> KeyDef {
        KeyDef {
            id: id.into(),
            usage: usage.iter().map(|u| u.to_string()).collect(),
            enabled,
            material: None,
        }
    }

    /// The reference keys: main, encrypt-only, decrypt-only, no-usage and disabled. Their material is
    /// fixed and public (SHA-256 of `ckscheck reference XKS key <id>`), so a ciphertext from one
    /// reference proxy decrypts in another: a reproducer replays against `ckscheck xks serve`.
    pub fn reference() -> Vec<KeyDef> {
        let fixed = |mut k: KeyDef| {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(format!("ckscheck reference XKS key {}", k.id));
            k.material = Some(digest.into());
            k
        };
        vec![
            fixed(KeyDef::new(KEY_MAIN, &["ENCRYPT", "DECRYPT"], true)),
            fixed(KeyDef::new(KEY_ENCRYPT_ONLY, &["ENCRYPT"], true)),
            fixed(KeyDef::new(KEY_DECRYPT_ONLY, &["DECRYPT"], true)),
            fixed(KeyDef::new(KEY_NO_USAGE, &[], true)),
            fixed(KeyDef::new(KEY_DISABLED, &["ENCRYPT", "DECRYPT"], false)),
        ]
    }
}

impl ProxyConfig {
    /// The reference configuration: region `us-east-1`, one prefix with the default and the
    /// rotated credential, the five reference keys, no faults, no mTLS, 300 s skew, the default
    /// `Limits` with a 2 s drain.
    pub fn reference(host: &str) -> ProxyConfig {
        ProxyConfig {
            host: host.into(),
            authority: None,
            region: DEFAULT_REGION.into(),
            prefixes: vec![Prefix {
                uri_path: DEFAULT_URI_PATH.into(),
                credentials: vec![DEFAULT_CREDENTIAL.clone(), ROTATED_CREDENTIAL.clone()],
            }],
            keys: KeyDef::reference(),
            faults: Vec::new(),
            client_ca: None,
            max_skew: Duration::from_secs(300),
            fault_operations: None,
            plain_http: false,
            // As before the shared layer: requests in flight get 2 s to finish at stop.
            limits: Limits {
                drain_timeout: Duration::from_secs(2),
                ..Limits::default()
            },
        }
    }
}

/// A running proxy; dropping it stops accepting too, without waiting for the drain.
pub struct RunningProxy {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The PEM of the CA that signed the server certificate (what clients must trust).
    pub ca_pem: String,
    /// The DNS name on the server certificate.
    pub host: String,
    /// The CA that signed the server certificate (it can also sign client certificates).
    pub authority: Arc<tls::Authority>,
    /// Whether it serves plain HTTP rather than HTTPS.
    pub plain_http: bool,
    app: Arc<handler::App>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningProxy {
    /// The endpoint URL, `https://HOST:PORT` (`http://` when it serves plain HTTP).
    pub fn url(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}:{}", self.host, self.addr.port())
    }

    /// Requests being answered now (headers read, answer not yet sent).
    pub fn in_flight(&self) -> usize {
        self.app.in_flight()
    }

    /// Stops accepting, lets requests in flight finish (at most `Limits::drain_timeout`), and
    /// waits for the end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts a proxy on `listener`; an error for a configuration it cannot serve.
pub async fn start(listener: TcpListener, config: ProxyConfig) -> Result<RunningProxy, String> {
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the listener has no address: {e}"))?;
    let authority = match &config.authority {
        Some(a) => a.clone(),
        None => Arc::new(tls::Authority::generate("ckscheck XKS proxy test CA")?),
    };
    let identity = authority.server(&[config.host.as_str()])?;
    let tls_config = tls::server_config(&identity, config.client_ca.as_ref())?;
    let app = Arc::new(handler::App::new(&config)?);
    let (stop, mut stopped) = watch::channel(false);
    let tls = (!config.plain_http).then(|| tokio_rustls::TlsAcceptor::from(Arc::new(tls_config)));
    // Stop when told to, or when the RunningProxy is dropped (the sender goes away).
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let task = tokio::spawn(server::serve(
        listener,
        tls,
        config.limits,
        app.clone(),
        shutdown,
    ));
    Ok(RunningProxy {
        addr,
        ca_pem: authority.cert_pem.clone(),
        host: config.host,
        authority,
        plain_http: config.plain_http,
        app,
        stop,
        task,
    })
}

/// Binds an ephemeral loopback port and starts a proxy on it.
pub async fn start_on_loopback(config: ProxyConfig) -> Result<RunningProxy, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    start(listener, config).await
}
