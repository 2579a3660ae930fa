//! A bounded soak of the embedded emulator: 64 concurrent SigV4-signed clients each send 50
//! random valid custom key store requests (after 10 of warm-up), then the final state is held
//! to the model's invariants. The planted-fault soaks prove the two checks can fail.
//! The large run with memory bounds is `cargo bench --bench soak`.

#[path = "common/soak.rs"]
#[allow(dead_code)]
mod soak;

use ckscheck::emulator::Fault;
use soak::{SoakConfig, run};

/// A correct emulator under 64 clients: no 5xx, no answer KMS would not give, and every
/// invariant holds during the soak and at the end. Catches a regression that breaks a rule of
/// the model or breaks it under concurrency (tried: Create without the backup-lineage rule is
/// reported as two stores on lineage alpha), a panic that drops a connection, and one that
/// makes a valid request fail. It also proves the soak was not vacuous: stores
/// were created, connected, renamed and deleted, and names did collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_leave_every_invariant_intact() {
    let report = run(&SoakConfig::default()).await.expect("the soak runs");
    println!(
        "soak: {} requests, {:.0} req/s, p50 {:?}, p99 {:?}\n{}",
        report.soak.requests,
        report.soak.rate(),
        report.soak.p50,
        report.soak.p99,
        report.summary()
    );
    assert!(report.clean(), "{}", report.summary());
    assert_eq!(report.soak.requests, 64 * 50);
    for answer in [
        "200 CreateCustomKeyStore",
        "200 ConnectCustomKeyStore",
        "200 DisconnectCustomKeyStore",
        "200 UpdateCustomKeyStore",
        "200 DeleteCustomKeyStore",
        "200 DescribeCustomKeyStores",
        "CustomKeyStoreNameInUseException",
        "CustomKeyStoreInvalidStateException",
    ] {
        assert!(
            report.count(answer) > 0,
            "no {answer}: {}",
            report.summary()
        );
    }
}

/// With `--fault duplicate-names` (Create never refuses a taken name) the final check must
/// find two stores sharing a name. Catches an invariant check that stopped comparing names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariant_check_catches_duplicate_names() {
    let config = SoakConfig {
        clients: 16,
        soak_per_client: 40,
        names: 4,
        faults: vec![Fault::DuplicateNames],
        ..SoakConfig::default()
    };
    let report = run(&config).await.expect("the soak runs");
    assert_eq!(report.request_failures, 0, "{}", report.summary());
    assert!(
        report.violations.iter().any(|v| v.starts_with("name ")),
        "duplicate names went unnoticed: {}",
        report.summary()
    );
}

/// With `--fault client-errors-as-500` (every 400 answered with 500) the soak must fail its
/// no-5xx check. Catches a judge that lets a 5xx pass as a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_no_5xx_check_catches_client_errors_as_500() {
    let config = SoakConfig {
        clients: 16,
        soak_per_client: 20,
        faults: vec![Fault::ClientErrorsAs500],
        ..SoakConfig::default()
    };
    let report = run(&config).await.expect("the soak runs");
    assert!(report.request_failures > 0, "{}", report.summary());
    assert!(
        report.failures.iter().any(|f| f.contains("HTTP 500")),
        "{}",
        report.summary()
    );
}

/// With `--fault quota-off-by-one` (one store more than the quota) the final check must find
/// the count over the quota. Catches an invariant check that stopped counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariant_check_catches_a_store_over_the_quota() {
    let config = SoakConfig {
        clients: 16,
        soak_per_client: 40,
        names: 40,
        faults: vec![Fault::QuotaOffByOne],
        ..SoakConfig::default()
    };
    let report = run(&config).await.expect("the soak runs");
    assert_eq!(report.request_failures, 0, "{}", report.summary());
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("over the quota")),
        "a store over the quota went unnoticed: {}",
        report.summary()
    );
}
