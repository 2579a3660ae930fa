//! End to end over real TLS on loopback, with the real `XksClient`: the clean proxy's answers,
//! and for every planted fault, that its bug is observable (and absent from the clean proxy).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::*;
use crate::xks::client::{RawRequest, SendError, XksClient, XksReply, XksTarget};
use crate::xks::crypto;
use crate::xks::tls::{Identity, Roots};

const HOST: &str = "xks-proxy.ckscheck.test";

async fn start_with(config: ProxyConfig) -> RunningProxy {
    start_on_loopback(config).await.unwrap()
}

async fn proxy(faults: &[ProxyFault]) -> RunningProxy {
    let mut config = ProxyConfig::reference(HOST);
    config.faults = faults.to_vec();
    start_with(config).await
}

fn client_as(p: &RunningProxy, credential: Credential, identity: Option<Identity>) -> XksClient {
    XksClient::new(XksTarget {
        endpoint: p.url(),
        uri_path: DEFAULT_URI_PATH.into(),
        region: DEFAULT_REGION.into(),
        credential,
        roots: Roots::Pem(p.ca_pem.clone()),
        identity,
        resolve: Some(p.addr),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn client(p: &RunningProxy) -> XksClient {
    client_as(p, DEFAULT_CREDENTIAL.clone(), None)
}

fn meta(operation: &str) -> Value {
    json!({
        "kmsRequestId": "2f7d6a3e-0000-4000-8000-000000000001",
        "kmsOperation": operation,
        "awsPrincipalArn": "arn:aws:iam::111122223333:role/ckscheck",
        "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    })
}

fn health_body() -> Value {
    json!({"requestMetadata": {"kmsRequestId": "r-1", "kmsOperation": "KmsHealthCheck"}})
}

/// A GetHealthStatus call, as KMS's health check sends it.
async fn health(c: &XksClient) -> Result<XksReply, SendError> {
    c.call("GetHealthStatus", None, &health_body()).await
}

fn encrypt_body(plaintext: &[u8], aad: &[u8], cdiv: bool) -> Value {
    let mut body = json!({
        "requestMetadata": meta("Encrypt"),
        "plaintext": STANDARD.encode(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    });
    if !aad.is_empty() {
        body["additionalAuthenticatedData"] = json!(STANDARD.encode(aad));
    }
    if cdiv {
        body["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
    }
    body
}

/// The decoded parts of an Encrypt answer.
struct Sealed {
    ciphertext: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    ctm: Vec<u8>,
    cdiv: Option<Vec<u8>>,
}

fn member(reply: &XksReply, name: &str) -> Option<Vec<u8>> {
    reply.body[name]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
}

async fn encrypt(c: &XksClient, key: &str, plaintext: &[u8], aad: &[u8], cdiv: bool) -> Sealed {
    let reply = c
        .call("Encrypt", Some(key), &encrypt_body(plaintext, aad, cdiv))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    Sealed {
        ciphertext: member(&reply, "ciphertext").unwrap(),
        iv: member(&reply, "initializationVector").unwrap(),
        tag: member(&reply, "authenticationTag").unwrap(),
        ctm: member(&reply, "ciphertextMetadata").unwrap_or_default(),
        cdiv: member(&reply, "ciphertextDataIntegrityValue"),
    }
}

fn decrypt_body(s: &Sealed, aad: &[u8]) -> Value {
    let mut body = json!({
        "requestMetadata": meta("Decrypt"),
        "ciphertext": STANDARD.encode(&s.ciphertext),
        "encryptionAlgorithm": "AES_GCM",
        "initializationVector": STANDARD.encode(&s.iv),
        "authenticationTag": STANDARD.encode(&s.tag),
    });
    if !aad.is_empty() {
        body["additionalAuthenticatedData"] = json!(STANDARD.encode(aad));
    }
    if !s.ctm.is_empty() {
        body["ciphertextMetadata"] = json!(STANDARD.encode(&s.ctm));
    }
    body
}

async fn decrypt(c: &XksClient, key: &str, s: &Sealed, aad: &[u8]) -> XksReply {
    c.call("Decrypt", Some(key), &decrypt_body(s, aad))
        .await
        .unwrap()
}

fn flipped(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    if let Some(last) = v.last_mut() {
        *last ^= 0x01;
    }
    v
}

#[test]
fn the_reference_credentials_have_the_formats_kms_accepts() {
    let akid = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    };
    let secret = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    assert!(akid(DEFAULT_ACCESS_KEY_ID) && DEFAULT_ACCESS_KEY_ID.len() == 30);
    assert!(secret(DEFAULT_SECRET_ACCESS_KEY) && DEFAULT_SECRET_ACCESS_KEY.len() == 64);
    assert!(akid(ROTATED_ACCESS_KEY_ID) && ROTATED_ACCESS_KEY_ID.len() == 20);
    assert!(secret(ROTATED_SECRET_ACCESS_KEY) && ROTATED_SECRET_ACCESS_KEY.len() == 43);
    let config = ProxyConfig::reference(HOST);
    assert_eq!(config.prefixes[0].credentials.len(), 2);
    assert_eq!(config.max_skew, Duration::from_secs(300));
    let ids: Vec<&str> = config.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            KEY_MAIN,
            KEY_ENCRYPT_ONLY,
            KEY_DECRYPT_ONLY,
            KEY_NO_USAGE,
            KEY_DISABLED
        ]
    );
}

#[tokio::test]
async fn health_metadata_and_a_large_round_trip_with_aad_and_cdiv_work_over_tls() {
    let p = proxy(&[]).await;
    let c = client(&p);
    assert_eq!(p.url(), format!("https://{HOST}:{}", p.addr.port()));

    let h = health(&c).await.unwrap();
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.content_type.as_deref(), Some("application/json"));
    assert_eq!(h.body["xksProxyFleetSize"], 1);
    for m in ["xksProxyVendor", "xksProxyModel", "ekmVendor"] {
        assert!(h.body[m].as_str().is_some_and(|s| !s.is_empty()), "{m}");
    }
    assert_eq!(h.body["ekmFleetDetails"][0]["healthStatus"], "ACTIVE");
    assert!(h.body["ekmFleetDetails"][0]["id"].is_string());

    let mut metadata_meta = meta("CreateKey");
    metadata_meta.as_object_mut().unwrap().remove("kmsKeyArn");
    let m = c
        .call(
            "GetKeyMetadata",
            Some(KEY_MAIN),
            &json!({ "requestMetadata": metadata_meta }),
        )
        .await
        .unwrap();
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(
        m.body,
        json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"})
    );

    let plaintext: Vec<u8> = (0..4300u32).map(|i| (i % 251) as u8).collect();
    let aad = vec![0xA5; 8192];
    let s = encrypt(&c, KEY_MAIN, &plaintext, &aad, true).await;
    assert_eq!(s.ciphertext.len(), plaintext.len());
    assert_eq!((s.iv.len(), s.tag.len()), (12, 16));
    assert!(!s.ctm.is_empty() && s.ctm.len() <= 20);
    let expected = crypto::cdiv(&aad, &s.ctm, &s.iv, &s.ciphertext, &s.tag);
    assert_eq!(s.cdiv.as_deref(), Some(&expected[..]));
    let d = decrypt(&c, KEY_MAIN, &s, &aad).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(member(&d, "plaintext").unwrap(), plaintext);

    // Without AAD or CDIV, under the rotated credential.
    let rotated = client_as(&p, ROTATED_CREDENTIAL.clone(), None);
    let s = encrypt(&rotated, KEY_MAIN, b"short", b"", false).await;
    assert!(s.cdiv.is_none());
    let d = decrypt(&rotated, KEY_MAIN, &s, b"").await;
    assert_eq!(member(&d, "plaintext").unwrap(), b"short");
    p.stop().await;
}

#[tokio::test]
async fn any_tampering_and_an_aad_ctm_swap_are_invalid_ciphertext() {
    let p = proxy(&[]).await;
    let c = client(&p);
    let aad = b"project=nile";
    let s = encrypt(&c, KEY_MAIN, b"attack at dawn", aad, false).await;
    let variants: Vec<(&str, Value)> = vec![
        ("ciphertext", {
            let mut b = decrypt_body(&s, aad);
            b["ciphertext"] = json!(STANDARD.encode(flipped(&s.ciphertext)));
            b
        }),
        ("iv", {
            let mut b = decrypt_body(&s, aad);
            b["initializationVector"] = json!(STANDARD.encode(flipped(&s.iv)));
            b
        }),
        ("tag", {
            let mut b = decrypt_body(&s, aad);
            b["authenticationTag"] = json!(STANDARD.encode(flipped(&s.tag)));
            b
        }),
        ("aad", decrypt_body(&s, &flipped(aad))),
        ("no aad", decrypt_body(&s, b"")),
        ("ctm", {
            let mut b = decrypt_body(&s, aad);
            b["ciphertextMetadata"] = json!(STANDARD.encode(flipped(&s.ctm)));
            b
        }),
        ("no ctm", {
            let mut b = decrypt_body(&s, aad);
            b.as_object_mut().unwrap().remove("ciphertextMetadata");
            b
        }),
        ("swap", {
            let mut b = decrypt_body(&s, &s.ctm);
            b["ciphertextMetadata"] = json!(STANDARD.encode(aad));
            b
        }),
    ];
    for (what, body) in variants {
        let r = c.call("Decrypt", Some(KEY_MAIN), &body).await.unwrap();
        assert_eq!(
            (r.status, r.error_name()),
            (400, Some("InvalidCiphertextException")),
            "{what}: {}",
            r.text
        );
    }
    // And the untouched one still decrypts.
    assert_eq!(decrypt(&c, KEY_MAIN, &s, aad).await.status, 200);
    p.stop().await;
}

#[tokio::test]
async fn every_authentication_failure_is_401_and_rotation_works() {
    let p = proxy(&[]).await;
    let c = client(&p);
    let body = health_body();
    let good = c.request("GetHealthStatus", None, &body);
    assert_eq!(c.send(&good).await.unwrap().status, 200);

    let mut bad_secret = DEFAULT_CREDENTIAL.clone();
    bad_secret.secret_access_key = ROTATED_SECRET_ACCESS_KEY.into();
    let mut unknown = DEFAULT_CREDENTIAL.clone();
    unknown.access_key_id = "CKSCHECKUNKNOWNKEY22".into();
    let now = SystemTime::now();
    let six_minutes = Duration::from_secs(360);
    let cases: Vec<(&str, RawRequest)> = vec![
        ("no Authorization", RawRequest {
            signing: None,
            ..good.clone()
        }),
        ("bad secret", {
            let mut r = good.clone();
            r.signing.as_mut().unwrap().credential = bad_secret;
            r
        }),
        ("unknown access key", {
            let mut r = good.clone();
            r.signing.as_mut().unwrap().credential = unknown;
            r
        }),
        ("wrong region", {
            let mut r = good.clone();
            r.signing.as_mut().unwrap().region = "eu-west-1".into();
            r
        }),
        ("wrong service", {
            let mut r = good.clone();
            r.signing.as_mut().unwrap().service = "kms".into();
            r
        }),
        ("6 min late", {
            let mut r = good.clone();
            r.signing.as_mut().unwrap().time = now - six_minutes;
            r
        }),
        ("6 min early", {
            let mut r = good.clone();
            r.signing.as_mut().unwrap().time = now + six_minutes;
            r
        }),
        ("body changed", RawRequest {
            sent_body: Some(
                json!({"requestMetadata": {"kmsRequestId": "r-2", "kmsOperation": "KmsHealthCheck"}})
                    .to_string()
                    .into_bytes(),
            ),
            ..good.clone()
        }),
    ];
    for (what, request) in cases {
        let r = c.send(&request).await.unwrap();
        assert_eq!(
            (r.status, r.error_name()),
            (401, Some("AuthenticationFailedException")),
            "{what}: {}",
            r.text
        );
        assert!(!r.text.contains(DEFAULT_SECRET_ACCESS_KEY), "{what}");
    }
    // 4 minutes of skew is within the allowance.
    let mut near = good.clone();
    near.signing.as_mut().unwrap().time = now - Duration::from_secs(240);
    assert_eq!(c.send(&near).await.unwrap().status, 200);
    p.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_before_authentication_and_get_is_405() {
    let p = proxy(&[]).await;
    let c = client(&p);
    for path in [
        "/wrong/kms/xks/v1/health",
        "/ckscheck/kms/xks/v1/keys/ckscheck-aes-1/sign",
        "/ckscheck/kms/xks/v1/status",
    ] {
        for signed in [true, false] {
            let mut r = c.request("GetHealthStatus", None, &health_body());
            r.path = path.into();
            if !signed {
                r.signing = None;
            }
            let reply = c.send(&r).await.unwrap();
            assert_eq!(
                (reply.status, reply.error_name()),
                (404, Some("InvalidUriPathException")),
                "{path}"
            );
        }
    }
    for (op, key) in [
        ("GetHealthStatus", None),
        ("GetKeyMetadata", Some(KEY_MAIN)),
        ("Encrypt", Some(KEY_MAIN)),
        ("Decrypt", Some(KEY_MAIN)),
    ] {
        let mut r = c.request(op, key, &json!({}));
        r.method = "GET".into();
        r.body.clear();
        let reply = c.send(&r).await.unwrap();
        assert_eq!(reply.status, 405, "{op}");
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        assert!(reply.error_name().is_some(), "{op}");
    }
    p.stop().await;
}

#[tokio::test]
async fn key_existence_state_and_usage_give_the_spec_errors() {
    let p = proxy(&[]).await;
    let c = client(&p);
    let status = |r: &XksReply| (r.status, r.error_name().map(str::to_string));
    let err = |s: u16, n: &str| (s, Some(n.to_string()));
    let metadata = json!({"requestMetadata": meta("CreateKey")});
    let sealed = encrypt(&c, KEY_MAIN, b"x", b"", false).await;
    for (op, body) in [
        ("GetKeyMetadata", metadata.clone()),
        ("Encrypt", encrypt_body(b"x", b"", false)),
        ("Decrypt", decrypt_body(&sealed, b"")),
    ] {
        let r = c.call(op, Some("no-such-key"), &body).await.unwrap();
        assert_eq!(status(&r), err(404, "KeyNotFoundException"), "{op}");
    }
    let r = c
        .call("GetKeyMetadata", Some(KEY_DISABLED), &metadata)
        .await
        .unwrap();
    assert_eq!(r.body["keyStatus"], "DISABLED");
    let r = c
        .call(
            "Encrypt",
            Some(KEY_DISABLED),
            &encrypt_body(b"x", b"", false),
        )
        .await
        .unwrap();
    assert_eq!(status(&r), err(400, "InvalidStateException"));
    let r = decrypt(&c, KEY_DISABLED, &sealed, b"").await;
    assert_eq!(status(&r), err(400, "InvalidStateException"));

    let r = c
        .call("GetKeyMetadata", Some(KEY_ENCRYPT_ONLY), &metadata)
        .await
        .unwrap();
    assert_eq!(r.body["keyUsage"], json!(["ENCRYPT"]));
    let enc_only = encrypt(&c, KEY_ENCRYPT_ONLY, b"x", b"", false).await;
    let r = decrypt(&c, KEY_ENCRYPT_ONLY, &enc_only, b"").await;
    assert_eq!(status(&r), err(400, "InvalidKeyUsageException"));
    let r = c
        .call(
            "Encrypt",
            Some(KEY_DECRYPT_ONLY),
            &encrypt_body(b"x", b"", false),
        )
        .await
        .unwrap();
    assert_eq!(status(&r), err(400, "InvalidKeyUsageException"));
    // A ciphertext of another key does not decrypt under the decrypt-only key.
    let r = decrypt(&c, KEY_DECRYPT_ONLY, &sealed, b"").await;
    assert_eq!(status(&r), err(400, "InvalidCiphertextException"));
    p.stop().await;
}

#[tokio::test]
async fn validation_errors_come_back_as_400_json_over_the_wire() {
    let p = proxy(&[]).await;
    let c = client(&p);
    let mut request = c.request("Encrypt", Some(KEY_MAIN), &json!({}));
    request.body = b"{\"requestMetadata\":".to_vec();
    let r = c.send(&request).await.unwrap();
    assert_eq!(
        (r.status, r.error_name()),
        (400, Some("ValidationException"))
    );
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let message = r.body["errorMessage"].as_str().unwrap();
    assert!(message.len() < 512 && message.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    for body in [json!({}), json!({"requestMetadata": {}})] {
        let r = c.call("GetHealthStatus", None, &body).await.unwrap();
        assert_eq!(
            (r.status, r.error_name()),
            (400, Some("ValidationException"))
        );
    }
    let mut url_safe = encrypt_body(&[0xfb, 0xff], b"", false);
    url_safe["plaintext"] = json!("-_8=");
    let r = c.call("Encrypt", Some(KEY_MAIN), &url_safe).await.unwrap();
    assert_eq!(
        (r.status, r.error_name()),
        (400, Some("ValidationException"))
    );
    let mut unknown_op = encrypt_body(b"x", b"", false);
    unknown_op["requestMetadata"]["kmsOperation"] = json!("SomeFutureOperation");
    unknown_op["requestMetadata"]["newMember"] = json!("x");
    unknown_op["newTopLevel"] = json!(1);
    let r = c
        .call("Encrypt", Some(KEY_MAIN), &unknown_op)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let big = encrypt_body(&vec![0; request::MAX_DATA_BYTES + 1], b"", false);
    let r = c.call("Encrypt", Some(KEY_MAIN), &big).await.unwrap();
    assert_eq!(
        (r.status, r.error_name()),
        (501, Some("UnsupportedOperationException"))
    );
    p.stop().await;
}

#[tokio::test]
async fn bad_handshakes_and_hanging_clients_never_stop_the_server() {
    let p = proxy(&[]).await;
    let c = client(&p);
    let mut garbage = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let _silent = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let hangers = hang(&p, 3).await;
    let untrusted = {
        let other = start_with(ProxyConfig::reference(HOST)).await;
        let mut target = (*c.target).clone();
        target.roots = Roots::Pem(other.ca_pem.clone());
        XksClient::new(target).unwrap()
    };
    assert!(health(&untrusted).await.is_err());
    let r = health(&c).await.unwrap();
    assert_eq!(r.status, 200);
    drop(hangers);
    p.stop().await;
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_get_in() {
    let authority = Arc::new(tls::Authority::generate("ckscheck mTLS test CA").unwrap());
    let mut config = ProxyConfig::reference(HOST);
    config.authority = Some(authority.clone());
    config.client_ca = Some(authority.cert_der.clone());
    let p = start_with(config).await;
    let anonymous = client(&p);
    assert!(health(&anonymous).await.is_err());
    let identity = authority.client("cks.kms.us-east-1.amazonaws.com").unwrap();
    let with_cert = client_as(&p, DEFAULT_CREDENTIAL.clone(), Some(identity));
    let r = health(&with_cert).await.unwrap();
    assert_eq!(r.status, 200);
    p.stop().await;
}

/// Opens `n` TLS connections whose POST sends its headers but not its body.
async fn hang(
    p: &RunningProxy,
    n: usize,
) -> Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = tls::client_config(&Roots::Pem(p.ca_pem.clone()), None).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut streams = Vec::new();
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(HOST.to_string()).unwrap();
        let mut stream = connector.connect(name, tcp).await.unwrap();
        let head = format!(
            "POST {DEFAULT_URI_PATH}/health HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        streams.push(stream);
    }
    streams
}

/// Whether the bug `fault` plants shows in `p`'s answers.
async fn shows(fault: ProxyFault, p: &RunningProxy) -> bool {
    let c = client(p);
    match fault {
        ProxyFault::ReusedIv => {
            let a = encrypt(&c, KEY_MAIN, b"one", b"", false).await;
            let b = encrypt(&c, KEY_MAIN, b"two", b"", false).await;
            a.iv == b.iv
        }
        ProxyFault::TagNotChecked => {
            let mut s = encrypt(&c, KEY_MAIN, b"secret", b"a", false).await;
            s.tag = flipped(&s.tag);
            decrypt(&c, KEY_MAIN, &s, b"a").await.status == 200
        }
        ProxyFault::AadIgnored => {
            let s = encrypt(&c, KEY_MAIN, b"secret", b"a", false).await;
            decrypt(&c, KEY_MAIN, &s, b"b").await.status == 200
        }
        ProxyFault::CtmNotBound => {
            let mut s = encrypt(&c, KEY_MAIN, b"secret", b"a", false).await;
            assert!(!s.ctm.is_empty(), "ctm is still returned");
            s.ctm = flipped(&s.ctm);
            decrypt(&c, KEY_MAIN, &s, b"a").await.status == 200
        }
        ProxyFault::WrongCdiv => {
            let s = encrypt(&c, KEY_MAIN, b"secret", b"a", true).await;
            let right = crypto::cdiv(b"a", &s.ctm, &s.iv, &s.ciphertext, &s.tag);
            s.cdiv.as_deref() != Some(&right[..])
        }
        ProxyFault::WrongErrorStatus | ProxyFault::WrongErrorName => {
            let r = c.call("GetHealthStatus", None, &json!({})).await.unwrap();
            match fault {
                ProxyFault::WrongErrorStatus => r.status == 500,
                _ => r.error_name() == Some("ValidationError"),
            }
        }
        ProxyFault::MetadataWrongKeyspec | ProxyFault::MetadataEmptyKeyusage => {
            let body = json!({"requestMetadata": meta("CreateKey")});
            let r = c
                .call("GetKeyMetadata", Some(KEY_MAIN), &body)
                .await
                .unwrap();
            match fault {
                ProxyFault::MetadataWrongKeyspec => r.body["keySpec"] == "AES_128",
                _ => r.body["keyUsage"] == json!([]),
            }
        }
        ProxyFault::AcceptsBadSignatures => {
            let mut r = c.request("GetHealthStatus", None, &health_body());
            r.signing.as_mut().unwrap().credential.secret_access_key = "wrong".repeat(9);
            let unknown = {
                let mut u = r.clone();
                u.signing.as_mut().unwrap().credential.access_key_id =
                    "AAAAAAAAAAAAAAAAAAAA".into();
                u
            };
            assert_eq!(c.send(&unknown).await.unwrap().status, 401);
            c.send(&r).await.unwrap().status == 200
        }
        ProxyFault::IgnoresSkew => {
            let mut r = c.request("GetHealthStatus", None, &health_body());
            r.signing.as_mut().unwrap().time = SystemTime::now() - Duration::from_secs(360);
            c.send(&r).await.unwrap().status == 200
        }
        ProxyFault::Refuses4300BytePlaintext => {
            let body = encrypt_body(&[1; 4300], b"", false);
            let r = c.call("Encrypt", Some(KEY_MAIN), &body).await.unwrap();
            r.status == 400 && r.error_name() == Some("ValidationException")
        }
        ProxyFault::BadBase64As5xx => {
            let mut body = encrypt_body(b"x", b"", false);
            body["plaintext"] = json!("-_8=");
            let r = c.call("Encrypt", Some(KEY_MAIN), &body).await.unwrap();
            r.status == 500 && r.error_name() == Some("InternalException")
        }
        ProxyFault::Slow => {
            let started = Instant::now();
            let r = health(&c).await.unwrap();
            assert_eq!(r.status, 200);
            started.elapsed() >= Duration::from_millis(300)
        }
        ProxyFault::HealthMissingMember | ProxyFault::HealthUnavailable => {
            let r = health(&c).await.unwrap();
            match fault {
                ProxyFault::HealthMissingMember => r.body.get("ekmVendor").is_none(),
                _ => r.body["ekmFleetDetails"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|e| e["healthStatus"] == "UNAVAILABLE")),
            }
        }
        ProxyFault::IgnoresKeyUsage => {
            let s = encrypt(&c, KEY_ENCRYPT_ONLY, b"secret", b"", false).await;
            decrypt(&c, KEY_ENCRYPT_ONLY, &s, b"").await.status == 200
        }
        ProxyFault::CdivWithoutDecryptUsage => {
            let body = encrypt_body(b"plaintext", b"", true);
            let r = c
                .call("Encrypt", Some(KEY_ENCRYPT_ONLY), &body)
                .await
                .unwrap();
            r.status == 200
        }
        ProxyFault::ThrottlesBursts => {
            let _hangers = hang(p, 4).await;
            let deadline = Instant::now() + Duration::from_secs(2);
            while p.in_flight() < 4 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let r = health(&c).await.unwrap();
            r.status == 429 && r.error_name() == Some("ThrottlingException")
        }
        ProxyFault::DeniesAccess | ProxyFault::RejectsCredentials | ProxyFault::InvalidUriPath => {
            let (status, name) = match fault {
                ProxyFault::DeniesAccess => (403, "AccessDeniedException"),
                ProxyFault::RejectsCredentials => (401, "AuthenticationFailedException"),
                _ => (404, "InvalidUriPathException"),
            };
            let r = health(&c).await.unwrap();
            r.status == status && r.error_name() == Some(name)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_shows_its_bug_and_the_clean_proxy_does_not() {
    let checks = ProxyFault::ALL.into_iter().map(|fault| async move {
        let faulty = proxy(&[fault]).await;
        let clean = proxy(&[]).await;
        let (in_faulty, in_clean) = (shows(fault, &faulty).await, shows(fault, &clean).await);
        faulty.stop().await;
        clean.stop().await;
        (fault, in_faulty, in_clean)
    });
    let wrong: Vec<String> = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|(_, in_faulty, in_clean)| !in_faulty || *in_clean)
        .map(|(f, in_faulty, in_clean)| {
            format!("{f}: faulty shows {in_faulty}, clean shows {in_clean}")
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn confined_faults_hit_only_the_health_checks_of_the_listed_kms_operations() {
    let mut config = ProxyConfig::reference(HOST);
    config.faults = vec![ProxyFault::RejectsCredentials, ProxyFault::Slow];
    config.fault_operations = Some(vec!["ConnectCustomKeyStore".into()]);
    let p = start_with(config).await;
    let c = client(&p);
    let health = |operation: &str| json!({"requestMetadata": {"kmsRequestId": "r-2", "kmsOperation": operation}});
    let started = Instant::now();
    let r = c
        .call("GetHealthStatus", None, &health("CreateCustomKeyStore"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let body = json!({"requestMetadata": meta("CreateKey")});
    let r = c
        .call("GetKeyMetadata", Some(KEY_MAIN), &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(started.elapsed() < Duration::from_millis(300), "not slowed");
    let started = Instant::now();
    let r = c
        .call("GetHealthStatus", None, &health("ConnectCustomKeyStore"))
        .await
        .unwrap();
    assert_eq!(r.error_name(), Some("AuthenticationFailedException"));
    assert!(started.elapsed() >= Duration::from_millis(300), "slowed");
    p.stop().await;
}

/// AWS's test client in full mode (`-a`): every Encrypt on an encrypt-only, decrypt-only or
/// no-usage ("impotent") key that it expects refused, with or without AAD, with or without a
/// CDIV, is 400 InvalidKeyUsageException (test_encrypt_only_key, tests_for_decrypt_only_key.sh);
/// an encrypt-only key still encrypts without a CDIV, and its Decrypt is refused.
#[tokio::test]
async fn the_aws_test_clients_key_usage_cases_get_what_it_expects() {
    let mut config = ProxyConfig::reference(HOST);
    config.keys.push(KeyDef::new("impotent_key", &[], true));
    let p = start_with(config).await;
    let c = client(&p);
    let aad = b"project=nile,department=marketing";
    for key in [KEY_ENCRYPT_ONLY, KEY_DECRYPT_ONLY, "impotent_key"] {
        for (aad, cdiv) in [(&aad[..], true), (&b""[..], true)] {
            let r = c
                .call(
                    "Encrypt",
                    Some(key),
                    &encrypt_body(b"plaintext\n", aad, cdiv),
                )
                .await
                .unwrap();
            assert_eq!(
                (r.status, r.error_name()),
                (400, Some("InvalidKeyUsageException")),
                "{key}, AAD {}, CDIV {cdiv}: {}",
                aad.len(),
                r.text
            );
        }
    }
    for key in [KEY_DECRYPT_ONLY, "impotent_key"] {
        let r = c
            .call(
                "Encrypt",
                Some(key),
                &encrypt_body(b"plaintext\n", aad, false),
            )
            .await
            .unwrap();
        assert_eq!(r.error_name(), Some("InvalidKeyUsageException"), "{key}");
    }
    let r = c
        .call(
            "Encrypt",
            Some(KEY_ENCRYPT_ONLY),
            &encrypt_body(b"plaintext\n", aad, false),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let sealed = crate::xks::checks::requests::Sealed::from_answer(&r.body).unwrap();
    let r = c
        .call(
            "Decrypt",
            Some(KEY_ENCRYPT_ONLY),
            &sealed.decrypt(Some(aad)),
        )
        .await
        .unwrap();
    assert_eq!(
        r.error_name(),
        Some("InvalidKeyUsageException"),
        "{}",
        r.text
    );
    p.stop().await;
}
