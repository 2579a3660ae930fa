//! Placeholders: what a snapshot shows in place of each fixture value of a transcript
//! (`[ROLE]`, `[ROLE.FIELD]`, `[secret=ROLE]`), decided place by place, so a transcript does
//! not depend on which role a value is looked up under. Roles may share a value (two proxies
//! serving `/kms/xks/v1`; related clusters' trust anchor and kmsuser password); the place says
//! which role it stands for:
//!
//! 1. in a request, the reference the scenario wrote there, or the role whose create body it is;
//! 2. in a response, for the store the value is about (the `CustomKeyStoreId` beside it), the
//!    role whose value for that field the scenario last set on that store with a request that
//!    succeeded;
//! 3. else the first role of the scenario that has the value in that field, else in any field.
//!
//! With distinct values every rule gives the one role that has the value.

use std::collections::BTreeMap;

use serde_json::Value;

use super::roles::{self, fields, is_secret, member_field, placeholder};
use super::script::Script;
use super::transcript::Transcript;
use crate::history::{SECRET_TOKEN, unmask_secret};
use crate::model::Fixtures;

/// The placeholder of each fixture value of a transcript, by its insta path
/// (`.steps.2.response.CustomKeyStores.0.XksProxyConfiguration.UriPath`).
pub type ByPath = BTreeMap<String, String>;

/// A value a role's backend has, as a transcript holds it.
struct Candidate {
    role: String,
    field: &'static str,
    /// The fixture value (for a secret: the secret, which a transcript holds only as a token).
    value: String,
}

impl Candidate {
    /// Whether the transcript string `s` is this value (for a secret, a token that masks it).
    fn matches(&self, fixtures: &Fixtures, s: &str) -> bool {
        if !is_secret(self.field) {
            return s == self.value;
        }
        let fixture_token = ["cluster:", "xks:"]
            .iter()
            .any(|owner| s.starts_with(&format!("{SECRET_TOKEN}={owner}")));
        fixture_token && !self.value.is_empty() && unmask_secret(fixtures, s) == self.value
    }

    fn reference(&self) -> String {
        roles::reference(&self.role, self.field)
    }
}

/// The placeholders of `t`, the transcript of `script` played against `fixtures`.
pub fn placeholders(fixtures: &Fixtures, script: &Script, t: &Transcript) -> ByPath {
    let mut candidates = Vec::new();
    for role in &script.roles {
        for field in fields(fixtures, role) {
            if let Ok(value) = roles::value(fixtures, &roles::reference(role, field)) {
                candidates.push(Candidate {
                    role: role.clone(),
                    field,
                    value,
                });
            }
        }
    }
    let choose = |s: &str, field: &str, origin: Option<&str>, set: Option<&String>| {
        let found: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.matches(fixtures, s))
            .collect();
        let pick = origin
            .and_then(|r| found.iter().find(|c| c.reference() == r))
            .or_else(|| set.and_then(|r| found.iter().find(|c| c.role == *r && c.field == field)))
            .or_else(|| found.iter().find(|c| c.field == field))
            .or_else(|| found.first());
        pick.map(|c| placeholder(&c.reference()))
    };
    // Store ID → field → the role whose value the scenario set there.
    let mut set: BTreeMap<String, BTreeMap<&'static str, String>> = BTreeMap::new();
    let mut out = ByPath::new();
    for (k, e) in t.steps.iter().enumerate() {
        let origins = script.origins.get(k).map(Vec::as_slice).unwrap_or(&[]);
        let mut sent: Vec<(&'static str, Option<String>)> = Vec::new();
        if let Some(request) = &e.request {
            let mut visit = |path: &[String], field: &'static str, s: &str, store: Option<&str>| {
                let origin = origins
                    .iter()
                    .find(|o| o.path == path)
                    .map(|o| o.reference.as_str());
                let was = store.and_then(|id| set.get(id)).and_then(|m| m.get(field));
                if let Some(token) = choose(s, field, origin, was) {
                    out.insert(insta_path(k, "request", path), token);
                }
                let role = origin
                    .filter(|r| {
                        let has = |c: &&Candidate| c.reference() == *r && c.matches(fixtures, s);
                        candidates.iter().any(|c| has(&c))
                    })
                    .map(role_of);
                sent.push((field, role.map(str::to_string)));
            };
            walk(request, &mut Vec::new(), None, &mut visit);
        }
        let succeeded = e.status.is_some_and(|s| (200..300).contains(&s)) && e.error.is_none();
        let store = match e.op.as_str() {
            "CreateCustomKeyStore" => e.response.as_ref().map(|r| &r["CustomKeyStoreId"]),
            _ => e.request.as_ref().map(|r| &r["CustomKeyStoreId"]),
        };
        if let (true, Some(Value::String(id))) = (succeeded, store) {
            let fields = set.entry(id.clone()).or_default();
            for (field, role) in sent {
                match role {
                    Some(r) => fields.insert(field, r),
                    None => fields.remove(field),
                };
            }
        }
        if let Some(response) = &e.response {
            let mut visit = |path: &[String], field: &'static str, s: &str, store: Option<&str>| {
                let was = store.and_then(|id| set.get(id)).and_then(|m| m.get(field));
                if let Some(token) = choose(s, field, None, was) {
                    out.insert(insta_path(k, "response", path), token);
                }
            };
            walk(response, &mut Vec::new(), None, &mut visit);
        }
    }
    out
}

/// The role of a reference (`xks:public-2.path` → `xks:public-2`).
fn role_of(reference: &str) -> &str {
    match reference.rsplit_once('.') {
        Some((role, _)) if role.contains(':') => role,
        _ => reference,
    }
}

/// Calls `visit(path, field, value, store)` for every string of a member that carries a
/// fixture field; `store` is the `CustomKeyStoreId` of the innermost object around it that has one.
fn walk(
    v: &Value,
    path: &mut Vec<String>,
    store: Option<&str>,
    visit: &mut impl FnMut(&[String], &'static str, &str, Option<&str>),
) {
    match v {
        Value::Object(map) => {
            let store = map
                .get("CustomKeyStoreId")
                .and_then(Value::as_str)
                .or(store);
            for (key, x) in map {
                path.push(key.clone());
                match (x, member_field(key)) {
                    (Value::String(s), Some(field)) => visit(path, field, s, store),
                    _ => walk(x, path, store, visit),
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(x, path, store, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The path insta gives a redaction for `path` inside step `k`'s `part` (`request`, `response`).
fn insta_path(k: usize, part: &str, path: &[String]) -> String {
    let mut p = format!(".steps.{k}.{part}");
    for key in path {
        p.push('.');
        p.push_str(key);
    }
    p
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scenario::corpus::parse;
    use crate::scenario::script::script;
    use crate::scenario::transcript::Entry;

    /// The built-in fixtures with one URI path and one access key ID for every proxy.
    fn shared() -> Fixtures {
        let mut f = Fixtures::builtin();
        for p in &mut f.xks_proxies {
            p.uri_path = "/kms/xks/v1".into();
            p.access_key_id = "SHAREDPROXYACCESSKEY".into();
        }
        f
    }

    fn step(op: &str, request: Value, status: u16, response: Value) -> Entry {
        let mut e = Entry::new(op);
        e.request = Some(request);
        e.status = Some(status);
        if status == 200 {
            e.response = Some(response);
        } else {
            e.error = Some("XksProxyUriUnreachableException".into());
        }
        e
    }

    /// The placeholders of a create with `xks:public`, an update to `to` (answered `status`)
    /// and a describe that lists what the endpoint kept.
    fn update_to(f: &Fixtures, to: &str, status: u16) -> (ByPath, String) {
        let s = parse(
            "t.toml",
            &format!(
                r#"[[scenario]]
name = "x"
purpose = "p"
steps = [
  {{ op = "CreateCustomKeyStore", create = "xks:public", body = {{ CustomKeyStoreName = "a" }} }},
  {{ op = "UpdateCustomKeyStore", body = {{ CustomKeyStoreId = "cks-1", XksProxyUriPath = "${to}.path", XksProxyAuthenticationCredential = {{ AccessKeyId = "${to}.access-key-id", RawSecretAccessKey = "${to}.secret" }} }} }},
  {{ op = "DescribeCustomKeyStores", body = {{ CustomKeyStoreId = "cks-1" }} }},
]"#
            ),
        )
        .unwrap()
        .remove(0);
        let sc = script(&s, f).unwrap();
        let proxy = |r: &str| roles::value(f, r).unwrap();
        let kept = if status == 200 { to } else { "xks:public" };
        let t = Transcript {
            steps: vec![
                step(
                    "CreateCustomKeyStore",
                    json!({"XksProxyUriPath": proxy("xks:public.path")}),
                    200,
                    json!({"CustomKeyStoreId": "cks-1"}),
                ),
                step(
                    "UpdateCustomKeyStore",
                    json!({"CustomKeyStoreId": "cks-1", "XksProxyUriPath": proxy(&format!("{to}.path")),
                        "XksProxyAuthenticationCredential": {"AccessKeyId": proxy(&format!("{to}.access-key-id"))}}),
                    status,
                    json!({}),
                ),
                step(
                    "DescribeCustomKeyStores",
                    json!({"CustomKeyStoreId": "cks-1"}),
                    200,
                    json!({"CustomKeyStores": [{"CustomKeyStoreId": "cks-1", "XksProxyConfiguration": {
                        "UriPath": proxy(&format!("{kept}.path")),
                        "AccessKeyId": proxy(&format!("{kept}.access-key-id"))}}]}),
                ),
            ],
        };
        (placeholders(f, &sc, &t), kept.to_string())
    }

    #[test]
    fn a_shared_value_stands_for_the_role_the_scenario_put_there() {
        for f in [Fixtures::builtin(), shared()] {
            for (to, status) in [("xks:public-2", 200), ("xks:unreachable-at-create", 400)] {
                let (p, kept) = update_to(&f, to, status);
                let at = |path: &str| p.get(path).cloned().unwrap_or_default();
                assert_eq!(at(".steps.0.request.XksProxyUriPath"), "[xks:public.path]");
                assert_eq!(
                    at(".steps.1.request.XksProxyUriPath"),
                    format!("[{to}.path]")
                );
                assert_eq!(
                    at(".steps.1.request.XksProxyAuthenticationCredential.AccessKeyId"),
                    format!("[{to}.access-key-id]")
                );
                let entry = ".steps.2.response.CustomKeyStores.0.XksProxyConfiguration";
                assert_eq!(at(&format!("{entry}.UriPath")), format!("[{kept}.path]"));
                assert_eq!(
                    at(&format!("{entry}.AccessKeyId")),
                    format!("[{kept}.access-key-id]")
                );
            }
        }
    }

    #[test]
    fn a_shared_password_is_the_secret_of_the_role_sent_whichever_cluster_the_token_names() {
        let mut f = Fixtures::builtin();
        // The deleted cluster shares the healthy one's password and comes first: the history's
        // token names it.
        let healthy = f.clusters[0].kmsuser_password.clone();
        let deleted = f
            .clusters
            .iter()
            .position(|c| c.state == "DELETED")
            .unwrap();
        f.clusters[deleted].kmsuser_password = healthy.clone();
        let gone = f.clusters.remove(deleted);
        f.clusters.insert(0, gone.clone());
        let s = parse(
            "t.toml",
            r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "CreateCustomKeyStore", create = "cluster:related", body = { CustomKeyStoreName = "a" } }]"#,
        )
        .unwrap()
        .remove(0);
        let sc = script(&s, &f).unwrap();
        let token = crate::history::cluster_secret_token(&gone.id);
        let t = Transcript {
            steps: vec![step(
                "CreateCustomKeyStore",
                json!({"KeyStorePassword": token}),
                200,
                json!({"CustomKeyStoreId": "cks-1"}),
            )],
        };
        let p = placeholders(&f, &sc, &t);
        assert_eq!(
            p.get(".steps.0.request.KeyStorePassword")
                .map(String::as_str),
            Some("[secret=cluster:related]")
        );
    }
}
