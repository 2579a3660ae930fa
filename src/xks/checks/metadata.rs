//! `xks-metadata`: GetKeyMetadata answers with exact values, in both request shapes.

use serde_json::Value;

use super::probe::Probe;
use super::{Ctx, Outcome, requests, single};

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    let key = ctx.keys.main.clone();
    single(ctx, &format!("GetKeyMetadata of {key}"), |p| {
        let shapes = [
            (
                "v1.0.3 requestMetadata (no kmsKeyArn)",
                requests::metadata(),
            ),
            (
                "requestMetadata before v1.0.3 (kmsKeyArn, kmsViaService)",
                requests::metadata_old(),
            ),
        ];
        for (shape, body) in shapes {
            let request = p.request("GetKeyMetadata", Some(&key), &body);
            let what = format!("GetKeyMetadata of {key}, {shape}");
            if let Some(answer) = p.expect_ok(
                "GetKeyMetadata",
                "metadata/request-shapes",
                shape,
                &what,
                request,
                "GetKeyMetadataResponse",
            ) {
                judge_values(p, &answer, &["ENCRYPT", "DECRYPT"], "ENABLED");
            }
        }
        let unknown = format!("ckscheck-no-such-key-{}", &requests::request_id()[..8]);
        let request = p.request("GetKeyMetadata", Some(&unknown), &requests::metadata());
        p.expect_error(
            "GetKeyMetadata",
            "errors/unknown-key",
            "",
            format!("GetKeyMetadata of an unknown key {unknown}"),
            request,
            "KeyNotFoundException",
        );
        // AWS's test client also sends Encrypt to an unknown key; Decrypt likewise.
        let encrypt = requests::encrypt(b"ckscheck unknown key", None, false);
        let decrypt = requests::Sealed {
            ciphertext: b"ckscheck unknown key".to_vec(),
            iv: vec![0; 12],
            tag: vec![0; 16],
            ctm: None,
            cdiv: None,
        }
        .decrypt(None);
        for (op, body) in [("Encrypt", encrypt), ("Decrypt", decrypt)] {
            let request = p.request(op, Some(&unknown), &body);
            p.expect_error(
                op,
                "errors/unknown-key",
                "",
                format!("{op} with an unknown key {unknown}"),
                request,
                "KeyNotFoundException",
            );
        }
    })
}

/// Holds a metadata answer to the values a key KMS can use must have.
pub fn judge_values(p: &mut Probe, answer: &Value, usages: &[&str], status: &str) {
    let at = Some(p.exchanges.len() - 1);
    if answer["keySpec"] != "AES_256" {
        p.find(
            "GetKeyMetadata",
            "metadata/values",
            format!("keySpec expected AES_256, got {}", word(&answer["keySpec"])),
            format!("keySpec is {}, expected \"AES_256\"", answer["keySpec"]),
            at,
        );
    }
    let listed: Vec<&str> = answer["keyUsage"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&&str> = usages.iter().filter(|u| !listed.contains(u)).collect();
    if !missing.is_empty() {
        p.find(
            "GetKeyMetadata",
            "metadata/values",
            format!(
                "keyUsage expected to list {}, got it without {}",
                usages.join(" and "),
                missing
                    .iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            format!("keyUsage is {listed:?}, lacking {missing:?}"),
            at,
        );
    }
    if answer["keyStatus"] != status {
        p.find(
            "GetKeyMetadata",
            "metadata/values",
            format!(
                "keyStatus expected {status}, got {}",
                word(&answer["keyStatus"])
            ),
            format!("keyStatus is {}, expected {status:?}", answer["keyStatus"]),
            at,
        );
    }
}

/// An enum value for a kind: the string itself, else its JSON type (`missing` when absent).
fn word(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 40 => s.clone(),
        Value::String(s) => super::shape::cut(s),
        Value::Null => "missing".into(),
        other => super::shape::type_word(other).into(),
    }
}
