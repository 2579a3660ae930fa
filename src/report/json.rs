//! The machine-readable report: one JSON document for a whole run.

use serde_json::{Value, json};

use super::reproducer::{aws_cli_commands, curl_commands};
use super::{RunReport, SERVE_URL, redact_history, redact_step};

/// The run as JSON: `seed`, `endpoint`, `region`, `strict`, `totals` (`checks`, `passed`,
/// `failed`, `ignored`) and `checks`, each with `name`, `family`, `explain`, `cases`,
/// `requests`, `duration_ms`, `status` (`passed`/`failed`/`ignored`), `findings`, `exercised`, and, when
/// it has a counterexample, `failure` (`summary`, `seed`, `replay`, `steps`, `exchanges`,
/// `aws_cli`, `curl`; null otherwise).
pub fn json_report(report: &RunReport) -> Value {
    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|c| {
            let failure = c.failure.as_ref().map(|f| {
                let url = if report.is_embedded() {
                    SERVE_URL
                } else {
                    report.endpoint.as_str()
                };
                let steps: Vec<_> = f.steps.iter().map(redact_step).collect();
                json!({
                    "summary": f.summary,
                    "seed": f.seed,
                    "replay": f.replay.clone().unwrap_or_else(|| report.replay_command(f.seed, &c.name)),
                    "reproducer": f.reproducer,
                    "steps": steps,
                    "exchanges": redact_history(&f.history).exchanges,
                    "aws_cli": aws_cli_commands(&f.history, url, &report.region),
                    "curl": curl_commands(&f.history, url, &report.region),
                })
            });
            json!({
                "name": c.name,
                "family": c.family,
                "explain": c.explain,
                "cases": c.cases,
                "requests": c.requests,
                "duration_ms": u64::try_from(c.duration.as_millis()).unwrap_or(u64::MAX),
                "status": c.status(report.strict),
                "findings": c.verdict.findings,
                "exercised": c.verdict.exercised,
                "metrics": c.metrics,
                "failure": failure,
            })
        })
        .collect();
    json!({
        "seed": report.seed,
        "endpoint": report.endpoint,
        "embedded": report.is_embedded(),
        "region": report.region,
        "strict": report.strict,
        "totals": report.totals(),
        "checks": checks,
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
        let f = &failed["failure"];
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
        assert!(v["checks"][0]["failure"].is_null());
        assert_eq!(v["checks"][0]["family"], "validation");
    }

    #[test]
    fn no_clear_secret_reaches_the_json() {
        let report = sample::report();
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
