//! `Workload::Paging`: k stores with distinct names and backends, listed unpaged and with
//! limits from 1 to k + 1 and from the whole allowed range, before and after a delete; plus
//! a marker the endpoint never issued and limits just outside the allowed range.
//!
//! Rule ids: `Marker/not-issued` (InvalidMarkerException), `Limit/range-min` and
//! `Limit/range-max` (ValidationException).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::backends::{create_body, distinct_creatable};
use super::values::{
    INVALID_MARKER, Rule, VALIDATION, distinct_name_rests, unissued_marker, valid_integer,
};
use super::{GenContext, NAME_REF, STORE_REF, Step};
use crate::history::Expectation;
use crate::spec::Spec;

/// The most stores a paging case creates.
const MAX_STORES: usize = 10;
const DESCRIBE: &str = "DescribeCustomKeyStores";

/// The paginator's member names and the Limit member's shape.
struct Keys {
    marker: String,
    limit: String,
    limit_shape: String,
}

fn keys() -> Keys {
    let spec = Spec::kms();
    let p = &spec.paginators[DESCRIBE];
    let input = spec.shape(&spec.operations[DESCRIBE].input);
    Keys {
        marker: p.input_token.clone(),
        limit: p.limit_key.clone(),
        limit_shape: input.members[&p.limit_key].shape.clone(),
    }
}

/// A Limit for a listing of k stores: mostly 1..=k+1, sometimes from the whole allowed range.
fn limit(k: usize, limit_shape: &str) -> BoxedStrategy<u32> {
    let small = (1..=k as u32 + 1).boxed();
    let whole = valid_integer(limit_shape).prop_map(|l| l as u32).boxed();
    prop_oneof![3 => small, 1 => whole].boxed()
}

fn call(body: Value, error: Option<&str>, rule: String) -> Step {
    Step::Call {
        operation: DESCRIBE.into(),
        body,
        expect: Some(Expectation {
            error: error.map(str::to_string),
            rule,
            unsettled: false,
        }),
    }
}

/// The probes after the creates, each a group of steps kept together, in random order.
fn probes(k: usize) -> BoxedStrategy<Vec<Vec<Step>>> {
    let keys = keys();
    let shape = Spec::kms().shape(&keys.limit_shape);
    let (min, max) = (shape.min.unwrap_or(1), shape.max.unwrap_or(1000));
    let limited = prop::collection::vec(limit(k, &keys.limit_shape), 2..=5).prop_map(|ls| {
        ls.into_iter()
            .map(|l| vec![Step::Paginate { limit: Some(l) }])
            .collect::<Vec<_>>()
    });
    let delete = if k == 0 {
        Just(None).boxed()
    } else {
        proptest::option::of((0..k, limit(k, &keys.limit_shape)))
            .prop_map(|d| {
                d.map(|(i, l)| {
                    vec![
                        Step::Call {
                            operation: "DeleteCustomKeyStore".into(),
                            body: json!({ "CustomKeyStoreId": format!("{STORE_REF}{i}") }),
                            expect: None,
                        },
                        Step::Paginate { limit: None },
                        Step::Paginate { limit: Some(l) },
                    ]
                })
            })
            .boxed()
    };
    let marker_probe = (
        unissued_marker(),
        proptest::option::of(limit(k, &keys.limit_shape)),
    )
        .prop_map(move |(m, l)| {
            let mut body = json!({ &keys.marker: m });
            if let Some(l) = l {
                body[&keys.limit] = json!(l);
            }
            vec![call(
                body,
                Some(INVALID_MARKER),
                format!("{}/not-issued", keys.marker),
            )]
        });
    let limit_key = self::keys().limit;
    let out_of_range = (any::<bool>(), any::<bool>()).prop_map(move |(low, high)| {
        let mut out = Vec::new();
        if low {
            out.push(vec![call(
                json!({ &limit_key: min - 1 }),
                Some(VALIDATION),
                Rule::RangeMin.id(&limit_key),
            )]);
        }
        if high {
            out.push(vec![call(
                json!({ &limit_key: max + 1 }),
                Some(VALIDATION),
                Rule::RangeMax.id(&limit_key),
            )]);
        }
        out
    });
    (
        limited,
        delete,
        proptest::option::of(marker_probe),
        out_of_range,
    )
        .prop_map(|(mut groups, delete, marker, ranges)| {
            groups.extend(delete);
            groups.extend(marker);
            groups.extend(ranges);
            groups
        })
        .prop_shuffle()
        .boxed()
}

/// The `Workload::Paging` strategy.
pub fn strategy(ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    let f = ctx.fixtures.clone();
    let most = ctx
        .quota
        .min(MAX_STORES)
        .min(super::backends::creatable(&f).len());
    let prefix_len = ctx.name_prefix_len;
    (0..=most)
        .prop_flat_map(move |k| {
            (
                distinct_creatable(&f, k),
                distinct_name_rests(prefix_len, k),
                prop::collection::vec(any::<bool>(), k),
                probes(k),
                Just(f.clone()),
            )
        })
        .prop_map(|(backends, names, explicit, probes, f)| {
            let mut steps: Vec<Step> = backends
                .iter()
                .zip(&names)
                .zip(explicit)
                .map(|((b, n), e)| Step::Call {
                    operation: "CreateCustomKeyStore".into(),
                    body: create_body(&f, *b, &format!("{NAME_REF}{n}"), e),
                    expect: None,
                })
                .collect();
            steps.push(Step::Paginate { limit: None });
            steps.extend(probes.into_iter().flatten());
            steps
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::replay::Replay;
    use crate::model::Fixtures;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn paging_cases_create_distinct_stores_and_probe_every_way() {
        let ctx = GenContext {
            fixtures: Fixtures::builtin().into(),
            quota: 10,
            allow_create_key: true,
            name_prefix_len: 18,
        };
        let s = strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        let (mut ks, mut big, mut deletes, mut rules) = (
            std::collections::BTreeSet::new(),
            false,
            0,
            std::collections::BTreeSet::new(),
        );
        for _ in 0..300 {
            let case = s.new_tree(&mut runner).unwrap().current();
            let mut replay = Replay::new(&ctx, 0);
            let mut k = 0;
            let mut live = 0usize;
            for step in &case {
                let answers = replay.run(step);
                match step {
                    Step::Call {
                        operation, expect, ..
                    } => {
                        let a = &answers[0];
                        match expect {
                            Some(e) => {
                                rules.insert(e.rule.clone());
                                assert_eq!(a.error(), e.error.as_deref(), "{case:?}");
                            }
                            None => assert!(a.outcome.is_ok(), "{case:?}: {a:?}"),
                        }
                        if operation == "CreateCustomKeyStore" {
                            k += 1;
                            live += 1;
                        }
                        if operation == "DeleteCustomKeyStore" {
                            deletes += 1;
                            live -= 1;
                        }
                    }
                    Step::Paginate { limit } => {
                        let listed: usize = answers
                            .iter()
                            .map(|a| {
                                a.outcome.as_ref().unwrap()["CustomKeyStores"]
                                    .as_array()
                                    .unwrap()
                                    .len()
                            })
                            .sum();
                        assert_eq!(listed, live, "{case:?}");
                        if limit.is_some_and(|l| l > 11) {
                            big = true;
                        }
                    }
                    _ => {}
                }
            }
            assert!(k <= ctx.quota);
            ks.insert(k);
        }
        assert!(ks.contains(&0) && ks.contains(&10), "{ks:?}");
        assert!(big && deletes > 0);
        for r in ["Marker/not-issued", "Limit/range-min", "Limit/range-max"] {
            assert!(rules.contains(r), "{r}");
        }
    }
}
