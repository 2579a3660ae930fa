//! `xks-health`: GetHealthStatus answers with every member and valid values.

use serde_json::{Value, json};

use super::probe::Probe;
use super::{Ctx, Outcome, requests, single};

/// The kmsOperation values KMS sends to GetHealthStatus.
const HEALTH_CALLERS: [&str; 4] = [
    "KmsHealthCheck",
    "CreateCustomKeyStore",
    "ConnectCustomKeyStore",
    "UpdateCustomKeyStore",
];

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    single(ctx, "GetHealthStatus as KMS sends it", |p| {
        for op in HEALTH_CALLERS {
            let request = p.request("GetHealthStatus", None, &requests::health(op));
            let what = format!("GetHealthStatus, kmsOperation {op}");
            if let Some(body) = p.expect_ok(
                "GetHealthStatus",
                "health/members",
                &format!("kmsOperation {op}"),
                &what,
                request,
                "GetHealthStatusResponse",
            ) {
                judge_fleet(p, &body);
            }
        }
        for (case, what, body) in [
            (
                "an empty body",
                "GetHealthStatus with an empty body {}",
                json!({}),
            ),
            (
                "empty requestMetadata",
                "GetHealthStatus with empty requestMetadata",
                json!({"requestMetadata": {}}),
            ),
        ] {
            let request = p.request("GetHealthStatus", None, &body);
            p.expect_error(
                "GetHealthStatus",
                "health/empty-metadata",
                case,
                what,
                request,
                "ValidationException",
            );
        }
    })
}

/// Fleet entries need unique IDs; a fleet that is all UNAVAILABLE keeps KMS from connecting.
fn judge_fleet(p: &mut Probe, body: &Value) {
    let at = Some(p.exchanges.len() - 1);
    let fleet = body["ekmFleetDetails"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ids: Vec<&str> = fleet.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        p.find(
            "GetHealthStatus",
            "health/members",
            "expected unique ekmFleetDetails ids, got one twice",
            "two ekmFleetDetails entries share an id",
            at,
        );
    }
    if !fleet.is_empty() && fleet.iter().all(|e| e["healthStatus"] == "UNAVAILABLE") {
        p.find(
            "GetHealthStatus",
            "health/members",
            "expected an available fleet entry, got every one UNAVAILABLE",
            "every ekmFleetDetails entry is UNAVAILABLE: KMS would fail the connect with XKS_PROXY_NOT_REACHABLE",
            at,
        );
    }
}
