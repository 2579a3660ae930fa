//! Shards of a run, through the command line:
//!
//! - `--partition count:M/N` and `hash:M/N` split the listed trials into disjoint shards that
//!   together hold every trial, the same way on every run, after `--filter`/`--skip`;
//! - merging the shards' JSON reports gives the verdicts and deviations of the unsharded run;
//! - `ckscheck report merge` refuses reports that are not shards of one run (exit 2);
//! - the libtest-mimic test binaries speak the list protocol cargo-nextest uses (so `cargo
//!   nextest run --partition` splits them), without needing nextest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

// Shares the helpers of the other test files; the emulator server is not used here.
#[allow(dead_code)]
mod common;
use common::{ckscheck, scratch, text};

/// The trial names `ckscheck run --list ARGS` prints, in order.
fn listed(args: &[&str], dir: &Path) -> Vec<String> {
    let mut all = vec!["run", "--list"];
    all.extend_from_slice(args);
    let out = ckscheck(&all, dir);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(|l| l.rsplit("] ").next().unwrap_or(l).to_string())
        .collect()
}

/// Catches: shards that overlap or drop a trial, a count partition that is not round robin over
/// the selection (e.g. applied before `--filter`), and a hash partition that changes between
/// runs.
#[test]
fn partitions_are_disjoint_cover_every_trial_and_are_stable() {
    let dir = scratch("shards-list");
    let all = listed(&[], &dir);
    assert!(all.len() > 50, "{all:?}");
    for kind in ["count", "hash"] {
        for total in 1..=5 {
            let mut owner: BTreeMap<String, usize> = BTreeMap::new();
            for shard in 1..=total {
                let p = format!("{kind}:{shard}/{total}");
                for name in listed(&["--partition", &p], &dir) {
                    if let Some(other) = owner.insert(name.clone(), shard) {
                        panic!("{name} is in shards {other} and {shard} of {kind}:/{total}");
                    }
                }
            }
            let covered: BTreeSet<&String> = owner.keys().collect();
            assert_eq!(
                covered,
                all.iter().collect(),
                "{kind}:/{total} misses trials"
            );
            if kind == "count" {
                for (k, name) in all.iter().enumerate() {
                    assert_eq!(owner[name], k % total + 1, "count:/{total}: {name} (#{k})");
                }
            }
        }
    }
    // Stable: the same shard lists the same trials on another run.
    assert_eq!(
        listed(&["--partition", "hash:2/3"], &dir),
        listed(&["--partition", "hash:2/3"], &dir)
    );
    // After the filter: count:2/3 of the scenarios is every third one from the second (the
    // checks listed before them do not count).
    let scenarios = listed(&["--filter", "snapshot::"], &dir);
    let second: Vec<String> = scenarios.iter().skip(1).step_by(3).cloned().collect();
    assert_eq!(
        listed(
            &["--filter", "snapshot::", "--partition", "count:2/3"],
            &dir
        ),
        second
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Catches: `xks run` ignoring `--partition` (every shard runs every check) or its shards not
/// merging back into the whole certification.
#[test]
fn xks_run_shards_and_merges_too() {
    let dir = scratch("shards-xks");
    let list = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["xks", "run", "--list"];
        args.extend_from_slice(extra);
        let out = ckscheck(&args, &dir);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        stdout
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect()
    };
    let all = list(&[]);
    for kind in ["count", "hash"] {
        let (one, two) = (
            list(&["--partition", &format!("{kind}:1/2")]),
            list(&["--partition", &format!("{kind}:2/2")]),
        );
        assert!(
            !one.is_empty() && !two.is_empty(),
            "{kind}: {one:?} {two:?}"
        );
        let mut both: Vec<String> = one.iter().chain(&two).cloned().collect();
        both.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(both, sorted, "{kind}");
    }
    for m in ["1", "2"] {
        let p = format!("count:{m}/2");
        let file = format!("x{m}.json");
        let args = [
            "xks",
            "run",
            "--cases",
            "2",
            "--seed",
            "3",
            "--partition",
            &p,
        ];
        let out = ckscheck(&[&args[..], &["--json", &file]].concat(), &dir);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    }
    let out = ckscheck(
        &["report", "merge", "x1.json", "x2.json", "--json", "x.json"],
        &dir,
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("x.json")).unwrap()).unwrap();
    assert_eq!(merged["checks"].as_array().unwrap().len(), all.len());
    assert_eq!(merged["endpoint"], "embedded proxy");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The trials the merge tests leave out: those that take seconds to shrink or to wait out
/// transitions.
const SKIPS: [&str; 7] = [
    "exclusion",
    "agreement",
    "concurrency",
    "connect",
    "recover",
    "failed",
    "has-cmks",
];

/// The flags of the small faulty run the merge tests shard: a fault that several scenarios
/// see.
/// Few trials at once: on a loaded machine the reference XKS proxies could otherwise miss
/// KMS's 250 ms budget in one run and not in another.
const SMALL_RUN: [&str; 9] = [
    "run",
    "--jobs",
    "3",
    "--cases",
    "4",
    "--seed",
    "7",
    "--fault",
    "wrong-error-type",
];

/// Runs the small run with `extra` flags and `--json FILE` in `dir`; its exit code and report.
fn small_run(extra: &[&str], file: &str, dir: &Path) -> (i32, Value) {
    let mut args: Vec<&str> = SMALL_RUN.to_vec();
    for skip in SKIPS {
        args.extend(["--skip", skip]);
    }
    // Each run its own regressions: none replays what another saved.
    let regressions = format!("--regressions={file}.regressions");
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--json", file, &regressions]);
    let out = ckscheck(&args, dir);
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "{}", text(&out));
    let report = std::fs::read_to_string(dir.join(file)).expect("the JSON report");
    (code, serde_json::from_str(&report).expect("JSON"))
}

/// Trial name -> status.
fn verdicts(report: &Value) -> BTreeMap<String, String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Deviation id -> (status, the trials that saw it).
fn deviations(report: &Value) -> BTreeMap<String, (String, BTreeSet<String>)> {
    report["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let seen = d["seen_in"].as_array().unwrap();
            let seen = seen.iter().map(|t| t.as_str().unwrap().to_string());
            let status = d["status"].as_str().unwrap().to_string();
            (d["id"].as_str().unwrap().into(), (status, seen.collect()))
        })
        .collect()
}

/// Catches: a merge that loses or doubles trials, changes a verdict, keeps one deviation per
/// shard instead of one per signature, loses where a deviation was seen, or exits 0 although a
/// shard failed; and shards whose stores do not carry their shard in the name prefix.
#[test]
fn merged_shards_give_the_verdicts_and_deviations_of_the_whole_run() {
    let dir = scratch("shards-merge");
    let (whole_code, whole) = small_run(&[], "whole.json", &dir);
    let mut files = Vec::new();
    for m in 1..=3 {
        let (file, p) = (format!("s{m}.json"), format!("hash:{m}/3"));
        let (_, shard) = small_run(&["--partition", &p], &file, &dir);
        assert_eq!(shard["partition"], p.as_str());
        // Store names carry the shard: `ckscheck-RUNID-sMof3-`.
        let names = regex_names(&shard.to_string());
        assert!(names.iter().all(|n| n == &format!("s{m}of3")), "{names:?}");
        files.push(file);
    }
    let mut args = vec!["report", "merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--json", "merged.json", "--junit", "merged.xml"]);
    args.extend(["--matrix", "merged.md", "--html", "merged.html"]);
    let out = ckscheck(&args, &dir);
    assert_eq!(whole_code, 1, "the fault fails the whole run");
    assert_eq!(out.status.code(), Some(whole_code), "{}", text(&out));
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("merged.json")).unwrap()).unwrap();
    assert!(merged["partition"].is_null(), "all shards: a whole run");
    assert_eq!(merged["seed"], whole["seed"]);

    // Every selected trial once, with the whole run's verdict; the rest were filtered out.
    let (w, m) = (verdicts(&whole), verdicts(&merged));
    for (name, status) in &w {
        match m.get(name) {
            Some(got) => assert_eq!(got, status, "{name}"),
            None => assert!(
                status == "ignored" && SKIPS.iter().any(|s| name.contains(s)),
                "{name} ({status}) is missing from the merged report"
            ),
        }
    }
    assert!(m.keys().all(|n| w.contains_key(n)));
    assert_eq!(
        merged["checks"].as_array().unwrap().len(),
        m.len(),
        "a trial twice"
    );
    assert!(m.values().any(|s| s == "failed"), "{m:?}");
    let merged_deviations = deviations(&merged);
    assert!(!merged_deviations.is_empty());
    let entries = merged["deviations"].as_array().unwrap().len();
    assert_eq!(entries, merged_deviations.len(), "one entry per signature");
    assert_eq!(merged_deviations, deviations(&whole));

    // The other writers take the merged run: the HTML page names every deviation.
    let page = std::fs::read_to_string(dir.join("merged.html")).expect("the HTML report");
    for d in merged["deviations"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        let shown = id
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            page.contains(&shown),
            "{id} is not in the merged HTML report"
        );
    }
    let junit = std::fs::read_to_string(dir.join("merged.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), m.len());
    let matrix = std::fs::read_to_string(dir.join("merged.md")).unwrap();
    assert!(matrix.contains("fail ("), "{matrix}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shard words (`sMofN`) of the store names in `text`.
fn regex_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"ckscheck-[0-9a-f]{8}-(s[0-9]+of[0-9]+)-").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

/// Catches: merging reports that are not one run's shards: different seeds, endpoints or
/// ckscheck versions, or a trial in two reports; each must exit 2 and name both files.
#[test]
fn merge_refuses_reports_that_are_not_one_run() {
    let dir = scratch("shards-refuse");
    let run = |extra: &[&str], file: &str| {
        let mut args = vec!["run", "--cases", "1", "--seed", "5", "--filter", "describe"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--json", file]);
        let out = ckscheck(&args, &dir);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    };
    run(&["--partition", "count:1/2"], "a.json");
    run(&["--partition", "count:2/2"], "b.json");
    let merge = |files: &[&str]| {
        let mut args = vec!["report", "merge"];
        args.extend_from_slice(files);
        ckscheck(&args, &dir)
    };
    let good = merge(&["a.json", "b.json"]);
    assert!(matches!(good.status.code(), Some(0 | 1)), "{}", text(&good));

    let edited = |name: &str, field: &str, value: Value| {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("b.json")).unwrap()).unwrap();
        v[field] = value;
        std::fs::write(dir.join(name), v.to_string()).unwrap();
    };
    edited("seed.json", "seed", Value::from(6));
    edited(
        "endpoint.json",
        "endpoint",
        Value::from("http://127.0.0.1:1"),
    );
    edited("version.json", "version", Value::from("0.0.1"));
    for (file, why) in [
        ("seed.json", "the seeds 5 and 6 differ"),
        ("endpoint.json", "the endpoints"),
        ("version.json", "the ckscheck versions"),
        ("a.json", "is in both a.json and a.json"),
    ] {
        let out = merge(&["a.json", file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out));
        assert!(stderr.contains(why), "{file}: {stderr}");
        assert!(
            stderr.contains("a.json") && stderr.contains(file),
            "{stderr}"
        );
    }
    let out = merge(&["a.json", "missing.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The test binaries of `targets`, built if needed, as cargo reports them.
fn test_binaries(targets: &[&str]) -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // Without what cargo sets for a test process: build scripts that watch it would see a
    // change and rebuild for this call and again for the next `cargo test`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            command.env_remove(&key);
        }
    }
    command.env_remove("LD_LIBRARY_PATH").env_remove("OUT_DIR");
    command.args(["test", "--no-run", "--message-format", "json"]);
    for t in targets {
        command.args(["--test", t]);
    }
    if std::env::current_exe().is_ok_and(|p| p.components().any(|c| c.as_os_str() == "release")) {
        command.arg("--release");
    }
    let out = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["executable"].is_string())
        .map(|v| {
            let name = v["target"]["name"].as_str().unwrap_or_default().to_string();
            (name, PathBuf::from(v["executable"].as_str().unwrap()))
        })
        .collect()
}

/// Catches: a libtest-mimic suite that nextest cannot list or run one test of: a stdout line
/// that is not `NAME: test`, a trial missing from the list, a name listed twice, an ignored
/// list that is not part of the full one, or `--exact NAME` running other trials too.
#[test]
fn libtest_mimic_suites_speak_the_nextest_list_protocol() {
    let binaries = test_binaries(&["conformance", "scenarios"]);
    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let clean = ckscheck::suite::checks().into_iter();
    let faults = ckscheck::emulator::Fault::ALL.iter();
    expected.insert(
        "conformance",
        clean
            .map(|c| format!("clean::{}", c.name))
            .chain(faults.map(|f| format!("fault::{}", f.name())))
            .collect(),
    );
    let scenarios = ckscheck::scenario::builtin();
    expected.insert(
        "scenarios",
        scenarios
            .iter()
            .map(ckscheck::suite::scenarios::trial_name)
            .collect(),
    );
    for (target, wanted) in expected {
        let binary = &binaries[target];
        // What nextest runs to list: `BINARY --list --format terse [--ignored]`.
        let list = |extra: &[&str]| -> Vec<String> {
            let out = Command::new(binary)
                .args(["--list", "--format", "terse"])
                .args(extra)
                .output()
                .expect("the test binary runs");
            assert!(out.status.success(), "{target}: {}", text(&out));
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| match l.strip_suffix(": test") {
                    Some(name) if !name.is_empty() => name.to_string(),
                    _ => panic!("{target}: nextest cannot parse the line {l:?}"),
                })
                .collect()
        };
        let all = list(&[]);
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{target}: a name listed twice");
        for name in &wanted {
            assert!(unique.contains(name), "{target}: {name} is not listed");
        }
        let ignored = list(&["--ignored"]);
        assert!(ignored.iter().all(|n| unique.contains(n)), "{target}");
        // What nextest runs for one test: `BINARY --exact NAME --nocapture`.
        if target == "scenarios" {
            let name = &wanted[0];
            let out = Command::new(binary)
                .args(["--exact", name, "--nocapture"])
                .output()
                .expect("the test binary runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{target} {name}: {}", text(&out));
            assert!(
                stdout.contains("1 passed")
                    && stdout.contains(&format!("{} filtered out", all.len() - 1)),
                "{stdout}"
            );
        }
    }
}
