//! The XKS certification suite against the embedded reference proxy: the clean proxy passes
//! every check, and each planted fault is caught by the check meant for it (and only a strict
//! run catches a SHOULD-level fault).

use std::collections::BTreeMap;

use ckscheck::xks::checks::checks;
use ckscheck::xks::proxy::ProxyFault;
use ckscheck::xks::run::{RunArgs, prepare};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the checks named by `which` against the embedded proxy with `faults`; the failed
/// checks and why.
fn failing(
    faults: &[ProxyFault],
    strict: bool,
    cases: u32,
    which: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    let rt = runtime();
    let args = RunArgs {
        faults: faults.to_vec(),
        strict,
        cases,
        seed: Some(7),
        region: "us-east-1".into(),
        ..RunArgs::default()
    };
    let prepared = prepare(&args, &rt).expect("the embedded proxy starts");
    prepared.preflight().expect("the embedded proxy answers");
    let mut out = BTreeMap::new();
    for check in checks().into_iter().filter(|c| which(c.name)) {
        assert!(
            (check.needs)(&prepared.ctx).is_none(),
            "{} cannot run",
            check.name
        );
        let report = prepared.run_check(&check);
        if let Some(f) = report.failure {
            let text = format!("{}\n{}", f.summary, f.reproducer.unwrap_or_default());
            out.insert(report.name, text);
        }
    }
    out
}

#[test]
fn the_clean_reference_proxy_passes_every_check_even_strict() {
    let failed = failing(&[], true, 24, |_| true);
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn each_planted_fault_is_caught_by_its_check() {
    let mut wrong = Vec::new();
    for fault in ProxyFault::ALL {
        let meant = fault.caught_by();
        let started = std::time::Instant::now();
        let only = |name: &str| name == meant;
        let failed = failing(&[fault], false, 24, only);
        eprintln!("{fault}: {:.1} s", started.elapsed().as_secs_f64());
        if fault.strict_only() {
            if !failed.is_empty() {
                wrong.push(format!(
                    "{fault}: a SHOULD fault failed a non-strict run: {failed:?}"
                ));
            }
            let strict = failing(&[fault], true, 24, only);
            if !strict.contains_key(meant) {
                wrong.push(format!("{fault}: strict run missed it: {strict:?}"));
            }
        } else if !failed.contains_key(meant) {
            wrong.push(format!(
                "{fault}: {meant} did not fail; failed: {:?}",
                failed.keys()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
