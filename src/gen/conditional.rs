//! Cases breaking one conditional rule of the conditions table
//! (`crate::model::conditions::CONDITIONS`): a Create or Update missing exactly one member a
//! condition requires, or carrying exactly one member it forbids, otherwise valid. Part of
//! `Workload::Invalid`.
//!
//! Rule ids: `type/<when>/requires/<Member>` and `type/<when>/forbids/<Member>`, `<when>` as
//! `When::label` spells it. The error, ValidationException, is inferred (KMS documents none),
//! so every expectation is unsettled: a success still fails, another error is unsettled.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

use super::backends::{Backend, create_body};
use super::invalid::{Need, candidates, synthetic_create};
use super::values::{name_rest, valid_value};
use super::{GenContext, NAME_REF, STORE_REF, Step};
use crate::history::Expectation;
use crate::model::StoreType;
use crate::model::conditions::{CONDITIONS, Condition, PUBLIC_ENDPOINT, When};
use crate::spec::Spec;

const CREATE: &str = "CreateCustomKeyStore";
const UPDATE: &str = "UpdateCustomKeyStore";
const VALIDATION: &str = "ValidationException";
const CONNECTIVITY: &str = "XksProxyConnectivity";

/// One conditional rule: a condition of the table and one member it requires or forbids.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The condition (its operation and when).
    pub condition: &'static Condition,
    /// The member.
    pub member: &'static str,
    /// True: the condition requires the member (the case omits it); false: it forbids it
    /// (the case carries it).
    pub requires: bool,
}

impl Target {
    /// The rule id, e.g. `type/CustomKeyStoreType=AWS_CLOUDHSM/requires/CloudHsmClusterId`.
    pub fn rule(&self) -> String {
        let kind = if self.requires { "requires" } else { "forbids" };
        format!(
            "type/{}/{kind}/{}",
            self.condition.when.label(),
            self.member
        )
    }
}

/// Every conditional rule of the table: each member each condition requires or forbids.
pub fn targets() -> Vec<Target> {
    CONDITIONS
        .iter()
        .flat_map(|c| {
            let requires = c.requires.iter().map(move |m| Target {
                condition: c,
                member: m,
                requires: true,
            });
            let forbids = c.forbids.iter().map(move |m| Target {
                condition: c,
                member: m,
                requires: false,
            });
            requires.chain(forbids)
        })
        .collect()
}

/// The kind of store the case is about: the body of a Create, the set-up store of an Update
/// (a PUBLIC_ENDPOINT one for connectivity conditions: the request switches it if needed).
fn need(t: &Target) -> Need {
    match t.condition.when {
        When::RequestType(StoreType::AwsCloudhsm) | When::StoreType(StoreType::AwsCloudhsm) => {
            Need::CloudHsm
        }
        When::RequestType(StoreType::ExternalKeyStore)
        | When::StoreType(StoreType::ExternalKeyStore) => Need::Xks,
        When::Connectivity(c) if t.condition.operation == CREATE && c != PUBLIC_ENDPOINT => {
            Need::XksVpc
        }
        When::Connectivity(_) => Need::Xks,
    }
}

/// The shape of an input member of an operation.
fn member_shape(operation: &str, member: &str) -> String {
    let spec = Spec::kms();
    spec.shape(&spec.operations[operation].input).members[member]
        .shape
        .clone()
}

/// A fixture backend of the needed kind, if the fixtures and the quota allow one.
fn backend(ctx: &GenContext, need: Need) -> BoxedStrategy<Option<Backend>> {
    let pool = candidates(ctx, need);
    if pool.is_empty() {
        Just(None).boxed()
    } else {
        select(pool).prop_map(Some).boxed()
    }
}

fn expectation(t: &Target) -> Expectation {
    Expectation {
        error: Some(VALIDATION.into()),
        rule: t.rule(),
        unsettled: true,
    }
}

/// Omits the member the target requires, or puts in a valid value of the one it forbids.
fn break_rule(body: &mut Value, t: &Target, value: Value) {
    let Some(map) = body.as_object_mut() else {
        return;
    };
    if t.requires {
        map.remove(t.member);
    } else {
        map.insert(t.member.to_string(), value);
    }
}

/// A Create that breaks the target: the valid create body of a backend of the kind (a
/// synthetic one when the fixtures have none), less or plus the member.
fn create_case(ctx: Arc<GenContext>, t: Target) -> BoxedStrategy<Vec<Step>> {
    let need = need(&t);
    (
        backend(&ctx, need),
        name_rest(ctx.name_prefix_len),
        any::<bool>(),
        valid_value(&member_shape(CREATE, t.member)),
    )
        .prop_flat_map(move |(b, rest, explicit_type, value)| {
            let name = format!("{NAME_REF}{rest}");
            let body = match b {
                Some(b) => Just(create_body(&ctx.fixtures, b, &name, explicit_type)).boxed(),
                None => synthetic_create(need, name),
            };
            (body, Just(value))
        })
        .prop_map(move |(mut body, value)| {
            break_rule(&mut body, &t, value);
            vec![Step::Call {
                operation: CREATE.into(),
                body,
                expect: Some(expectation(&t)),
            }]
        })
        .boxed()
}

/// An Update of a set-up store (DISCONNECTED, as created) of the kind that breaks the target;
/// with no backend for the set-up, the ID is one no endpoint issued.
fn update_case(ctx: Arc<GenContext>, t: Target) -> BoxedStrategy<Vec<Step>> {
    (
        backend(&ctx, need(&t)),
        name_rest(ctx.name_prefix_len),
        any::<bool>(),
        valid_value(&member_shape(UPDATE, t.member)),
    )
        .prop_map(move |(setup, rest, explicit_type, value)| {
            let mut steps: Vec<Step> = setup
                .map(|b| Step::Call {
                    operation: CREATE.into(),
                    body: create_body(
                        &ctx.fixtures,
                        b,
                        &format!("{NAME_REF}{rest}"),
                        explicit_type,
                    ),
                    expect: None,
                })
                .into_iter()
                .collect();
            let mut body = json!({ "CustomKeyStoreId": format!("{STORE_REF}0") });
            if let When::Connectivity(c) = t.condition.when
                && c != PUBLIC_ENDPOINT
            {
                // The set-up store is PUBLIC_ENDPOINT: switch it.
                body[CONNECTIVITY] = json!(c);
            }
            break_rule(&mut body, &t, value);
            steps.push(Step::Call {
                operation: UPDATE.into(),
                body,
                expect: Some(expectation(&t)),
            });
            steps
        })
        .boxed()
}

/// The case of one target.
pub fn case(ctx: &GenContext, t: Target) -> BoxedStrategy<Vec<Step>> {
    let ctx = Arc::new(ctx.clone());
    if t.condition.operation == UPDATE {
        update_case(ctx, t)
    } else {
        create_case(ctx, t)
    }
}

/// The conditional cases: one target drawn from the table, then its case.
pub fn strategy(ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    let ctx = ctx.clone();
    select(targets())
        .prop_flat_map(move |t| case(&ctx, t))
        .boxed()
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

    fn ctx(fixtures: Fixtures, quota: usize) -> GenContext {
        GenContext {
            fixtures: fixtures.into(),
            quota,
            allow_create_key: true,
            name_prefix_len: 18,
        }
    }

    /// Catches: a condition member that is never drawn (e.g. a hand-listed subset), a set-up
    /// that fails, a request that breaks a member constraint too, or a case the model does not
    /// answer with ValidationException (a wrong base body, a wrong connectivity switch).
    #[test]
    fn every_condition_member_is_drawn_and_the_model_refuses_it() {
        let ctx = ctx(Fixtures::builtin(), 10);
        let spec = Spec::kms();
        let mut runner = TestRunner::deterministic();
        let mut seen = BTreeSet::new();
        for t in targets() {
            let s = case(&ctx, t);
            for _ in 0..4 {
                let steps = s.new_tree(&mut runner).unwrap().current();
                let mut replay = Replay::new(&ctx, 0);
                for step in &steps[..steps.len() - 1] {
                    let answers = replay.run(step);
                    assert!(answers.iter().all(|a| a.outcome.is_ok()), "{steps:?}");
                }
                let last = steps.last().unwrap();
                let Step::Call {
                    operation,
                    body,
                    expect: Some(e),
                } = last
                else {
                    panic!("{last:?}")
                };
                assert_eq!(operation, t.condition.operation);
                assert_eq!(e.rule, t.rule());
                assert!(e.unsettled);
                // Otherwise valid: no member constraint is broken.
                let resolved = replay.resolve(body);
                let input = &spec.operations[operation].input;
                assert_eq!(
                    violations(input, &resolved),
                    Vec::<String>::new(),
                    "{steps:?}"
                );
                assert_eq!(t.requires, resolved.get(t.member).is_none(), "{steps:?}");
                // Update cases are about an existing store.
                assert_eq!(steps.len(), usize::from(operation == UPDATE) + 1);
                let answer = replay.run(last).pop().unwrap();
                assert_eq!(answer.error(), Some(VALIDATION), "{steps:?}\n{answer:?}");
                let message = &answer.outcome.as_ref().unwrap_err().message;
                assert!(message.contains(t.member), "{steps:?}\n{message}");
                seen.insert(format!("{operation}:{}", e.rule));
            }
        }
        let expected: usize = CONDITIONS
            .iter()
            .map(|c| c.requires.len() + c.forbids.len())
            .sum();
        assert_eq!(seen.len(), expected);
        for rule in [
            "CreateCustomKeyStore:type/CustomKeyStoreType=AWS_CLOUDHSM/requires/CloudHsmClusterId",
            "UpdateCustomKeyStore:type/store=EXTERNAL_KEY_STORE/forbids/KeyStorePassword",
            "UpdateCustomKeyStore:type/XksProxyConnectivity=VPC_ENDPOINT_SERVICE/requires/XksProxyVpcEndpointServiceName",
        ] {
            assert!(seen.contains(rule), "{rule}");
        }
    }

    /// Catches: a strategy that panics or draws a set-up store without a backend or beyond the
    /// quota when the fixtures have no backend of the kind.
    #[test]
    fn without_backends_or_quota_the_cases_are_synthetic_and_have_no_set_up() {
        for (fixtures, quota) in [(Fixtures::default(), 10), (Fixtures::builtin(), 0)] {
            let ctx = ctx(fixtures, quota);
            let s = strategy(&ctx);
            let mut runner = TestRunner::deterministic();
            for _ in 0..100 {
                let steps = s.new_tree(&mut runner).unwrap().current();
                assert_eq!(steps.len(), 1, "{steps:?}");
            }
        }
    }
}
