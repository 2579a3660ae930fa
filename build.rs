//! Compiles the scenario corpus and its snapshots into the binary, so `ckscheck run` works
//! from any directory: every `specs/scenarios/*.toml` and `snapshots/*.snap` file.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::new();
    for (constant, dir, ext) in [
        ("SCENARIO_FILES", "specs/scenarios", "toml"),
        ("SNAPSHOT_FILES", "snapshots", "snap"),
    ] {
        let dir = Path::new(&root).join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == ext))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let _ = writeln!(
            out,
            "/// Every `*.{ext}` file of `{}`, by file name.",
            dir.display()
        );
        let _ = writeln!(out, "pub const {constant}: &[(&str, &str)] = &[");
        for path in files {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let _ = writeln!(
                out,
                "    ({name:?}, include_str!({:?})),",
                path.display().to_string()
            );
        }
        out.push_str("];\n");
    }
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("corpus.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
