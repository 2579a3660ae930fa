//! `ckscheck report merge`: joins the JSON reports of the shards of one run (`--partition`)
//! into one report: trials concatenated in the order of the inputs, deviations de-duplicated by
//! signature. Inputs that cannot be one run (different ckscheck versions, seeds, endpoints,
//! planted faults or strictness, or a trial in two of them) are refused.

use std::path::PathBuf;

use super::json::{ReadReport, read_report};
use super::{RunReport, Status};
use crate::deviation::{Catalogue, Deviation};
use crate::suite::partition::Partition;

/// What to merge and which reports to write.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// The shards' JSON reports (`ckscheck run --json`, `ckscheck xks run --json`).
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged JSON report.
    pub json: Option<PathBuf>,
    /// Where to write the merged JUnit XML report.
    pub junit: Option<PathBuf>,
    /// Where to write the merged Markdown parity matrix.
    pub matrix: Option<PathBuf>,
    /// Where to write the merged HTML report.
    pub html: Option<PathBuf>,
}

/// Reads, checks and merges the inputs, prints a summary and the catalogue, writes the reports;
/// the exit code: 1 when a shard failed, 0 otherwise (Err: inconsistent or unreadable inputs,
/// exit 2).
pub fn merge_command(options: &MergeOptions) -> Result<u8, String> {
    if options.inputs.is_empty() {
        return Err("report merge needs at least one JSON report".into());
    }
    let mut shards = Vec::with_capacity(options.inputs.len());
    for path in &options.inputs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let read = read_report(&text).map_err(|e| {
            format!(
                "{} is not a ckscheck JSON report (`ckscheck run --json`): {e}",
                path.display()
            )
        })?;
        shards.push((path.display().to_string(), read));
    }
    if let Some(gap) = missing_shards(&shards) {
        eprintln!("ckscheck: warning: {gap}");
    }
    let merged = merge(shards)?;
    let t = merged.totals();
    println!(
        "merged {} report(s): {} trials ({} passed, {} failed, {} ignored), {} deviation(s)",
        options.inputs.len(),
        t.checks,
        t.passed,
        t.failed,
        t.ignored,
        merged.catalogue.deviations.len()
    );
    print!("{}", super::coverage::run_coverage_text(&merged));
    print!("{}", super::catalogue::catalogue_text(&merged, false));
    crate::suite::run::write_report_files(
        options.junit.as_deref(),
        options.json.as_deref(),
        options.matrix.as_deref(),
        &merged,
    )?;
    if let Some(path) = &options.html {
        super::html::write_html(path, &merged, &super::html::HtmlContext::now())?;
    }
    Ok(u8::from(failed(&merged)))
}

/// Whether a merged run fails: a failing deviation, or a trial that failed.
pub fn failed(report: &RunReport) -> bool {
    report.catalogue.fails(false) || report.checks.iter().any(|c| c.status() == Status::Failed)
}

/// Merges shard reports, each named by its file: one run, or Err naming the files that
/// disagree (version, seed, endpoint, faults, strictness) or hold the same trial.
pub fn merge(shards: Vec<(String, ReadReport)>) -> Result<RunReport, String> {
    let Some((first_file, first)) = shards.first() else {
        return Err("no report to merge".into());
    };
    let (first_file, first_version) = (first_file.clone(), first.version.clone());
    let mut merged = RunReport {
        checks: Vec::new(),
        catalogue: Catalogue::default(),
        caveats: Vec::new(),
        partition: None,
        ..first.report.clone()
    };
    let same_place = endpoint_without_region(&first.report);
    let mut owner: Vec<(String, String)> = Vec::new();
    let mut regions: Vec<(String, String)> = Vec::new();
    let mut catalogues: Vec<Catalogue> = Vec::new();
    let mut partitions: Vec<String> = Vec::new();
    for (file, shard) in shards {
        let differs = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            format!(
                "{first_file} and {file} are not shards of one run: {what} {a} and {b} differ \
                 (merge the reports of one ckscheck version, seed, endpoint and set of flags)"
            )
        };
        let r = shard.report;
        if shard.version != first_version {
            let (a, b) = (version_word(&first_version), version_word(&shard.version));
            return Err(differs("the ckscheck versions", &a, &b));
        }
        if r.seed != merged.seed {
            return Err(differs("the seeds", &merged.seed, &r.seed));
        }
        if endpoint_without_region(&r) != same_place {
            return Err(differs("the endpoints", &merged.endpoint, &r.endpoint));
        }
        if r.faults != merged.faults {
            let (a, b) = (merged.faults.join(","), r.faults.join(","));
            return Err(differs("the planted faults", &a, &b));
        }
        if r.strict != merged.strict {
            return Err(differs("--strict", &merged.strict, &r.strict));
        }
        for check in r.checks {
            if let Some((_, other)) = owner.iter().find(|(name, _)| *name == check.name) {
                return Err(format!(
                    "trial {} is in both {other} and {file}: each trial must come from one \
                     shard (were two reports of the same shard, or of different --partition \
                     schemes, given?)",
                    check.name
                ));
            }
            owner.push((check.name.clone(), file.clone()));
            merged.checks.push(check);
        }
        for caveat in r.caveats {
            if !merged.caveats.contains(&caveat) {
                merged.caveats.push(caveat);
            }
        }
        if !regions.iter().any(|(region, _)| *region == r.region) {
            regions.push((r.region.clone(), file.clone()));
        }
        partitions.extend(r.partition);
        catalogues.push(r.catalogue);
    }
    if regions.len() > 1 {
        let listed: Vec<String> = regions.iter().map(|(r, f)| format!("{r} ({f})")).collect();
        merged.caveats.push(format!(
            "the shards ran in regions {}: each failure's replay command is its own, but the \
             AWS CLI and curl lines name region {}",
            listed.join(", "),
            merged.region
        ));
    }
    merged.partition = (!complete(&partitions)).then(|| partitions.join("+"));
    merged.catalogue = merge_catalogues(catalogues, &merged);
    Ok(merged)
}

/// The report's endpoint with its own region name taken out: shards that ran in regions of
/// their own against one service (`https://kms.REGION.amazonaws.com`) are one endpoint.
fn endpoint_without_region(report: &RunReport) -> String {
    if report.region.is_empty() {
        return report.endpoint.clone();
    }
    report.endpoint.replace(&report.region, "{region}")
}

fn version_word(version: &str) -> String {
    if version.is_empty() {
        "(none: an older report)".into()
    } else {
        version.to_string()
    }
}

/// Whether `partitions` are every shard of one scheme once (or there are none: whole runs).
fn complete(partitions: &[String]) -> bool {
    let parsed: Vec<Partition> = partitions
        .iter()
        .filter_map(|p| Partition::parse(p).ok())
        .collect();
    let Some(first) = parsed.first() else {
        return partitions.is_empty();
    };
    parsed.len() == partitions.len()
        && parsed.len() as u64 == first.total
        && (1..=first.total).all(|m| {
            parsed
                .iter()
                .filter(|p| p.kind == first.kind && p.total == first.total && p.shard == m)
                .count()
                == 1
        })
}

/// A warning when the inputs are shards but not all of them (the merged report then lacks
/// trials), naming what is missing.
fn missing_shards(shards: &[(String, ReadReport)]) -> Option<String> {
    let partitions: Vec<String> = shards
        .iter()
        .filter_map(|(_, r)| r.report.partition.clone())
        .collect();
    if partitions.is_empty() || complete(&partitions) {
        return None;
    }
    let first = Partition::parse(&partitions[0]).ok()?;
    let missing: Vec<String> = (1..=first.total)
        .map(|shard| Partition { shard, ..first }.to_string())
        .filter(|p| !partitions.contains(p))
        .collect();
    Some(format!(
        "the reports are shards {} but not all of one run{}: the merged report lacks their trials",
        partitions.join(", "),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (missing: {})", missing.join(", "))
        }
    ))
}

/// One entry per signature over the shards' catalogues: seen in every shard that saw it (in the
/// merged trial order), its status the most severe one (a baseline entry one shard calls fixed
/// and another saw stays known), its shortest reproducer, the reason the first that has one.
fn merge_catalogues(catalogues: Vec<Catalogue>, merged: &RunReport) -> Catalogue {
    let baseline = catalogues.iter().any(|c| c.baseline);
    let mut out: Vec<Deviation> = Vec::new();
    for d in catalogues.into_iter().flat_map(|c| c.deviations) {
        let Some(entry) = out.iter_mut().find(|e| e.id == d.id) else {
            out.push(d);
            continue;
        };
        entry.status = entry.status.min(d.status);
        for trial in d.seen_in {
            if !entry.seen_in.contains(&trial) {
                entry.seen_in.push(trial);
            }
        }
        for f in d.folded {
            if !entry.folded.contains(&f) {
                entry.folded.push(f);
            }
        }
        if entry.reason.is_none() {
            entry.reason = d.reason;
        }
        let shorter = match (&entry.reproducer, &d.reproducer) {
            (None, Some(_)) => true,
            (Some((_, old)), Some((_, new))) => new.step_count() < old.step_count(),
            _ => false,
        };
        if shorter {
            entry.summary = d.summary;
            entry.reproducer = d.reproducer;
        }
    }
    let position = |trial: &String| merged.checks.iter().position(|c| c.name == *trial);
    for entry in &mut out {
        entry.seen_in.sort_by_key(position);
    }
    out.sort_by(|a, b| (a.status, &a.id).cmp(&(b.status, &b.id)));
    Catalogue {
        deviations: out,
        baseline,
    }
}
