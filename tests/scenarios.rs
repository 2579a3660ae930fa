//! The scenario corpus against the embedded emulator, held to the insta snapshots in
//! `snapshots/` (a libtest-mimic harness: `cargo test --test scenarios`). One trial per
//! scenario; each runs on a fresh emulator and asserts with insta inside its async task, with
//! the snapshot named after the scenario. An intended change: `cargo insta review`.

use std::process::ExitCode;
use std::sync::Arc;

use ckscheck::scenario::builtin;
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
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
