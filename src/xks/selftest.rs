//! The XKS rows of `ckscheck selftest`: the clean reference proxy passes every certification
//! check, and each planted proxy fault is caught by the check meant for it.

use std::time::{Duration, Instant};

use super::checks::checks;
use super::run::{RunArgs, prepare};
use crate::proxy::ProxyFault;

/// One XKS row of the selftest table.
pub struct XksRow {
    /// The fault planted (None: the clean proxy).
    pub fault: Option<ProxyFault>,
    /// The checks that failed, with the cases needed and the counterexample's exchanges.
    pub caught_by: Vec<(String, u32, usize)>,
    /// The failure summary of each check that failed.
    pub summaries: Vec<(String, String)>,
    /// Whether the row is as it should be.
    pub ok: bool,
    /// How long the row took.
    pub elapsed: Duration,
}

/// Runs every certification check, in parallel, against the embedded proxy with `fault`
/// planted (strict for a SHOULD-level fault, which only a strict run must catch).
pub fn row(
    fault: Option<ProxyFault>,
    cases: u32,
    seed: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<XksRow, String> {
    let started = Instant::now();
    let args = RunArgs {
        faults: fault.into_iter().collect(),
        strict: fault.is_some_and(ProxyFault::strict_only),
        cases,
        seed: Some(seed),
        region: "us-east-1".into(),
        ..RunArgs::default()
    };
    let prepared = prepare(&args, runtime)?;
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = checks()
            .into_iter()
            .map(|check| {
                let prepared = &prepared;
                scope.spawn(move || prepared.run_check_counted(&check))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a check panicked"))
            .collect()
    });
    if let Some(p) = prepared.proxy {
        runtime.block_on(p.stop());
    }
    let mut caught_by = Vec::new();
    let mut summaries = Vec::new();
    for (r, exchanges) in reports {
        if let Some(f) = r.failures.into_iter().next() {
            caught_by.push((r.name.clone(), f.cases_needed, exchanges));
            summaries.push((r.name, f.summary));
        }
    }
    let ok = match fault {
        None => caught_by.is_empty(),
        Some(f) => caught_by.iter().any(|(c, _, _)| c == f.caught_by()),
    };
    Ok(XksRow {
        fault,
        caught_by,
        summaries,
        ok,
        elapsed: started.elapsed(),
    })
}
