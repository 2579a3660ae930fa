//! `xks-key-usage`: keys that may only encrypt, only decrypt, or are disabled refuse the rest
//! with the documented errors.

use super::metadata::judge_values;
use super::probe::Probe;
use super::requests::{self, Sealed};
use super::{Ctx, Outcome, single};

/// None when at least one special key was given; else what to give.
pub fn needs(ctx: &Ctx) -> Option<String> {
    let k = &ctx.keys;
    (k.encrypt_only.is_none() && k.decrypt_only.is_none() && k.disabled.is_none())
        .then(|| "give --key-id-encrypt-only, --key-id-decrypt-only or --key-id-disabled".into())
}

fn metadata(p: &mut Probe, key: &str, case: &str) -> Option<serde_json::Value> {
    let request = p.request("GetKeyMetadata", Some(key), &requests::metadata());
    p.expect_ok(
        "GetKeyMetadata",
        "metadata/values",
        case,
        format!("GetKeyMetadata of {key}"),
        request,
        "GetKeyMetadataResponse",
    )
}

fn lists(answer: &serde_json::Value, usage: &str) -> bool {
    answer["keyUsage"]
        .as_array()
        .is_some_and(|a| a.iter().any(|u| u == usage))
}

/// Holds a one-usage key's metadata: it lists `allowed`, is ENABLED, and does not list
/// `forbidden`.
fn one_usage(p: &mut Probe, key: &str, allowed: &str, forbidden: &str) {
    let what = allowed.to_lowercase();
    let Some(answer) = metadata(p, key, &format!("{what}-only key")) else {
        return;
    };
    judge_values(p, &answer, &[allowed], "ENABLED");
    if lists(&answer, forbidden) {
        let at = Some(p.exchanges.len() - 1);
        p.find(
            "GetKeyMetadata",
            "keys/usage",
            format!("expected keyUsage of a {what}-only key without {forbidden}, got it"),
            format!("{what}-only key {key} lists {forbidden}"),
            at,
        );
    }
}

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    let keys = ctx.keys.clone();
    single(ctx, "the special keys", |p| {
        let plaintext = b"ckscheck key usage".to_vec();
        if let Some(key) = &keys.encrypt_only {
            one_usage(p, key, "ENCRYPT", "DECRYPT");
            let request = p.request(
                "Encrypt",
                Some(key),
                &requests::encrypt(&plaintext, None, false),
            );
            let sealed = p
                .expect_ok(
                    "Encrypt",
                    "keys/usage",
                    "encrypt-only key",
                    format!("Encrypt with encrypt-only key {key}"),
                    request,
                    "EncryptResponse",
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
        }
        if let Some(key) = &keys.decrypt_only {
            one_usage(p, key, "DECRYPT", "ENCRYPT");
            let request = p.request(
                "Encrypt",
                Some(key),
                &requests::encrypt(&plaintext, None, false),
            );
            p.expect_error(
                "Encrypt",
                "keys/usage",
                "decrypt-only key",
                format!("Encrypt with decrypt-only key {key}"),
                request,
                "InvalidKeyUsageException",
            );
        }
        if let Some(key) = &keys.disabled {
            if let Some(answer) = metadata(p, key, "disabled key") {
                judge_values(p, &answer, &[], "DISABLED");
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
