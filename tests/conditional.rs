//! The conditional rules of the conditions table on the wire: every generated case (a Create
//! missing a member its type or connectivity requires, or carrying one it forbids; an Update
//! of an existing store doing the same) is answered by the embedded emulator with HTTP 400
//! ValidationException over real HTTP, and the `type-required-not-enforced` fault accepts the
//! Create cases missing a type-required member.

#[allow(dead_code)] // the shared helpers this file does not use
mod common;

use std::time::Duration;

use ckscheck::emulator::{Fault, RunningEmulator};
use ckscheck::generate::conditional::{Target, case, targets};
use ckscheck::generate::{GenContext, NAME_REF, STORE_REF, Step};
use ckscheck::model::conditions::When;
use ckscheck::model::{Fixtures, ModelConfig};
use ckscheck::runner::{KmsClient, Reply};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(5);
const PREFIX: &str = "ckscheck-cond-";

/// Connections settle at once.
async fn emulator(faults: &[Fault]) -> (RunningEmulator, KmsClient) {
    let model = ModelConfig {
        connect_delay_ms: 0,
        ..ModelConfig::default()
    };
    common::embedded(faults, model).await
}

/// The body with `$name:` and `$store:0` references resolved.
fn resolve(v: &Value, store: Option<&str>) -> Value {
    match v {
        Value::String(s) if s.starts_with(NAME_REF) => {
            json!(format!("{PREFIX}{}", &s[NAME_REF.len()..]))
        }
        Value::String(s) if s.starts_with(STORE_REF) => {
            json!(store.unwrap_or("cks-00000000000000000"))
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), resolve(v, store)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn call(client: &KmsClient, op: &str, body: &Value) -> Reply {
    timeout(STEP, client.call(op, body))
        .await
        .expect("answers in time")
        .expect("answers")
}

/// Plays one drawn case of the target; returns the answer to its last request. Every store
/// the case created (the set-up, or a Create wrongly accepted) is deleted afterwards.
async fn play(client: &KmsClient, t: Target, runner: &mut TestRunner) -> Reply {
    let ctx = GenContext {
        fixtures: Fixtures::builtin().into(),
        quota: 10,
        allow_create_key: false,
        name_prefix_len: PREFIX.len(),
    };
    let steps = case(&ctx, t).new_tree(runner).unwrap().current();
    let mut created = Vec::new();
    let mut last = None;
    for step in &steps {
        let Step::Call {
            operation, body, ..
        } = step
        else {
            panic!("{step:?}")
        };
        let reply = call(
            client,
            operation,
            &resolve(body, created.first().map(String::as_str)),
        )
        .await;
        if let Some(id) = reply.body["CustomKeyStoreId"].as_str() {
            created.push(id.to_string());
        }
        last = Some(reply);
    }
    let last = last.expect("a case has a request");
    for id in created {
        let gone = call(
            client,
            "DeleteCustomKeyStore",
            &json!({ "CustomKeyStoreId": id }),
        )
        .await;
        assert_eq!(gone.status, 200, "{}", gone.text);
    }
    last
}

/// Catches: an emulator (or model) that accepts a member its type or connectivity forbids,
/// or a request missing one it requires, for any row of the conditions table, or that answers
/// it with another error or status than HTTP 400 ValidationException.
#[tokio::test]
async fn every_conditional_case_is_refused_with_validation_exception() {
    let (running, client) = emulator(&[]).await;
    let mut runner = TestRunner::deterministic();
    let all = targets();
    assert!(all.len() >= 30, "{}", all.len());
    for t in all {
        let reply = play(&client, t, &mut runner).await;
        assert_eq!(
            (reply.status, reply.error_name().as_deref()),
            (400, Some("ValidationException")),
            "{} {}: {}",
            t.condition.operation,
            t.rule(),
            reply.text
        );
    }
    timeout(STEP, running.stop()).await.expect("stops in time");
}

/// Catches: a `type-required-not-enforced` fault that does not plant its bug (the Create
/// cases missing a type-required member are still refused), or that plants more (a Create
/// carrying a forbidden member accepted).
#[tokio::test]
async fn the_type_required_fault_accepts_creates_missing_a_type_required_member() {
    let (running, client) = emulator(&[Fault::TypeRequiredNotEnforced]).await;
    let mut runner = TestRunner::deterministic();
    let type_rows = targets().into_iter().filter(|t| {
        t.condition.operation == "CreateCustomKeyStore"
            && matches!(t.condition.when, When::RequestType(_))
    });
    let mut accepted = 0;
    for t in type_rows {
        let reply = play(&client, t, &mut runner).await;
        if t.requires {
            assert_eq!(reply.status, 200, "{}: {}", t.rule(), reply.text);
            accepted += 1;
        } else {
            assert_eq!(reply.status, 400, "{}: {}", t.rule(), reply.text);
        }
    }
    assert!(accepted >= 7, "{accepted}");
    timeout(STEP, running.stop()).await.expect("stops in time");
}
