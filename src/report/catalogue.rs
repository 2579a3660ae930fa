//! The catalogue as the terminal ends with it: a count by status, then one line per distinct
//! deviation with its status (`NEW` for a failing one when the run has a baseline), id, the
//! trials that saw it, the length of its shortest reproducer, and what to do about a fixed
//! one; then the notes of the checks that stopped at their deviation cap.

use std::fmt::Write;

use super::{RunReport, one_line};
use crate::deviation::Status;

/// Most trial names shown on a catalogue line before `and N more`.
const SHOWN_TRIALS: usize = 4;

/// The catalogue section of the terminal output (empty line first). `strict_baseline`: fixed
/// entries fail the run (their lines say so).
pub fn catalogue_text(report: &RunReport, strict_baseline: bool) -> String {
    let cat = &report.catalogue;
    let mut out = String::from("\n");
    if cat.deviations.is_empty() {
        out.push_str("deviations: none\n");
        return out;
    }
    let counts: Vec<String> = [
        Status::Failing,
        Status::Unsettled,
        Status::Warning,
        Status::Known,
        Status::Fixed,
        Status::Unobserved,
    ]
    .into_iter()
    .filter_map(|s| {
        let n = cat.count(s);
        (n > 0).then(|| format!("{n} {}", s.as_str()))
    })
    .collect();
    let _ = writeln!(
        out,
        "deviations ({} distinct: {}):",
        cat.deviations.len(),
        counts.join(", ")
    );
    let baseline = cat.baseline;
    for d in &cat.deviations {
        let label = match d.status {
            Status::Failing if baseline => "NEW",
            s => s.as_str(),
        };
        let mut detail = Vec::new();
        if !d.seen_in.is_empty() {
            let names: Vec<&str> = d
                .seen_in
                .iter()
                .take(SHOWN_TRIALS)
                .map(String::as_str)
                .collect();
            let more = d.seen_in.len().saturating_sub(SHOWN_TRIALS);
            let extra = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            detail.push(format!(
                "seen in {} trial(s): {}{extra}",
                d.seen_in.len(),
                names.join(", ")
            ));
        }
        if let Some((trial, r)) = &d.reproducer {
            detail.push(format!(
                "shortest reproducer {} step(s) ({trial})",
                r.step_count()
            ));
        }
        if !d.folded.is_empty() {
            detail.push(format!(
                "{} finding signature(s) folded under it",
                d.folded.len()
            ));
        }
        match d.status {
            Status::Fixed => detail.push(format!(
                "no longer seen: delete it from the baseline{}",
                if strict_baseline {
                    " (--strict-baseline: this fails the run)"
                } else {
                    ""
                }
            )),
            Status::Unobserved => {
                detail.push("nothing that saw it ran this time: neither seen nor fixed".into())
            }
            Status::Known => {
                if let Some(reason) = d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                    detail.push(format!("known: {}", one_line(reason, usize::MAX)));
                }
            }
            _ => {}
        }
        let id = one_line(&d.id, usize::MAX);
        if detail.is_empty() {
            let _ = writeln!(out, "  {label:10} {id}");
        } else {
            let _ = writeln!(out, "  {label:10} {id} — {}", detail.join("; "));
        }
    }
    for c in report.checks.iter().filter(|c| c.capped.is_some()) {
        let _ = writeln!(
            out,
            "  note: {} {}",
            c.name,
            c.capped.as_deref().unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    /// The catalogue line of `id`.
    fn line<'t>(text: &'t str, id: &str) -> &'t str {
        text.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{text}"))
    }

    #[test]
    fn one_line_per_deviation_with_where_it_was_seen_and_its_shortest_reproducer() {
        let report = sample::report();
        let text = catalogue_text(&report, false);
        assert!(
            text.starts_with("\ndeviations (5 distinct: 2 failing, 1 unsettled, 2 warning):\n"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(lines.len(), report.catalogue.deviations.len(), "{text}");
        for (l, d) in lines.iter().zip(&report.catalogue.deviations) {
            assert!(l.contains(&d.id), "{l}");
            assert!(l.contains("seen in 1 trial(s): "), "{l}");
        }
        assert_eq!(
            line(&text, sample::CONNECT_ANSWER),
            format!(
                "  failing    {} — seen in 1 trial(s): store-states; shortest reproducer 2 step(s) \
                 (store-states)",
                sample::CONNECT_ANSWER
            )
        );
        assert!(
            line(&text, sample::MODEL_AGREEMENT).contains("shortest reproducer 7 step(s)"),
            "{text}"
        );
        // Without a baseline, nothing is new: everything is.
        assert!(!text.contains("NEW"), "{text}");
        let unsettled = line(&text, sample::DELETE_UNSETTLED);
        assert!(unsettled.starts_with("  unsettled  "), "{unsettled}");
        assert!(!unsettled.contains("shortest reproducer"), "{unsettled}");
        assert!(
            line(&text, "pagination/marker-format").starts_with("  warning    "),
            "{text}"
        );
    }

    #[test]
    fn with_a_baseline_failing_ones_are_new_and_fixed_ones_are_to_be_deleted() {
        let report = sample::baselined();
        let text = catalogue_text(&report, false);
        assert!(
            text.starts_with(
                "\ndeviations (7 distinct: 2 failing, 2 warning, 1 known, 1 fixed, 1 unobserved):\n"
            ),
            "{text}"
        );
        assert!(
            line(&text, sample::CONNECT_ANSWER).starts_with("  NEW        "),
            "{text}"
        );
        assert!(
            line(&text, sample::MODEL_AGREEMENT).starts_with("  NEW        "),
            "{text}"
        );
        assert_eq!(
            line(&text, sample::DELETE_UNSETTLED),
            format!(
                "  known      {} — seen in 1 trial(s): store-states; known: {}",
                sample::DELETE_UNSETTLED,
                sample::REASON
            )
        );
        assert_eq!(
            line(&text, sample::FIXED),
            format!(
                "  fixed      {} — no longer seen: delete it from the baseline",
                sample::FIXED
            )
        );
        assert!(
            line(&text, sample::UNOBSERVED).starts_with("  unobserved "),
            "{text}"
        );
        assert!(
            line(&text, sample::UNOBSERVED).contains("neither seen nor fixed"),
            "{text}"
        );
        let strict = catalogue_text(&report, true);
        assert!(
            line(&strict, sample::FIXED)
                .ends_with("delete it from the baseline (--strict-baseline: this fails the run)"),
            "{strict}"
        );
    }

    #[test]
    fn the_probe_reproduces_a_not_implemented_operation() {
        let mut report = sample::blocked();
        let id = crate::deviation::not_implemented_id(
            "DisconnectCustomKeyStore",
            sample::NOT_IMPLEMENTED_ANSWER,
        );
        let text = catalogue_text(&report, false);
        assert_eq!(
            line(&text, &id),
            format!(
                "  failing    {id} — seen in 1 trial(s): snapshot::disconnect-twice; shortest \
                 reproducer 1 step(s) (probe)"
            )
        );
        // Findings folded under it, from more trials than a line shows.
        for n in 0..5 {
            let mut c = report.checks[1].clone();
            c.name = format!("extra-{n}");
            c.verdict.fail(
                "DisconnectCustomKeyStore",
                "states/disconnect-answer",
                format!("kind {}", n % 2),
                "expected 200, got 501",
                None,
            );
            report.checks.push(c);
        }
        sample::resolve(&mut report, &sample::blocked_policy());
        let text = catalogue_text(&report, false);
        assert!(
            line(&text, &id).contains(
                "seen in 6 trial(s): snapshot::disconnect-twice, extra-0, extra-1, extra-2 and 2 \
                 more; shortest reproducer 1 step(s) (probe); 2 finding signature(s) folded under it"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_empty_catalogue_says_none_and_capped_checks_are_noted() {
        let mut report = sample::report();
        report.checks[2].capped = Some("stopped looking for new deviations at 2".into());
        let text = catalogue_text(&report, false);
        assert!(
            text.ends_with("  note: store-states stopped looking for new deviations at 2\n"),
            "{text}"
        );
        report.catalogue = Default::default();
        assert_eq!(catalogue_text(&report, false), "\ndeviations: none\n");
    }
}
