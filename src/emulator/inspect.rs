//! Read-only views of a running emulator's state, for tests and benches that check the model's
//! invariants against what the emulator answers on the wire.

use std::time::SystemTime;

use super::RunningEmulator;
use crate::model::Store;

impl RunningEmulator {
    /// A snapshot of the configured (default) region's stores in listing order, as a request
    /// arriving now would see them: transitions due by now are complete, nothing else changes.
    pub fn stores(&self) -> Vec<Store> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut regions = self
            .app
            .regions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match regions.model(None) {
            Ok(model) => model.stores(now),
            // The configured region's model is made at start: there is always one.
            Err(_) => Vec::new(),
        }
    }

    /// The store quota of the configured region's model.
    pub fn quota(&self) -> usize {
        self.app.config.model.quota
    }
}
