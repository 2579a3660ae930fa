//! `ckscheck selftest`: proof that the oracles work. The clean emulator must pass every check;
//! each planted fault must be caught by a check (warning-only faults must not fail any).

use super::checks;
use super::run::{RunOptions, prepare};
use crate::emulator::Fault;
use crate::report::CheckReport;

/// The checks that are meant to catch `fault` (any of them failing counts; others may fail too).
/// Empty for a warning-only fault, which must fail nothing.
pub fn meant_to_catch(fault: Fault) -> &'static [&'static str] {
    use Fault::*;
    match fault {
        OverlappingPages | SkippedItems | LyingTruncated | IgnoredLimit | InvalidMarkerRestarts => {
            &["pagination"]
        }
        LimitOutOfRangeAccepted => &["pagination", "validation"],
        NameAndIdAccepted | UnknownIdEmptyList => &["exclusion"],
        FailedWithoutErrorCode
        | WrongEnumCase
        | LeakedPassword
        | DatesAsStrings
        | XksConfigOnCloudhsm
        | SecretInErrorMessage => &["fields"],
        WrongErrorType | ClientErrorsAs500 | HtmlErrors | MissingRequestId | WrongContentType => {
            &["errors"]
        }
        DeleteWhileConnected | ConnectFromFailed | IdempotentDisconnect => &["states"],
        DuplicateNames => &["agreement", "concurrency"],
        QuotaOffByOne => &["agreement"],
        NamespacedErrorType => &[],
    }
}

/// One row of the selftest table.
pub struct Row {
    /// The fault planted (None: the clean emulator).
    pub fault: Option<Fault>,
    /// The checks that failed, with cases needed and the shrunk sequence length.
    pub caught_by: Vec<(String, u32, usize)>,
    /// The failure summary of each check that failed.
    pub summaries: Vec<(String, String)>,
    /// Whether the row is as it should be.
    pub ok: bool,
    /// How long the row took.
    pub elapsed: std::time::Duration,
}

/// Runs `which` checks against the emulator with `fault` planted (None: the clean emulator).
/// The clean row plays fixture entries with real XKS proxies as `ckscheck run` does; a fault
/// row simulates them, since the bug it proves caught is the emulator's, not a proxy's.
pub fn row(
    fault: Option<Fault>,
    cases: u32,
    seed: u64,
    which: impl Fn(&str) -> bool,
    runtime: &tokio::runtime::Runtime,
) -> Result<Row, String> {
    let started = std::time::Instant::now();
    let options = RunOptions {
        cases: Some(cases),
        seed: Some(seed),
        faults: fault.into_iter().collect(),
        simulated_proxies: fault.is_some(),
        quota: 10,
        transition_timeout: std::time::Duration::from_secs(10),
        ..RunOptions::default()
    };
    let prepared = prepare(&options, runtime)?;
    let reports: Vec<CheckReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = checks()
            .into_iter()
            .filter(|check| which(check.name))
            .map(|check| {
                let suite = &prepared.suite;
                scope.spawn(move || suite.run_check(&check))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a check panicked"))
            .collect()
    });
    let caught_by: Vec<(String, u32, usize)> = reports
        .iter()
        .filter_map(|r| {
            r.failure
                .as_ref()
                .map(|f| (r.name.clone(), f.cases_needed, f.steps.len()))
        })
        .collect();
    let ok = match fault {
        None => caught_by.is_empty(),
        Some(f) if f.warning_only() => caught_by.is_empty(),
        Some(f) => caught_by
            .iter()
            .any(|(check, _, _)| meant_to_catch(f).contains(&check.as_str())),
    };
    let summaries = reports
        .iter()
        .filter_map(|r| {
            r.failure
                .as_ref()
                .map(|f| (r.name.clone(), f.summary.clone()))
        })
        .collect();
    Ok(Row {
        fault,
        caught_by,
        summaries,
        ok,
        elapsed: started.elapsed(),
    })
}

/// Prints the selftest table row by row; exit code 0 when every row is as it should be, else 1.
pub fn selftest(
    cases: u32,
    seed: Option<u64>,
    filter: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, String> {
    let seed = seed.unwrap_or_else(rand::random);
    println!("ckscheck selftest: seed {seed}, {cases} cases per check");
    let mut plan: Vec<Option<Fault>> = vec![None];
    plan.extend(
        Fault::ALL
            .into_iter()
            .filter(|f| filter.is_none_or(|s| f.name().contains(s)))
            .map(Some),
    );
    println!();
    println!(
        "| fault | meant for | caught by | cases needed | shrunk steps (XKS: requests) | seconds | |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut wrong = Vec::new();
    let total = plan.len();
    for fault in plan {
        let row = row(fault, cases, seed, |_| true, runtime)?;
        let name = fault.map_or("(none: clean emulator)", |f| f.name());
        let meant = fault.map_or("-".to_string(), |f| match meant_to_catch(f) {
            [] => "- (warning)".to_string(),
            checks => checks.join(" or "),
        });
        let verdict = if row.ok { "ok" } else { "WRONG" };
        let seconds = format!("{:.1}", row.elapsed.as_secs_f64());
        if row.caught_by.is_empty() {
            let expected = match fault {
                None => "nothing (as it should)",
                Some(f) if f.warning_only() => "nothing (warning only, as it should)",
                Some(_) => "NOTHING",
            };
            println!("| {name} | {meant} | {expected} | | | {seconds} | {verdict} |");
        }
        for (check, needed, steps) in &row.caught_by {
            println!("| {name} | {meant} | {check} | {needed} | {steps} | {seconds} | {verdict} |");
        }
        if !row.ok {
            wrong.push(row);
        }
    }
    let mut wrong: Vec<(String, Vec<(String, String)>)> = wrong
        .into_iter()
        .map(|row| {
            let name = row.fault.map_or("(none: clean emulator)", |f| f.name());
            (name.to_string(), row.summaries)
        })
        .collect();
    let (xks_total, xks_wrong) = xks_rows(cases, seed, filter, runtime)?;
    wrong.extend(xks_wrong);
    for (name, summaries) in &wrong {
        println!("\n{name}: as it should not be");
        for (check, summary) in summaries {
            println!("  {check}: {}", summary.replace('\n', "\n    "));
        }
    }
    let total = total + xks_total;
    println!(
        "\n{} rows as expected, {} wrong (seed {seed})",
        total - wrong.len(),
        wrong.len()
    );
    Ok(if wrong.is_empty() { 0 } else { 1 })
}

/// Most cases per property in the XKS rows: a fault like `slow` costs 300 ms a request.
const XKS_CASES_MAX: u32 = 32;

/// The XKS rows (`xks:` + fault): the row count, and the wrong rows with their summaries.
#[allow(clippy::type_complexity)]
fn xks_rows(
    cases: u32,
    seed: u64,
    filter: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<(usize, Vec<(String, Vec<(String, String)>)>), String> {
    use crate::xks::proxy::ProxyFault;
    let label = |f: Option<ProxyFault>| {
        f.map_or("xks:(none: clean reference proxy)".to_string(), |f| {
            format!("xks:{f}")
        })
    };
    let mut plan: Vec<Option<ProxyFault>> = vec![None];
    plan.extend(ProxyFault::ALL.into_iter().map(Some));
    plan.retain(|f| filter.is_none_or(|s| label(*f).contains(s)));
    let mut wrong = Vec::new();
    for fault in &plan {
        let row = crate::xks::selftest::row(*fault, cases.min(XKS_CASES_MAX), seed, runtime)?;
        let name = label(*fault);
        let meant = fault.map_or("-".to_string(), |f| {
            let strict = if f.strict_only() { " (strict)" } else { "" };
            format!("{}{strict}", f.caught_by())
        });
        let verdict = if row.ok { "ok" } else { "WRONG" };
        let seconds = format!("{:.1}", row.elapsed.as_secs_f64());
        if row.caught_by.is_empty() {
            let expected = if fault.is_none() {
                "nothing (as it should)"
            } else {
                "NOTHING"
            };
            println!("| {name} | {meant} | {expected} | | | {seconds} | {verdict} |");
        }
        for (check, needed, exchanges) in &row.caught_by {
            println!(
                "| {name} | {meant} | {check} | {needed} | {exchanges} | {seconds} | {verdict} |"
            );
        }
        if !row.ok {
            wrong.push((name, row.summaries));
        }
    }
    Ok((plan.len(), wrong))
}
