//! Listing entries: enum values, field presence and types, type-specific fields, patterns; and
//! the secrecy of every response.

use std::collections::BTreeSet;

use serde_json::Value;

use super::common::{
    CREATE, DESCRIBE, entries, fixture_secrets, json_type, redacted, snippet, store_id,
};
use super::{Context, Severity, Verdict};
use crate::history::{History, Outcome, echoable, holds_secret, is_secret_shape};
use crate::spec::{ShapeType, Spec};

/// What the check enforces, in one line.
pub const EXPLAIN_FIELDS: &str = "every listing entry has its identity fields, enum values from \
     the spec, ConnectionErrorCode exactly when FAILED, type-specific fields only on their store \
     type, an XksProxyConfiguration with AccessKeyId, Connectivity, UriEndpoint and UriPath, and \
     a numeric CreationDate; no response ever carries a secret";

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

/// Members KMS always returns in the `XksProxyConfiguration` of an external key store entry.
const XKS_REQUIRED: [&str; 4] = ["AccessKeyId", "Connectivity", "UriEndpoint", "UriPath"];

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
                format!("secret member {k}"),
                format!("expected no secret member, got a member named {k} in the response"),
                Some(i),
            );
        }
        strings.extend(text.iter().map(String::as_str));
        strings.extend(error_type.iter().map(String::as_str));
        strings.extend(keys.iter().map(String::as_str));
        let echoed = echoable(&e.request);
        for secret in &secrets {
            if strings.iter().any(|s| {
                holds_secret(ctx.fixtures, secret.value, s, &echoed) || s.contains(&secret.token)
            }) {
                verdict.fail(
                    op,
                    "fields/no-secret",
                    format!("{} in the response", secret.what),
                    format!(
                        "expected no secret, got {} in the response (HTTP {status})",
                        secret.label
                    ),
                    Some(i),
                );
            }
        }
        if *status != 200 {
            continue;
        }
        if op == CREATE && !body.get("CustomKeyStoreId").is_some_and(Value::is_string) {
            let id = body.get("CustomKeyStoreId").filter(|v| !v.is_null());
            verdict.fail(
                op,
                "fields/CustomKeyStoreId",
                id.map_or_else(
                    || MISSING.to_string(),
                    |v| format!("expected string, got {}", json_type(v)),
                ),
                format!(
                    "expected a CustomKeyStoreId string in the 200 body, got {}",
                    shown_kind(body.get("CustomKeyStoreId"))
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

/// The kind of a member that should be there and is absent or null.
const MISSING: &str = "missing";
/// The kind of a member that must not be there and is.
const UNEXPECTED: &str = "unexpected";
/// The kind of a string value not among its enum's values.
const OUTSIDE_ENUM: &str = "outside the enum";
/// The kind of a value breaking its length or pattern.
const BREAKS_PATTERN: &str = "breaks its pattern";

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
fn shown_kind(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "none",
        Some(Value::String(_)) => "a string",
        Some(Value::Number(_)) => "a number",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

/// The JSON type word a spec type is sent as.
fn spec_json_type(t: ShapeType) -> &'static str {
    match t {
        ShapeType::String => "string",
        ShapeType::Integer | ShapeType::Timestamp => "number",
        ShapeType::Boolean => "boolean",
        ShapeType::List => "array",
        ShapeType::Structure => "object",
    }
}

fn given(v: &Value, member: &str) -> bool {
    v.get(member).is_some_and(|x| !x.is_null())
}

/// The rule of a finding about the member at `path` (inside a listing entry, or inside the
/// response body for other operations).
fn rule(path: &str) -> String {
    format!("fields/{path}")
}

/// Checks one listing entry (`n`: its position in the page of exchange `i`).
fn judge_entry(spec: &Spec, entry: &Value, n: usize, i: usize, verdict: &mut Verdict) {
    let who =
        store_id(entry).map_or_else(|| format!("entry {}", n + 1), |id| format!("entry {id}"));
    let mut fail = |path: &str, kind: String, message: String| {
        verdict.fail(DESCRIBE, &rule(path), kind, message, Some(i))
    };
    if !entry.is_object() {
        fail(
            "CustomKeyStores[]",
            format!("expected object, got {}", json_type(entry)),
            format!("{who}: expected an object, got {}", shown_kind(Some(entry))),
        );
        return;
    }
    for m in IDENTITY {
        if !given(entry, m) {
            fail(m, MISSING.into(), format!("{who}: expected {m}, got none"));
        }
    }
    // JSON types of every member the spec describes.
    let xks = entry.get("XksProxyConfiguration");
    let xks_object = xks.filter(|x| x.is_object());
    for (path, shape, value) in entry_members(spec, entry) {
        let t = spec.shape(shape).kind;
        let ok = match t {
            ShapeType::String => value.is_string(),
            ShapeType::Structure => value.is_object(),
            ShapeType::List => value.is_array(),
            ShapeType::Integer => value.is_i64() || value.is_u64(),
            ShapeType::Boolean => value.is_boolean(),
            ShapeType::Timestamp => true,
        };
        if !ok {
            fail(
                &path,
                format!("expected {}, got {}", spec_json_type(t), json_type(value)),
                format!(
                    "{who}: expected {path} of type {t:?}, got {}",
                    shown_kind(Some(value))
                ),
            );
        }
    }
    // Enums, case-sensitive.
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
                name,
                OUTSIDE_ENUM.into(),
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
    if failed && !code {
        fail(
            "ConnectionErrorCode",
            MISSING.into(),
            format!("{who}: expected a ConnectionErrorCode with ConnectionState FAILED, got none"),
        );
    } else if code && !failed {
        fail(
            "ConnectionErrorCode",
            UNEXPECTED.into(),
            format!(
                "{who}: expected no ConnectionErrorCode with ConnectionState {}, got {}",
                state.unwrap_or("(none)"),
                entry["ConnectionErrorCode"]
            ),
        );
    }
    // Type-specific members.
    let store_type = entry.get("CustomKeyStoreType").and_then(Value::as_str);
    let mut warnings: Vec<(String, &str, String)> = Vec::new();
    if let Some(t @ ("AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE")) = store_type {
        let hsm = t == "AWS_CLOUDHSM";
        for (m, own) in [
            ("CloudHsmClusterId", hsm),
            ("TrustAnchorCertificate", hsm),
            ("XksProxyConfiguration", !hsm),
        ] {
            match (given(entry, m), own) {
                (true, false) => fail(
                    m,
                    UNEXPECTED.into(),
                    format!("{who}: expected no {m} on a {t} store, got one"),
                ),
                (false, true) => warnings.push((
                    m.to_string(),
                    MISSING,
                    format!("{who}: expected {m} on a {t} store, got none"),
                )),
                _ => {}
            }
        }
    }
    if let Some(x) = xks_object {
        // What KMS always returns for an external key store. On a CloudHSM store the whole
        // object is already unexpected: its members are not judged one by one.
        if store_type != Some("AWS_CLOUDHSM") {
            for m in XKS_REQUIRED {
                if !given(x, m) {
                    fail(
                        &format!("XksProxyConfiguration.{m}"),
                        MISSING.into(),
                        format!("{who}: expected XksProxyConfiguration.{m}, got none"),
                    );
                }
            }
        }
        let vpc = x.get("Connectivity").and_then(Value::as_str) == Some("VPC_ENDPOINT_SERVICE");
        for m in ["VpcEndpointServiceName", "VpcEndpointServiceOwner"] {
            if given(x, m) && !vpc {
                fail(
                    &format!("XksProxyConfiguration.{m}"),
                    UNEXPECTED.into(),
                    format!(
                        "{who}: expected no XksProxyConfiguration.{m} without VPC_ENDPOINT_SERVICE connectivity, got one"
                    ),
                );
            }
        }
        if vpc && !given(x, "VpcEndpointServiceName") {
            warnings.push((
                "XksProxyConfiguration.VpcEndpointServiceName".into(),
                MISSING,
                format!("{who}: expected XksProxyConfiguration.VpcEndpointServiceName with VPC_ENDPOINT_SERVICE connectivity, got none"),
            ));
        }
    }
    // CreationDate: epoch seconds as a JSON number.
    match entry.get("CreationDate") {
        None | Some(Value::Null) => warnings.push((
            "CreationDate".into(),
            MISSING,
            format!("{who}: expected a CreationDate, got none"),
        )),
        Some(Value::Number(_)) => {}
        Some(other) => fail(
            "CreationDate",
            format!("expected number, got {}", json_type(other)),
            format!(
                "{who}: expected CreationDate as a JSON number of epoch seconds, got {} {}",
                shown_kind(Some(other)),
                snippet(&other.to_string(), 40)
            ),
        ),
    }
    // Patterns and lengths: the documentation's own examples break some, so only warnings.
    for (path, shape_name, value) in entry_members(spec, entry) {
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
            let message = format!(
                "{who}: expected {path} to fit length {}..{} and pattern {}, got {shown} (length {len})",
                shape.min.map_or("0".into(), |v| v.to_string()),
                shape.max.map_or("".into(), |v| v.to_string()),
                shape.pattern.as_deref().unwrap_or("(none)")
            );
            warnings.push((path, BREAKS_PATTERN, message));
        }
    }
    for (path, kind, message) in warnings {
        verdict.find(
            Severity::Warning,
            DESCRIBE,
            &rule(&path),
            kind,
            message,
            Some(i),
        );
    }
}

/// The members of a listing entry the spec describes, with their paths inside the entry
/// (`XksProxyConfiguration.X` for the proxy configuration's) and shape names; null ones
/// skipped.
fn entry_members<'a>(
    spec: &'a Spec,
    entry: &'a Value,
) -> impl Iterator<Item = (String, &'a str, &'a Value)> {
    members(spec, entry, ENTRY)
        .map(|(name, shape, value)| (name.to_string(), shape, value))
        .chain(
            entry
                .get("XksProxyConfiguration")
                .filter(|x| x.is_object())
                .into_iter()
                .flat_map(|x| members(spec, x, XKS_CONFIG))
                .map(|(name, shape, value)| {
                    (format!("XksProxyConfiguration.{name}"), shape, value)
                }),
        )
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

    fn signatures(v: &Verdict) -> Vec<String> {
        v.findings.iter().map(|f| f.signature()).collect()
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
            ["fields/ConnectionErrorCode", "fields/ConnectionErrorCode"]
        );
    }

    #[test]
    fn a_lowercase_enum_value_is_caught() {
        let mut e = xks_entry("cks-1", "a", "DISCONNECTED");
        e["ConnectionState"] = json!("disconnected");
        e["XksProxyConfiguration"]["Connectivity"] = json!("public_endpoint");
        let v = judge(&listing(vec![e]));
        assert_eq!(
            failures(&v),
            [
                "fields/ConnectionState",
                "fields/XksProxyConfiguration.Connectivity"
            ]
        );
        assert!(v.findings.iter().all(|f| f.kind == "outside the enum"));
    }

    #[test]
    fn type_specific_members_on_the_wrong_type_are_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["XksProxyConfiguration"] = json!({"Connectivity": "PUBLIC_ENDPOINT"});
        let mut x = xks_entry("cks-2", "b", "DISCONNECTED");
        x["CloudHsmClusterId"] = json!("cluster-healthyaaaaa");
        x["XksProxyConfiguration"]["VpcEndpointServiceOwner"] = json!("111122223333");
        let v = judge(&listing(vec![e, x]));
        assert_eq!(
            failures(&v),
            [
                "fields/XksProxyConfiguration",
                "fields/CloudHsmClusterId",
                "fields/XksProxyConfiguration.VpcEndpointServiceOwner"
            ]
        );
        assert!(v.findings.iter().all(|f| f.kind == "unexpected"));
    }

    #[test]
    fn a_missing_identity_field_and_a_string_date_are_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e.as_object_mut().unwrap().remove("CustomKeyStoreType");
        let mut d = entry("cks-2", "b", "DISCONNECTED");
        d["CreationDate"] = json!("2018-09-22T03:25:18Z");
        let v = judge(&listing(vec![e, d]));
        assert_eq!(
            signatures(&v),
            [
                "DescribeCustomKeyStores/fields/CustomKeyStoreType: missing",
                "DescribeCustomKeyStores/fields/CreationDate: expected number, got string"
            ]
        );
        let mut h = H::new();
        h.call(CREATE, json!({}), ok(json!({"CustomKeyStoreId": 7})));
        h.call(CREATE, json!({}), ok(json!({})));
        assert_eq!(
            signatures(&judge(&h)),
            [
                "CreateCustomKeyStore/fields/CustomKeyStoreId: expected string, got number",
                "CreateCustomKeyStore/fields/CustomKeyStoreId: missing"
            ]
        );
    }

    #[test]
    fn a_wrong_json_type_is_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["CustomKeyStoreName"] = json!(12);
        assert_eq!(
            signatures(&judge(&listing(vec![e]))),
            ["DescribeCustomKeyStores/fields/CustomKeyStoreName: expected string, got number"]
        );
    }

    #[test]
    fn a_documentation_example_breaking_a_pattern_is_only_a_warning() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["CloudHsmClusterId"] = json!("cluster-1a23b4cdefg");
        let v = judge(&listing(vec![e]));
        assert_no_failure(&v);
        assert_eq!(rules(&v, Severity::Warning), ["fields/CloudHsmClusterId"]);
        assert_eq!(v.findings[0].kind, "breaks its pattern");
        assert!(v.findings[0].message.contains("cluster-1a23b4cdefg"));
    }

    #[test]
    fn a_password_member_in_a_listing_entry_is_caught() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["KeyStorePassword"] = json!("whatever1");
        let v = judge(&listing(vec![e]));
        assert_eq!(failures(&v), ["fields/no-secret"]);
        assert_eq!(v.findings[0].kind, "secret member KeyStorePassword");
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
        assert_eq!(
            signatures(&v),
            [
                "UpdateCustomKeyStore/fields/no-secret: a kmsuser password in the response",
                "CreateCustomKeyStore/fields/no-secret: a proxy secret access key in the response"
            ]
        );
        for f in &v.findings {
            assert!(
                !f.message.contains(&password) && !f.message.contains(&key),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn a_secret_that_is_part_of_a_returned_fixture_value_is_no_leak() {
        // A kmsuser password that happens to be part of the proxy endpoint a listing returns.
        let mut fixtures = crate::model::Fixtures::builtin();
        fixtures.clusters[0].kmsuser_password = "example.test".into();
        let fixtures = std::sync::Arc::new(fixtures);
        let c = Context {
            fixtures: &fixtures,
            ..ctx()
        };
        let h = listing(vec![xks_entry("cks-1", "a", "CONNECTED")]);
        let v = fields(&c, &h.history());
        assert_eq!(failures(&v), Vec::<String>::new(), "{:#?}", v.findings);
        // Elsewhere it is a leak.
        let mut e = xks_entry("cks-1", "a", "CONNECTED");
        e["CustomKeyStoreName"] = json!("example.test");
        let v = fields(&c, &listing(vec![e]).history());
        assert_eq!(failures(&v), ["fields/no-secret"]);
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

    #[test]
    fn a_proxy_configuration_without_its_access_key_id_is_caught() {
        let mut e = xks_entry("cks-1", "a", "CONNECTED");
        e["XksProxyConfiguration"]
            .as_object_mut()
            .unwrap()
            .remove("AccessKeyId");
        let v = judge(&listing(vec![e]));
        assert_eq!(v.findings.len(), 1, "{:#?}", v.findings);
        assert_eq!(v.findings[0].severity, Severity::Failure);
        assert_eq!(
            v.findings[0].signature(),
            "DescribeCustomKeyStores/fields/XksProxyConfiguration.AccessKeyId: missing"
        );
    }

    #[test]
    fn a_null_or_absent_proxy_configuration_member_is_missing() {
        let mut e = xks_entry("cks-1", "a", "DISCONNECTED");
        e["XksProxyConfiguration"]["UriPath"] = Value::Null;
        e["XksProxyConfiguration"]
            .as_object_mut()
            .unwrap()
            .remove("Connectivity");
        assert_eq!(
            signatures(&judge(&listing(vec![e]))),
            [
                "DescribeCustomKeyStores/fields/XksProxyConfiguration.Connectivity: missing",
                "DescribeCustomKeyStores/fields/XksProxyConfiguration.UriPath: missing"
            ]
        );
    }

    #[test]
    fn a_full_proxy_configuration_passes() {
        let v = judge(&listing(vec![
            xks_entry("cks-1", "a", "CONNECTED"),
            xks_entry("cks-2", "b", "FAILED"),
        ]));
        assert!(v.findings.is_empty(), "{:#?}", v.findings);
    }

    #[test]
    fn the_reference_models_external_key_store_entries_pass() {
        use crate::model::{Model, SeededIds, XksBehaviour};
        let c = ctx();
        let mut model = Model::new(
            c.model.clone(),
            c.fixtures.clone(),
            Box::new(SeededIds::new(1)),
        );
        let now = 1_700_000_000_123;
        let proxies = c
            .fixtures
            .xks_proxies
            .iter()
            .filter(|p| p.behaviour_at_create == XksBehaviour::Connects);
        let mut created = 0;
        for (n, p) in proxies.enumerate() {
            let mut request = json!({
                "CustomKeyStoreName": format!("{PREFIX}{n}"),
                "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
                "XksProxyUriEndpoint": p.uri_endpoint,
                "XksProxyUriPath": p.uri_path,
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": p.access_key_id,
                    "RawSecretAccessKey": p.secret_access_key,
                },
                "XksProxyConnectivity": "PUBLIC_ENDPOINT",
            });
            if let Some(service) = &p.vpc_endpoint_service_name {
                request["XksProxyConnectivity"] = json!("VPC_ENDPOINT_SERVICE");
                request["XksProxyVpcEndpointServiceName"] = json!(service);
                request["XksProxyVpcEndpointServiceOwner"] = json!("444455556666");
            }
            let body = request.to_string();
            if model.apply(now, CREATE, body.as_bytes()).is_ok() {
                created += 1;
            }
        }
        assert!(created > 0, "no external key store created");
        let listing = model
            .apply(now, DESCRIBE, b"{}")
            .unwrap_or_else(|e| panic!("{}: {}", e.name, e.message));
        let external: Vec<&Value> = entries(&listing)
            .iter()
            .filter(|e| e["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE")
            .collect();
        assert_eq!(external.len(), created);
        for e in &external {
            for m in XKS_REQUIRED {
                assert!(given(&e["XksProxyConfiguration"], m), "{m} missing: {e}");
            }
        }
        let mut h = H::new();
        h.call(DESCRIBE, json!({}), ok(listing));
        let v = fields(&c, &h.history());
        assert_no_failure(&v);
    }

    #[test]
    fn an_empty_proxy_configuration_on_a_cloudhsm_store_is_only_unexpected() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e["XksProxyConfiguration"] = json!({});
        assert_eq!(
            signatures(&judge(&listing(vec![e]))),
            ["DescribeCustomKeyStores/fields/XksProxyConfiguration: unexpected"]
        );
    }

    #[test]
    fn a_missing_type_specific_member_is_a_warning() {
        let mut e = entry("cks-1", "a", "DISCONNECTED");
        e.as_object_mut().unwrap().remove("TrustAnchorCertificate");
        let v = judge(&listing(vec![e]));
        assert_no_failure(&v);
        assert_eq!(
            signatures(&v),
            ["DescribeCustomKeyStores/fields/TrustAnchorCertificate: missing"]
        );
    }

    #[test]
    fn kinds_hold_no_store_id() {
        let mut failed = entry("cks-1234", "a", "FAILED");
        failed
            .as_object_mut()
            .unwrap()
            .remove("ConnectionErrorCode");
        failed["CreationDate"] = json!("cks-1234");
        let v = judge(&listing(vec![failed]));
        assert!(!v.findings.is_empty());
        for f in &v.findings {
            assert!(!f.signature().contains("cks-1234"), "{}", f.signature());
            assert!(f.message.contains("cks-1234"), "{}", f.message);
        }
    }
}
