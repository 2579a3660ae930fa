//! Before the trials: one request per custom key store operation, to find the operations the
//! endpoint does not implement. Each becomes one deviation (`OPERATION/not-implemented`) with
//! that request as its reproducer; the findings it causes are folded under it and the scenarios
//! that need it are not played.

use std::collections::BTreeMap;

use super::Suite;
use crate::deviation::{Unimplemented, not_implemented_id};
use crate::generate::{NAME_REF, Step};
use crate::history::{History, Role};
use crate::oracle::implemented::{explicitly_not_implemented, not_implemented_answer, probe_body};

/// The operations probed (CreateKey is never probed: an endpoint that ignores its
/// CustomKeyStoreId would create a key).
pub const PROBED: [&str; 6] = [
    "DescribeCustomKeyStores",
    "CreateCustomKeyStore",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];

impl Suite {
    /// Sends one harmless request per operation in [`PROBED`] and returns those answered as not
    /// implemented. Anything the probe's Create may have made on a lenient endpoint is journaled
    /// and removed. An unreachable target finds nothing here (the trials report it).
    pub fn probe_unimplemented(&self) -> BTreeMap<String, Unimplemented> {
        let Ok(target) = self.target_of(&self.target, &self.regions.home.region) else {
            return BTreeMap::new();
        };
        let steps = probe_steps();
        let tag = ("probe", Role::Probe, &self.regions.home);
        let history = self
            .runtime
            .block_on(self.case(&target, steps.clone(), tag));
        if let Some(emulator) = target.emulator {
            self.runtime.block_on(emulator.stop());
        }
        self.unimplemented_in(&steps, &history)
    }

    /// The operations the probe's `history` (of `steps`) shows as not implemented.
    pub(super) fn unimplemented_in(
        &self,
        steps: &[Step],
        history: &History,
    ) -> BTreeMap<String, Unimplemented> {
        let last = |step: usize| {
            history
                .exchanges
                .iter()
                .enumerate()
                .rev()
                .find(|(_, e)| e.step == step as u32)
        };
        // A bare error page counts only when even the listing, which every implementation
        // answers with a 200, got one: an endpoint that answers its errors as HTML pages but
        // lists stores implements the operations (its error pages are another deviation).
        let listing_unimplemented = steps.iter().position(|s| {
            matches!(s, Step::Call { operation, .. } if operation == "DescribeCustomKeyStores")
        })
        .and_then(last)
        .is_some_and(|(_, e)| not_implemented_answer(e).is_some());
        let mut out = BTreeMap::new();
        for (step, call) in steps.iter().enumerate() {
            let Step::Call { operation, .. } = call else {
                continue;
            };
            let Some((i, answer)) = last(step)
                .filter(|(_, e)| listing_unimplemented || explicitly_not_implemented(e))
                .and_then(|(i, e)| not_implemented_answer(e).map(|a| (i, a)))
            else {
                continue;
            };
            let exchange = history.exchanges[i].clone();
            let id = not_implemented_id(operation, &answer);
            let summary = format!(
                "{operation} [not-implemented]: answered {answer} to a request any implementation \
                 of it answers with its own result or error"
            );
            let single = History {
                exchanges: vec![exchange],
            };
            let mut detail = self.failure(Some(id), summary, &steps[step..=step], single, 0, 1);
            detail.cases_needed = 0;
            out.insert(operation.clone(), Unimplemented { answer, detail });
        }
        out
    }
}

/// One harmless request per operation in [`PROBED`].
pub(super) fn probe_steps() -> Vec<Step> {
    let name = format!("{NAME_REF}probe");
    PROBED
        .iter()
        .filter_map(|op| {
            let body = probe_body(op, &name)?;
            Some(Step::Call {
                operation: op.to_string(),
                body,
                expect: None,
            })
        })
        .collect()
}
