//! A scenario as runnable steps: roles resolved to the fixtures' backends, `create` bodies
//! built, repetitions unrolled. Pure: nothing is sent here.

use serde_json::{Map, Value};

use super::corpus::{Scenario, ScenarioStep};
use super::roles;
use crate::generate::Step;
use crate::generate::backends::{create_body, remove_path};
use crate::history::Expectation;
use crate::model::Fixtures;

/// The runnable form of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The steps, repetitions unrolled.
    pub steps: Vec<Step>,
    /// For each step, whether its error message is pinned.
    pub pinned: Vec<bool>,
    /// The roles the scenario names, in order of first use.
    pub roles: Vec<String>,
}

/// The script of `scenario` against `fixtures`, or why it cannot run there (a role no fixture
/// plays, a field a backend lacks).
pub fn script(scenario: &Scenario, fixtures: &Fixtures) -> Result<Script, String> {
    let mut out = Script {
        steps: Vec::new(),
        pinned: Vec::new(),
        roles: Vec::new(),
    };
    for step in &scenario.steps {
        for n in 0..step.repeat.unwrap_or(1) {
            let built = build(step, n, fixtures, &mut out.roles)?;
            out.steps.push(built);
            out.pinned.push(step.pin_message);
        }
    }
    Ok(out)
}

fn build(
    step: &ScenarioStep,
    n: usize,
    fixtures: &Fixtures,
    roles: &mut Vec<String>,
) -> Result<Step, String> {
    if let Some(store) = step.settle {
        return Ok(Step::Settle { store });
    }
    let operation = step.op.clone().unwrap_or_default();
    if let Some(raw) = &step.raw {
        return Ok(Step::Raw {
            operation,
            body: raw.replace("{n}", &n.to_string()),
            expect: Expectation {
                error: None,
                rule: "scenario".into(),
                unsettled: false,
            },
        });
    }
    let mut body = match &step.create {
        Some(role) => {
            let backend = roles::backend(fixtures, role)?;
            note(roles, role);
            let mut body = create_body(fixtures, backend, "", false);
            if let Some(map) = body.as_object_mut() {
                map.remove("CustomKeyStoreName");
            }
            for path in &step.omit {
                remove_path(&mut body, &path.split('.').collect::<Vec<_>>());
            }
            merge(&mut body, step.body_json());
            body
        }
        None => step.body_json(),
    };
    body = resolve(&body, n, fixtures, roles)?;
    Ok(Step::Call {
        operation,
        body,
        expect: None,
    })
}

fn note(roles: &mut Vec<String>, role: &str) {
    if !roles.iter().any(|r| r == role) {
        roles.push(role.to_string());
    }
}

/// Puts `over`'s members over `base`'s; nested objects merge.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Replaces `{n}` and fixture references (`$cluster:…`, `$xks:…`) in every string.
fn resolve(
    value: &Value,
    n: usize,
    fixtures: &Fixtures,
    roles: &mut Vec<String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let s = s.replace("{n}", &n.to_string());
            let reference = s
                .strip_prefix('$')
                .filter(|r| r.starts_with("cluster:") || r.starts_with("xks:"));
            match reference {
                Some(r) => {
                    let role = match r.rsplit_once('.') {
                        Some((role, _)) if role.contains(':') => role,
                        _ => r,
                    };
                    let v = roles::value(fixtures, r)?;
                    note(roles, role);
                    Value::String(v)
                }
                None => Value::String(s),
            }
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), resolve(v, n, fixtures, roles)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve(v, n, fixtures, roles))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::corpus::parse;
    use serde_json::json;

    fn one(text: &str) -> Scenario {
        parse("t.toml", text).unwrap().remove(0)
    }

    #[test]
    fn a_create_role_builds_the_full_body_with_overrides_and_omissions() {
        let s = one(r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "CreateCustomKeyStore", create = "xks:public", omit = ["XksProxyAuthenticationCredential.AccessKeyId"], body = { CustomKeyStoreName = "$name:a", XksProxyAuthenticationCredential = { RawSecretAccessKey = "$cluster:healthy.password" } } }]"#);
        let f = Fixtures::builtin();
        let got = script(&s, &f).unwrap();
        let Step::Call { body, .. } = &got.steps[0] else {
            panic!("a call")
        };
        assert_eq!(
            body,
            &json!({
                "CustomKeyStoreName": "$name:a",
                "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
                "XksProxyUriEndpoint": "https://xks-ok.example.test",
                "XksProxyUriPath": "/ok/kms/xks/v1",
                "XksProxyConnectivity": "PUBLIC_ENDPOINT",
                "XksProxyAuthenticationCredential": { "RawSecretAccessKey": "kmsuser-pass-a" },
            })
        );
        assert_eq!(got.roles, vec!["xks:public", "cluster:healthy"]);
    }

    #[test]
    fn repeat_unrolls_and_numbers_strings_and_settle_stays_a_settle() {
        let s = one(r#"[[scenario]]
name = "x"
purpose = "p"
steps = [
  { op = "CreateCustomKeyStore", create = "cluster:healthy", repeat = 3, body = { CustomKeyStoreName = "$name:q{n}" } },
  { settle = 2 },
  { op = "DescribeCustomKeyStores", raw = '{"Limit": "{n}"}', pin_message = true },
]"#);
        let got = script(&s, &Fixtures::builtin()).unwrap();
        assert_eq!(got.steps.len(), 5);
        let names: Vec<_> = got.steps[..3]
            .iter()
            .map(|s| match s {
                Step::Call { body, .. } => body["CustomKeyStoreName"].clone(),
                _ => Value::Null,
            })
            .collect();
        assert_eq!(
            names,
            vec![json!("$name:q0"), json!("$name:q1"), json!("$name:q2")]
        );
        assert_eq!(got.steps[3], Step::Settle { store: 2 });
        assert!(matches!(&got.steps[4], Step::Raw { body, .. } if body == r#"{"Limit": "0"}"#));
        assert_eq!(got.pinned, vec![false, false, false, false, true]);
    }

    #[test]
    fn a_role_no_fixture_plays_makes_the_scenario_unrunnable() {
        let s = one(r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "ConnectCustomKeyStore", body = { CustomKeyStoreId = "$cluster:healthy" } }]"#);
        let e = script(&s, &Fixtures::default()).unwrap_err();
        assert!(e.contains("cluster:healthy"), "{e}");
    }
}
