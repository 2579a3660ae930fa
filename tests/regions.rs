//! Trials at once against one endpoint, each in a region of its own: the emulator keeps
//! regions apart, concurrent runs reach the serial runs' verdicts on the clean emulator and on
//! every planted fault, and an endpoint that mixes regions gets its trials one at a time.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use ckscheck::emulator::{EmulatorConfig, Fault, start_on_loopback};
use ckscheck::runner::KmsClient;
use ckscheck::sigv4::Credential;
use common::{Emulator, ckscheck, ckscheck_command, loopback_server, scratch, text};
use serde_json::{Value, json};

/// Cases per check: enough for most faults to show, few enough for CI.
const CASES: &str = "4";
/// Requests one shrink may send: a trial's verdict is settled before it shrinks, so a small
/// budget keeps the comparison whole and the test short.
const SHRINK_REQUESTS: &str = "40";
/// Transitions of the `ckscheck serve` under test, in ms (short, but still observable).
const TRANSITION_MS: &str = "20";

#[tokio::test]
async fn the_emulator_keeps_each_region_apart() {
    let emulator = start_on_loopback(EmulatorConfig::default())
        .await
        .expect("an emulator");
    let client = |region: &str| {
        KmsClient::new(
            &emulator.url(),
            region,
            Credential::new("AKIDREGIONS", "secret"),
            std::time::Duration::from_secs(10),
        )
        .expect("a client")
    };
    let (east, west) = (client("us-east-1"), client("eu-west-1"));
    let body = ckscheck::generate::backends::create_body(
        &ckscheck::model::Fixtures::builtin(),
        ckscheck::generate::backends::Backend::Cluster(0),
        "regional",
        true,
    );
    let made = east
        .call("CreateCustomKeyStore", &body)
        .await
        .expect("answered");
    assert_eq!(made.status, 200, "{}", made.text);
    let list = |reply: ckscheck::runner::Reply| reply.body["CustomKeyStores"].clone();
    let seen_east = list(
        east.call("DescribeCustomKeyStores", &json!({}))
            .await
            .unwrap(),
    );
    let seen_west = list(
        west.call("DescribeCustomKeyStores", &json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(seen_east.as_array().map(Vec::len), Some(1), "{seen_east}");
    assert_eq!(seen_west, json!([]), "another region lists no store");
    let by_name = west
        .call(
            "DescribeCustomKeyStores",
            &json!({ "CustomKeyStoreName": "regional" }),
        )
        .await
        .unwrap();
    assert_eq!(
        by_name.error_name().as_deref(),
        Some("CustomKeyStoreNotFoundException")
    );
    // The same cluster and name can back a store in the other region too.
    let again = west
        .call("CreateCustomKeyStore", &body)
        .await
        .expect("answered");
    assert_eq!(again.status, 200, "{}", again.text);
    emulator.stop().await;
}

/// What a run concluded: each trial's status, and the run's deviations with their status.
struct Verdicts {
    trials: BTreeMap<String, String>,
    deviations: Vec<String>,
}

/// The verdicts in a JSON report.
fn verdicts(report: &Path) -> Verdicts {
    let text = std::fs::read_to_string(report).expect("the JSON report");
    let r: Value = serde_json::from_str(&text).expect("JSON");
    let trials = r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut deviations: Vec<String> = r["deviations"]
        .as_array()
        .expect("deviations")
        .iter()
        .map(|d| {
            format!(
                "{} [{}]",
                d["id"].as_str().unwrap_or_default(),
                d["status"].as_str().unwrap_or_default()
            )
        })
        .collect();
    deviations.sort();
    Verdicts { trials, deviations }
}

/// One run against a fresh `ckscheck serve` planted with `fault`; its output and verdicts.
fn run(fault: Option<&str>, jobs: Option<&str>, dir: &Path) -> (String, Verdicts) {
    let mut args = vec!["--connect-delay-ms", TRANSITION_MS];
    if let Some(f) = fault {
        args.extend(["--fault", f]);
    }
    let served = Emulator::start(&args);
    let report = dir.join(format!(
        "{}-{}.json",
        fault.unwrap_or("clean"),
        jobs.unwrap_or("default")
    ));
    let journal = dir.join(format!(
        "{}-{}.journal",
        fault.unwrap_or("clean"),
        jobs.unwrap_or("default")
    ));
    let mut run = vec![
        "run",
        "--endpoint-url",
        &served.url,
        "--region",
        "us-east-1",
        "--cases",
        CASES,
        "--seed",
        "11",
        "--shrink-requests",
        SHRINK_REQUESTS,
        "--json",
        report.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ];
    if let Some(j) = jobs {
        run.extend(["--jobs", j]);
    }
    let out = ckscheck(&run, dir);
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "{}", text(&out));
    (text(&out), verdicts(&report))
}

#[test]
fn concurrent_verdicts_match_serial_ones_on_the_clean_emulator_and_every_fault() {
    let dir = scratch("regions-verdicts");
    let mut configs: Vec<Option<&'static str>> = vec![None];
    configs.extend(Fault::ALL.iter().map(|f| Some(f.name())));
    let next = Mutex::new(configs.into_iter());
    let differences = Mutex::new(Vec::new());
    let one_at_a_time = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some(fault) = next.lock().unwrap().next() else {
                        return;
                    };
                    let (serial_out, serial) = run(fault, Some("1"), &dir);
                    let (concurrent_out, concurrent) = run(fault, None, &dir);
                    if !concurrent_out.contains("trials at once, each in a region of its own") {
                        one_at_a_time.lock().unwrap().push(fault.unwrap_or("clean"));
                    }
                    assert!(!serial_out.contains("trials at once"), "{serial_out}");
                    if serial.trials != concurrent.trials {
                        let differ: Vec<String> = serial
                            .trials
                            .iter()
                            .filter(|(t, s)| concurrent.trials.get(*t) != Some(s))
                            .map(|(t, s)| {
                                format!(
                                    "{t}: serial {s}, concurrent {:?}",
                                    concurrent.trials.get(t)
                                )
                            })
                            .collect();
                        differences.lock().unwrap().push(format!(
                            "{}: {}",
                            fault.unwrap_or("clean"),
                            differ.join("; ")
                        ));
                    }
                    if fault.is_none() {
                        assert_eq!(serial.deviations, Vec::<String>::new(), "{serial_out}");
                        assert_eq!(
                            concurrent.deviations,
                            Vec::<String>::new(),
                            "{concurrent_out}"
                        );
                    }
                    if serial.deviations != concurrent.deviations {
                        // Which transitional state a step meets depends on timing in both
                        // schedules; what each run saw is shown, the trials' verdicts must agree.
                        eprintln!(
                            "{}: deviations\n  serial     {:?}\n  concurrent {:?}",
                            fault.unwrap_or("clean"),
                            serial.deviations,
                            concurrent.deviations
                        );
                    }
                }
            });
        }
    });
    let differences = differences.into_inner().unwrap();
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
    // The probe reads only a create and a listing: faults in other answers leave it able to
    // run trials at once, so the comparison above is between two different schedules.
    let one_at_a_time = one_at_a_time.into_inner().unwrap();
    assert!(
        one_at_a_time.len() <= 3 && !one_at_a_time.contains(&"clean"),
        "trials ran one at a time against: {one_at_a_time:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_mixes_regions_gets_one_trial_at_a_time_and_keeps_nothing() {
    ckscheck::runner::install_crypto_provider();
    let served = Emulator::start(&["--connect-delay-ms", TRANSITION_MS]);
    let upstream = served.url.clone();
    // A proxy that signs every request over to us-east-1, as an endpoint that ignores the
    // region would see it.
    let addr = loopback_server(move |request: hyper::Request<hyper::body::Incoming>| {
        let upstream = upstream.clone();
        async move {
            use http_body_util::BodyExt;
            let (parts, body) = request.into_parts();
            let body = body.collect().await.expect("a body").to_bytes();
            let mut forward = reqwest::Client::new().post(format!("{upstream}{}", parts.uri));
            let scope = regex::Regex::new(r"/[a-z]+-[a-z]+-[0-9]+/kms/").expect("a regex");
            for (name, value) in &parts.headers {
                let value = value.to_str().unwrap_or_default();
                let value = if name == "authorization" {
                    scope.replace(value, "/us-east-1/kms/").into_owned()
                } else {
                    value.to_string()
                };
                if name != "host" && name != "content-length" {
                    forward = forward.header(name.as_str(), value);
                }
            }
            let answer = forward.body(body).send().await.expect("upstream answers");
            let mut out = hyper::Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    out = out.header(name, value);
                }
            }
            let bytes = answer.bytes().await.expect("a body");
            out.body(http_body_util::Full::new(bytes))
                .expect("a response")
        }
    })
    .await;
    let dir = scratch("regions-mixed");
    let url = format!("http://{addr}");
    let report = dir.join("r.json");
    let out = tokio::task::spawn_blocking({
        let (dir, url, report) = (dir.clone(), url.clone(), report.clone());
        move || {
            ckscheck_command(
                &[
                    "run",
                    "--endpoint-url",
                    &url,
                    "--region",
                    "us-west-2",
                    "--cases",
                    "2",
                    "--seed",
                    "5",
                    "--json",
                    report.to_str().unwrap(),
                ],
                &dir,
            )
            .output()
            .expect("runs")
        }
    })
    .await
    .unwrap();
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no finding from mixed regions:\n{said}"
    );
    assert!(
        said.contains("trials run one at a time in us-west-2")
            && said.contains("does not keep regions apart"),
        "{said}"
    );
    assert!(!said.contains("trials at once"), "{said}");
    // Nothing the run created is left, the probe's store included.
    let left = ckscheck(&["cleanup", "--region", "us-east-1"], &dir);
    assert!(
        String::from_utf8_lossy(&left.stdout).contains("nothing to clean up"),
        "{}",
        text(&left)
    );
    let client = KmsClient::new(
        &served.url,
        "us-east-1",
        Credential::new("AKIDREGIONS", "secret"),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let listed = client
        .call("DescribeCustomKeyStores", &json!({}))
        .await
        .unwrap();
    assert_eq!(listed.body["CustomKeyStores"], json!([]), "{}", listed.text);
    let _ = std::fs::remove_dir_all(&dir);
}
