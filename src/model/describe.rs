//! DescribeCustomKeyStores: lookup by ID or name, and paging with Limit and Marker.

use serde_json::{Value, json};

use super::{KmsError, Model, err, not_found};

const MARKER_PREFIX: &str = "ckscheck-marker-v1:";

/// The marker that resumes a listing at the store with creation sequence `seq`.
fn marker_for(seq: u64) -> String {
    format!("{MARKER_PREFIX}{seq:016x}")
}

/// The sequence number a marker we issued resumes at.
fn resume_at(marker: &str) -> Result<u64, KmsError> {
    marker
        .strip_prefix(MARKER_PREFIX)
        .filter(|hex| hex.len() == 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            err(
                "InvalidMarkerException",
                "The marker is not one that DescribeCustomKeyStores issued.",
            )
        })
}

impl Model {
    pub(super) fn describe(&self, input: &Value) -> Result<Value, KmsError> {
        let by_id = input.get("CustomKeyStoreId").and_then(Value::as_str);
        let by_name = input.get("CustomKeyStoreName").and_then(Value::as_str);
        let start = match input.get("Marker").and_then(Value::as_str) {
            Some(m) => resume_at(m)?,
            None => 0,
        };
        let matching: Vec<(u64, Value)> = self
            .stores
            .iter()
            .filter(|(_, s)| by_id.is_none_or(|id| s.id == id))
            .filter(|(_, s)| by_name.is_none_or(|n| s.name == n))
            .map(|(seq, s)| (*seq, s.entry()))
            .collect();
        if matching.is_empty() {
            if let Some(id) = by_id {
                return Err(not_found(id));
            }
            if let Some(name) = by_name {
                return Err(err(
                    "CustomKeyStoreNotFoundException",
                    format!("No custom key store named {name} exists in this account and Region."),
                ));
            }
        }
        let limit = input
            .get("Limit")
            .and_then(Value::as_u64)
            .map_or(self.config.default_page_size, |l| l as usize);
        let mut rest = matching.into_iter().filter(|(seq, _)| *seq >= start);
        let page: Vec<Value> = rest.by_ref().take(limit).map(|(_, e)| e).collect();
        Ok(match rest.next() {
            Some((next, _)) => json!({
                "CustomKeyStores": page,
                "NextMarker": marker_for(next),
                "Truncated": true,
            }),
            None => json!({ "CustomKeyStores": page, "Truncated": false }),
        })
    }
}
