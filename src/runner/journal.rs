//! The journal: every store the harness may have created, written to disk before the request
//! goes out, so `ckscheck cleanup` can remove leftovers after a crash.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// A Create is about to be sent for this name.
    Creating {
        /// Endpoint URL.
        endpoint: String,
        /// The store name sent.
        name: String,
    },
    /// The endpoint issued this ID for the name.
    Created {
        /// Endpoint URL.
        endpoint: String,
        /// The store name.
        name: String,
        /// The issued ID.
        id: String,
    },
    /// The store is gone (deleted by the harness, or found absent).
    Gone {
        /// Endpoint URL.
        endpoint: String,
        /// The store name.
        name: String,
    },
}

/// An append-only journal file, flushed after every line.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry and syncs it to disk before returning.
    pub fn record(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }

    /// The stores a journal says may still exist: (endpoint, name, ID if known), in order.
    pub fn leftovers(path: &Path) -> std::io::Result<Vec<(String, String, Option<String>)>> {
        let reader = BufReader::new(File::open(path)?);
        let mut open: Vec<(String, String, Option<String>)> = Vec::new();
        for line in reader.lines() {
            let line = line?;
            // A line cut short by a crash is skipped; the entries before it still count.
            let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
                continue;
            };
            match entry {
                Entry::Creating { endpoint, name } => {
                    if !open.iter().any(|(e, n, _)| *e == endpoint && *n == name) {
                        open.push((endpoint, name, None));
                    }
                }
                Entry::Created { endpoint, name, id } => {
                    match open
                        .iter_mut()
                        .find(|(e, n, _)| *e == endpoint && *n == name)
                    {
                        Some(slot) => slot.2 = Some(id),
                        None => open.push((endpoint, name, Some(id))),
                    }
                }
                Entry::Gone { endpoint, name } => {
                    open.retain(|(e, n, _)| !(*e == endpoint && *n == name));
                }
            }
        }
        Ok(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_what_was_created_and_not_gone_even_after_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("ckscheck-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&path);
        let j = Journal::open(&path).unwrap();
        let e = "http://127.0.0.1:1".to_string();
        let creating = |n: &str| Entry::Creating {
            endpoint: e.clone(),
            name: n.into(),
        };
        j.record(&creating("a")).unwrap();
        j.record(&Entry::Created {
            endpoint: e.clone(),
            name: "a".into(),
            id: "cks-1".into(),
        })
        .unwrap();
        j.record(&creating("b")).unwrap();
        j.record(&creating("c")).unwrap();
        j.record(&Entry::Gone {
            endpoint: e.clone(),
            name: "c".into(),
        })
        .unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event\":\"gone\",\"endp").unwrap();
        let left = Journal::leftovers(&path).unwrap();
        assert_eq!(
            left,
            vec![
                (e.clone(), "a".to_string(), Some("cks-1".to_string())),
                (e.clone(), "b".to_string(), None)
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
