//! `xks-authentication`: SigV4 as KMS signs it is the only way in; everything else is 401
//! AuthenticationFailedException. Also the URI path and method rules.

use std::time::{Duration, SystemTime};

use super::probe::Probe;
use super::{Ctx, Outcome, requests, single};
use crate::oracle::Severity;
use crate::sigv4::Credential;
use crate::xks::client::{RawRequest, Signing, XksClient, XksTarget};

const AUTH_FAILED: &str = "AuthenticationFailedException";

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    single(ctx, "signed and mis-signed requests", |p| {
        let key = p.ctx.keys.main.clone();
        let body = requests::metadata();
        let good = p.request("GetKeyMetadata", Some(&key), &body);
        let cred = p.ctx.client.target.credential.clone();
        let ok = p
            .expect_200(
                "GetKeyMetadata",
                "auth/sigv4",
                "signed as KMS signs it",
                "GetKeyMetadata signed as KMS signs it",
                good.clone(),
            )
            .is_some();
        long_credentials(p, &cred, ok);

        let mut bad = |what: &str, rule: &str, change: &dyn Fn(&mut RawRequest)| {
            let mut r = good.clone();
            change(&mut r);
            p.expect_error("GetKeyMetadata", rule, what, what, r, AUTH_FAILED);
        };
        let mut wrong = cred.secret_access_key.clone();
        let last = wrong.pop().unwrap_or('A');
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        bad(
            "signed with a wrong secret",
            "auth/sigv4",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.credential = Credential::new(&cred.access_key_id, &wrong);
                }
            },
        );
        bad(
            "signed with an unknown access key id",
            "auth/sigv4",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.credential =
                        Credential::new("CKSCHECKUNKNOWNAKIDAA", &cred.secret_access_key);
                }
            },
        );
        bad(
            "signed with a malformed access key id (Invalid + the real one, as AWS's test client)",
            "auth/sigv4",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.credential = Credential::new(
                        format!("Invalid{}", cred.access_key_id),
                        &cred.secret_access_key,
                    );
                }
            },
        );
        bad(
            "signed for service kms instead of kms-xks-proxy",
            "auth/sigv4",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.service = "kms".into();
                }
            },
        );
        bad(
            "signed for another region",
            "auth/sigv4",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.region = if s.region == "eu-west-1" {
                        "us-east-1"
                    } else {
                        "eu-west-1"
                    }
                    .into();
                }
            },
        );
        bad(
            "body changed after signing",
            "auth/sigv4",
            &|r: &mut RawRequest| {
                let text = String::from_utf8_lossy(&r.body).replace("CreateKey", "CreateKex");
                r.sent_body = Some(text.into_bytes());
            },
        );
        bad(
            "no Authorization header",
            "auth/sigv4",
            &|r: &mut RawRequest| r.signing = None,
        );
        let six = Duration::from_secs(360);
        bad(
            "x-amz-date 6 minutes in the past",
            "auth/skew",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.time = SystemTime::now() - six;
                }
            },
        );
        bad(
            "x-amz-date 6 minutes in the future",
            "auth/skew",
            &|r: &mut RawRequest| {
                if let Some(s) = &mut r.signing {
                    s.time = SystemTime::now() + six;
                }
            },
        );
        rotation(p, &good);
        mutual_tls(p);
        uri_rules(p, &key);
    })
}

fn long_credentials(p: &mut Probe, cred: &Credential, ok: bool) {
    let (a, s) = (cred.access_key_id.len(), cred.secret_access_key.len());
    if a < 30 || s < 64 {
        p.verdict.find(
            Severity::Warning,
            "GetKeyMetadata",
            "auth/long-credentials",
            "not exercised: short credentials",
            format!("not exercised: the credential has a {a}-character access key id and a {s}-character secret; a 30- and a 64-character one test the longest KMS sends"),
            None,
        );
    } else if !ok {
        let got = p
            .exchanges
            .first()
            .map(|e| e.outcome_kind())
            .filter(|k| k != "200")
            .unwrap_or_else(|| "200 without a JSON object".to_string());
        p.find(
            "GetKeyMetadata",
            "auth/long-credentials",
            format!("expected 200 with the longest credentials, got {got}"),
            "a 30-character access key id with a 64-character secret was refused",
            Some(0),
        );
    }
}

fn rotation(p: &mut Probe, good: &RawRequest) {
    let Some(second) = p.ctx.rotated.clone() else {
        p.verdict.find(
            Severity::Warning,
            "GetKeyMetadata",
            "auth/rotation",
            "not exercised: no second credential",
            "not exercised: no second credential (XKS_ACCESS_KEY_ID_2 / XKS_SECRET_ACCESS_KEY_2)",
            None,
        );
        return;
    };
    let first = p.ctx.client.signing();
    let with_second = Signing {
        credential: second,
        ..first.clone()
    };
    for (what, signing) in [
        ("signed with the second credential", with_second),
        ("signed with the first credential again", first),
    ] {
        let mut r = good.clone();
        r.signing = Some(signing);
        let i = p.send("GetKeyMetadata", what, r);
        let status = p.exchanges[i].reply.as_ref().map(|r| r.status).ok();
        if status != Some(200) {
            let got = p.exchanges[i].outcome();
            let kind = format!(
                "{what}: expected 200, got {}",
                p.exchanges[i].outcome_kind()
            );
            p.find(
                "GetKeyMetadata",
                "auth/rotation",
                kind,
                format!("{what}: expected 200, got {got}"),
                Some(i),
            );
        }
    }
}

/// Over plain HTTP: the SHOULD finding that KMS needs HTTPS, and the TLS checks as not run.
fn plain_http(p: &mut Probe) {
    p.find(
        "GetHealthStatus",
        "tls/https-required",
        "expected an https:// endpoint, got plain http://",
        "the endpoint is plain http://: KMS connects to an XKS proxy only over HTTPS (fine behind a TLS-terminating load balancer; certify that TLS separately)",
        None,
    );
    for (rule, what) in [
        (
            "tls/certificate",
            "the server certificate (trusted chain, names the host)",
        ),
        ("auth/mtls", "mutual TLS"),
    ] {
        p.verdict.find(
            Severity::Warning,
            "GetHealthStatus",
            rule,
            "not run: plain HTTP",
            format!("not run: {what} needs TLS, and the endpoint is plain http://"),
            None,
        );
    }
}

fn mutual_tls(p: &mut Probe) {
    let target = p.ctx.client.target.as_ref();
    if target.is_plain_http() {
        plain_http(p);
        return;
    }
    if target.identity.is_none() {
        p.verdict.find(
            Severity::Warning,
            "GetHealthStatus",
            "auth/mtls",
            "not exercised: no client certificate",
            "not exercised: no client certificate given (--client-cert, --client-key)",
            None,
        );
        return;
    }
    // As AWS's test client (bogus-mtls): no certificate, and a certificate from a CA the
    // proxy does not trust (the test client uses a self-signed one).
    let stranger = crate::xks::tls::Authority::generate("ckscheck untrusted client CA")
        .and_then(|ca| ca.client("cks.kms.us-east-1.amazonaws.com"))
        .ok();
    let cases = [
        ("without a client certificate", None),
        ("with a client certificate from an untrusted CA", stranger),
    ];
    for (how, identity) in cases {
        if how.contains("untrusted") && identity.is_none() {
            continue;
        }
        let other = XksTarget {
            identity,
            ..target.clone()
        };
        let Ok(client) = XksClient::new(other) else {
            continue;
        };
        let request = client.request("GetHealthStatus", None, &requests::health("KmsHealthCheck"));
        let reply = p.ctx.block_on(client.send(&request));
        let accepted = reply.as_ref().is_ok_and(|r| r.status == 200);
        p.exchanges.push(super::probe::Exchange {
            operation: "GetHealthStatus".into(),
            what: format!("GetHealthStatus {how}"),
            request,
            reply,
        });
        if accepted {
            let at = Some(p.exchanges.len() - 1);
            p.find(
                "GetHealthStatus",
                "auth/mtls",
                format!("expected a client {how} refused, got 200"),
                format!("a client {how} was served"),
                at,
            );
        }
    }
}

fn uri_rules(p: &mut Probe, key: &str) {
    let health = requests::health("KmsHealthCheck");
    let mut wrong = p.request("GetHealthStatus", None, &health);
    wrong.path = "/ckscheck-no-such-prefix/kms/xks/v1/health".into();
    p.expect_error(
        "GetHealthStatus",
        "uri/unknown-path",
        "an unknown URI path",
        "GetHealthStatus under an unknown URI path",
        wrong,
        "InvalidUriPathException",
    );
    // As AWS's test client: `/invalid` added to the prefix, for each operation.
    let uri_path = p.ctx.client.target.uri_path.clone();
    let base = uri_path.trim_end_matches('/');
    let invalid = match base.rfind("/kms/xks/") {
        Some(i) => format!("{}/invalid{}", &base[..i], &base[i..]),
        None => format!("{base}/invalid"),
    };
    for (op, body) in [
        ("GetKeyMetadata", requests::metadata()),
        ("Encrypt", requests::encrypt(b"ckscheck", None, false)),
    ] {
        let mut wrong = p.request(op, Some(key), &body);
        wrong.path = wrong.path.replacen(base, &invalid, 1);
        p.expect_error(
            op,
            "uri/unknown-path",
            "a URI path prefix with /invalid added",
            format!("{op} under the URI path {invalid}"),
            wrong,
            "InvalidUriPathException",
        );
    }
    let mut wrong = p.request("Encrypt", Some(key), &health);
    wrong.path = wrong.path.replace("/encrypt", "/frobnicate");
    p.expect_error(
        "Encrypt",
        "uri/unknown-path",
        "an unknown operation",
        "an unknown operation under the key",
        wrong,
        "InvalidUriPathException",
    );
    for (op, key) in [
        ("GetHealthStatus", None),
        ("GetKeyMetadata", Some(key)),
        ("Encrypt", Some(key)),
        ("Decrypt", Some(key)),
    ] {
        let mut get = p.request(op, key, &serde_json::Value::Null);
        get.method = "GET".into();
        get.body.clear();
        let i = p.send(op, format!("GET on the {op} URI"), get);
        let status = p.exchanges[i].reply.as_ref().map(|r| r.status).ok();
        if status != Some(405) {
            let got = p.exchanges[i].outcome();
            let kind = format!("expected 405, got {}", p.exchanges[i].outcome_kind());
            p.find(
                op,
                "uri/get",
                kind,
                format!("GET on the {op} URI: expected 405, got {got}"),
                Some(i),
            );
        }
    }
}
