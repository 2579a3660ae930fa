//! Normalisation: insta redactions that turn a transcript into text comparable across
//! endpoints and runs. Each redaction first checks what it replaces, so a field's presence,
//! its JSON type, an enum value and an error name always show:
//!
//! | what | becomes | only when |
//! |---|---|---|
//! | store IDs the endpoint issued | `[cks-1]`, `[cks-2]`… in order of first appearance | a string |
//! | KMS key IDs, key ARNs, account IDs (also VPC service owners) | `[key-1]`…, `[arn]`, `[account]` | a string (an ARN, 12 digits) |
//! | `CreationDate` | `[epoch]` | a number |
//! | `request_id` | `[request-id]` | a string (a missing header stays null) |
//! | `message` | `[message]` | a string (`pinned_message` is kept) |
//! | markers the endpoint issued | `[marker]` | a string |
//! | store names with the run's prefix | `[prefix]REST` | a string |
//! | fixture values and secret tokens | `[ROLE]`, `[ROLE.FIELD]`, `[secret=ROLE]` | the value the role's backend has; where roles share it, the role [`super::placeholders`] picks for the place |
//! | listings (`CustomKeyStores`) | sorted; the pages of one walk (each page's Marker the
//! previous page's NextMarker) sorted together and dealt back in their page sizes | KMS defines no order |
//!
//! Redactions run one after another, each over the whole transcript in document order, so
//! numbering is fixed before listings are sorted.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use insta::_macro_support::{SerializationFormat, serialize_value};
use insta::internals::Content;

use super::placeholders::ByPath;
use super::transcript::Transcript;

/// Where `cargo test` writes the snapshots from (insta's `source:` line).
pub const SOURCE: &str = "tests/scenarios.rs";

/// What normalising one transcript needs to know.
#[derive(Debug, Clone, Default)]
pub struct Normaliser {
    /// The run's name prefix.
    pub prefix: String,
    /// The placeholder of each fixture value (or secret token), by its insta path.
    pub placeholders: ByPath,
    /// Store IDs the endpoint issued (in responses).
    pub issued_ids: BTreeSet<String>,
    /// Markers the endpoint issued (NextMarker values).
    pub issued_markers: BTreeSet<String>,
}

impl Normaliser {
    /// A normaliser for `transcript`, learning the IDs and markers the endpoint issued from it.
    pub fn new(prefix: &str, placeholders: ByPath, t: &Transcript) -> Normaliser {
        let mut n = Normaliser {
            prefix: prefix.to_string(),
            placeholders,
            ..Normaliser::default()
        };
        for e in &t.steps {
            if let Some(r) = &e.response {
                collect(r, "CustomKeyStoreId", &mut n.issued_ids);
                collect(r, "NextMarker", &mut n.issued_markers);
            }
        }
        n
    }

    /// insta settings carrying the redactions, the snapshot folder and the description.
    pub fn settings(&self, description: &str) -> insta::Settings {
        let mut s = insta::Settings::new();
        s.set_prepend_module_to_snapshot(false);
        s.set_omit_expression(true);
        s.set_description(description);
        s.add_redaction(
            ".**.CustomKeyStoreId",
            numbered("cks", Some(self.issued_ids.clone())),
        );
        s.add_redaction(".**.KeyId", numbered("key", None));
        s.add_dynamic_redaction(".**.Arn", |c: Content, _| {
            if c.as_str().is_some_and(|a| a.starts_with("arn:")) {
                Content::from("[arn]")
            } else {
                c
            }
        });
        let accounts = ".**.AWSAccountId, .**.VpcEndpointServiceOwner, \
            .**.XksProxyVpcEndpointServiceOwner";
        s.add_dynamic_redaction(accounts, |c: Content, _| {
            let account = c
                .as_str()
                .is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
            if account {
                Content::from("[account]")
            } else {
                c
            }
        });
        s.add_dynamic_redaction(".**.CreationDate", |c: Content, _| {
            let number = c.as_f64().is_some() || c.as_u64().is_some() || c.as_i64().is_some();
            if number { Content::from("[epoch]") } else { c }
        });
        s.add_dynamic_redaction(".steps[].request_id", |c: Content, _| {
            if c.as_str().is_some() {
                Content::from("[request-id]")
            } else {
                c
            }
        });
        s.add_dynamic_redaction(".steps[].message", |c: Content, _| {
            if c.as_str().is_some() {
                Content::from("[message]")
            } else {
                c
            }
        });
        let markers = self.issued_markers.clone();
        s.add_dynamic_redaction(".**.NextMarker, .**.Marker", move |c: Content, _| {
            if c.as_str().is_some_and(|m| markers.contains(m)) {
                Content::from("[marker]")
            } else {
                c
            }
        });
        let prefix = self.prefix.clone();
        s.add_dynamic_redaction(
            ".**.CustomKeyStoreName, .**.NewCustomKeyStoreName",
            move |c: Content, _| match c.as_str().and_then(|n| n.strip_prefix(prefix.as_str())) {
                Some(rest) if !prefix.is_empty() => Content::from(format!("[prefix]{rest}")),
                _ => c,
            },
        );
        let placeholders = self.placeholders.clone();
        s.add_dynamic_redaction(FIXTURE_MEMBERS, move |c: Content, path| match placeholders
            .get(&path.to_string())
        {
            Some(token) if c.as_str().is_some() => Content::from(token.as_str()),
            _ => c,
        });
        s.add_dynamic_redaction(".steps", |c: Content, _| pages_as_sets(c));
        s
    }

    /// The normalised transcript as the YAML text insta stores in a snapshot.
    pub fn render(&self, t: &Transcript, description: &str) -> String {
        self.settings(description)
            .bind(|| serialize_value(t, SerializationFormat::Yaml))
    }
}

/// The transcript's steps with every walk's listed stores compared as a set: a walk is a
/// listing step and the steps whose `marker_from` chains back to it; all their entries are
/// sorted and dealt back into the pages in order, each page keeping its size. Page sizes,
/// `Truncated`, `NextMarker` and every entry stay; only which page held which store (which KMS
/// does not define) is gone.
fn pages_as_sets(mut steps: Content) -> Content {
    let Content::Seq(steps_list) = steps.resolve_inner_mut() else {
        return steps;
    };
    let n = steps_list.len();
    let mut next: Vec<Option<usize>> = vec![None; n];
    let mut continues = vec![false; n];
    for (i, step) in steps_list.iter().enumerate() {
        let from = field(step, "marker_from").and_then(Content::as_u64);
        if let Some(j) = from.and_then(|f| usize::try_from(f).ok()?.checked_sub(1))
            && j < i
            && next[j].is_none()
        {
            next[j] = Some(i);
            continues[i] = true;
        }
    }
    for start in (0..n).filter(|i| !continues[*i]) {
        let walk: Vec<usize> = std::iter::successors(Some(start), |i| next[*i]).collect();
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        for &i in &walk {
            let page = listing(&mut steps_list[i])
                .map(std::mem::take)
                .unwrap_or_default();
            sizes.push(page.len());
            all.extend(page);
        }
        all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let mut dealt = all.into_iter();
        for (&i, size) in walk.iter().zip(sizes) {
            if let Some(page) = listing(&mut steps_list[i]) {
                page.extend(dealt.by_ref().take(size));
            }
        }
    }
    steps
}

/// The value of a struct's or map's field.
fn field<'a>(c: &'a Content, name: &str) -> Option<&'a Content> {
    match c.resolve_inner() {
        Content::Struct(_, fields) => fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v),
        Content::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// The `CustomKeyStores` list of a step's response, if it has one.
fn listing(step: &mut Content) -> Option<&mut Vec<Content>> {
    let Content::Struct(_, fields) = step.resolve_inner_mut() else {
        return None;
    };
    let response = fields.iter_mut().find(|(k, _)| *k == "response")?;
    let Content::Map(entries) = response.1.resolve_inner_mut() else {
        return None;
    };
    let stores = entries
        .iter_mut()
        .find(|(k, _)| k.as_str() == Some("CustomKeyStores"))?;
    match stores.1.resolve_inner_mut() {
        Content::Seq(list) => Some(list),
        _ => None,
    }
}

/// A redaction numbering strings `[TAG-1]`, `[TAG-2]`… in order of first appearance; with
/// `only`, strings outside it stay as they are.
fn numbered(tag: &'static str, only: Option<BTreeSet<String>>) -> insta::internals::Redaction {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    insta::dynamic_redaction(move |c: Content, _| {
        let Some(v) = c
            .as_str()
            .filter(|v| only.as_ref().is_none_or(|o| o.contains(*v)))
        else {
            return c;
        };
        let mut seen = seen.lock().expect("not poisoned");
        let n = match seen.iter().position(|s| s == v) {
            Some(i) => i + 1,
            None => {
                seen.push(v.to_string());
                seen.len()
            }
        };
        Content::from(format!("[{tag}-{n}]"))
    })
}

/// The members that carry fixture values or secret tokens.
const FIXTURE_MEMBERS: &str = ".**.CloudHsmClusterId, .**.TrustAnchorCertificate, \
    .**.KeyStorePassword, .**.RawSecretAccessKey, .**.AccessKeyId, \
    .**.XksProxyUriEndpoint, .**.UriEndpoint, .**.XksProxyUriPath, .**.UriPath, \
    .**.XksProxyVpcEndpointServiceName, .**.VpcEndpointServiceName, .**.XksKeyId";

fn collect(v: &serde_json::Value, key: &str, into: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                match x.as_str() {
                    Some(s) if k == key => {
                        into.insert(s.to_string());
                    }
                    _ => collect(x, key, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect(x, key, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::transcript::Entry;
    use serde_json::{Value, json};

    fn entry(op: &str, request: Value, response: Option<Value>) -> Entry {
        let mut e = Entry::new(op);
        e.request = Some(request);
        e.status = Some(200);
        e.request_id = Some(json!("8c1f0b2e-aaaa"));
        e.response = response;
        e
    }

    /// A listing of (ID, name) stores in the order given.
    fn listing(stores: &[(&str, &str)]) -> Value {
        json!({
            "CustomKeyStores": stores.iter().map(|(id, name)| json!({
                "CustomKeyStoreId": id,
                "CustomKeyStoreName": format!("run1-{name}"),
                "CreationDate": 1537582718.431,
                "CloudHsmClusterId": "cluster-healthyaaaaa",
                "ConnectionState": "DISCONNECTED",
            })).collect::<Vec<_>>(),
            "Truncated": false,
        })
    }

    fn render(t: &Transcript) -> String {
        let script = crate::scenario::script::Script {
            steps: Vec::new(),
            pinned: Vec::new(),
            roles: vec!["cluster:healthy".into()],
            origins: Vec::new(),
        };
        let f = crate::model::Fixtures::builtin();
        let placeholders = crate::scenario::placeholders::placeholders(&f, &script, t);
        Normaliser::new("run1-", placeholders, t).render(t, "d")
    }

    #[test]
    fn ids_are_numbered_by_first_appearance_and_listings_sorted() {
        let create = |name: &str, id: &str| {
            entry(
                "CreateCustomKeyStore",
                json!({"CustomKeyStoreName": format!("run1-{name}")}),
                Some(json!({"CustomKeyStoreId": id})),
            )
        };
        let describe = |stores: &[(&str, &str)]| {
            entry("DescribeCustomKeyStores", json!({}), Some(listing(stores)))
        };
        // The same run with the endpoint issuing other IDs and listing in another order
        // normalises to the same text.
        let one = Transcript {
            steps: vec![
                create("a", "cks-bbbb"),
                create("b", "cks-aaaa"),
                describe(&[("cks-aaaa", "b"), ("cks-bbbb", "a")]),
            ],
        };
        let two = Transcript {
            steps: vec![
                create("a", "cks-1111"),
                create("b", "cks-9999"),
                describe(&[("cks-1111", "a"), ("cks-9999", "b")]),
            ],
        };
        let text = render(&one);
        assert_eq!(text, render(&two));
        assert!(text.contains("CustomKeyStoreId: \"[cks-1]\""), "{text}");
        assert!(text.contains("CustomKeyStoreName: \"[prefix]a\""), "{text}");
        assert!(text.contains("[cluster:healthy]"), "{text}");
        assert!(text.contains("CreationDate: \"[epoch]\""), "{text}");
        assert!(text.contains("request_id: \"[request-id]\""), "{text}");
        for raw in [
            "cks-aaaa",
            "cks-bbbb",
            "8c1f0b2e",
            "1537582718",
            "cluster-healthyaaaaa",
        ] {
            assert!(!text.contains(raw), "{raw} leaked: {text}");
        }
    }

    #[test]
    fn the_pages_of_one_walk_compare_as_a_set_and_keep_their_sizes() {
        let create = |name: &str, id: &str| {
            entry(
                "CreateCustomKeyStore",
                json!({"CustomKeyStoreName": format!("run1-{name}")}),
                Some(json!({"CustomKeyStoreId": id})),
            )
        };
        let page = |stores: &[(&str, &str)], marker: Option<&str>, next: Option<&str>| {
            let mut body = listing(stores);
            if let Some(n) = next {
                body["NextMarker"] = json!(n);
                body["Truncated"] = json!(true);
            }
            let mut request = json!({"Limit": 1});
            if let Some(m) = marker {
                request["Marker"] = json!(m);
            }
            entry("DescribeCustomKeyStores", request, Some(body))
        };
        let run = |first: (&str, &str), second: (&str, &str)| {
            let steps = vec![
                create("a", "cks-a"),
                create("b", "cks-b"),
                page(&[first], None, Some("m1")),
                page(&[second], Some("m1"), None),
            ];
            transcript_of(steps)
        };
        // The endpoint may list either store first: the same text.
        let one = run(("cks-a", "a"), ("cks-b", "b"));
        let two = run(("cks-b", "b"), ("cks-a", "a"));
        assert_eq!(render(&one), render(&two));
        let text = render(&one);
        assert!(text.contains("marker_from: 3"), "{text}");
        assert!(text.contains("Truncated: true"), "{text}");
        // A page that lost a store is still seen, in its size.
        let short = transcript_of(vec![
            create("a", "cks-a"),
            create("b", "cks-b"),
            page(&[("cks-a", "a")], None, Some("m1")),
            page(&[], Some("m1"), None),
        ]);
        assert_ne!(render(&short), render(&one));
    }

    /// Steps as a transcript, with marker_from filled in as the builder does.
    fn transcript_of(mut steps: Vec<Entry>) -> Transcript {
        for i in 0..steps.len() {
            let marker = steps[i]
                .request
                .as_ref()
                .and_then(|r| r["Marker"].as_str().map(str::to_string));
            if let Some(m) = marker {
                steps[i].marker_from = steps[..i]
                    .iter()
                    .rposition(|e| {
                        e.response
                            .as_ref()
                            .is_some_and(|r| r["NextMarker"] == json!(m))
                    })
                    .map(|j| j + 1);
            }
        }
        Transcript { steps }
    }

    #[test]
    fn wrong_types_missing_fields_and_unissued_values_stay_visible() {
        let mut bad = listing(&[("cks-aaaa", "a")]);
        bad["CustomKeyStores"][0]["CreationDate"] = json!("2018-09-22T02:18:38Z");
        bad["NextMarker"] = json!("issued");
        let mut e = entry(
            "DescribeCustomKeyStores",
            json!({"Marker": "forged"}),
            Some(bad),
        );
        e.request_id = Some(Value::Null);
        let mut err = entry("DescribeCustomKeyStores", json!({}), None);
        err.error = Some("InvalidMarkerException".into());
        err.message = Some(json!(42));
        let t = Transcript {
            steps: vec![e, err],
        };
        let text = render(&t);
        assert!(text.contains("2018-09-22T02:18:38Z"), "{text}");
        assert!(text.contains("Marker: forged"), "{text}");
        assert!(text.contains("NextMarker: \"[marker]\""), "{text}");
        assert!(text.contains("request_id: ~"), "{text}");
        assert!(text.contains("message: 42"), "{text}");
        assert!(text.contains("InvalidMarkerException"), "{text}");
        // cks-aaaa was only listed, never in a create: it is still issued by the endpoint.
        assert!(text.contains("[cks-1]"), "{text}");
    }
}
