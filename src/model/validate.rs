//! Input checks driven by the spec: serialization (JSON shape) first, then member constraints.

use serde_json::{Map, Value};

use super::{KmsError, err, invalid};
use crate::spec::{Shape, ShapeType, Spec};

/// Parses a request body into a JSON object with null members removed (null means absent).
pub fn parse_body(body: &[u8]) -> Result<Value, KmsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        err(
            "SerializationException",
            format!(
                "The request body is not valid JSON ({}).",
                e.classify_name()
            ),
        )
    })?;
    match value {
        Value::Object(_) => Ok(strip_nulls(value)),
        other => Err(err(
            "SerializationException",
            format!(
                "{} found where a structure was expected.",
                token_kind(&other)
            ),
        )),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Io => "unreadable input",
        }
    }
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Checks every operation input rule: JSON types, then constraints, then exclusive groups.
pub fn check_input(spec: &Spec, operation: &str, input: &Value) -> Result<(), KmsError> {
    let op = &spec.operations[operation];
    check_types(spec, &op.input, input)?;
    let mut violations = Vec::new();
    constraints(spec, spec.shape(&op.input), input, "", &mut violations);
    if !violations.is_empty() {
        let n = violations.len();
        let plural = if n == 1 { "error" } else { "errors" };
        return Err(invalid(format!(
            "{n} validation {plural} detected: {}",
            violations.join("; ")
        )));
    }
    for group in &op.exclusive {
        let given: Vec<&String> = group
            .members
            .iter()
            .filter(|m| input.get(m.as_str()).is_some())
            .collect();
        if given.len() > 1 {
            let names: Vec<&str> = given.iter().map(|s| s.as_str()).collect();
            return Err(err(
                &group.error,
                format!("Specify only one of {}, not both.", names.join(" or ")),
            ));
        }
    }
    Ok(())
}

/// SerializationException for the first member whose JSON type does not fit its shape.
pub fn check_types(spec: &Spec, shape_name: &str, value: &Value) -> Result<(), KmsError> {
    types(spec, spec.shape(shape_name), value, "")
}

fn types(spec: &Spec, shape: &Shape, value: &Value, path: &str) -> Result<(), KmsError> {
    let fits = match shape.kind {
        ShapeType::String => value.is_string(),
        ShapeType::Integer => value.is_i64() || value.is_u64(),
        ShapeType::Boolean => value.is_boolean(),
        ShapeType::Timestamp => value.is_number(),
        ShapeType::Structure => value.is_object(),
        ShapeType::List => value.is_array(),
    };
    if !fits {
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at '{path}'")
        };
        return Err(err(
            "SerializationException",
            format!(
                "{} can not be converted to {}{at}.",
                token_kind(value),
                expected_kind(shape.kind)
            ),
        ));
    }
    match (shape.kind, value) {
        (ShapeType::Structure, Value::Object(map)) => {
            for (name, member) in &shape.members {
                if let Some(v) = map.get(name) {
                    types(spec, spec.shape(&member.shape), v, &join(path, name))?;
                }
            }
        }
        (ShapeType::List, Value::Array(items)) => {
            let element = spec.shape(shape.member.as_deref().unwrap_or_default());
            for (i, v) in items.iter().enumerate() {
                types(spec, element, v, &format!("{path}.{}", i + 1))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn constraints(spec: &Spec, shape: &Shape, value: &Value, path: &str, out: &mut Vec<String>) {
    let shown = |v: &str| {
        if shape.sensitive {
            format!("Value at '{path}'")
        } else {
            format!("Value '{v}' at '{path}'")
        }
    };
    match value {
        Value::Object(map) => {
            for (name, member) in &shape.members {
                let member_path = join(path, name);
                match map.get(name) {
                    Some(v) => constraints(spec, spec.shape(&member.shape), v, &member_path, out),
                    None if member.required => out.push(format!(
                        "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                    )),
                    None => {}
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as i64;
            if let Some(min) = shape.min.filter(|&m| len < m) {
                out.push(format!(
                    "{} failed to satisfy constraint: Member must have length greater than or equal to {min}",
                    shown(s)
                ));
            }
            if let Some(max) = shape.max.filter(|&m| len > m) {
                out.push(format!(
                    "{} failed to satisfy constraint: Member must have length less than or equal to {max}",
                    shown(s)
                ));
            }
            if !shape.pattern_matches(s) {
                out.push(format!(
                    "{} failed to satisfy constraint: Member must satisfy regular expression pattern: {}",
                    shown(s),
                    shape.pattern.as_deref().unwrap_or_default()
                ));
            }
            if let Some(values) = &shape.enum_values
                && !values.iter().any(|v| v == s)
            {
                out.push(format!(
                    "{} failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    shown(s),
                    values.join(", ")
                ));
            }
        }
        Value::Number(n) if shape.kind == ShapeType::Integer => {
            let v = n.as_i64().unwrap_or(i64::MAX);
            if let Some(min) = shape.min.filter(|&m| v < m) {
                out.push(format!(
                    "{} failed to satisfy constraint: Member must have value greater than or equal to {min}",
                    shown(&n.to_string())
                ));
            }
            if let Some(max) = shape.max.filter(|&m| v > m) {
                out.push(format!(
                    "{} failed to satisfy constraint: Member must have value less than or equal to {max}",
                    shown(&n.to_string())
                ));
            }
        }
        Value::Array(items) => {
            let element = spec.shape(shape.member.as_deref().unwrap_or_default());
            for (i, v) in items.iter().enumerate() {
                constraints(spec, element, v, &format!("{path}.{}", i + 1), out);
            }
        }
        _ => {}
    }
}

/// `parent.member` with the member in lower camel case, as KMS names paths in messages.
fn join(parent: &str, member: &str) -> String {
    let mut chars = member.chars();
    let camel: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    if parent.is_empty() {
        camel
    } else {
        format!("{parent}.{camel}")
    }
}

fn token_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::String(_) => "STRING_VALUE",
        Value::Array(_) => "Start of list",
        Value::Object(_) => "Start of structure or map",
    }
}

fn expected_kind(kind: ShapeType) -> &'static str {
    match kind {
        ShapeType::String => "a String",
        ShapeType::Integer => "an Integer",
        ShapeType::Boolean => "a Boolean",
        ShapeType::Timestamp => "a Timestamp",
        ShapeType::Structure => "a structure",
        ShapeType::List => "a list",
    }
}
