//! Low-level hooks for the emulator's planted faults (`crate::emulator::faults`).
//!
//! Each hook breaks an invariant the model otherwise keeps (unique names, the quota, the
//! connection state machine). Nothing in the model calls them; a clean emulator never does.

use super::Model;
use super::store::ConnectionState;

impl Model {
    /// Renames store `id` to `name` without the uniqueness check; false if there is no such store.
    pub(crate) fn hook_rename(&mut self, id: &str, name: &str) -> bool {
        match self.stores.values_mut().find(|s| s.id == id) {
            Some(store) => {
                store.name = name.to_string();
                true
            }
            None => false,
        }
    }

    /// Puts store `id` in `state` with `error_code` at once, dropping any transition under way;
    /// false if there is no such store.
    pub(crate) fn hook_set_state(
        &mut self,
        id: &str,
        state: ConnectionState,
        error_code: Option<String>,
    ) -> bool {
        match self.stores.values_mut().find(|s| s.id == id) {
            Some(store) => {
                store.state = state;
                store.error_code = error_code;
                store.pending = None;
                true
            }
            None => false,
        }
    }

    /// Replaces the store quota and returns the old one.
    pub(crate) fn hook_set_quota(&mut self, quota: usize) -> usize {
        std::mem::replace(&mut self.config.quota, quota)
    }
}
