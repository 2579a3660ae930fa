//! The `protocol/` rules on the wire: the runner really sends a request without X-Amz-Target
//! or with another Content-Type (signed as sent); the embedded emulator refuses each protocol
//! case with 400 UnknownOperationException and, with `unknown-operation-501` planted, with
//! 501 InvalidAction; the `validation` check catches that fault, passes the clean emulator,
//! and `report rejudge` of such a history gives the same verdicts.

#[allow(dead_code)] // the shared helpers this file does not use (a serve process)
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ckscheck::emulator::{EmulatorConfig, Fault, RunningEmulator, start_on_loopback};
use ckscheck::history::Wire;
use ckscheck::runner::{KmsClient, Reply};
use ckscheck::sigv4::Credential;
use common::{ckscheck, loopback_server, scratch, text};

const STEP: Duration = Duration::from_secs(5);

fn client(url: &str) -> KmsClient {
    KmsClient::new(
        url,
        "us-east-1",
        Credential::new(
            "AKIDPROTOCOLTESTAAAA",
            "protocolTestSecretAccessKeyAAAAAAAAAAAAA",
        ),
        STEP,
    )
    .expect("a client")
}

fn no_target() -> Wire {
    Wire {
        no_target: true,
        content_type: None,
    }
}

fn text_plain() -> Wire {
    Wire {
        no_target: false,
        content_type: Some("text/plain".into()),
    }
}

/// Catches a runner that still sends X-Amz-Target when the case says none, sends the
/// protocol's Content-Type instead of the case's, or signs headers it did not send.
#[tokio::test]
async fn the_runner_sends_exactly_the_protocol_headers_the_case_asks_for() {
    let seen: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let addr = loopback_server(move |req: hyper::Request<hyper::body::Incoming>| {
        record.lock().unwrap().push(req.headers().clone());
        async {
            hyper::Response::builder()
                .status(400)
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    br#"{"__type":"UnknownOperationException"}"#,
                )))
                .unwrap()
        }
    })
    .await;
    let c = client(&format!("http://{addr}/"));
    let body = || b"{}".to_vec();
    for wire in [None, Some(no_target()), Some(text_plain())] {
        let reply = c
            .call_raw("DescribeCustomKeyStores", body(), wire.as_ref())
            .await
            .expect("an answer");
        assert_eq!(reply.status, 400);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let header = |h: &http::HeaderMap, name: &str| {
        h.get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let signed = |h: &http::HeaderMap| {
        let auth = header(h, "authorization");
        auth.split("SignedHeaders=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_default()
            .to_string()
    };
    // As awsJson1_1 asks.
    assert_eq!(
        header(&seen[0], "x-amz-target"),
        "TrentService.DescribeCustomKeyStores"
    );
    assert_eq!(
        header(&seen[0], "content-type"),
        "application/x-amz-json-1.1"
    );
    assert!(signed(&seen[0]).contains("x-amz-target"));
    // No target at all, and none signed.
    assert!(seen[1].get("x-amz-target").is_none(), "{:?}", seen[1]);
    assert!(
        !signed(&seen[1]).contains("x-amz-target"),
        "{}",
        signed(&seen[1])
    );
    assert_eq!(
        header(&seen[1], "content-type"),
        "application/x-amz-json-1.1"
    );
    // The case's Content-Type, once, and the target as usual.
    assert_eq!(seen[2].get_all("content-type").iter().count(), 1);
    assert_eq!(header(&seen[2], "content-type"), "text/plain");
    assert_eq!(
        header(&seen[2], "x-amz-target"),
        "TrentService.DescribeCustomKeyStores"
    );
}

async fn emulator(faults: &[Fault]) -> RunningEmulator {
    let config = EmulatorConfig {
        faults: faults.to_vec(),
        ..EmulatorConfig::default()
    };
    tokio::time::timeout(STEP, start_on_loopback(config))
        .await
        .expect("starts in time")
        .expect("starts")
}

/// The three protocol cases against `c`: an unknown operation, no target, text/plain.
async fn protocol_replies(c: &KmsClient) -> Vec<Reply> {
    let mut out = Vec::new();
    for (op, wire) in [
        ("ListCustomKeyStores", None),
        ("DescribeCustomKeyStores", Some(no_target())),
        ("DescribeCustomKeyStores", Some(text_plain())),
    ] {
        out.push(
            c.call_raw(op, b"{}".to_vec(), wire.as_ref())
                .await
                .expect("an answer"),
        );
    }
    out
}

/// Catches an emulator that ignores Content-Type or a missing X-Amz-Target (it answered a
/// text/plain Describe with 200 before), and a fault that does not answer 501 InvalidAction.
#[tokio::test]
async fn the_emulator_refuses_each_protocol_case_and_the_fault_answers_501() {
    let clean = emulator(&[]).await;
    let c = client(&clean.url());
    for r in protocol_replies(&c).await {
        assert_eq!(
            (r.status, r.error_name().as_deref()),
            (400, Some("UnknownOperationException")),
            "{}",
            r.text
        );
    }
    // The protocol's own headers (and a charset parameter) are still served.
    let ok = c
        .call("DescribeCustomKeyStores", &serde_json::json!({}))
        .await
        .expect("an answer");
    assert_eq!(ok.status, 200, "{}", ok.text);
    let faulty = emulator(&[Fault::UnknownOperation501]).await;
    let f = client(&faulty.url());
    for r in protocol_replies(&f).await {
        assert_eq!(
            (r.status, r.error_name().as_deref()),
            (501, Some("InvalidAction")),
            "{}",
            r.text
        );
    }
    // Other errors are untouched.
    let other = f
        .call("DescribeCustomKeyStores", &serde_json::json!({"Limit": 0}))
        .await
        .expect("an answer");
    assert_eq!(other.error_name().as_deref(), Some("ValidationException"));
    clean.stop().await;
    faulty.stop().await;
}

/// Catches `unknown-operation-501` slipping past `validation` (no protocol case drawn, or a
/// 501 judged merely unsettled), a false failure on the clean emulator, a made-up operation
/// growing a matrix row, and a rejudge that reads protocol exchanges (their `wire`) otherwise
/// than the run judged them.
#[test]
fn validation_catches_unknown_operation_501_and_rejudge_agrees() {
    for fault in [Some("unknown-operation-501"), None] {
        let dir = scratch(&format!("protocol-{}", fault.unwrap_or("clean")));
        let mut args = vec![
            "run",
            "--cases",
            "120",
            "--seed",
            "7",
            "--filter",
            "validation",
            "--shrink-requests",
            "100",
            "--history",
            "h.jsonl",
            "--json",
            "run.json",
        ];
        if let Some(f) = fault {
            args.extend(["--fault", f]);
        }
        let run = ckscheck(&args, &dir);
        let history = std::fs::read_to_string(dir.join("h.jsonl")).unwrap();
        for rule in [
            "protocol/unknown-operation",
            "protocol/missing-target",
            "protocol/wrong-content-type",
        ] {
            assert!(history.contains(rule), "{rule} never sent\n{}", text(&run));
        }
        assert!(history.contains(r#""no_target":true"#));
        let (trials, ids) = common::report_verdicts(&dir.join("run.json"));
        let validation = trials
            .iter()
            .find(|(n, _)| n == "validation")
            .map(|(_, s)| s.as_str());
        let protocol: Vec<&String> = ids.iter().filter(|i| i.contains("protocol/")).collect();
        match fault {
            Some(_) => {
                assert_eq!(validation, Some("failed"), "{}", text(&run));
                assert!(
                    protocol
                        .iter()
                        .any(|i| i.starts_with("-/validation/protocol/unknown-operation")),
                    "{ids:?}"
                );
            }
            None => {
                assert_eq!(validation, Some("passed"), "{}", text(&run));
                assert!(protocol.is_empty(), "{ids:?}");
            }
        }
        let rejudged = ckscheck(
            &["report", "rejudge", "h.jsonl", "--json", "rejudge.json"],
            &dir,
        );
        assert_eq!(
            run.status.code(),
            rejudged.status.code(),
            "{}",
            text(&rejudged)
        );
        assert_eq!(
            common::report_verdicts(&dir.join("run.json")),
            common::report_verdicts(&dir.join("rejudge.json"))
        );
        let report = std::fs::read_to_string(dir.join("run.json")).unwrap();
        for made_up in ckscheck::generate::protocol::MADE_UP_OPERATIONS {
            assert!(
                !report.contains(&format!("\"operation\":\"{made_up}\"")),
                "{made_up} got a row"
            );
        }
    }
}
