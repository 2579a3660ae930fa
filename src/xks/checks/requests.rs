//! Request bodies as KMS sends them, and the parts of an Encrypt answer.

use serde_json::{Map, Value, json};

use super::shape::{decode, encode};

/// The principal KMS names in requestMetadata (any caller ARN will do).
pub const PRINCIPAL: &str = "arn:aws:iam::111122223333:user/ckscheck";

/// A fresh `kmsRequestId`.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// GetHealthStatus as KMS sends it for `kms_operation` (e.g. `KmsHealthCheck`).
pub fn health(kms_operation: &str) -> Value {
    json!({"requestMetadata": {"kmsRequestId": request_id(), "kmsOperation": kms_operation}})
}

/// GetKeyMetadata in the v1.0.3 shape (no kmsKeyArn).
pub fn metadata() -> Value {
    json!({"requestMetadata": {
        "kmsRequestId": request_id(), "kmsOperation": "CreateKey", "awsPrincipalArn": PRINCIPAL,
    }})
}

/// GetKeyMetadata in the shape before v1.0.3 (with kmsKeyArn and kmsViaService).
pub fn metadata_old() -> Value {
    json!({"requestMetadata": {
        "kmsRequestId": request_id(), "kmsOperation": "DescribeKey", "awsPrincipalArn": PRINCIPAL,
        "kmsKeyArn": key_arn(), "kmsViaService": "ebs",
    }})
}

fn key_arn() -> String {
    format!("arn:aws:kms:us-east-1:111122223333:key/{}", request_id())
}

fn crypto_metadata(kms_operation: &str) -> Value {
    json!({
        "kmsRequestId": request_id(), "kmsOperation": kms_operation,
        "awsPrincipalArn": PRINCIPAL, "kmsKeyArn": key_arn(),
    })
}

/// Encrypt of `plaintext` with optional AAD, asking for the integrity value when `cdiv`.
pub fn encrypt(plaintext: &[u8], aad: Option<&[u8]>, cdiv: bool) -> Value {
    let mut body = Map::new();
    body.insert("requestMetadata".into(), crypto_metadata("Encrypt"));
    body.insert("plaintext".into(), json!(encode(plaintext)));
    body.insert("encryptionAlgorithm".into(), json!("AES_GCM"));
    if let Some(aad) = aad {
        body.insert("additionalAuthenticatedData".into(), json!(encode(aad)));
    }
    if cdiv {
        body.insert(
            "ciphertextDataIntegrityValueAlgorithm".into(),
            json!("SHA_256"),
        );
    }
    Value::Object(body)
}

/// What Encrypt returned, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext.
    pub ciphertext: Vec<u8>,
    /// Initialization vector.
    pub iv: Vec<u8>,
    /// Authentication tag.
    pub tag: Vec<u8>,
    /// ciphertextMetadata, when returned.
    pub ctm: Option<Vec<u8>>,
    /// ciphertextDataIntegrityValue, when returned.
    pub cdiv: Option<Vec<u8>>,
}

impl Sealed {
    /// The decoded parts of an Encrypt answer; None when a required one is missing or bad.
    pub fn from_answer(body: &Value) -> Option<Sealed> {
        let get = |m: &str| body.get(m).and_then(Value::as_str).and_then(decode);
        Some(Sealed {
            ciphertext: get("ciphertext")?,
            iv: get("initializationVector")?,
            tag: get("authenticationTag")?,
            ctm: get("ciphertextMetadata"),
            cdiv: get("ciphertextDataIntegrityValue"),
        })
    }

    /// Decrypt of these parts with optional AAD.
    pub fn decrypt(&self, aad: Option<&[u8]>) -> Value {
        let mut body = Map::new();
        body.insert("requestMetadata".into(), crypto_metadata("Decrypt"));
        body.insert("ciphertext".into(), json!(encode(&self.ciphertext)));
        if let Some(ctm) = &self.ctm {
            body.insert("ciphertextMetadata".into(), json!(encode(ctm)));
        }
        body.insert("encryptionAlgorithm".into(), json!("AES_GCM"));
        if let Some(aad) = aad {
            body.insert("additionalAuthenticatedData".into(), json!(encode(aad)));
        }
        body.insert("initializationVector".into(), json!(encode(&self.iv)));
        body.insert("authenticationTag".into(), json!(encode(&self.tag)));
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;
    use crate::xks::checks::shape::problems;

    #[test]
    fn the_bodies_conform_to_the_spec_request_shapes() {
        let spec = Spec::xks();
        assert!(problems(spec, "GetHealthStatusRequest", &health("KmsHealthCheck")).is_empty());
        assert!(problems(spec, "GetKeyMetadataRequest", &metadata()).is_empty());
        assert!(metadata()["requestMetadata"].get("kmsKeyArn").is_none());
        assert!(problems(spec, "EncryptRequest", &encrypt(b"x", Some(b""), true)).is_empty());
        let sealed = Sealed {
            ciphertext: vec![1],
            iv: vec![0; 12],
            tag: vec![0; 16],
            ctm: Some(vec![7]),
            cdiv: None,
        };
        let d = sealed.decrypt(None);
        assert!(problems(spec, "DecryptRequest", &d).is_empty());
        assert_eq!(d["ciphertextMetadata"], "Bw==");
        let missing = json!({"requestMetadata": {"kmsRequestId": "1", "kmsOperation": "Encrypt"}});
        assert!(!problems(spec, "EncryptRequest", &missing).is_empty());
    }
}
