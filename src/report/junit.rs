//! JUnit XML for CI: one test suite `ckscheck`, one test case per check.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::failure::failure_text;
use super::{RunReport, Status, finding_line, one_line};

/// The run as JUnit XML: suite `ckscheck` (properties: seed, endpoint, region, strict), one
/// test case per check (classname: the family title), a `<failure>` whose message is the
/// failing findings and whose text is the failure text (minimal sequence, replay command,
/// reproducers), `<skipped>` for ignored checks, and the warnings and unsettled findings that
/// do not fail a check in its `<system-out>`.
pub fn junit_xml(report: &RunReport) -> String {
    let mut suite = TestSuite::new("ckscheck");
    suite.add_properties([
        Property::new("seed", report.seed.to_string()),
        Property::new("endpoint", report.endpoint_label()),
        Property::new("region", report.region.clone()),
        Property::new("strict", report.strict.to_string()),
    ]);
    let mut total = std::time::Duration::ZERO;
    for check in &report.checks {
        total += check.duration;
        let status = match check.status(report.strict) {
            Status::Passed => TestCaseStatus::success(),
            Status::Ignored => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("filtered out or not run");
                s
            }
            Status::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let summary = check
                    .failure
                    .as_ref()
                    .map(|f| {
                        f.summary
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                    })
                    .filter(|lines| !lines.is_empty())
                    .map(|lines| lines.join("; "))
                    .unwrap_or_else(|| {
                        check
                            .verdict
                            .failures(report.strict)
                            .map(finding_line)
                            .collect::<Vec<_>>()
                            .join("; ")
                    });
                s.set_message(one_line(&summary, usize::MAX));
                if let Some(rule) = check.verdict.failures(report.strict).next() {
                    s.set_type(rule.rule.clone());
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
        let notes: Vec<String> = check.notes(report.strict).map(finding_line).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn one_case_per_check_with_failure_skip_and_notes() {
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
        assert!(matches!(
            case("pagination").status,
            TestCaseStatus::Success { .. }
        ));
        assert!(
            case("pagination")
                .system_out
                .as_ref()
                .unwrap()
                .as_str()
                .contains("[warning] DescribeCustomKeyStores pagination/marker-format")
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
        assert!(
            message.starts_with("[failure] ConnectCustomKeyStore states/model-agreement:"),
            "{message}"
        );
        assert!(message.contains("; [failure] ConnectCustomKeyStore states/connect-answer"));
        assert_eq!(ty.as_ref().unwrap().as_str(), "states/model-agreement");
        let text = description.as_ref().unwrap().as_str();
        assert!(text.contains("minimal sequence (7 steps)"), "{text}");
        assert!(text.contains("aws kms create-custom-key-store"), "{text}");
        assert!(text.contains("replay: ckscheck run --seed 42 --filter store-states"));
        let out = failed.system_out.as_ref().unwrap().as_str();
        assert!(out.contains("[unsettled] DeleteCustomKeyStore"), "{out}");
        assert!(out.contains("[warning] UpdateCustomKeyStore"), "{out}");
        assert!(!out.contains("[failure]"), "{out}");
    }

    #[test]
    fn strict_runs_count_unsettled_findings_as_failures() {
        let mut report = sample::report();
        report.strict = true;
        report.checks[2].failure = None;
        report.checks[2]
            .verdict
            .findings
            .retain(|f| f.severity != crate::oracle::Severity::Failure);
        let xml = junit_xml(&report);
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(xml.contains("[unsettled] DeleteCustomKeyStore"), "{xml}");
        report.strict = false;
        assert_eq!(junit_xml(&report).matches("<failure ").count(), 0);
    }

    #[test]
    fn no_clear_secret_reaches_the_xml() {
        let xml = junit_xml(&sample::report());
        assert!(!xml.contains(sample::CLEAR_PASSWORD), "{xml}");
        assert!(!xml.contains("guess-me-1"), "{xml}");
        assert!(xml.contains("$AWS_SECRET_ACCESS_KEY"), "{xml}");
    }
}
