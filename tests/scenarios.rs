//! The scenario corpus against the embedded emulator, held to the insta snapshots in
//! `snapshots/` (a libtest-mimic harness: `cargo test --test scenarios`). One trial per
//! scenario; each runs on a fresh emulator and asserts with insta inside its async task, with
//! the snapshot named after the scenario. An intended change: `cargo insta review`.
//!
//! The same corpus again (`shared-values::NAME`) with `tests/fixtures/shared-values.toml`,
//! whose backends share values as real accounts' do: a conformant emulator must give the
//! committed snapshots byte for byte, and the fields check must find no secret, with them too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ckscheck::oracle::fields::fields;
use ckscheck::scenario::{Scenario, Snapshots, builtin};
use ckscheck::suite::Suite;
use ckscheck::suite::run::{RunOptions, prepare};
use ckscheck::suite::scenarios::{Playing, trial_name};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    ckscheck::runner::install_crypto_provider();
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("the tokio runtime builds"),
    );
    let suite = prepare(&RunOptions::default(), &runtime)
        .expect("the embedded target prepares")
        .suite;
    let shared = prepare(
        &RunOptions {
            fixtures: Some(PathBuf::from(SHARED_VALUES)),
            ..RunOptions::default()
        },
        &runtime,
    )
    .expect("the embedded target prepares with the shared-value fixtures")
    .suite;
    let shared_trials = builtin().into_iter().map(|scenario| {
        let shared = shared.clone();
        Trial::test(format!("shared-values::{}", scenario.name), move || {
            with_shared_values(&shared, &scenario)
        })
    });
    let trials = builtin()
        .into_iter()
        .map(|scenario| {
            let (suite, runtime) = (suite.clone(), runtime.clone());
            Trial::test(trial_name(&scenario), move || {
                let played = match suite.play_scenario(&scenario) {
                    Playing::Played(p) => p,
                    Playing::NotRunnable(why) | Playing::NoTarget(why) => {
                        return Err(Failed::from(why));
                    }
                };
                if let Some((id, why)) = played.leftovers.first() {
                    return Err(format!("store {id} was left behind: {why}").into());
                }
                let mut settings = played.normaliser.settings(&scenario.purpose);
                settings.set_snapshot_path("../snapshots");
                let name = scenario.name.clone();
                let task = runtime.spawn(settings.bind_async(async move {
                    insta::assert_yaml_snapshot!(name, played.transcript);
                }));
                runtime.block_on(task).map_err(|e| {
                    let message = e
                        .try_into_panic()
                        .ok()
                        .and_then(|p| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "the snapshot assertion failed".into());
                    Failed::from(message)
                })
            })
        })
        .chain(shared_trials)
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Fixtures whose backends share values (paths, access key IDs, anchors, passwords).
const SHARED_VALUES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/shared-values.toml"
);

/// Plays `scenario` with the shared-value fixtures: the committed snapshot, and no secret found.
fn with_shared_values(suite: &Suite, scenario: &Scenario) -> Result<(), Failed> {
    let played = match suite.play_scenario(scenario) {
        Playing::Played(p) => p,
        Playing::NotRunnable(why) | Playing::NoTarget(why) => return Err(Failed::from(why)),
    };
    let expected = Snapshots::Builtin
        .expected(&scenario.name)?
        .ok_or("no committed snapshot")?;
    if played.text.trim_end() != expected {
        return Err(format!(
            "differs from the committed snapshot:\n--- played ---\n{}\n--- committed ---\n{expected}",
            played.text
        )
        .into());
    }
    let leaks: Vec<String> = fields(&suite.oracle_context(), &played.history)
        .findings
        .iter()
        .filter(|f| f.rule == "fields/no-secret")
        .map(|f| f.message.clone())
        .collect();
    if !leaks.is_empty() {
        return Err(format!("secrets found: {leaks:?}").into());
    }
    Ok(())
}
