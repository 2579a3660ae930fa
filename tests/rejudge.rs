//! `ckscheck report rejudge`: a run's own history judged again, sending nothing, gives that
//! run's verdicts and deviations; an incomplete history is refused with exit 2.

mod common;

use std::path::Path;

use common::{Emulator, ckscheck, report_verdicts as verdicts, scratch, text};

/// Runs `run_args` with `--history` and `--json`, then rejudges the history; asserts the same
/// exit code, per-trial statuses and deviation ids, and returns the deviation ids.
fn run_then_rejudge(dir: &Path, run_args: &[&str]) -> Vec<String> {
    let mut args = run_args.to_vec();
    args.extend(["--history", "h.jsonl", "--json", "run.json"]);
    let run = ckscheck(&args, dir);
    let rejudged = ckscheck(
        &[
            "report",
            "rejudge",
            "h.jsonl",
            "--json",
            "rejudge.json",
            "--html",
            "rejudge.html",
        ],
        dir,
    );
    assert_eq!(
        run.status.code(),
        rejudged.status.code(),
        "run:\n{}\nrejudge:\n{}",
        text(&run),
        text(&rejudged)
    );
    let (run_trials, run_ids) = verdicts(&dir.join("run.json"));
    let (re_trials, re_ids) = verdicts(&dir.join("rejudge.json"));
    assert_eq!(run_trials, re_trials, "per-trial statuses differ");
    assert_eq!(run_ids, re_ids, "deviations differ");
    let page = std::fs::read_to_string(dir.join("rejudge.html")).expect("the HTML report");
    assert!(
        page.contains("id=\"verdict\""),
        "no verdict in the HTML report"
    );
    run_ids
}

/// Catches a rejudge that skips or changes an oracle, the snapshot comparison, the catalogue
/// or the probe for unimplemented operations: an embedded run of two checks and a dozen
/// scenarios with a fault planted (a paging bug; operations answered as not implemented) and
/// its rejudging must agree on every trial's status and every deviation.
#[test]
fn rejudging_an_embedded_runs_history_gives_its_verdicts_and_deviations() {
    for fault in ["lying-truncated", "not-implemented"] {
        let dir = scratch(&format!("rejudge-embedded-{fault}"));
        let args = [
            "run",
            "--cases",
            "4",
            "--seed",
            "11",
            "--fault",
            fault,
            "--filter",
            "ion",
            "--skip",
            "concurrency",
            "--skip",
            "validation",
            // A short shrink keeps the test quick; a stopped shrink must rejudge the same too.
            "--shrink-requests",
            "200",
        ];
        let ids = run_then_rejudge(&dir, &args);
        assert!(!ids.is_empty(), "{fault} shows as a deviation");
        let (trials, _) = verdicts(&dir.join("run.json"));
        let ran = |prefix: &str| {
            trials
                .iter()
                .any(|(n, s)| n.starts_with(prefix) && s != "not-run" && s != "ignored")
        };
        assert!(
            ran("pagination") && ran("exclusion") && ran("snapshot::pagination-"),
            "{trials:?}"
        );
        let history = std::fs::read_to_string(dir.join("h.jsonl")).unwrap();
        let fixtures = ckscheck::model::Fixtures::builtin();
        let secrets = fixtures
            .clusters
            .iter()
            .map(|c| c.kmsuser_password.as_str())
            .chain(
                fixtures
                    .xks_proxies
                    .iter()
                    .map(|p| p.secret_access_key.as_str()),
            );
        for secret in secrets {
            assert!(!history.contains(secret), "the history holds {secret}");
        }
    }
}

/// Catches a rejudge that loses what a run against another process found (its region, quota,
/// the probe, the shrink candidates): a history recorded against `ckscheck serve --fault`
/// rejudged reports the same deviations.
#[test]
fn rejudging_a_history_recorded_against_serve_with_a_fault_reports_its_deviations() {
    let emulator = Emulator::start(&["--fault", "overlapping-pages"]);
    let dir = scratch("rejudge-serve");
    let args = [
        "run",
        "--endpoint-url",
        &emulator.url,
        "--region",
        "us-east-1",
        "--cases",
        "4",
        "--seed",
        "5",
        "--filter",
        "pagination",
    ];
    let ids = run_then_rejudge(&dir, &args);
    assert!(
        ids.iter().any(|id| id.contains("pagination/")),
        "the planted paging fault is found: {ids:?}"
    );
}

/// Catches a rejudge that judges an incomplete history anyway: a history without its header or
/// without the probe case is refused with exit 2, naming what is missing.
#[test]
fn a_history_lacking_a_needed_part_is_refused_naming_it() {
    let dir = scratch("rejudge-refused");
    let run = ckscheck(
        &[
            "run",
            "--cases",
            "2",
            "--seed",
            "3",
            "--filter",
            "exclusion",
            "--history",
            "h.jsonl",
        ],
        &dir,
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let full = std::fs::read_to_string(dir.join("h.jsonl")).unwrap();
    let without = |keep: &dyn Fn(&str) -> bool, name: &str| {
        let cut: Vec<&str> = full.lines().filter(|l| keep(l)).collect();
        std::fs::write(dir.join(name), cut.join("\n")).unwrap();
        let out = ckscheck(&["report", "rejudge", name], &dir);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        text(&out)
    };
    let said = without(&|l| !l.starts_with("{\"header\""), "no-header.jsonl");
    assert!(
        said.contains("no header line") && said.contains("seed"),
        "{said}"
    );
    let said = without(
        &|l| !(l.starts_with("{\"case\"") && l.contains("\"role\":\"probe\"")),
        "no-probe.jsonl",
    );
    assert!(said.contains("no case line"), "{said}");
    let no_quota = full.replacen("\"quota\":", "\"quota_gone\":", 1);
    std::fs::write(dir.join("no-quota.jsonl"), no_quota).unwrap();
    let out = ckscheck(&["report", "rejudge", "no-quota.jsonl"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("missing field `quota`"),
        "{}",
        text(&out)
    );
}
