//! The HTML report (`--html FILE`): one self-contained page to link from documentation or to
//! file with a certification. Inline CSS and SVG, and a few lines of inline script for the copy
//! buttons and for printing with every entry open; nothing is fetched from the network, so it
//! reads offline and prints (`@media print`).
//!
//! It renders from the run's report data ([`RunReport`], the same the JSON, JUnit and matrix
//! writers read), never from a live suite: the matrix cells come from [`super::matrix`], the
//! catalogue entries (masked, with their replay, AWS CLI and curl lines) from
//! [`super::json::json_report`]. Every piece of text is escaped.

mod certification;
mod deviations;
mod histogram;
mod matrix;
mod page;

use std::path::Path;

use sha2::{Digest, Sha256};

use super::RunReport;
use crate::deviation::Status;

pub use certification::Certification;

/// What the page says besides the run's results: where and when it was made, and how.
#[derive(Debug, Clone, Default)]
pub struct HtmlContext {
    /// The ckscheck version that made the run.
    pub version: String,
    /// When the page was made (an HTTP date, e.g. `Thu, 03 Dec 2026 04:25:52 GMT`).
    pub generated: String,
    /// The fixtures the run assumed: `built-in`, or a file and its SHA-256 digest.
    pub fixtures: Option<String>,
    /// The baseline file the run was judged against, if any.
    pub baseline: Option<String>,
    /// Whether fixed baseline entries fail the run (`--strict-baseline`).
    pub strict_baseline: bool,
    /// For `ckscheck xks run`: the certification summary.
    pub certification: Option<Certification>,
}

impl HtmlContext {
    /// A context for a page made now by this ckscheck.
    pub fn now() -> HtmlContext {
        HtmlContext {
            version: env!("CARGO_PKG_VERSION").to_string(),
            generated: httpdate::fmt_http_date(std::time::SystemTime::now()),
            ..HtmlContext::default()
        }
    }
}

/// How the page names the fixtures of `path`: `built-in` (none, or `builtin`), else the file
/// and the first 16 hex digits of its SHA-256 (the file name alone when it cannot be read).
pub fn fixtures_label(path: Option<&Path>) -> String {
    match path {
        None => "built-in".into(),
        Some(p) if p.as_os_str() == "builtin" => "built-in".into(),
        Some(p) => match std::fs::read(p) {
            Ok(bytes) => {
                let digest = hex::encode(Sha256::digest(&bytes));
                format!("{} (sha256 {})", p.display(), &digest[..16])
            }
            Err(_) => p.display().to_string(),
        },
    }
}

/// Whether the run fails, and its verdict in one sentence.
pub fn verdict(report: &RunReport, ctx: &HtmlContext) -> (bool, String) {
    let t = report.totals();
    let cat = &report.catalogue;
    let failing = cat.count(Status::Failing);
    let fixed = cat.count(Status::Fixed);
    let failed = cat.fails(ctx.strict_baseline) || t.failed > 0;
    let what = if ctx.certification.is_some() {
        "The proxy"
    } else {
        "The endpoint"
    };
    let ran = t.checks - t.ignored;
    let sentence = if failed {
        let mut why = format!(
            "{what} does not conform: {failing} failing deviation{} in {} of {ran} checks run",
            plural(failing),
            t.failed
        );
        if ctx.strict_baseline && fixed > 0 {
            why.push_str(&format!(
                ", and {fixed} baseline entr{} no longer seen (--strict-baseline)",
                if fixed == 1 { "y" } else { "ies" }
            ));
        }
        why.push('.');
        why
    } else {
        let unsettled = cat.count(Status::Unsettled);
        let warnings = cat.count(Status::Warning);
        let known = cat.count(Status::Known);
        format!(
            "{what} passes: all {ran} checks run found no failing deviation ({unsettled} \
             unsettled, {warnings} warning{}, {known} known).",
            plural(warnings)
        )
    };
    (failed, sentence)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The whole page for `report`.
pub fn html_report(report: &RunReport, ctx: &HtmlContext) -> String {
    let (failed, sentence) = verdict(report, ctx);
    let title = if ctx.certification.is_some() {
        "ckscheck XKS proxy certification"
    } else {
        "ckscheck conformance report"
    };
    let mut body = String::new();
    body.push_str(&format!(
        "<header><h1>{}</h1>\n<p class=\"verdict {}\" id=\"verdict\">{}</p>\n",
        esc(title),
        if failed { "fail" } else { "pass" },
        esc(&sentence)
    ));
    body.push_str(&header_facts(report, ctx));
    for caveat in &report.caveats {
        body.push_str(&format!("<p class=\"caveat\">Note: {}</p>\n", esc(caveat)));
    }
    body.push_str("</header>\n");
    if let Some(cert) = &ctx.certification {
        body.push_str(&certification::summary(report, cert));
    }
    body.push_str(&matrix::matrix(report, ctx.certification.is_some()));
    body.push_str(&deviations::catalogue(report));
    body.push_str(&checks_table(report));
    page::page(title, &body)
}

/// Writes the page for `report` to `path`.
pub fn write_html(path: &Path, report: &RunReport, ctx: &HtmlContext) -> Result<(), String> {
    std::fs::write(path, html_report(report, ctx))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The header's facts as a definition list.
fn header_facts(report: &RunReport, ctx: &HtmlContext) -> String {
    let t = report.totals();
    let mut facts: Vec<(&str, String)> = vec![
        ("ckscheck", ctx.version.clone()),
        ("date", ctx.generated.clone()),
        ("endpoint", report.endpoint_label()),
        ("region", report.region.clone()),
        ("seed", report.seed.to_string()),
    ];
    if let Some(f) = &ctx.fixtures {
        facts.push(("fixtures", f.clone()));
    }
    let mut judged = if report.strict {
        "strict (unsettled and SHOULD-level findings fail)".to_string()
    } else {
        "not strict (unsettled and SHOULD-level findings do not fail)".to_string()
    };
    if let Some(b) = &ctx.baseline {
        judged.push_str(&format!(
            "; baseline {b}{}",
            if ctx.strict_baseline { " (strict)" } else { "" }
        ));
    }
    facts.push(("judged", judged));
    if !report.faults.is_empty() {
        facts.push(("planted faults", report.faults.join(", ")));
    }
    facts.push((
        "checks",
        format!(
            "{} passed, {} failed, {} not run",
            t.passed, t.failed, t.ignored
        ),
    ));
    let mut out = String::from("<dl class=\"facts\" id=\"facts\">\n");
    for (k, v) in facts {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(&v)));
    }
    out.push_str("</dl>\n");
    out
}

/// One row per check: its family, status, cases, requests and time.
fn checks_table(report: &RunReport) -> String {
    let mut out = String::from(
        "<section id=\"checks\"><h2>Checks</h2>\n<div class=\"scroll\"><table class=\"checks\"><thead><tr>\
         <th>check</th><th>family</th><th>status</th><th>cases</th><th>requests</th>\
         <th>time</th><th>what it enforces</th></tr></thead><tbody>\n",
    );
    for c in &report.checks {
        let status = c.status().as_str();
        out.push_str(&format!(
            "<tr class=\"check {status}\"><td><code>{}</code></td><td>{}</td>\
             <td class=\"cell {status}\">{status}</td><td>{}</td><td>{}</td><td>{} ms</td>\
             <td>{}</td></tr>\n",
            esc(&c.name),
            esc(c.family.title()),
            c.cases,
            c.requests,
            c.duration.as_millis(),
            esc(&c.explain)
        ));
    }
    out.push_str("</tbody></table></div></section>\n");
    out
}

/// `text` escaped for an HTML text node.
pub(crate) fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_text(text)
}

/// `text` escaped for a double-quoted HTML attribute.
pub(crate) fn attr(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    fn ctx() -> HtmlContext {
        HtmlContext {
            version: "9.9.9".into(),
            generated: "Thu, 03 Dec 2026 04:25:52 GMT".into(),
            fixtures: Some("built-in".into()),
            ..HtmlContext::default()
        }
    }

    /// Catches a page that drops a catalogue entry or a header fact, or leaks a clear secret.
    #[test]
    fn the_page_has_the_header_every_deviation_and_no_secret() {
        let report = sample::baselined();
        let html = html_report(&report, &ctx());
        for fact in ["9.9.9", "04:25:52", "us-east-1", "seed", "built-in"] {
            assert!(html.contains(fact), "no {fact}");
        }
        for d in &report.catalogue.deviations {
            let id = format!("data-deviation-id=\"{}\"", attr(&d.id));
            assert!(html.contains(&id), "no entry for {}", d.id);
        }
        assert!(!html.contains(sample::CLEAR_PASSWORD));
        assert!(!html.contains("<link") && !html.contains(" src=\""));
        assert!(html.contains("id=\"parity-matrix\""));
    }

    /// Catches text that reaches the page unescaped (markup injected by a response body).
    #[test]
    fn text_is_escaped() {
        let mut report = sample::report();
        report.region = "<script>alert(1)</script>".into();
        let html = html_report(&report, &ctx());
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("&lt;script&gt;alert(1)"));
    }

    /// Catches a verdict that says pass for a failing run or the other way round.
    #[test]
    fn the_verdict_follows_the_catalogue() {
        let report = sample::report();
        let (failed, sentence) = verdict(&report, &ctx());
        assert!(failed, "{sentence}");
        assert!(sentence.contains("does not conform"), "{sentence}");
        let mut passing = sample::report();
        passing
            .checks
            .retain(|c| c.status() != crate::report::Status::Failed);
        passing.catalogue.deviations.clear();
        let (failed, sentence) = verdict(&passing, &ctx());
        assert!(!failed && sentence.contains("passes"), "{sentence}");
    }

    #[test]
    fn fixtures_are_named_by_digest() {
        assert_eq!(fixtures_label(None), "built-in");
        let dir = std::env::temp_dir().join(format!("ckscheck-html-fx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f.toml");
        std::fs::write(&f, "x").unwrap();
        let label = fixtures_label(Some(&f));
        assert!(label.ends_with("(sha256 2d711642b726b044)"), "{label}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
