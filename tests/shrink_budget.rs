//! Shrinking against an endpoint stops at its request budget and still reports a sequence that
//! showed the deviation: `ckscheck run --shrink-requests N` against `ckscheck serve` with a
//! planted fault, then the reported sequence replayed against a fresh server.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{Emulator, ckscheck, scratch, text};

/// The request budget of one shrink: far less than shrinking this fault's sequence takes.
const BUDGET: u64 = 40;

/// Runs the pagination check against a fresh `ckscheck serve --fault skipped-items`; its exit
/// code, JSON report and output.
fn run(extra: &[&str], dir: &Path) -> (i32, Value, String) {
    let emulator = Emulator::start(&["--connect-delay-ms", "0", "--fault", "skipped-items"]);
    let mut args = vec![
        "run",
        "--endpoint-url",
        &emulator.url,
        "--region",
        "us-east-1",
        "--filter",
        "pagination",
        "--skip",
        "snapshot::",
        "--seed",
        "5",
        "--json",
        "report.json",
    ];
    args.extend_from_slice(extra);
    let out = ckscheck(&args, dir);
    let json = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, text(&out))
}

/// The pagination check's report.
fn pagination(report: &Value) -> &Value {
    report["checks"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "pagination"))
        .unwrap_or(&Value::Null)
}

#[test]
fn a_budget_stopped_shrink_reports_a_sequence_that_shows_the_deviation() {
    let dir = scratch("shrink-budget");
    let budget = BUDGET.to_string();
    let (code, report, shown) = run(&["--shrink-requests", &budget], &dir);
    assert_eq!(code, 1, "the fault fails the run:\n{shown}");
    let check = pagination(&report);
    let failure = &check["failures"][0];
    let signature = failure["signature"].as_str().expect("a signature");
    let shrink = &failure["shrink"];
    let stopped = shrink["stopped"].as_str().unwrap_or_default();
    assert!(
        stopped.contains(&format!(
            "request budget spent (--shrink-requests {BUDGET})"
        )),
        "the report says shrinking stopped at the request budget: {shrink}\n{shown}"
    );
    assert!(
        shown.contains("shrinking stopped early: request budget spent"),
        "the terminal says so too:\n{shown}"
    );
    // A candidate is sent only while the shrink is under its budget.
    let (spent, last) = (shrink["requests"].as_u64(), shrink["last"].as_u64());
    let (spent, last) = (spent.expect("requests"), last.expect("last"));
    assert!(
        spent >= BUDGET && spent - last < BUDGET,
        "{spent} requests spent shrinking, the last candidate {last}: {shrink}"
    );
    let requests = check["requests"].as_u64().expect("the check's requests");
    let needed = failure["requests_needed"]
        .as_u64()
        .expect("requests_needed");
    assert!(
        requests >= spent + needed,
        "the check's {requests} requests count the shrink's {spent} and the draw's {needed}"
    );
    let deviation = check["deviations"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["id"] == signature))
        .expect("the deviation is in the check's list");
    assert_eq!(deviation["status"], "failing", "{deviation}");
    let steps = failure["steps"].clone();
    assert!(
        steps.as_array().is_some_and(|s| !s.is_empty()),
        "a sequence is reported: {failure}"
    );

    // The reported sequence, saved as a regression, shows the deviation again on a fresh
    // server: replayed before any case is drawn, and with no shrinking requests it is reported
    // as it is.
    let (code, replayed, shown) = run(&["--shrink-requests", "0"], &dir);
    assert_eq!(code, 1, "the replay fails too:\n{shown}");
    let check = pagination(&replayed);
    let again = check["failures"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["signature"] == signature))
        .unwrap_or_else(|| panic!("{signature} shows again:\n{shown}"));
    assert_eq!(
        again["steps"], steps,
        "the saved sequence is the one that shows it:\n{shown}"
    );
    // Found by the saved sequence itself, before any drawn case: the requests up to the case
    // that showed it are that sequence's own.
    let exchanges = again["exchanges"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(
        again["requests_needed"].as_u64(),
        Some(exchanges),
        "the saved sequence alone showed it, not a drawn case:\n{shown}"
    );
    assert_eq!(again["shrink"]["requests"], 0, "nothing was sent shrinking");
}
