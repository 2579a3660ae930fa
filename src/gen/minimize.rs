//! Shrinking a failing case: proptest's value tree simplifies values inside the case, then
//! step removal drops whole steps that the failure does not need, so a report shows the
//! shortest sequence. Both stop as soon as the judge says the shrink's budget is spent.

use proptest::strategy::ValueTree;
use serde_json::Value;

use super::{STORE_REF, Step};

/// What trying one candidate told: it still fails, it passes, or the shrink's budget is spent
/// (nothing was sent; shrinking stops with the best found so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// The candidate still shows the failure.
    Fails,
    /// It does not.
    Passes,
    /// The budget is spent: stop.
    Spent,
}

/// The simplest value of `tree` that still `fails`, as proptest's runner shrinks: simplify
/// while the case fails, complicate when it passes, until the tree gives up, `tries` cases are
/// tried or `fails` says the budget is spent. `tree.current()` must fail to begin with.
pub fn shrink<T: ValueTree>(
    tree: &mut T,
    tries: usize,
    mut fails: impl FnMut(&T::Value) -> Tried,
) -> T::Value {
    let mut minimal = tree.current();
    let mut more = tree.simplify();
    for _ in 0..tries {
        if !more {
            break;
        }
        let candidate = tree.current();
        more = match fails(&candidate) {
            Tried::Fails => {
                minimal = candidate;
                tree.simplify()
            }
            Tried::Passes => tree.complicate(),
            Tried::Spent => break,
        };
    }
    minimal
}

/// How many Create calls a step makes (each gets the next `$store:N` handle).
fn creates(step: &Step) -> usize {
    match step {
        Step::Call { operation, .. } if operation == "CreateCustomKeyStore" => 1,
        Step::Concurrent { steps } => steps.iter().map(creates).sum(),
        _ => 0,
    }
}

/// The store handle a `$store:N` string names.
fn handle(s: &str) -> Option<usize> {
    s.strip_prefix(STORE_REF)?.parse().ok()
}

/// Whether any string in `v` names a handle in `range`.
fn refers(v: &Value, range: &std::ops::Range<usize>) -> bool {
    match v {
        Value::String(s) => handle(s).is_some_and(|n| range.contains(&n)),
        Value::Array(items) => items.iter().any(|i| refers(i, range)),
        Value::Object(map) => map.values().any(|i| refers(i, range)),
        _ => false,
    }
}

fn step_refers(step: &Step, range: &std::ops::Range<usize>) -> bool {
    match step {
        Step::Call { body, .. } => refers(body, range),
        Step::Settle { store } => range.contains(store),
        Step::Concurrent { steps } => steps.iter().any(|s| step_refers(s, range)),
        Step::Raw { .. } | Step::Paginate { .. } => false,
    }
}

/// `v` with every handle at or above `from` moved down by `by`.
fn renumber(v: &Value, from: usize, by: usize) -> Value {
    match v {
        Value::String(s) => match handle(s) {
            Some(n) if n >= from => Value::String(format!("{STORE_REF}{}", n - by)),
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| renumber(i, from, by)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), renumber(i, from, by)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn renumber_step(step: &Step, from: usize, by: usize) -> Step {
    match step {
        Step::Settle { store } if *store >= from => Step::Settle { store: store - by },
        other => other.map_call_bodies(&|_, body| renumber(body, from, by)),
    }
}

/// The sequence without step `i`, its later handles renumbered; None when a later step refers
/// to a store that step created (removing it would change what the later step means).
pub fn without(steps: &[Step], i: usize) -> Option<Vec<Step>> {
    let first = steps[..i].iter().map(creates).sum::<usize>();
    let made = first..first + creates(&steps[i]);
    let later = &steps[i + 1..];
    if !made.is_empty() && later.iter().any(|s| step_refers(s, &made)) {
        return None;
    }
    let mut out = steps[..i].to_vec();
    out.extend(later.iter().map(|s| renumber_step(s, made.end, made.len())));
    Some(out)
}

/// Drops steps, last first, for as long as `still_fails` holds for the shorter sequence, until
/// no single step can go, `budget` tries are spent or `still_fails` says the shrink's budget
/// is. Empty sequences are not tried.
pub fn minimize(
    mut steps: Vec<Step>,
    mut budget: usize,
    mut still_fails: impl FnMut(&[Step]) -> Tried,
) -> Vec<Step> {
    loop {
        let mut shorter = false;
        let mut i = steps.len();
        while i > 0 && steps.len() > 1 {
            i -= 1;
            if budget == 0 {
                return steps;
            }
            let Some(candidate) = without(&steps, i) else {
                continue;
            };
            budget -= 1;
            match still_fails(&candidate) {
                Tried::Fails => {
                    steps = candidate;
                    shorter = true;
                }
                Tried::Passes => {}
                Tried::Spent => return steps,
            }
        }
        if !shorter {
            return steps;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tried(fails: bool) -> Tried {
        if fails { Tried::Fails } else { Tried::Passes }
    }

    fn create(name: &str) -> Step {
        Step::Call {
            operation: "CreateCustomKeyStore".into(),
            body: json!({ "CustomKeyStoreName": name }),
            expect: None,
        }
    }

    fn on(operation: &str, n: usize) -> Step {
        Step::Call {
            operation: operation.into(),
            body: json!({ "CustomKeyStoreId": format!("{STORE_REF}{n}") }),
            expect: None,
        }
    }

    #[test]
    fn removing_a_create_renumbers_later_handles_and_keeps_referenced_creates() {
        let steps = vec![
            create("a"),
            create("b"),
            on("ConnectCustomKeyStore", 1),
            Step::Settle { store: 1 },
        ];
        let out = without(&steps, 0).expect("nothing refers to store 0");
        assert_eq!(
            out,
            vec![
                create("b"),
                on("ConnectCustomKeyStore", 0),
                Step::Settle { store: 0 }
            ]
        );
        assert_eq!(without(&steps, 1), None, "store 1 is used later");
        let concurrent = vec![
            Step::Concurrent {
                steps: vec![create("x"), create("y")],
            },
            create("z"),
            on("DeleteCustomKeyStore", 2),
        ];
        let out = without(&concurrent, 0).expect("the group's stores are unused");
        assert_eq!(out, vec![create("z"), on("DeleteCustomKeyStore", 0)]);
    }

    #[test]
    fn minimize_keeps_exactly_the_steps_the_failure_needs() {
        // The "failure": a Delete of a store that was connected first.
        let steps = vec![
            create("a"),
            Step::Paginate { limit: Some(1) },
            create("b"),
            on("ConnectCustomKeyStore", 1),
            Step::Paginate { limit: None },
            on("DeleteCustomKeyStore", 1),
            on("DeleteCustomKeyStore", 0),
        ];
        let fails = |s: &[Step]| {
            (0..4).any(|h| {
                let connect = s.iter().position(|x| *x == on("ConnectCustomKeyStore", h));
                let delete = s.iter().rposition(|x| *x == on("DeleteCustomKeyStore", h));
                matches!((connect, delete), (Some(c), Some(d)) if c < d)
            })
        };
        assert!(fails(&steps), "the planted failure holds at the start");
        let out = minimize(steps, 100, |s| tried(fails(s)));
        assert_eq!(
            out,
            vec![
                create("b"),
                on("ConnectCustomKeyStore", 0),
                on("DeleteCustomKeyStore", 0)
            ]
        );
    }

    #[test]
    fn minimize_stops_when_the_budget_is_spent() {
        let steps = vec![create("a"), create("b"), create("c")];
        let mut tries = 0;
        let out = minimize(steps.clone(), 2, |_| {
            tries += 1;
            Tried::Passes
        });
        assert_eq!((out, tries), (steps, 2));
    }

    #[test]
    fn minimize_and_shrink_stop_when_the_judge_says_the_budget_is_spent() {
        let steps = vec![create("a"), create("b"), create("c")];
        let mut tries = 0;
        // The first removal still fails, then the budget is spent.
        let out = minimize(steps.clone(), 100, |_| {
            tries += 1;
            if tries == 1 {
                Tried::Fails
            } else {
                Tried::Spent
            }
        });
        assert_eq!((out, tries), (steps[..2].to_vec(), 2));
        let mut tree = int_tree();
        let start = tree.current();
        let mut tries = 0;
        let out = shrink(&mut tree, 1000, |_| {
            tries += 1;
            if tries <= 2 {
                Tried::Fails
            } else {
                Tried::Spent
            }
        });
        assert_eq!(tries, 3, "stopped at the first spent answer");
        assert!(
            out < start,
            "the last failing value is kept: {out} < {start}"
        );
    }

    /// A value tree over integers drawn from `0..1000` with a fixed seed.
    fn int_tree() -> impl ValueTree<Value = u32> {
        use proptest::strategy::Strategy;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
        );
        loop {
            let tree = (0u32..1000).new_tree(&mut runner).expect("a tree");
            if tree.current() >= 500 {
                return tree;
            }
        }
    }

    #[test]
    fn shrink_finds_the_smallest_value_that_still_fails() {
        let mut tree = int_tree();
        let start = tree.current();
        let out = shrink(&mut tree, 1000, |&n| tried(n >= 123));
        assert_eq!(out, 123, "shrunk from {start}");
    }

    #[test]
    fn shrink_keeps_the_start_when_no_simpler_value_fails_and_stops_at_the_try_budget() {
        let mut tree = int_tree();
        let start = tree.current();
        let out = shrink(&mut tree, 1000, |&n| tried(n == start));
        assert_eq!(out, start);
        let mut tree = int_tree();
        let mut tries = 0;
        let out = shrink(&mut tree, 3, |_| {
            tries += 1;
            Tried::Fails
        });
        assert_eq!(tries, 3, "three tries, then it stops");
        assert!(
            out < start,
            "each try that failed was kept: {out} < {start}"
        );
    }
}
