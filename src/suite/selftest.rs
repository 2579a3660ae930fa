//! `ckscheck selftest`: proof that the oracles work. The clean emulator must pass every check;
//! each planted fault must be caught by a check (warning-only faults must not fail any).

use super::checks;
use super::run::{RunOptions, prepare};
use crate::emulator::Fault;
use crate::report::CheckReport;

/// One row of the selftest table.
pub struct Row {
    /// The fault planted (None: the clean emulator).
    pub fault: Option<Fault>,
    /// The checks that failed, with cases needed and the shrunk sequence length.
    pub caught_by: Vec<(String, u32, usize)>,
    /// Whether the row is as it should be.
    pub ok: bool,
}

/// Runs every check against the clean emulator and against each fault; returns the rows.
pub fn rows(
    cases: u32,
    seed: u64,
    filter: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<Row>, String> {
    let mut plan: Vec<Option<Fault>> = vec![None];
    plan.extend(
        Fault::ALL
            .into_iter()
            .filter(|f| filter.is_none_or(|s| f.name().contains(s)))
            .map(Some),
    );
    let mut rows = Vec::new();
    for fault in plan {
        let options = RunOptions {
            cases: Some(cases),
            seed: Some(seed),
            faults: fault.into_iter().collect(),
            quota: 10,
            transition_timeout: std::time::Duration::from_secs(10),
            ..RunOptions::default()
        };
        let prepared = prepare(&options, runtime)?;
        let reports: Vec<CheckReport> = std::thread::scope(|scope| {
            let handles: Vec<_> = checks()
                .into_iter()
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
            Some(_) => !caught_by.is_empty(),
        };
        rows.push(Row {
            fault,
            caught_by,
            ok,
        });
    }
    Ok(rows)
}

/// Prints the selftest table; exit code 0 when every row is as it should be, else 1.
pub fn selftest(
    cases: u32,
    seed: Option<u64>,
    filter: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, String> {
    let seed = seed.unwrap_or_else(rand::random);
    println!("ckscheck selftest: seed {seed}, {cases} cases per check");
    let rows = rows(cases, seed, filter, runtime)?;
    println!();
    println!("| fault | caught by | cases needed | shrunk steps | |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        let name = row.fault.map_or("(none: clean emulator)", |f| f.name());
        let verdict = if row.ok { "ok" } else { "WRONG" };
        if row.caught_by.is_empty() {
            let expected = match row.fault {
                None => "nothing (as it should)",
                Some(f) if f.warning_only() => "nothing (warning only, as it should)",
                Some(_) => "NOTHING",
            };
            println!("| {name} | {expected} | | | {verdict} |");
        }
        for (check, needed, steps) in &row.caught_by {
            println!("| {name} | {check} | {needed} | {steps} | {verdict} |");
        }
    }
    let wrong = rows.iter().filter(|r| !r.ok).count();
    println!(
        "\n{} rows as expected, {wrong} wrong (seed {seed})",
        rows.len() - wrong
    );
    Ok(if wrong == 0 { 0 } else { 1 })
}
