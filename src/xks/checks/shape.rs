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
    let mut out = Vec::new();
    walk(spec, shape, value, "$", &mut out);
    out
}

fn walk(spec: &Spec, name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let shape = spec.shape(name);
    let n = |v: Option<i64>| v.unwrap_or(-1);
    match shape.kind {
        ShapeType::Structure => {
            let Some(object) = value.as_object() else {
                out.push(format!("{path}: expected an object, got {}", kind(value)));
                return;
            };
            for (member, r) in &shape.members {
                match object.get(member) {
                    None | Some(Value::Null) if r.required => {
                        out.push(format!("{path}.{member}: required, missing"));
                    }
                    None | Some(Value::Null) => {}
                    Some(v) => walk(spec, &r.shape, v, &format!("{path}.{member}"), out),
                }
            }
        }
        ShapeType::List => {
            let Some(items) = value.as_array() else {
                out.push(format!("{path}: expected an array, got {}", kind(value)));
                return;
            };
            let len = items.len() as i64;
            if shape.min.is_some_and(|m| len < m) || shape.max.is_some_and(|m| len > m) {
                out.push(format!(
                    "{path}: {len} entries, expected {}..={}",
                    n(shape.min),
                    n(shape.max)
                ));
            }
            let member = shape.member.as_deref().unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                walk(spec, member, item, &format!("{path}[{i}]"), out);
            }
        }
        ShapeType::Integer => match value.as_i64() {
            None => out.push(format!("{path}: expected an integer, got {}", kind(value))),
            Some(v) if shape.min.is_some_and(|m| v < m) || shape.max.is_some_and(|m| v > m) => {
                out.push(format!("{path}: {v} is out of range"));
            }
            Some(_) => {}
        },
        ShapeType::String => {
            let Some(text) = value.as_str() else {
                out.push(format!("{path}: expected a string, got {}", kind(value)));
                return;
            };
            if let Some(values) = &shape.enum_values
                && !shape.open
                && !values.iter().any(|v| v == text)
            {
                out.push(format!("{path}: {text:?} is not one of {values:?}"));
            }
            let len = if shape.encoding.is_some() {
                match decode(text) {
                    Some(bytes) => bytes.len() as i64,
                    None => {
                        out.push(format!("{path}: not standard base64: {}", cut(text)));
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
            if shape.min.is_some_and(|m| len < m) || shape.max.is_some_and(|m| len > m) {
                out.push(format!(
                    "{path}: {len} {unit}, expected {}..={}",
                    n(shape.min),
                    n(shape.max)
                ));
            }
            if let Some(lengths) = &shape.lengths
                && !lengths.contains(&len)
            {
                out.push(format!("{path}: {len} {unit}, expected one of {lengths:?}"));
            }
            if !shape.pattern_matches(text) {
                out.push(format!("{path}: {} breaks its pattern", cut(text)));
            }
        }
        ShapeType::Boolean | ShapeType::Timestamp => {}
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
}
