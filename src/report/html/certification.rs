//! The certification summary of `ckscheck xks run`: the proxy, the specification version,
//! each requirement with its level and result, and a latency histogram per operation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::histogram::histogram;
use super::{attr, esc};
use crate::deviation::Status;
use crate::report::RunReport;
use crate::spec::{Level, Spec};

/// The operations whose latency the certification measures, in API order.
pub const LATENCY_OPERATIONS: [&str; 4] =
    ["GetHealthStatus", "GetKeyMetadata", "Encrypt", "Decrypt"];

/// The proxy a certification is about.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Certification {
    /// Its endpoint, as the report names it.
    pub endpoint: String,
    /// Its URI path, `[/PREFIX]/kms/xks/v1`.
    pub uri_path: String,
    /// The keys used, by role (e.g. `main`, `encrypt-only`).
    pub keys: Vec<(String, String)>,
    /// Whether it was reached over TLS (else plain HTTP).
    pub tls: bool,
    /// Whether the client presented a certificate (mutual TLS).
    pub mtls: bool,
    /// The XKS Proxy API specification version certified against.
    pub spec_version: String,
}

/// A requirement's result: the worst status of the deviations about it, or `pass` when none
/// (`no deviation` when some checks did not run, so it may not have been exercised).
fn result(report: &RunReport, rule: &str) -> &'static str {
    let worst = report
        .catalogue
        .deviations
        .iter()
        .filter(|d| d.rule == rule)
        .map(|d| d.status)
        .min();
    match worst {
        Some(s) => s.as_str(),
        None if report.checks.iter().any(|c| c.ignored) => "no-deviation",
        None => "pass",
    }
}

/// The samples of `operation` in milliseconds, from the latency check's `OP samples` metric.
pub fn samples(metrics: &BTreeMap<String, String>, operation: &str) -> Vec<f64> {
    metrics
        .get(&format!("{operation} samples"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A `12.3 ms` metric in milliseconds.
fn millis(metrics: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    metrics
        .get(key)
        .and_then(|v| v.trim_end_matches("ms").trim().parse().ok())
}

/// The certification section.
pub fn summary(report: &RunReport, cert: &Certification) -> String {
    let mut out = String::from("<section id=\"certification\"><h2>Certification summary</h2>\n");
    let transport = if cert.tls {
        "TLS (HTTPS)"
    } else {
        "plain HTTP: TLS not certified"
    };
    let keys = cert
        .keys
        .iter()
        .map(|(role, id)| format!("{id} ({role})"))
        .collect::<Vec<_>>()
        .join(", ");
    let facts = [
        ("proxy endpoint", cert.endpoint.clone()),
        ("URI path", cert.uri_path.clone()),
        ("key ids", keys),
        ("transport", transport.to_string()),
        (
            "mutual TLS",
            if cert.mtls {
                "yes: a client certificate was presented".to_string()
            } else {
                "no client certificate".to_string()
            },
        ),
        (
            "specification",
            format!("XKS Proxy API v{}", cert.spec_version),
        ),
    ];
    out.push_str("<dl class=\"facts\" id=\"proxy\">");
    for (k, v) in facts {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v)));
    }
    out.push_str("</dl>\n");

    out.push_str("<h3>Latency</h3>\n");
    let metrics = report
        .checks
        .iter()
        .find(|c| !c.metrics.is_empty())
        .map(|c| c.metrics.clone())
        .unwrap_or_default();
    let drawn: Vec<String> = LATENCY_OPERATIONS
        .iter()
        .filter_map(|op| {
            let s = samples(&metrics, op);
            let p50 = millis(&metrics, &format!("{op} p50"));
            let p99 = millis(&metrics, &format!("{op} p99"));
            (!s.is_empty()).then(|| histogram(op, &s, p50, p99))
        })
        .collect();
    if drawn.is_empty() {
        out.push_str("<p>Latency was not measured in this run.</p>\n");
    } else {
        out.push_str(
            "<p>Sequential calls per operation against an otherwise idle proxy; KMS gives up on \
             a call after 250 ms.</p>\n<div class=\"histograms\" id=\"histograms\">\n",
        );
        for svg in drawn {
            out.push_str(&svg);
        }
        out.push_str("</div>\n");
    }
    out.push_str(
        "<h3>Requirements</h3>\n<table class=\"requirements\" id=\"requirements\"><thead><tr>\
         <th>requirement</th><th>level</th><th>result</th><th>what it says</th></tr></thead><tbody>\n",
    );
    for (id, req) in &Spec::xks().requirements {
        let level = match req.level {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        };
        let level = if req.inferred {
            format!("{level} (inferred)")
        } else {
            level.to_string()
        };
        let r = result(report, id);
        out.push_str(&format!(
            "<tr data-requirement=\"{}\"><td><code>{}</code></td><td>{}</td>\
             <td class=\"cell {r}\">{}</td><td>{}</td></tr>\n",
            attr(id),
            esc(id),
            esc(&level),
            r.replace('-', " "),
            esc(&req.text)
        ));
    }
    out.push_str("</tbody></table>\n");
    if report.catalogue.count(Status::Failing) == 0 && report.checks.iter().any(|c| c.ignored) {
        out.push_str(
            "<p>Some checks did not run: a requirement marked <i>no deviation</i> may not have \
             been exercised.</p>\n",
        );
    }

    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches a summary that drops a requirement, the proxy facts or a histogram.
    #[test]
    fn the_summary_lists_every_requirement_and_draws_each_measured_operation() {
        let mut report = crate::report::sample::report();
        let mut metrics = BTreeMap::new();
        for op in LATENCY_OPERATIONS {
            metrics.insert(format!("{op} samples"), "0.5 0.6 0.7 1.2".to_string());
            metrics.insert(format!("{op} p50"), "0.6 ms".to_string());
            metrics.insert(format!("{op} p99"), "1.2 ms".to_string());
        }
        report.checks[0].metrics = metrics;
        let cert = Certification {
            endpoint: "https://proxy.example:8443".into(),
            uri_path: "/kms/xks/v1".into(),
            keys: vec![("main".into(), "key-1".into())],
            tls: true,
            mtls: false,
            spec_version: "1.0.3".into(),
        };
        let html = summary(&report, &cert);
        for id in Spec::xks().requirements.keys() {
            assert!(html.contains(&format!("data-requirement=\"{id}\"")), "{id}");
        }
        assert_eq!(html.matches("<svg class=\"histogram\"").count(), 4);
        for fact in [
            "proxy.example:8443",
            "key-1 (main)",
            "v1.0.3",
            "TLS (HTTPS)",
            "MUST",
            "SHOULD (inferred)",
        ] {
            assert!(html.contains(fact), "no {fact}");
        }
    }
}
