//! The journal: every store the harness may have created, written to disk before the request
//! goes out, so `ckscheck cleanup` can remove leftovers after a crash.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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
        /// The region the request was signed for (absent in journals older than regions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// The store name sent.
        name: String,
    },
    /// The endpoint issued this ID for the name.
    Created {
        /// Endpoint URL.
        endpoint: String,
        /// The region the request was signed for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// The store name.
        name: String,
        /// The issued ID.
        id: String,
    },
    /// The store is gone (deleted by the harness, or found absent).
    Gone {
        /// Endpoint URL.
        endpoint: String,
        /// The region the store was in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// The store name.
        name: String,
    },
}

/// An append-only journal file, flushed after every line. Once sealed (the run is interrupted)
/// it refuses new `creating` entries, so no store is created after its cleanup has read it.
pub struct Journal {
    path: PathBuf,
    file: Mutex<Writer>,
}

struct Writer {
    file: File,
    sealed: bool,
    /// Creates journaled whose answer has not come back yet.
    in_flight: usize,
}

/// What a journal says may still exist, and what in it could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// The stores that may still exist, in order.
    pub stores: Vec<Leftover>,
    /// One line per unreadable line (a last line cut short by a kill, or a damaged one).
    pub warnings: Vec<String>,
}

/// A store a journal says may still exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Endpoint URL.
    pub endpoint: String,
    /// The region it was created in (None: the journal does not say; use the run's region).
    pub region: Option<String>,
    /// The store name.
    pub name: String,
    /// The ID the endpoint issued, if the answer came back.
    pub id: Option<String>,
}

impl Leftover {
    fn is(&self, endpoint: &str, region: &Option<String>, name: &str) -> bool {
        self.endpoint == endpoint && self.region == *region && self.name == name
    }
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` for appending. A last line cut short
    /// by a kill is ended first, so the next entry starts on a line of its own.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(Writer {
                file,
                sealed: false,
                in_flight: 0,
            }),
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry and syncs it to disk before returning. Once sealed, a `creating`
    /// entry is refused with [`std::io::ErrorKind::Interrupted`]: its Create must not be sent.
    pub fn record(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut writer = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let creating = matches!(entry, Entry::Creating { .. });
        if creating && writer.sealed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the run is interrupted: no new store is created",
            ));
        }
        writer.file.write_all(&line)?;
        writer.file.sync_data()?;
        if creating {
            writer.in_flight += 1;
        }
        Ok(())
    }

    /// Says that a journaled Create has its answer (or will never get one).
    pub fn answered(&self) {
        let mut writer = self.file.lock().unwrap_or_else(|p| p.into_inner());
        writer.in_flight = writer.in_flight.saturating_sub(1);
    }

    /// Refuses new creates from now on; returns how many journaled Creates still await their
    /// answer (poll until 0 before reading the leftovers).
    pub fn seal(&self) -> usize {
        let mut writer = self.file.lock().unwrap_or_else(|p| p.into_inner());
        writer.sealed = true;
        writer.in_flight
    }

    /// The stores a journal says may still exist, in order. A
    /// line that cannot be read (cut short by a kill) is skipped with a warning; the entries
    /// around it still count.
    pub fn leftovers(path: &Path) -> std::io::Result<Leftovers> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        let mut out = Leftovers::default();
        let open = &mut out.stores;
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let count = lines.len();
        for (i, raw) in lines.into_iter().enumerate() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(entry) = serde_json::from_slice::<Entry>(raw) else {
                let what = if i + 1 == count {
                    "its last line is cut short (the run was killed while writing it)"
                } else {
                    "a line cannot be read"
                };
                out.warnings.push(format!(
                    "{}: {what}; line {} ({} bytes) skipped, the entries before and after it count",
                    path.display(),
                    i + 1,
                    raw.len()
                ));
                continue;
            };
            match entry {
                Entry::Creating {
                    endpoint,
                    region,
                    name,
                } => {
                    if !open.iter().any(|l| l.is(&endpoint, &region, &name)) {
                        open.push(Leftover {
                            endpoint,
                            region,
                            name,
                            id: None,
                        });
                    }
                }
                Entry::Created {
                    endpoint,
                    region,
                    name,
                    id,
                } => match open.iter_mut().find(|l| l.is(&endpoint, &region, &name)) {
                    Some(slot) => slot.id = Some(id),
                    None => open.push(Leftover {
                        endpoint,
                        region,
                        name,
                        id: Some(id),
                    }),
                },
                Entry::Gone {
                    endpoint,
                    region,
                    name,
                } => {
                    open.retain(|l| !l.is(&endpoint, &region, &name));
                }
            }
        }
        Ok(out)
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
            region: None,
            name: n.into(),
        };
        j.record(&creating("a")).unwrap();
        j.record(&Entry::Created {
            endpoint: e.clone(),
            region: None,
            name: "a".into(),
            id: "cks-1".into(),
        })
        .unwrap();
        j.record(&creating("b")).unwrap();
        j.record(&creating("c")).unwrap();
        j.record(&Entry::Gone {
            endpoint: e.clone(),
            region: None,
            name: "c".into(),
        })
        .unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event\":\"gone\",\"endp").unwrap();
        let left = Journal::leftovers(&path).unwrap();
        assert_eq!(left.warnings.len(), 1, "{:?}", left.warnings);
        assert_eq!(
            left.stores,
            vec![
                Leftover {
                    endpoint: e.clone(),
                    region: None,
                    name: "a".into(),
                    id: Some("cks-1".into())
                },
                Leftover {
                    endpoint: e.clone(),
                    region: None,
                    name: "b".into(),
                    id: None
                },
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_name_in_two_regions_is_two_stores() {
        let dir = std::env::temp_dir().join(format!("ckscheck-journal-rg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&path);
        let j = Journal::open(&path).unwrap();
        let e = "http://127.0.0.1:1".to_string();
        for region in ["us-east-1", "eu-west-1"] {
            j.record(&Entry::Created {
                endpoint: e.clone(),
                region: Some(region.into()),
                name: "a".into(),
                id: format!("cks-{region}"),
            })
            .unwrap();
        }
        j.record(&Entry::Gone {
            endpoint: e.clone(),
            region: Some("us-east-1".into()),
            name: "a".into(),
        })
        .unwrap();
        let left = Journal::leftovers(&path).unwrap().stores;
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(left[0].id.as_deref(), Some("cks-eu-west-1"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"region\":\"eu-west-1\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cut_line_is_read_up_to_the_last_whole_entry_and_the_next_entry_starts_afresh() {
        let dir = std::env::temp_dir().join(format!("ckscheck-journal-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&path);
        let e = "http://127.0.0.1:1".to_string();
        let j = Journal::open(&path).unwrap();
        j.record(&Entry::Creating {
            endpoint: e.clone(),
            region: None,
            name: "a".into(),
        })
        .unwrap();
        drop(j);
        // A kill in the middle of a name's two-byte character: the cut is not even UTF-8.
        let whole = serde_json::to_vec(&Entry::Creating {
            endpoint: e.clone(),
            region: None,
            name: "b\u{e9}".into(),
        })
        .unwrap();
        let cut = &whole[..whole.len() - 3];
        assert!(std::str::from_utf8(cut).is_err());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(cut).unwrap();
        drop(f);
        let left = Journal::leftovers(&path).expect("a cut journal is read, not refused");
        let names: Vec<(&str, Option<&str>)> = left
            .stores
            .iter()
            .map(|l| (l.name.as_str(), l.id.as_deref()))
            .collect();
        assert_eq!(names, vec![("a", None)]);
        assert_eq!(left.warnings.len(), 1);
        assert!(
            left.warnings[0].contains("cut short"),
            "{:?}",
            left.warnings
        );
        // The next writer (a cleanup) ends the cut line, so its own entry is read.
        let j = Journal::open(&path).unwrap();
        j.record(&Entry::Gone {
            endpoint: e.clone(),
            region: None,
            name: "a".into(),
        })
        .unwrap();
        let left = Journal::leftovers(&path).unwrap();
        assert!(left.stores.is_empty(), "{:?}", left.stores);
        assert_eq!(left.warnings.len(), 1, "{:?}", left.warnings);
        assert!(
            left.warnings[0].contains("cannot be read"),
            "{:?}",
            left.warnings
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sealed_journal_refuses_new_creates_and_counts_those_in_flight() {
        let dir =
            std::env::temp_dir().join(format!("ckscheck-journal-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&path);
        let e = "http://127.0.0.1:1".to_string();
        let creating = |n: &str| Entry::Creating {
            endpoint: e.clone(),
            region: None,
            name: n.into(),
        };
        let j = Journal::open(&path).unwrap();
        j.record(&creating("a")).unwrap();
        assert_eq!(j.seal(), 1);
        let refused = j.record(&creating("b")).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::Interrupted);
        j.record(&Entry::Gone {
            endpoint: e.clone(),
            region: None,
            name: "a".into(),
        })
        .unwrap();
        j.answered();
        assert_eq!(j.seal(), 0);
        assert!(Journal::leftovers(&path).unwrap().stores.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
