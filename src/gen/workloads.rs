//! `Workload::Exclusion` (Describe by ID, by name, by both, by unknown ones) and
//! `Workload::Concurrency` (requests sent at the same time).
//!
//! Exclusion rule ids: `exclusion/by-id`, `exclusion/by-name` (success expected),
//! `exclusion/both` (the exclusive group's error, unsettled when the spec marks it inferred),
//! `exclusion/unknown-id`, `exclusion/unknown-name` (CustomKeyStoreNotFoundException).

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

use super::backends::{self, Backend, create_body, distinct_creatable};
use super::values::{distinct_name_rests, unknown_store_id};
use super::{GenContext, NAME_REF, STORE_REF, Step};
use crate::history::Expectation;
use crate::spec::Spec;

const DESCRIBE: &str = "DescribeCustomKeyStores";
const NOT_FOUND: &str = "CustomKeyStoreNotFoundException";
/// The most stores an exclusion case creates.
const EXCLUSION_STORES: usize = 4;
/// The most creates racing for one name.
const RACING_CREATES: usize = 8;

fn create(f: &crate::model::Fixtures, b: Backend, rest: &str) -> Step {
    Step::Call {
        operation: "CreateCustomKeyStore".into(),
        body: create_body(f, b, &format!("{NAME_REF}{rest}"), true),
        expect: None,
    }
}

fn store(i: usize) -> Value {
    json!(format!("{STORE_REF}{i}"))
}

fn expect(error: Option<&str>, rule: &str, unsettled: bool) -> Option<Expectation> {
    Some(Expectation {
        error: error.map(str::to_string),
        rule: rule.to_string(),
        unsettled,
    })
}

fn describe(body: Value, expect: Option<Expectation>) -> Step {
    Step::Call {
        operation: DESCRIBE.into(),
        body,
        expect,
    }
}

/// The `Workload::Exclusion` strategy.
pub fn exclusion(ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    let f = ctx.fixtures.clone();
    let most = ctx
        .quota
        .min(EXCLUSION_STORES)
        .min(backends::creatable(&f).len());
    let prefix_len = ctx.name_prefix_len;
    let spec = Spec::kms();
    let group = spec.operations[DESCRIBE]
        .exclusive
        .iter()
        .find(|g| g.members.iter().any(|m| m == "CustomKeyStoreId"))
        .map(|g| (g.error.clone(), g.inferred));
    (most.min(1)..=most)
        .prop_flat_map(move |n| {
            (
                distinct_creatable(&f, n),
                // n names for the stores and one that no store has.
                distinct_name_rests(prefix_len, n + 1),
                unknown_store_id(),
                prop::collection::vec((0..n.max(1), 0..n.max(1), 0..5u8), 3..=10),
                Just(f.clone()),
            )
        })
        .prop_map(move |(backends, names, unknown_id, queries, f)| {
            let n = backends.len();
            let mut steps: Vec<Step> = backends
                .iter()
                .zip(&names)
                .map(|(b, rest)| create(&f, *b, rest))
                .collect();
            let unknown_name = format!("{NAME_REF}{}", names[n]);
            for (i, j, kind) in queries {
                let kind = if n == 0 { 3 + kind % 2 } else { kind };
                steps.push(match kind {
                    0 => describe(
                        json!({ "CustomKeyStoreId": store(i) }),
                        expect(None, "exclusion/by-id", false),
                    ),
                    1 => describe(
                        json!({ "CustomKeyStoreName": format!("{NAME_REF}{}", names[i]) }),
                        expect(None, "exclusion/by-name", false),
                    ),
                    2 => describe(
                        json!({
                            "CustomKeyStoreId": store(i),
                            "CustomKeyStoreName": format!("{NAME_REF}{}", names[j]),
                        }),
                        group.as_ref().and_then(|(error, inferred)| {
                            expect(Some(error), "exclusion/both", *inferred)
                        }),
                    ),
                    3 => describe(
                        json!({ "CustomKeyStoreId": unknown_id }),
                        expect(Some(NOT_FOUND), "exclusion/unknown-id", false),
                    ),
                    _ => describe(
                        json!({ "CustomKeyStoreName": unknown_name }),
                        expect(Some(NOT_FOUND), "exclusion/unknown-name", false),
                    ),
                });
            }
            steps
        })
        .boxed()
}

/// Creates racing for one name on distinct backends, then a lookup by that name.
fn racing_creates(ctx: &GenContext) -> Option<BoxedStrategy<Vec<Step>>> {
    let f = ctx.fixtures.clone();
    let most = ctx
        .quota
        .min(RACING_CREATES)
        .min(backends::creatable(&f).len());
    if most < 2 {
        return None;
    }
    let prefix_len = ctx.name_prefix_len;
    Some(
        (2..=most)
            .prop_flat_map(move |n| {
                (
                    distinct_creatable(&f, n),
                    super::values::name_rest(prefix_len),
                    Just(f.clone()),
                )
            })
            .prop_map(|(backends, rest, f)| {
                let creates = backends.iter().map(|b| create(&f, *b, &rest)).collect();
                vec![
                    Step::Concurrent { steps: creates },
                    describe(
                        json!({ "CustomKeyStoreName": format!("{NAME_REF}{rest}") }),
                        None,
                    ),
                ]
            })
            .boxed(),
    )
}

/// One store connected and settled, then Connect, Disconnect and Delete on it at once, a
/// Settle and a Describe.
fn racing_transitions(ctx: &GenContext) -> Option<BoxedStrategy<Vec<Step>>> {
    let f = ctx.fixtures.clone();
    if ctx.quota == 0 {
        return None;
    }
    let creatable = backends::creatable(&f);
    let healthy: Vec<Backend> = creatable
        .iter()
        .copied()
        .filter(|b| b.healthy(&f))
        .collect();
    let pool = if healthy.is_empty() {
        creatable
    } else {
        healthy
    };
    if pool.is_empty() {
        return None;
    }
    let prefix_len = ctx.name_prefix_len;
    let ops = vec![
        "ConnectCustomKeyStore",
        "DisconnectCustomKeyStore",
        "DeleteCustomKeyStore",
    ];
    Some(
        (
            select(pool),
            super::values::name_rest(prefix_len),
            prop::collection::vec(select(ops), 2..=6),
        )
            .prop_flat_map(move |(b, rest, ops)| {
                (
                    backends::with_connectivity(&f, b),
                    Just(rest),
                    Just(ops),
                    Just(f.clone()),
                )
            })
            .prop_map(|(b, rest, ops, f)| {
                let on_store = |op: &str| Step::Call {
                    operation: op.into(),
                    body: json!({ "CustomKeyStoreId": store(0) }),
                    expect: None,
                };
                vec![
                    create(&f, b, &rest),
                    on_store("ConnectCustomKeyStore"),
                    Step::Settle { store: 0 },
                    Step::Concurrent {
                        steps: ops.iter().map(|op| on_store(op)).collect(),
                    },
                    Step::Settle { store: 0 },
                    describe(json!({ "CustomKeyStoreId": store(0) }), None),
                ]
            })
            .boxed(),
    )
}

/// The `Workload::Concurrency` strategy (concurrent Describes when the fixtures have no
/// backend to create stores on).
pub fn concurrency(ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    let options: Vec<BoxedStrategy<Vec<Step>>> = [racing_creates(ctx), racing_transitions(ctx)]
        .into_iter()
        .flatten()
        .collect();
    if options.is_empty() {
        return (2..=RACING_CREATES)
            .prop_map(|n| {
                vec![Step::Concurrent {
                    steps: (0..n).map(|_| describe(json!({}), None)).collect(),
                }]
            })
            .boxed();
    }
    proptest::strategy::Union::new(options).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::replay::Replay;
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

    #[test]
    fn exclusion_expectations_hold_in_the_model() {
        let ctx = ctx();
        let s = exclusion(&ctx);
        let mut runner = TestRunner::deterministic();
        let mut rules = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let case = s.new_tree(&mut runner).unwrap().current();
            let mut replay = Replay::new(&ctx, 0);
            for step in &case {
                let answers = replay.run(step);
                if let Step::Call { expect, .. } = step {
                    match expect {
                        Some(e) => {
                            rules.insert(e.rule.clone());
                            assert_eq!(answers[0].error(), e.error.as_deref(), "{case:?}");
                        }
                        None => assert!(answers[0].outcome.is_ok(), "{case:?}"),
                    }
                }
            }
        }
        for r in [
            "exclusion/by-id",
            "exclusion/by-name",
            "exclusion/both",
            "exclusion/unknown-id",
            "exclusion/unknown-name",
        ] {
            assert!(rules.contains(r), "{r}");
        }
    }

    /// Catches: an exclusion workload whose "both" Describe always names one store twice
    /// (the ID and the name of the same store), so an endpoint that answers the store named by
    /// ID, or the one named by name, is judged only where the two agree.
    #[test]
    fn both_members_naming_two_different_stores_are_drawn_and_rejected() {
        let ctx = ctx();
        let s = exclusion(&ctx);
        let mut runner = TestRunner::deterministic();
        let mut different = 0;
        for _ in 0..200 {
            let case = s.new_tree(&mut runner).unwrap().current();
            let names: Vec<Value> = case
                .iter()
                .filter_map(|step| match step {
                    Step::Call {
                        operation, body, ..
                    } if operation == "CreateCustomKeyStore" => {
                        Some(body["CustomKeyStoreName"].clone())
                    }
                    _ => None,
                })
                .collect();
            let mut replay = Replay::new(&ctx, 0);
            for step in &case {
                let answers = replay.run(step);
                let Step::Call { body, expect, .. } = step else {
                    continue;
                };
                let (Some(id), Some(name)) = (
                    body["CustomKeyStoreId"].as_str(),
                    body.get("CustomKeyStoreName"),
                ) else {
                    continue;
                };
                let by_id: usize = id.trim_start_matches(STORE_REF).parse().unwrap();
                if names.iter().position(|n| n == name) != Some(by_id) {
                    different += 1;
                    assert_eq!(expect.as_ref().unwrap().rule, "exclusion/both");
                    assert_eq!(answers[0].error(), Some("ValidationException"), "{case:?}");
                }
            }
        }
        assert!(different > 30, "{different}");
    }

    #[test]
    fn racing_creates_have_one_name_and_distinct_backends() {
        let ctx = ctx();
        let s = concurrency(&ctx);
        let mut runner = TestRunner::deterministic();
        let (mut races, mut transitions) = (0, 0);
        for _ in 0..200 {
            let case = s.new_tree(&mut runner).unwrap().current();
            let mut replay = Replay::new(&ctx, 0);
            match case.as_slice() {
                [race @ Step::Concurrent { steps }, Step::Call { .. }] => {
                    races += 1;
                    assert!((2..=RACING_CREATES).contains(&steps.len()));
                    let names: std::collections::BTreeSet<String> = steps
                        .iter()
                        .map(|s| match s {
                            Step::Call { body, .. } => body["CustomKeyStoreName"].to_string(),
                            other => panic!("{other:?}"),
                        })
                        .collect();
                    assert_eq!(names.len(), 1);
                    // Run one after the other, exactly one create succeeds: the backends
                    // differ, only the name is shared.
                    let answers = replay.run(race);
                    let ok = answers.iter().filter(|a| a.outcome.is_ok()).count();
                    assert_eq!(ok, 1, "{answers:?}");
                    assert!(answers.iter().all(|a| a.outcome.is_ok()
                        || a.error() == Some("CustomKeyStoreNameInUseException")));
                }
                [
                    setup @ ..,
                    Step::Concurrent { steps },
                    Step::Settle { store: 0 },
                    _,
                ] if setup.len() == 3 => {
                    transitions += 1;
                    assert!((2..=6).contains(&steps.len()));
                    for step in setup {
                        assert!(replay.run(step).iter().all(|a| a.outcome.is_ok()));
                    }
                    let state = replay.stores()[0].state;
                    assert_eq!(state, crate::model::ConnectionState::Connected);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(races > 20 && transitions > 20, "{races} {transitions}");
    }
}
