//! `xks-latency` (p50/p99 per operation against KMS's 250 ms budget) and `xks-concurrency`
//! (parallel bursts that must all succeed and round-trip).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;

use super::probe::{Exchange, Probe, reply_kind};
use super::requests::{self, Sealed};
use super::round_trip::bytes;
use super::{Counterexample, Ctx, Outcome, percentile};
use crate::xks::client::RawRequest;

use crate::xks::KMS_BUDGET as BUDGET;

/// Sequential calls per operation for the latency percentiles.
const SAMPLES: usize = 100;

/// Parallel calls per burst, and bursts.
const BURST: usize = 32;
const BURSTS: usize = 2;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the latency check.
pub fn latency(ctx: &Ctx) -> Outcome {
    let key = ctx.keys.main.clone();
    let mut p = Probe::new(ctx);
    let plaintext = bytes(4096, ctx.seed);
    let sealed = {
        let body = requests::encrypt(&plaintext, None, false);
        let request = p.request("Encrypt", Some(&key), &body);
        p.expect_200(
            "Encrypt",
            "latency/p99",
            "",
            "Encrypt of 4096 bytes",
            request,
        )
        .and_then(|a| Sealed::from_answer(&a))
    };
    let mut metrics = BTreeMap::new();
    let ops: [(&str, Option<&str>, serde_json::Value); 4] = [
        ("GetHealthStatus", None, requests::health("KmsHealthCheck")),
        ("GetKeyMetadata", Some(&key), requests::metadata()),
        (
            "Encrypt",
            Some(&key),
            requests::encrypt(&plaintext, None, false),
        ),
        (
            "Decrypt",
            Some(&key),
            sealed.map(|s| s.decrypt(None)).unwrap_or_default(),
        ),
    ];
    for (op, key, body) in ops {
        if body.is_null() {
            continue;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        let mut over = 0;
        for _ in 0..SAMPLES {
            let request = ctx.client.request(op, key, &body);
            let reply = ctx.block_on(ctx.send(&request));
            p.verdict.judged(op);
            match reply {
                Ok(r) if r.status == 200 => {
                    over += usize::from(r.latency > BUDGET);
                    times.push(r.latency);
                }
                reply => {
                    let kind = format!("expected 200 while measuring, got {}", reply_kind(&reply));
                    p.exchanges.push(Exchange {
                        operation: op.into(),
                        what: format!("{op} for the latency sample"),
                        request,
                        reply,
                    });
                    let at = Some(p.exchanges.len() - 1);
                    let got = p.exchanges[p.exchanges.len() - 1].outcome();
                    p.find(
                        op,
                        "latency/p99",
                        kind,
                        format!("{op} failed while measuring latency: {got}"),
                        at,
                    );
                    break;
                }
            }
            // Two calls over budget already put the p99 of 100 over it: stop waiting.
            if over >= 2 {
                break;
            }
        }
        times.sort_unstable();
        let (Some(p50), Some(p99)) = (percentile(&times, 50.0), percentile(&times, 99.0)) else {
            continue;
        };
        let n = times.len();
        metrics.insert(format!("{op} p50"), ms(p50));
        metrics.insert(format!("{op} p99"), ms(p99));
        // Every call, for the HTML report's histogram.
        let samples: Vec<String> = times
            .iter()
            .map(|t| format!("{:.3}", t.as_secs_f64() * 1000.0))
            .collect();
        metrics.insert(format!("{op} samples"), samples.join(" "));
        if p99 > BUDGET {
            p.find(
                op,
                "latency/p99",
                "expected p99 within 250 ms, got more",
                format!(
                    "p99 {} over {n} calls (p50 {}) exceeds KMS's 250 ms budget",
                    ms(p99),
                    ms(p50)
                ),
                None,
            );
        }
    }
    let failed = p.failed();
    Outcome {
        cases: 1,
        failure: failed.then(|| Counterexample {
            input: format!(
                "{SAMPLES} sequential calls per operation, Encrypt/Decrypt of 4096 bytes"
            ),
            exchanges: p.exchanges.clone(),
            cases_needed: 1,
        }),
        verdict: p.verdict,
        metrics,
    }
}

/// Runs the concurrency check.
pub fn burst(ctx: &Ctx) -> Outcome {
    let key = ctx.keys.main.clone();
    let mut p = Probe::new(ctx);
    for round in 0..BURSTS {
        let plaintexts: Vec<Vec<u8>> = (0..BURST)
            .map(|i| bytes(1 + (i * 131) % 4300, ctx.seed ^ (round * BURST + i) as u64))
            .collect();
        let encrypts: Vec<RawRequest> = plaintexts
            .iter()
            .map(|pt| {
                ctx.client
                    .request("Encrypt", Some(&key), &requests::encrypt(pt, None, false))
            })
            .collect();
        let replies = ctx.block_on(join_all(encrypts.iter().map(|r| ctx.send(r))));
        let mut decrypts = Vec::new();
        for ((request, reply), pt) in encrypts.into_iter().zip(replies).zip(&plaintexts) {
            p.verdict.judged("Encrypt");
            let sealed = reply
                .as_ref()
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| Sealed::from_answer(&r.body));
            match sealed {
                Some(s) => {
                    if !ctx.fresh_iv(&key, &s.iv) {
                        record(
                            &mut p,
                            "Encrypt",
                            "crypto/iv-unique",
                            Some("expected a fresh IV, got one repeated in a burst"),
                            "an IV repeated within a burst",
                            request,
                            reply,
                        );
                        continue;
                    }
                    decrypts.push((
                        ctx.client.request("Decrypt", Some(&key), &s.decrypt(None)),
                        pt.clone(),
                    ));
                }
                None => record(
                    &mut p,
                    "Encrypt",
                    "concurrency/burst",
                    None,
                    "Encrypt in a burst failed",
                    request,
                    reply,
                ),
            }
        }
        let replies = ctx.block_on(join_all(decrypts.iter().map(|(r, _)| ctx.send(r))));
        for ((request, pt), reply) in decrypts.into_iter().zip(replies) {
            p.verdict.judged("Decrypt");
            let back = reply
                .as_ref()
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| r.body["plaintext"].as_str().and_then(super::shape::decode));
            if back.as_deref() != Some(&pt[..]) {
                record(
                    &mut p,
                    "Decrypt",
                    "concurrency/burst",
                    None,
                    "Decrypt in a burst did not give the plaintext back",
                    request,
                    reply,
                );
            }
        }
    }
    let failed = p.failed();
    Outcome {
        cases: BURSTS as u32,
        failure: failed.then(|| Counterexample {
            input: format!("{BURSTS} bursts of {BURST} parallel Encrypt calls, then their Decrypt calls in parallel"),
            exchanges: p.exchanges.clone(),
            cases_needed: 1,
        }),
        verdict: p.verdict,
        metrics: BTreeMap::new(),
    }
}

/// Keeps a failed exchange (the first three of a burst) with its finding. `kind` (None:
/// `expected 200 and the plaintext back, got ANSWER`) is the finding's kind.
fn record(
    p: &mut Probe,
    op: &str,
    rule: &str,
    kind: Option<&str>,
    what: &str,
    request: RawRequest,
    reply: Result<crate::xks::XksReply, crate::xks::SendError>,
) {
    let kind = kind.map_or_else(
        || {
            let got = reply_kind(&reply);
            if got == "200" {
                "expected the plaintext back, got other bytes".to_string()
            } else {
                format!("expected 200, got {got}")
            }
        },
        str::to_string,
    );
    if p.exchanges.len() >= 3 {
        p.find(op, rule, kind, what, None);
        return;
    }
    p.exchanges.push(Exchange {
        operation: op.into(),
        what: what.into(),
        request,
        reply,
    });
    let at = Some(p.exchanges.len() - 1);
    let got = p.exchanges[p.exchanges.len() - 1].outcome();
    p.find(op, rule, kind, format!("{what}: {got}"), at);
}
