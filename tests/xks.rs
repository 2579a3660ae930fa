//! The XKS certification suite against the embedded reference proxy: the clean proxy passes
//! every check, and each planted fault is caught by the check meant for it (and only a strict
//! run catches a SHOULD-level fault).

use std::collections::BTreeMap;

use ckscheck::proxy::ProxyFault;
use ckscheck::xks::checks::checks;
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
        if let Some(f) = report.failures.into_iter().next() {
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
fn client_for(p: &ckscheck::proxy::RunningProxy) -> ckscheck::xks::XksClient {
    use ckscheck::proxy::{DEFAULT_CREDENTIAL, DEFAULT_REGION, DEFAULT_URI_PATH};
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
    use ckscheck::proxy::{KEY_MAIN, ProxyConfig, start_on_loopback};
    use ckscheck::xks::checks::requests::{Sealed, encrypt};
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
/// check exercises mTLS (no certificate, and one from an untrusted CA), which passes when the
/// proxy requires a trusted certificate and warns (failing only a strict run) when it serves
/// anyone.
#[test]
fn mutual_tls_is_exercised_against_a_proxy_given_by_url() {
    use ckscheck::proxy::{DEFAULT_CREDENTIAL, KEY_MAIN, ProxyConfig, start_on_loopback};
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
            uri_path: Some(ckscheck::proxy::DEFAULT_URI_PATH.into()),
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
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            assert!(mtls.is_empty(), "{mtls:?}");
        } else {
            assert!(
                report.failures.is_empty(),
                "a SHOULD does not fail a non-strict run"
            );
            // Served without a certificate, and with one from a CA it does not trust (AWS's
            // test client's self-signed case).
            assert_eq!(mtls.len(), 2, "{:?}", report.verdict.findings);
            for f in &mtls {
                assert_eq!(f.severity, ckscheck::oracle::Severity::Unsettled);
                assert!(f.message.contains("(SHOULD)"), "{}", f.message);
            }
            assert!(mtls[0].message.contains("without a client certificate"));
            assert!(mtls[1].message.contains("from an untrusted CA"));
        }
        rt.block_on(proxy.stop());
    }
}

/// Runs the `ckscheck` binary; (exit code, stdout + stderr).
fn ckscheck(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ckscheck"));
    cmd.args(args)
        .env_remove("XKS_ACCESS_KEY_ID")
        .env_remove("XKS_SECRET_ACCESS_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("ckscheck runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn xks_run_exit_codes_reports_and_reproducers_without_the_secret() {
    use ckscheck::proxy::DEFAULT_SECRET_ACCESS_KEY;
    let json = temp_file("clean.json", "");
    let junit = temp_file("clean.xml", "");
    let (code, out) = ckscheck(
        &[
            "xks",
            "run",
            "--cases",
            "8",
            "--seed",
            "3",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("test result: ok. 9 passed"), "{out}");
    assert!(
        out.contains("Encrypt") && out.contains("p99"),
        "latency table: {out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["totals"]["passed"], 9, "{report}");
    assert_eq!(report["endpoint"], "embedded proxy");
    let latency = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "xks-latency")
        .unwrap();
    assert!(
        latency["metrics"]["Decrypt p99"]
            .as_str()
            .unwrap()
            .ends_with(" ms"),
        "{latency}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 9, "{xml}");

    let (code, out) = ckscheck(
        &[
            "xks",
            "run",
            "--cases",
            "8",
            "--seed",
            "3",
            "--fault",
            "wrong-cdiv",
            "--json",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[crypto/cdiv]"), "{out}");
    assert!(
        out.contains("--aws-sigv4 aws:amz:us-east-1:kms-xks-proxy"),
        "{out}"
    );
    assert!(out.contains("$XKS_SECRET_ACCESS_KEY"), "{out}");
    assert!(
        out.contains(
            "replay: ckscheck xks run --seed 3 --filter xks-round-trip --fault wrong-cdiv"
        ),
        "{out}"
    );
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        text.contains("curl -sS -i -X POST"),
        "the JSON report carries the reproducer"
    );
    for t in [&out, &text] {
        assert!(!t.contains(DEFAULT_SECRET_ACCESS_KEY), "the secret leaked");
    }

    let (code, out) = ckscheck(&["xks", "run", "--endpoint-url", "ftp://localhost:1"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("must be https://"), "{out}");
    let (code, out) = ckscheck(
        &[
            "xks",
            "run",
            "--endpoint-url",
            "http://localhost:1",
            "--key-id",
            "k",
            "--ca-cert",
            "ca.pem",
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("plain http://"), "{out}");
    let (code, out) = ckscheck(
        &[
            "xks",
            "run",
            "--endpoint-url",
            "https://localhost:1",
            "--key-id",
            "k",
        ],
        &[
            ("XKS_ACCESS_KEY_ID", "AKIDAAAAAAAAAAAAAAAA"),
            ("XKS_SECRET_ACCESS_KEY", "s3cr3t-value-never-shown"),
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("cannot reach the XKS proxy"), "{out}");
    assert!(!out.contains("s3cr3t-value-never-shown"), "{out}");
    let (code, out) = ckscheck(
        &["xks", "run", "--endpoint-url", "https://localhost:1"],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--key-id"), "{out}");
}

/// `ckscheck xks run` against `url` trusting `ca`, with a test credential and `cases` cases.
fn run_against(url: &str, ca: &std::path::Path, cases: &str) -> (i32, String) {
    let ca = ca.to_str().unwrap();
    ckscheck(
        &[
            "xks",
            "run",
            "--endpoint-url",
            url,
            "--key-id",
            "k",
            "--ca-cert",
            ca,
            "--cases",
            cases,
        ],
        &[
            ("XKS_ACCESS_KEY_ID", "AKIDAAAAAAAAAAAAAAAA"),
            (
                "XKS_SECRET_ACCESS_KEY",
                "secretsecretsecretsecretsecretsecretsecret1",
            ),
        ],
    )
}

/// An HTTPS server on loopback whose connections `answer` (given the TLS stream); its port.
fn https_server<F, Fut>(
    rt: &tokio::runtime::Runtime,
    authority: &ckscheck::xks::tls::Authority,
    answer: F,
) -> u16
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let identity = authority.server(&["localhost"]).unwrap();
    let config = ckscheck::xks::tls::server_config(&identity, None).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = std::sync::Arc::new(answer);
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    answer(tls).await;
                }
            });
        }
    });
    port
}

/// A proxy that completes the TLS handshake and then never answers: every check fails with
/// timeouts, and after three in a row the rest fail at once (the run stays short).
#[test]
fn a_hung_endpoint_is_a_finding_and_the_run_stays_short() {
    let rt = runtime();
    let authority = ckscheck::xks::tls::Authority::generate("hung CA").unwrap();
    let port = https_server(&rt, &authority, |tls| async move {
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        drop(tls);
    });
    let ca = temp_file("hung-ca.pem", &authority.cert_pem);
    let url = format!("https://localhost:{port}");
    let started = std::time::Instant::now();
    let (code, out) = run_against(&url, &ca, "4");
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("timed out after 2s"), "{out}");
    assert!(
        out.contains("test result: FAILED. 0 passed; 8 failed"),
        "{out}"
    );
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
}

/// An HTTPS server that answers every request with an HTML page (a proxy behind a broken
/// load balancer): the run reports failures, it does not crash.
#[test]
fn an_endpoint_answering_html_is_a_finding_not_a_crash() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = runtime();
    let authority = ckscheck::xks::tls::Authority::generate("html CA").unwrap();
    let port = https_server(&rt, &authority, |mut tls| async move {
        let mut buf = vec![0u8; 65536];
        let _ = tls.read(&mut buf).await;
        let page = "<html><body>502 Bad Gateway</body></html>";
        let answer = format!(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = tls.write_all(answer.as_bytes()).await;
        let _ = tls.shutdown().await;
    });
    let ca = temp_file("html-ca.pem", &authority.cert_pem);
    let url = format!("https://localhost:{port}");
    let (code, out) = run_against(&url, &ca, "2");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("502 (not JSON)"), "{out}");
    assert!(
        out.contains("xks-health") && out.contains("FAILED"),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn a_fixed_check_shows_only_the_exchanges_that_fail() {
    let rt = runtime();
    let args = RunArgs {
        faults: vec![ProxyFault::AcceptsBadSignatures],
        cases: 4,
        seed: Some(1),
        region: "us-east-1".into(),
        ..RunArgs::default()
    };
    let prepared = prepare(&args, &rt).unwrap();
    let auth = checks()
        .into_iter()
        .find(|c| c.name == "xks-authentication")
        .unwrap();
    let report = prepared.run_check(&auth);
    let failing = report.verdict.failures(false).count();
    let text = report
        .failures
        .into_iter()
        .next()
        .expect("the fault is caught")
        .reproducer
        .unwrap();
    let curls = text
        .lines()
        .filter(|l| l.trim_start().starts_with("curl "))
        .count();
    assert!(failing >= 2, "{text}");
    assert_eq!(
        curls, failing,
        "one curl line per failing exchange:\n{text}"
    );
    assert!(text.contains("signed with a wrong secret → 200"), "{text}");
    assert!(
        !text.contains("signed as KMS signs it"),
        "a passing exchange is not shown:\n{text}"
    );
}

/// A proxy whose GetKeyMetadata answers a wrong keySpec fails xks-metadata, whose subject that
/// is, and no other check: xks-authentication's baseline needs only a 200, xks-key-usage judges
/// only usages and status, and both still run and pass their own subject.
#[test]
fn a_wrong_keyspec_fails_xks_metadata_and_no_other_check() {
    let failed = failing(&[ProxyFault::MetadataWrongKeyspec], true, 8, |_| true);
    let names: Vec<&str> = failed.keys().map(String::as_str).collect();
    assert_eq!(names, ["xks-metadata"], "{failed:#?}");
    assert!(failed["xks-metadata"].contains("AES_128"), "{failed:#?}");
}

/// `--key-id-no-usage` against a proxy given by URL whose keys include one with no usage (AWS's
/// test client's "impotent key"): the correct proxy passes xks-key-usage, and one that ignores
/// key usage fails it on that key's Encrypt and Decrypt.
#[test]
fn a_key_with_no_usage_must_refuse_encrypt_and_decrypt() {
    use ckscheck::proxy::{
        DEFAULT_CREDENTIAL, DEFAULT_URI_PATH, KEY_MAIN, KeyDef, ProxyConfig, start_on_loopback,
    };
    let rt = runtime();
    for faults in [vec![], vec![ProxyFault::IgnoresKeyUsage]] {
        let mut config = ProxyConfig::reference("localhost");
        config.keys = vec![
            KeyDef::new(KEY_MAIN, &["ENCRYPT", "DECRYPT"], true),
            KeyDef::new("impotent_key", &[], true),
        ];
        config.faults = faults.clone();
        let proxy = rt.block_on(start_on_loopback(config)).unwrap();
        let ca = temp_file(&format!("no-usage-{}.pem", faults.len()), &proxy.ca_pem);
        let url = format!("https://localhost:{}", proxy.addr.port());
        let (code, out) = ckscheck(
            &[
                "xks",
                "run",
                "--endpoint-url",
                &url,
                "--uri-path",
                DEFAULT_URI_PATH,
                "--ca-cert",
                ca.to_str().unwrap(),
                "--key-id",
                KEY_MAIN,
                "--key-id-no-usage",
                "impotent_key",
                "--filter",
                "xks-key-usage",
            ],
            &[
                ("XKS_ACCESS_KEY_ID", &DEFAULT_CREDENTIAL.access_key_id),
                (
                    "XKS_SECRET_ACCESS_KEY",
                    &DEFAULT_CREDENTIAL.secret_access_key,
                ),
            ],
        );
        if faults.is_empty() {
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("xks-key-usage ... ok"), "{out}");
        } else {
            assert_eq!(code, 1, "{out}");
            for what in [
                "Encrypt with AAD with no-usage key impotent_key: expected 400 InvalidKeyUsageException, got 200",
                "Decrypt with no-usage key impotent_key: expected 400 InvalidKeyUsageException",
            ] {
                assert!(out.contains(what), "{what}:\n{out}");
            }
        }
        rt.block_on(proxy.stop());
    }
}

/// `xks run --json`: a failure carries its reproduction as structured fields a pipeline can read
/// (`steps`, `exchanges` with method, path, status, latency and both bodies, one `curl` line per
/// exchange), not only the `reproducer` text; no secret in any of them.
#[test]
fn a_json_failure_has_structured_exchanges_and_curl_lines() {
    use ckscheck::proxy::DEFAULT_SECRET_ACCESS_KEY;
    let json = temp_file("structured.json", "");
    let (code, out) = ckscheck(
        &[
            "xks",
            "run",
            "--cases",
            "8",
            "--seed",
            "5",
            "--fault",
            "ignores-key-usage",
            "--filter",
            "xks-key-usage",
            "--json",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        !text.contains(DEFAULT_SECRET_ACCESS_KEY),
        "the secret leaked"
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "xks-key-usage")
        .unwrap();
    let failure = &check["failures"][0];
    let exchanges = failure["exchanges"].as_array().expect("exchanges");
    let curl = failure["curl"].as_array().expect("curl");
    let steps = failure["steps"].as_array().expect("steps");
    assert!(!exchanges.is_empty(), "{failure:#}");
    assert_eq!(curl.len(), exchanges.len(), "{failure:#}");
    assert_eq!(steps.len(), exchanges.len(), "{failure:#}");
    // The encrypt-only key's Decrypt was accepted: the exchange says so in structured form.
    let decrypt = exchanges
        .iter()
        .find(|e| {
            e["operation"] == "Decrypt"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/keys/ckscheck-aes-encrypt-only/decrypt"))
        })
        .unwrap_or_else(|| panic!("the failing Decrypt: {failure:#}"));
    assert_eq!(decrypt["method"], "POST", "{decrypt:#}");
    assert_eq!(decrypt["status"], 200, "{decrypt:#}");
    assert!(
        decrypt["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{decrypt:#}"
    );
    assert!(decrypt["request"]["ciphertext"].is_string(), "{decrypt:#}");
    assert!(decrypt["response"]["plaintext"].is_string(), "{decrypt:#}");
    for line in curl {
        let line = line.as_str().unwrap();
        assert!(
            line.starts_with("curl -sS -i -X POST https://localhost:4443/"),
            "{line}"
        );
        assert!(line.contains("$XKS_SECRET_ACCESS_KEY"), "{line}");
    }
    assert!(
        failure["reproducer"]
            .as_str()
            .is_some_and(|r| r.contains("curl"))
    );
}

/// `xks serve --plain-http` started as a process, and its endpoint (`http://localhost:PORT`).
fn serve_plain_http() -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckscheck"))
        .args(["xks", "serve", "--plain-http", "--port", "0"])
        .env_remove("XKS_ACCESS_KEY_ID")
        .env_remove("XKS_SECRET_ACCESS_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ckscheck xks serve starts");
    let stdout = child.stdout.take().unwrap();
    // Read on in the background: a closed pipe would fail the server's later writes.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.trim().strip_prefix("endpoint:") {
            return (child, url.trim().to_string());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    panic!("xks serve --plain-http printed no endpoint:\n{seen}{err}");
}

/// `xks run` against a plain-HTTP proxy (`xks serve --plain-http`): accepted; the output, the
/// JSON and the JUnit report all say TLS was not certified; `tls/https-required` is a SHOULD
/// finding (exit 0 without --strict, 1 with it), and the TLS checks are reported as not run.
#[test]
fn a_plain_http_proxy_is_certified_without_tls_and_every_report_says_so() {
    use ckscheck::proxy::{DEFAULT_CREDENTIAL, DEFAULT_URI_PATH, KEY_MAIN};
    let (mut server, url) = serve_plain_http();
    assert!(url.starts_with("http://"), "{url}");
    let json = temp_file("plain.json", "");
    let junit = temp_file("plain.xml", "");
    let env = [
        (
            "XKS_ACCESS_KEY_ID",
            DEFAULT_CREDENTIAL.access_key_id.as_str(),
        ),
        (
            "XKS_SECRET_ACCESS_KEY",
            DEFAULT_CREDENTIAL.secret_access_key.as_str(),
        ),
    ];
    let run = |strict: bool| {
        let mut args = vec![
            "xks",
            "run",
            "--endpoint-url",
            &url,
            "--uri-path",
            DEFAULT_URI_PATH,
            "--key-id",
            KEY_MAIN,
            "--cases",
            "8",
            "--seed",
            "2",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ];
        if strict {
            args.push("--strict");
        }
        ckscheck(&args, &env)
    };
    let (code, out) = run(false);
    let (strict_code, strict_out) = run(true);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 0, "{out}");
    let top = out.lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(
        top.contains("TLS was not part of this certification"),
        "{out}"
    );
    assert!(
        !out.contains(&DEFAULT_CREDENTIAL.secret_access_key),
        "the secret leaked"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"name="caveat""#) && xml.contains("TLS was not part of this certification"),
        "{xml}"
    );
    assert_eq!(
        strict_code, 1,
        "a strict run fails on the SHOULD:\n{strict_out}"
    );
    assert!(strict_out.contains("[tls/https-required]"), "{strict_out}");
    // The JSON report of the strict run (written last).
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(
        report["caveats"][0]
            .as_str()
            .is_some_and(|c| c.contains("TLS was not part of this certification")),
        "{}",
        report["caveats"]
    );
    let auth = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "xks-authentication")
        .unwrap();
    let finding = |rule: &str| {
        auth["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule} finding: {auth:#}"))
            .clone()
    };
    let https = finding("tls/https-required");
    assert!(
        https["message"].as_str().unwrap().starts_with("(SHOULD)"),
        "{https}"
    );
    for rule in ["tls/certificate", "auth/mtls"] {
        let f = finding(rule);
        assert!(
            f["message"].as_str().unwrap().starts_with("not run:")
                && f["message"].as_str().unwrap().contains("plain http://"),
            "{f}"
        );
    }
}
