//! The scenario files under `specs/scenarios/`: parsing and checking them.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::spec::Spec;

include!(concat!(env!("OUT_DIR"), "/corpus.rs"));

/// One named scenario: a short fixed request script.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; the snapshot file is `<name>.snap`.
    pub name: String,
    /// One line: what the scenario shows.
    pub purpose: String,
    /// Where an expectation here is our inference rather than documented KMS behaviour.
    #[serde(default)]
    pub inferred: Option<Inference>,
    /// The steps, in order.
    pub steps: Vec<ScenarioStep>,
    /// The file the scenario came from.
    #[serde(skip)]
    pub file: String,
}

/// An expectation of a scenario that is our inference, and what it covers: a difference on
/// one of its steps and at one of its paths is unsettled; any other fails as usual.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inference {
    /// The steps it covers (1-based, as written: a repeated step covers its repetitions);
    /// empty: every step.
    #[serde(default)]
    pub steps: Vec<usize>,
    /// The paths it covers, as findings name them: a member path (`ConnectionErrorCode`,
    /// `XksProxyConfiguration.VpcEndpointServiceOwner`) or a rule (`answer`); empty: all.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Why the expectation is our inference.
    pub why: String,
}

impl std::fmt::Display for Inference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(usize::to_string).collect();
        let mut scope = Vec::new();
        if !steps.is_empty() {
            scope.push(format!("step {}", steps.join(", ")));
        }
        if !self.paths.is_empty() {
            scope.push(self.paths.join(", "));
        }
        write!(f, "[{}] {}", scope.join("; "), self.why)
    }
}

impl Scenario {
    /// The transcript steps (1-based, repetitions unrolled) of written step `step` (1-based).
    pub fn transcript_steps(&self, step: usize) -> std::ops::Range<usize> {
        let repeats = |s: &ScenarioStep| s.repeat.unwrap_or(1);
        let start: usize = self.steps.iter().take(step - 1).map(repeats).sum::<usize>() + 1;
        let n = self.steps.get(step - 1).map_or(0, repeats);
        start..start + n
    }
}

/// One step of a scenario, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    /// Operation name (absent only in a settle step).
    #[serde(default)]
    pub op: Option<String>,
    /// JSON body, or the members put over a `create` body.
    #[serde(default)]
    pub body: Option<toml::Table>,
    /// A backend role whose complete valid create body the step starts from.
    #[serde(default)]
    pub create: Option<String>,
    /// Members removed from the `create` body (`A.B` reaches into a structure).
    #[serde(default)]
    pub omit: Vec<String>,
    /// A raw body text sent as it is.
    #[serde(default)]
    pub raw: Option<String>,
    /// With `raw`: send no `X-Amz-Target` header.
    #[serde(default)]
    pub no_target: bool,
    /// With `raw`: the `Content-Type` sent instead of `application/x-amz-json-1.1`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// With `raw`: `op` is deliberately no KMS operation (a typo check otherwise refuses it).
    #[serde(default)]
    pub made_up_op: bool,
    /// Poll until this created store leaves CONNECTING/DISCONNECTING.
    #[serde(default)]
    pub settle: Option<usize>,
    /// Run the step this many times (`{n}` in strings: the repetition's index).
    #[serde(default)]
    pub repeat: Option<usize>,
    /// Keep the error message's text in the snapshot.
    #[serde(default)]
    pub pin_message: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    scenario: Vec<Scenario>,
}

impl ScenarioStep {
    /// The body as JSON (`{}` when absent).
    pub fn body_json(&self) -> Value {
        self.body
            .as_ref()
            .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// Parses one scenario file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Scenario>, String> {
    let parsed: File = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let mut out = parsed.scenario;
    for s in &mut out {
        s.file = file.to_string();
        check(s).map_err(|e| format!("{file}: scenario {:?}: {e}", s.name))?;
    }
    Ok(out)
}

/// The built-in corpus, in file order.
pub fn builtin() -> Vec<Scenario> {
    let mut all = Vec::new();
    for (file, text) in SCENARIO_FILES {
        all.extend(parse(file, text).expect("the bundled scenarios are valid"));
    }
    unique(&all).expect("the bundled scenarios have distinct names");
    all
}

/// Fails when two scenarios share a name.
pub fn unique(all: &[Scenario]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for s in all {
        if !seen.insert(s.name.as_str()) {
            return Err(format!("two scenarios are named {:?}", s.name));
        }
    }
    Ok(())
}

fn check(s: &Scenario) -> Result<(), String> {
    let name_ok = !s.name.is_empty()
        && s.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err("a name is made of a-z, 0-9 and -".into());
    }
    if s.purpose.trim().is_empty() || s.purpose.contains('\n') {
        return Err("the purpose is one non-empty line".into());
    }
    if s.steps.is_empty() {
        return Err("no steps".into());
    }
    for (i, step) in s.steps.iter().enumerate() {
        check_step(step).map_err(|e| format!("step {}: {e}", i + 1))?;
    }
    if let Some(i) = &s.inferred {
        if i.why.trim().is_empty() || i.why.contains('\n') {
            return Err("an inference says why in one non-empty line".into());
        }
        if i.steps.is_empty() && i.paths.is_empty() {
            return Err("an inference names the steps or paths it covers".into());
        }
        if let Some(n) = i.steps.iter().find(|n| **n == 0 || **n > s.steps.len()) {
            return Err(format!("the inference names step {n}, which is not there"));
        }
    }
    Ok(())
}

fn check_step(step: &ScenarioStep) -> Result<(), String> {
    if step.settle.is_some() {
        let alone = step.op.is_none()
            && step.body.is_none()
            && step.create.is_none()
            && step.raw.is_none()
            && step.omit.is_empty();
        return if alone {
            Ok(())
        } else {
            Err("a settle step has nothing else".into())
        };
    }
    let Some(op) = &step.op else {
        return Err("no op".into());
    };
    let wire = step.no_target || step.content_type.is_some() || step.made_up_op;
    if wire && step.raw.is_none() {
        return Err("no_target, content_type and made_up_op need raw".into());
    }
    let known = Spec::kms().operations.contains_key(op.as_str());
    if known == step.made_up_op {
        return Err(if known {
            format!("made_up_op, but {op:?} is a KMS operation")
        } else {
            format!("unknown operation {op:?}")
        });
    }
    if step.raw.is_some() && (step.body.is_some() || step.create.is_some()) {
        return Err("raw replaces body and create".into());
    }
    if step.create.is_some() && op != "CreateCustomKeyStore" {
        return Err("create = ROLE is for CreateCustomKeyStore".into());
    }
    if !step.omit.is_empty() && step.create.is_none() {
        return Err("omit needs create = ROLE".into());
    }
    if step.repeat == Some(0) {
        return Err("repeat = 0 runs nothing".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_parses_with_its_file() {
        let text = r#"
[[scenario]]
name = "create-one"
purpose = "one create"
steps = [
  { op = "CreateCustomKeyStore", create = "cluster:healthy", body = { CustomKeyStoreName = "$name:a" } },
  { settle = 0 },
]
"#;
        let s = parse("x.toml", text).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].file, "x.toml");
        assert_eq!(
            s[0].steps[0].body_json(),
            serde_json::json!({"CustomKeyStoreName": "$name:a"})
        );
        assert_eq!(s[0].steps[1].settle, Some(0));
    }

    #[test]
    fn malformed_scenarios_are_refused_with_the_reason() {
        let cases = [
            (
                r#"[[scenario]]
name = "Bad Name"
purpose = "p"
steps = [{ op = "DescribeCustomKeyStores" }]"#,
                "a-z",
            ),
            (
                r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "Nope" }]"#,
                "unknown operation",
            ),
            (
                r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "DescribeCustomKeyStores", create = "cluster:healthy" }]"#,
                "for CreateCustomKeyStore",
            ),
            (
                r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ settle = 0, op = "DescribeCustomKeyStores" }]"#,
                "settle",
            ),
            (
                r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "DescribeCustomKeyStores", colour = 1 }]"#,
                "unknown field",
            ),
            (
                r#"[[scenario]]
name = "x"
purpose = "p"
steps = []"#,
                "no steps",
            ),
        ];
        for (text, why) in cases {
            let e = parse("f.toml", text).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
    }

    #[test]
    fn an_inference_names_its_scope_and_maps_to_transcript_steps() {
        let text = r#"[[scenario]]
name = "x"
purpose = "p"
inferred = { steps = [3], paths = ["ConnectionErrorCode"], why = "w" }
steps = [
  { op = "CreateCustomKeyStore", create = "cluster:healthy", repeat = 2, body = { CustomKeyStoreName = "$name:q{n}" } },
  { op = "ConnectCustomKeyStore", body = { CustomKeyStoreId = "$store:0" } },
  { settle = 0 },
]"#;
        let s = parse("x.toml", text).unwrap().remove(0);
        let i = s.inferred.clone().unwrap();
        assert_eq!((i.steps.as_slice(), i.why.as_str()), (&[3][..], "w"));
        assert_eq!(i.to_string(), "[step 3; ConnectionErrorCode] w");
        assert_eq!(s.transcript_steps(1), 1..3);
        assert_eq!(s.transcript_steps(3), 4..5);
        for (scope, why) in [
            ("{ why = \"w\" }", "names the steps or paths"),
            ("{ steps = [4], why = \"w\" }", "step 4"),
            ("\"just a reason\"", "invalid type"),
        ] {
            let bad = text.replace(
                r#"{ steps = [3], paths = ["ConnectionErrorCode"], why = "w" }"#,
                scope,
            );
            let e = parse("x.toml", &bad).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
    }

    #[test]
    fn duplicate_names_are_refused() {
        let one = parse(
            "a.toml",
            r#"[[scenario]]
name = "x"
purpose = "p"
steps = [{ op = "DescribeCustomKeyStores" }]"#,
        )
        .unwrap();
        let two = [one.clone(), one].concat();
        assert!(unique(&two).unwrap_err().contains("\"x\""));
    }

    #[test]
    fn the_builtin_corpus_has_40_uniquely_named_scenarios() {
        let all = builtin();
        assert!(all.len() >= 40, "{} scenarios", all.len());
        unique(&all).unwrap();
    }
}
