//! `Workload::Invalid`: an optional valid set-up (a store, so that IDs exist), then ONE request
//! that breaks exactly one named rule and carries the error that rule calls for.
//!
//! Rule ids: `Member/length-min`, `Member/length-max`, `Member/pattern`, `Member/enum`,
//! `Member/range-min`, `Member/range-max`, `Member/json-type`, `Member/required` (nested
//! members by path, e.g. `XksProxyAuthenticationCredential.AccessKeyId/pattern`);
//! `exclusive/CustomKeyStoreId+CustomKeyStoreName`; `Marker/not-issued`;
//! `body/truncated-json`; `body/not-an-object`; the `protocol/` rules of
//! [`super::protocol`]; and, from `conditional.rs`, `type/<when>/requires/<Member>` and
//! `type/<when>/forbids/<Member>`.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::Union;
use serde_json::{Value, json};

use super::backends::{
    self, Backend, PUBLIC_ENDPOINT, VPC_ENDPOINT_SERVICE, create_body, credential, remove_path,
    set_path, xks_key,
};
use super::values::{
    INVALID_MARKER, Rule, SERIALIZATION, breakable, broken, distinct_name_rests, unissued_marker,
    valid_integer, valid_string, valid_value,
};
use super::{GenContext, NAME_REF, STORE_REF, Step};
use crate::history::Expectation;
use crate::model::StoreType;
use crate::spec::{ShapeType, Spec};

/// The operations the workload sends (CreateKey only when the context allows it).
const OPERATIONS: [&str; 6] = [
    "CreateCustomKeyStore",
    "DescribeCustomKeyStores",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];
const CREATE_KEY: &str = "CreateKey";
const STORE_ID: &str = "CustomKeyStoreId";
const CLOUDHSM_MEMBERS: [&str; 3] = [
    "CloudHsmClusterId",
    "TrustAnchorCertificate",
    "KeyStorePassword",
];

/// One member rule to break: the operation, the member's path and shape, and the rule.
#[derive(Debug, Clone)]
struct Target {
    operation: &'static str,
    path: Vec<String>,
    shape: String,
    rule: Rule,
}

/// Which kind of store the request is about, by the member it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    Any,
    CloudHsm,
    Xks,
    XksVpc,
}

fn operations(ctx: &GenContext) -> Vec<&'static str> {
    let mut ops = OPERATIONS.to_vec();
    if ctx.allow_create_key {
        ops.push(CREATE_KEY);
    }
    ops
}

/// Every (operation, member, rule) that can be broken alone, read from the spec.
fn targets(ctx: &GenContext) -> Vec<Target> {
    let spec = Spec::kms();
    let mut out = Vec::new();
    for op in operations(ctx) {
        let input = &spec.operations[op].input;
        walk(op, input, &mut Vec::new(), &mut out);
    }
    out
}

fn walk(op: &'static str, structure: &str, path: &mut Vec<String>, out: &mut Vec<Target>) {
    let spec = Spec::kms();
    for (name, member) in &spec.shape(structure).members {
        path.push(name.clone());
        let mut rules = breakable(&member.shape);
        if member.required {
            rules.push(Rule::Required);
        }
        for rule in rules {
            out.push(Target {
                operation: op,
                path: path.clone(),
                shape: member.shape.clone(),
                rule,
            });
        }
        if spec.shape(&member.shape).kind == ShapeType::Structure {
            walk(op, &member.shape, path, out);
        }
        path.pop();
    }
}

fn need(path: &[String]) -> Need {
    let first = path[0].as_str();
    if CLOUDHSM_MEMBERS.contains(&first) {
        Need::CloudHsm
    } else if first.starts_with("XksProxyVpc") {
        Need::XksVpc
    } else if first.starts_with("Xks") {
        Need::Xks
    } else {
        Need::Any
    }
}

/// Creatable backends fitting a need (with the connectivity it calls for).
pub(super) fn candidates(ctx: &GenContext, need: Need) -> Vec<Backend> {
    let f = &ctx.fixtures;
    if ctx.quota == 0 {
        return Vec::new();
    }
    backends::creatable(f)
        .into_iter()
        .filter_map(|b| match (need, b) {
            (Need::Any, _) => Some(b),
            (Need::CloudHsm, Backend::Cluster(_)) => Some(b),
            (Need::Xks, Backend::Proxy { .. }) => Some(b),
            (Need::XksVpc, Backend::Proxy { index, .. }) if backends::vpc_capable(f, index) => {
                Some(Backend::Proxy { index, vpc: true })
            }
            _ => None,
        })
        .collect()
}

/// Whether the operation's request names a store by ID (the set-up store, `$store:0`).
fn takes_store_id(op: &str) -> bool {
    let spec = Spec::kms();
    op != "DescribeCustomKeyStores"
        && spec
            .shape(&spec.operations[op].input)
            .members
            .contains_key(STORE_ID)
}

/// The shape name of an operation's input member.
fn member_shape(op: &str, member: &str) -> String {
    let spec = Spec::kms();
    spec.shape(&spec.operations[op].input).members[member]
        .shape
        .clone()
}

/// Whether a body holds a `$store:` or `$name:` reference somewhere.
fn has_refs(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with(STORE_REF) || s.starts_with(NAME_REF),
        Value::Object(m) => m.values().any(has_refs),
        Value::Array(a) => a.iter().any(has_refs),
        _ => false,
    }
}

/// The planned stores of a case: the set-up store (if any) and the backend of a case create.
#[derive(Debug, Clone)]
struct Plan {
    setup: Option<Backend>,
    case: Option<Backend>,
    /// Name rests: [set-up store, request].
    names: Vec<String>,
    explicit_type: bool,
}

/// Draws a plan: a set-up store when `setup_required` (else sometimes), and for creates a
/// second, distinct backend.
fn plan(
    ctx: &GenContext,
    need: Need,
    setup_required: bool,
    is_create: bool,
) -> BoxedStrategy<Plan> {
    let pool = candidates(ctx, need);
    let n = pool.len().min(2);
    (
        subsequence(pool, n).prop_shuffle(),
        any::<bool>(),
        distinct_name_rests(ctx.name_prefix_len, 2),
        any::<bool>(),
    )
        .prop_map(move |(picked, want_setup, names, explicit_type)| {
            let mut picked = picked.into_iter();
            let (setup, case) = if is_create {
                if picked.len() >= 2 && (want_setup || setup_required) {
                    (picked.next(), picked.next())
                } else {
                    (None, picked.next())
                }
            } else if setup_required || want_setup {
                (picked.next(), None)
            } else {
                (None, None)
            };
            Plan {
                setup,
                case,
                names,
                explicit_type,
            }
        })
        .boxed()
}

fn name_of(rest: &str) -> String {
    format!("{NAME_REF}{rest}")
}

fn store0() -> Value {
    json!(format!("{STORE_REF}0"))
}

/// A create body with valid values that no fixture backend stands behind (for fixtures
/// without a backend of the needed kind).
pub(super) fn synthetic_create(need: Need, name: String) -> BoxedStrategy<Value> {
    match need {
        Need::CloudHsm | Need::Any => (
            valid_string("CloudHsmClusterIdType"),
            valid_string("TrustAnchorCertificateType"),
            valid_string("KeyStorePasswordType"),
        )
            .prop_map(move |(c, t, p)| {
                json!({
                    "CustomKeyStoreName": name,
                    "CustomKeyStoreType": StoreType::AwsCloudhsm.as_str(),
                    "CloudHsmClusterId": c,
                    "TrustAnchorCertificate": t,
                    "KeyStorePassword": p,
                })
            })
            .boxed(),
        Need::Xks | Need::XksVpc => (
            valid_string("XksProxyUriEndpointType"),
            valid_string("XksProxyUriPathType"),
            valid_value("XksProxyAuthenticationCredentialType"),
            valid_string("XksProxyVpcEndpointServiceNameType"),
        )
            .prop_map(move |(e, p, c, v)| {
                let mut body = json!({
                    "CustomKeyStoreName": name,
                    "CustomKeyStoreType": StoreType::ExternalKeyStore.as_str(),
                    "XksProxyUriEndpoint": e,
                    "XksProxyUriPath": p,
                    "XksProxyAuthenticationCredential": c,
                    "XksProxyConnectivity": PUBLIC_ENDPOINT,
                });
                if need == Need::XksVpc {
                    body["XksProxyConnectivity"] = json!(VPC_ENDPOINT_SERVICE);
                    body["XksProxyVpcEndpointServiceName"] = json!(v);
                }
                body
            })
            .boxed(),
    }
}

/// The valid request the rule is broken in.
fn base(ctx: &Arc<GenContext>, t: &Target, p: &Plan) -> BoxedStrategy<Value> {
    let f = &ctx.fixtures;
    let first = t.path[0].as_str();
    match t.operation {
        "CreateCustomKeyStore" => match p.case {
            Some(b) => Just(create_body(f, b, &name_of(&p.names[1]), p.explicit_type)).boxed(),
            None => synthetic_create(need(&t.path), name_of(&p.names[1])),
        },
        "DescribeCustomKeyStores" => {
            let limit_key = Spec::kms().paginators[t.operation].limit_key.clone();
            if first == limit_key {
                Just(json!({})).boxed()
            } else {
                (
                    any::<bool>(),
                    valid_integer(&member_shape(t.operation, &limit_key)),
                )
                    .prop_map(move |(with, l)| {
                        let mut body = json!({});
                        if with {
                            body[&limit_key] = json!(l);
                        }
                        body
                    })
                    .boxed()
            }
        }
        "UpdateCustomKeyStore" => {
            let mut body = json!({ STORE_ID: store0() });
            if first == STORE_ID {
                body["NewCustomKeyStoreName"] = json!(name_of(&p.names[1]));
            }
            if first == "XksProxyAuthenticationCredential" {
                let c = match p.setup.and_then(|b| b.proxy(f)) {
                    Some(proxy) => Just(credential(proxy, &proxy.secret_access_key)).boxed(),
                    None => valid_value("XksProxyAuthenticationCredentialType"),
                };
                return c
                    .prop_map(move |c| {
                        let mut body = body.clone();
                        body["XksProxyAuthenticationCredential"] = c;
                        body
                    })
                    .boxed();
            }
            Just(body).boxed()
        }
        CREATE_KEY => {
            let kind = p.setup.map_or(StoreType::AwsCloudhsm, Backend::store_type);
            let body = json!({ STORE_ID: store0(), "Origin": kind.as_str() });
            match p
                .setup
                .filter(|b| b.store_type() == StoreType::ExternalKeyStore)
            {
                Some(b) => xks_key(f, b)
                    .prop_map(move |k| {
                        let mut body = body.clone();
                        body["XksKeyId"] = json!(k);
                        body
                    })
                    .boxed(),
                None if need(&t.path) == Need::Xks => Just(json!({
                    STORE_ID: store0(),
                    "Origin": StoreType::ExternalKeyStore.as_str(),
                }))
                .boxed(),
                None => Just(body).boxed(),
            }
        }
        _ => Just(json!({ STORE_ID: store0() })).boxed(),
    }
}

fn setup_steps(ctx: &GenContext, p: &Plan) -> Vec<Step> {
    p.setup
        .map(|b| Step::Call {
            operation: "CreateCustomKeyStore".into(),
            body: create_body(&ctx.fixtures, b, &name_of(&p.names[0]), p.explicit_type),
            expect: None,
        })
        .into_iter()
        .collect()
}

/// A case breaking one member rule.
fn member_case(ctx: Arc<GenContext>, t: Target) -> BoxedStrategy<Vec<Step>> {
    let needs_setup = takes_store_id(t.operation) && t.path[0] != STORE_ID;
    let is_create = t.operation == "CreateCustomKeyStore";
    plan(&ctx, need(&t.path), needs_setup, is_create)
        .prop_flat_map(move |p| {
            let value = match t.rule {
                Rule::Required => Just(Value::Null).boxed(),
                rule => broken(&t.shape, rule),
            };
            (
                base(&ctx, &t, &p),
                value,
                Just(p),
                Just(t.clone()),
                Just(ctx.clone()),
            )
        })
        .prop_map(|(mut body, value, p, t, ctx)| {
            let path: Vec<&str> = t.path.iter().map(String::as_str).collect();
            if t.rule == Rule::Required {
                remove_path(&mut body, &path);
            } else {
                set_path(&mut body, &path, value);
            }
            let expect = Expectation {
                error: Some(t.rule.error().to_string()),
                rule: t.rule.id(&t.path.join(".")),
                // With no set-up store the ID is unknown: not-found may come first.
                unsettled: takes_store_id(t.operation)
                    && t.path[0] != STORE_ID
                    && p.setup.is_none(),
            };
            let mut steps = setup_steps(&ctx, &p);
            steps.push(request(t.operation, body, expect, t.rule == Rule::JsonType));
            steps
        })
        .boxed()
}

/// The request step: a raw body for wrong JSON types when no reference needs resolving, a
/// JSON call otherwise.
fn request(operation: &str, body: Value, expect: Expectation, wrong_type: bool) -> Step {
    if wrong_type && !has_refs(&body) {
        Step::Raw {
            operation: operation.to_string(),
            body: body.to_string(),
            expect,
            wire: None,
        }
    } else {
        Step::Call {
            operation: operation.to_string(),
            body,
            expect: Some(expect),
        }
    }
}

/// Cases giving all members of an exclusive group (the set-up store's ID and name).
fn exclusive_cases(ctx: &Arc<GenContext>) -> Option<BoxedStrategy<Vec<Step>>> {
    let spec = Spec::kms();
    let groups: Vec<(&'static str, usize)> = operations(ctx)
        .into_iter()
        .flat_map(|op| (0..spec.operations[op].exclusive.len()).map(move |i| (op, i)))
        .collect();
    if groups.is_empty() {
        return None;
    }
    let ctx = ctx.clone();
    Some(
        (select(groups), plan(&ctx, Need::Any, true, false))
            .prop_flat_map(move |((op, i), p)| {
                let group = &Spec::kms().operations[op].exclusive[i];
                let input = &Spec::kms().operations[op].input;
                let values: Vec<BoxedStrategy<(String, Value)>> = group
                    .members
                    .iter()
                    .map(|m| {
                        let m = m.clone();
                        let shape = &Spec::kms().shape(input).members[&m].shape;
                        match m.as_str() {
                            STORE_ID => Just((m, store0())).boxed(),
                            "CustomKeyStoreName" => Just((m, json!(name_of(&p.names[0])))).boxed(),
                            _ => valid_value(shape).prop_map(move |v| (m.clone(), v)).boxed(),
                        }
                    })
                    .collect();
                let expect = Expectation {
                    error: Some(group.error.clone()),
                    rule: format!("exclusive/{}", group.members.join("+")),
                    unsettled: group.inferred || p.setup.is_none(),
                };
                let setup = setup_steps(&ctx, &p);
                values.prop_map(move |vs| {
                    let mut steps = setup.clone();
                    steps.push(Step::Call {
                        operation: op.to_string(),
                        body: Value::Object(vs.into_iter().collect()),
                        expect: Some(expect.clone()),
                    });
                    steps
                })
            })
            .boxed(),
    )
}

/// Describe with a well-formed marker the endpoint never issued.
fn unissued_marker_cases(ctx: &Arc<GenContext>) -> BoxedStrategy<Vec<Step>> {
    let ctx = ctx.clone();
    let paginator = &Spec::kms().paginators["DescribeCustomKeyStores"];
    let (marker_key, limit_key) = (paginator.input_token.clone(), paginator.limit_key.clone());
    (
        plan(&ctx, Need::Any, false, false),
        unissued_marker(),
        proptest::option::of(valid_integer(&member_shape(
            "DescribeCustomKeyStores",
            &limit_key,
        ))),
    )
        .prop_map(move |(p, marker, limit)| {
            let mut body = json!({ &marker_key: marker });
            if let Some(l) = limit {
                body[&limit_key] = json!(l);
            }
            let mut steps = setup_steps(&ctx, &p);
            steps.push(Step::Call {
                operation: "DescribeCustomKeyStores".into(),
                body,
                expect: Some(Expectation {
                    error: Some(INVALID_MARKER.into()),
                    rule: format!("{marker_key}/not-issued"),
                    unsettled: false,
                }),
            });
            steps
        })
        .boxed()
}

/// Raw bodies that are not a JSON object: truncated JSON, or JSON of another kind.
fn malformed_cases(ctx: &Arc<GenContext>) -> BoxedStrategy<Vec<Step>> {
    let ops = operations(ctx);
    let f = ctx.fixtures.clone();
    let prefix_len = ctx.name_prefix_len;
    let creatable = backends::creatable(&f);
    let truncated = (
        select(ops.clone()),
        super::values::name_ref(prefix_len),
        if creatable.is_empty() {
            Just(None).boxed()
        } else {
            proptest::option::of(select(creatable)).boxed()
        },
        super::values::unknown_store_id(),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(op, name, backend, id, cut)| {
            let body = match op {
                "CreateCustomKeyStore" => match backend {
                    Some(b) => create_body(&f, b, &name, true),
                    None => json!({ "CustomKeyStoreName": name }),
                },
                _ => json!({ STORE_ID: id }),
            };
            let text = body.to_string();
            let cuts: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .filter(|i| *i > 0)
                .collect();
            let at = cuts[cut.index(cuts.len())];
            vec![Step::Raw {
                operation: op.to_string(),
                body: text[..at].to_string(),
                expect: Expectation {
                    error: Some(SERIALIZATION.into()),
                    rule: "body/truncated-json".into(),
                    unsettled: false,
                },
                wire: None,
            }]
        });
    let not_object = (
        select(ops),
        select(vec!["[]", "[{}]", "\"CustomKeyStoreId\"", "42", "true"]),
    )
        .prop_map(|(op, text)| {
            vec![Step::Raw {
                operation: op.to_string(),
                body: text.to_string(),
                expect: Expectation {
                    error: Some(SERIALIZATION.into()),
                    rule: "body/not-an-object".into(),
                    unsettled: false,
                },
                wire: None,
            }]
        });
    prop_oneof![truncated, not_object].boxed()
}

/// The `Workload::Invalid` strategy.
pub fn strategy(ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    let ctx = Arc::new(ctx.clone());
    let c = ctx.clone();
    let members = select(targets(&ctx))
        .prop_flat_map(move |t| member_case(c.clone(), t))
        .boxed();
    let mut options = vec![
        (12, members),
        (3, super::conditional::strategy(&ctx)),
        (1, unissued_marker_cases(&ctx)),
        (2, malformed_cases(&ctx)),
        (2, super::protocol::strategy()),
    ];
    if let Some(e) = exclusive_cases(&ctx) {
        options.push((1, e));
    }
    Union::new_weighted(options).boxed()
}

/// One strategy per rule the workload breaks: each member rule of each operation, each kind of
/// malformed body, each protocol rule, each member a condition requires or forbids, the
/// unissued marker and the exclusive group.
pub fn sweep(ctx: &GenContext) -> Vec<BoxedStrategy<Vec<Step>>> {
    let ctx = Arc::new(ctx.clone());
    let mut out: Vec<BoxedStrategy<Vec<Step>>> = targets(&ctx)
        .into_iter()
        .map(|t| member_case(ctx.clone(), t))
        .collect();
    out.push(unissued_marker_cases(&ctx));
    out.push(malformed_cases(&ctx));
    out.extend(super::protocol::cases());
    out.extend(
        super::conditional::targets()
            .into_iter()
            .map(|t| super::conditional::case(&ctx, t)),
    );
    out.extend(exclusive_cases(&ctx));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::generate::replay::Replay;
    use crate::generate::values::violations;
    use crate::model::Fixtures;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn ctx() -> GenContext {
        GenContext {
            fixtures: Fixtures::builtin().into(),
            quota: 10,
            allow_create_key: true,
            name_prefix_len: 18,
        }
    }

    fn cases(ctx: &GenContext, n: usize) -> Vec<Vec<Step>> {
        let s = strategy(ctx);
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| s.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    fn last_expect(case: &[Step]) -> Expectation {
        match case.last().unwrap() {
            Step::Call {
                expect: Some(e), ..
            } => e.clone(),
            Step::Raw { expect, .. } => expect.clone(),
            other => panic!("the last step carries no expectation: {other:?}"),
        }
    }

    #[test]
    fn requests_are_otherwise_valid_and_the_model_answers_the_expected_error() {
        let ctx = ctx();
        let spec = Spec::kms();
        let mut rules = BTreeSet::new();
        let mut ops = BTreeSet::new();
        for case in cases(&ctx, 600) {
            let expect = last_expect(&case);
            rules.insert(expect.rule.clone());
            if expect.rule.starts_with("protocol/") {
                // Headers and made-up names: `protocol`'s own tests; the model answers them
                // as the emulator does.
                let answer = Replay::new(&ctx, 0).run(&case[0]).pop().unwrap();
                assert_eq!(answer.error(), expect.error.as_deref(), "{case:?}");
                continue;
            }
            let mut replay = Replay::new(&ctx, 0);
            for step in &case[..case.len() - 1] {
                assert!(matches!(step, Step::Call { expect: None, .. }), "{case:?}");
                let answers = replay.run(step);
                assert!(answers.iter().all(|a| a.outcome.is_ok()), "{case:?}");
            }
            let last = case.last().unwrap();
            let (op, body) = match last {
                Step::Call {
                    operation, body, ..
                } => (operation.clone(), Some(replay.resolve(body))),
                Step::Raw {
                    operation, body, ..
                } => (
                    operation.clone(),
                    serde_json::from_str::<Value>(body)
                        .ok()
                        .filter(Value::is_object),
                ),
                _ => unreachable!(),
            };
            ops.insert(op.clone());
            let input = &spec.operations[&op].input;
            let found = body.as_ref().map(|b| violations(input, b));
            let member_rule = !expect.rule.starts_with("body/")
                && !expect.rule.starts_with("exclusive/")
                && !expect.rule.starts_with("type/")
                && !expect.rule.ends_with("/not-issued");
            if member_rule {
                assert_eq!(found, Some(vec![expect.rule.clone()]), "{case:?}");
                if let Some(b) = &body {
                    // Names that break a length rule are sent as they are.
                    if expect.rule.starts_with("CustomKeyStoreName/length") {
                        let n = b["CustomKeyStoreName"].as_str().unwrap();
                        assert!(!n.starts_with(replay.prefix()) || replay.prefix().is_empty());
                    }
                }
            } else if expect.rule.starts_with("body/") {
                assert!(found.is_none(), "{case:?}");
            } else {
                assert_eq!(found, Some(vec![]), "{case:?}");
            }
            assert!(spec.may_return(&op, expect.error.as_deref().unwrap()));
            let answer = replay.run(last).pop().unwrap();
            assert_eq!(
                answer.error(),
                expect.error.as_deref(),
                "{case:?}\n{:?}",
                answer.outcome
            );
            // The model's own validator, too, finds exactly one violation.
            if member_rule && expect.error.as_deref() == Some(super::super::values::VALIDATION) {
                let message = &answer.outcome.as_ref().unwrap_err().message;
                assert!(
                    message.starts_with("1 validation error detected"),
                    "{case:?}\n{message}"
                );
            }
        }
        for op in operations(&ctx) {
            assert!(ops.contains(op), "{op} never broken");
        }
        for rule in [
            "CustomKeyStoreName/length-max",
            "CustomKeyStoreName/length-min",
            "CustomKeyStoreName/required",
            "Limit/range-min",
            "Limit/range-max",
            "Limit/json-type",
            "CloudHsmClusterId/pattern",
            "CustomKeyStoreType/enum",
            "XksProxyAuthenticationCredential.AccessKeyId/pattern",
            "exclusive/CustomKeyStoreId+CustomKeyStoreName",
            "Marker/not-issued",
            "body/truncated-json",
            "body/not-an-object",
            "protocol/unknown-operation",
            "protocol/missing-target",
            "protocol/wrong-content-type",
        ] {
            assert!(rules.contains(rule), "{rule} never generated");
        }
    }

    /// Catches: an Update member rule drawn only against an unknown ID (so not-found may come
    /// first and the case tests precedence, not validation), e.g. `needs_setup` false for
    /// Update or a set-up dropped for some member kind.
    #[test]
    fn every_update_member_rule_is_drawn_against_a_set_up_store() {
        let ctx = ctx();
        let wanted: BTreeSet<String> = targets(&ctx)
            .iter()
            .filter(|t| t.operation == "UpdateCustomKeyStore" && t.path[0] != STORE_ID)
            .map(|t| t.rule.id(&t.path.join(".")))
            .collect();
        assert!(wanted.len() > 15, "{wanted:?}");
        let mut with_setup = BTreeSet::new();
        for case in cases(&ctx, 3000) {
            let e = last_expect(&case);
            let Some(Step::Call { operation, .. }) = case.last() else {
                continue;
            };
            let setup = matches!(
                case.first(),
                Some(Step::Call { operation, expect: None, .. }) if operation == "CreateCustomKeyStore"
            );
            if operation == "UpdateCustomKeyStore" && setup && !e.rule.starts_with("type/") {
                assert!(!e.unsettled, "{case:?}");
                with_setup.insert(e.rule.clone());
            }
        }
        let missing: Vec<&String> = wanted.difference(&with_setup).collect();
        assert!(
            missing.is_empty(),
            "never drawn with a set-up store: {missing:?}"
        );
    }

    #[test]
    fn every_target_is_reachable_and_only_create_key_depends_on_the_context() {
        let mut with = ctx();
        let all = targets(&with);
        assert!(all.iter().any(|t| t.operation == CREATE_KEY));
        with.allow_create_key = false;
        let without = targets(&with);
        assert!(without.iter().all(|t| t.operation != CREATE_KEY));
        assert!(without.len() < all.len());
        // Required members: the name of Create, the ID of the ID-taking operations, and the
        // credential's two members.
        let required: BTreeSet<String> = all
            .iter()
            .filter(|t| t.rule == Rule::Required)
            .map(|t| format!("{}:{}", t.operation, t.path.join(".")))
            .collect();
        assert!(required.contains("CreateCustomKeyStore:CustomKeyStoreName"));
        assert!(required.contains("DeleteCustomKeyStore:CustomKeyStoreId"));
        assert!(
            required.contains(
                "UpdateCustomKeyStore:XksProxyAuthenticationCredential.RawSecretAccessKey"
            )
        );
    }

    #[test]
    fn without_fixtures_the_cases_still_generate_and_unknown_ids_are_unsettled() {
        let mut c = ctx();
        c.fixtures = Fixtures::default().into();
        for case in cases(&c, 200) {
            let e = last_expect(&case);
            if let Some(Step::Call { operation, .. }) = case.last()
                && takes_store_id(operation)
                && !e.rule.starts_with(STORE_ID)
                && !e.rule.starts_with("body/")
            {
                assert!(e.unsettled, "{case:?}");
            }
        }
    }
}
