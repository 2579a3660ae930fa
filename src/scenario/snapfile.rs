//! Snapshot files: reading the expected text of a scenario and writing one as insta does, so
//! a recorded file is byte for byte what `cargo insta accept` would store.

use std::path::Path;

use insta::_macro_support::{SerializationFormat, serialize_value};
use serde::Serialize;

use super::corpus::SNAPSHOT_FILES;
use super::normalise::SOURCE;

/// Where snapshots are read from.
#[derive(Debug, Clone, Copy)]
pub enum Snapshots<'a> {
    /// The snapshots compiled into ckscheck (the repository's `snapshots/`).
    Builtin,
    /// A folder of `<scenario>.snap` files (e.g. one `ckscheck record` wrote).
    Dir(&'a Path),
}

impl Snapshots<'_> {
    /// The expected (normalised) text of scenario `name`; None when there is no snapshot.
    pub fn expected(self, name: &str) -> Result<Option<String>, String> {
        let file = format!("{name}.snap");
        let text = match self {
            Snapshots::Builtin => SNAPSHOT_FILES
                .iter()
                .find(|(f, _)| *f == file)
                .map(|(_, t)| t.to_string()),
            Snapshots::Dir(dir) => match std::fs::read_to_string(dir.join(&file)) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(format!("cannot read {}: {e}", dir.join(&file).display())),
            },
        };
        Ok(text.map(|t| contents(&t)))
    }
}

/// The contents of a snapshot file as insta compares them: what follows the metadata block,
/// lines joined with `\n`, trailing whitespace dropped.
pub fn contents(file: &str) -> String {
    let mut lines = file.lines();
    if lines.next().map(str::trim_end) == Some("---") {
        for line in lines.by_ref() {
            if line.trim_end() == "---" {
                break;
            }
        }
    } else {
        lines = file.lines();
    }
    lines.collect::<Vec<_>>().join("\n").trim_end().to_string()
}

#[derive(Serialize)]
struct MetaData<'a> {
    source: &'a str,
    description: &'a str,
}

/// The whole text of a snapshot file holding `contents`, with insta's metadata block.
pub fn file_text(description: &str, contents: &str) -> String {
    let meta = serialize_value(
        &MetaData {
            source: SOURCE,
            description,
        },
        SerializationFormat::Yaml,
    );
    format!("---\n{}\n---\n{}\n", meta.trim_end(), contents.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of the last listed entry in a snapshot, with their values.
    fn last_entry(name: &str) -> Vec<(String, String)> {
        let text = Snapshots::Builtin
            .expected(name)
            .unwrap()
            .expect("a snapshot");
        let start = text.rfind("      CustomKeyStores:").expect("a listing");
        let mut fields = Vec::new();
        for line in text[start..].lines().skip(1) {
            let Some(field) = line
                .strip_prefix("        - ")
                .or(line.strip_prefix("          "))
            else {
                break;
            };
            if let Some((k, v)) = field.split_once(": ") {
                fields.push((k.to_string(), v.to_string()));
            }
        }
        fields
    }

    #[test]
    fn the_documented_describe_examples_show_the_documented_field_sets() {
        // KMS developer guide, "Viewing a custom key store": the two example outputs. Today's
        // API adds CustomKeyStoreType, which that page predates.
        let documented = [
            "CloudHsmClusterId",
            "ConnectionState",
            "CreationDate",
            "CustomKeyStoreId",
            "CustomKeyStoreName",
            "TrustAnchorCertificate",
        ];
        for (name, state, code) in [
            ("docs-describe-connected-cloudhsm", "CONNECTED", None),
            (
                "docs-describe-failed-invalid-credentials",
                "FAILED",
                Some("INVALID_CREDENTIALS"),
            ),
        ] {
            let entry = last_entry(name);
            let keys: std::collections::BTreeSet<&str> =
                entry.iter().map(|(k, _)| k.as_str()).collect();
            let mut want: std::collections::BTreeSet<&str> = documented.into_iter().collect();
            want.insert("CustomKeyStoreType");
            if code.is_some() {
                want.insert("ConnectionErrorCode");
            }
            assert_eq!(keys, want, "{name}");
            let value = |k: &str| entry.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
            assert_eq!(value("ConnectionState"), Some(state), "{name}");
            assert_eq!(value("ConnectionErrorCode"), code, "{name}");
            assert_eq!(value("CustomKeyStoreType"), Some("AWS_CLOUDHSM"), "{name}");
        }
    }

    #[test]
    fn no_snapshot_holds_a_secret() {
        let f = crate::model::Fixtures::builtin();
        let mut secrets: Vec<String> = f
            .clusters
            .iter()
            .map(|c| c.kmsuser_password.clone())
            .chain(f.xks_proxies.iter().map(|p| p.secret_access_key.clone()))
            .collect();
        // And the made-up ones the scenarios send.
        fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
            if let Some(map) = v.as_object() {
                for (k, x) in map {
                    match x.as_str() {
                        Some(s) if k == "KeyStorePassword" || k == "RawSecretAccessKey" => {
                            out.push(s.to_string())
                        }
                        _ => collect(x, out),
                    }
                }
            }
        }
        for s in crate::scenario::builtin() {
            for step in &s.steps {
                collect(&step.body_json(), &mut secrets);
            }
        }
        secrets.retain(|s| !s.starts_with('$') && s.chars().count() >= 6);
        assert!(
            secrets.iter().any(|s| s == "wrong-password-1"),
            "{secrets:?}"
        );
        assert!(SNAPSHOT_FILES.len() >= 40);
        for (file, text) in SNAPSHOT_FILES {
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{file} holds a secret");
            }
        }
    }

    #[test]
    fn contents_skip_the_metadata_and_trailing_space() {
        let file = "---\nsource: tests/scenarios.rs\ndescription: d\n---\nsteps:\n  - op: X\n\n";
        assert_eq!(contents(file), "steps:\n  - op: X");
        assert_eq!(contents("steps: []\n"), "steps: []");
    }

    #[test]
    fn file_text_round_trips_through_insta_and_through_contents() {
        let text = file_text("Create: a store: \"quoted\"", "steps:\n  - op: X");
        assert_eq!(contents(&text), "steps:\n  - op: X");
        let dir = std::env::temp_dir().join(format!("ckscheck-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.snap");
        std::fs::write(&path, &text).unwrap();
        let snap = insta::Snapshot::from_file(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            snap.metadata().description(),
            Some("Create: a store: \"quoted\"")
        );
        assert_eq!(snap.metadata().source(), Some(SOURCE));
        assert_eq!(snap.as_text().unwrap().to_string(), "steps:\n  - op: X");
    }
}
