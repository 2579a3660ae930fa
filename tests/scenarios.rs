//! The scenario corpus against the embedded emulator, held to the insta snapshots in
//! `snapshots/` (a libtest-mimic harness: `cargo test --test scenarios`). One trial per
//! scenario; each runs on a fresh emulator and asserts with insta inside its async task, with
//! the snapshot named after the scenario. An intended change: `cargo insta review`.
//!
//! The same corpus again (`shared-values::NAME`) with `tests/fixtures/shared-values.toml`,
//! whose backends share values as real accounts' do: a conformant emulator must give the
//! committed snapshots byte for byte, and the fields check must find no secret, with them too.
//!
//! `scoped-inference`: an inferred expectation covers only what it names; a difference
//! elsewhere in the same scenario fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ckscheck::oracle::Severity;
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
    let scoped = suite.clone();
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
        .chain(std::iter::once(Trial::test(
            "scoped-inference::update-rename-xks-vpc",
            move || scoped_inference(&scoped),
        )))
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
    let leaks: Vec<String> = fields(&suite.oracle_context(&suite.regions.home), &played.history)
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

/// `update-rename-xks-vpc` infers only that a VPC store lists no VpcEndpointServiceOwner: held
/// to a snapshot that differs there, it is unsettled; to one that differs in AccessKeyId, it
/// fails.
fn scoped_inference(suite: &Suite) -> Result<(), Failed> {
    let name = "update-rename-xks-vpc";
    let scenario = builtin()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or("no such scenario")?;
    let committed_path = format!("{}/snapshots/{name}.snap", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(committed_path).map_err(|e| e.to_string())?;
    let key = "            AccessKeyId: \"[xks:vpc.access-key-id]\"\n";
    let service = "            VpcEndpointServiceName: \"[xks:vpc.vpc-service]\"\n";
    let owner = format!("{service}            VpcEndpointServiceOwner: \"[account]\"\n");
    let dir = std::env::temp_dir().join(format!("ckscheck-scoped-{}", std::process::id()));
    let judge = |snapshot: String| -> Result<Vec<(String, Severity)>, Failed> {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(format!("{name}.snap")), snapshot).map_err(|e| e.to_string())?;
        let report = suite.run_scenario(&scenario, Snapshots::Dir(&dir));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(report
            .verdict
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.severity))
            .collect())
    };
    if !committed.contains(key) || !committed.contains(service) {
        return Err("the committed snapshot lists no AccessKeyId or service name".into());
    }
    // The endpoint lists an AccessKeyId the snapshot does not have: outside the inference.
    let outside = judge(committed.replace(key, ""))?;
    let want = (
        "fields/XksProxyConfiguration.AccessKeyId".to_string(),
        Severity::Failure,
    );
    if outside != [want] {
        return Err(format!("outside the inference: {outside:?}").into());
    }
    // The snapshot expects a VpcEndpointServiceOwner the endpoint does not list: inside it.
    let inside = judge(committed.replace(service, &owner))?;
    let want = (
        "fields/XksProxyConfiguration.VpcEndpointServiceOwner".to_string(),
        Severity::Unsettled,
    );
    if inside != [want] {
        return Err(format!("inside the inference: {inside:?}").into());
    }
    Ok(())
}
