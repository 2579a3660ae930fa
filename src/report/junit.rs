//! JUnit XML for CI: one test suite `ckscheck`, one test case per trial.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::failure::failure_text;
use super::{CheckReport, RunReport, Status, deviation_line, one_line};
use crate::deviation::Status as DeviationStatus;

/// The run as JUnit XML: suite `ckscheck` (properties: seed, endpoint, region, strict), one
/// test case per trial (classname: the family title; properties: explain, cases, metrics), a
/// `<failure>` for a failed trial whose message lists its failing deviations by id (`N failing
/// deviation(s): ID; ID`), whose type is the first one's rule and whose text is the failure
/// text (one block per deviation: findings, minimal sequence, replay command, reproducers),
/// `<skipped>` for ignored trials, and the trial's deviations that do not fail (unsettled,
/// warning, known), one `[status] ID — summary` line each (the summary only when it
/// adds to the id), in its `<system-out>`.
pub fn junit_xml(report: &RunReport) -> String {
    let mut suite = TestSuite::new("ckscheck");
    suite.add_properties([
        Property::new("seed", report.seed.to_string()),
        Property::new("endpoint", report.endpoint_label()),
        Property::new("region", report.region.clone()),
        Property::new("strict", report.strict.to_string()),
    ]);
    suite.add_properties(
        report
            .caveats
            .iter()
            .map(|c| Property::new("caveat", c.clone())),
    );
    let mut total = std::time::Duration::ZERO;
    for check in &report.checks {
        total += check.duration;
        let status = match check.status() {
            Status::Passed => TestCaseStatus::success(),
            Status::Ignored => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("filtered out or not run");
                s
            }
            Status::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(failure_message(check));
                if let Some(first) = check.failing().next() {
                    s.set_type(first.rule.clone());
                }
                s.set_description(failure_text(check, report));
                s
            }
        };
        let mut case = TestCase::new(check.name.clone(), status);
        case.set_classname(check.family.title());
        case.set_time(check.duration);
        case.add_properties([
            Property::new("explain", one_line(&check.explain, usize::MAX)),
            Property::new("cases", check.cases.to_string()),
        ]);
        case.add_properties(
            check
                .metrics
                .iter()
                .map(|(k, v)| Property::new(k.as_str(), v.as_str())),
        );
        let notes: Vec<String> = check
            .deviations
            .iter()
            .filter(|d| d.status != DeviationStatus::Failing)
            .map(|d| {
                let reason = report
                    .catalogue
                    .deviations
                    .iter()
                    .find(|c| c.id == d.id)
                    .and_then(|c| c.reason.as_deref())
                    .filter(|r| !r.is_empty() && d.status == DeviationStatus::Known)
                    .map(|r| format!(" (known: {})", one_line(r, usize::MAX)))
                    .unwrap_or_default();
                let folded = d
                    .folded
                    .as_deref()
                    .map(|f| format!(" (folded: {f})"))
                    .unwrap_or_default();
                format!(
                    "[{}] {}{folded}{reason}",
                    d.status.as_str(),
                    deviation_line(&d.id, &d.summary)
                )
            })
            .collect();
        if !notes.is_empty() {
            case.set_system_out(notes.join("\n") + "\n");
        }
        suite.add_test_case(case);
    }
    suite.set_time(total);
    let mut junit = Report::new("ckscheck");
    junit.add_test_suite(suite);
    junit.to_string().unwrap_or_else(|e| {
        // Serialising into memory only fails on a writer error; say so in valid XML.
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ckscheck\" tests=\"0\" \
             failures=\"0\" errors=\"1\"><!-- {} --></testsuites>\n",
            one_line(&e.to_string(), 200).replace("--", "- -")
        )
    })
}

/// `N failing deviation(s): ID; ID`, each distinct id once (with the signatures folded under
/// it, if any; a trial that could not run says why).
fn failure_message(check: &CheckReport) -> String {
    let mut items: Vec<(&str, Vec<&str>, Option<&str>)> = Vec::new();
    for d in check.failing() {
        let at = match items.iter().position(|(id, ..)| *id == d.id) {
            Some(at) => at,
            None => {
                let why = (d.rule == "harness").then_some(d.summary.as_str());
                items.push((d.id.as_str(), Vec::new(), why));
                items.len() - 1
            }
        };
        items[at].1.extend(d.folded.as_deref());
    }
    let listed: Vec<String> = items
        .iter()
        .map(|(id, folded, why)| match (folded.is_empty(), why) {
            (false, _) => format!("{id} (folded: {})", folded.join(", ")),
            (true, Some(why)) => format!("{id} ({why})"),
            (true, None) => id.to_string(),
        })
        .collect();
    one_line(
        &format!(
            "{} failing deviation(s): {}",
            items.len(),
            listed.join("; ")
        ),
        usize::MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn one_case_per_trial_with_failure_skip_and_notes() {
        let report = sample::report();
        let xml = junit_xml(&report);
        assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert_eq!(xml.matches("<skipped ").count(), 1, "{xml}");

        let parsed = Report::deserialize_from_str(&xml).expect("the XML parses");
        assert_eq!(parsed.name.as_ref().unwrap().as_str(), "ckscheck");
        assert_eq!((parsed.tests, parsed.failures, parsed.skipped), (4, 1, 1));
        let suite = &parsed.test_suites[0];
        assert_eq!(suite.name.as_str(), "ckscheck");
        assert!(
            suite
                .properties
                .iter()
                .any(|p| p.name.as_str() == "seed" && p.value.as_str() == "42")
        );
        let case = |name: &str| {
            suite
                .test_cases
                .iter()
                .find(|c| c.name.as_str() == name)
                .unwrap()
        };
        assert_eq!(
            case("pagination").classname.as_ref().unwrap().as_str(),
            "pagination"
        );
        assert!(
            case("pagination")
                .properties
                .iter()
                .any(|p| p.name.as_str() == "cases" && p.value.as_str() == "64")
        );
        assert!(matches!(
            case("pagination").status,
            TestCaseStatus::Success { .. }
        ));
        let out = case("pagination").system_out.as_ref().unwrap().as_str();
        assert_eq!(
            out,
            "[warning] DescribeCustomKeyStores/pagination/marker-format: not opaque — NextMarker is not opaque"
        );
        assert!(matches!(
            case("snapshots").status,
            TestCaseStatus::Skipped { .. }
        ));
        let failed = case("store-states");
        assert_eq!(failed.classname.as_ref().unwrap().as_str(), "states");
        assert_eq!(failed.time, Some(std::time::Duration::from_millis(2345)));
        let TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            ..
        } = &failed.status
        else {
            panic!("store-states should fail: {:?}", failed.status);
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        let message = message.as_ref().unwrap().as_str();
        assert_eq!(
            message,
            format!(
                "2 failing deviation(s): {}; {}",
                sample::CONNECT_ANSWER,
                sample::MODEL_AGREEMENT
            )
        );
        assert_eq!(ty.as_ref().unwrap().as_str(), "states/connect-answer");
        let text = description.as_ref().unwrap().as_str();
        assert!(
            text.contains(&format!("deviation 2 of 2: {}", sample::CONNECT_ANSWER)),
            "{text}"
        );
        assert!(text.contains("minimal sequence (7 steps)"), "{text}");
        assert!(text.contains("minimal sequence (2 steps)"), "{text}");
        assert!(text.contains("aws kms create-custom-key-store"), "{text}");
        assert!(text.contains("replay: ckscheck run --seed 42 --filter store-states"));
        let out = failed.system_out.as_ref().unwrap().as_str();
        assert!(
            out.contains(&format!("[unsettled] {}\n", sample::DELETE_UNSETTLED)),
            "{out}"
        );
        assert!(out.contains("[warning] UpdateCustomKeyStore"), "{out}");
        assert!(!out.contains("[failing]"), "{out}");
    }

    #[test]
    fn strict_runs_fail_on_unsettled_deviations() {
        let mut report = sample::report();
        report.checks[2].failures.clear();
        report.checks[2]
            .verdict
            .findings
            .retain(|f| f.severity != crate::oracle::Severity::Failure);
        let strict = crate::deviation::Policy {
            strict: true,
            ..Default::default()
        };
        sample::resolve(&mut report, &strict);
        let xml = junit_xml(&report);
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(
            xml.contains(&format!(
                "message=\"1 failing deviation(s): {}\"",
                sample::DELETE_UNSETTLED
            )),
            "{xml}"
        );
        sample::resolve(&mut report, &crate::deviation::Policy::default());
        assert_eq!(junit_xml(&report).matches("<failure ").count(), 0);
    }

    #[test]
    fn known_deviations_pass_with_their_reason_and_harness_failures_say_why() {
        let mut report = sample::baselined();
        let xml = junit_xml(&report);
        assert!(
            xml.contains(&format!(
                "[known] {} (known: {})",
                sample::DELETE_UNSETTLED,
                sample::REASON
            )),
            "{xml}"
        );
        // A trial that could not run: its message says why.
        let check = &mut report.checks[0];
        check.failures.push(crate::report::FailureDetail {
            signature: None,
            summary: "the target could not be reached: connection refused".into(),
            steps: Vec::new(),
            history: Default::default(),
            seed: 42,
            cases_needed: 0,
            requests_needed: 0,
            shrink: None,
            diff: None,
            replay: None,
            reproducer: None,
            raw: None,
        });
        sample::resolve(&mut report, &crate::deviation::Policy::default());
        let xml = junit_xml(&report);
        assert!(
            xml.contains(
                "message=\"1 failing deviation(s): harness/run: the trial could not run (the \
                 target could not be reached: connection refused)\""
            ),
            "{xml}"
        );
        assert!(xml.contains("type=\"harness\""), "{xml}");
    }

    #[test]
    fn a_blocked_scenario_fails_on_the_not_implemented_deviation() {
        let report = sample::blocked();
        let xml = junit_xml(&report);
        assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
        assert!(
            xml.contains(
                "message=\"1 failing deviation(s): DisconnectCustomKeyStore/not-implemented: \
                 answers 501 text/html\" type=\"not-implemented\""
            ),
            "{xml}"
        );
        assert!(xml.contains("nothing was sent"), "{xml}");
    }

    #[test]
    fn no_clear_secret_reaches_the_xml() {
        let xml = junit_xml(&sample::report());
        assert!(!xml.contains(sample::CLEAR_PASSWORD), "{xml}");
        assert!(!xml.contains("guess-me-1"), "{xml}");
        assert!(xml.contains("$AWS_SECRET_ACCESS_KEY"), "{xml}");
    }
}
