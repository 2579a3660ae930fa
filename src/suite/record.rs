//! `ckscheck record`: plays the scenario corpus against a reference endpoint and writes each
//! normalised transcript as an insta snapshot file.

use std::path::Path;

use super::Suite;
use super::run::{
    ConfigError, RunOptions, clean_from_journal, install_cleanup_on_interrupt, prepare,
};
use super::scenarios::Playing;
use crate::scenario::{self, snapfile};

/// Records every scenario whose name contains `filter` into `out`; refuses to overwrite an
/// existing snapshot unless `force`. Returns the exit code: 0 when every scenario was
/// recorded, 1 when some could not be.
pub fn record(
    options: &RunOptions,
    out: &Path,
    force: bool,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, ConfigError> {
    let scenarios: Vec<_> = scenario::builtin()
        .into_iter()
        .filter(|s| options.filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    if scenarios.is_empty() {
        return Err(format!(
            "--filter {:?} matches no scenario, so nothing would be recorded (`ckscheck run \
             --list` names them)",
            options.filter.as_deref().unwrap_or_default()
        ));
    }
    let existing: Vec<String> = scenarios
        .iter()
        .map(|s| format!("{}.snap", s.name))
        .filter(|f| out.join(f).exists())
        .collect();
    if !existing.is_empty() && !force {
        return Err(format!(
            "{} already holds {} of these snapshots (e.g. {}); give --force to overwrite them",
            out.display(),
            existing.len(),
            existing[0]
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let prepared = prepare(options, runtime)?;
    let suite = prepared.suite;
    let cannot: Vec<String> = scenarios
        .iter()
        .filter_map(|s| {
            suite
                .scenario_runnable(s)
                .err()
                .map(|why| format!("  {}: {why}", s.name))
        })
        .collect();
    if cannot.len() == scenarios.len() {
        return Err(format!(
            "none of the {} scenarios selected can be recorded with these fixtures, so nothing \
             would be recorded:\n{}",
            scenarios.len(),
            cannot.join("\n")
        ));
    }
    if let Some(j) = &prepared.journal {
        install_cleanup_on_interrupt(runtime, suite.clone(), j.clone());
    }
    println!(
        "ckscheck record: {} scenarios from {} into {}",
        scenarios.len(),
        prepared.endpoint_label,
        out.display()
    );
    let mut skipped = Vec::new();
    for s in &scenarios {
        match record_one(&suite, s, out) {
            Ok(()) => println!("  recorded  {}", s.name),
            Err(why) => {
                println!("  not recorded  {}: {why}", s.name);
                skipped.push(s.name.clone());
            }
        }
    }
    if let Some(j) = &prepared.journal {
        runtime.block_on(clean_from_journal(&suite, j));
    }
    println!(
        "{} recorded, {} not recorded",
        scenarios.len() - skipped.len(),
        skipped.len()
    );
    Ok(if skipped.is_empty() { 0 } else { 1 })
}

/// Plays one scenario and writes its snapshot, or says why nothing was written.
fn record_one(suite: &Suite, s: &scenario::Scenario, out: &Path) -> Result<(), String> {
    let played = match suite.play_scenario(s) {
        Playing::Played(p) => p,
        Playing::NotRunnable(why) => return Err(format!("the fixtures cannot run it: {why}")),
        Playing::NoTarget(why) => return Err(format!("the endpoint could not be reached: {why}")),
    };
    if let Some(e) = played
        .transcript
        .steps
        .iter()
        .find(|e| e.no_answer.is_some())
    {
        return Err(format!(
            "{} got no answer ({}); a half transcript is not written",
            e.op,
            e.no_answer.as_deref().unwrap_or_default()
        ));
    }
    if let Some((id, why)) = played.leftovers.first() {
        eprintln!("ckscheck: left behind store {id}: {why}");
    }
    let path = out.join(format!("{}.snap", s.name));
    std::fs::write(&path, snapfile::file_text(&s.purpose, &played.text))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
