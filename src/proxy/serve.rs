//! `ckscheck xks serve`: the reference XKS proxy on a real port, until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use super::{
    DEFAULT_CREDENTIAL, DEFAULT_URI_PATH, KeyDef, ProxyConfig, ProxyFault, ROTATED_CREDENTIAL,
    RunningProxy, parse_keys_toml,
};
use crate::sigv4::Credential;

/// The environment variable naming the access key id to accept instead of the default pair.
pub const ACCESS_KEY_ENV: &str = "XKS_ACCESS_KEY_ID";
/// The environment variable holding the secret of `XKS_ACCESS_KEY_ID`.
pub const SECRET_KEY_ENV: &str = "XKS_SECRET_ACCESS_KEY";

/// The options of `ckscheck xks serve`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
The proxy serves GetHealthStatus, GetKeyMetadata, Encrypt and Decrypt (XKS Proxy API v1.0.3) \
under the URI path /ckscheck/kms/xks/v1, over HTTPS with a certificate for --host signed by a CA \
generated at start (its PEM is written to --ca-out: clients must trust it). Requests must be \
SigV4-signed for service kms-xks-proxy and --region. With --plain-http it serves plain HTTP \
instead (no certificate, no CA file): the proxy as it runs behind a TLS-terminating load balancer, \
for `ckscheck xks run --endpoint-url http://...`.

Credentials: XKS_ACCESS_KEY_ID and XKS_SECRET_ACCESS_KEY when both are set (20-30 chars of A-Z2-7; \
43-64 chars of A-Za-z0-9+/=), else ckscheck's documented test pair (access key id \
CKSCHECKXKSPROXYREFERENCEKEY27, secret DEFAULT_SECRET_ACCESS_KEY in src/proxy/mod.rs) and its \
rotated companion (CKSCHECKROTATEDKEY23). Secrets are never printed.

Keys file (TOML), one table per key; material is 32 bytes of base64, random when absent; enabled \
defaults to true; usage = [] is a key with no usage (AWS's test client's \"impotent key\"):
  [[key]]
  id = \"my-key-1\"
  usage = [\"ENCRYPT\", \"DECRYPT\"]
  enabled = true
  material = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"

Without --keys: ckscheck-aes-1 (both usages), ckscheck-aes-encrypt-only, ckscheck-aes-decrypt-only, \
ckscheck-aes-no-usage and ckscheck-aes-disabled, with fixed public test material (the embedded proxy of `ckscheck xks \
run` has the same, so its curl reproducers replay here). A keys file without material gives \
random keys: their ciphertexts do not survive a restart.")]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 4443)]
    pub port: u16,
    /// Address to bind; loopback unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// DNS name on the server certificate; clients must reach the proxy by this name.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub host: String,
    /// Region requests must be signed for.
    #[arg(long, default_value = super::DEFAULT_REGION)]
    pub region: String,
    /// External keys (TOML, see below); the four reference keys if omitted.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Plant a deliberate bug, to see a certification check catch it (repeatable).
    #[arg(long = "fault", value_name = "NAME", value_enum)]
    pub faults: Vec<ProxyFault>,
    /// Where the CA certificate (PEM) clients must trust is written.
    #[arg(long, value_name = "FILE", default_value = "ckscheck-xks-ca.pem")]
    pub ca_out: PathBuf,
    /// Serve plain HTTP, no TLS: the proxy as it runs behind a TLS-terminating load balancer
    /// (KMS itself connects only over HTTPS). No CA file is written.
    #[arg(long)]
    pub plain_http: bool,
}

impl ValueEnum for ProxyFault {
    fn value_variants<'a>() -> &'a [Self] {
        &ProxyFault::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.describe()))
    }
}

/// Where the accepted credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// XKS_ACCESS_KEY_ID / XKS_SECRET_ACCESS_KEY.
    Environment,
    /// The documented default pair and its rotated companion.
    Defaults,
}

/// The credentials to accept: the pair from the environment, else the two documented pairs.
fn credentials(
    access_key_id: Option<String>,
    secret: Option<String>,
) -> Result<(Vec<Credential>, Source), String> {
    match (access_key_id, secret) {
        (None, None) => Ok((
            vec![DEFAULT_CREDENTIAL.clone(), ROTATED_CREDENTIAL.clone()],
            Source::Defaults,
        )),
        (Some(id), Some(secret)) => {
            let id_ok = (20..=30).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
            if !id_ok {
                return Err(format!(
                    "{ACCESS_KEY_ENV} must be 20-30 characters of A-Z and 2-7 (as KMS requires)"
                ));
            }
            let secret_ok = (43..=64).contains(&secret.len())
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if !secret_ok {
                return Err(format!(
                    "{SECRET_KEY_ENV} must be 43-64 characters of A-Z a-z 0-9 + / = (as KMS requires)"
                ));
            }
            Ok((vec![Credential::new(id, secret)], Source::Environment))
        }
        _ => Err(format!(
            "set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither (for the default pair)"
        )),
    }
}

/// Reads one credential variable; unset and empty are the same.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The proxy configuration the arguments describe.
fn config(args: &ServeArgs, credentials: Vec<Credential>) -> Result<ProxyConfig, String> {
    let keys = match &args.keys {
        None => KeyDef::reference(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read keys file {}: {e}", path.display()))?;
            parse_keys_toml(&text)
                .map_err(|e| format!("keys file {} is invalid: {e}", path.display()))?
        }
    };
    let mut config = ProxyConfig::reference(&args.host);
    config.region = args.region.clone();
    config.prefixes[0].credentials = credentials;
    config.keys = keys;
    config.faults = args.faults.clone();
    config.plain_http = args.plain_http;
    Ok(config)
}

/// Starts the proxy the arguments describe and writes the CA PEM to `--ca-out`.
async fn launch(
    args: &ServeArgs,
    credentials: Vec<Credential>,
) -> Result<(RunningProxy, ProxyConfig), String> {
    let config = config(args, credentials)?;
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let running = super::start(listener, config.clone()).await?;
    if args.plain_http {
        return Ok((running, config));
    }
    if let Err(e) = std::fs::write(&args.ca_out, &running.ca_pem) {
        running.stop().await;
        return Err(format!(
            "cannot write the CA certificate to {}: {e}",
            args.ca_out.display()
        ));
    }
    Ok((running, config))
}

/// What the operator needs to point a client at the proxy; never a secret.
fn summary(
    running: &RunningProxy,
    config: &ProxyConfig,
    args: &ServeArgs,
    source: &Source,
) -> String {
    let mut out = vec![
        format!("ckscheck reference XKS proxy listening on {}", running.addr),
        format!("  endpoint:       {}", running.url()),
        format!("  URI path:       {DEFAULT_URI_PATH}"),
        format!("  region:         {}", config.region),
    ];
    for c in &config.prefixes[0].credentials {
        let whence = match source {
            Source::Environment => format!("secret from {SECRET_KEY_ENV}"),
            Source::Defaults => "the documented default test secret".to_string(),
        };
        out.push(format!("  access key id:  {} ({whence})", c.access_key_id));
    }
    if args.plain_http {
        out.push(
            "  TLS:            none (plain HTTP; KMS connects only over HTTPS, so put a TLS-terminating load balancer in front)"
                .into(),
        );
    } else {
        out.push(format!(
            "  CA certificate: {} (clients must trust it)",
            args.ca_out.display()
        ));
    }
    for k in &config.keys {
        let state = if k.enabled { "enabled" } else { "disabled" };
        out.push(format!(
            "  key:            {} [{}] {state}",
            k.id,
            k.usage.join(", ")
        ));
    }
    if running.host != "localhost" && !args.bind.is_loopback() {
        out.push(format!(
            "  note: {} must resolve to this machine for clients",
            running.host
        ));
    }
    for f in &config.faults {
        out.push(format!("  planted fault {f}: {}", f.describe()));
    }
    out.push("stop with Ctrl-C".into());
    out.join("\n")
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
async fn until_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs `ckscheck xks serve` until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let (credentials, source) = credentials(env(ACCESS_KEY_ENV), env(SECRET_KEY_ENV))?;
    let (running, config) = launch(&args, credentials).await?;
    println!("{}", summary(&running, &config, &args, &source));
    until_signal().await;
    running.stop().await;
    println!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xks::tls::Roots;
    use crate::xks::{XksClient, XksTarget};
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> Result<ServeArgs, String> {
        let argv = std::iter::once("serve").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_repeated_faults_parse_and_unknown_faults_list_the_valid_names() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.port, 4443);
        assert_eq!(args.host, "localhost");
        assert_eq!(args.bind.to_string(), "127.0.0.1");
        assert_eq!(args.ca_out, PathBuf::from("ckscheck-xks-ca.pem"));
        assert!(args.keys.is_none() && args.faults.is_empty());
        let args = parse(&["--fault", "reused-iv", "--fault", "5xx-on-bad-base64"]).unwrap();
        assert_eq!(
            args.faults,
            vec![ProxyFault::ReusedIv, ProxyFault::BadBase64As5xx]
        );
        let err = parse(&["--fault", "nope"]).unwrap_err();
        assert!(
            err.contains("reused-iv") && err.contains("denies-access"),
            "{err}"
        );
    }

    #[test]
    fn the_help_names_the_default_access_key_ids_and_every_fault() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(super::super::DEFAULT_ACCESS_KEY_ID));
        assert!(help.contains(super::super::ROTATED_ACCESS_KEY_ID));
        assert!(!help.contains(super::super::DEFAULT_SECRET_ACCESS_KEY));
        for f in ProxyFault::ALL {
            assert!(help.contains(f.name()), "{f}");
        }
    }

    #[test]
    fn credentials_come_from_both_variables_or_neither_and_must_have_kms_formats() {
        let (creds, source) = credentials(None, None).unwrap();
        assert_eq!(source, Source::Defaults);
        assert_eq!(creds.len(), 2);
        let id = "ABCDEFGHIJKLMNOPQRSTUVWXYZ2345".to_string();
        let secret = "s".repeat(43);
        let (creds, source) = credentials(Some(id.clone()), Some(secret.clone())).unwrap();
        assert_eq!((creds.len(), source), (1, Source::Environment));
        assert!(credentials(Some(id.clone()), None).is_err());
        assert!(credentials(None, Some(secret.clone())).is_err());
        let bad_id = credentials(Some("ABCDE12345670EXAMPLE".into()), Some(secret.clone()));
        assert!(bad_id.unwrap_err().contains(ACCESS_KEY_ENV));
        let err = credentials(Some(id), Some("short".into())).unwrap_err();
        assert!(
            err.contains(SECRET_KEY_ENV) && !err.contains("short"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn launch_writes_the_ca_and_serves_and_the_summary_shows_no_secret() {
        let dir = std::env::temp_dir().join(format!("ckscheck-xks-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("keys.toml");
        std::fs::write(
            &keys,
            "[[key]]\nid = \"k1\"\nusage = [\"ENCRYPT\", \"DECRYPT\"]\nenabled = true\n",
        )
        .unwrap();
        let ca_out = dir.join("ca.pem");
        let mut args = parse(&["--port", "0", "--fault", "slow"]).unwrap();
        args.keys = Some(keys);
        args.ca_out = ca_out.clone();
        let (creds, source) = credentials(None, None).unwrap();
        let (running, config) = launch(&args, creds).await.unwrap();
        let text = summary(&running, &config, &args, &source);
        assert!(text.contains(&running.url()) && text.contains(DEFAULT_URI_PATH));
        assert!(text.contains(super::super::DEFAULT_ACCESS_KEY_ID) && text.contains("k1"));
        assert!(text.contains("planted fault slow"));
        assert!(!text.contains(super::super::DEFAULT_SECRET_ACCESS_KEY));
        assert!(!text.contains(super::super::ROTATED_SECRET_ACCESS_KEY));
        let pem = std::fs::read_to_string(&ca_out).unwrap();
        let client = XksClient::new(XksTarget {
            endpoint: running.url(),
            uri_path: DEFAULT_URI_PATH.into(),
            region: "us-east-1".into(),
            credential: DEFAULT_CREDENTIAL.clone(),
            roots: Roots::Pem(pem),
            identity: None,
            resolve: Some(running.addr),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        let body = serde_json::json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "x",
            "awsPrincipalArn": "p"}});
        let r = client
            .call("GetKeyMetadata", Some("k1"), &body)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        running.stop().await;
        let missing = ServeArgs {
            keys: Some(dir.join("absent.toml")),
            ..args
        };
        let err = launch(&missing, Vec::new()).await.err().unwrap();
        assert!(err.contains("absent.toml"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
