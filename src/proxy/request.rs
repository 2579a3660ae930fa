//! Request bodies: JSON parsed and validated per operation (spec v1.0.3) into typed requests;
//! any violation is a ValidationException, input over this proxy's limits is
//! UnsupportedOperationException.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::faults::{Planted, ProxyFault};
use super::wire::ProxyError;

/// Largest plaintext or ciphertext accepted (the spec asks for at least 4300 bytes).
pub(super) const MAX_DATA_BYTES: usize = 64 * 1024;
/// Largest AAD accepted (the spec asks for at least 8192 bytes; `bound_aad` allows 65535).
pub(super) const MAX_AAD_BYTES: usize = 65_535;
/// Largest ciphertextMetadata (KMS rejects more).
const MAX_CTM_BYTES: usize = 20;
/// The plaintext limit of the `refuses-4300-byte-plaintext` fault.
const FAULTY_PLAINTEXT_LIMIT: usize = 4096;

/// Which operation a body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    /// GetHealthStatus.
    Health,
    /// GetKeyMetadata.
    Metadata,
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
}

impl Operation {
    /// The requestMetadata members the operation requires (spec v1.0.3).
    fn required_metadata(self) -> &'static [&'static str] {
        match self {
            Operation::Health => &["kmsRequestId", "kmsOperation"],
            Operation::Metadata => &["kmsRequestId", "kmsOperation", "awsPrincipalArn"],
            Operation::Encrypt | Operation::Decrypt => &[
                "kmsRequestId",
                "kmsOperation",
                "awsPrincipalArn",
                "kmsKeyArn",
            ],
        }
    }
}

/// The optional requestMetadata members the spec defines (strings when present).
const OPTIONAL_METADATA: [&str; 4] = [
    "kmsKeyArn",
    "awsSourceVpc",
    "awsSourceVpce",
    "kmsViaService",
];

/// A validated Encrypt request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct EncryptRequest {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The AAD (empty when absent).
    pub aad: Vec<u8>,
    /// Whether a CDIV (SHA_256) is asked for.
    pub cdiv: bool,
}

/// A validated Decrypt request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DecryptRequest {
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The AAD (empty when absent).
    pub aad: Vec<u8>,
    /// The ciphertextMetadata (empty when absent).
    pub ctm: Vec<u8>,
    /// The IV (12 or 16 bytes).
    pub iv: Vec<u8>,
    /// The tag (16 bytes).
    pub tag: Vec<u8>,
}

/// Parses the body as a JSON object and checks its requestMetadata for `operation`.
pub(super) fn parse(body: &[u8], operation: Operation) -> Result<Map<String, Value>, ProxyError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ProxyError::validation(format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ProxyError::validation(
            "The request body must be a JSON object.",
        ));
    };
    let metadata = match object.get("requestMetadata") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ProxyError::validation("requestMetadata must be an object.")),
        None => return Err(ProxyError::validation("requestMetadata is required.")),
    };
    for name in operation.required_metadata() {
        match metadata.get(*name) {
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(ProxyError::validation(format!(
                    "requestMetadata.{name} must be a string."
                )));
            }
            None => {
                return Err(ProxyError::validation(format!(
                    "requestMetadata.{name} is required."
                )));
            }
        }
    }
    for name in OPTIONAL_METADATA {
        if metadata.get(name).is_some_and(|v| !v.is_string()) {
            return Err(ProxyError::validation(format!(
                "requestMetadata.{name} must be a string."
            )));
        }
    }
    Ok(object)
}

/// A string member: None when absent, an error when of another type.
fn string<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ProxyError> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ProxyError::validation(format!("{name} must be a string."))),
    }
}

/// A required string member.
fn required<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, ProxyError> {
    string(object, name)?.ok_or_else(|| ProxyError::validation(format!("{name} is required.")))
}

/// Decodes standard (RFC 4648 §4, padded) base64; the bad-base64 fault is planted here.
fn decode(name: &str, text: &str, planted: &Planted) -> Result<Vec<u8>, ProxyError> {
    STANDARD.decode(text).map_err(|_| {
        let message = format!("{name} is not standard base64.");
        if planted.has(ProxyFault::BadBase64As5xx) {
            ProxyError::internal(message)
        } else {
            ProxyError::validation(message)
        }
    })
}

/// An optional base64 member, empty when absent.
fn optional_bytes(
    object: &Map<String, Value>,
    name: &str,
    planted: &Planted,
) -> Result<Vec<u8>, ProxyError> {
    match string(object, name)? {
        Some(text) => decode(name, text, planted),
        None => Ok(Vec::new()),
    }
}

/// A required base64 member whose decoded length must be one of `lengths`.
fn sized_bytes(
    object: &Map<String, Value>,
    name: &str,
    lengths: &[usize],
    planted: &Planted,
) -> Result<Vec<u8>, ProxyError> {
    let bytes = decode(name, required(object, name)?, planted)?;
    if !lengths.contains(&bytes.len()) {
        let allowed: Vec<String> = lengths.iter().map(usize::to_string).collect();
        return Err(ProxyError::validation(format!(
            "{name} must be {} bytes, not {}.",
            allowed.join(" or "),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// `encryptionAlgorithm` must be `AES_GCM`.
fn check_algorithm(object: &Map<String, Value>) -> Result<(), ProxyError> {
    match required(object, "encryptionAlgorithm")? {
        "AES_GCM" => Ok(()),
        other => Err(ProxyError::validation(format!(
            "encryptionAlgorithm {other:?} is not supported; the only value is AES_GCM."
        ))),
    }
}

/// An AAD within this proxy's limit.
fn aad(object: &Map<String, Value>, planted: &Planted) -> Result<Vec<u8>, ProxyError> {
    let aad = optional_bytes(object, "additionalAuthenticatedData", planted)?;
    if aad.len() > MAX_AAD_BYTES {
        return Err(ProxyError::unsupported(format!(
            "additionalAuthenticatedData is {} bytes; this proxy accepts at most {MAX_AAD_BYTES}.",
            aad.len()
        )));
    }
    Ok(aad)
}

/// Validates a GetHealthStatus body.
pub(super) fn health(body: &[u8]) -> Result<(), ProxyError> {
    parse(body, Operation::Health).map(|_| ())
}

/// Validates a GetKeyMetadata body.
pub(super) fn metadata(body: &[u8]) -> Result<(), ProxyError> {
    parse(body, Operation::Metadata).map(|_| ())
}

/// Validates an Encrypt body.
pub(super) fn encrypt(body: &[u8], planted: &Planted) -> Result<EncryptRequest, ProxyError> {
    let object = parse(body, Operation::Encrypt)?;
    let plaintext = decode("plaintext", required(&object, "plaintext")?, planted)?;
    check_algorithm(&object)?;
    let aad = aad(&object, planted)?;
    let cdiv = match string(&object, "ciphertextDataIntegrityValueAlgorithm")? {
        None => false,
        Some("SHA_256") => true,
        Some(other) => {
            return Err(ProxyError::validation(format!(
                "ciphertextDataIntegrityValueAlgorithm {other:?} is not supported; the only value is SHA_256."
            )));
        }
    };
    if planted.has(ProxyFault::Refuses4300BytePlaintext) && plaintext.len() > FAULTY_PLAINTEXT_LIMIT
    {
        return Err(ProxyError::validation(format!(
            "plaintext must be at most {FAULTY_PLAINTEXT_LIMIT} bytes."
        )));
    }
    if plaintext.len() > MAX_DATA_BYTES {
        return Err(ProxyError::unsupported(format!(
            "plaintext is {} bytes; this proxy accepts at most {MAX_DATA_BYTES}.",
            plaintext.len()
        )));
    }
    Ok(EncryptRequest {
        plaintext,
        aad,
        cdiv,
    })
}

/// Validates a Decrypt body.
pub(super) fn decrypt(body: &[u8], planted: &Planted) -> Result<DecryptRequest, ProxyError> {
    let object = parse(body, Operation::Decrypt)?;
    let ciphertext = decode("ciphertext", required(&object, "ciphertext")?, planted)?;
    check_algorithm(&object)?;
    let aad = aad(&object, planted)?;
    let ctm = optional_bytes(&object, "ciphertextMetadata", planted)?;
    if ctm.len() > MAX_CTM_BYTES {
        return Err(ProxyError::validation(format!(
            "ciphertextMetadata is {} bytes; at most {MAX_CTM_BYTES} are allowed.",
            ctm.len()
        )));
    }
    let iv = sized_bytes(&object, "initializationVector", &[12, 16], planted)?;
    let tag = sized_bytes(&object, "authenticationTag", &[16], planted)?;
    if ciphertext.len() > MAX_DATA_BYTES {
        return Err(ProxyError::unsupported(format!(
            "ciphertext is {} bytes; this proxy accepts at most {MAX_DATA_BYTES}.",
            ciphertext.len()
        )));
    }
    Ok(DecryptRequest {
        ciphertext,
        aad,
        ctm,
        iv,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Value {
        json!({
            "kmsRequestId": "r", "kmsOperation": "Encrypt",
            "awsPrincipalArn": "arn:aws:iam::111122223333:user/x",
            "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"
        })
    }

    fn enc(extra: Value) -> Value {
        let mut body = json!({
            "requestMetadata": meta(), "plaintext": "AAEC", "encryptionAlgorithm": "AES_GCM"
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    }

    fn dec(extra: Value) -> Value {
        let mut body = json!({
            "requestMetadata": meta(), "ciphertext": "AAEC", "encryptionAlgorithm": "AES_GCM",
            "initializationVector": STANDARD.encode([0u8; 12]),
            "authenticationTag": STANDARD.encode([0u8; 16])
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    }

    fn name(r: Result<impl std::fmt::Debug, ProxyError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.name,
        }
    }

    fn e(body: &Value) -> &'static str {
        name(encrypt(body.to_string().as_bytes(), &Planted::default()))
    }

    fn d(body: &Value) -> &'static str {
        name(decrypt(body.to_string().as_bytes(), &Planted::default()))
    }

    #[test]
    fn health_needs_request_id_and_operation_and_nothing_more() {
        let ok =
            json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}});
        assert_eq!(name(health(ok.to_string().as_bytes())), "ok");
        for bad in [
            json!({}),
            json!({"requestMetadata": {}}),
            json!({"requestMetadata": {"kmsRequestId": "r"}}),
            json!({"requestMetadata": {"kmsRequestId": 1, "kmsOperation": "x"}}),
            json!({"requestMetadata": "r"}),
            json!([]),
        ] {
            assert_eq!(
                name(health(bad.to_string().as_bytes())),
                "ValidationException",
                "{bad}"
            );
        }
        assert_eq!(name(health(b"{not json")), "ValidationException");
        assert_eq!(name(health(b"")), "ValidationException");
    }

    #[test]
    fn metadata_does_not_need_the_key_arn_but_accepts_it_and_unknown_members() {
        let without = json!({"requestMetadata": {
            "kmsRequestId": "r", "kmsOperation": "CreateKey", "awsPrincipalArn": "p"}});
        assert_eq!(name(metadata(without.to_string().as_bytes())), "ok");
        let with = json!({"requestMetadata": {
            "kmsRequestId": "r", "kmsOperation": "DescribeKey", "awsPrincipalArn": "p",
            "kmsKeyArn": "k", "kmsViaService": "ebs", "futureMember": {"x": 1}}, "extra": 1});
        assert_eq!(name(metadata(with.to_string().as_bytes())), "ok");
        let no_principal =
            json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "CreateKey"}});
        assert_eq!(
            name(metadata(no_principal.to_string().as_bytes())),
            "ValidationException"
        );
        let bad_vpc = json!({"requestMetadata": {
            "kmsRequestId": "r", "kmsOperation": "CreateKey", "awsPrincipalArn": "p",
            "awsSourceVpc": 7}});
        assert_eq!(
            name(metadata(bad_vpc.to_string().as_bytes())),
            "ValidationException"
        );
    }

    #[test]
    fn encrypt_accepts_good_input_and_unknown_operations_and_members() {
        assert_eq!(e(&enc(json!({}))), "ok");
        let mut m = meta();
        m["kmsOperation"] = json!("SomethingNew");
        m["sourceIdentity"] = json!("x");
        assert_eq!(
            e(&enc(json!({"requestMetadata": m, "newTopLevel": [1]}))),
            "ok"
        );
        let big = enc(json!({
            "plaintext": STANDARD.encode(vec![0u8; 4300]),
            "additionalAuthenticatedData": STANDARD.encode(vec![0u8; 8192]),
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256"
        }));
        let parsed = encrypt(big.to_string().as_bytes(), &Planted::default()).unwrap();
        assert_eq!(parsed.plaintext.len(), 4300);
        assert_eq!(parsed.aad.len(), 8192);
        assert!(parsed.cdiv);
    }

    #[test]
    fn encrypt_refuses_each_kind_of_bad_input_with_validation_exception() {
        let v = "ValidationException";
        for (member, value) in [
            ("plaintext", json!(null)),
            ("plaintext", json!(5)),
            ("plaintext", json!("AA-_")),
            ("plaintext", json!("AAE")),
            ("plaintext", json!("AAF=")),
            ("plaintext", json!("AA EC")),
            ("plaintext", json!("!!!!")),
            ("encryptionAlgorithm", json!(null)),
            ("encryptionAlgorithm", json!("AES_CBC")),
            ("encryptionAlgorithm", json!("aes_gcm")),
            ("additionalAuthenticatedData", json!(["AAEC"])),
            ("additionalAuthenticatedData", json!("A")),
            ("ciphertextDataIntegrityValueAlgorithm", json!("SHA_512")),
            ("ciphertextDataIntegrityValueAlgorithm", json!(256)),
            ("requestMetadata", json!(null)),
        ] {
            assert_eq!(e(&enc(json!({ member: value }))), v, "{member}={value}");
        }
        for member in [
            "kmsRequestId",
            "kmsOperation",
            "awsPrincipalArn",
            "kmsKeyArn",
        ] {
            let mut m = meta();
            m.as_object_mut().unwrap().remove(member);
            assert_eq!(e(&enc(json!({ "requestMetadata": m }))), v, "{member}");
            let mut m = meta();
            m[member] = json!(true);
            assert_eq!(e(&enc(json!({ "requestMetadata": m }))), v, "{member}");
        }
    }

    #[test]
    fn over_the_limits_is_unsupported_operation() {
        let big = enc(json!({"plaintext": STANDARD.encode(vec![0u8; MAX_DATA_BYTES + 1])}));
        assert_eq!(e(&big), "UnsupportedOperationException");
        let aad = enc(json!({
            "additionalAuthenticatedData": STANDARD.encode(vec![0u8; MAX_AAD_BYTES + 1])}));
        assert_eq!(e(&aad), "UnsupportedOperationException");
        let ct = dec(json!({"ciphertext": STANDARD.encode(vec![0u8; MAX_DATA_BYTES + 1])}));
        assert_eq!(d(&ct), "UnsupportedOperationException");
    }

    #[test]
    fn decrypt_checks_iv_tag_and_metadata_sizes() {
        assert_eq!(d(&dec(json!({}))), "ok");
        let iv16 = dec(json!({"initializationVector": STANDARD.encode([0u8; 16])}));
        assert_eq!(d(&iv16), "ok");
        let ctm20 = dec(json!({"ciphertextMetadata": STANDARD.encode([1u8; 20])}));
        assert_eq!(d(&ctm20), "ok");
        let v = "ValidationException";
        for (member, value) in [
            ("initializationVector", json!(STANDARD.encode([0u8; 8]))),
            ("initializationVector", json!(STANDARD.encode([0u8; 13]))),
            ("initializationVector", json!(null)),
            ("authenticationTag", json!(STANDARD.encode([0u8; 12]))),
            ("authenticationTag", json!(null)),
            ("ciphertextMetadata", json!(STANDARD.encode([1u8; 21]))),
            ("ciphertextMetadata", json!(3)),
            ("ciphertext", json!(null)),
            ("ciphertext", json!("AA_C")),
            ("encryptionAlgorithm", json!("RSAES_OAEP_SHA_256")),
        ] {
            assert_eq!(d(&dec(json!({ member: value }))), v, "{member}={value}");
        }
    }

    #[test]
    fn the_validation_faults_change_the_answer_at_their_point() {
        let base64 = Planted::new(&[ProxyFault::BadBase64As5xx]);
        let body = enc(json!({"plaintext": "AA-_"})).to_string();
        assert_eq!(name(encrypt(body.as_bytes(), &base64)), "InternalException");
        let limit = Planted::new(&[ProxyFault::Refuses4300BytePlaintext]);
        let body = enc(json!({"plaintext": STANDARD.encode(vec![0u8; 4300])})).to_string();
        assert_eq!(
            name(encrypt(body.as_bytes(), &limit)),
            "ValidationException"
        );
        let body = enc(json!({"plaintext": STANDARD.encode(vec![0u8; 4096])})).to_string();
        assert_eq!(name(encrypt(body.as_bytes(), &limit)), "ok");
    }
}
