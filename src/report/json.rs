//! The machine-readable report: one JSON document for a whole run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::reproducer::{aws_cli_commands, curl_commands};
use super::{
    CheckReport, FailureDetail, RawReproduction, RunReport, SERVE_URL, Status, redact_history,
    redact_step,
};
use crate::deviation::{Catalogue, Deviation, Seen, Status as DeviationStatus};
use crate::generate::Step;
use crate::history::Exchange;
use crate::oracle::{Family, Finding, Verdict};
use crate::suite::ShrinkStats;

/// The trial name the catalogue gives the reproducer of a not-implemented operation: the probe
/// that runs before the trials (replayed by replaying the whole run).
const PROBE: &str = "probe";

/// The tool that writes the report (`tool` in the JSON).
pub const TOOL: &str = "ckscheck";

/// The version of ckscheck that writes the report (`version` in the JSON).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The run as JSON:
///
/// - `tool` (`ckscheck`), `version` (of ckscheck), `partition` (the shard, e.g. `count:2/4`,
///   null for a whole run), `faults` (planted with `--fault`), `baseline` (whether the run had
///   one);
/// - `seed`, `endpoint`, `embedded`, `region`, `strict`, `caveats` (what the run did not
///   certify, e.g. TLS over plain HTTP), `totals` (`checks`, `passed`,
///   `failed`, `ignored`);
/// - `checks`, each with `name`, `family`, `explain`, `cases`, `requests`, `duration_ms`,
///   `status` (`passed`/`failed`/`ignored`), `findings`, `exercised`, `metrics`, `failures`
///   (one per counterexample: `signature` (null for a scenario's or a trial that could not
///   run), `summary`, `seed`, `replay`, `reproducer`, `requests_needed` (requests sent until
///   the case that first showed it), `cases_needed`, `shrink` (null unless shrunk:
///   `requests`, `sent`, `cached`, `last`, and `stopped` when a budget stopped it), `diff` (a
///   scenario's snapshot diff, when it has one), `steps`, `exchanges`, `aws_cli`, `curl`,
///   `raw` (true when the steps are not KMS requests);
///   for an XKS check these come from [`FailureDetail::raw`], `aws_cli` empty),
///   `deviations` (the trial's distinct deviations: `id`, `operation`, `rule`, `summary`,
///   `status`, and `folded`, `failure` (index into `failures`) when set) and `capped` (a note
///   when the check stopped at its deviation cap; null otherwise);
/// - `deviations`, the run's catalogue, each with `id`, `operation`, `rule`, `summary`,
///   `status` (`failing`, `unsettled`, `warning`, `known`, `fixed`, `unobserved`), `seen_in`
///   (trial names), `folded` (when findings are folded under it), `reason` (when the baseline
///   gives one) and `reproducer` (the shortest; null when none): `trial`, `seed`, `replay`,
///   `steps`, `exchanges`, `aws_cli`, `curl`.
///
/// Steps and exchanges are masked: no secret leaves in clear.
pub fn json_report(report: &RunReport) -> Value {
    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|c| {
            let failures: Vec<Value> = c
                .failures
                .iter()
                .map(|f| {
                    let mut item = Map::new();
                    item.insert("signature".into(), json!(f.signature));
                    item.insert("summary".into(), json!(f.summary));
                    item.insert("seed".into(), json!(f.seed));
                    item.insert("replay".into(), json!(replay(report, f, &c.name)));
                    item.insert("reproducer".into(), json!(f.reproducer));
                    item.insert("requests_needed".into(), json!(f.requests_needed));
                    item.insert("shrink".into(), json!(f.shrink));
                    item.insert("cases_needed".into(), json!(f.cases_needed));
                    if let Some(diff) = &f.diff {
                        item.insert("diff".into(), json!(diff));
                    }
                    item.extend(reproduction(report, f));
                    Value::Object(item)
                })
                .collect();
            json!({
                "name": c.name,
                "family": c.family,
                "explain": c.explain,
                "cases": c.cases,
                "requests": c.requests,
                "duration_ms": u64::try_from(c.duration.as_millis()).unwrap_or(u64::MAX),
                "status": c.status(),
                "findings": c.verdict.findings,
                "exercised": c.verdict.exercised,
                "covered": c.verdict.covered,
                "metrics": c.metrics,
                "failures": failures,
                "deviations": c.deviations,
                "capped": c.capped,
            })
        })
        .collect();
    let deviations: Vec<Value> = report
        .catalogue
        .deviations
        .iter()
        .map(|d| deviation(report, d))
        .collect();
    json!({
        "tool": TOOL,
        "version": VERSION,
        "partition": report.partition,
        "faults": report.faults,
        "baseline": report.catalogue.baseline,
        "seed": report.seed,
        "endpoint": report.endpoint,
        "embedded": report.is_embedded(),
        "region": report.region,
        "strict": report.strict,
        "caveats": report.caveats,
        "totals": report.totals(),
        "coverage": crate::coverage::tally::Coverage::of(report),
        "checks": checks,
        "deviations": deviations,
    })
}

/// One catalogue entry (see [`json_report`]).
fn deviation(report: &RunReport, d: &Deviation) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), json!(d.id));
    entry.insert("operation".into(), json!(d.operation));
    entry.insert("rule".into(), json!(d.rule));
    entry.insert("summary".into(), json!(d.summary));
    entry.insert("status".into(), json!(d.status.as_str()));
    entry.insert("seen_in".into(), json!(d.seen_in));
    if !d.folded.is_empty() {
        entry.insert("folded".into(), json!(d.folded));
    }
    if let Some(reason) = d.reason.as_deref().filter(|r| !r.is_empty()) {
        entry.insert("reason".into(), json!(reason));
    }
    let reproducer = d.reproducer.as_ref().map(|(trial, f)| {
        let mut item = Map::new();
        item.insert("trial".into(), json!(trial));
        item.insert("seed".into(), json!(f.seed));
        let check = if trial == PROBE { "" } else { trial.as_str() };
        item.insert("replay".into(), json!(replay(report, f, check)));
        item.extend(reproduction(report, f));
        Value::Object(item)
    });
    entry.insert("reproducer".into(), json!(reproducer));
    Value::Object(entry)
}

/// The command that replays a counterexample of `check` (the whole run when `check` is
/// empty), unless it carries its own.
fn replay(report: &RunReport, f: &FailureDetail, check: &str) -> String {
    f.replay
        .clone()
        .unwrap_or_else(|| report.replay_command(f.seed, check))
}

/// A counterexample's masked `steps` and `exchanges`, and its `aws_cli` and `curl` lines.
fn reproduction(report: &RunReport, f: &FailureDetail) -> Map<String, Value> {
    let url = if report.is_embedded() {
        SERVE_URL
    } else {
        report.endpoint.as_str()
    };
    let mut out = Map::new();
    if let Some(raw) = &f.raw {
        // Not KMS requests (XKS): no AWS CLI command sends them.
        out.insert("steps".into(), json!(raw.steps));
        out.insert("exchanges".into(), json!(raw.exchanges));
        out.insert("aws_cli".into(), json!([]));
        out.insert("curl".into(), json!(raw.curl));
        out.insert("raw".into(), json!(true));
        return out;
    }
    let steps: Vec<_> = f.steps.iter().map(redact_step).collect();
    out.insert("steps".into(), json!(steps));
    out.insert(
        "exchanges".into(),
        json!(redact_history(&f.history).exchanges),
    );
    out.insert(
        "aws_cli".into(),
        json!(aws_cli_commands(&f.history, url, &report.region)),
    );
    out.insert(
        "curl".into(),
        json!(curl_commands(&f.history, url, &report.region)),
    );
    out
}

/// A JSON report read back: the version of ckscheck that wrote it, and the run as the
/// writers take it.
#[derive(Debug, Clone)]
pub struct ReadReport {
    /// `version` (empty when the report has none: written before reports carried it).
    pub version: String,
    /// The run: checks with their findings, failures and deviations, and the catalogue.
    pub report: RunReport,
}

/// The top level of a JSON report, as [`read_report`] needs it.
#[derive(Deserialize)]
struct Top {
    tool: Option<String>,
    #[serde(default)]
    version: String,
    seed: u64,
    endpoint: String,
    region: String,
    strict: bool,
    #[serde(default)]
    caveats: Vec<String>,
    #[serde(default)]
    faults: Vec<String>,
    #[serde(default)]
    partition: Option<String>,
    #[serde(default)]
    baseline: bool,
    checks: Vec<TopCheck>,
    deviations: Vec<TopDeviation>,
}

/// One entry of `checks`.
#[derive(Deserialize)]
struct TopCheck {
    name: String,
    family: Family,
    explain: String,
    cases: u32,
    requests: u64,
    duration_ms: u64,
    status: Status,
    findings: Vec<Finding>,
    exercised: BTreeMap<String, usize>,
    #[serde(default)]
    covered: BTreeMap<String, crate::oracle::RuleTally>,
    #[serde(default)]
    metrics: BTreeMap<String, String>,
    failures: Vec<TopFailure>,
    deviations: Vec<Seen>,
    capped: Option<String>,
}

/// One counterexample (of a check, or a catalogue entry's reproducer).
#[derive(Deserialize)]
struct TopFailure {
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    summary: String,
    seed: u64,
    replay: String,
    #[serde(default)]
    reproducer: Option<String>,
    #[serde(default)]
    requests_needed: u64,
    #[serde(default)]
    cases_needed: u32,
    #[serde(default)]
    shrink: Option<ShrinkStats>,
    #[serde(default)]
    diff: Option<String>,
    steps: Vec<Value>,
    exchanges: Vec<Value>,
    #[serde(default)]
    curl: Vec<String>,
    #[serde(default)]
    raw: bool,
}

/// One entry of `deviations`.
#[derive(Deserialize)]
struct TopDeviation {
    id: String,
    operation: String,
    rule: String,
    summary: String,
    status: DeviationStatus,
    seen_in: Vec<String>,
    #[serde(default)]
    folded: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
    reproducer: Option<TopReproducer>,
}

/// A catalogue entry's shortest reproducer.
#[derive(Deserialize)]
struct TopReproducer {
    trial: String,
    #[serde(flatten)]
    failure: TopFailure,
}

impl TopFailure {
    /// The counterexample as the writers take it; its replay command kept as written.
    fn detail(self) -> Result<FailureDetail, String> {
        let mut detail = FailureDetail {
            signature: self.signature,
            summary: self.summary,
            seed: self.seed,
            cases_needed: self.cases_needed,
            requests_needed: self.requests_needed,
            shrink: self.shrink,
            diff: self.diff,
            replay: Some(self.replay),
            reproducer: self.reproducer,
            ..FailureDetail::default()
        };
        if self.raw {
            let steps = self
                .steps
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(format!("a raw step is not a string: {other}")),
                })
                .collect::<Result<_, String>>()?;
            detail.raw = Some(RawReproduction {
                steps,
                exchanges: self.exchanges,
                curl: self.curl,
            });
        } else {
            detail.steps = self
                .steps
                .into_iter()
                .map(serde_json::from_value::<Step>)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("a step does not read back: {e}"))?;
            detail.history.exchanges = self
                .exchanges
                .into_iter()
                .map(serde_json::from_value::<Exchange>)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("an exchange does not read back: {e}"))?;
        }
        Ok(detail)
    }
}

/// Reads a report [`json_report`] wrote back into the run the writers (JUnit, matrix, JSON)
/// take; an error says what does not read (e.g. not a ckscheck JSON report).
pub fn read_report(text: &str) -> Result<ReadReport, String> {
    let top: Top = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if top.tool.as_deref().is_some_and(|t| t != TOOL) {
        return Err(format!(
            "written by {:?}, not ckscheck",
            top.tool.unwrap_or_default()
        ));
    }
    let mut checks = Vec::with_capacity(top.checks.len());
    for c in top.checks {
        let failures = c
            .failures
            .into_iter()
            .map(TopFailure::detail)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("check {}: {e}", c.name))?;
        checks.push(CheckReport {
            name: c.name,
            family: c.family,
            explain: c.explain,
            cases: c.cases,
            requests: c.requests,
            duration: Duration::from_millis(c.duration_ms),
            verdict: Verdict {
                findings: c.findings,
                exercised: c.exercised,
                covered: c.covered,
            },
            failures,
            deviations: c.deviations,
            capped: c.capped,
            ignored: c.status == Status::Ignored,
            metrics: c.metrics,
        });
    }
    let mut deviations = Vec::with_capacity(top.deviations.len());
    for d in top.deviations {
        let reproducer = match d.reproducer {
            Some(r) => Some((
                r.trial,
                r.failure
                    .detail()
                    .map_err(|e| format!("deviation {}: {e}", d.id))?,
            )),
            None => None,
        };
        deviations.push(Deviation {
            id: d.id,
            operation: d.operation,
            rule: d.rule,
            summary: d.summary,
            status: d.status,
            seen_in: d.seen_in,
            folded: d.folded,
            reproducer,
            reason: d.reason,
        });
    }
    Ok(ReadReport {
        version: top.version,
        report: RunReport {
            seed: top.seed,
            endpoint: top.endpoint,
            region: top.region,
            strict: top.strict,
            faults: top.faults,
            checks,
            catalogue: Catalogue {
                deviations,
                baseline: top.baseline,
            },
            caveats: top.caveats,
            partition: top.partition,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn statuses_totals_and_failures_are_machine_readable() {
        let report = sample::report();
        let v = json_report(&report);
        assert_eq!(v["seed"], 42);
        assert_eq!(v["endpoint"], "http://localhost:4566");
        assert_eq!(v["embedded"], false);
        assert_eq!(v["region"], "us-east-1");
        assert_eq!(v["strict"], false);
        assert_eq!(
            v["totals"],
            json!({"checks": 4, "passed": 2, "failed": 1, "ignored": 1})
        );
        let statuses: Vec<_> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["passed", "passed", "failed", "ignored"]);

        let failed = &v["checks"][2];
        assert_eq!(failed["name"], "store-states");
        assert_eq!(failed["family"], "states");
        assert_eq!(failed["cases"], 17);
        assert_eq!(failed["requests"], 119);
        assert_eq!(failed["duration_ms"], 2345);
        assert_eq!(failed["exercised"]["ConnectCustomKeyStore"], 3);
        assert_eq!(failed["findings"].as_array().unwrap().len(), 4);
        assert_eq!(failed["findings"][2]["severity"], "unsettled");
        assert!(failed["capped"].is_null());
        assert!(failed.get("failure").is_none());
        let failures = failed["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 2);
        let f = &failures[0];
        assert_eq!(f["signature"], sample::MODEL_AGREEMENT);
        assert_eq!(failures[1]["signature"], sample::CONNECT_ANSWER);
        assert_eq!(failures[1]["steps"].as_array().unwrap().len(), 2);
        assert_eq!(f["seed"], 42);
        assert_eq!(
            f["replay"],
            "ckscheck run --seed 42 --filter store-states --endpoint-url http://localhost:4566 --region us-east-1"
        );
        assert_eq!(f["steps"].as_array().unwrap().len(), 7);
        assert_eq!(f["steps"][2], json!({"step": "settle", "store": 0}));
        assert_eq!(f["exchanges"].as_array().unwrap().len(), 13);
        assert_eq!(f["exchanges"][10]["raw"], true);
        assert!(f["aws_cli"].as_array().unwrap().iter().any(|l| {
            l.as_str()
                .unwrap()
                .contains("aws kms connect-custom-key-store")
        }));
        assert!(
            f["curl"][0]
                .as_str()
                .unwrap()
                .starts_with("# set these first")
        );
        // The trial's deviations, with the statuses the policy gave them.
        let seen: Vec<(&str, &str)> = failed["deviations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["id"].as_str().unwrap(), d["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                (sample::CONNECT_ANSWER, "failing"),
                (sample::MODEL_AGREEMENT, "failing"),
                (sample::DELETE_UNSETTLED, "unsettled"),
                (
                    "UpdateCustomKeyStore/errors/namespaced-type: namespaced __type",
                    "warning"
                ),
            ]
        );
        assert_eq!(failed["deviations"][0]["failure"], 1);
        assert_eq!(failed["deviations"][0]["rule"], "states/connect-answer");
        assert_eq!(v["checks"][0]["failures"], json!([]));
        assert_eq!(v["checks"][0]["deviations"], json!([]));
        assert_eq!(v["checks"][0]["family"], "validation");
    }

    #[test]
    fn a_capped_check_says_so() {
        let mut report = sample::report();
        report.checks[2].capped = Some("stopped looking for new deviations at 2".into());
        let v = json_report(&report);
        assert_eq!(
            v["checks"][2]["capped"],
            "stopped looking for new deviations at 2"
        );
    }

    /// The run-level entry with this id.
    fn entry<'v>(v: &'v Value, id: &str) -> &'v Value {
        v["deviations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no deviation {id} in {:#}", v["deviations"]))
    }

    #[test]
    fn the_catalogue_is_a_top_level_deviations_array() {
        let report = sample::baselined();
        let v = json_report(&report);
        let statuses: Vec<&str> = v["deviations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "failing",
                "failing",
                "warning",
                "warning",
                "known",
                "fixed",
                "unobserved"
            ]
        );

        // A failing deviation with its shortest reproducer.
        let d = entry(&v, sample::CONNECT_ANSWER);
        assert_eq!(d["operation"], "ConnectCustomKeyStore");
        assert_eq!(d["rule"], "states/connect-answer");
        assert_eq!(d["status"], "failing");
        assert_eq!(d["summary"], "expected an empty object,\ngot null");
        assert_eq!(d["seen_in"], json!(["store-states"]));
        assert!(
            d.get("folded").is_none() && d.get("reason").is_none(),
            "{d:#}"
        );
        let r = &d["reproducer"];
        assert_eq!(r["trial"], "store-states");
        assert_eq!(r["seed"], 42);
        assert_eq!(
            r["replay"],
            "ckscheck run --seed 42 --filter store-states --endpoint-url http://localhost:4566 --region us-east-1"
        );
        assert_eq!(r["steps"].as_array().unwrap().len(), 2);
        assert_eq!(r["exchanges"].as_array().unwrap().len(), 3);
        assert!(r["aws_cli"].as_array().unwrap().iter().any(|l| {
            l.as_str()
                .unwrap()
                .contains("aws kms connect-custom-key-store")
        }));
        assert!(
            r["curl"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().contains("--aws-sigv4")),
            "{r:#}"
        );

        // A known one carries the baseline's reason; it has no reproducer of its own.
        let known = entry(&v, sample::DELETE_UNSETTLED);
        assert_eq!(known["status"], "known");
        assert_eq!(known["reason"], sample::REASON);
        assert_eq!(known["seen_in"], json!(["store-states"]));
        assert!(known["reproducer"].is_null());

        // The baseline entry no longer seen, and the one nothing that ran could see.
        let fixed = entry(&v, sample::FIXED);
        assert_eq!(fixed["status"], "fixed");
        assert_eq!(fixed["operation"], "DescribeCustomKeyStores");
        assert_eq!(fixed["rule"], "pagination/exactly-once");
        assert_eq!(fixed["seen_in"], json!([]));
        assert_eq!(fixed["reason"], "was fixed in 1.2");
        assert!(fixed["reproducer"].is_null());
        let unobserved = entry(&v, sample::UNOBSERVED);
        assert_eq!(unobserved["status"], "unobserved");
        assert!(
            unobserved.get("reason").is_none(),
            "an empty reason is left out"
        );

        // Without a baseline there are neither known nor fixed entries.
        let plain = json_report(&sample::report());
        assert!(
            plain["deviations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] != "known" && d["status"] != "fixed")
        );
        assert_eq!(
            entry(&plain, sample::DELETE_UNSETTLED)["status"],
            "unsettled"
        );
    }

    #[test]
    fn the_probe_reproducer_replays_the_whole_run() {
        let mut report = sample::blocked();
        let v = json_report(&report);
        let id = crate::deviation::not_implemented_id(
            "DisconnectCustomKeyStore",
            sample::NOT_IMPLEMENTED_ANSWER,
        );
        let d = entry(&v, &id);
        assert_eq!(d["status"], "failing");
        assert_eq!(d["operation"], "DisconnectCustomKeyStore");
        assert_eq!(d["rule"], "not-implemented");
        assert_eq!(d["seen_in"], json!(["snapshot::disconnect-twice"]));
        assert!(d.get("folded").is_none(), "{d:#}");
        let r = &d["reproducer"];
        assert_eq!(r["trial"], "probe");
        assert_eq!(
            r["replay"],
            "ckscheck run --seed 42 --endpoint-url http://localhost:4566 --region us-east-1"
        );
        assert_eq!(r["steps"].as_array().unwrap().len(), 1);
        assert_eq!(r["exchanges"].as_array().unwrap().len(), 1);
        assert!(
            r["aws_cli"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().contains("disconnect-custom-key-store")),
            "{r:#}"
        );
        // The blocked scenario itself has no counterexample and fails on that deviation.
        let scenario = &v["checks"][4];
        assert_eq!(scenario["name"], "snapshot::disconnect-twice");
        assert_eq!(scenario["status"], "failed");
        assert_eq!(scenario["failures"], json!([]));
        assert_eq!(scenario["deviations"][0]["id"], id.as_str());

        // A finding about the unimplemented operation is folded under its deviation.
        report.checks[1].verdict.fail(
            "DisconnectCustomKeyStore",
            "states/disconnect-answer",
            "expected 200, got 501",
            "expected 200, got 501 text/html",
            None,
        );
        sample::resolve(&mut report, &sample::blocked_policy());
        let v = json_report(&report);
        let d = entry(&v, &id);
        assert_eq!(
            d["seen_in"],
            json!(["pagination", "snapshot::disconnect-twice"])
        );
        assert_eq!(
            d["folded"],
            json!(["DisconnectCustomKeyStore/states/disconnect-answer: expected 200, got 501"])
        );
        assert_eq!(v["checks"][1]["status"], "failed");
        assert_eq!(
            v["checks"][1]["deviations"][0]["folded"],
            "DisconnectCustomKeyStore/states/disconnect-answer: expected 200, got 501"
        );
    }

    /// Catches: a field the JSON report writes that does not read back (a merged report would
    /// lose it), e.g. a failure's diff, a raw step, a deviation's reproducer or the partition.
    #[test]
    fn a_report_reads_back_to_the_same_json() {
        let mut xks = sample::report();
        xks.checks[2].failures[0].raw = Some(crate::report::RawReproduction {
            steps: vec!["POST /kms/xks/v1/keys/k/encrypt".into()],
            exchanges: vec![json!({"operation": "Encrypt", "status": 200})],
            curl: vec!["curl -X POST https://proxy".into()],
        });
        xks.checks[2].failures[1].diff = Some("-a\n+b".into());
        xks.partition = Some("hash:2/3".into());
        for report in [
            sample::report(),
            sample::baselined(),
            sample::blocked(),
            xks,
        ] {
            let written = json_report(&report);
            let read = read_report(&written.to_string()).expect("reads back");
            assert_eq!(read.version, VERSION);
            assert_eq!(json_report(&read.report), written);
        }
        let err = read_report(r#"{"tool": "other", "seed": 1}"#).unwrap_err();
        assert!(
            err.contains("missing field") || err.contains("not ckscheck"),
            "{err}"
        );
    }

    #[test]
    fn no_clear_secret_reaches_the_json() {
        for report in [sample::report(), sample::baselined(), sample::blocked()] {
            let text = json_report(&report).to_string();
            assert!(
                !text.contains(sample::CLEAR_PASSWORD),
                "clear password in JSON"
            );
            assert!(!text.contains("guess-me-1"), "clear password in JSON");
            assert!(
                text.contains("[secret=other]"),
                "the masked token stays in exchanges"
            );
        }
    }
}
