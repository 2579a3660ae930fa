//! Lessons from the field, through the command line:
//!
//! - a run, record or selftest that would check nothing is a usage error (exit 2), not a pass;
//! - against an endpoint without `--fixtures`, only healthy backends are assumed: the scenarios
//!   that need a failing backend are named and skipped, and `--fixtures builtin` brings them back;
//! - a deviation that does not show again while shrinking keeps the case that showed it, with
//!   its findings and exchanges, and is unsettled rather than failing.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;

use ckscheck::model::Fixtures;

mod common;
use common::{Emulator, ckscheck, loopback_server, scratch, text};

/// Runs ckscheck with ARGS in `dir`; its exit code and everything it printed.
fn status(args: &[&str], dir: &Path) -> (i32, String) {
    let out = ckscheck(args, dir);
    (out.status.code().unwrap_or(-1), text(&out))
}

#[test]
fn a_run_that_would_check_nothing_is_a_usage_error() {
    let dir = scratch("nothing");
    for (args, says) in [
        (vec!["run", "--cases", "0"], "--cases must be at least 1"),
        (
            vec!["run", "--filter", "nosuchcheck"],
            "checks and scenarios is selected, so the run would check nothing",
        ),
        (
            vec!["run", "--filter", "states", "--skip", "states"],
            "would check nothing",
        ),
        (
            vec!["selftest", "--cases", "0"],
            "--cases must be at least 1",
        ),
        (
            vec!["selftest", "--filter", "nosuchfault"],
            "matches no planted fault",
        ),
        (
            vec!["record", "--out", "snaps", "--filter", "nosuchscenario"],
            "matches no scenario",
        ),
        (
            vec!["xks", "run", "--cases", "0"],
            "--cases must be at least 1",
        ),
        (
            vec!["xks", "run", "--filter", "nosuchcheck"],
            "selects none of the",
        ),
    ] {
        let (code, shown) = status(&args, &dir);
        assert_eq!(code, 2, "{args:?}: {shown}");
        assert!(
            shown.contains(says),
            "{args:?} should say {says:?}: {shown}"
        );
    }
}

#[test]
fn selected_scenarios_none_of_which_can_run_are_a_usage_error() {
    let dir = scratch("unrunnable");
    // Fixtures with no backend at all: no scenario that creates a store can run.
    std::fs::write(dir.join("none.toml"), "").expect("fixtures written");
    let (code, shown) = status(
        &[
            "run",
            "--fixtures",
            "none.toml",
            "--filter",
            "connect-fails",
        ],
        &dir,
    );
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("can run here"), "{shown}");
    assert!(shown.contains("no fixture plays the role"), "{shown}");
    let (code, shown) = status(
        &[
            "record",
            "--out",
            "snaps",
            "--fixtures",
            "none.toml",
            "--filter",
            "connect-fails",
        ],
        &dir,
    );
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("nothing would be recorded"), "{shown}");
    assert!(
        !dir.join("snaps/connect-fails-user-locked-out.snap")
            .exists(),
        "nothing is written"
    );
}

/// The JSON report a run wrote to `report.json` in `dir` (`shown`: its output, for the panic).
fn json_report(dir: &Path, shown: &str) -> Value {
    std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no JSON report: {shown}"))
}

/// The report's entry for check `name`.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
}

/// The verdict libtest printed for trial `name` (`ok`, `FAILED`, `ignored`).
fn verdict<'a>(shown: &'a str, name: &str) -> Option<&'a str> {
    shown.lines().find_map(|l| {
        let (trial, verdict) = l.split_once(" ... ")?;
        (trial.split_whitespace().last() == Some(name)).then(|| verdict.trim())
    })
}

/// The fixtures of an emulator that simulates no failing backend.
fn healthy_fixtures(dir: &Path) -> String {
    let text = toml::to_string(&Fixtures::builtin_healthy()).expect("fixtures serialise");
    let path = dir.join("healthy.toml");
    std::fs::write(&path, text).expect("fixtures written");
    path.display().to_string()
}

#[test]
fn against_an_endpoint_without_fixtures_only_healthy_backends_are_assumed() {
    let dir = scratch("healthy-only");
    let fixtures = healthy_fixtures(&dir);
    let emulator = Emulator::start(&["--fixtures", &fixtures, "--connect-delay-ms", "20"]);
    let url = emulator.url.as_str();
    // `connect` selects the connect scenarios: those on a failing backend need one the
    // endpoint does not simulate, the others pass.
    let base = ["run", "--endpoint-url", url, "--region", "us-east-1"];
    let mut args = base.to_vec();
    args.extend(["--filter", "snapshot::connect"]);
    let (code, shown) = status(&args, &dir);
    assert_eq!(code, 0, "{shown}");
    let line = shown
        .lines()
        .find(|l| l.starts_with("healthy backends assumed"))
        .unwrap_or_else(|| panic!("no line names the skipped scenarios: {shown}"));
    for name in [
        "connect-fails-user-locked-out",
        "connect-fails-xks-proxy-timed-out",
        "connect-fails-xks-vpc-endpoint-service-not-found",
    ] {
        assert!(line.contains(name), "{name} not named: {line}");
    }
    assert!(line.contains("--fixtures builtin"), "{line}");
    assert!(!line.contains("connect-when-connected"), "{line}");
    assert_eq!(
        verdict(&shown, "snapshot::connect-when-connected"),
        Some("ok"),
        "{shown}"
    );

    // The full built-in set claims the failing backends: the endpoint does not have them.
    args.extend(["--fixtures", "builtin"]);
    let (code, shown) = status(&args, &dir);
    assert_eq!(code, 1, "{shown}");
    assert_eq!(
        verdict(&shown, "snapshot::connect-fails-user-locked-out"),
        Some("FAILED"),
        "{shown}"
    );
    assert!(!shown.contains("healthy backends assumed"), "{shown}");

    // Only scenarios that need a failing backend: nothing to check.
    let mut args = base.to_vec();
    args.extend(["--filter", "snapshot::connect-fails-xks"]);
    let (code, shown) = status(&args, &dir);
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("needs a failing backend"), "{shown}");
}

/// A proxy in front of `upstream` that changes one answer, once: the first listing with a
/// CONNECTED store says `CONNECTED_ONCE` instead. An endpoint that lies once and never again.
async fn lie_once(upstream: String) -> SocketAddr {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let lied = Arc::new(AtomicBool::new(false));
    loopback_server(move |req: Request<Incoming>| {
        let (client, upstream, lied) = (client.clone(), upstream.clone(), lied.clone());
        async move { forward(req, &client, &upstream, &lied).await }
    })
    .await
}

async fn forward(
    req: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    lied: &AtomicBool,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut outgoing = client.request(parts.method, format!("{upstream}{}", parts.uri));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.body(body).send().await else {
        return Response::builder()
            .status(502)
            .body(Full::new(Bytes::new()))
            .expect("a response");
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.unwrap_or_default();
    if let Ok(mut json) = serde_json::from_slice::<Value>(&bytes)
        && let Some(stores) = json["CustomKeyStores"].as_array_mut()
        && let Some(store) = stores
            .iter_mut()
            .find(|s| s["ConnectionState"] == "CONNECTED")
        && !lied.swap(true, Ordering::SeqCst)
    {
        store["ConnectionState"] = Value::from("CONNECTED_ONCE");
        bytes = Bytes::from(serde_json::to_vec(&json).expect("JSON"));
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response.body(Full::new(bytes)).expect("a response")
}

#[test]
fn a_deviation_that_does_not_show_again_keeps_its_evidence_and_is_unsettled() {
    let dir = scratch("lie-once");
    let emulator = Emulator::start(&["--connect-delay-ms", "5"]);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let addr = runtime.block_on(lie_once(emulator.url.clone()));
    let url = format!("http://{addr}");
    let (code, shown) = status(
        &[
            "run",
            "--endpoint-url",
            &url,
            "--region",
            "us-east-1",
            "--filter",
            "fields",
            "--cases",
            "12",
            "--seed",
            "3",
            "--json",
            "report.json",
        ],
        &dir,
    );
    // Unsettled fails only with --strict.
    assert_eq!(code, 0, "{shown}");
    let report = json_report(&dir, &shown);
    let check = check(&report, "fields");
    let failures = check["failures"].as_array().cloned().unwrap_or_default();
    let flaky: Vec<&Value> = failures
        .iter()
        .filter(|f| {
            f["summary"]
                .as_str()
                .is_some_and(|s| s.contains("did not reproduce while shrinking ("))
        })
        .collect();
    assert!(
        !flaky.is_empty(),
        "no unreproduced counterexample: {check:#}"
    );
    for f in flaky {
        let steps = f["steps"].as_array().map_or(0, Vec::len);
        assert!(steps > 0, "the case that showed it has steps: {f:#}");
        let exchanges = f["exchanges"].to_string();
        assert!(
            exchanges.contains("CONNECTED_ONCE"),
            "its exchanges show the answer that was judged: {f:#}"
        );
        assert!(f["curl"].as_array().is_some_and(|c| !c.is_empty()), "{f:#}");
    }
    let statuses: Vec<&str> = report["deviations"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["status"].as_str()).collect())
        .unwrap_or_default();
    assert!(statuses.contains(&"unsettled"), "{statuses:?}");
    assert!(!statuses.contains(&"failing"), "{statuses:?}");
}

#[test]
fn a_finding_about_a_length_says_which_measure_moves_it() {
    let dir = scratch("measure");
    let (code, shown) = status(
        &[
            "run",
            "--fault",
            "length-in-bytes",
            "--filter",
            "pagination",
            "--seed",
            "1",
            "--json",
            "report.json",
        ],
        &dir,
    );
    assert_eq!(code, 1, "{shown}");
    let report = json_report(&dir, &shown);
    let findings = check(&report, "pagination")["findings"].to_string();
    assert!(
        findings.contains("the spec's limit (1 to 1024) counts characters"),
        "{findings}"
    );
    assert!(
        findings.contains("while counted in UTF-8 bytes it is outside"),
        "{findings}"
    );
}
