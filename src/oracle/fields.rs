//! Listing entries: enum values, field presence and types, type-specific fields, patterns; and
//! the secrecy of every response.

use std::collections::BTreeSet;

use serde_json::Value;

use super::common::{CREATE, DESCRIBE, entries, fixture_secrets, redacted, snippet, store_id};
use super::{Context, Severity, Verdict};
use crate::history::{History, Outcome, is_secret_shape};
use crate::spec::{ShapeType, Spec};

/// What the check enforces, in one line.
pub const EXPLAIN_FIELDS: &str = "every listing entry has its identity fields, enum values from \
     the spec, ConnectionErrorCode exactly when FAILED, type-specific fields only on their store \
     type and a numeric CreationDate; no response ever carries a secret";

/// The listing entry shape.
const ENTRY: &str = "CustomKeyStoresListEntry";
/// The proxy configuration shape.
const XKS_CONFIG: &str = "XksProxyConfigurationType";
/// Members every entry must have, as strings.
const IDENTITY: [&str; 4] = [
    "CustomKeyStoreId",
    "CustomKeyStoreName",
    "ConnectionState",
    "CustomKeyStoreType",
];
/// Member names that must never appear in a response, whatever the spec says.
const SECRET_MEMBERS: [&str; 2] = ["KeyStorePassword", "RawSecretAccessKey"];

/// Checks listing entries and the secrecy of every response.
pub fn fields(ctx: &Context<'_>, history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    let secret_members = secret_member_names(ctx.spec);
    let secrets = fixture_secrets(ctx);
    for (i, e) in history.exchanges.iter().enumerate() {
        let Outcome::Response {
            status,
            body,
            text,
            error_type,
            ..
        } = &e.outcome
        else {
            continue;
        };
        verdict.judged(&e.operation);
        let op = e.operation.as_str();
        // No secret, in any response.
        let mut keys = BTreeSet::new();
        let mut strings = Vec::new();
        collect(body, &mut keys, &mut strings);
        for k in keys.iter().filter(|k| secret_members.contains(k.as_str())) {
            verdict.fail(
                op,
                "fields/no-secret",
                format!("expected no secret member, got a member named {k} in the response"),
                Some(i),
            );
        }
        strings.extend(text.iter().map(String::as_str));
        strings.extend(error_type.iter().map(String::as_str));
        strings.extend(keys.iter().map(String::as_str));
        for (label, secret, token) in &secrets {
            if strings
                .iter()
                .any(|s| s.contains(secret) || s.contains(token.as_str()))
            {
                verdict.fail(
                    op,
                    "fields/no-secret",
                    format!("expected no secret, got {label} in the response (HTTP {status})"),
                    Some(i),
                );
            }
        }
        if *status != 200 {
            continue;
        }
        if op == CREATE && !body.get("CustomKeyStoreId").is_some_and(Value::is_string) {
            verdict.fail(
                op,
                "fields/present",
                format!(
                    "expected a CustomKeyStoreId string in the 200 body, got {}",
                    kind(body.get("CustomKeyStoreId"))
                ),
                Some(i),
            );
        }
        if op == DESCRIBE {
            for (n, entry) in entries(body).iter().enumerate() {
                judge_entry(ctx.spec, entry, n, i, &mut verdict);
            }
        }
    }
    redacted(ctx, verdict)
}

/// Names of members whose shape is a secret (never returned), plus the two known ones.
fn secret_member_names(spec: &Spec) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = SECRET_MEMBERS.iter().map(|s| s.to_string()).collect();
    for shape in spec.shapes.values() {
        for (name, m) in &shape.members {
            if is_secret_shape(spec, &m.shape) {
                names.insert(name.clone());
            }
        }
    }
    names
}

/// Every object key and string value in a JSON value.
fn collect<'a>(v: &'a Value, keys: &mut BTreeSet<String>, strings: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => strings.push(s),
        Value::Array(items) => items.iter().for_each(|x| collect(x, keys, strings)),
        Value::Object(map) => {
            for (k, x) in map {
                keys.insert(k.clone());
                collect(x, keys, strings);
            }
        }
        _ => {}
    }
}

/// What kind of JSON value a member holds, for messages.
fn kind(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "none",
        Some(Value::String(_)) => "a string",
        Some(Value::Number(_)) => "a number",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn given(v: &Value, member: &str) -> bool {
    v.get(member).is_some_and(|x| !x.is_null())
}

/// Checks one listing entry (`n`: its position in the page of exchange `i`).
fn judge_entry(spec: &Spec, entry: &Value, n: usize, i: usize, verdict: &mut Verdict) {
    let who =
        store_id(entry).map_or_else(|| format!("entry {}", n + 1), |id| format!("entry {id}"));
    let mut fail = |rule: &str, message: String| verdict.fail(DESCRIBE, rule, message, Some(i));
    if !entry.is_object() {
        fail(
            "fields/present",
            format!("{who}: expected an object, got {}", kind(Some(entry))),
        );
        return;
    }
    for m in IDENTITY {
        if !given(entry, m) {
            fail("fields/present", format!("{who}: expected {m}, got none"));
        }
    }
    // JSON types of every member the spec describes.
    for (name, shape, value) in members(spec, entry, ENTRY).chain(
        entry
            .get("XksProxyConfiguration")
            .filter(|x| x.is_object())
            .into_iter()
            .flat_map(|x| members(spec, x, XKS_CONFIG)),
    ) {
        let ok = match spec.shape(shape).kind {
            ShapeType::String => value.is_string(),
            ShapeType::Structure => value.is_object(),
            ShapeType::List => value.is_array(),
            ShapeType::Integer => value.is_i64() || value.is_u64(),
            ShapeType::Boolean => value.is_boolean(),
            ShapeType::Timestamp => true,
        };
        if !ok {
            fail(
                "fields/type",
                format!(
                    "{who}: expected {name} of type {:?}, got {}",
                    spec.shape(shape).kind,
                    kind(Some(value))
                ),
            );
        }
    }
    // Enums, case-sensitive.
    let xks = entry.get("XksProxyConfiguration");
    let enums = [
        (
            "ConnectionState",
            entry.get("ConnectionState"),
            "ConnectionStateType",
        ),
        (
            "ConnectionErrorCode",
            entry.get("ConnectionErrorCode"),
            "ConnectionErrorCodeType",
        ),
        (
            "CustomKeyStoreType",
            entry.get("CustomKeyStoreType"),
            "CustomKeyStoreType",
        ),
        (
            "XksProxyConfiguration.Connectivity",
            xks.and_then(|x| x.get("Connectivity")),
            "XksProxyConnectivityType",
        ),
    ];
    for (name, value, shape) in enums {
        let (Some(Value::String(s)), Some(allowed)) = (value, &spec.shape(shape).enum_values)
        else {
            continue;
        };
        if !allowed.iter().any(|a| a == s) {
            fail(
                "fields/enum",
                format!(
                    "{who}: expected {name} to be one of {}, got {s:?}",
                    allowed.join(", ")
                ),
            );
        }
    }
    // ConnectionErrorCode exactly when FAILED.
    let state = entry.get("ConnectionState").and_then(Value::as_str);
    let failed = state == Some("FAILED");
    let code = given(entry, "ConnectionErrorCode");
    if failed != code {
        fail(
            "fields/error-code-iff-failed",
            if failed {
                format!(
                    "{who}: expected a ConnectionErrorCode with ConnectionState FAILED, got none"
                )
            } else {
                format!(
                    "{who}: expected no ConnectionErrorCode with ConnectionState {}, got {}",
                    state.unwrap_or("(none)"),
                    entry["ConnectionErrorCode"]
                )
            },
        );
    }
    // Type-specific members.
    let store_type = entry.get("CustomKeyStoreType").and_then(Value::as_str);
    let mut warnings = Vec::new();
    if let Some(t @ ("AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE")) = store_type {
        let hsm = t == "AWS_CLOUDHSM";
        for (m, own) in [
            ("CloudHsmClusterId", hsm),
            ("TrustAnchorCertificate", hsm),
            ("XksProxyConfiguration", !hsm),
        ] {
            match (given(entry, m), own) {
                (true, false) => fail(
                    "fields/type-specific",
                    format!("{who}: expected no {m} on a {t} store, got one"),
                ),
                (false, true) => warnings.push((
                    "fields/type-specific",
                    format!("{who}: expected {m} on a {t} store, got none"),
                )),
                _ => {}
            }
        }
    }
    if let Some(x) = xks.filter(|x| x.is_object()) {
        let vpc = x.get("Connectivity").and_then(Value::as_str) == Some("VPC_ENDPOINT_SERVICE");
        for m in ["VpcEndpointServiceName", "VpcEndpointServiceOwner"] {
            if given(x, m) && !vpc {
                fail(
                    "fields/type-specific",
                    format!(
                        "{who}: expected no XksProxyConfiguration.{m} without VPC_ENDPOINT_SERVICE connectivity, got one"
                    ),
                );
            }
        }
        if vpc && !given(x, "VpcEndpointServiceName") {
            warnings.push((
                "fields/type-specific",
                format!("{who}: expected XksProxyConfiguration.VpcEndpointServiceName with VPC_ENDPOINT_SERVICE connectivity, got none"),
            ));
        }
    }
    // CreationDate: epoch seconds as a JSON number.
    match entry.get("CreationDate") {
        None | Some(Value::Null) => warnings.push((
            "fields/creation-date",
            format!("{who}: expected a CreationDate, got none"),
        )),
        Some(Value::Number(_)) => {}
        Some(other) => fail(
            "fields/creation-date",
            format!(
                "{who}: expected CreationDate as a JSON number of epoch seconds, got {} {}",
                kind(Some(other)),
                snippet(&other.to_string(), 40)
            ),
        ),
    }
    // Patterns and lengths: the documentation's own examples break some, so only warnings.
    for (name, shape_name, value) in members(spec, entry, ENTRY).chain(
        xks.filter(|x| x.is_object())
            .into_iter()
            .flat_map(|x| members(spec, x, XKS_CONFIG)),
    ) {
        let shape = spec.shape(shape_name);
        let Some(s) = value.as_str() else { continue };
        if shape.kind != ShapeType::String || shape.enum_values.is_some() {
            continue;
        }
        let len = s.chars().count() as i64;
        let short = shape.min.is_some_and(|min| len < min);
        let long = shape.max.is_some_and(|max| len > max);
        if short || long || !shape.pattern_matches(s) {
            let shown = if shape.sensitive {
                "(value not shown)".to_string()
            } else {
                format!("{:?}", snippet(s, 60))
            };
            warnings.push((
                "fields/pattern",
                format!(
                    "{who}: expected {name} to fit length {}..{} and pattern {}, got {shown} (length {len})",
                    shape.min.map_or("0".into(), |v| v.to_string()),
                    shape.max.map_or("".into(), |v| v.to_string()),
                    shape.pattern.as_deref().unwrap_or("(none)")
                ),
            ));
        }
    }
    for (rule, message) in warnings {
        verdict.find(Severity::Warning, DESCRIBE, rule, message, Some(i));
    }
}

/// The members of `v` that structure `shape` describes, with their shape names; null ones skipped.
fn members<'a>(
    spec: &'a Spec,
    v: &'a Value,
    shape: &str,
) -> impl Iterator<Item = (&'a str, &'a str, &'a Value)> {
    let structure = spec.shapes.get(shape);
    structure
        .into_iter()
        .flat_map(|s| s.members.iter())
        .filter_map(move |(name, m)| {
            v.get(name)
                .filter(|x| !x.is_null())
                .map(|x| (name.as_str(), m.shape.as_str(), x))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oracle::common::testing::*;

    fn judge(h: &H) -> Verdict {
        fields(&ctx(), &h.history())
    }

    fn listing(entries: Vec<Value>) -> H {
        let mut h = H::new();
        h.describe(entries);
        h
    }

    #[test]
    fn well_formed_entries_and_answers_pass() {
        let mut h = H::new();
        h.call(
            CREATE,
            json!({"CustomKeyStoreName": "n", "KeyStorePassword": "[secret=cluster:c]"}),
            ok(json!({"CustomKeyStoreId": "cks-1"})),
        );
        let mut vpc = xks_entry("cks-3", "c", "CONNECTED");
        vpc["XksProxyConfiguration"]["Connectivity"] = json!("VPC_ENDPOINT_SERVICE");
        vpc["XksProxyConfiguration"]["VpcEndpointServiceName"] =
            json!("com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0");
        vpc["XksProxyConfiguration"]["VpcEndpointServiceOwner"] = json!("111122223333");
        h.describe(vec![
            entry("cks-1", "a", "FAILED"),
            xks_entry("cks-2", "b", "DISCONNECTED"),
            vpc,
        ]);
        h.call(
            DESCRIBE,
            json!({"CustomKeyStoreId": "cks-9"}),
            error("CustomKeyStoreNotFoundException"),
        );
        let v = judge(&h);
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
        assert_eq!(v.exercised[DESCRIBE], 2);
    }

    #[test]
    fn failed_without_error_code_and_code_without_failed_are_caught() {
        let mut failed = entry("cks-1", "a", "FAILED");
        failed
            .as_object_mut()
            .unwrap()
            .remove("ConnectionErrorCode");
        let mut connected = entry("cks-2", "b", "CONNECTED");
        connected["ConnectionErrorCode"] = json!("NETWORK_ERRORS");
        assert_eq!(
            failures(&judge(&listing(vec![failed, connected]))),
            [
                "fields/error-code-iff-failed",
                "fields/error-code-iff-failed"
            ]
        );
    }

    #[test]
    fn a_lowercase_enum_value_is_caught() {
        let mut e = xks_entry("cks-1", "a", "DISCONNECTED");
        e["ConnectionState"] = json!("disconnected");
        e["XksProxyConfiguration"]["Connectivity"] = json!("public_endpoint");
        assert_eq!(
            failures(&judge(&listing(vec![e]))),
            ["fields/enum", "fields/enum"]
        );
    }

    #[test]
    fn type_specific_members_on_the_wrong_type_are_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["XksProxyConfiguration"] = json!({"Connectivity": "PUBLIC_ENDPOINT"});
        let mut x = xks_entry("cks-2", "b", "DISCONNECTED");
        x["CloudHsmClusterId"] = json!("cluster-healthyaaaaa");
        x["XksProxyConfiguration"]["VpcEndpointServiceOwner"] = json!("111122223333");
        assert_eq!(
            failures(&judge(&listing(vec![e, x]))),
            [
                "fields/type-specific",
                "fields/type-specific",
                "fields/type-specific"
            ]
        );
    }

    #[test]
    fn a_missing_identity_field_and_a_string_date_are_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e.as_object_mut().unwrap().remove("CustomKeyStoreType");
        let mut d = entry("cks-2", "b", "DISCONNECTED");
        d["CreationDate"] = json!("2018-09-22T03:25:18Z");
        assert_eq!(
            failures(&judge(&listing(vec![e, d]))),
            ["fields/present", "fields/creation-date"]
        );
        let mut h = H::new();
        h.call(CREATE, json!({}), ok(json!({"CustomKeyStoreId": 7})));
        assert_eq!(failures(&judge(&h)), ["fields/present"]);
    }

    #[test]
    fn a_wrong_json_type_is_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["CustomKeyStoreName"] = json!(12);
        assert_eq!(failures(&judge(&listing(vec![e]))), ["fields/type"]);
    }

    #[test]
    fn a_documentation_example_breaking_a_pattern_is_only_a_warning() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["CloudHsmClusterId"] = json!("cluster-1a23b4cdefg");
        let v = judge(&listing(vec![e]));
        assert_no_failure(&v);
        assert_eq!(rules(&v, Severity::Warning), ["fields/pattern"]);
        assert!(v.findings[0].message.contains("cluster-1a23b4cdefg"));
    }

    #[test]
    fn a_password_member_in_a_listing_entry_is_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["KeyStorePassword"] = json!("whatever1");
        let v = judge(&listing(vec![e]));
        assert_eq!(failures(&v), ["fields/no-secret"]);
        assert!(!v.findings[0].message.contains("whatever1"));
    }

    #[test]
    fn a_fixture_secret_in_an_error_message_is_caught_without_repeating_it() {
        let c = ctx();
        let password = c.fixtures.clusters[0].kmsuser_password.clone();
        let key = c.fixtures.xks_proxies[0].secret_access_key.clone();
        let mut h = H::new();
        h.call(
            "UpdateCustomKeyStore",
            json!({"CustomKeyStoreId": "cks-1"}),
            response(
                400,
                json!({"__type": "ValidationException", "message": format!("bad password {password}")}),
            ),
        );
        h.call(
            CREATE,
            json!({}),
            crate::history::Outcome::Response {
                status: 500,
                request_id: None,
                content_type: Some("text/plain".into()),
                error_type: None,
                body: Value::Null,
                text: Some(format!("panic: key={key}")),
            },
        );
        let v = judge(&h);
        assert_eq!(failures(&v), ["fields/no-secret", "fields/no-secret"]);
        for f in &v.findings {
            assert!(
                !f.message.contains(&password) && !f.message.contains(&key),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn a_secret_the_history_masked_is_still_caught() {
        let c = ctx();
        let token = format!("[secret=cluster:{}]", c.fixtures.clusters[0].id);
        let mut h = H::new();
        h.call(
            "UpdateCustomKeyStore",
            json!({"CustomKeyStoreId": "cks-1"}),
            response(
                400,
                json!({"__type": "ValidationException", "message": format!("bad password {token}")}),
            ),
        );
        assert_eq!(failures(&judge(&h)), ["fields/no-secret"]);
    }
}
