//! The checks: each a workload judged by one oracle, run as one libtest trial.

use crate::generate::Workload;
use crate::oracle::{self, Family, OracleFn};

/// A named check: cases drawn from its workloads, judged by its oracle.
pub struct Check {
    /// Trial name.
    pub name: &'static str,
    /// Parity matrix column.
    pub family: Family,
    /// One line: what the check enforces.
    pub explain: &'static str,
    /// Where its cases come from (one is drawn per case).
    pub workloads: &'static [Workload],
    /// How a case is judged.
    pub oracle: OracleFn,
    /// Whether it first runs one case per rule its workloads can break
    /// ([`crate::generate::sweep`]), so that every rule is exercised in every run.
    pub sweep: bool,
}

/// Every check, in report order.
pub fn checks() -> Vec<Check> {
    use Workload::{Concurrency, Exclusion, Invalid, Paging, Sequences};
    use oracle::{
        agreement, concurrency, errors, exclusion, fields, pagination, states, validation,
    };
    vec![
        Check {
            name: "validation",
            family: Family::Validation,
            explain: validation::EXPLAIN_VALIDATION,
            workloads: &[Invalid],
            oracle: validation::validation,
            sweep: true,
        },
        Check {
            name: "errors",
            family: Family::Errors,
            explain: errors::EXPLAIN_ERRORS,
            workloads: &[Invalid, Sequences],
            oracle: errors::errors,
            sweep: false,
        },
        Check {
            name: "states",
            family: Family::States,
            explain: states::EXPLAIN_STATES,
            workloads: &[Sequences],
            oracle: states::states,
            sweep: false,
        },
        Check {
            name: "agreement",
            family: Family::States,
            explain: agreement::EXPLAIN_AGREEMENT,
            workloads: &[Sequences],
            oracle: agreement::agreement,
            sweep: false,
        },
        Check {
            name: "pagination",
            family: Family::Pagination,
            explain: pagination::EXPLAIN_PAGINATION,
            workloads: &[Paging],
            oracle: pagination::pagination,
            sweep: false,
        },
        Check {
            name: "exclusion",
            family: Family::Exclusion,
            explain: exclusion::EXPLAIN_EXCLUSION,
            workloads: &[Exclusion],
            oracle: exclusion::exclusion,
            sweep: false,
        },
        Check {
            name: "fields",
            family: Family::FieldPresence,
            explain: fields::EXPLAIN_FIELDS,
            workloads: &[Sequences, Paging],
            oracle: fields::fields,
            sweep: false,
        },
        Check {
            name: "concurrency",
            family: Family::Concurrency,
            explain: concurrency::EXPLAIN_CONCURRENCY,
            workloads: &[Concurrency],
            oracle: concurrency::concurrency,
            sweep: false,
        },
    ]
}
