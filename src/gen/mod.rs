//! Generators: proptest strategies for valid values, rule-breaking values, requests and
//! request sequences. Generation never sends anything.

pub mod backends;
pub mod conditional;
pub mod invalid;
pub mod minimize;
pub mod paging;
pub mod protocol;
pub(crate) mod replay;
pub mod sequences;
pub mod values;
pub mod workloads;

use std::sync::Arc;

use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::Expectation;
use crate::model::Fixtures;

/// In a step's JSON body, a string `"$store:N"` stands for the ID of the Nth store the sequence
/// created (an ID no endpoint issued when there is no such store).
pub const STORE_REF: &str = "$store:";

/// In a step's JSON body, a string `"$name:REST"` stands for the run's name prefix + REST.
pub const NAME_REF: &str = "$name:";

/// In a step's JSON body, the string `"$marker"` stands for the NextMarker of the latest
/// response that carried one.
pub const MARKER_REF: &str = "$marker";

/// One step of a generated sequence. Steps are data: a failing sequence is saved as JSON and
/// replayed as it is, whatever the strategies become.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Send a JSON request.
    Call {
        /// Operation name.
        operation: String,
        /// Request body, with `$store:N` and `$name:` references.
        body: Value,
        /// What should come back, when the step was built to break a rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<Expectation>,
    },
    /// Send a body no SDK would send (malformed JSON, wrong types).
    Raw {
        /// Operation name.
        operation: String,
        /// The raw body text.
        body: String,
        /// What should come back.
        expect: Expectation,
        /// Protocol headers sent otherwise than awsJson1_1 asks (absent: as it asks).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wire: Option<crate::history::Wire>,
    },
    /// Poll DescribeCustomKeyStores until store N is neither CONNECTING nor DISCONNECTING.
    Settle {
        /// Which created store.
        store: usize,
    },
    /// List stores page by page with this Limit (None: no Limit), following NextMarker until it
    /// is absent (at most 1100 pages); every page is an exchange of this step.
    Paginate {
        /// The Limit of every page.
        limit: Option<u32>,
    },
    /// Send these steps at the same time.
    Concurrent {
        /// The steps, each a Call.
        steps: Vec<Step>,
    },
}

impl Step {
    /// The step with the body of every Call (also inside a Concurrent group) replaced by
    /// `f(operation, body)`; other steps unchanged.
    pub fn map_call_bodies(&self, f: &impl Fn(&str, &Value) -> Value) -> Step {
        match self {
            Step::Call {
                operation,
                body,
                expect,
            } => Step::Call {
                operation: operation.clone(),
                body: f(operation, body),
                expect: expect.clone(),
            },
            Step::Concurrent { steps } => Step::Concurrent {
                steps: steps.iter().map(|s| s.map_call_bodies(f)).collect(),
            },
            other => other.clone(),
        }
    }
}

/// What a workload may draw on: the backends and the limits of the endpoint under test.
#[derive(Debug, Clone)]
pub struct GenContext {
    /// The backends the endpoint has (valid creates use them).
    pub fixtures: Arc<Fixtures>,
    /// The endpoint's store quota, as far as this run may use it.
    pub quota: usize,
    /// Whether CreateKey may be generated (keys cannot be removed at once, so only against
    /// emulators).
    pub allow_create_key: bool,
    /// Length of the run's name prefix, which `$name:` adds to every valid name.
    pub name_prefix_len: usize,
}

/// The kinds of generated input; each check draws its cases from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Request sequences over the state machine (proptest-state-machine).
    Sequences,
    /// Single requests that break exactly one named rule (after a valid set-up).
    Invalid,
    /// Stores listed with every kind of paging, valid and invalid markers and limits.
    Paging,
    /// Describe by ID, by name, by both, by unknown ones.
    Exclusion,
    /// Requests sent at the same time.
    Concurrency,
}

/// The strategy of one kind of case: every generated `Vec<Step>` is a self-contained case for
/// an endpoint that holds none of our stores at its start, within `ctx.quota` stores.
///
/// Panics if `ctx.name_prefix_len` leaves no room for a valid store name.
pub fn workload(kind: Workload, ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    values::name_rest_bounds(ctx.name_prefix_len);
    match kind {
        Workload::Sequences => sequences::strategy(ctx),
        Workload::Invalid => invalid::strategy(ctx),
        Workload::Paging => paging::strategy(ctx),
        Workload::Exclusion => workloads::exclusion(ctx),
        Workload::Concurrency => workloads::concurrency(ctx),
    }
}

/// One strategy per rule a workload can break, so that a run can exercise each rule at least
/// once (empty for workloads that break no single rule).
pub fn sweep(kind: Workload, ctx: &GenContext) -> Vec<BoxedStrategy<Vec<Step>>> {
    values::name_rest_bounds(ctx.name_prefix_len);
    match kind {
        Workload::Invalid => invalid::sweep(ctx),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    #[test]
    fn every_workload_generates_200_cases_that_round_trip_as_json() {
        let ctx = GenContext {
            fixtures: Fixtures::builtin().into(),
            quota: 10,
            allow_create_key: true,
            name_prefix_len: 18,
        };
        for kind in [
            Workload::Sequences,
            Workload::Invalid,
            Workload::Paging,
            Workload::Exclusion,
            Workload::Concurrency,
        ] {
            let s = workload(kind, &ctx);
            let mut runner = TestRunner::deterministic();
            for _ in 0..200 {
                let case = s.new_tree(&mut runner).unwrap().current();
                let text = serde_json::to_string(&case).unwrap();
                let back: Vec<Step> = serde_json::from_str(&text).unwrap();
                assert_eq!(back, case, "{kind:?}");
            }
        }
    }

    #[test]
    fn workloads_generate_with_empty_fixtures_and_a_small_quota() {
        for (fixtures, quota) in [
            (Fixtures::default(), 10),
            (Fixtures::builtin(), 1),
            (Fixtures::builtin(), 0),
        ] {
            let ctx = GenContext {
                fixtures: fixtures.into(),
                quota,
                allow_create_key: false,
                name_prefix_len: 0,
            };
            for kind in [
                Workload::Sequences,
                Workload::Invalid,
                Workload::Paging,
                Workload::Exclusion,
                Workload::Concurrency,
            ] {
                let s = workload(kind, &ctx);
                let mut runner = TestRunner::deterministic();
                for _ in 0..30 {
                    s.new_tree(&mut runner).unwrap().current();
                }
            }
        }
    }
}
