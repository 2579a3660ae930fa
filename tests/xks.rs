//! The XKS certification suite against the embedded reference proxy: the clean proxy passes
//! every check, and each planted fault is caught by the check meant for it (and only a strict
//! run catches a SHOULD-level fault).

use std::collections::BTreeMap;

use ckscheck::xks::checks::checks;
use ckscheck::xks::proxy::ProxyFault;
use ckscheck::xks::run::{RunArgs, prepare};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the checks named by `which` against the embedded proxy with `faults`; the failed
/// checks and why.
fn failing(
    faults: &[ProxyFault],
    strict: bool,
    cases: u32,
    which: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    let rt = runtime();
    let args = RunArgs {
        faults: faults.to_vec(),
        strict,
        cases,
        seed: Some(7),
        region: "us-east-1".into(),
        ..RunArgs::default()
    };
    let prepared = prepare(&args, &rt).expect("the embedded proxy starts");
    prepared.preflight().expect("the embedded proxy answers");
    let mut out = BTreeMap::new();
    for check in checks().into_iter().filter(|c| which(c.name)) {
        assert!(
            (check.needs)(&prepared.ctx).is_none(),
            "{} cannot run",
            check.name
        );
        let report = prepared.run_check(&check);
        if let Some(f) = report.failure {
            let text = format!("{}\n{}", f.summary, f.reproducer.unwrap_or_default());
            out.insert(report.name, text);
        }
    }
    out
}

#[test]
fn the_clean_reference_proxy_passes_every_check_even_strict() {
    let failed = failing(&[], true, 24, |_| true);
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn each_planted_fault_is_caught_by_its_check() {
    let mut wrong = Vec::new();
    for fault in ProxyFault::ALL {
        let meant = fault.caught_by();
        let started = std::time::Instant::now();
        let only = |name: &str| name == meant;
        let failed = failing(&[fault], false, 24, only);
        eprintln!("{fault}: {:.1} s", started.elapsed().as_secs_f64());
        if fault.strict_only() {
            if !failed.is_empty() {
                wrong.push(format!(
                    "{fault}: a SHOULD fault failed a non-strict run: {failed:?}"
                ));
            }
            let strict = failing(&[fault], true, 24, only);
            if !strict.contains_key(meant) {
                wrong.push(format!("{fault}: strict run missed it: {strict:?}"));
            }
        } else if !failed.contains_key(meant) {
            wrong.push(format!(
                "{fault}: {meant} did not fail; failed: {:?}",
                failed.keys()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A client for a proxy started here, trusting its CA.
fn client_for(p: &ckscheck::xks::proxy::RunningProxy) -> ckscheck::xks::XksClient {
    use ckscheck::xks::proxy::{DEFAULT_CREDENTIAL, DEFAULT_REGION, DEFAULT_URI_PATH};
    ckscheck::xks::XksClient::new(ckscheck::xks::XksTarget {
        endpoint: p.url(),
        uri_path: DEFAULT_URI_PATH.into(),
        region: DEFAULT_REGION.into(),
        credential: DEFAULT_CREDENTIAL.clone(),
        roots: ckscheck::xks::tls::Roots::Pem(p.ca_pem.clone()),
        identity: None,
        resolve: Some(p.addr),
        timeout: std::time::Duration::from_secs(5),
    })
    .unwrap()
}

#[test]
fn a_ciphertext_from_one_reference_proxy_decrypts_in_another_so_reproducers_replay() {
    use ckscheck::xks::checks::requests::{Sealed, encrypt};
    use ckscheck::xks::proxy::{KEY_MAIN, ProxyConfig, start_on_loopback};
    let rt = runtime();
    rt.block_on(async {
        let a = start_on_loopback(ProxyConfig::reference("localhost"))
            .await
            .unwrap();
        let b = start_on_loopback(ProxyConfig::reference("localhost"))
            .await
            .unwrap();
        let sealed = client_for(&a)
            .call(
                "Encrypt",
                Some(KEY_MAIN),
                &encrypt(b"replay me", None, false),
            )
            .await
            .unwrap();
        let sealed = Sealed::from_answer(&sealed.body).expect("an Encrypt answer");
        let back = client_for(&b)
            .call("Decrypt", Some(KEY_MAIN), &sealed.decrypt(None))
            .await
            .unwrap();
        assert_eq!(back.status, 200, "{}", back.text);
        assert_eq!(back.body["plaintext"], "cmVwbGF5IG1l");
    });
}

/// Writes `text` to a fresh file under the system temp dir and returns its path.
fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ckscheck-xks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `xks run` against a proxy given by URL, with a client certificate: the authentication
/// check exercises mTLS, which passes when the proxy requires a certificate and warns
/// (failing only a strict run) when it serves anyone.
#[test]
fn mutual_tls_is_exercised_against_a_proxy_given_by_url() {
    use ckscheck::xks::proxy::{DEFAULT_CREDENTIAL, KEY_MAIN, ProxyConfig, start_on_loopback};
    let rt = runtime();
    for require in [true, false] {
        let authority =
            std::sync::Arc::new(ckscheck::xks::tls::Authority::generate("test CA").unwrap());
        let mut config = ProxyConfig::reference("localhost");
        config.authority = Some(authority.clone());
        if require {
            config.client_ca = Some(authority.cert_der.clone());
        }
        let proxy = rt.block_on(start_on_loopback(config)).unwrap();
        let client = authority.client("cks.kms.us-east-1.amazonaws.com").unwrap();
        let tag = if require { "required" } else { "optional" };
        let args = RunArgs {
            endpoint_url: Some(format!("https://localhost:{}", proxy.addr.port())),
            uri_path: Some(ckscheck::xks::proxy::DEFAULT_URI_PATH.into()),
            key_id: Some(KEY_MAIN.into()),
            ca_cert: Some(temp_file(&format!("ca-{tag}.pem"), &proxy.ca_pem)),
            client_cert: Some(temp_file(&format!("client-{tag}.pem"), &client.cert_pem)),
            client_key: Some(temp_file(&format!("client-{tag}.key"), &client.key_pem)),
            access_key_id: Some(DEFAULT_CREDENTIAL.access_key_id.clone()),
            secret_access_key: Some(DEFAULT_CREDENTIAL.secret_access_key.clone()),
            region: "us-east-1".into(),
            cases: 4,
            seed: Some(1),
            ..RunArgs::default()
        };
        // localhost resolves to loopback: no resolve override needed for a URL with a port.
        let prepared = prepare(&args, &rt).expect("prepares");
        prepared
            .preflight()
            .expect("reachable with the client certificate");
        let auth = checks()
            .into_iter()
            .find(|c| c.name == "xks-authentication")
            .unwrap();
        let report = prepared.run_check(&auth);
        let mtls: Vec<_> = report
            .verdict
            .findings
            .iter()
            .filter(|f| f.rule == "auth/mtls")
            .collect();
        if require {
            assert!(report.failure.is_none(), "{:?}", report.failure);
            assert!(mtls.is_empty(), "{mtls:?}");
        } else {
            assert!(
                report.failure.is_none(),
                "a SHOULD does not fail a non-strict run"
            );
            assert_eq!(mtls.len(), 1, "{:?}", report.verdict.findings);
            assert_eq!(mtls[0].severity, ckscheck::oracle::Severity::Unsettled);
            assert!(mtls[0].message.contains("(SHOULD)"), "{}", mtls[0].message);
        }
        rt.block_on(proxy.stop());
    }
}
