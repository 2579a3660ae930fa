//! The baseline file: the deviations an endpoint is known to have (`--baseline`,
//! `--write-baseline`). TOML, one `[[deviation]]` table per deviation, keyed on its signature.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The only format this version reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// What the written file starts with.
const HEADER: &str = "\
# ckscheck baseline: the deviations this endpoint is known to have.
# `ckscheck run --baseline FILE` reports each as known and does not fail on it; a deviation not
# listed here fails the run. Say why each is accepted in `reason`; delete an entry once the
# endpoint no longer has it (the run reports it as fixed).
";

/// A baseline: known deviations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The file format's version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The known deviations, sorted by id.
    #[serde(default, rename = "deviation")]
    pub deviations: Vec<Entry>,
}

/// One known deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its signature (`OPERATION/RULE: KIND`).
    pub id: String,
    /// What it is, in one line (for people; not matched).
    #[serde(default)]
    pub summary: String,
    /// The checks and scenarios that saw it when the file was written: the entry counts as fixed
    /// only when one of them ran and did not see it.
    #[serde(default)]
    pub seen_in: Vec<String>,
    /// Why it is accepted (the user's words; kept when the file is written again).
    #[serde(default)]
    pub reason: String,
    /// The shortest sequence that showed it, as JSON (secrets as tokens): a property check
    /// that saw it replays it first, so a deviation that is gone is told from one that was not
    /// drawn this time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub steps: String,
}

impl Baseline {
    /// Reads and checks a baseline file; the error says where it broke (file, line, column).
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the baseline {}: {e}", path.display()))?;
        Baseline::parse(&text)
            .map_err(|e| format!("the baseline {} is invalid: {e}", path.display()))
    }

    /// Parses a baseline's text (see [`Baseline::load`]).
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let baseline: Baseline = toml::from_str(text).map_err(|e| e.to_string())?;
        if baseline.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not one this ckscheck reads (it reads {FORMAT_VERSION})",
                baseline.format_version
            ));
        }
        let mut ids = BTreeSet::new();
        for entry in &baseline.deviations {
            if entry.id.trim().is_empty() {
                return Err("a [[deviation]] has an empty id".into());
            }
            if !ids.insert(entry.id.as_str()) {
                return Err(format!("the id {:?} is listed twice", entry.id));
            }
        }
        Ok(baseline)
    }

    /// Whether `id` is a known deviation.
    pub fn contains(&self, id: &str) -> bool {
        self.deviations.iter().any(|e| e.id == id)
    }

    /// The entry for `id`, if any.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.deviations.iter().find(|e| e.id == id)
    }

    /// The file's text: a header comment, then the entries sorted by id.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.format_version = FORMAT_VERSION;
        sorted.deviations.sort_by(|a, b| a.id.cmp(&b.id));
        let body = toml::to_string(&sorted).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Writes the file (see [`Baseline::to_toml`]).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.to_toml())
            .map_err(|e| format!("cannot write the baseline {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, reason: &str) -> Entry {
        Entry {
            id: id.into(),
            summary: "what it is".into(),
            seen_in: vec!["exclusion".into(), "snapshot::describe-unknown-name".into()],
            reason: reason.into(),
            steps: String::new(),
        }
    }

    #[test]
    fn a_written_baseline_reads_back_sorted_with_its_reasons() {
        let b = Baseline {
            format_version: FORMAT_VERSION,
            deviations: vec![
                entry(
                    "UpdateCustomKeyStore/answer: expected 200, got 500 \"quoted\"",
                    "",
                ),
                entry(
                    "DescribeCustomKeyStores/exclusion/not-found: expected X, got 200 with 0 stores",
                    "upstream bug 12",
                ),
            ],
        };
        let text = b.to_toml();
        assert!(text.starts_with("# ckscheck baseline"), "{text}");
        let back = Baseline::parse(&text).unwrap();
        assert_eq!(back.deviations.len(), 2);
        assert!(
            back.deviations[0]
                .id
                .starts_with("DescribeCustomKeyStores/")
        );
        assert_eq!(back.deviations[0].reason, "upstream bug 12");
        assert!(back.contains("UpdateCustomKeyStore/answer: expected 200, got 500 \"quoted\""));
        assert!(!back.contains("UpdateCustomKeyStore/answer"));
    }

    #[test]
    fn a_malformed_baseline_says_the_line_it_broke_on() {
        let text = "format_version = 1\n\n[[deviation]]\nid = \"a\"\nreason = \"x\n";
        let e = Baseline::parse(text).unwrap_err();
        assert!(e.contains("line 5"), "{e}");
        let e = Baseline::parse("format_version = 1\n[[deviation]]\nsummary = \"no id\"\n")
            .unwrap_err();
        assert!(e.contains("id"), "{e}");
        let e = Baseline::parse("format_version = 7\n").unwrap_err();
        assert!(e.contains("format_version 7"), "{e}");
        let twice = "format_version = 1\n[[deviation]]\nid = \"a\"\n[[deviation]]\nid = \"a\"\n";
        assert!(Baseline::parse(twice).unwrap_err().contains("twice"));
        let unknown = "format_version = 1\n[[deviation]]\nid = \"a\"\nreasn = \"typo\"\n";
        let e = Baseline::parse(unknown).unwrap_err();
        assert!(e.contains("reasn") && e.contains("line 4"), "{e}");
    }
}
