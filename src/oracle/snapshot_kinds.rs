//! The deviation kinds of one scenario step that differs from its snapshot, read from the two
//! normalised steps (YAML) alone, for when no model-free oracle explains the difference.
//!
//! | what differs | rule | kind |
//! |---|---|---|
//! | status or error name (or one side has no answer) | `answer` | `expected E, got A` (as [`super::common::answer_kind`] words them); the only one for the step |
//! | a list's length | `count/PATH` | `more items than expected`, `fewer items than expected`; the only one for the step |
//! | a member only in the snapshot (or null in the answer, as the fields oracle reads it) | `fields/PATH` | `missing` |
//! | a member only in the answer | `fields/PATH` | `unexpected` |
//! | a member's JSON type | `fields/PATH` | `expected T, got U` (`string`, `number`, `boolean`, `array`, `object`, `null`) |
//! | an enum member's value not in the enum | `fields/PATH` | `outside the enum` |
//! | any other value (an enum value inside the enum too: then presence differences are left out) | `value/PATH` | `expected X, got Y` (`a different value` when one is over 40 characters) |
//! | a JSON body against text or none | `body` | `expected a JSON body, got text`…; `the body differs` for two texts |
//! | a request ID against none | `answer` | `expected a request ID, got none`, `unexpected request ID` |
//! | the error message | `message` | `the error message differs` |
//! | the request alone | `transcript` | `the request differs` |
//! | anything else | `transcript` | `the step differs` |
//!
//! PATH is dot-separated; inside a list of objects (the entries of `CustomKeyStores`) it is the
//! path inside one item, so it reads as the fields oracle's does (`XksProxyConfiguration.AccessKeyId`).

use yaml_rust2::{Yaml, YamlLoader};

use crate::spec::Spec;

/// What the normaliser writes for a numeric `CreationDate`: a number, as far as types go.
const EPOCH: &str = "[epoch]";
/// The longest value a `value/...` kind shows.
const SHOWN: usize = 40;
/// The longest value a message shows.
const SHOWN_IN_MESSAGE: usize = 80;

/// One deviation of a step: its rule and kind (the signature's parts) and what differs, with
/// the concrete values, for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepKind {
    /// The rule, e.g. `fields/ConnectionState`.
    pub rule: String,
    /// The kind, e.g. `missing`.
    pub kind: String,
    /// What differs, with the values, e.g. `CustomKeyStores[0].ConnectionState: expected FAILED, got CONNECTED`.
    pub detail: String,
}

impl StepKind {
    fn new(rule: impl Into<String>, kind: impl Into<String>, detail: impl Into<String>) -> Self {
        StepKind {
            rule: rule.into(),
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

/// Parses the text of one transcript step (`  - op: …` and the lines under it) into its
/// mapping; None when it does not parse as one.
pub fn parse_step(text: &str) -> Option<Yaml> {
    let docs = YamlLoader::load_from_str(text).ok()?;
    let step = docs.into_iter().next()?.into_vec()?.into_iter().next()?;
    step.as_hash().is_some().then_some(step)
}

/// The deviations of step `actual` against the snapshot's step `expected`, at most one per
/// rule and kind. `actual_answer`: how the history words the actual answer
/// ([`super::common::answer_kind`]), which knows the content type the transcript lacks.
pub fn classify(
    spec: &Spec,
    expected: &Yaml,
    actual: &Yaml,
    actual_answer: Option<&str>,
) -> Vec<StepKind> {
    let op = actual["op"]
        .as_str()
        .or_else(|| expected["op"].as_str())
        .unwrap_or("-");
    let want = answer(expected);
    let got = answer(actual);
    if (want.status, &want.error) != (got.status, &got.error) {
        let kind = format!(
            "expected {}, got {}",
            want.kind,
            actual_answer.unwrap_or(&got.kind)
        );
        return vec![StepKind::new("answer", kind.clone(), kind)];
    }
    let mut out = body(spec, op, expected, actual);
    match (
        expected["request_id"].as_str().is_some(),
        actual["request_id"].as_str().is_some(),
    ) {
        (true, false) => out.push(StepKind::new(
            "answer",
            "expected a request ID, got none",
            format!(
                "expected a request ID, got {}",
                show(&actual["request_id"], SHOWN_IN_MESSAGE)
            ),
        )),
        (false, true) => out.push(StepKind::new(
            "answer",
            "unexpected request ID",
            "expected no request ID, got one",
        )),
        _ => {}
    }
    for key in ["message", "pinned_message"] {
        let (e, a) = (&expected[key], &actual[key]);
        if !same(e, a) {
            out.push(StepKind::new(
                "message",
                "the error message differs",
                format!(
                    "{key}: expected {}, got {}",
                    show(e, SHOWN_IN_MESSAGE),
                    show(a, SHOWN_IN_MESSAGE)
                ),
            ));
        }
    }
    if out.is_empty() {
        let request = ["request", "raw_request", "marker_from"]
            .into_iter()
            .find(|k| !same(&expected[*k], &actual[*k]));
        match request {
            Some(k) => out.push(StepKind::new(
                "transcript",
                "the request differs",
                format!("the request differs ({k})"),
            )),
            None => out.push(StepKind::new(
                "transcript",
                "the step differs",
                "the step differs from the snapshot",
            )),
        }
    }
    let mut unique: Vec<StepKind> = Vec::new();
    for k in out {
        if !unique.iter().any(|u| u.rule == k.rule && u.kind == k.kind) {
            unique.push(k);
        }
    }
    unique
}

/// A step's answer: status (None: no answer), error name, and the words of a signature.
struct Answer {
    status: Option<i64>,
    error: Option<String>,
    kind: String,
}

fn answer(step: &Yaml) -> Answer {
    let Some(status) = step["status"].as_i64() else {
        return Answer {
            status: None,
            error: None,
            kind: "no answer".into(),
        };
    };
    let error = step["error"].as_str().map(str::to_string);
    let kind = if (200..300).contains(&status) {
        // As `plain_answer_kind` reads a success: what a listing held is the body's business.
        status.to_string()
    } else {
        match &error {
            Some(name) => format!("{status} {name}"),
            None => format!("{status} without an error name"),
        }
    };
    Answer {
        status: Some(status),
        error,
        kind,
    }
}

/// What a step's body is.
fn body_kind(step: &Yaml) -> &'static str {
    if !step["response"].is_badvalue() {
        "a JSON body"
    } else if !step["text"].is_badvalue() {
        "text"
    } else {
        "no body"
    }
}

/// The deviations of two bodies of the same answer.
fn body(spec: &Spec, op: &str, expected: &Yaml, actual: &Yaml) -> Vec<StepKind> {
    let (want, got) = (body_kind(expected), body_kind(actual));
    if want != got {
        let kind = format!("expected {want}, got {got}");
        return vec![StepKind::new("body", kind.clone(), kind)];
    }
    match want {
        "a JSON body" => {
            let shape = spec.operation(op).map(|o| o.output.as_str());
            response(spec, shape, &expected["response"], &actual["response"])
        }
        "text" if !same(&expected["text"], &actual["text"]) => vec![StepKind::new(
            "body",
            "the body differs",
            "the text body differs",
        )],
        _ => Vec::new(),
    }
}

/// The deviations of two response bodies: a count if a list's length differs, else one per
/// member that differs.
fn response(spec: &Spec, shape: Option<&str>, expected: &Yaml, actual: &Yaml) -> Vec<StepKind> {
    if let Some(c) = count(expected, actual, "", "") {
        return vec![c];
    }
    let mut walk = Walk {
        spec,
        diffs: Vec::new(),
    };
    walk.walk(shape, "", "", expected, actual);
    let in_enum = walk.diffs.iter().any(|d| matches!(d.what, What::InEnum));
    walk.diffs
        .into_iter()
        .filter(|d| !(in_enum && matches!(d.what, What::Missing | What::Unexpected)))
        .map(Diff::kind)
        .collect()
}

/// The first list (depth first) whose lengths differ, as its count kind.
fn count(e: &Yaml, a: &Yaml, path: &str, at: &str) -> Option<StepKind> {
    match (e, a) {
        (Yaml::Hash(eh), Yaml::Hash(_)) => eh.iter().find_map(|(k, ev)| {
            let key = key_text(k);
            let av = &a[key.as_str()];
            (!av.is_badvalue())
                .then(|| count(ev, av, &join(path, &key), &join(at, &key)))
                .flatten()
        }),
        (Yaml::Array(el), Yaml::Array(al)) if el.len() != al.len() => {
            let kind = if al.len() > el.len() {
                "more items than expected"
            } else {
                "fewer items than expected"
            };
            Some(StepKind::new(
                format!("count/{path}"),
                kind,
                format!(
                    "{at}: expected {} item{}, got {}",
                    el.len(),
                    if el.len() == 1 { "" } else { "s" },
                    al.len()
                ),
            ))
        }
        (Yaml::Array(el), Yaml::Array(al)) => pairs(el, al).into_iter().find_map(|(i, j)| {
            let inner = item_path(path, &el[i], &al[j]);
            count(&el[i], &al[j], &inner, &format!("{at}[{j}]"))
        }),
        _ => None,
    }
}

/// What differs about one member.
enum What {
    Missing,
    Unexpected,
    Type(&'static str, &'static str),
    OutsideEnum(Vec<String>),
    InEnum,
    Value,
    /// A listing entry for another store than the snapshot's: its other members follow.
    OtherStore,
}

/// One member that differs: its path (for the rule), where it is (for the message), the values.
struct Diff {
    what: What,
    path: String,
    at: String,
    expected: Yaml,
    actual: Yaml,
}

impl Diff {
    fn kind(self) -> StepKind {
        let (e, a) = (&self.expected, &self.actual);
        let (at, path) = (&self.at, &self.path);
        match self.what {
            What::Missing => StepKind::new(
                format!("fields/{path}"),
                "missing",
                format!("{at}: missing (expected {})", show(e, SHOWN_IN_MESSAGE)),
            ),
            What::Unexpected => StepKind::new(
                format!("fields/{path}"),
                "unexpected",
                format!("{at}: unexpected ({})", show(a, SHOWN_IN_MESSAGE)),
            ),
            What::Type(t, u) => StepKind::new(
                format!("fields/{path}"),
                format!("expected {t}, got {u}"),
                format!(
                    "{at}: expected {t} {}, got {u} {}",
                    show(e, SHOWN_IN_MESSAGE),
                    show(a, SHOWN_IN_MESSAGE)
                ),
            ),
            What::OutsideEnum(values) => StepKind::new(
                format!("fields/{path}"),
                "outside the enum",
                format!(
                    "{at}: expected one of {}, got {}",
                    values.join(", "),
                    show(a, SHOWN_IN_MESSAGE)
                ),
            ),
            What::OtherStore => StepKind::new(
                format!("value/{path}"),
                "another store listed",
                format!(
                    "{at}: expected store {}, got store {}",
                    show(e, SHOWN_IN_MESSAGE),
                    show(a, SHOWN_IN_MESSAGE)
                ),
            ),
            What::InEnum | What::Value => {
                let (x, y) = (show(e, usize::MAX), show(a, usize::MAX));
                let kind = if x.chars().count() <= SHOWN && y.chars().count() <= SHOWN {
                    format!("expected {x}, got {y}")
                } else {
                    "a different value".to_string()
                };
                StepKind::new(
                    format!("value/{path}"),
                    kind,
                    format!(
                        "{at}: expected {}, got {}",
                        show(e, SHOWN_IN_MESSAGE),
                        show(a, SHOWN_IN_MESSAGE)
                    ),
                )
            }
        }
    }
}

/// A walk over two response bodies collecting the members that differ.
struct Walk<'s> {
    spec: &'s Spec,
    diffs: Vec<Diff>,
}

impl Walk<'_> {
    /// Compares `e` and `a`, of shape `shape` when the spec knows it, at rule path `path` and
    /// message path `at`.
    fn walk(&mut self, shape: Option<&str>, path: &str, at: &str, e: &Yaml, a: &Yaml) {
        let structure = shape.and_then(|s| self.spec.shapes.get(s));
        match (e, a) {
            (Yaml::Hash(eh), Yaml::Hash(ah)) => {
                for (k, ev) in eh {
                    let key = key_text(k);
                    let member = structure
                        .and_then(|s| s.members.get(&key))
                        .map(|m| m.shape.as_str());
                    let (p, w) = (join(path, &key), join(at, &key));
                    match ah.get(k) {
                        None => self.push(What::Missing, p, w, ev, &Yaml::BadValue),
                        Some(av) => self.walk(member, &p, &w, ev, av),
                    }
                }
                for (k, av) in ah.iter().filter(|(k, _)| !eh.contains_key(*k)) {
                    let key = key_text(k);
                    let (p, w) = (join(path, &key), join(at, &key));
                    self.push(What::Unexpected, p, w, &Yaml::BadValue, av);
                }
            }
            (Yaml::Array(el), Yaml::Array(al)) => {
                let item = structure.and_then(|s| s.member.as_deref());
                for (i, j) in pairs(el, al) {
                    let inner = item_path(path, &el[i], &al[j]);
                    let (x, y) = (&el[i]["CustomKeyStoreId"], &al[j]["CustomKeyStoreId"]);
                    if x.as_str().is_some() && y.as_str().is_some() && x != y {
                        // Another store in this place: one difference, not one per member.
                        let (p, w) = (join(&inner, "CustomKeyStoreId"), format!("{at}[{j}]"));
                        self.push(What::OtherStore, p, w, x, y);
                        continue;
                    }
                    self.walk(item, &inner, &format!("{at}[{j}]"), &el[i], &al[j]);
                }
            }
            // A null member is an absent one, as the fields oracle reads it.
            (_, Yaml::Null) if !e.is_null() => {
                self.push(What::Missing, path.into(), at.into(), e, a);
            }
            _ if type_word(e) != type_word(a) => {
                let what = What::Type(type_word(e), type_word(a));
                self.push(what, path.into(), at.into(), e, a);
            }
            _ if !same(e, a) => {
                let allowed = structure
                    .filter(|s| !s.open)
                    .and_then(|s| s.enum_values.as_ref());
                let what = match (allowed, e.as_str(), a.as_str()) {
                    (Some(values), _, Some(got)) if !values.iter().any(|v| v == got) => {
                        What::OutsideEnum(values.clone())
                    }
                    (Some(values), Some(want), Some(_)) if values.iter().any(|v| v == want) => {
                        What::InEnum
                    }
                    _ => What::Value,
                };
                self.push(what, path.into(), at.into(), e, a);
            }
            _ => {}
        }
    }

    fn push(&mut self, what: What, path: String, at: String, e: &Yaml, a: &Yaml) {
        self.diffs.push(Diff {
            what,
            path,
            at,
            expected: e.clone(),
            actual: a.clone(),
        });
    }
}

/// The rule path inside a list item: a list of objects (listing entries) starts afresh, so
/// the path is the one inside one item; a list of scalars keeps the list's path.
fn item_path(path: &str, e: &Yaml, a: &Yaml) -> String {
    if e.as_hash().is_some() || a.as_hash().is_some() {
        String::new()
    } else {
        path.to_string()
    }
}

/// Which expected item goes with which actual one (lists of one length): by
/// `CustomKeyStoreId` when every item has one, distinct, and both lists hold the same IDs
/// (a changed member can move an entry in the normaliser's sort), else by position.
fn pairs(e: &[Yaml], a: &[Yaml]) -> Vec<(usize, usize)> {
    let ids = |l: &[Yaml]| -> Option<Vec<String>> {
        l.iter()
            .map(|x| x["CustomKeyStoreId"].as_str().map(str::to_string))
            .collect()
    };
    if let (Some(ei), Some(ai)) = (ids(e), ids(a)) {
        let sorted = |v: &[String]| {
            let mut s = v.to_vec();
            s.sort();
            s.dedup();
            s
        };
        let (es, as_) = (sorted(&ei), sorted(&ai));
        if es.len() == ei.len() && es == as_ && as_.len() == ai.len() {
            return ei
                .iter()
                .enumerate()
                .filter_map(|(i, id)| ai.iter().position(|x| x == id).map(|j| (i, j)))
                .collect();
        }
    }
    (0..e.len().min(a.len())).map(|i| (i, i)).collect()
}

/// A path with one more member.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A mapping key as text.
fn key_text(k: &Yaml) -> String {
    match k {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => "?".into(),
    }
}

/// The JSON type of a normalised value (`[epoch]` stands for a number).
fn type_word(v: &Yaml) -> &'static str {
    match v {
        Yaml::String(s) if s == EPOCH => "number",
        Yaml::String(_) => "string",
        Yaml::Integer(_) | Yaml::Real(_) => "number",
        Yaml::Boolean(_) => "boolean",
        Yaml::Array(_) => "array",
        Yaml::Hash(_) => "object",
        Yaml::Null | Yaml::Alias(_) | Yaml::BadValue => "null",
    }
}

/// Whether two normalised values are the same (numbers by value).
fn same(e: &Yaml, a: &Yaml) -> bool {
    let number = |y: &Yaml| match y {
        Yaml::Integer(i) => Some(*i as f64),
        Yaml::Real(r) => r.parse::<f64>().ok(),
        _ => None,
    };
    match (number(e), number(a)) {
        (Some(x), Some(y)) => x == y,
        _ => e == a,
    }
}

/// A value as a message shows it, cut to `max` characters.
fn show(v: &Yaml, max: usize) -> String {
    let text = match v {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Array(l) => format!("an array of {}", l.len()),
        Yaml::Hash(_) => "an object".into(),
        Yaml::Null => "null".into(),
        Yaml::Alias(_) | Yaml::BadValue => "none".into(),
    };
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> Yaml {
        parse_step(text).expect("a step")
    }

    fn kinds(e: &str, a: &str) -> Vec<(String, String)> {
        classify(Spec::kms(), &step(e), &step(a), None)
            .into_iter()
            .map(|k| (k.rule, k.kind))
            .collect()
    }

    const LISTING: &str = "  - op: DescribeCustomKeyStores
    request: {}
    status: 200
    request_id: \"[request-id]\"
    response:
      CustomKeyStores:
        - ConnectionState: DISCONNECTED
          CustomKeyStoreId: \"[cks-1]\"
          CustomKeyStoreType: AWS_CLOUDHSM
        - ConnectionState: CONNECTED
          CustomKeyStoreId: \"[cks-2]\"
          CustomKeyStoreType: EXTERNAL_KEY_STORE
          XksProxyConfiguration:
            Connectivity: PUBLIC_ENDPOINT
      Truncated: false";

    #[test]
    fn a_step_parses_as_its_mapping() {
        let s = step(LISTING);
        assert_eq!(s["op"].as_str(), Some("DescribeCustomKeyStores"));
        assert_eq!(s["response"]["CustomKeyStores"].as_vec().unwrap().len(), 2);
        assert_eq!(parse_step("steps: [1]"), None);
    }

    #[test]
    fn entries_pair_by_id_when_a_change_moves_them() {
        // The second entry sorts first once its state changed; it is still the same store.
        let moved = LISTING
            .replace(
                "        - ConnectionState: DISCONNECTED\n          CustomKeyStoreId: \"[cks-1]\"\n          CustomKeyStoreType: AWS_CLOUDHSM\n",
                "",
            )
            .replace(
                "      Truncated: false",
                "        - ConnectionState: FAILED\n          CustomKeyStoreId: \"[cks-1]\"\n          CustomKeyStoreType: AWS_CLOUDHSM\n      Truncated: false",
            );
        assert_eq!(
            kinds(LISTING, &moved),
            [(
                "value/ConnectionState".to_string(),
                "expected DISCONNECTED, got FAILED".to_string()
            )]
        );
    }

    #[test]
    fn another_store_in_an_entrys_place_is_one_difference() {
        // A page listing cks-3 where the snapshot has cks-2: its name, type and configuration
        // follow from that, so they are not differences of their own.
        let other = LISTING
            .replace("\"[cks-2]\"", "\"[cks-3]\"")
            .replace("- ConnectionState: CONNECTED", "- ConnectionState: FAILED");
        assert_eq!(
            kinds(LISTING, &other),
            [(
                "value/CustomKeyStoreId".to_string(),
                "another store listed".to_string()
            )]
        );
    }

    #[test]
    fn a_top_level_member_keeps_its_response_path_and_a_long_value_is_not_shown() {
        let long = "x".repeat(41);
        let a = LISTING.replace("Truncated: false", "Truncated: true");
        assert_eq!(
            kinds(LISTING, &a),
            [(
                "value/Truncated".to_string(),
                "expected false, got true".to_string()
            )]
        );
        let e = LISTING.replace("Truncated: false", "Truncated: false\n      NextMarker: a");
        let a = LISTING.replace(
            "Truncated: false",
            &format!("Truncated: false\n      NextMarker: {long}"),
        );
        assert_eq!(
            kinds(&e, &a),
            [(
                "value/NextMarker".to_string(),
                "a different value".to_string()
            )]
        );
    }

    #[test]
    fn a_text_body_and_an_unparsed_difference_have_their_own_words() {
        let json = "  - op: ConnectCustomKeyStore\n    status: 200\n    response: {}";
        let text = "  - op: ConnectCustomKeyStore\n    status: 200\n    text: \"<html>\"";
        assert_eq!(
            kinds(json, text),
            [(
                "body".to_string(),
                "expected a JSON body, got text".to_string()
            )]
        );
        let a = "  - op: ConnectCustomKeyStore\n    no_answer: reset";
        let b = "  - op: ConnectCustomKeyStore\n    no_answer: timed out";
        assert_eq!(
            kinds(a, b),
            [("transcript".to_string(), "the step differs".to_string())]
        );
        assert_eq!(
            kinds(json, a),
            [(
                "answer".to_string(),
                "expected 200, got no answer".to_string()
            )]
        );
    }
}
