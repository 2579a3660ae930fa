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
        LimitOutOfRangeAccepted | LengthInBytes => &["pagination", "validation"],
        UnknownOperation501 => &["validation"],
        UpdateSkipsValidation | TypeRequiredNotEnforced => &["validation"],
        ClusterChangeWhileConnected => &["states"],
        NameAndIdAccepted | UnknownIdEmptyList => &["exclusion"],
        FailedWithoutErrorCode
        | WrongEnumCase
        | LeakedPassword
        | DatesAsStrings
        | XksConfigOnCloudhsm
        | SecretInErrorMessage => &["fields"],
        WrongErrorType | ClientErrorsAs500 | HtmlErrors | MissingRequestId | WrongContentType
        | NotImplemented => &["errors"],
        DeleteWhileConnected | ConnectFromFailed | IdempotentDisconnect => &["states"],
        DuplicateNames => &["agreement", "concurrency"],
        QuotaOffByOne => &["agreement"],
        NamespacedErrorType => &[],
    }
}

/// The faults planted together in the selftest's combined row: each must still be reported as
/// deviations of its own, each with its own shrunk sequence.
pub const COMBINED: [Fault; 3] = [
    Fault::SkippedItems,
    Fault::NameAndIdAccepted,
    Fault::DeleteWhileConnected,
];

/// One row of the selftest table.
pub struct Row {
    /// The faults planted (none: the clean emulator).
    pub faults: Vec<Fault>,
    /// The checks that failed, with the cases needed for their first deviation, the requests
    /// sent until its first failing case was seen (counted in the draw) and the length of its
    /// shrunk sequence.
    pub caught_by: Vec<(String, u32, u64, usize)>,
    /// The distinct failing deviations the run reported, each with its shortest reproducer's
    /// length in steps.
    pub deviations: Vec<(String, usize)>,
    /// The failure summary of each check that failed.
    pub summaries: Vec<(String, String)>,
    /// Whether the row is as it should be (for a single fault or none; the combined row is
    /// judged against the single rows by [`combined_ok`]).
    pub ok: bool,
    /// How long the row took.
    pub elapsed: std::time::Duration,
}

/// Runs `which` checks against the emulator with `faults` planted (none: the clean emulator),
/// each reporting at most `cap` distinct deviations (None: the default). The clean row plays
/// fixture entries with real XKS proxies as `ckscheck run` does; a fault row simulates them,
/// since the bug it proves caught is the emulator's, not a proxy's.
pub fn row(
    faults: &[Fault],
    cases: u32,
    seed: u64,
    which: impl Fn(&str) -> bool,
    cap: Option<usize>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Row, String> {
    let started = std::time::Instant::now();
    let options = RunOptions {
        cases: Some(cases),
        seed: Some(seed),
        max_deviations: cap,
        faults: faults.to_vec(),
        simulated_proxies: !faults.is_empty(),
        quota: 10,
        transition_timeout: std::time::Duration::from_secs(10),
        ..RunOptions::default()
    };
    let prepared = prepare(&options, runtime)?;
    let suite = &prepared.suite;
    let reports: Vec<CheckReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = checks()
            .into_iter()
            .filter(|check| which(check.name))
            .map(|check| {
                scope.spawn(move || {
                    let mut report = suite.run_check(&check);
                    suite.policy.resolve(&mut report);
                    report
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a check panicked"))
            .collect()
    });
    let caught_by: Vec<(String, u32, u64, usize)> = reports
        .iter()
        .filter(|r| r.status() == crate::report::Status::Failed)
        .map(|r| {
            let first = r.failures.first();
            (
                r.name.clone(),
                first.map_or(0, |f| f.cases_needed),
                first.map_or(0, |f| f.requests_needed),
                first.map_or(0, |f| f.steps.len()),
            )
        })
        .collect();
    let mut deviations: Vec<(String, usize)> = Vec::new();
    for r in &reports {
        for d in r.failing() {
            let steps = d
                .failure
                .and_then(|i| r.failures.get(i))
                .map_or(0, |f| f.steps.len());
            match deviations.iter_mut().find(|(id, _)| *id == d.id) {
                Some((_, shortest)) => *shortest = (*shortest).min(steps),
                None => deviations.push((d.id.clone(), steps)),
            }
        }
    }
    deviations.sort();
    let ok = match faults {
        [] => caught_by.is_empty(),
        [f] if f.warning_only() => caught_by.is_empty(),
        [f] => caught_by
            .iter()
            .any(|(check, _, _, _)| meant_to_catch(*f).contains(&check.as_str())),
        _ => !deviations.is_empty(),
    };
    let summaries = reports
        .iter()
        .filter(|r| r.status() == crate::report::Status::Failed)
        .map(|r| {
            let lines: Vec<String> = r.failures.iter().map(|f| f.summary.clone()).collect();
            (r.name.clone(), lines.join("\n"))
        })
        .collect();
    Ok(Row {
        faults: faults.to_vec(),
        caught_by,
        deviations,
        summaries,
        ok,
        elapsed: started.elapsed(),
    })
}

/// Whether the combined row is as it should be, given the rows of its faults alone: every
/// deviation it reports is one a single fault causes (at most the deviations its faults cause),
/// each fault still shows at least one of its own, and each has a shrunk sequence.
pub fn combined_ok(combined: &Row, singles: &[&Row]) -> Result<(), String> {
    let own = |r: &Row| -> Vec<String> { r.deviations.iter().map(|(id, _)| id.clone()).collect() };
    let all: Vec<String> = singles.iter().flat_map(|r| own(r)).collect();
    let extra: Vec<&String> = combined
        .deviations
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !all.contains(id))
        .collect();
    if !extra.is_empty() {
        return Err(format!("deviations no single fault causes: {extra:?}"));
    }
    for single in singles {
        let mine = own(single);
        if !combined.deviations.iter().any(|(id, _)| mine.contains(id)) {
            let names: Vec<&str> = single.faults.iter().map(|f| f.name()).collect();
            return Err(format!("no deviation of {} was reported", names.join("+")));
        }
    }
    if let Some((id, _)) = combined.deviations.iter().find(|(_, steps)| *steps == 0) {
        return Err(format!("{id} has no shrunk sequence"));
    }
    Ok(())
}

/// Prints the selftest table row by row; exit code 0 when every row is as it should be, else 1.
pub fn selftest(
    cases: u32,
    seed: Option<u64>,
    filter: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, String> {
    if cases == 0 {
        return Err("--cases must be at least 1: a selftest of 0 cases checks nothing".into());
    }
    if let Some(s) = filter {
        let kms = Fault::ALL.iter().map(|f| f.name().to_string());
        let combined = std::iter::once(COMBINED.map(|f| f.name()).join("+"));
        let xks = crate::proxy::ProxyFault::ALL
            .iter()
            .map(|f| format!("xks:{f}"));
        let names: Vec<String> = kms.chain(combined).chain(xks).collect();
        if !names.iter().any(|n| n.contains(s)) {
            return Err(format!(
                "--filter {s:?} matches no planted fault, so the selftest would check nothing; \
                 the faults are: {}",
                names.join(", ")
            ));
        }
    }
    let seed = seed.unwrap_or_else(rand::random);
    println!("ckscheck selftest: seed {seed}, {cases} cases per check");
    let mut plan: Vec<Vec<Fault>> = vec![Vec::new()];
    plan.extend(
        Fault::ALL
            .into_iter()
            .filter(|f| filter.is_none_or(|s| f.name().contains(s)))
            .map(|f| vec![f]),
    );
    let combined_name = COMBINED.map(|f| f.name()).join("+");
    if filter.is_none_or(|s| combined_name.contains(s)) {
        plan.push(COMBINED.to_vec());
    }
    println!();
    println!(
        "| fault | meant for | caught by | cases needed | requests to first failure | shrunk steps (XKS: requests) | deviations | seconds | |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut wrong = Vec::new();
    let total = plan.len();
    let mut done: Vec<Row> = Vec::new();
    for faults in plan {
        let mut row = row(&faults, cases, seed, |_| true, None, runtime)?;
        if faults.len() > 1 {
            // Judged against each fault alone (run now if the filter left them out).
            let mut singles = Vec::new();
            for f in &faults {
                match done.iter().position(|r| r.faults == [*f]) {
                    Some(i) => singles.push(i),
                    None => {
                        done.push(self::row(&[*f], cases, seed, |_| true, None, runtime)?);
                        singles.push(done.len() - 1);
                    }
                }
            }
            let singles: Vec<&Row> = singles.iter().map(|&i| &done[i]).collect();
            if let Err(why) = combined_ok(&row, &singles) {
                row.ok = false;
                row.summaries.push(("combined".into(), why));
            }
        }
        let name = match faults.as_slice() {
            [] => "(none: clean emulator)".to_string(),
            fs => fs.iter().map(|f| f.name()).collect::<Vec<_>>().join("+"),
        };
        let meant = match faults.as_slice() {
            [] => "-".to_string(),
            [f] => match meant_to_catch(*f) {
                [] => "- (warning)".to_string(),
                checks => checks.join(" or "),
            },
            _ => "one deviation each, with its own sequence".to_string(),
        };
        let verdict = if row.ok { "ok" } else { "WRONG" };
        let seconds = format!("{:.1}", row.elapsed.as_secs_f64());
        let count = row.deviations.len();
        if row.caught_by.is_empty() {
            let expected = match faults.as_slice() {
                [] => "nothing (as it should)",
                [f] if f.warning_only() => "nothing (warning only, as it should)",
                _ => "NOTHING",
            };
            println!("| {name} | {meant} | {expected} | | | | {count} | {seconds} | {verdict} |");
        }
        for (check, needed, requests, steps) in &row.caught_by {
            println!(
                "| {name} | {meant} | {check} | {needed} | {requests} | {steps} | {count} | {seconds} | {verdict} |"
            );
        }
        if faults.len() > 1 || !row.ok {
            for (id, steps) in &row.deviations {
                println!("|   | | deviation: {id} | | | {steps} | | | |");
            }
        }
        if !row.ok {
            wrong.push((name, row.summaries.clone()));
        }
        done.push(row);
    }
    let mut wrong: Vec<(String, Vec<(String, String)>)> = wrong;
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
    use crate::proxy::ProxyFault;
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
            println!("| {name} | {meant} | {expected} | | | | | {seconds} | {verdict} |");
        }
        for (check, needed, exchanges) in &row.caught_by {
            println!(
                "| {name} | {meant} | {check} | {needed} | | {exchanges} | | {seconds} | {verdict} |"
            );
        }
        if !row.ok {
            wrong.push((name, row.summaries));
        }
    }
    Ok((plan.len(), wrong))
}
