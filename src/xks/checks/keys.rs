//! `xks-key-usage`: keys that may only encrypt, only decrypt, neither, or are disabled refuse
//! the rest with the documented errors. Only usages and status are judged here: the rest of a
//! metadata answer (keySpec) is `xks-metadata`'s, the rest of an Encrypt answer
//! `xks-round-trip`'s.

use serde_json::Value;

use super::probe::Probe;
use super::requests::{self, Sealed};
use super::{Ctx, Outcome, single};
use crate::oracle::Severity;

/// None when at least one special key was given; else what to give.
pub fn needs(ctx: &Ctx) -> Option<String> {
    let k = &ctx.keys;
    (k.encrypt_only.is_none()
        && k.decrypt_only.is_none()
        && k.no_usage.is_none()
        && k.disabled.is_none())
    .then(|| {
        "give --key-id-encrypt-only, --key-id-decrypt-only, --key-id-no-usage or --key-id-disabled"
            .into()
    })
}

/// GetKeyMetadata of `key`: a 200 with a JSON object is all this check needs of it.
fn metadata(p: &mut Probe, key: &str, case: &str) -> Option<Value> {
    let request = p.request("GetKeyMetadata", Some(key), &requests::metadata());
    p.expect_200(
        "GetKeyMetadata",
        "keys/usage",
        case,
        format!("GetKeyMetadata of {key}"),
        request,
    )
}

fn listed(answer: &Value) -> Vec<String> {
    answer["keyUsage"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Holds a special key's metadata to its usages (`allowed` listed, `forbidden` not) and its
/// status; `what` names the kind of key (`encrypt-only`).
fn judge_usage(
    p: &mut Probe,
    answer: &Value,
    what: &str,
    allowed: &[&str],
    forbidden: &[&str],
    status: &str,
) {
    let at = Some(p.exchanges.len() - 1);
    let usage = listed(answer);
    for u in allowed {
        if !usage.iter().any(|x| x == u) {
            p.find(
                "GetKeyMetadata",
                "keys/usage",
                format!("expected keyUsage of a {what} key with {u}, got it without"),
                format!("the {what} key's keyUsage is {usage:?}, lacking {u}"),
                at,
            );
        }
    }
    for u in forbidden {
        if usage.iter().any(|x| x == u) {
            p.find(
                "GetKeyMetadata",
                "keys/usage",
                format!("expected keyUsage of a {what} key without {u}, got it"),
                format!("the {what} key's keyUsage is {usage:?}, listing {u}"),
                at,
            );
        }
    }
    if answer["keyStatus"] != status {
        let rule = if status == "DISABLED" {
            "keys/disabled"
        } else {
            "keys/usage"
        };
        let got = answer["keyStatus"].as_str().unwrap_or("not a string");
        p.find(
            "GetKeyMetadata",
            rule,
            format!("expected keyStatus {status} for a {what} key, got {got}"),
            format!(
                "the {what} key's keyStatus is {}, expected {status}",
                answer["keyStatus"]
            ),
            at,
        );
    }
}

/// Encrypt with `key` that must be refused with InvalidKeyUsageException (`rule`).
fn encrypt_refused(p: &mut Probe, key: &str, what: &str, aad: Option<&[u8]>, cdiv: bool) {
    let plaintext = b"ckscheck key usage".to_vec();
    let request = p.request(
        "Encrypt",
        Some(key),
        &requests::encrypt(&plaintext, aad, cdiv),
    );
    let shape = match (aad.is_some(), cdiv) {
        (true, true) => "with AAD and a CDIV",
        (false, true) => "with a CDIV, without AAD",
        (true, false) => "with AAD",
        (false, false) => "without AAD",
    };
    p.expect_error(
        "Encrypt",
        "keys/usage",
        &format!("{what} key, Encrypt {shape}"),
        format!("Encrypt {shape} with {what} key {key}"),
        request,
        "InvalidKeyUsageException",
    );
}

/// Decrypt with a key that may not decrypt (no ciphertext of its own to give): refused with
/// InvalidKeyUsageException. InvalidCiphertextException (the proxy authenticated the made-up
/// ciphertext before looking at usage) is unsettled: the spec gives no precedence.
fn decrypt_refused(p: &mut Probe, key: &str, what: &str) {
    let sealed = Sealed {
        ciphertext: b"ckscheck key usage".to_vec(),
        iv: vec![0; 12],
        tag: vec![0; 16],
        ctm: None,
        cdiv: None,
    };
    let request = p.request("Decrypt", Some(key), &sealed.decrypt(None));
    let text = format!("Decrypt with {what} key {key}");
    let i = p.send("Decrypt", text.clone(), request);
    let ciphertext_first = p.exchanges[i]
        .reply
        .as_ref()
        .is_ok_and(|r| r.status == 400 && r.error_name() == Some("InvalidCiphertextException"));
    if ciphertext_first {
        p.verdict.find(
            Severity::Unsettled,
            "Decrypt",
            "keys/usage",
            format!("{what} key, Decrypt: expected 400 InvalidKeyUsageException, got 400 InvalidCiphertextException"),
            format!("{text}: expected 400 InvalidKeyUsageException, got 400 InvalidCiphertextException (unsettled: the made-up ciphertext was judged before the usage; the spec gives no precedence)"),
            Some(i),
        );
        return;
    }
    p.judge_error(
        i,
        "keys/usage",
        &format!("{what} key, Decrypt"),
        &text,
        &["InvalidKeyUsageException"],
    );
}

/// Encrypt with a CDIV on an encrypt-only key: AWS's test client expects 400
/// InvalidKeyUsageException (a CDIV promises a decrypt that the key may not do); the spec is
/// silent, so a 200 is a SHOULD finding (rule `keys/cdiv-needs-decrypt`, inferred).
fn cdiv_on_encrypt_only(p: &mut Probe, key: &str, aad: Option<&[u8]>) {
    let plaintext = b"ckscheck key usage".to_vec();
    let request = p.request(
        "Encrypt",
        Some(key),
        &requests::encrypt(&plaintext, aad, true),
    );
    let shape = if aad.is_some() {
        "with AAD and a CDIV"
    } else {
        "with a CDIV, without AAD"
    };
    let text = format!("Encrypt {shape} with encrypt-only key {key}");
    let i = p.send("Encrypt", text.clone(), request);
    let status = p.exchanges[i].reply.as_ref().map(|r| r.status).ok();
    if status == Some(200) {
        p.find(
            "Encrypt",
            "keys/cdiv-needs-decrypt",
            format!("encrypt-only key, Encrypt {shape}: expected 400 InvalidKeyUsageException, got 200"),
            format!("{text}: expected 400 InvalidKeyUsageException as AWS's test client does (the CDIV promises a decrypt the key may not do), got 200"),
            Some(i),
        );
        return;
    }
    p.judge_error(
        i,
        "keys/usage",
        &format!("encrypt-only key, Encrypt {shape}"),
        &text,
        &["InvalidKeyUsageException"],
    );
}

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    let keys = ctx.keys.clone();
    single(ctx, "the special keys", |p| {
        let plaintext = b"ckscheck key usage".to_vec();
        let aad: &[u8] = b"project=nile,department=marketing";
        if let Some(key) = &keys.encrypt_only {
            if let Some(answer) = metadata(p, key, "encrypt-only key") {
                judge_usage(
                    p,
                    &answer,
                    "encrypt-only",
                    &["ENCRYPT"],
                    &["DECRYPT"],
                    "ENABLED",
                );
            }
            let request = p.request(
                "Encrypt",
                Some(key),
                &requests::encrypt(&plaintext, None, false),
            );
            let sealed = p
                .expect_200(
                    "Encrypt",
                    "keys/usage",
                    "encrypt-only key",
                    format!("Encrypt with encrypt-only key {key}"),
                    request,
                )
                .and_then(|a| Sealed::from_answer(&a));
            if let Some(sealed) = sealed {
                let request = p.request("Decrypt", Some(key), &sealed.decrypt(None));
                p.expect_error(
                    "Decrypt",
                    "keys/usage",
                    "encrypt-only key",
                    format!("Decrypt with encrypt-only key {key}"),
                    request,
                    "InvalidKeyUsageException",
                );
            }
            cdiv_on_encrypt_only(p, key, Some(aad));
            cdiv_on_encrypt_only(p, key, None);
        }
        if let Some(key) = &keys.decrypt_only {
            if let Some(answer) = metadata(p, key, "decrypt-only key") {
                judge_usage(
                    p,
                    &answer,
                    "decrypt-only",
                    &["DECRYPT"],
                    &["ENCRYPT"],
                    "ENABLED",
                );
            }
            encrypt_refused(p, key, "decrypt-only", None, false);
            encrypt_refused(p, key, "decrypt-only", Some(aad), true);
        }
        if let Some(key) = &keys.no_usage {
            if let Some(answer) = metadata(p, key, "no-usage key") {
                judge_usage(
                    p,
                    &answer,
                    "no-usage",
                    &[],
                    &["ENCRYPT", "DECRYPT"],
                    "ENABLED",
                );
            }
            encrypt_refused(p, key, "no-usage", Some(aad), false);
            encrypt_refused(p, key, "no-usage", None, true);
            decrypt_refused(p, key, "no-usage");
        }
        if let Some(key) = &keys.disabled {
            if let Some(answer) = metadata(p, key, "disabled key") {
                judge_usage(p, &answer, "disabled", &[], &[], "DISABLED");
            }
            let request = p.request(
                "Encrypt",
                Some(key),
                &requests::encrypt(&plaintext, None, false),
            );
            p.expect_error(
                "Encrypt",
                "keys/disabled",
                "",
                format!("Encrypt with disabled key {key}"),
                request,
                "InvalidStateException",
            );
            let sealed = Sealed {
                ciphertext: plaintext.clone(),
                iv: vec![0; 12],
                tag: vec![0; 16],
                ctm: None,
                cdiv: None,
            };
            let request = p.request("Decrypt", Some(key), &sealed.decrypt(None));
            p.expect_error(
                "Decrypt",
                "keys/disabled",
                "",
                format!("Decrypt with disabled key {key}"),
                request,
                "InvalidStateException",
            );
        }
    })
}
