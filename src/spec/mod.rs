//! The machine-readable API spec: operations, members, constraints and errors, loaded from TOML.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

/// The KMS custom key store spec bundled with the binary (`specs/kms-custom-key-stores.toml`).
pub const KMS_SPEC_TOML: &str = include_str!("../../specs/kms-custom-key-stores.toml");

/// The XKS proxy API spec bundled with the binary (`specs/xks-proxy-api.toml`).
pub const XKS_SPEC_TOML: &str = include_str!("../../specs/xks-proxy-api.toml");

/// A loaded spec: protocol facts, operations, shapes, errors and paginators.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Protocol facts (wire protocol, target prefix, signing name).
    pub service: Service,
    /// Operations by name.
    pub operations: BTreeMap<String, Operation>,
    /// Shapes by name (botocore's shape names).
    pub shapes: BTreeMap<String, Shape>,
    /// Every error an operation may return, declared or framework, by name.
    pub errors: BTreeMap<String, ErrorDef>,
    /// Paginators by operation name.
    #[serde(default)]
    pub paginators: BTreeMap<String, Paginator>,
    /// The rules a REST API's checks enforce, by ID, with their level (XKS).
    #[serde(default)]
    pub requirements: BTreeMap<String, Requirement>,
}

/// How binding a requirement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Breaking it is non-conformance.
    Must,
    /// Breaking it is a warning (a failure under `--strict`).
    Should,
}

/// One rule of the API, as the checks cite it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// MUST or SHOULD.
    pub level: Level,
    /// True when the rule is our reading, not stated by the specification.
    #[serde(default)]
    pub inferred: bool,
    /// The rule in one line.
    pub text: String,
}

/// Protocol facts of a service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Wire protocol, e.g. `awsJson1_1`.
    pub protocol: String,
    /// Prefix of the `X-Amz-Target` header, e.g. `TrentService` (none for a REST API).
    #[serde(default)]
    pub target_prefix: String,
    /// SigV4 signing name, e.g. `kms`.
    pub signing_name: String,
    /// API version string.
    pub api_version: String,
    /// Content type of requests and responses.
    pub content_type: String,
    /// The pattern of the URI path every operation URI sits under (REST APIs).
    #[serde(default)]
    pub uri_path_pattern: Option<String>,
}

/// One operation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// HTTP method (REST APIs).
    #[serde(default)]
    pub method: Option<String>,
    /// URI template under the service's URI path, e.g. `/keys/{keyId}/encrypt` (REST APIs).
    #[serde(default)]
    pub uri: Option<String>,
    /// Input structure shape name.
    pub input: String,
    /// Output structure shape name.
    pub output: String,
    /// Errors the operation declares (framework errors excluded).
    pub errors: Vec<String>,
    /// Groups of members that must not be given together.
    #[serde(default)]
    pub exclusive: Vec<ExclusiveGroup>,
    /// True when only part of the operation's members is described.
    #[serde(default)]
    pub partial: bool,
    /// Declared errors that belong to the part of a partial operation this spec does not
    /// describe: no custom key store request leads to them.
    #[serde(default)]
    pub beyond: Vec<String>,
    /// Declared errors no fixture can lead the reference to, with why (listed apart by
    /// `ckscheck run --list-rules`, left out of rule coverage).
    #[serde(default)]
    pub unreached: Vec<Unreached>,
}

/// A declared error no fixture can lead to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unreached {
    /// The error.
    pub error: String,
    /// Why no fixture leads to it.
    pub why: String,
}

/// Members of which at most one may be given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusiveGroup {
    /// The member names.
    pub members: Vec<String>,
    /// The error expected when more than one is given.
    pub error: String,
    /// True when the error type is our inference, not documented behaviour.
    #[serde(default)]
    pub inferred: bool,
}

/// The kind of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Integer,
    /// A JSON boolean.
    Boolean,
    /// A JSON number of epoch seconds.
    Timestamp,
    /// A JSON object with named members.
    Structure,
    /// A JSON array.
    List,
}

/// A reference from a structure to a member shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRef {
    /// Target shape name.
    pub shape: String,
    /// Whether the member must be present.
    #[serde(default)]
    pub required: bool,
}

/// A shape with its constraints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Kind of value.
    #[serde(rename = "type")]
    pub kind: ShapeType,
    /// Minimum length (strings, lists) or value (integers).
    pub min: Option<i64>,
    /// Maximum length (strings, lists) or value (integers).
    pub max: Option<i64>,
    /// Regular expression the whole value must match.
    pub pattern: Option<String>,
    /// Allowed values, case-sensitive.
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    /// Whether the value is a secret that must never be echoed or logged.
    #[serde(default)]
    pub sensitive: bool,
    /// `base64`: a standard-alphabet base64 string whose limits count decoded bytes.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The size (decoded bytes) every implementation must accept.
    #[serde(default)]
    pub must_accept: Option<i64>,
    /// The only sizes (decoded bytes) allowed.
    #[serde(default)]
    pub lengths: Option<Vec<i64>>,
    /// True when `enum` lists the known values but others must be accepted too.
    #[serde(default)]
    pub open: bool,
    /// Members of a structure.
    #[serde(default)]
    pub members: BTreeMap<String, MemberRef>,
    /// Element shape of a list.
    pub member: Option<String>,
    #[serde(skip)]
    compiled: OnceLock<Regex>,
}

/// Whether an error is the caller's fault (HTTP 400) or the service's (HTTP 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// HTTP 400.
    Client,
    /// HTTP 500.
    Fault,
}

/// An error type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDef {
    /// Client error or fault.
    pub class: ErrorClass,
    /// True for errors any operation may return without declaring them.
    #[serde(default)]
    pub framework: bool,
    /// The HTTP status, when it is not the class's (REST APIs).
    #[serde(default)]
    pub status: Option<u16>,
}

/// How an operation pages its results.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paginator {
    /// Request member carrying the marker.
    pub input_token: String,
    /// Response member carrying the next marker.
    pub output_token: String,
    /// Response member telling whether more results follow.
    pub more_results: String,
    /// Request member limiting the page size.
    pub limit_key: String,
    /// Response member holding the items.
    pub result_key: String,
}

/// A spec that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The TOML does not parse or does not fit the format.
    #[error("spec does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// The TOML parses but refers to something undefined or invalid.
    #[error("spec is inconsistent: {0}")]
    Invalid(String),
}

impl ErrorClass {
    /// The HTTP status this class of error is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorClass::Client => 400,
            ErrorClass::Fault => 500,
        }
    }
}

impl Shape {
    /// Whether `value` matches the whole pattern (true when there is no pattern).
    pub fn pattern_matches(&self, value: &str) -> bool {
        match &self.pattern {
            None => true,
            Some(p) => self
                .compiled
                .get_or_init(|| compile_pattern(p).expect("patterns are checked at load"))
                .is_match(value),
        }
    }
}

/// Compiles a spec pattern with whole-value (Java `matches`) semantics and ASCII `\d`.
fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    let ascii_digits = pattern.replace(r"\d", "[0-9]");
    Regex::new(&format!("^(?:{ascii_digits})$"))
}

impl Spec {
    /// Parses a spec from TOML text and checks that every reference resolves.
    pub fn from_toml(text: &str) -> Result<Spec, SpecError> {
        let spec: Spec = toml::from_str(text)?;
        spec.check()?;
        Ok(spec)
    }

    /// The bundled KMS spec, parsed once.
    pub fn kms() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| Spec::from_toml(KMS_SPEC_TOML).expect("the bundled spec is valid"))
    }

    /// The bundled XKS proxy API spec, parsed once.
    pub fn xks() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| Spec::from_toml(XKS_SPEC_TOML).expect("the bundled spec is valid"))
    }

    /// The requirement called `id`; panics on an ID the bundled spec does not have.
    pub fn requirement(&self, id: &str) -> &Requirement {
        self.requirements
            .get(id)
            .unwrap_or_else(|| panic!("no requirement {id} in the spec"))
    }

    /// The shape called `name`; panics on a name the loader did not check.
    pub fn shape(&self, name: &str) -> &Shape {
        &self.shapes[name]
    }

    /// The operation called `name`, if the spec has it.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// The shape of member `member` of structure `structure`.
    pub fn member_shape(&self, structure: &str, member: &str) -> Option<&Shape> {
        let m = self.shapes.get(structure)?.members.get(member)?;
        self.shapes.get(&m.shape)
    }

    /// The HTTP status for error `name` (400 for an error the spec does not know).
    pub fn error_status(&self, name: &str) -> u16 {
        self.errors
            .get(name)
            .map_or(400, |e| e.status.unwrap_or_else(|| e.class.status()))
    }

    /// Whether operation `op` may return error `name` (declared by it, or a framework error).
    pub fn may_return(&self, op: &str, name: &str) -> bool {
        let framework = self.errors.get(name).is_some_and(|e| e.framework);
        framework
            || self
                .operations
                .get(op)
                .is_some_and(|o| o.errors.iter().any(|e| e == name))
    }

    fn check(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        for (name, shape) in &self.shapes {
            for (member, r) in &shape.members {
                if !self.shapes.contains_key(&r.shape) {
                    return bad(format!(
                        "{name}.{member} refers to unknown shape {}",
                        r.shape
                    ));
                }
            }
            if let Some(m) = shape
                .member
                .as_ref()
                .filter(|m| !self.shapes.contains_key(*m))
            {
                return bad(format!("list {name} refers to unknown shape {m}"));
            }
            if (shape.kind == ShapeType::List) != shape.member.is_some() {
                return bad(format!(
                    "{name}: a list needs `member`, and only a list has one"
                ));
            }
            if let Some(p) = &shape.pattern
                && let Err(e) = compile_pattern(p)
            {
                return bad(format!("{name}: pattern {p:?} does not compile: {e}"));
            }
            if shape.encoding.as_deref().is_some_and(|e| e != "base64") {
                return bad(format!("{name}: the only encoding is base64"));
            }
            let sized = shape.must_accept.is_some() || shape.lengths.is_some();
            if sized && shape.encoding.is_none() {
                return bad(format!("{name}: byte sizes need encoding = \"base64\""));
            }
            if shape.open && shape.enum_values.is_none() {
                return bad(format!("{name}: `open` needs an enum"));
            }
        }
        if let Some(p) = &self.service.uri_path_pattern
            && let Err(e) = compile_pattern(p)
        {
            return bad(format!("uri_path_pattern {p:?} does not compile: {e}"));
        }
        for (name, op) in &self.operations {
            if op.uri.as_ref().is_some_and(|u| !u.starts_with('/')) {
                return bad(format!("{name}: the uri template must start with /"));
            }
            for s in [&op.input, &op.output] {
                match self.shapes.get(s) {
                    Some(shape) if shape.kind == ShapeType::Structure => {}
                    _ => return bad(format!("{name}: {s} is not a structure shape")),
                }
            }
            for e in &op.errors {
                if !self.errors.contains_key(e) {
                    return bad(format!("{name} declares unknown error {e}"));
                }
            }
            for g in &op.exclusive {
                if !self.errors.contains_key(&g.error) {
                    return bad(format!(
                        "{name}: exclusive group names unknown error {}",
                        g.error
                    ));
                }
                for m in &g.members {
                    if !self.shapes[&op.input].members.contains_key(m) {
                        return bad(format!(
                            "{name}: exclusive member {m} is not an input member"
                        ));
                    }
                }
            }
        }
        for (name, p) in &self.paginators {
            let Some(op) = self.operations.get(name) else {
                return bad(format!("paginator for unknown operation {name}"));
            };
            let (input, output) = (&self.shapes[&op.input], &self.shapes[&op.output]);
            for m in [&p.input_token, &p.limit_key] {
                if !input.members.contains_key(m) {
                    return bad(format!("paginator {name}: {m} is not an input member"));
                }
            }
            for m in [&p.output_token, &p.more_results, &p.result_key] {
                if !output.members.contains_key(m) {
                    return bad(format!("paginator {name}: {m} is not an output member"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_spec_loads_and_has_the_six_operations_and_create_key() {
        let spec = Spec::kms();
        for op in [
            "CreateCustomKeyStore",
            "DescribeCustomKeyStores",
            "ConnectCustomKeyStore",
            "DisconnectCustomKeyStore",
            "UpdateCustomKeyStore",
            "DeleteCustomKeyStore",
            "CreateKey",
        ] {
            assert!(spec.operation(op).is_some(), "{op} missing");
        }
        assert_eq!(spec.service.target_prefix, "TrentService");
        assert_eq!(spec.service.signing_name, "kms");
    }

    #[test]
    fn patterns_match_the_whole_value_with_ascii_digits() {
        let spec = Spec::kms();
        let cluster = spec.shape("CloudHsmClusterIdType");
        assert!(cluster.pattern_matches("cluster-abcdefghijk"));
        assert!(
            !cluster.pattern_matches("cluster-1a23b4cdefg"),
            "doc example breaks it"
        );
        assert!(!cluster.pattern_matches("xcluster-abcdefghijk"));
        let path = spec.shape("XksProxyUriPathType");
        assert!(path.pattern_matches("/kms/xks/v1"));
        assert!(path.pattern_matches("/a/b_c-d/kms/xks/v12"));
        assert!(
            !path.pattern_matches("/kms/xks/v\u{0661}"),
            "Arabic-Indic digit is not \\d"
        );
        let marker = spec.shape("MarkerType");
        assert!(marker.pattern_matches("abc é"));
        assert!(!marker.pattern_matches("a\u{0100}"));
    }

    #[test]
    fn inconsistent_spec_is_refused_with_the_reason() {
        let text = KMS_SPEC_TOML.replace(
            "errors = [\"CustomKeyStoreNotFoundException\", \"InvalidMarkerException\"",
            "errors = [\"NoSuchException\", \"InvalidMarkerException\"",
        );
        let err = Spec::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("NoSuchException"), "{err}");
        let unknown_key = format!("{KMS_SPEC_TOML}\n[shapes.X]\ntype = \"string\"\nmaxx = 3\n");
        assert!(Spec::from_toml(&unknown_key).is_err());
    }

    #[test]
    fn bundled_xks_spec_loads_with_uris_statuses_sizes_and_levels() {
        let spec = Spec::xks();
        assert_eq!(spec.service.signing_name, "kms-xks-proxy");
        let encrypt = spec.operation("Encrypt").unwrap();
        assert_eq!(encrypt.uri.as_deref(), Some("/keys/{keyId}/encrypt"));
        assert_eq!(encrypt.method.as_deref(), Some("POST"));
        assert_eq!(spec.error_status("AuthenticationFailedException"), 401);
        assert_eq!(spec.error_status("KeyNotFoundException"), 404);
        assert_eq!(spec.error_status("DependencyTimeoutException"), 503);
        assert_eq!(spec.shape("Plaintext").must_accept, Some(4300));
        assert_eq!(
            spec.shape("InitializationVector").lengths,
            Some(vec![12, 16])
        );
        assert!(spec.shape("KmsOperation").open);
        assert_eq!(spec.requirement("auth/skew").level, Level::Should);
        assert_eq!(spec.requirement("auth/sigv4").level, Level::Must);
        assert!(spec.requirement("crypto/iv-unique").inferred);
        let meta = spec.shape("MetadataRequestMetadata");
        assert!(!meta.members.contains_key("kmsKeyArn"), "removed in 1.0.3");
        assert!(spec.shape("CryptoRequestMetadata").members["kmsKeyArn"].required);
        assert!(!spec.may_return("GetHealthStatus", "ValidationException"));
    }

    #[test]
    fn byte_sizes_without_base64_are_refused() {
        let text = XKS_SPEC_TOML.replace(
            "[shapes.Plaintext]\ntype = \"string\"\nencoding = \"base64\"",
            "[shapes.Plaintext]\ntype = \"string\"",
        );
        let err = Spec::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("Plaintext"), "{err}");
    }

    #[test]
    fn error_classes_give_400_and_500() {
        let spec = Spec::kms();
        assert_eq!(spec.error_status("KMSInternalException"), 500);
        assert_eq!(spec.error_status("CustomKeyStoreNotFoundException"), 400);
        assert!(spec.may_return("DescribeCustomKeyStores", "ValidationException"));
        assert!(spec.may_return("DescribeCustomKeyStores", "InvalidMarkerException"));
        assert!(!spec.may_return("DescribeCustomKeyStores", "CustomKeyStoreHasCMKsException"));
    }
}
