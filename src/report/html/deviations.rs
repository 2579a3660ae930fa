//! The deviation catalogue: one expandable entry per distinct deviation, grouped by what it
//! means for the run (failing; unsettled and inferred; warnings; baseline), each with its
//! signature, where it was seen, the minimal sequence, the exchanges, the snapshot diff and the
//! replay, AWS CLI and curl lines with copy buttons. The entries are the JSON report's
//! `deviations` (masked there), so nothing here can show a secret the JSON report would not.

use serde_json::Value;

use super::{attr, esc};
use crate::deviation::Status;
use crate::report::RunReport;
use crate::report::json::json_report;
use crate::spec::Spec;

/// The groups, in page order: id, title, what the group holds, and which entries go in it.
type Group = (
    &'static str,
    &'static str,
    &'static str,
    fn(Status, bool) -> bool,
);

const GROUPS: [Group; 4] = [
    (
        "failing",
        "Failing deviations",
        "Each fails the run. Open one for its smallest reproducer.",
        |s, _| s == Status::Failing,
    ),
    (
        "unsettled",
        "Unsettled and inferred points",
        "Expectations that rest on a point KMS or the specification does not settle, or on our \
         own reading of it (inferred): shown apart, they fail only under --strict.",
        |s, inferred| s == Status::Unsettled || (s == Status::Warning && inferred),
    ),
    (
        "warnings",
        "Warnings",
        "Style deviations and SHOULD-level findings: they never fail the run (SHOULD ones do \
         under --strict).",
        |s, inferred| s == Status::Warning && !inferred,
    ),
    (
        "baseline",
        "Baseline: known, fixed and unobserved deviations",
        "Entries of the baseline: accepted (known), no longer seen (fixed), or not exercised \
         this time (unobserved).",
        |s, _| matches!(s, Status::Known | Status::Fixed | Status::Unobserved),
    ),
];

/// Whether `rule` is an XKS requirement that is our reading rather than the specification's.
fn inferred(rule: &str) -> bool {
    Spec::xks()
        .requirements
        .get(rule)
        .is_some_and(|r| r.inferred)
}

/// The catalogue section.
pub fn catalogue(report: &RunReport) -> String {
    let json = json_report(report);
    let entries = json["deviations"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "<section id=\"deviations\"><h2>Deviation catalogue ({} distinct)</h2>\n",
        entries.len()
    );
    if entries.is_empty() {
        out.push_str("<p id=\"no-deviations\">No deviation: every check agreed.</p>\n");
    }
    for (group, title, blurb, pick) in GROUPS {
        let chosen: Vec<(usize, &Value)> = entries
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                let status = report.catalogue.deviations.get(*i).map(|d| d.status);
                let rule = e["rule"].as_str().unwrap_or_default();
                status.is_some_and(|s| pick(s, inferred(rule)))
            })
            .collect();
        if chosen.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<section class=\"group\" id=\"group-{group}\"><h3>{} ({})</h3>\n<p>{}</p>\n",
            esc(title),
            chosen.len(),
            esc(blurb)
        ));
        for (i, e) in chosen {
            // The first failing entry starts open: what a reader wants first.
            let open = group == "failing" && i == 0;
            let diff = report
                .catalogue
                .deviations
                .get(i)
                .and_then(|d| d.reproducer.as_ref())
                .and_then(|(_, f)| f.diff.as_deref());
            out.push_str(&entry(i, e, diff, open));
        }
        out.push_str("</section>\n");
    }
    out.push_str("</section>\n");
    out
}

/// One entry, closed until opened.
fn entry(n: usize, e: &Value, diff: Option<&str>, open: bool) -> String {
    let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
    let (id, status, rule) = (text("id"), text("status"), text("rule"));
    let summary = crate::report::deviation_line(&id, &text("summary"));
    let mut out = format!(
        "<details class=\"deviation {status}\" id=\"deviation-{n}\" data-deviation-id=\"{}\"{}>\
         <summary><span class=\"badge {status}\">{}</span>{}{}</summary>\n",
        attr(&id),
        if open { " open" } else { "" },
        esc(&status),
        if inferred(&rule) {
            "<span class=\"badge warning\">inferred</span>"
        } else {
            ""
        },
        esc(&summary)
    );
    let list = |k: &str| -> Vec<String> {
        e[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut facts: Vec<(&str, String)> = vec![
        ("signature", id.clone()),
        ("operation", text("operation")),
        ("rule", rule),
        ("status", status),
        ("seen in", list("seen_in").join(", ")),
    ];
    if !list("folded").is_empty() {
        facts.push(("folded under it", list("folded").join(", ")));
    }
    if let Some(reason) = e["reason"].as_str() {
        facts.push(("baseline reason", reason.to_string()));
    }
    out.push_str("<dl class=\"facts\">");
    for (k, v) in facts {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v)));
    }
    out.push_str("</dl>\n");
    let r = &e["reproducer"];
    if r.is_null() {
        out.push_str("<p>No reproducer: nothing that saw it ran this time.</p>\n");
    } else {
        let steps = r["steps"].as_array().cloned().unwrap_or_default();
        out.push_str(&format!(
            "<h4>Minimal sequence: {} step{} (trial <code>{}</code>, seed {})</h4>\n<ol class=\"steps\">",
            steps.len(),
            if steps.len() == 1 { "" } else { "s" },
            esc(r["trial"].as_str().unwrap_or_default()),
            r["seed"]
        ));
        for s in &steps {
            let line = match s {
                Value::String(s) => s.clone(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            out.push_str(&format!("<li><code>{}</code></li>", esc(&line)));
        }
        out.push_str("</ol>\n");
        if let Some(diff) = diff {
            out.push_str("<h4>Snapshot diff (<span class=\"del\">- snapshot</span>, <span class=\"add\">+ came back</span>)</h4>\n");
            out.push_str(&diff_block(diff));
        }
        let exchanges = r["exchanges"].as_array().cloned().unwrap_or_default();
        if !exchanges.is_empty() {
            out.push_str(&format!(
                "<details class=\"exchanges\"><summary>{} exchange{} (secrets masked)</summary>\n",
                exchanges.len(),
                if exchanges.len() == 1 { "" } else { "s" }
            ));
            for (k, x) in exchanges.iter().enumerate() {
                out.push_str(&format!(
                    "<pre class=\"exchange\">#{} {}</pre>\n",
                    k + 1,
                    esc(&serde_json::to_string_pretty(x).unwrap_or_default())
                ));
            }
            out.push_str("</details>\n");
        }
        let lines = |k: &str| -> String {
            r[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
        };
        out.push_str(&command(
            n,
            "replay",
            "Replay",
            r["replay"].as_str().unwrap_or_default(),
        ));
        out.push_str(&command(n, "aws-cli", "AWS CLI", &lines("aws_cli")));
        out.push_str(&command(n, "curl", "curl", &lines("curl")));
    }
    out.push_str("</details>\n");
    out
}

/// A snapshot diff, its `+` and `-` lines coloured.
pub fn diff_block(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        out.push_str(&format!("<span class=\"{class}\">{}</span>", esc(line)));
    }
    out.push_str("</pre>\n");
    out
}

/// A command block with its copy button (nothing when `text` is empty).
fn command(n: usize, kind: &str, title: &str, text: &str) -> String {
    if text.trim().is_empty() {
        return String::new();
    }
    let target = format!("cmd-{n}-{kind}");
    format!(
        "<h4>{}</h4><div class=\"cmd\"><button class=\"copy\" type=\"button\" \
         data-target=\"{target}\">copy</button><pre class=\"{kind}\" id=\"{target}\">{}</pre></div>\n",
        esc(title),
        esc(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    /// Catches an entry that loses its copy buttons, its reproducer or its group.
    #[test]
    fn entries_are_grouped_and_carry_their_reproducers() {
        let report = sample::baselined();
        let html = catalogue(&report);
        assert!(html.contains("id=\"group-failing\""), "{html}");
        assert!(html.contains("id=\"group-baseline\""), "{html}");
        assert!(html.contains("data-target=\"cmd-0-replay\""), "{html}");
        assert!(html.contains("class=\"curl\""), "{html}");
        assert!(html.contains("class=\"aws-cli\""), "{html}");
        assert_eq!(
            html.matches("<details class=\"deviation ").count(),
            report.catalogue.deviations.len()
        );
    }

    #[test]
    fn a_diff_colours_its_added_and_removed_lines() {
        let html = diff_block(" a\n-b <x>\n+c");
        assert!(
            html.contains("<span class=\"del\">-b &lt;x&gt;</span>"),
            "{html}"
        );
        assert!(html.contains("<span class=\"add\">+c</span>"), "{html}");
        assert!(html.contains("<span class=\"ctx\"> a</span>"), "{html}");
    }
}
