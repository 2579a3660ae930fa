//! The judges keep away from the servers they judge (DESIGN.md, "Reference servers": a
//! certifier must not import its reference server's internals to decide what is right).
//!
//! Scans the source of the judges (`src/xks/`, `src/oracle/`, `src/runner/`, `src/gen/`) for
//! every path into `crate::emulator`, `crate::proxy` and `crate::model` (through `crate::`,
//! `ckscheck::`, `super::` chains, `use` groups and module aliases) and holds each to the edges
//! DESIGN.md allows:
//!
//! - `emulator`: never (the emulator is a reference server; nothing in the flow feeds a judge).
//! - `proxy`: only `src/xks/run.rs` (starts the embedded reference proxy when no endpoint is
//!   given, as `suite` starts the emulator) and `src/xks/selftest.rs` (plants its faults), and
//!   only the proxy's public start face: config, start, fault names, documented test
//!   credentials and key ids. Never from the checks.
//! - `model`: `src/oracle/` and `src/gen/` use its public face (the flow: model feeds gen and
//!   oracle); `src/runner/` only its `Fixtures` (the built-in backend data it fills placeholders
//!   from); `src/xks/` nothing. No judge reaches the model's crate-private helpers (`hooks`,
//!   `hook_*`, `err`, `not_found`, `invalid`, `invalid_state`, `Pending`, `.pending`): those
//!   exist for the emulator's planted faults and the model's own rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The judge folders, under `src/`.
const JUDGES: [&str; 4] = ["xks", "oracle", "runner", "gen"];

/// The proxy items a judge may name (its public start face).
fn proxy_item_allowed(item: &str) -> bool {
    matches!(
        item,
        "start" | "start_on_loopback" | "ProxyConfig" | "RunningProxy" | "Prefix" | "KeyDef"
    ) || item == "ProxyFault"
        || item.starts_with("DEFAULT_")
        || item.starts_with("ROTATED_")
        || item.starts_with("KEY_")
}

/// Model items no judge may name: the crate-private helpers.
const MODEL_PRIVATE: [&str; 6] = [
    "hooks",
    "err",
    "not_found",
    "invalid",
    "invalid_state",
    "Pending",
];

/// A flattened `use` path and the local name it binds.
type Bound = (Vec<String>, Option<String>);

/// One offending use: file, the path as resolved, and why.
type Violation = (String, String, &'static str);

/// `rel` (e.g. `xks/run.rs`) with its source: every violation of the allowed edges.
fn violations(rel: &str, source: &str) -> Vec<Violation> {
    let tokens = tokenize(&strip(source));
    let module = module_path(rel);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.starts_with("hook_") {
            out.push((rel.into(), t.clone(), "names a model hook"));
        }
        if t == "pending"
            && i > 0
            && tokens[i - 1] == "."
            && tokens.get(i + 1).is_none_or(|n| n != "(")
        {
            out.push((
                rel.into(),
                ".pending".into(),
                "reads the model's private pending field",
            ));
        }
    }
    for path in guarded_paths(&tokens, &module) {
        if let Some(why) = judge(rel, &path) {
            out.push((rel.into(), path.join("::"), why));
        }
    }
    out
}

/// Why `path` (starting at `emulator`, `proxy` or `model`) is out of bounds for `rel`.
fn judge(rel: &str, path: &[String]) -> Option<&'static str> {
    let folder = rel.split('/').next().unwrap_or_default();
    let item = path.get(1).map(String::as_str);
    match path[0].as_str() {
        "emulator" => Some("a judge never imports the emulator"),
        "proxy" => {
            if !matches!(rel, "xks/run.rs" | "xks/selftest.rs") {
                return Some("only xks/run.rs and xks/selftest.rs may start the reference proxy");
            }
            match item {
                Some(item) if proxy_item_allowed(item) => None,
                Some(_) => Some("names a proxy internal, not its public start face"),
                None => None,
            }
        }
        "model" => {
            if item.is_some_and(|i| MODEL_PRIVATE.contains(&i)) {
                return Some("names a crate-private model helper");
            }
            match folder {
                "oracle" | "gen" => None,
                "runner" if matches!(item, None | Some("Fixtures")) => None,
                "runner" => Some("the runner may use only the model's Fixtures data"),
                _ => Some("the XKS certifier has no model edge"),
            }
        }
        _ => None,
    }
}

/// The module path of a file under `src/` (`xks/checks/mod.rs` -> `[xks, checks]`).
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.first().is_some_and(|p| p == "gen") {
        parts[0] = "generate".into();
    }
    parts
}

/// Source without comments, string and char literals (their text can name anything).
fn strip(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("r\"") || rest.starts_with("r#") {
            let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += rest
                .get(body..)
                .and_then(|r| r.find(&close))
                .map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '"'); otherwise a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                i += rest[2..].find('\'').map_or(rest.len(), |e| e + 3);
            } else if let Some(c) = rest[1..].chars().next()
                && rest[1 + c.len_utf8()..].starts_with('\'')
            {
                i += 2 + c.len_utf8();
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Identifiers, `::` and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            tokens.push(code[i..end].to_string());
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            tokens.push("::".into());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// Every path (flattened out of `use` groups) that starts at `emulator`, `proxy` or `model`,
/// from the crate root, through `super` chains, or through a local alias of such a module.
fn guarded_paths(tokens: &[String], module: &[String]) -> Vec<Vec<String>> {
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut found = Vec::new();
    // First pass: paths from the crate root (and `use` aliases they bind).
    let mut i = 0;
    while i < tokens.len() {
        let start = &tokens[i];
        let rooted = matches!(start.as_str(), "crate" | "ckscheck" | "super");
        let after_colons = i > 0 && tokens[i - 1] == "::";
        if !rooted || after_colons || tokens.get(i + 1).is_none_or(|t| t != "::") {
            i += 1;
            continue;
        }
        let (trees, next) = parse_tree(tokens, i);
        for (path, alias) in trees {
            let Some(absolute) = resolve(&path, module) else {
                continue;
            };
            if !is_guarded(&absolute) {
                continue;
            }
            if let Some(alias) = alias {
                aliases.insert(alias, absolute.clone());
            }
            found.push(absolute);
        }
        i = next.max(i + 1);
    }
    // Second pass: paths through an alias (`proxy::start_on_loopback` after `use ..::proxy`).
    for (i, t) in tokens.iter().enumerate() {
        let after_colons = i > 0 && tokens[i - 1] == "::";
        let Some(base) = aliases.get(t) else { continue };
        if after_colons || tokens.get(i + 1).is_none_or(|n| n != "::") {
            continue;
        }
        let mut path = base.clone();
        let mut j = i + 1;
        while tokens.get(j).is_some_and(|n| n == "::")
            && tokens
                .get(j + 1)
                .is_some_and(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            path.push(tokens[j + 1].clone());
            j += 2;
        }
        found.push(path);
    }
    found
}

fn is_guarded(path: &[String]) -> bool {
    path.first()
        .is_some_and(|p| matches!(p.as_str(), "emulator" | "proxy" | "model"))
}

/// `path` from the crate root: `crate`/`ckscheck` dropped, each `super` popping one module.
fn resolve(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first()?.as_str() {
        "crate" | "ckscheck" => rest = &path[1..],
        "super" => {
            base = module.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// The path tree starting at `tokens[i]` (`a::b::{c, d::{e as f}}`): each flattened path with
/// the local name it binds (last segment, `self`'s parent, or the `as` name), and the index
/// after it.
fn parse_tree(tokens: &[String], mut i: usize) -> (Vec<Bound>, usize) {
    let mut prefix = Vec::new();
    loop {
        match tokens.get(i).map(String::as_str) {
            Some("{") => {
                let mut out = Vec::new();
                i += 1;
                while let Some(t) = tokens.get(i) {
                    match t.as_str() {
                        "}" => {
                            i += 1;
                            break;
                        }
                        "," => i += 1,
                        _ => {
                            let (subs, next) = parse_tree(tokens, i);
                            for (mut sub, alias) in subs {
                                let mut full = prefix.clone();
                                full.append(&mut sub);
                                let alias = alias.or_else(|| bound_name(&full));
                                out.push((full, alias));
                            }
                            i = next.max(i + 1);
                        }
                    }
                }
                return (out, i);
            }
            Some(t) if t.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                prefix.push(t.to_string());
                i += 1;
                if tokens.get(i).is_some_and(|n| n == "::") {
                    i += 1;
                    continue;
                }
                let alias = if tokens.get(i).is_some_and(|n| n == "as") {
                    i += 2;
                    tokens.get(i - 1).cloned()
                } else {
                    bound_name(&prefix)
                };
                return (vec![(prefix, alias)], i);
            }
            Some("*") => return (vec![(prefix, None)], i + 1),
            _ => return (vec![(prefix, None)], i),
        }
    }
}

/// The local name a `use` of `path` binds.
fn bound_name(path: &[String]) -> Option<String> {
    match path.last()?.as_str() {
        "self" => path.iter().rev().nth(1).cloned(),
        last => Some(last.to_string()),
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Catches a judge that starts importing a server's internals (e.g. `use
/// crate::proxy::faults::Planted` in `xks/checks/`, or `crate::emulator` in `oracle/`).
#[test]
fn no_judge_imports_a_reference_server_or_the_models_private_helpers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for judge in JUDGES {
        rust_files(&src.join(judge), &mut files);
    }
    assert!(
        files.len() > 20,
        "too few judge files found: {}",
        files.len()
    );
    let mut all = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "xks/separation.rs" {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap_or_default();
        all.extend(violations(&rel, &source));
    }
    assert!(all.is_empty(), "judges crossing into servers: {all:#?}");
}

/// Catches a scanner that misses a way of naming a forbidden path (so the test above could
/// never fail).
#[test]
fn the_scanner_sees_every_way_of_naming_a_server() {
    let bad = |rel: &str, code: &str| !violations(rel, code).is_empty();
    assert!(bad("oracle/x.rs", "use crate::emulator::faults::Fault;"));
    assert!(bad("oracle/x.rs", "use crate::{emulator, spec};"));
    assert!(bad("xks/checks/x.rs", "use crate::proxy::ProxyConfig;"));
    assert!(bad(
        "xks/checks/x.rs",
        "use super::super::super::proxy::ProxyConfig;"
    ));
    assert!(bad("xks/run.rs", "use crate::proxy::faults::Planted;"));
    assert!(bad(
        "xks/run.rs",
        "use crate::proxy as p; fn f() { p::serve::serve(); }"
    ));
    assert!(bad(
        "xks/run.rs",
        "use crate::proxy::{self}; fn f() { proxy::handler::x(); }"
    ));
    assert!(bad(
        "xks/client.rs",
        "fn f() { let m = ckscheck::model::Fixtures::builtin(); }"
    ));
    assert!(bad("runner/x.rs", "use crate::model::Model;"));
    assert!(bad(
        "gen/x.rs",
        "fn f(m: &mut M) { m.hook_rename(\"a\", \"b\"); }"
    ));
    assert!(bad("oracle/x.rs", "use crate::model::{Model, hooks};"));
    assert!(bad(
        "oracle/x.rs",
        "fn f(s: &Store) -> bool { s.pending.is_some() }"
    ));
    let good = |rel: &str, code: &str| violations(rel, code).is_empty();
    assert!(good(
        "xks/run.rs",
        "use crate::proxy::{self, ProxyConfig}; fn f() { proxy::start_on_loopback(c); proxy::KEY_MAIN; }"
    ));
    assert!(good(
        "oracle/x.rs",
        "use crate::model::{Model, fixtures::Cluster}; // crate::emulator\nconst S: &str = \"crate::proxy::x\";"
    ));
    assert!(good("runner/x.rs", "use crate::model::Fixtures;"));
    assert!(good(
        "gen/x.rs",
        "fn f<'a>(m: &'a Model) -> char { let q = '\"'; m.pending_state(1); q }"
    ));
}
