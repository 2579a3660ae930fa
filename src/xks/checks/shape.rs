//! Judges a JSON value against a shape of the XKS spec: required members, JSON types, enums,
//! lengths (decoded bytes for base64), list sizes and integer ranges.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::spec::{ShapeType, Spec};

/// Decodes standard (RFC 4648 §4, padded) base64; None for anything else, URL-safe included.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Encodes standard base64.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Every way `value` breaks shape `shape`, each as `path: problem`; empty when it conforms.
pub fn problems(spec: &Spec, shape: &str, value: &Value) -> Vec<String> {
    found(spec, shape, value)
        .into_iter()
        .map(|p| p.message)
        .collect()
}

/// Every way `value` breaks shape `shape` in words that hold no value, size or list index
/// (e.g. `$.ekmVendor missing`, `$.ekmFleetDetails[].healthStatus outside the enum`), each
/// once, in order: the stable part of a finding's kind.
pub fn problem_kinds(spec: &Spec, shape: &str, value: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in found(spec, shape, value) {
        if !out.contains(&p.kind) {
            out.push(p.kind);
        }
    }
    out
}

/// One way a value breaks a shape.
struct Problem {
    /// `path: problem`, with the value.
    message: String,
    /// `path problem` with list indices as `[]` and no value.
    kind: String,
}

fn found(spec: &Spec, shape: &str, value: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    walk(spec, shape, value, "$", "$", &mut out);
    out
}

fn walk(spec: &Spec, name: &str, value: &Value, path: &str, generic: &str, out: &mut Vec<Problem>) {
    let shape = spec.shape(name);
    let n = |v: Option<i64>| v.unwrap_or(-1);
    let mut push = |message: String, kind: String| {
        out.push(Problem {
            message: format!("{path}: {message}"),
            kind: format!("{generic} {kind}"),
        })
    };
    match shape.kind {
        ShapeType::Structure => {
            let Some(object) = value.as_object() else {
                push(
                    format!("expected an object, got {}", kind(value)),
                    format!("expected object, got {}", type_word(value)),
                );
                return;
            };
            for (member, r) in &shape.members {
                match object.get(member) {
                    None | Some(Value::Null) if r.required => {
                        out.push(Problem {
                            message: format!("{path}.{member}: required, missing"),
                            kind: format!("{generic}.{member} missing"),
                        });
                    }
                    None | Some(Value::Null) => {}
                    Some(v) => walk(
                        spec,
                        &r.shape,
                        v,
                        &format!("{path}.{member}"),
                        &format!("{generic}.{member}"),
                        out,
                    ),
                }
            }
        }
        ShapeType::List => {
            let Some(items) = value.as_array() else {
                push(
                    format!("expected an array, got {}", kind(value)),
                    format!("expected array, got {}", type_word(value)),
                );
                return;
            };
            let len = items.len() as i64;
            let few = shape.min.is_some_and(|m| len < m);
            if few || shape.max.is_some_and(|m| len > m) {
                push(
                    format!(
                        "{len} entries, expected {}..={}",
                        n(shape.min),
                        n(shape.max)
                    ),
                    if few {
                        "too few entries"
                    } else {
                        "too many entries"
                    }
                    .to_string(),
                );
            }
            let member = shape.member.as_deref().unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                walk(
                    spec,
                    member,
                    item,
                    &format!("{path}[{i}]"),
                    &format!("{generic}[]"),
                    out,
                );
            }
        }
        ShapeType::Integer => match value.as_i64() {
            None => push(
                format!("expected an integer, got {}", kind(value)),
                format!("expected integer, got {}", type_word(value)),
            ),
            Some(v) if shape.min.is_some_and(|m| v < m) || shape.max.is_some_and(|m| v > m) => {
                push(format!("{v} is out of range"), "out of range".to_string());
            }
            Some(_) => {}
        },
        ShapeType::String => {
            let Some(text) = value.as_str() else {
                push(
                    format!("expected a string, got {}", kind(value)),
                    format!("expected string, got {}", type_word(value)),
                );
                return;
            };
            if let Some(values) = &shape.enum_values
                && !shape.open
                && !values.iter().any(|v| v == text)
            {
                push(
                    format!("{text:?} is not one of {values:?}"),
                    "outside the enum".to_string(),
                );
            }
            let len = if shape.encoding.is_some() {
                match decode(text) {
                    Some(bytes) => bytes.len() as i64,
                    None => {
                        push(
                            format!("not standard base64: {}", cut(text)),
                            "not standard base64".to_string(),
                        );
                        return;
                    }
                }
            } else {
                text.chars().count() as i64
            };
            let unit = if shape.encoding.is_some() {
                "bytes"
            } else {
                "characters"
            };
            let short = shape.min.is_some_and(|m| len < m);
            if short || shape.max.is_some_and(|m| len > m) {
                push(
                    format!("{len} {unit}, expected {}..={}", n(shape.min), n(shape.max)),
                    if short { "too short" } else { "too long" }.to_string(),
                );
            }
            if let Some(lengths) = &shape.lengths
                && !lengths.contains(&len)
            {
                push(
                    format!("{len} {unit}, expected one of {lengths:?}"),
                    "of a length not allowed".to_string(),
                );
            }
            if !shape.pattern_matches(text) {
                push(
                    format!("{} breaks its pattern", cut(text)),
                    "breaks its pattern".to_string(),
                );
            }
        }
        ShapeType::Boolean | ShapeType::Timestamp => {}
    }
}

/// The JSON type word of a value, for kinds: `string`, `number`, `boolean`, `array`, `object`
/// or `null`.
pub fn type_word(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON type of a value, in words.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value cut to 40 characters for a message.
pub fn cut(text: &str) -> String {
    if text.chars().count() <= 40 {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(40).collect();
        format!("{head:?}… ({} characters)", text.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn health() -> Value {
        json!({"xksProxyFleetSize": 1, "xksProxyVendor": "v", "xksProxyModel": "m 1.0",
               "ekmVendor": "e", "ekmFleetDetails": [{"id": "a", "model": "m", "healthStatus": "ACTIVE"}]})
    }

    #[test]
    fn a_conforming_health_answer_has_no_problems() {
        assert!(problems(Spec::xks(), "GetHealthStatusResponse", &health()).is_empty());
    }

    #[test]
    fn missing_members_bad_enums_sizes_and_types_are_each_named() {
        let spec = Spec::xks();
        let mut h = health();
        h.as_object_mut().unwrap().remove("ekmVendor");
        h["ekmFleetDetails"][0]["healthStatus"] = json!("OK");
        h["xksProxyFleetSize"] = json!(0);
        let p = problems(spec, "GetHealthStatusResponse", &h).join("\n");
        assert!(p.contains("$.ekmVendor: required"), "{p}");
        assert!(p.contains("healthStatus: \"OK\" is not one of"), "{p}");
        assert!(p.contains("xksProxyFleetSize: 0 is out of range"), "{p}");
        let mut h = health();
        h["ekmFleetDetails"] = json!([]);
        let p = problems(spec, "GetHealthStatusResponse", &h).join("\n");
        assert!(p.contains("0 entries, expected 1..=10"), "{p}");
        let enc = json!({"ciphertext": "AAAA", "initializationVector": encode(&[0; 13]),
                         "authenticationTag": "a-b_", "ciphertextMetadata": encode(&[1; 21])});
        let p = problems(spec, "EncryptResponse", &enc).join("\n");
        assert!(
            p.contains("initializationVector: 13 bytes, expected one of [12, 16]"),
            "{p}"
        );
        assert!(p.contains("authenticationTag: not standard base64"), "{p}");
        assert!(p.contains("ciphertextMetadata: 21 bytes"), "{p}");
        assert_eq!(
            problem_kinds(spec, "EncryptResponse", &enc),
            [
                "$.authenticationTag not standard base64",
                "$.ciphertextMetadata too long",
                "$.initializationVector of a length not allowed"
            ]
        );
        let p = problems(spec, "GetKeyMetadataResponse", &json!({"keySpec": 1})).join("\n");
        assert!(
            p.contains("keySpec: expected a string, got a number"),
            "{p}"
        );
    }

    #[test]
    fn open_enums_accept_other_values_and_base64_is_strict() {
        let spec = Spec::xks();
        let meta = json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT", "FANCY"], "keyStatus": "ENABLED"});
        assert!(problems(spec, "GetKeyMetadataResponse", &meta).is_empty());
        assert_eq!(decode("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode("-_8="), None, "URL-safe alphabet");
        assert_eq!(decode("+/8"), None, "padding missing");
    }

    #[test]
    fn problem_kinds_hold_no_value_or_index() {
        let spec = Spec::xks();
        let mut h = health();
        h.as_object_mut().unwrap().remove("ekmVendor");
        h["ekmFleetDetails"] = json!([
            {"id": "a", "model": "m", "healthStatus": "OK"},
            {"id": "b", "model": "m", "healthStatus": "FINE"},
        ]);
        assert_eq!(
            problem_kinds(spec, "GetHealthStatusResponse", &h),
            [
                "$.ekmFleetDetails[].healthStatus outside the enum",
                "$.ekmVendor missing"
            ]
        );
    }
}
