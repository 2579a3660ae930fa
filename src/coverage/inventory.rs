//! The rule inventory, derived from the spec, the model's conditions table and the state table:
//! nothing here lists a rule by hand, so a rule added to the spec shows up here by itself.

use serde::Serialize;

use super::ids;
use crate::generate::values::{self, breakable};
use crate::model::ConnectionState;
use crate::model::conditions::CONDITIONS;
use crate::oracle::states;
use crate::spec::{ErrorClass, ShapeType, Spec};

/// What kind of rule it is (the part of its id before the first `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A member constraint: length, range, pattern, enum, required, JSON type.
    Member,
    /// A member required or forbidden by the store's type or connectivity.
    Type,
    /// An exclusive group of members.
    Exclusive,
    /// A cell of the state table.
    State,
    /// A declared error the reference can be led to.
    Error,
    /// A rule of the wire protocol.
    Protocol,
}

impl Kind {
    /// The trials that can exercise rules of this kind (scenarios exercise state cells and
    /// errors too).
    pub fn checks(self) -> &'static [&'static str] {
        match self {
            Kind::Member | Kind::Type | Kind::Protocol => &["validation"],
            Kind::Exclusive => &["exclusion"],
            Kind::State => &["states"],
            Kind::Error => &["agreement"],
        }
    }
}

/// One rule of the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Stable id, e.g. `member/UpdateCustomKeyStore/NewCustomKeyStoreName/length-max`.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// The operation it belongs to (None: every operation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// What it says, in one line.
    pub says: String,
}

/// Every rule of the KMS custom key store API, sorted by id.
pub fn inventory() -> Vec<Rule> {
    let spec = Spec::kms();
    let mut rules = Vec::new();
    for (op, operation) in &spec.operations {
        members(spec, op, &operation.input, &mut Vec::new(), &mut rules);
        for group in &operation.exclusive {
            rules.push(Rule {
                id: ids::exclusive(op, &group.members),
                kind: Kind::Exclusive,
                operation: Some(op.clone()),
                says: format!(
                    "{} together get {}{}",
                    group.members.join(" and "),
                    group.error,
                    if group.inferred { " (inferred)" } else { "" }
                ),
            });
        }
        for error in &operation.errors {
            let reachable = spec.errors.get(error).is_some_and(|d| {
                d.class == ErrorClass::Client
                    && !d.framework
                    && !operation.beyond.contains(error)
                    && !operation.unreached.iter().any(|u| &u.error == error)
            });
            if reachable {
                rules.push(Rule {
                    id: ids::error(op, error),
                    kind: Kind::Error,
                    operation: Some(op.clone()),
                    says: format!("a request the reference refuses with {error} gets it"),
                });
            }
        }
    }
    for c in CONDITIONS {
        let when = c.when.label();
        for (verb, list) in [("requires", c.requires), ("forbids", c.forbids)] {
            for m in list {
                rules.push(Rule {
                    id: format!("type/{}/{when}/{verb}/{m}", c.operation),
                    kind: Kind::Type,
                    operation: Some(c.operation.to_string()),
                    says: format!(
                        "with {when}, {m} is {}",
                        if verb == "requires" {
                            "required"
                        } else {
                            "refused"
                        }
                    ),
                });
            }
        }
    }
    for op in states::TABLE_OPERATIONS {
        if spec.operation(op).is_none() {
            continue;
        }
        for state in ConnectionState::ALL {
            rules.push(Rule {
                id: ids::state(op, state.as_str()),
                kind: Kind::State,
                operation: Some(op.to_string()),
                says: format!("in {}: {}", state.as_str(), states::cell(op, state)),
            });
        }
    }
    let s = &spec.service;
    for (rule, says) in [
        (
            "unknown-operation",
            format!(
                "an X-Amz-Target of {}.<name> with no such operation gets UnknownOperationException",
                s.target_prefix
            ),
        ),
        (
            "missing-target",
            "a request without X-Amz-Target is refused as an unknown operation".to_string(),
        ),
        (
            "wrong-content-type",
            format!("a Content-Type other than {} is refused", s.content_type),
        ),
        (
            "malformed-json",
            "a body that is not a JSON object gets SerializationException".to_string(),
        ),
    ] {
        rules.push(Rule {
            id: ids::protocol(rule),
            kind: Kind::Protocol,
            operation: None,
            says,
        });
    }
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    rules
}

/// Declared errors left out of the inventory because no fixture can lead to them, each with
/// why: `(rule id it would have, why)`.
pub fn unreached() -> Vec<(String, String)> {
    let spec = Spec::kms();
    let mut out = Vec::new();
    for (op, operation) in &spec.operations {
        for u in &operation.unreached {
            out.push((ids::error(op, &u.error), u.why.clone()));
        }
    }
    out
}

/// The constraints of one structure's members, nested members by dotted path.
fn members(spec: &Spec, op: &str, structure: &str, path: &mut Vec<String>, out: &mut Vec<Rule>) {
    for (name, member) in &spec.shape(structure).members {
        path.push(name.clone());
        let dotted = path.join(".");
        let shape = spec.shape(&member.shape);
        let mut kinds: Vec<(&str, String)> = Vec::new();
        if member.required {
            kinds.push(("required", "is required".into()));
        }
        kinds.push((
            "json-type",
            format!("must be a JSON {}", json_kind(shape.kind)),
        ));
        match shape.kind {
            ShapeType::String if shape.enum_values.is_some() && !shape.open => {
                let values = shape.enum_values.as_deref().unwrap_or_default();
                kinds.push(("enum", format!("must be one of {}", values.join(", "))));
            }
            ShapeType::String => {
                // A bound the pattern already implies (no value of that length matches it) is
                // no rule of its own: the pattern rule covers it.
                let stands = |rule: values::Rule| {
                    shape.pattern.is_none() || breakable(&member.shape).contains(&rule)
                };
                if let Some(min) = shape
                    .min
                    .filter(|m| *m > 0 && stands(values::Rule::LengthMin))
                {
                    kinds.push(("length-min", format!("has at least {min} characters")));
                }
                if let Some(max) = shape.max.filter(|_| stands(values::Rule::LengthMax)) {
                    kinds.push(("length-max", format!("has at most {max} characters")));
                }
                if let Some(p) = &shape.pattern {
                    kinds.push(("pattern", format!("matches {p}")));
                }
            }
            ShapeType::Integer => {
                if let Some(min) = shape.min {
                    kinds.push(("range-min", format!("is at least {min}")));
                }
                if let Some(max) = shape.max {
                    kinds.push(("range-max", format!("is at most {max}")));
                }
            }
            _ => {}
        }
        for (kind, says) in kinds {
            out.push(Rule {
                id: ids::member(op, &dotted, kind),
                kind: Kind::Member,
                operation: Some(op.to_string()),
                says: format!("{dotted} {says}"),
            });
        }
        if shape.kind == ShapeType::Structure {
            members(spec, op, &member.shape, path, out);
        }
        path.pop();
    }
}

fn json_kind(kind: ShapeType) -> &'static str {
    match kind {
        ShapeType::String => "string",
        ShapeType::Integer => "integer",
        ShapeType::Boolean => "boolean",
        ShapeType::Timestamp => "number",
        ShapeType::Structure => "object",
        ShapeType::List => "array",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_kind_is_there() {
        let rules = inventory();
        let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), rules.len(), "duplicate rule ids");
        for kind in [
            Kind::Member,
            Kind::Type,
            Kind::Exclusive,
            Kind::State,
            Kind::Error,
            Kind::Protocol,
        ] {
            assert!(rules.iter().any(|r| r.kind == kind), "no {kind:?} rule");
        }
        let has = |id: &str| rules.iter().any(|r| r.id == id);
        assert!(has(
            "member/UpdateCustomKeyStore/NewCustomKeyStoreName/length-max"
        ));
        assert!(has(
            "type/CreateCustomKeyStore/CustomKeyStoreType=AWS_CLOUDHSM/requires/KeyStorePassword"
        ));
        assert!(has("state/DeleteCustomKeyStore/CONNECTED"));
        assert!(has("error/DescribeCustomKeyStores/InvalidMarkerException"));
        // Faults cannot be provoked, framework errors are rules of their own.
        assert!(!has("error/CreateCustomKeyStore/KMSInternalException"));
    }
}
