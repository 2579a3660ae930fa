//! Holds our spec (`specs/kms-custom-key-stores.toml`) against the KMS model AWS ships with
//! botocore (`botocore/data/kms/2014-11-01/service-2.json.gz`, and `paginators-1.json` next to
//! it): protocol facts, and for every operation we describe its input and output structures
//! (walked by member name), its declared errors with their classes, and its paginator.
//!
//! The model's path comes from `BOTOCORE_KMS_MODEL` (`.ci/run` sets it). Without it the tests
//! are skipped, except on CI (`CI` set), where a missing model is a failure.
//!
//! A shape reachable from several places is compared once per (our shape, botocore shape) pair
//! and its differences are reported at the first place it is reached.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;
use std::io::Read;
use std::path::{Path, PathBuf};

use ckscheck::spec::{ErrorClass, KMS_SPEC_TOML, Operation, Shape, ShapeType, Spec};
use serde_json::{Map, Value};

/// botocore's KMS model: service-2.json, and paginators-1.json when it is found next to it.
struct Botocore {
    /// Where service-2.json(.gz) was read from.
    path: PathBuf,
    /// The parsed service-2.json.
    service: Value,
    /// The parsed paginators-1.json, if present.
    paginators: Option<Value>,
}

/// Whether we run on CI (env var `CI` set and non-empty).
fn on_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Loads the model named by `BOTOCORE_KMS_MODEL`; None (skip) when unset, a failure when unset on CI.
fn botocore_or_skip() -> Option<Botocore> {
    let path = match std::env::var_os("BOTOCORE_KMS_MODEL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            assert!(
                !on_ci(),
                "BOTOCORE_KMS_MODEL is not set, but CI is: .ci/run should have set it to the \
                 venv's botocore/data/kms/2014-11-01/service-2.json.gz"
            );
            println!(
                "skipped: BOTOCORE_KMS_MODEL is not set (point it at botocore's \
                 data/kms/2014-11-01/service-2.json.gz, as .ci/run does, to compare the spec)"
            );
            return None;
        }
    };
    let service = read_json(&path).unwrap_or_else(|e| panic!("BOTOCORE_KMS_MODEL: {e}"));
    let paginators = read_paginators(&path);
    Some(Botocore {
        path,
        service,
        paginators,
    })
}

/// Reads and parses a JSON file, gunzipping it when its name ends in `.gz`.
fn read_json(path: &Path) -> Result<Value, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = if path.extension().is_some_and(|x| x == "gz") {
        let mut out = String::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut out)
            .map_err(|e| format!("cannot gunzip {}: {e}", path.display()))?;
        out
    } else {
        String::from_utf8(raw).map_err(|e| format!("{} is not UTF-8: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// Reads paginators-1.json(.gz) from the model's directory, or None with a printed note.
fn read_paginators(model: &Path) -> Option<Value> {
    let dir = model.parent().unwrap_or(Path::new("."));
    for name in ["paginators-1.json", "paginators-1.json.gz"] {
        let path = dir.join(name);
        if path.exists() {
            return Some(read_json(&path).unwrap_or_else(|e| panic!("paginators: {e}")));
        }
    }
    println!(
        "note: no paginators-1.json next to {}; the paginator is not compared",
        model.display()
    );
    None
}

/// Formats an optional value for a difference line: `none`, or the value in Debug form.
fn show<T: Debug>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| format!("{v:?}"))
}

/// The botocore type name of one of our shape kinds.
fn type_name(kind: ShapeType) -> &'static str {
    match kind {
        ShapeType::String => "string",
        ShapeType::Integer => "integer",
        ShapeType::Boolean => "boolean",
        ShapeType::Timestamp => "timestamp",
        ShapeType::Structure => "structure",
        ShapeType::List => "list",
    }
}

/// The class botocore gives an error shape: fault when `fault` or `error.fault` is true.
fn botocore_class(shape: &Value) -> ErrorClass {
    let fault =
        shape["fault"].as_bool() == Some(true) || shape["error"]["fault"].as_bool() == Some(true);
    if fault {
        ErrorClass::Fault
    } else {
        ErrorClass::Client
    }
}

/// The spec's name of an error class: `client` or `fault`.
fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Client => "client",
        ErrorClass::Fault => "fault",
    }
}

/// The error names an operation declares in botocore's model.
fn botocore_errors(op: &Value) -> BTreeSet<&str> {
    let list = op["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().filter_map(|e| e["shape"].as_str()).collect()
}

/// A paginator field of botocore's as text (a list of keys is joined with ", ").
fn paginator_field(p: &Value, key: &str) -> Option<String> {
    match &p[key] {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| i.as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// Walks our shapes against botocore's, collecting differences.
struct Walker<'a> {
    /// Our spec.
    spec: &'a Spec,
    /// botocore's `shapes` object.
    shapes: &'a Value,
    /// (our shape, botocore shape, partial) already compared.
    seen: HashSet<(String, String, bool)>,
    /// Differences found so far, one line each.
    diffs: Vec<String>,
}

impl Walker<'_> {
    /// Records a difference of property `what` at `at`.
    fn differ(&mut self, at: &str, what: &str, ours: String, theirs: String) {
        self.diffs
            .push(format!("{at}: {what}: ours {ours}, botocore {theirs}"));
    }

    /// Compares one operation: input and output structures and declared errors.
    fn operation(&mut self, name: &str, op: &Operation, theirs: &Value) {
        if !theirs.is_object() {
            self.diffs
                .push(format!("{name}: operation is not in botocore"));
            return;
        }
        for (dir, ours) in [("input", &op.input), ("output", &op.output)] {
            match theirs[dir]["shape"].as_str() {
                Some(t) => self.shape(&format!("{name} {dir}"), ours, t, op.partial),
                None => self.diffs.push(format!(
                    "{name} {dir}: botocore has no {dir} shape, ours is {ours}"
                )),
            }
        }
        let ours: BTreeSet<&str> = op.errors.iter().map(String::as_str).collect();
        let theirs = botocore_errors(theirs);
        for e in ours.difference(&theirs) {
            self.diffs.push(format!(
                "{name} errors: ours declares {e}, botocore does not"
            ));
        }
        for e in theirs.difference(&ours) {
            self.diffs.push(format!(
                "{name} errors: botocore declares {e}, ours does not"
            ));
        }
    }

    /// Compares our shape `ours` with botocore's `theirs`, reached at `path`, then their contents.
    fn shape(&mut self, path: &str, ours: &str, theirs: &str, partial: bool) {
        let o: &Shape = self.spec.shape(ours);
        // Partiality only matters for what holds members; scalars are compared once whatever it is.
        let partial = partial && matches!(o.kind, ShapeType::Structure | ShapeType::List);
        if !self
            .seen
            .insert((ours.to_string(), theirs.to_string(), partial))
        {
            return;
        }
        let Some(t) = self.shapes.get(theirs) else {
            self.diffs
                .push(format!("{path}: botocore has no shape {theirs}"));
            return;
        };
        let at = if ours == theirs {
            format!("{path} (shape {ours})")
        } else {
            format!("{path} (shape {ours}, botocore {theirs})")
        };
        self.constraints(&at, o, t);
        match (o.kind, t["type"].as_str()) {
            (ShapeType::Structure, Some("structure")) => self.members(path, o, t, partial),
            (ShapeType::List, Some("list")) => {
                let element = o
                    .member
                    .as_deref()
                    .expect("the loader checks lists have a member");
                match t["member"]["shape"].as_str() {
                    Some(te) => self.shape(&format!("{path}[]"), element, te, partial),
                    None => self
                        .diffs
                        .push(format!("{at}: botocore's list has no member shape")),
                }
            }
            _ => {}
        }
    }

    /// Compares a shape's own properties: type, min, max, pattern, enum and sensitive.
    fn constraints(&mut self, at: &str, o: &Shape, t: &Value) {
        let their_type = t["type"].as_str();
        if their_type != Some(type_name(o.kind)) {
            self.differ(at, "type", show(Some(type_name(o.kind))), show(their_type));
        }
        for (what, ours) in [("min", o.min), ("max", o.max)] {
            let ours = ours.map(|v| v.to_string());
            let theirs = t.get(what).map(Value::to_string);
            if ours != theirs {
                self.differ(
                    at,
                    what,
                    ours.unwrap_or("none".into()),
                    theirs.unwrap_or("none".into()),
                );
            }
        }
        let their_pattern = t["pattern"].as_str();
        if o.pattern.as_deref() != their_pattern {
            self.differ(
                at,
                "pattern",
                show(o.pattern.as_deref()),
                show(their_pattern),
            );
        }
        self.enums(at, o, t);
        let their_sensitive = t["sensitive"].as_bool().unwrap_or(false);
        if o.sensitive != their_sensitive {
            self.differ(
                at,
                "sensitive",
                o.sensitive.to_string(),
                their_sensitive.to_string(),
            );
        }
    }

    /// Compares enum values as sets, naming the values only one side has.
    fn enums(&mut self, at: &str, o: &Shape, t: &Value) {
        let ours: Option<BTreeSet<&str>> = o
            .enum_values
            .as_ref()
            .map(|v| v.iter().map(String::as_str).collect());
        let theirs: Option<BTreeSet<&str>> = t["enum"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect());
        match (&ours, &theirs) {
            (Some(a), Some(b)) => {
                let only_ours: Vec<_> = a.difference(b).collect();
                let only_theirs: Vec<_> = b.difference(a).collect();
                if !only_ours.is_empty() {
                    self.diffs
                        .push(format!("{at}: enum values only in ours: {only_ours:?}"));
                }
                if !only_theirs.is_empty() {
                    self.diffs.push(format!(
                        "{at}: enum values only in botocore: {only_theirs:?}"
                    ));
                }
            }
            (None, None) => {}
            _ => self.differ(at, "enum", show(ours), show(theirs)),
        }
    }

    /// Compares structure members both ways (only ours against botocore's when `partial`).
    fn members(&mut self, path: &str, o: &Shape, t: &Value, partial: bool) {
        let empty = Map::new();
        let their_members = t["members"].as_object().unwrap_or(&empty);
        let required: BTreeSet<&str> = t["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, r) in &o.members {
            let at = format!("{path}.{name}");
            let Some(tm) = their_members.get(name) else {
                self.diffs
                    .push(format!("{path}: member {name} is in ours, not in botocore"));
                continue;
            };
            let their_required = required.contains(name.as_str());
            if r.required != their_required {
                self.differ(
                    &at,
                    "required",
                    r.required.to_string(),
                    their_required.to_string(),
                );
            }
            match tm["shape"].as_str() {
                Some(ts) => self.shape(&at, &r.shape, ts, partial),
                None => self
                    .diffs
                    .push(format!("{at}: botocore's member has no shape")),
            }
        }
        if !partial {
            for name in their_members.keys().filter(|n| !o.members.contains_key(*n)) {
                self.diffs
                    .push(format!("{path}: member {name} is in botocore, not in ours"));
            }
        }
    }
}

/// Compares the protocol facts: protocol and JSON version, content type, target prefix,
/// signing name, endpoint prefix and API version.
fn compare_service(spec: &Spec, meta: &Value, diffs: &mut Vec<String>) {
    let s = &spec.service;
    let (protocol, json_version) = (meta["protocol"].as_str(), meta["jsonVersion"].as_str());
    let theirs = match (protocol, json_version) {
        (Some("json"), Some("1.1")) => Some("awsJson1_1"),
        (Some("json"), Some("1.0")) => Some("awsJson1_0"),
        _ => None,
    };
    if theirs != Some(s.protocol.as_str()) {
        diffs.push(format!(
            "service protocol: ours {:?}, botocore protocol {} with jsonVersion {}",
            s.protocol,
            show(protocol),
            show(json_version)
        ));
    }
    let content_type = json_version.map(|v| format!("application/x-amz-json-{v}"));
    // botocore signs with endpointPrefix unless signingName says otherwise.
    let signing = meta["signingName"]
        .as_str()
        .or(meta["endpointPrefix"].as_str());
    for (what, ours, theirs) in [
        ("content type", &s.content_type, content_type.as_deref()),
        (
            "targetPrefix",
            &s.target_prefix,
            meta["targetPrefix"].as_str(),
        ),
        ("signingName", &s.signing_name, signing),
        (
            "endpointPrefix",
            &s.signing_name,
            meta["endpointPrefix"].as_str(),
        ),
        ("apiVersion", &s.api_version, meta["apiVersion"].as_str()),
    ] {
        if Some(ours.as_str()) != theirs {
            diffs.push(format!(
                "service {what}: ours {ours:?}, botocore {}",
                show(theirs)
            ));
        }
    }
}

/// Compares the class (client or fault) of every error our operations or botocore's declare.
fn compare_error_classes(spec: &Spec, service: &Value, diffs: &mut Vec<String>) {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (op, o) in &spec.operations {
        names.extend(o.errors.iter().map(String::as_str));
        names.extend(botocore_errors(&service["operations"][op]));
    }
    for name in names {
        let (Some(ours), Some(theirs)) = (spec.errors.get(name), service["shapes"].get(name))
        else {
            continue; // an error only one side knows is reported with the operation's errors
        };
        let theirs = botocore_class(theirs);
        if ours.class != theirs {
            let (ours, theirs) = (class_name(ours.class), class_name(theirs));
            diffs.push(format!(
                "error {name}: class: ours {ours}, botocore {theirs}"
            ));
        }
    }
}

/// Compares the paginator of each of our operations with botocore's `pagination` entries.
fn compare_paginators(spec: &Spec, pagination: &Value, diffs: &mut Vec<String>) {
    for op in spec.operations.keys() {
        let theirs = &pagination[op];
        let Some(ours) = spec.paginators.get(op) else {
            if !theirs.is_null() {
                diffs.push(format!("paginator {op}: botocore has one, ours does not"));
            }
            continue;
        };
        if theirs.is_null() {
            diffs.push(format!("paginator {op}: ours has one, botocore does not"));
            continue;
        }
        for (key, value) in [
            ("input_token", &ours.input_token),
            ("output_token", &ours.output_token),
            ("more_results", &ours.more_results),
            ("limit_key", &ours.limit_key),
            ("result_key", &ours.result_key),
        ] {
            let their_value = paginator_field(theirs, key);
            if their_value.as_deref() != Some(value.as_str()) {
                diffs.push(format!(
                    "paginator {op}: {key}: ours {value:?}, botocore {}",
                    show(their_value)
                ));
            }
        }
    }
}

/// Every difference between `spec` and botocore's model, one line each.
fn differences(spec: &Spec, botocore: &Botocore) -> Vec<String> {
    let service = &botocore.service;
    let mut diffs = Vec::new();
    compare_service(spec, &service["metadata"], &mut diffs);
    let mut walker = Walker {
        spec,
        shapes: &service["shapes"],
        seen: HashSet::new(),
        diffs: Vec::new(),
    };
    for (name, op) in &spec.operations {
        walker.operation(name, op, &service["operations"][name]);
    }
    diffs.extend(walker.diffs);
    compare_error_classes(spec, service, &mut diffs);
    if let Some(p) = &botocore.paginators {
        compare_paginators(spec, &p["pagination"], &mut diffs);
    }
    diffs
}

/// Replaces the single occurrence of `from` in `text`, failing if there is not exactly one.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected {from:?} once in the spec"
    );
    text.replacen(from, to, 1)
}

/// Our spec and botocore's model agree on everything compared (all differences listed at once).
#[test]
fn spec_matches_botocore() {
    let Some(botocore) = botocore_or_skip() else {
        return;
    };
    let diffs = differences(Spec::kms(), &botocore);
    assert!(
        diffs.is_empty(),
        "{} difference(s) between specs/kms-custom-key-stores.toml and {}:\n  {}",
        diffs.len(),
        botocore.path.display(),
        diffs.join("\n  ")
    );
}

/// The comparison catches a changed max length, a dropped error and a changed pattern, and only them.
#[test]
fn comparison_reports_exactly_the_differences_planted_in_the_spec() {
    let Some(botocore) = botocore_or_skip() else {
        return;
    };
    let text = replace_once(
        KMS_SPEC_TOML,
        "[shapes.CustomKeyStoreNameType]\ntype = \"string\"\nmin = 1\nmax = 256\n",
        "[shapes.CustomKeyStoreNameType]\ntype = \"string\"\nmin = 1\nmax = 255\n",
    );
    let text = replace_once(
        &text,
        r#"errors = ["CustomKeyStoreNotFoundException", "InvalidMarkerException", "KMSInternalException"]"#,
        r#"errors = ["CustomKeyStoreNotFoundException", "KMSInternalException"]"#,
    );
    let text = replace_once(
        &text,
        "pattern = '^[a-zA-Z0-9-_.]+$'",
        "pattern = '^[a-zA-Z0-9_.-]+$'",
    );
    let altered = Spec::from_toml(&text).expect("the altered spec still loads");

    // Differences the real spec already has (none, when the spec is right) are not ours to count.
    let baseline: BTreeSet<String> = differences(Spec::kms(), &botocore).into_iter().collect();
    let found: BTreeSet<String> = differences(&altered, &botocore).into_iter().collect();
    let added: BTreeSet<&str> = found.difference(&baseline).map(String::as_str).collect();
    let lost: Vec<&String> = baseline.difference(&found).collect();

    let expected = BTreeSet::from([
        "CreateCustomKeyStore input.CustomKeyStoreName (shape CustomKeyStoreNameType): max: \
         ours 255, botocore 256",
        "DescribeCustomKeyStores errors: botocore declares InvalidMarkerException, ours does not",
        "CreateKey input.XksKeyId (shape XksKeyIdType): pattern: ours \"^[a-zA-Z0-9_.-]+$\", \
         botocore \"^[a-zA-Z0-9-_.]+$\"",
    ]);
    assert_eq!(
        added, expected,
        "the planted differences, and only they, must be reported"
    );
    assert!(
        lost.is_empty(),
        "altering the spec hid differences: {lost:?}"
    );
}
