//! `xks-validation` (property over the spec): a request that breaks one rule of its input shape
//! is refused with 400 ValidationException; what the spec leaves open is accepted.

use proptest::sample::select;
use serde_json::{Value, json};

use super::property::property;
use super::requests::{self, Sealed};
use super::{Ctx, Outcome};
use crate::spec::{ShapeType, Spec};

/// One rule broken (or one liberty taken) in an otherwise valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// A required member left out.
    Missing(Vec<String>),
    /// A member of the wrong JSON type.
    WrongType(Vec<String>, Value),
    /// A base64 member in the URL-safe alphabet.
    UrlSafeBase64(Vec<String>),
    /// A base64 member that is not base64.
    JunkBase64(Vec<String>),
    /// An enum member with a value outside its enum.
    UnknownEnumValue(Vec<String>),
    /// The body is not JSON.
    MalformedJson(&'static str),
    /// An unknown kmsOperation value (must be accepted).
    UnknownKmsOperation,
    /// An extra member the spec does not name (must be accepted).
    ExtraMember(Vec<String>),
}

impl Mutation {
    /// The mutation in a few words, for finding kinds: `requestMetadata.kmsKeyArn missing`,
    /// `plaintext as number`, `truncated JSON`, ...
    pub fn label(&self) -> String {
        match self {
            Mutation::Missing(path) => format!("{} missing", path.join(".")),
            Mutation::WrongType(path, value) => {
                format!("{} as {}", path.join("."), super::shape::type_word(value))
            }
            Mutation::UrlSafeBase64(path) => format!("{} in URL-safe base64", path.join(".")),
            Mutation::JunkBase64(path) => format!("{} not base64", path.join(".")),
            Mutation::UnknownEnumValue(path) => format!("{} outside the enum", path.join(".")),
            Mutation::MalformedJson(kind) => format!("malformed JSON ({kind})"),
            Mutation::UnknownKmsOperation => "an unknown kmsOperation".to_string(),
            Mutation::ExtraMember(path) => format!("an extra member {}", path.join(".")),
        }
    }

    /// Whether a conforming proxy accepts the request.
    pub fn accepted(&self) -> bool {
        matches!(
            self,
            Mutation::UnknownKmsOperation | Mutation::ExtraMember(_)
        )
    }
}

/// Every mutation of `shape`'s members (and those of its structures), in spec order.
pub fn mutations(spec: &Spec, shape: &str) -> Vec<Mutation> {
    let mut out = Vec::new();
    walk(spec, shape, &mut Vec::new(), &mut out);
    for kind in ["truncated", "trailing garbage", "not JSON at all"] {
        out.push(Mutation::MalformedJson(kind));
    }
    out.push(Mutation::UnknownKmsOperation);
    out.push(Mutation::ExtraMember(vec!["ckscheckExtraMember".into()]));
    out.push(Mutation::ExtraMember(vec![
        "requestMetadata".into(),
        "ckscheckExtraMember".into(),
    ]));
    out
}

fn walk(spec: &Spec, shape: &str, path: &mut Vec<String>, out: &mut Vec<Mutation>) {
    for (name, member) in &spec.shape(shape).members {
        path.push(name.clone());
        let target = spec.shape(&member.shape);
        if member.required {
            out.push(Mutation::Missing(path.clone()));
        }
        match target.kind {
            ShapeType::Structure => {
                out.push(Mutation::WrongType(path.clone(), json!("ckscheck")));
                walk(spec, &member.shape, path, out);
            }
            ShapeType::String => {
                // Members KMS always sends get judged; optional ones only when present.
                if member.required || target.encoding.is_some() {
                    out.push(Mutation::WrongType(path.clone(), json!(7)));
                    out.push(Mutation::WrongType(path.clone(), json!(["ckscheck"])));
                }
                if target.encoding.is_some() {
                    out.push(Mutation::UrlSafeBase64(path.clone()));
                    out.push(Mutation::JunkBase64(path.clone()));
                }
                if target.enum_values.is_some() && !target.open {
                    out.push(Mutation::UnknownEnumValue(path.clone()));
                }
            }
            _ => {}
        }
        path.pop();
    }
}

fn slot<'v>(body: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let (last, parents) = path.split_last()?;
    let mut at = body;
    for p in parents {
        at = at.get_mut(p)?;
    }
    at.get_mut(last)
}

/// The body `mutation` makes of `body`; None when the body lacks the member it changes.
pub fn apply(body: &Value, mutation: &Mutation) -> Option<Vec<u8>> {
    let mut b = body.clone();
    match mutation {
        Mutation::Missing(path) => {
            let (last, parents) = path.split_last()?;
            let parent = if parents.is_empty() {
                &mut b
            } else {
                slot(&mut b, parents)?
            };
            parent.as_object_mut()?.remove(last)?;
        }
        Mutation::WrongType(path, value) => *slot(&mut b, path)? = value.clone(),
        Mutation::UrlSafeBase64(path) => {
            let v = slot(&mut b, path)?;
            let text = v.as_str()?.to_string();
            let mut safe = text.replace('+', "-").replace('/', "_");
            if safe == text {
                safe.replace_range(0..1, "-");
            }
            *v = json!(safe);
        }
        Mutation::JunkBase64(path) => *slot(&mut b, path)? = json!("*not base64*"),
        Mutation::UnknownEnumValue(path) => {
            let v = slot(&mut b, path)?;
            *v = json!(format!("{}_CKSCHECK", v.as_str()?.to_lowercase()));
        }
        Mutation::MalformedJson(kind) => {
            let text = b.to_string();
            return Some(match *kind {
                "truncated" => text.as_bytes()[..text.len() / 2].to_vec(),
                "trailing garbage" => format!("{text}}}garbage").into_bytes(),
                _ => b"requestMetadata=ckscheck".to_vec(),
            });
        }
        Mutation::UnknownKmsOperation => {
            *slot(&mut b, &["requestMetadata".into(), "kmsOperation".into()])? =
                json!("CkscheckFutureOperation");
        }
        Mutation::ExtraMember(path) => {
            let (last, parents) = path.split_last()?;
            let parent = if parents.is_empty() {
                &mut b
            } else {
                slot(&mut b, parents)?
            };
            parent
                .as_object_mut()?
                .insert(last.clone(), json!("ckscheck"));
        }
    }
    Some(b.to_string().into_bytes())
}

/// A plaintext whose standard base64 has `+` and `/`, so its URL-safe form differs.
const PLAINTEXT: [u8; 9] = [0xfb, 0xff, 0xbf, b'c', b'k', b's', b'c', b'h', b'k'];

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    let key = ctx.keys.main.clone();
    let aad = b"ckscheck-aad".to_vec();
    // A valid Decrypt needs a ciphertext: one Encrypt before the cases.
    let sealed = {
        let body = requests::encrypt(&PLAINTEXT, Some(&aad), false);
        let request = ctx.client.request("Encrypt", Some(&key), &body);
        let reply = ctx.block_on(ctx.send(&request));
        reply.ok().and_then(|r| Sealed::from_answer(&r.body))
    };
    let spec = ctx.spec;
    let mut candidates: Vec<(&'static str, Mutation)> = Vec::new();
    for (op, shape) in [
        ("GetKeyMetadata", "GetKeyMetadataRequest"),
        ("Encrypt", "EncryptRequest"),
        ("Decrypt", "DecryptRequest"),
    ] {
        candidates.extend(mutations(spec, shape).into_iter().map(|m| (op, m)));
    }
    property(
        ctx,
        "xks-validation",
        select(candidates),
        |p, (op, mutation)| {
            let base = match *op {
                "GetKeyMetadata" => requests::metadata(),
                "Encrypt" => requests::encrypt(&PLAINTEXT, Some(&aad), true),
                _ => match &sealed {
                    Some(s) => s.decrypt(Some(&aad)),
                    None => {
                        p.find(
                            "Encrypt",
                            "crypto/round-trip",
                            "expected 200, got a failed Encrypt before the cases",
                            "Encrypt failed: no ciphertext to build Decrypt requests from",
                            None,
                        );
                        return;
                    }
                },
            };
            let Some(body) = apply(&base, mutation) else {
                return;
            };
            let mut request = p.request(op, Some(&key), &Value::Null);
            request.body = body;
            let what = format!("{op} with {mutation:?}");
            let case = mutation.label();
            if mutation.accepted() {
                // Accepted is this check's subject; the answer's values are other checks'.
                p.expect_200(op, "validation/open", &case, what, request);
            } else {
                p.expect_error(
                    op,
                    "validation/input",
                    &case,
                    what,
                    request,
                    "ValidationException",
                );
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_come_from_the_spec_and_cover_each_kind() {
        let m = mutations(Spec::xks(), "DecryptRequest");
        let path = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(m.contains(&Mutation::Missing(path(&["requestMetadata", "kmsKeyArn"]))));
        assert!(m.contains(&Mutation::Missing(path(&["authenticationTag"]))));
        assert!(
            !m.contains(&Mutation::Missing(path(&["ciphertextMetadata"]))),
            "optional"
        );
        assert!(m.contains(&Mutation::UrlSafeBase64(path(&["initializationVector"]))));
        assert!(m.contains(&Mutation::UnknownEnumValue(path(&["encryptionAlgorithm"]))));
        assert!(!m.iter().any(|x| matches!(x, Mutation::UnknownEnumValue(p) if p.last().unwrap() == "kmsOperation")), "open enum");
        let meta = mutations(Spec::xks(), "GetKeyMetadataRequest");
        assert!(
            !meta.contains(&Mutation::Missing(path(&["requestMetadata", "kmsKeyArn"]))),
            "v1.0.3"
        );
    }

    #[test]
    fn applying_a_mutation_changes_exactly_that_member() {
        let body = requests::encrypt(&PLAINTEXT, None, false);
        let path = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let out: Value = serde_json::from_slice(
            &apply(&body, &Mutation::UrlSafeBase64(path(&["plaintext"]))).unwrap(),
        )
        .unwrap();
        assert_eq!(out["plaintext"], "-_-_Y2tzY2hr");
        assert_eq!(body["plaintext"], "+/+/Y2tzY2hr");
        let out: Value = serde_json::from_slice(
            &apply(
                &body,
                &Mutation::Missing(path(&["requestMetadata", "awsPrincipalArn"])),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(out["requestMetadata"].get("awsPrincipalArn").is_none());
        assert_eq!(out["plaintext"], body["plaintext"]);
        assert!(
            apply(
                &body,
                &Mutation::JunkBase64(path(&["additionalAuthenticatedData"]))
            )
            .is_none(),
            "absent member"
        );
        let text = apply(&body, &Mutation::MalformedJson("truncated")).unwrap();
        assert!(serde_json::from_slice::<Value>(&text).is_err());
    }
}
