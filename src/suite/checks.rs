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
}

/// Every check, in report order.
pub fn checks() -> Vec<Check> {
    vec![Check {
        name: "agreement",
        family: Family::States,
        explain: oracle::agreement::EXPLAIN,
        workloads: &[Workload::Sequences],
        oracle: oracle::agreement::agreement,
    }]
}
