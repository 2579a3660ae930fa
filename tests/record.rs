//! The scenario corpus against a real `ckscheck serve` process, through the command line:
//!
//! - `ckscheck record` against it writes, byte for byte, the snapshots committed in
//!   `snapshots/` (and refuses to overwrite them without `--force`);
//! - `ckscheck run --endpoint-url` against it with each planted fault shows a diff against the
//!   snapshots for every fault that changes a transcript, and none against a correct emulator;
//!   with the operations not implemented, every scenario is blocked and none is diffed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::thread;

use ckscheck::emulator::Fault;
use ckscheck::scenario::builtin;

mod common;
use common::{Emulator, ckscheck, scratch, text};

/// The scenarios that create KMS keys: they run only on the embedded emulator.
fn key_scenarios() -> BTreeSet<String> {
    builtin()
        .into_iter()
        .filter(|s| {
            s.steps
                .iter()
                .any(|st| st.op.as_deref() == Some("CreateKey"))
        })
        .map(|s| s.name)
        .collect()
}

#[test]
fn record_against_serve_writes_the_committed_snapshots_byte_for_byte() {
    record_writes_the_committed_snapshots("record", None);
}

#[test]
fn record_with_backends_sharing_values_writes_the_same_snapshots() {
    // Every proxy serves /kms/xks/v1, three share an access key ID, the related clusters share
    // anchor and password with a deleted one listed first, and a password is part of every
    // endpoint: the snapshots must not change.
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/shared-values.toml"
    );
    record_writes_the_committed_snapshots("record-shared", Some(fixtures));
}

/// `ckscheck record` against `ckscheck serve`, both with `fixtures` (None: the built-in ones),
/// writes the committed snapshots byte for byte, reports the key scenarios, and refuses to
/// overwrite without `--force`.
fn record_writes_the_committed_snapshots(scratch_name: &str, fixtures: Option<&str>) {
    let with_fixtures: Vec<&str> = fixtures.map_or(Vec::new(), |f| vec!["--fixtures", f]);
    let emulator = Emulator::start(&with_fixtures);
    let dir = scratch(scratch_name);
    let out = dir.join("snaps");
    let args = [
        "record",
        "--endpoint-url",
        &emulator.url,
        "--region",
        "us-east-1",
        // The fixtures `ckscheck serve` simulates; the built-in set has the failing backends.
        "--fixtures",
        fixtures.unwrap_or("builtin"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    let first = ckscheck(&args, &dir);
    let said = text(&first);
    // The key scenarios are reported, not half recorded: exit 1, and no file for them.
    assert_eq!(first.status.code(), Some(1), "{said}");
    let keys = key_scenarios();
    assert!(!keys.is_empty());
    for name in &keys {
        assert!(
            said.contains(&format!("not recorded  {name}: ")),
            "{name}: {said}"
        );
        assert!(!out.join(format!("{name}.snap")).exists());
    }
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let mut compared = 0;
    for s in builtin().iter().filter(|s| !keys.contains(&s.name)) {
        let file = format!("{}.snap", s.name);
        let recorded = std::fs::read(out.join(&file))
            .unwrap_or_else(|e| panic!("{file} was not recorded ({e}): {said}"));
        let expected = std::fs::read(committed.join(&file)).expect("a committed snapshot");
        assert!(
            recorded == expected,
            "{file} differs from the committed one:\n--- recorded ---\n{}\n--- committed ---\n{}",
            String::from_utf8_lossy(&recorded),
            String::from_utf8_lossy(&expected)
        );
        compared += 1;
    }
    assert!(compared >= 40, "{compared} snapshots compared");

    // Again, without --force: refused before anything is sent or written.
    let again = ckscheck(&args, &dir);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Faults that change no transcript, and why: the checks that catch them are elsewhere.
const TRANSCRIPT_UNCHANGED: [(&str, &str); 4] = [
    (
        "wrong-content-type",
        "transcripts hold no Content-Type (the errors check judges it)",
    ),
    (
        "namespaced-error-type",
        "the error name parses the same (a style warning, no failure)",
    ),
    (
        "secret-in-error-message",
        "messages are [message] and secrets are masked (the fields check catches it)",
    ),
    (
        "length-in-bytes",
        "no scenario sends a multi-byte value near its limit (the property checks catch it)",
    ),
];

/// Faults that take the operations away: their scenarios are blocked (nothing sent), not
/// diffed.
const BLOCKING: [&str; 1] = ["not-implemented"];

/// Never in any output: the fixture secrets and the wrong ones the scenarios send.
const SECRETS: [&str; 3] = ["kmsuser-pass-", "ProxySecretAccessKey", "wrong-password-"];

#[test]
fn run_against_serve_shows_a_diff_for_each_fault_that_changes_a_transcript() {
    let dir = scratch("faults");
    let runs: Vec<Option<Fault>> = std::iter::once(None)
        .chain(Fault::ALL.into_iter().map(Some))
        .collect();
    let problems = Mutex::new(Vec::<String>::new());
    let next = Mutex::new(runs.into_iter());
    thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                loop {
                    let Some(fault) = next.lock().expect("not poisoned").next() else {
                        return;
                    };
                    if let Err(e) = one_fault(fault, &dir) {
                        problems.lock().expect("not poisoned").push(e);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().expect("not poisoned");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Runs the scenarios against `ckscheck serve` with `fault` planted; Err says what is wrong.
fn one_fault(fault: Option<Fault>, scratch_root: &Path) -> Result<(), String> {
    let name = fault.map_or("none", Fault::name);
    let emulator = match fault {
        Some(f) => Emulator::start(&["--fault", f.name()]),
        None => Emulator::start(&[]),
    };
    let dir = scratch_root.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = ckscheck(
        &[
            "run",
            "--endpoint-url",
            &emulator.url,
            "--region",
            "us-east-1",
            "--fixtures",
            "builtin",
            "--filter",
            "snapshot::",
        ],
        &dir,
    );
    let said = text(&out);
    let failed_with_diff = out.status.code() == Some(1)
        && said.contains("against the snapshot:")
        && said.lines().any(|l| l.contains("│-") || l.contains("│+"));
    let noted_diff = said.contains("differs from the snapshot (inferred):");
    if let Some(secret) = SECRETS.iter().find(|s| said.contains(**s)) {
        return Err(format!(
            "fault {name}: the output shows a secret ({secret})"
        ));
    }
    let unchanged = TRANSCRIPT_UNCHANGED.iter().any(|(f, _)| *f == name);
    let result = match fault {
        None if out.status.code() != Some(0) || said.contains("differs from the snapshot") => {
            Err("a correct emulator differs from the snapshots")
        }
        Some(_) if unchanged && (out.status.code() != Some(0) || noted_diff) => {
            Err("listed as changing no transcript, but a scenario differs")
        }
        Some(_)
            if BLOCKING.contains(&name)
                && !(out.status.code() == Some(1)
                    && said.contains("blocked by the deviation")
                    && !said.contains("against the snapshot:")) =>
        {
            Err("expected every scenario blocked by a not-implemented operation, and no diff")
        }
        Some(_) if !unchanged && !BLOCKING.contains(&name) && !failed_with_diff => {
            Err("expected a failing scenario with a diff against its snapshot")
        }
        _ => Ok(()),
    };
    result.map_err(|why| format!("fault {name}: {why}\n{said}"))
}

#[test]
fn record_names_the_scenarios_the_fixtures_cannot_run_and_writes_nothing_for_them() {
    let emulator = Emulator::start(&[]);
    let dir = scratch("record-missing");
    // A reference whose only backend is one healthy cluster: no proxy plays xks:times-out.
    let fixtures = dir.join("one-cluster.toml");
    std::fs::write(
        &fixtures,
        r#"[[cluster]]
id = "cluster-healthyaaaaa"
trust_anchor_certificate = "-----BEGIN CERTIFICATE-----\nMIIBhealthyA\n-----END CERTIFICATE-----"
kmsuser_password = "kmsuser-pass-a"
lineage = "alpha"
"#,
    )
    .expect("fixtures written");
    let out = dir.join("snaps");
    let ran = ckscheck(
        &[
            "record",
            "--endpoint-url",
            &emulator.url,
            "--region",
            "us-east-1",
            "--fixtures",
            fixtures.to_str().expect("utf-8 path"),
            // One scenario the cluster can run, the others not: those are named, not recorded.
            "--filter",
            "connect-fails",
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        &dir,
    );
    let said = text(&ran);
    assert_eq!(ran.status.code(), Some(1), "{said}");
    assert!(
        said.contains("not recorded  connect-fails-xks-proxy-timed-out: the fixtures cannot run it: no fixture plays the role xks:times-out"),
        "{said}"
    );
    assert!(!out.join("connect-fails-xks-proxy-timed-out.snap").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_inferred_names_the_inferred_scenarios_and_their_reasons() {
    let dir = scratch("list-inferred");
    let ran = ckscheck(&["run", "--list-inferred"], &dir);
    let said = text(&ran);
    assert_eq!(ran.status.code(), Some(0), "{said}");
    let inferred: Vec<_> = builtin()
        .into_iter()
        .filter(|s| s.inferred.is_some())
        .collect();
    assert!(inferred.len() >= 10, "{}", inferred.len());
    for s in inferred {
        let line = format!(
            "  {} ({}): {}",
            s.name,
            s.file,
            s.inferred.map(|i| i.to_string()).unwrap_or_default()
        );
        assert!(said.contains(&line), "missing {line:?} in {said}");
    }
    // A documented expectation is not listed.
    assert!(!said.contains("  create-cloudhsm ("), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
