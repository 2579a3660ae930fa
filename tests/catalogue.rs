//! The deviation catalogue and baselines, through the command line:
//!
//! - `ckscheck serve` with several faults at once: one catalogue entry per fault, each with its
//!   own shrunk sequence, and nothing a single fault does not cause;
//! - two seeds against one endpoint give the same deviation ids;
//! - an endpoint that does not implement the operations: one `not-implemented` deviation per
//!   operation, its findings folded under it, and no scenario diff for them;
//! - the baseline round trip: write, rerun (all known), a new fault (only it is new), a fault
//!   removed (fixed; `--strict-baseline` fails), and a malformed baseline (exit 2).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

mod common;
use common::{Emulator, ckscheck, scratch, text};

/// Faults with narrow effects on different rules: each is one deviation.
const FAULTS: [&str; 3] = [
    "skipped-items",
    "name-and-id-accepted",
    "unknown-id-empty-list",
];

/// Runs `ckscheck run ARGS --json report.json` in `dir`; its exit code, JSON report and output.
fn run(args: &[&str], dir: &Path) -> (i32, Value, String) {
    let _ = std::fs::create_dir_all(dir);
    let mut all = vec!["run", "--json", "report.json"];
    all.extend_from_slice(args);
    let out = ckscheck(&all, dir);
    let shown = text(&out);
    let json = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, shown)
}

/// The run's deviation ids with `status`.
fn ids(report: &Value, status: &str) -> BTreeSet<String> {
    report["deviations"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|d| d["status"] == status)
                .filter_map(|d| d["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `run` against `ckscheck serve` with `faults`, the property checks only.
fn run_against_serve(faults: &[&str], seed: &str, dir: &Path) -> (i32, Value, String) {
    let mut serve: Vec<&str> = vec!["--connect-delay-ms", "0"];
    for f in faults {
        serve.extend(["--fault", f]);
    }
    let emulator = Emulator::start(&serve);
    run(
        &[
            "--endpoint-url",
            &emulator.url,
            "--region",
            "us-east-1",
            "--skip",
            "snapshot::",
            "--seed",
            seed,
        ],
        dir,
    )
}

#[test]
fn several_faults_in_serve_give_one_entry_each_with_its_own_sequence() {
    let dir = scratch("catalogue-faults");
    let mut each: Vec<BTreeSet<String>> = Vec::new();
    for fault in FAULTS {
        let (code, report, shown) = run_against_serve(&[fault], "11", &dir.join(fault));
        assert_eq!(code, 1, "{fault} alone:\n{shown}");
        let failing = ids(&report, "failing");
        assert_eq!(failing.len(), 1, "{fault} alone:\n{shown}");
        each.push(failing);
    }
    let (code, report, shown) = run_against_serve(&FAULTS, "11", &dir.join("all"));
    assert_eq!(code, 1, "{shown}");
    let together = ids(&report, "failing");
    let union: BTreeSet<String> = each.iter().flatten().cloned().collect();
    assert!(
        together.is_subset(&union),
        "deviations no single fault causes: {:?}\n{shown}",
        together.difference(&union).collect::<Vec<_>>()
    );
    assert_eq!(
        together.len(),
        FAULTS.len(),
        "one entry per fault:\n{shown}"
    );
    for (fault, own) in FAULTS.iter().zip(&each) {
        assert!(
            own.iter().any(|id| together.contains(id)),
            "nothing of {fault} ({own:?}) in {together:?}\n{shown}"
        );
    }
    // Each deviation has a reproducer of its own: its own steps and replay line.
    for d in report["deviations"].as_array().expect("deviations") {
        let r = &d["reproducer"];
        assert!(
            r["steps"].as_array().is_some_and(|s| !s.is_empty()),
            "{} has no shrunk sequence:\n{shown}",
            d["id"]
        );
        assert!(
            r["replay"]
                .as_str()
                .is_some_and(|l| l.contains("--seed 11")),
            "{d}"
        );
    }
    // The terminal ends with the catalogue: a line per deviation.
    for id in &together {
        assert!(
            shown.contains(id.as_str()),
            "{id} not in the output:\n{shown}"
        );
    }
}

#[test]
fn two_seeds_give_the_same_deviation_ids() {
    let dir = scratch("catalogue-seeds");
    let fault = "unknown-id-empty-list";
    let (a, first, shown_a) = run_against_serve(&[fault], "1", &dir.join("seed-1"));
    let (b, second, shown_b) = run_against_serve(&[fault], "2", &dir.join("seed-2"));
    assert_eq!((a, b), (1, 1), "{shown_a}\n{shown_b}");
    let (one, two) = (ids(&first, "failing"), ids(&second, "failing"));
    assert!(!one.is_empty(), "{shown_a}");
    assert_eq!(one, two, "seed 1:\n{shown_a}\nseed 2:\n{shown_b}");
    // No store ID, name prefix or date in an id.
    for id in &one {
        assert!(!id.contains("cks-") && !id.contains("ckscheck-"), "{id}");
    }
}

#[test]
fn an_endpoint_without_the_operations_gets_one_not_implemented_entry_each() {
    let emulator = Emulator::start(&["--fault", "not-implemented"]);
    let dir = scratch("catalogue-unimplemented");
    let (code, report, shown) = run(
        &[
            "--endpoint-url",
            &emulator.url,
            "--region",
            "us-east-1",
            "--seed",
            "5",
        ],
        &dir,
    );
    assert_eq!(code, 1, "{shown}");
    let failing = ids(&report, "failing");
    let expected: BTreeSet<String> = ckscheck::suite::PROBED
        .iter()
        .map(|op| format!("{op}/not-implemented: answers 500 text/html"))
        .collect();
    assert_eq!(failing, expected, "{shown}");
    for d in report["deviations"].as_array().expect("deviations") {
        assert_eq!(
            d["reproducer"]["steps"].as_array().map(Vec::len),
            Some(1),
            "{d}"
        );
    }
    // Scenarios are blocked, not diffed: nothing was sent for them. (A scenario that sends only
    // an operation KMS does not have, protocol-unknown-operation, needs none of them and runs.)
    let checks = report["checks"].as_array().expect("checks");
    let needs_none = |c: &Value| {
        c["exercised"].as_object().is_some_and(|m| {
            !m.is_empty()
                && m.keys()
                    .all(|op| ckscheck::spec::Spec::kms().operation(op).is_none())
        })
    };
    let scenarios: Vec<&Value> = checks
        .iter()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("snapshot::"))
        })
        .filter(|c| c["status"] != "ignored" && !needs_none(c))
        .collect();
    assert!(!scenarios.is_empty(), "{shown}");
    for s in scenarios {
        assert_eq!(s["requests"], 0, "{s}");
        assert!(s["failures"].as_array().is_none_or(Vec::is_empty), "{s}");
        for d in s["deviations"].as_array().expect("deviations") {
            assert!(
                d["id"].as_str().unwrap().contains("/not-implemented"),
                "{s}"
            );
        }
    }
    assert!(!shown.contains("differs from the snapshot"), "{shown}");
}

/// `run` against the embedded emulator with `faults`, the property checks only.
fn embedded(faults: &[&str], extra: &[&str], dir: &Path) -> (i32, Value, String) {
    // Two checks at a time: the reference proxies answer KMS's health checks within 250 ms
    // even while the other tests of this file run.
    let mut args: Vec<&str> = vec![
        "--skip",
        "snapshot::",
        "--seed",
        "3",
        "--cases",
        "64",
        "--jobs",
        "2",
    ];
    for f in faults {
        args.extend(["--fault", f]);
    }
    args.extend_from_slice(extra);
    run(&args, dir)
}

#[test]
fn a_baseline_accepts_known_deviations_fails_new_ones_and_reports_fixed_ones() {
    let dir = scratch("catalogue-baseline");
    let baseline = dir.join("baseline.toml");
    let b = baseline.to_str().expect("utf-8 path");
    let first = "unknown-id-empty-list";
    let second = "name-and-id-accepted";

    let (code, report, shown) = embedded(&[first], &["--write-baseline", b], &dir.join("1"));
    assert_eq!(code, 1, "{shown}");
    let known = ids(&report, "failing");
    assert!(!known.is_empty(), "{shown}");
    let written = std::fs::read_to_string(&baseline).expect("the baseline was written");
    for id in &known {
        assert!(written.contains(id.as_str()), "{id} not in\n{written}");
    }
    assert!(written.contains("reason = \"\""), "{written}");

    // The same endpoint again: everything known, exit 0.
    let (code, report, shown) = embedded(&[first], &["--baseline", b], &dir.join("2"));
    assert_eq!(code, 0, "{shown}");
    assert_eq!(ids(&report, "known"), known, "{shown}");
    assert!(ids(&report, "failing").is_empty(), "{shown}");

    // Another fault: only its deviations are new.
    let (code, report, shown) = embedded(&[first, second], &["--baseline", b], &dir.join("3"));
    assert_eq!(code, 1, "{shown}");
    let new = ids(&report, "failing");
    assert!(!new.is_empty(), "{shown}");
    assert!(new.is_disjoint(&known), "{new:?} {known:?}");
    assert!(shown.contains("NEW"), "{shown}");

    // The first fault fixed: reported fixed, exit 0; with --strict-baseline, exit 1.
    let (code, report, shown) = embedded(&[], &["--baseline", b], &dir.join("4"));
    assert_eq!(code, 0, "{shown}");
    assert_eq!(ids(&report, "fixed"), known, "{shown}");
    assert!(shown.contains("delete it from the baseline"), "{shown}");
    let strict = ["--baseline", b, "--strict-baseline"];
    let (code, _, shown) = embedded(&[], &strict, &dir.join("5"));
    assert_eq!(code, 1, "{shown}");
}

#[test]
fn a_malformed_baseline_is_a_usage_error_naming_the_line() {
    let dir = scratch("catalogue-malformed");
    let baseline = dir.join("broken.toml");
    std::fs::write(
        &baseline,
        "format_version = 1\n\n[[deviation]]\nid = \"x\nreason = 3\n",
    )
    .expect("write");
    let b = baseline.to_str().expect("utf-8 path");
    let (code, _, shown) = run(&["--baseline", b, "--filter", "exclusion"], &dir);
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("broken.toml") && shown.contains("line 4"),
        "{shown}"
    );
}
