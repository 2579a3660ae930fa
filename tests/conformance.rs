//! The conformance suite against the embedded emulator, and the planted-fault proof that the
//! checks catch what they are for (a libtest-mimic harness: `cargo test --test conformance`).
//!
//! - `clean::CHECK`: the check passes against a correct emulator.
//! - `fault::NAME`: with the fault planted, a check meant to catch it fails (a warning-only
//!   fault must fail no check at all).
//! - `lanes::FAULT-CHECK-as-one-at-a-time`: with cases run several at once, a seed finds the
//!   same deviations, each from the same first failing case and shrunk to the same length, as
//!   with one case at a time.
//! - `combined::FAULT+FAULT+FAULT`: with three faults planted at once, every deviation is one a
//!   single fault causes, each fault still shows one of its own, each with its own sequence.
//!
//! Cases per check: `CKSCHECK_TEST_CASES` (default 128); seed: `CKSCHECK_TEST_SEED` (default
//! fixed, so CI is deterministic; set it to explore other cases).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ckscheck::emulator::Fault;
use ckscheck::suite::checks;
use ckscheck::suite::run::{EMBEDDED_LANES, RunOptions, prepare};
use ckscheck::suite::selftest::{COMBINED, Row, combined_ok, meant_to_catch, row};
use libtest_mimic::{Arguments, Failed, Trial};

const DEFAULT_CASES: u32 = 128;
const DEFAULT_SEED: u64 = 20261125;

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// What went wrong in a row, for the trial's failure message.
fn explain(row: &Row, wanted: &str) -> String {
    let mut text = format!("{wanted}; caught by: ");
    if row.caught_by.is_empty() {
        text.push_str("nothing");
    }
    for (check, needed, requests, steps) in &row.caught_by {
        text.push_str(&format!(
            "\n  {check} (after {needed} cases and {requests} requests, shrunk to {steps} steps)"
        ));
    }
    for (id, steps) in &row.deviations {
        text.push_str(&format!("\n  deviation {id} ({steps} steps)"));
    }
    for (check, summary) in &row.summaries {
        text.push_str(&format!("\n{check}: {summary}"));
    }
    text
}

/// The check's deviations with `fault` planted and `lanes` cases at once: for each, its
/// signature, the number of the first failing case and the length of the shrunk sequence.
fn deviations(
    fault: Fault,
    check: &str,
    lanes: usize,
    cases: u32,
    seed: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<(String, u32, usize)>, Failed> {
    let options = RunOptions {
        cases: Some(cases),
        seed: Some(seed),
        faults: vec![fault],
        simulated_proxies: true,
        lanes: Some(lanes),
        transition_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let prepared = prepare(&options, runtime)?;
    let check = checks()
        .into_iter()
        .find(|c| c.name == check)
        .ok_or(format!("no check {check}"))?;
    let report = prepared.suite.run_check(&check);
    Ok(report
        .failures
        .iter()
        .map(|f| {
            let signature = f.signature.clone().unwrap_or_default();
            (signature, f.cases_needed, f.steps.len())
        })
        .collect())
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let cases = env_number("CKSCHECK_TEST_CASES", DEFAULT_CASES);
    let seed = env_number("CKSCHECK_TEST_SEED", DEFAULT_SEED);
    ckscheck::runner::install_crypto_provider();
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("the tokio runtime builds"),
    );
    let mut trials = Vec::new();
    for check in checks() {
        let runtime = runtime.clone();
        let name = check.name;
        trials.push(Trial::test(format!("clean::{name}"), move || {
            let row = row(&[], cases, seed, |c| c == name, None, &runtime).map_err(Failed::from)?;
            if row.ok {
                Ok(())
            } else {
                let wanted = format!("expected {name} to pass against a correct emulator");
                Err(explain(&row, &wanted).into())
            }
        }));
    }
    for fault in Fault::ALL {
        let runtime = runtime.clone();
        trials.push(Trial::test(format!("fault::{}", fault.name()), move || {
            let meant = meant_to_catch(fault);
            // A warning-only fault runs every check: none may fail. Catching it is all this
            // trial asks, so each check stops at its first deviation.
            let which = |c: &str| meant.is_empty() || meant.contains(&c);
            let row = row(&[fault], cases, seed, which, Some(1), &runtime).map_err(Failed::from)?;
            // Requests to the first failure are counted in the draw: every case up to it sent
            // at least one request.
            let uncounted = row
                .caught_by
                .iter()
                .find(|(_, cases, requests, _)| *requests < u64::from(*cases));
            if let Some((check, cases, requests, _)) = uncounted {
                let why =
                    format!("{check}: {requests} requests to the first failure over {cases} cases");
                Err(explain(&row, &why).into())
            } else if row.ok {
                Ok(())
            } else if meant.is_empty() {
                Err(explain(&row, "expected no check to fail (warning only)").into())
            } else {
                let wanted = format!("expected {} to fail", meant.join(" or "));
                Err(explain(&row, &wanted).into())
            }
        }));
    }
    // Faults that many cases of the check catch: several failing cases are in flight at once.
    for (fault, check) in [
        (Fault::WrongErrorType, "errors"),
        (Fault::DeleteWhileConnected, "states"),
    ] {
        let runtime = runtime.clone();
        let name = format!("lanes::{}-{check}-as-one-at-a-time", fault.name());
        trials.push(Trial::test(name, move || {
            let one = deviations(fault, check, 1, cases, seed, &runtime)?;
            let lanes = deviations(fault, check, EMBEDDED_LANES, cases, seed, &runtime)?;
            if one.is_empty() {
                Err(format!("{check} did not catch {}", fault.name()).into())
            } else if one == lanes {
                Ok(())
            } else {
                Err(format!(
                    "one lane: (deviation, first failing case, shrunk length) {one:#?}\n\
                     {EMBEDDED_LANES} lanes: {lanes:#?}"
                )
                .into())
            }
        }));
    }
    let name = COMBINED.map(|f| f.name()).join("+");
    let combined_runtime = runtime.clone();
    trials.push(Trial::test(format!("combined::{name}"), move || {
        let runtime = combined_runtime;
        // The checks meant for the three faults (every check would only take longer).
        let which = |c: &str| COMBINED.iter().any(|f| meant_to_catch(*f).contains(&c));
        let singles: Vec<Row> = COMBINED
            .iter()
            .map(|f| row(&[*f], cases, seed, which, None, &runtime))
            .collect::<Result<_, _>>()?;
        let combined = row(&COMBINED, cases, seed, which, None, &runtime)?;
        let singles_ref: Vec<&Row> = singles.iter().collect();
        combined_ok(&combined, &singles_ref)
            .map_err(|why| Failed::from(explain(&combined, &why)))?;
        if combined.deviations.len() < COMBINED.len() {
            return Err(explain(&combined, "expected a deviation per fault at least").into());
        }
        Ok(())
    }));
    libtest_mimic::run(&args, trials).exit_code()
}
