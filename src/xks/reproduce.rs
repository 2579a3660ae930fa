//! How a certification failure reads: the shrunk input, what each exchange got back, and the
//! same requests as curl commands (`--aws-sigv4 "aws:amz:REGION:kms-xks-proxy"`, the secret as
//! `$XKS_SECRET_ACCESS_KEY`, never its value).

use std::fmt::Write;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::checks::Counterexample;
use super::checks::probe::Exchange;
use crate::history::SECRET_TOKEN;
use crate::report::RawReproduction;
use crate::report::reproducer::sh_word;
use crate::sigv4::Credential;

/// Longest body shown in the exchange list, in characters (curl lines carry it whole).
const BODY_MAX: usize = 200;

/// What the curl lines need to know about the run.
pub struct Facts {
    /// `https://HOST[:PORT]` curl talks to.
    pub url: String,
    /// The credential the run signs with (its secret is never shown).
    pub credential: Credential,
    /// The second credential, when rotation was tested.
    pub rotated: Option<Credential>,
    /// A CA file for `--cacert`.
    pub ca_file: Option<String>,
    /// Client certificate and key files for `--cert` / `--key`.
    pub client_cert: Option<(String, String)>,
    /// A command to run first (e.g. start the reference proxy).
    pub first: Option<String>,
}

/// The failure's reproducer text: input, exchanges, curl commands.
pub fn render(c: &Counterexample, facts: &Facts) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "shrunk input: {}", c.input);
    let _ = writeln!(out, "\nwhat came back ({} exchanges):", c.exchanges.len());
    for (i, ex) in c.exchanges.iter().enumerate() {
        let latency = ex
            .reply
            .as_ref()
            .map(|r| format!(" in {:.1} ms", r.latency.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}. {} → {}{latency}", i + 1, ex.what, ex.outcome());
        let _ = writeln!(
            out,
            "     {} {} {}",
            ex.request.method,
            ex.request.path,
            cut(&String::from_utf8_lossy(&ex.request.body))
        );
        if let Ok(r) = &ex.reply
            && !r.text.is_empty()
        {
            let _ = writeln!(out, "     ← {}", cut(&r.text));
        }
    }
    if !c.exchanges.is_empty() {
        out.push_str("\nas curl commands:\n");
        if let Some(first) = &facts.first {
            let _ = writeln!(out, "  # first: {first}");
        }
        for ex in &c.exchanges {
            let _ = writeln!(out, "  {}", curl(ex, facts));
        }
    }
    out
}

/// The failure's reproduction as structured fields (the JSON report's `steps`, `exchanges`,
/// `curl`): each exchange whole, with the run's secrets masked wherever they would appear.
pub fn structured(c: &Counterexample, facts: &Facts) -> RawReproduction {
    let secrets: Vec<&str> = std::iter::once(&facts.credential)
        .chain(facts.rotated.as_ref())
        .map(|c| c.secret_access_key.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    let mask = |text: &str| {
        secrets.iter().fold(text.to_string(), |t, s| {
            t.replace(s, &format!("{SECRET_TOKEN}=xks]"))
        })
    };
    let body = |text: &str| {
        let text = mask(text);
        serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))
    };
    let mut out = RawReproduction::default();
    for ex in &c.exchanges {
        let r = &ex.request;
        let mut e = json!({
            "operation": ex.operation,
            "what": mask(&ex.what),
            "method": r.method,
            "path": r.path,
            "request": body(&String::from_utf8_lossy(r.sent_body.as_ref().unwrap_or(&r.body))),
            "signed": r.signing.is_some(),
        });
        match &ex.reply {
            Ok(reply) => {
                e["status"] = json!(reply.status);
                e["error_name"] = json!(reply.error_name());
                e["latency_ms"] = json!((reply.latency.as_secs_f64() * 1e6).round() / 1e3);
                e["response"] = body(&reply.text);
            }
            Err(err) => {
                e["status"] = Value::Null;
                e["error"] = json!(mask(&err.to_string()));
            }
        }
        out.steps
            .push(format!("{} → {}", mask(&ex.what), mask(&ex.outcome())));
        out.exchanges.push(e);
        out.curl.push(curl(ex, facts));
    }
    out
}

fn cut(text: &str) -> String {
    if text.chars().count() <= BODY_MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(BODY_MAX).collect();
        format!("{head}… ({} characters)", text.chars().count())
    }
}

/// One exchange as a curl command.
pub fn curl(ex: &Exchange, facts: &Facts) -> String {
    let r = &ex.request;
    let mut words: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if let Some(s) = &r.signing {
        let skew = SystemTime::now()
            .duration_since(s.time)
            .map(|d| -(d.as_secs() as i64))
            .unwrap_or_else(|e| e.duration().as_secs() as i64);
        if skew.abs() >= 60 {
            words.push(format!("faketime '{:+} minutes'", skew / 60));
        }
    }
    words.push("curl -sS -i".into());
    words.push(format!("-X {}", r.method));
    words.push(sh_word(&format!("{}{}", facts.url, r.path)));
    if let Some(ca) = &facts.ca_file {
        words.push(format!("--cacert {}", sh_word(ca)));
    }
    if let Some((cert, key)) = &facts.client_cert {
        words.push(format!("--cert {} --key {}", sh_word(cert), sh_word(key)));
    }
    if let Some(s) = &r.signing {
        words.push(format!(
            "--aws-sigv4 {}",
            sh_word(&format!("aws:amz:{}:{}", s.region, s.service))
        ));
        words.push(format!("--user {}", user(&s.credential, facts)));
    } else {
        notes.push("no Authorization header".into());
    }
    if r.method != "GET" {
        words.push("-H 'Content-Type: application/json'".into());
        words.push(format!(
            "--data-binary {}",
            sh_word(&String::from_utf8_lossy(&r.body))
        ));
    }
    if r.sent_body.is_some() {
        notes.push(
            "ckscheck sent another body than it signed; curl signs what it sends, so this line shows the signed body"
                .into(),
        );
    }
    let mut line = words.join(" ");
    for n in notes {
        line.push_str(&format!("  # {n}"));
    }
    line
}

/// `--user` for a signing credential: environment variables for the known ones.
fn user(c: &Credential, facts: &Facts) -> String {
    let secret = if c.secret_access_key == facts.credential.secret_access_key {
        "$XKS_SECRET_ACCESS_KEY".to_string()
    } else if facts
        .rotated
        .as_ref()
        .is_some_and(|r| r.secret_access_key == c.secret_access_key)
    {
        "$XKS_SECRET_ACCESS_KEY_2".to_string()
    } else {
        "not-the-secret".to_string()
    };
    let id = if c.access_key_id == facts.credential.access_key_id {
        "$XKS_ACCESS_KEY_ID".to_string()
    } else if facts
        .rotated
        .as_ref()
        .is_some_and(|r| r.access_key_id == c.access_key_id)
    {
        "$XKS_ACCESS_KEY_ID_2".to_string()
    } else {
        c.access_key_id.clone()
    };
    format!("\"{id}:{secret}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xks::client::{RawRequest, Signing};

    fn facts() -> Facts {
        Facts {
            url: "https://localhost:4443".into(),
            credential: Credential::new(
                "AKIDAAAAAAAAAAAAAAAA",
                "secretsecretsecretsecretsecretsecretsecret1",
            ),
            rotated: None,
            ca_file: Some("ckscheck-xks-ca.pem".into()),
            client_cert: None,
            first: None,
        }
    }

    fn exchange(signing: Option<Signing>) -> Exchange {
        Exchange {
            operation: "Encrypt".into(),
            what: "Encrypt".into(),
            request: RawRequest {
                method: "POST".into(),
                path: "/p/kms/xks/v1/keys/k/encrypt".into(),
                body: br#"{"plaintext":"AA=="}"#.to_vec(),
                signing,
                sent_body: None,
            },
            reply: Err(crate::xks::SendError::Connect("refused".into())),
        }
    }

    #[test]
    fn structured_exchanges_carry_both_bodies_and_mask_an_echoed_secret() {
        let f = facts();
        let mut ex = exchange(None);
        let echoed = format!(
            r#"{{"errorName":"X","errorMessage":"{}"}}"#,
            f.credential.secret_access_key
        );
        ex.reply = Ok(crate::xks::XksReply {
            status: 400,
            content_type: None,
            body: serde_json::from_str(&echoed).unwrap(),
            text: echoed,
            latency: std::time::Duration::from_micros(1500),
            declared_delay: None,
        });
        let c = Counterexample {
            input: "i".into(),
            exchanges: vec![ex],
            cases_needed: 1,
        };
        let raw = structured(&c, &f);
        let text = serde_json::to_string(&raw).unwrap();
        assert!(!text.contains(&f.credential.secret_access_key), "{text}");
        let e = &raw.exchanges[0];
        assert_eq!(e["status"], 400);
        assert_eq!(e["latency_ms"], 1.5);
        assert_eq!(e["request"]["plaintext"], "AA==");
        assert_eq!(e["response"]["errorMessage"], "[secret=xks]");
        assert_eq!(raw.curl.len(), 1);
        assert_eq!(raw.steps, ["Encrypt → 400 X"]);
    }

    #[test]
    fn curl_signs_for_kms_xks_proxy_with_the_secret_from_the_environment() {
        let f = facts();
        let signing = Signing {
            credential: f.credential.clone(),
            region: "us-east-1".into(),
            service: "kms-xks-proxy".into(),
            time: SystemTime::now(),
        };
        let line = curl(&exchange(Some(signing.clone())), &f);
        assert!(
            line.starts_with(
                "curl -sS -i -X POST https://localhost:4443/p/kms/xks/v1/keys/k/encrypt"
            ),
            "{line}"
        );
        assert!(
            line.contains("--aws-sigv4 aws:amz:us-east-1:kms-xks-proxy"),
            "{line}"
        );
        assert!(
            line.contains(r#"--user "$XKS_ACCESS_KEY_ID:$XKS_SECRET_ACCESS_KEY""#),
            "{line}"
        );
        assert!(line.contains("--cacert ckscheck-xks-ca.pem"), "{line}");
        assert!(!line.contains(&f.credential.secret_access_key), "{line}");
        let mut wrong = signing.clone();
        wrong.credential.secret_access_key = "other".into();
        wrong.time = SystemTime::now() - std::time::Duration::from_secs(361);
        let line = curl(&exchange(Some(wrong)), &f);
        assert!(
            line.contains(r#""$XKS_ACCESS_KEY_ID:not-the-secret""#),
            "{line}"
        );
        assert!(line.starts_with("faketime '-6 minutes' curl"), "{line}");
        let line = curl(&exchange(None), &f);
        assert!(
            !line.contains("--aws-sigv4") && line.contains("# no Authorization"),
            "{line}"
        );
    }
}
