//! Findings say their cause: when a request carried a string whose length sits on the other side
//! of a limit under another measure than the spec's, the finding says so.
//!
//! The spec's string lengths count characters (Unicode scalar values, as Smithy's `length`
//! trait does). An endpoint that counts UTF-8 bytes or UTF-16 code units instead refuses a
//! valid value of multi-byte characters at the upper bound, or accepts a short one below the
//! lower bound. The note names the member, the limit and the value in each measure, so the
//! reader sees the cause without decoding the request.

use serde_json::Value;

use super::Verdict;
use crate::history::History;
use crate::spec::{ShapeType, Spec};

/// Appends to each finding the measure notes of the request it is about.
pub fn explain(history: &History, verdict: &mut Verdict) {
    for f in &mut verdict.findings {
        let Some(e) = f.exchange.and_then(|i| history.exchanges.get(i)) else {
            continue;
        };
        if e.raw {
            continue;
        }
        let notes = notes(&e.operation, &e.request);
        if !notes.is_empty() && !f.message.contains(MARK) {
            f.message = format!("{} ({MARK}: {})", f.message, notes.join("; "));
        }
    }
}

/// What starts every note, so a finding is annotated once.
const MARK: &str = "length measure";

/// One note per string member of `request` (an `operation` input) that a different measure
/// would move across its length limit.
pub fn notes(operation: &str, request: &Value) -> Vec<String> {
    measured(operation, request)
        .iter()
        .filter_map(Measured::note)
        .collect()
}

/// The first string member of `request` within its limit in characters but over its maximum
/// in UTF-8 bytes, with that maximum: what an endpoint that counts bytes refuses.
pub fn over_in_bytes(operation: &str, request: &Value) -> Option<(String, i64)> {
    measured(operation, request).into_iter().find_map(|m| {
        let max = m.max?;
        (m.within(m.chars) && m.bytes > max).then_some((m.member, max))
    })
}

/// A string member of a request, its limits and its length in each measure.
struct Measured {
    member: String,
    chars: i64,
    bytes: i64,
    units: i64,
    min: Option<i64>,
    max: Option<i64>,
    secret: bool,
}

/// Every length-limited string member of `request`, measured.
fn measured(operation: &str, request: &Value) -> Vec<Measured> {
    let spec = Spec::kms();
    let Some(op) = spec.operations.get(operation) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(spec, &op.input, request, &mut String::new(), &mut out);
    out
}

fn walk(spec: &Spec, shape_name: &str, value: &Value, path: &mut String, out: &mut Vec<Measured>) {
    let Some(shape) = spec.shapes.get(shape_name) else {
        return;
    };
    match (shape.kind, value) {
        (ShapeType::Structure, Value::Object(map)) => {
            for (name, member) in &shape.members {
                let Some(v) = map.get(name) else { continue };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                walk(spec, &member.shape, v, path, out);
                path.truncate(len);
            }
        }
        (ShapeType::String, Value::String(s))
            if shape.encoding.is_none() && (shape.min.is_some() || shape.max.is_some()) =>
        {
            out.push(Measured {
                member: path.clone(),
                chars: s.chars().count() as i64,
                bytes: s.len() as i64,
                units: s.encode_utf16().count() as i64,
                min: shape.min,
                max: shape.max,
                secret: shape.sensitive,
            });
        }
        _ => {}
    }
}

impl Measured {
    /// Whether a length `n` is within the limits.
    fn within(&self, n: i64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }

    /// The note, if another measure puts the value on the other side of a limit.
    fn note(&self) -> Option<String> {
        let inside = self.within(self.chars);
        let moved: Vec<&str> = [
            ("UTF-8 bytes", self.bytes),
            ("UTF-16 code units", self.units),
        ]
        .into_iter()
        .filter(|(_, n)| self.within(*n) != inside)
        .map(|(what, _)| what)
        .collect();
        if moved.is_empty() {
            return None;
        }
        let limit = match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (None, Some(hi)) => format!("at most {hi}"),
            (None, None) => return None,
        };
        let (side, other) = if inside {
            ("within", "outside")
        } else {
            ("outside", "within")
        };
        let what = if self.secret {
            " (a secret, not shown)"
        } else {
            ""
        };
        Some(format!(
            "{}{what} is {} characters, {} UTF-8 bytes and {} UTF-16 code units; the spec's \
             limit ({limit}) counts characters, which puts it {side} the limit, while counted \
             in {} it is {other}",
            self.member,
            self.chars,
            self.bytes,
            self.units,
            moved.join(" or ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oracle::common::DESCRIBE;
    use crate::oracle::common::testing::*;

    #[test]
    fn a_marker_at_the_limit_in_characters_but_over_it_in_bytes_is_explained() {
        let marker = "é".repeat(552) + &"a".repeat(472);
        assert_eq!(marker.chars().count(), 1024);
        let notes = notes(DESCRIBE, &json!({ "Marker": marker }));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "Marker is 1024 characters, 1576 UTF-8 bytes and 1024 UTF-16 code units"
            ),
            "{notes:?}"
        );
        assert!(
            notes[0].contains("within the limit, while counted in UTF-8 bytes it is outside"),
            "{notes:?}"
        );
    }

    #[test]
    fn ascii_values_and_values_far_from_a_limit_get_no_note() {
        assert!(notes(DESCRIBE, &json!({ "Marker": "a".repeat(1024) })).is_empty());
        assert!(notes(DESCRIBE, &json!({ "Marker": "é".repeat(10) })).is_empty());
        assert!(notes(DESCRIBE, &json!({ "Limit": 1000 })).is_empty());
    }

    #[test]
    fn a_short_secret_that_bytes_would_admit_is_explained_without_its_value() {
        // KeyStorePassword: 7 to 32 characters. Six two-byte characters are 12 bytes.
        let body = json!({ "CustomKeyStoreName": "n", "KeyStorePassword": "éééééé" });
        let notes = notes("CreateCustomKeyStore", &body);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("KeyStorePassword (a secret, not shown) is 6 characters"));
        assert!(!notes[0].contains('é'));
        assert!(notes[0].contains("outside the limit, while counted in UTF-8 bytes it is within"));
    }

    #[test]
    fn nested_members_and_astral_characters_are_measured() {
        // Four-byte characters are two UTF-16 code units each.
        let body = json!({
            "CustomKeyStoreName": "🔑".repeat(256),
        });
        let notes = notes("CreateCustomKeyStore", &body);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("UTF-8 bytes or UTF-16 code units"),
            "{notes:?}"
        );
    }

    #[test]
    fn explain_annotates_the_finding_about_the_exchange_once() {
        let mut h = H::new();
        let marker = "é".repeat(1024);
        let i = h.call(
            DESCRIBE,
            json!({ "Marker": marker }),
            error("ValidationException"),
        );
        let history = h.history();
        let mut v = Verdict::default();
        v.fail(
            DESCRIBE,
            "pagination/x",
            "kind",
            "expected X, got Y",
            Some(i),
        );
        v.fail(DESCRIBE, "pagination/y", "kind", "no exchange", None);
        explain(&history, &mut v);
        explain(&history, &mut v);
        assert_eq!(v.findings[0].kind, "kind", "the signature does not change");
        assert_eq!(v.findings[0].message.matches(MARK).count(), 1);
        assert!(v.findings[0].message.starts_with(
            "expected X, got Y (length measure: Marker is 1024 characters, 2048 UTF-8 bytes"
        ));
        assert_eq!(v.findings[1].message, "no exchange");
    }
}
