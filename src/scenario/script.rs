//! A scenario as runnable steps: roles resolved to the fixtures' backends, `create` bodies
//! built, repetitions unrolled. Pure: nothing is sent here.

use serde_json::{Map, Value};

use super::corpus::{Scenario, ScenarioStep};
use super::roles;
use crate::generate::Step;
use crate::generate::backends::{create_body, remove_path};
use crate::history::{Expectation, Wire};
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
    /// For each step, where its request holds a fixture value and which reference
    /// (`ROLE[.FIELD]`) it came from.
    pub origins: Vec<Vec<Origin>>,
}

/// A fixture value in a request: its place in the body and the reference it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The member names (and list indexes) from the body to the value.
    pub path: Vec<String>,
    /// The reference, `ROLE` or `ROLE.FIELD` (as in `$cluster:healthy.anchor`).
    pub reference: String,
}

/// The script of `scenario` against `fixtures`, or why it cannot run there (a role no fixture
/// plays, a field a backend lacks).
pub fn script(scenario: &Scenario, fixtures: &Fixtures) -> Result<Script, String> {
    let mut out = Script {
        steps: Vec::new(),
        pinned: Vec::new(),
        roles: Vec::new(),
        origins: Vec::new(),
    };
    for step in &scenario.steps {
        for n in 0..step.repeat.unwrap_or(1) {
            let mut origins = Vec::new();
            let built = build(step, n, fixtures, &mut out.roles, &mut origins)?;
            out.steps.push(built);
            out.pinned.push(step.pin_message);
            out.origins.push(origins);
        }
    }
    Ok(out)
}

fn build(
    step: &ScenarioStep,
    n: usize,
    fixtures: &Fixtures,
    roles: &mut Vec<String>,
    origins: &mut Vec<Origin>,
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
            wire: (step.no_target || step.content_type.is_some()).then(|| Wire {
                no_target: step.no_target,
                content_type: step.content_type.clone(),
            }),
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
            let over = step.body_json();
            role_origins(fixtures, role, &body, &mut Vec::new(), origins);
            origins.retain(|o| !overridden(&over, &o.path));
            merge(&mut body, over);
            body
        }
        None => step.body_json(),
    };
    body = resolve(&body, n, fixtures, roles, &mut Vec::new(), origins)?;
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

/// The origins of the fixture values in `role`'s create body: each string of a member that
/// carries a fixture field ([`roles::member_field`]) and holds that field's value.
fn role_origins(
    fixtures: &Fixtures,
    role: &str,
    value: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<Origin>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                role_origins(fixtures, role, v, path, out);
                path.pop();
            }
        }
        Value::String(s) => {
            let field = path.last().and_then(|m| roles::member_field(m));
            if let Some(field) = field {
                let reference = roles::reference(role, field);
                if roles::value(fixtures, &reference).is_ok_and(|v| v == *s) {
                    out.push(Origin {
                        path: path.clone(),
                        reference,
                    });
                }
            }
        }
        _ => {}
    }
}

/// Whether `over` sets the member at `path` or one of its parents to something else than an
/// object merged into it.
fn overridden(over: &Value, path: &[String]) -> bool {
    let mut at = over;
    for key in path {
        match at.get(key) {
            Some(v) if v.is_object() => at = v,
            Some(_) => return true,
            None => return false,
        }
    }
    true
}

/// Replaces `{n}` and fixture references (`$cluster:…`, `$xks:…`) in every string, noting
/// where each reference was in `origins`.
fn resolve(
    value: &Value,
    n: usize,
    fixtures: &Fixtures,
    roles: &mut Vec<String>,
    path: &mut Vec<String>,
    origins: &mut Vec<Origin>,
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
                    origins.push(Origin {
                        path: path.clone(),
                        reference: r.to_string(),
                    });
                    Value::String(v)
                }
                None => Value::String(s),
            }
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                path.push(k.clone());
                let resolved = resolve(v, n, fixtures, roles, path, origins);
                path.pop();
                out.insert(k.clone(), resolved?);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                let resolved = resolve(v, n, fixtures, roles, path, origins);
                path.pop();
                out.push(resolved?);
            }
            Value::Array(out)
        }
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
    fn origins_name_the_reference_of_each_fixture_value_and_drop_overridden_ones() {
        let s = one(r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "CreateCustomKeyStore", create = "xks:public", body = { XksProxyUriPath = "/mine/kms/xks/v1", XksProxyUriEndpoint = "$xks:public-2.endpoint" } }]"#);
        let got = script(&s, &Fixtures::builtin()).unwrap();
        let mut origins: Vec<(String, String)> = got.origins[0]
            .iter()
            .map(|o| (o.path.join("."), o.reference.clone()))
            .collect();
        origins.sort();
        let want = [
            (
                "XksProxyAuthenticationCredential.AccessKeyId",
                "xks:public.access-key-id",
            ),
            (
                "XksProxyAuthenticationCredential.RawSecretAccessKey",
                "xks:public.secret",
            ),
            ("XksProxyUriEndpoint", "xks:public-2.endpoint"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect();
        assert_eq!(origins, want);
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
