//! Values read off the spec: valid ones that span each member's whole allowed space (lengths at
//! both bounds and between, every alternative of a pattern, every enum value, multi-byte
//! characters), and invalid ones that break exactly one named rule.
//!
//! Limits, patterns and enum values all come from [`Spec::kms`]; only the structure of each
//! pattern (which literal parts and character classes it is made of) is written by hand, and
//! the tests hold those templates to the spec's own regular expressions.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use rand::{RngExt, SeedableRng, rngs::SmallRng};
use serde_json::{Map, Value, json};

use crate::spec::{Shape, ShapeType, Spec};

/// The error a constraint violation calls for.
pub const VALIDATION: &str = "ValidationException";
/// The error a body of the wrong JSON shape calls for.
pub const SERIALIZATION: &str = "SerializationException";
/// The error a well-formed marker that the endpoint never issued calls for.
pub const INVALID_MARKER: &str = "InvalidMarkerException";

/// The name shape: store names are the one member the run prefixes.
const NAME_SHAPE: &str = "CustomKeyStoreNameType";

/// A rule a member value can break, as named in rule ids (`Member/rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Shorter than the shape's `min`.
    LengthMin,
    /// Longer than the shape's `max`.
    LengthMax,
    /// Does not match the shape's pattern.
    Pattern,
    /// Not one of the shape's enum values (case-sensitive).
    Enum,
    /// An integer below `min`.
    RangeMin,
    /// An integer above `max`.
    RangeMax,
    /// A JSON value of the wrong type (a number for a string, an object for a string...).
    JsonType,
    /// A required member left out.
    Required,
}

impl Rule {
    /// The rule's suffix in a rule id, e.g. `length-max`.
    pub fn suffix(self) -> &'static str {
        match self {
            Rule::LengthMin => "length-min",
            Rule::LengthMax => "length-max",
            Rule::Pattern => "pattern",
            Rule::Enum => "enum",
            Rule::RangeMin => "range-min",
            Rule::RangeMax => "range-max",
            Rule::JsonType => "json-type",
            Rule::Required => "required",
        }
    }

    /// The error breaking this rule calls for.
    pub fn error(self) -> &'static str {
        match self {
            Rule::JsonType => SERIALIZATION,
            _ => VALIDATION,
        }
    }

    /// The rule id for a member path, e.g. `CustomKeyStoreName/length-max`.
    pub fn id(self, member: &str) -> String {
        format!("{member}/{}", self.suffix())
    }
}

// ---------------------------------------------------------------------------------------------
// Pattern templates
// ---------------------------------------------------------------------------------------------

/// A piece of a pattern: literal text, or a run of characters from one class.
#[derive(Debug, Clone)]
enum Piece {
    Lit(&'static str),
    Run {
        chars: Arc<Vec<char>>,
        min: usize,
        max: usize,
    },
}

/// One alternative of a pattern, as a sequence of pieces.
#[derive(Debug, Clone)]
struct Template(Vec<Piece>);

const UNBOUNDED: usize = usize::MAX;

impl Template {
    fn min_len(&self) -> usize {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => s.chars().count(),
                Piece::Run { min, .. } => *min,
            })
            .sum()
    }

    fn max_len(&self) -> usize {
        self.0.iter().fold(0usize, |acc, p| {
            acc.saturating_add(match p {
                Piece::Lit(s) => s.chars().count(),
                Piece::Run { max, .. } => *max,
            })
        })
    }

    /// Strings of this template with exactly `len` characters (`len` within its bounds).
    fn exactly(&self, len: usize) -> BoxedStrategy<String> {
        let pieces = self.0.clone();
        let runs: Vec<(usize, usize)> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Run { min, max, .. } => Some((*min, *max)),
                Piece::Lit(_) => None,
            })
            .collect();
        let free = len - self.min_len();
        prop::collection::vec(0u32..16, runs.len())
            .prop_flat_map(move |weights| {
                let lengths = allocate(free, &runs, &weights);
                let mut lengths = lengths.into_iter();
                let parts: Vec<BoxedStrategy<String>> = pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Lit(s) => Just(s.to_string()).boxed(),
                        Piece::Run { chars, .. } => {
                            let n = lengths.next().expect("one length per run");
                            run_of(chars.clone(), n)
                        }
                    })
                    .collect();
                parts.prop_map(|ps| ps.concat())
            })
            .boxed()
    }
}

/// `n` characters drawn uniformly from `pool`. One seed per run rather than one value tree per
/// character: names run to 256 characters and cases draw many, and shrinking a sequence is
/// about its steps, not the letters of a name (lengths still shrink).
fn run_of(pool: Arc<Vec<char>>, n: usize) -> BoxedStrategy<String> {
    if pool.is_empty() || n == 0 {
        return Just(String::new()).boxed();
    }
    any::<u64>()
        .prop_map(move |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..n)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect()
        })
        .boxed()
}

/// Shares `free` extra characters among runs of given (min, max), in proportion to `weights`.
fn allocate(free: usize, runs: &[(usize, usize)], weights: &[u32]) -> Vec<usize> {
    let caps: Vec<usize> = runs.iter().map(|(lo, hi)| hi.saturating_sub(*lo)).collect();
    let total: u64 = weights
        .iter()
        .map(|w| u64::from(*w) + 1)
        .sum::<u64>()
        .max(1);
    let mut extra: Vec<usize> = caps
        .iter()
        .zip(weights)
        .map(|(cap, w)| {
            let share = (free as u64 * (u64::from(*w) + 1) / total) as usize;
            share.min(*cap)
        })
        .collect();
    let mut left = free - extra.iter().sum::<usize>();
    for (e, cap) in extra.iter_mut().zip(&caps) {
        let more = left.min(cap - *e);
        *e += more;
        left -= more;
    }
    debug_assert_eq!(left, 0, "the length is within the template's bounds");
    runs.iter().zip(extra).map(|((lo, _), e)| lo + e).collect()
}

fn class(ranges: &[(char, char)], extra: &str) -> Arc<Vec<char>> {
    let mut chars: Vec<char> = ranges.iter().flat_map(|(a, b)| *a..=*b).collect();
    chars.extend(extra.chars());
    Arc::new(chars)
}

fn run(chars: &Arc<Vec<char>>, min: usize, max: usize) -> Piece {
    Piece::Run {
        chars: chars.clone(),
        min,
        max,
    }
}

/// Characters of members without a pattern: printable ASCII and multi-byte characters of
/// two, three and four UTF-8 bytes (each counts as one character).
fn free_text() -> Arc<Vec<char>> {
    class(&[(' ', '~')], "éßñÿΩжשع日本語한€✓🔑🗝😀𝄞")
}

/// The templates of a pattern shape, by shape name; None for shapes without one.
fn templates(shape_name: &str, shape: &Shape) -> Option<Vec<Template>> {
    let digit = class(&[('0', '9')], "");
    let lower = class(&[('a', 'z')], "");
    let t = |pieces: Vec<Piece>| Template(pieces);
    if shape.pattern.is_none() {
        return Some(vec![t(vec![run(&free_text(), 0, UNBOUNDED)])]);
    }
    Some(match shape_name {
        "CloudHsmClusterIdType" => vec![t(vec![
            Piece::Lit("cluster-"),
            run(&class(&[('2', '7'), ('a', 'z'), ('A', 'Z')], ""), 11, 16),
        ])],
        "XksProxyUriEndpointType" => vec![t(vec![
            Piece::Lit("https://"),
            run(
                &class(&[('a', 'z'), ('A', 'Z'), ('0', '9')], ".-"),
                1,
                UNBOUNDED,
            ),
        ])],
        "XksProxyUriPathType" => vec![
            t(vec![
                Piece::Lit("/"),
                run(
                    &class(&[('a', 'z'), ('A', 'Z'), ('0', '9')], "/_-"),
                    1,
                    UNBOUNDED,
                ),
                Piece::Lit("/kms/xks/v"),
                run(&digit, 1, 2),
            ]),
            t(vec![Piece::Lit("/kms/xks/v"), run(&digit, 1, 2)]),
        ],
        "XksProxyVpcEndpointServiceNameType" => {
            let mut alts = Vec::new();
            for head in ["com.amazonaws.vpce.", "eu.amazonaws.vpce."] {
                for segments in [2, 3] {
                    let mut pieces = vec![Piece::Lit(head)];
                    for _ in 0..segments {
                        pieces.push(run(&lower, 1, UNBOUNDED));
                        pieces.push(Piece::Lit("-"));
                    }
                    pieces.push(run(&digit, 1, UNBOUNDED));
                    pieces.push(Piece::Lit(".vpce-svc-"));
                    pieces.push(run(&class(&[('0', '9'), ('a', 'z')], ""), 1, UNBOUNDED));
                    alts.push(t(pieces));
                }
            }
            alts
        }
        "AccountIdType" => vec![t(vec![run(&digit, 12, 12)])],
        "XksProxyAuthenticationAccessKeyIdType" => vec![t(vec![run(
            &class(&[('A', 'Z'), ('2', '7')], ""),
            1,
            UNBOUNDED,
        )])],
        "XksProxyAuthenticationRawSecretAccessKeyType" => vec![t(vec![run(
            &class(&[('a', 'z'), ('A', 'Z'), ('0', '9')], "/+="),
            1,
            UNBOUNDED,
        )])],
        "XksKeyIdType" => vec![t(vec![run(
            &class(&[('a', 'z'), ('A', 'Z'), ('0', '9')], "-_."),
            1,
            UNBOUNDED,
        )])],
        "MarkerType" => vec![t(vec![run(
            &class(&[(' ', '~'), ('\u{a0}', '\u{ff}')], ""),
            0,
            UNBOUNDED,
        )])],
        _ => return None,
    })
}

/// A length in `lo..=hi`, often at or next to the bounds.
fn length_in(lo: usize, hi: usize) -> BoxedStrategy<usize> {
    debug_assert!(lo <= hi);
    let mut options: Vec<(u32, BoxedStrategy<usize>)> = vec![
        (3, Just(lo).boxed()),
        (3, Just(hi).boxed()),
        (4, (lo..=hi).boxed()),
    ];
    if lo < hi {
        options.push((1, Just(lo + 1).boxed()));
        options.push((1, Just(hi - 1).boxed()));
    }
    Union::new_weighted(options).boxed()
}

/// Strings of the shape's pattern (all alternatives) with a length in `lo..=hi`; None when no
/// alternative reaches that range.
fn patterned(shape_name: &str, lo: usize, hi: usize) -> Option<BoxedStrategy<String>> {
    let shape = Spec::kms().shape(shape_name);
    let Some(alts) = templates(shape_name, shape) else {
        return regex_fallback(shape, lo, hi);
    };
    let options: Vec<BoxedStrategy<String>> = alts
        .into_iter()
        .filter_map(|alt| {
            let (a, b) = (lo.max(alt.min_len()), hi.min(alt.max_len()));
            (a <= b).then(|| {
                length_in(a, b)
                    .prop_flat_map(move |n| alt.exactly(n))
                    .boxed()
            })
        })
        .collect();
    (!options.is_empty()).then(|| Union::new(options).boxed())
}

/// proptest's regex strategy for a pattern no template describes (anchors removed).
fn regex_fallback(shape: &Shape, lo: usize, hi: usize) -> Option<BoxedStrategy<String>> {
    let pattern = shape.pattern.as_deref()?.replace(['^', '$'], "");
    let strategy = proptest::string::string_regex(&pattern).ok()?;
    Some(
        strategy
            .prop_filter("length within bounds", move |s| {
                (lo..=hi).contains(&s.chars().count())
            })
            .boxed(),
    )
}

/// The shape name of a member of an operation's input, by path (nested members too).
///
/// Panics on a member the input does not have.
pub fn input_member_shape(operation: &str, path: &[&str]) -> String {
    let spec = Spec::kms();
    let mut shape = spec.operations[operation].input.clone();
    for m in path {
        shape = spec.shape(&shape).members[*m].shape.clone();
    }
    shape
}

fn bounds(shape: &Shape) -> (usize, usize) {
    let lo = shape.min.unwrap_or(0).max(0) as usize;
    let hi = shape.max.map_or(UNBOUNDED, |m| m.max(0) as usize);
    (lo, hi)
}

/// How far past `max` too-long values go.
fn overshoot(max: usize) -> usize {
    max.saturating_add((max / 4).max(8))
}

// ---------------------------------------------------------------------------------------------
// Valid values
// ---------------------------------------------------------------------------------------------

/// Valid strings of a string shape: every enum value, or every pattern alternative with
/// lengths at both bounds and between.
///
/// Panics if the shape is not a string shape or admits no value.
pub fn valid_string(shape_name: &str) -> BoxedStrategy<String> {
    let shape = Spec::kms().shape(shape_name);
    assert_eq!(
        shape.kind,
        ShapeType::String,
        "{shape_name} is not a string"
    );
    if let Some(values) = &shape.enum_values {
        return select(values.clone()).boxed();
    }
    let lo = shape.min.unwrap_or(0).max(0) as usize;
    let hi = shape.max.map_or(lo.max(64), |m| m.max(0) as usize);
    patterned(shape_name, lo, hi)
        .unwrap_or_else(|| panic!("{shape_name} admits no value of length {lo}..={hi}"))
}

/// Valid integers of an integer shape, often at the bounds.
pub fn valid_integer(shape_name: &str) -> BoxedStrategy<i64> {
    let shape = Spec::kms().shape(shape_name);
    assert_eq!(
        shape.kind,
        ShapeType::Integer,
        "{shape_name} is not an integer"
    );
    let lo = shape.min.unwrap_or(i64::from(i32::MIN));
    let hi = shape.max.unwrap_or(i64::from(i32::MAX));
    let mut options: Vec<(u32, BoxedStrategy<i64>)> = vec![
        (3, Just(lo).boxed()),
        (3, Just(hi).boxed()),
        (4, (lo..=hi).boxed()),
    ];
    if lo < hi {
        options.push((1, Just(lo + 1).boxed()));
        options.push((1, Just(hi - 1).boxed()));
    }
    Union::new_weighted(options).boxed()
}

/// A valid JSON value of any shape (structures with their required members and some optional
/// ones, lists of a few elements).
pub fn valid_value(shape_name: &str) -> BoxedStrategy<Value> {
    let spec = Spec::kms();
    let shape = spec.shape(shape_name);
    match shape.kind {
        ShapeType::String => valid_string(shape_name).prop_map(Value::from).boxed(),
        ShapeType::Integer => valid_integer(shape_name).prop_map(Value::from).boxed(),
        ShapeType::Boolean => any::<bool>().prop_map(Value::from).boxed(),
        ShapeType::Timestamp => (0u32..2_000_000_000)
            .prop_map(|s| json!(f64::from(s) + 0.125))
            .boxed(),
        ShapeType::List => {
            let element = shape.member.clone().unwrap_or_default();
            prop::collection::vec(valid_value(&element), 0..3)
                .prop_map(Value::Array)
                .boxed()
        }
        ShapeType::Structure => {
            let members: Vec<(String, bool, BoxedStrategy<Value>)> = shape
                .members
                .iter()
                .map(|(name, m)| (name.clone(), m.required, valid_value(&m.shape)))
                .collect();
            let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = members
                .into_iter()
                .map(|(name, required, values)| {
                    let keep = if required {
                        Just(true).boxed()
                    } else {
                        any::<bool>().boxed()
                    };
                    (keep, values)
                        .prop_map(move |(keep, v)| keep.then(|| (name.clone(), v)))
                        .boxed()
                })
                .collect();
            parts
                .prop_map(|ms| Value::Object(ms.into_iter().flatten().collect::<Map<_, _>>()))
                .boxed()
        }
    }
}

/// The lengths (in characters) the part after the prefix of a valid store name may have.
pub fn name_rest_bounds(prefix_len: usize) -> (usize, usize) {
    let (lo, hi) = bounds(Spec::kms().shape(NAME_SHAPE));
    assert!(
        prefix_len < hi,
        "a name prefix of {prefix_len} characters leaves no room for names of at most {hi}"
    );
    (lo.saturating_sub(prefix_len), hi - prefix_len)
}

/// The part after the run's prefix of a valid store name (multi-byte characters included), so
/// that prefix + rest stays within the name's length limits.
pub fn name_rest(prefix_len: usize) -> BoxedStrategy<String> {
    let (lo, hi) = name_rest_bounds(prefix_len);
    patterned(NAME_SHAPE, lo, hi).expect("names have no pattern")
}

/// A valid store name as a `$name:` reference.
pub fn name_ref(prefix_len: usize) -> BoxedStrategy<String> {
    name_rest(prefix_len)
        .prop_map(|rest| format!("{}{rest}", super::NAME_REF))
        .boxed()
}

/// `count` distinct name rests.
pub fn distinct_name_rests(prefix_len: usize, count: usize) -> BoxedStrategy<Vec<String>> {
    prop::collection::btree_set(name_rest(prefix_len), count)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
        .boxed()
}

/// A valid store ID that no endpoint issued: usually KMS's own format (`cks-` + 17 hex
/// digits), sometimes any text the ID's length limits allow.
pub fn unknown_store_id() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(select(class(&[('0', '9'), ('a', 'f')], "").to_vec()), 17)
            .prop_map(|hex| format!("cks-{}", hex.into_iter().collect::<String>())),
        1 => valid_string("CustomKeyStoreIdType").prop_filter(
            "not a reference",
            |s| !s.starts_with(super::STORE_REF) && !s.starts_with(super::NAME_REF),
        ),
    ]
    .boxed()
}

/// A marker that satisfies the Marker shape but that no endpoint issued.
pub fn unissued_marker() -> BoxedStrategy<String> {
    valid_string("MarkerType")
}

// ---------------------------------------------------------------------------------------------
// Checking values against the spec
// ---------------------------------------------------------------------------------------------

/// The rules a value of a member breaks, checked with the spec's own limits, pattern and
/// enum. A value of the wrong JSON type breaks only [`Rule::JsonType`]. A structure's members
/// are not looked into (see [`violations`]).
pub fn broken_rules(shape_name: &str, value: &Value) -> Vec<Rule> {
    let shape = Spec::kms().shape(shape_name);
    let fits = match shape.kind {
        ShapeType::String => value.is_string(),
        ShapeType::Integer => value.is_i64() || value.is_u64(),
        ShapeType::Boolean => value.is_boolean(),
        ShapeType::Timestamp => value.is_number(),
        ShapeType::Structure => value.is_object(),
        ShapeType::List => value.is_array(),
    };
    if !fits {
        return vec![Rule::JsonType];
    }
    let mut rules = Vec::new();
    match value {
        Value::String(s) => {
            let len = s.chars().count() as i64;
            if shape.min.is_some_and(|m| len < m) {
                rules.push(Rule::LengthMin);
            }
            if shape.max.is_some_and(|m| len > m) {
                rules.push(Rule::LengthMax);
            }
            if !shape.pattern_matches(s) {
                rules.push(Rule::Pattern);
            }
            if shape
                .enum_values
                .as_ref()
                .is_some_and(|vs| !vs.iter().any(|v| v == s))
            {
                rules.push(Rule::Enum);
            }
        }
        Value::Number(n) if shape.kind == ShapeType::Integer => {
            let v = n.as_i64().unwrap_or(i64::MAX);
            if shape.min.is_some_and(|m| v < m) {
                rules.push(Rule::RangeMin);
            }
            if shape.max.is_some_and(|m| v > m) {
                rules.push(Rule::RangeMax);
            }
        }
        _ => {}
    }
    rules
}

/// Every rule id a request body breaks: members of the wrong type, constraint violations and
/// missing required members, looked for recursively; members the shape does not have are
/// ignored. Rule ids name members by their path (`XksProxyAuthenticationCredential.AccessKeyId`).
pub fn violations(structure: &str, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_violations(structure, body, "", &mut out);
    out
}

fn collect_violations(shape_name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let spec = Spec::kms();
    let shape = spec.shape(shape_name);
    let Value::Object(map) = value else {
        return;
    };
    for (name, member) in &shape.members {
        let member_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match map.get(name) {
            None | Some(Value::Null) => {
                if member.required {
                    out.push(Rule::Required.id(&member_path));
                }
            }
            Some(v) => {
                let rules = broken_rules(&member.shape, v);
                out.extend(rules.iter().map(|r| r.id(&member_path)));
                if rules.is_empty() && spec.shape(&member.shape).kind == ShapeType::Structure {
                    collect_violations(&member.shape, v, &member_path, out);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invalid values
// ---------------------------------------------------------------------------------------------

/// The rules a value of this shape can break on its own (without breaking another): the
/// length bounds only where the pattern allows a string of that length, and always the JSON
/// type.
pub fn breakable(shape_name: &str) -> Vec<Rule> {
    let shape = Spec::kms().shape(shape_name);
    let mut rules = Vec::new();
    match shape.kind {
        ShapeType::String if shape.enum_values.is_some() => rules.push(Rule::Enum),
        ShapeType::String => {
            let (lo, hi) = bounds(shape);
            if lo > 0 && patterned(shape_name, 0, lo - 1).is_some() {
                rules.push(Rule::LengthMin);
            }
            if hi != UNBOUNDED && patterned(shape_name, hi + 1, overshoot(hi)).is_some() {
                rules.push(Rule::LengthMax);
            }
            if shape.pattern.is_some() {
                rules.push(Rule::Pattern);
            }
        }
        ShapeType::Integer => {
            if shape.min.is_some_and(|m| m > i64::from(i32::MIN)) {
                rules.push(Rule::RangeMin);
            }
            if shape.max.is_some_and(|m| m < i64::from(i32::MAX)) {
                rules.push(Rule::RangeMax);
            }
        }
        _ => {}
    }
    rules.push(Rule::JsonType);
    rules
}

/// Values of this shape that break `rule` and no other rule.
///
/// Panics if the rule is not in [`breakable`] for the shape.
pub fn broken(shape_name: &str, rule: Rule) -> BoxedStrategy<Value> {
    let shape = Spec::kms().shape(shape_name);
    let name = shape_name.to_string();
    let only = move |v: &Value| broken_rules(&name, v) == [rule];
    let (lo, hi) = bounds(shape);
    let strategy: BoxedStrategy<Value> = match rule {
        Rule::LengthMin => patterned(shape_name, 0, lo.saturating_sub(1))
            .filter(|_| lo > 0)
            .expect("LengthMin is breakable")
            .prop_map(Value::from)
            .boxed(),
        Rule::LengthMax => patterned(shape_name, hi.saturating_add(1), overshoot(hi))
            .expect("LengthMax is breakable")
            .prop_map(Value::from)
            .boxed(),
        Rule::Pattern => pattern_breaker(shape_name),
        Rule::Enum => enum_breaker(shape),
        Rule::RangeMin => {
            let min = shape.min.expect("RangeMin needs a min");
            prop_oneof![
                4 => Just(min - 1),
                1 => Just(i64::from(i32::MIN)),
                2 => i64::from(i32::MIN)..min,
            ]
            .prop_map(Value::from)
            .boxed()
        }
        Rule::RangeMax => {
            let max = shape.max.expect("RangeMax needs a max");
            prop_oneof![
                4 => Just(max + 1),
                1 => Just(i64::from(i32::MAX)),
                2 => (max + 1)..=i64::from(i32::MAX),
            ]
            .prop_map(Value::from)
            .boxed()
        }
        Rule::JsonType => wrong_type(shape_name),
        Rule::Required => panic!("Required is broken by leaving a member out"),
    };
    strategy
        .prop_filter("breaks exactly the named rule", only)
        .boxed()
}

/// Strings of a valid length that break the pattern: a valid value with one character
/// replaced, or one of the documentation's own examples that break it.
fn pattern_breaker(shape_name: &str) -> BoxedStrategy<Value> {
    let pool: Vec<char> = "0189_/.-: !~@\"\\\téÿ\u{100}日🔑AZaz".chars().collect();
    let name = shape_name.to_string();
    let traps: Vec<Value> = doc_traps(shape_name)
        .iter()
        .map(|t| Value::from(*t))
        .filter(|v| broken_rules(&name, v) == [Rule::Pattern])
        .collect();
    let mutated = valid_string(shape_name)
        .prop_filter("not empty", |s| !s.is_empty())
        .prop_flat_map(move |s| {
            let n = s.chars().count();
            (Just(s), 0..n, select(pool.clone()))
        })
        .prop_map(|(s, at, c)| {
            let out: String = s
                .chars()
                .enumerate()
                .map(|(i, x)| if i == at { c } else { x })
                .collect();
            Value::from(out)
        })
        .boxed();
    if traps.is_empty() {
        mutated
    } else {
        prop_oneof![4 => mutated, 1 => select(traps)].boxed()
    }
}

/// Examples from the KMS documentation that break the model's own patterns.
fn doc_traps(shape_name: &str) -> &'static [&'static str] {
    match shape_name {
        "CloudHsmClusterIdType" => &["cluster-1a23b4cdefg"],
        "XksProxyAuthenticationAccessKeyIdType" => &["ABCDE12345670EXAMPLE"],
        "XksProxyUriEndpointType" => &["https://myproxy.xks.example.com:443"],
        _ => &[],
    }
}

/// Strings that are not enum values: a value in the wrong case, with something added or
/// missing, or another word.
fn enum_breaker(shape: &Shape) -> BoxedStrategy<Value> {
    let values = shape.enum_values.clone().expect("an enum shape");
    let mut near: Vec<String> = Vec::new();
    for v in &values {
        near.push(v.to_lowercase());
        let mut cs = v.chars();
        if let Some(first) = cs.next() {
            near.push(first.to_string() + &cs.as_str().to_lowercase());
        }
        near.push(format!("{v}_"));
        near.push(format!(" {v}"));
        near.push(v[..v.len() - 1].to_string());
    }
    near.push(String::new());
    near.retain(|n| !values.contains(n));
    prop_oneof![
        3 => select(near),
        1 => "[A-Z_]{1,24}",
    ]
    .prop_map(Value::from)
    .boxed()
}

/// JSON values of another type than the shape's: numbers, booleans, objects and arrays for
/// strings; strings (of a valid number), booleans, objects and arrays for integers.
fn wrong_type(shape_name: &str) -> BoxedStrategy<Value> {
    let shape = Spec::kms().shape(shape_name);
    let number = any::<i32>().prop_map(Value::from).boxed();
    let boolean = any::<bool>().prop_map(Value::from).boxed();
    let text = "[a-zA-Z0-9]{1,12}".prop_map(Value::from).boxed();
    match shape.kind {
        ShapeType::String => {
            let inner = valid_string(shape_name);
            prop_oneof![
                number,
                boolean,
                inner.clone().prop_map(|s| json!({ "value": s })),
                inner.prop_map(|s| json!([s])),
            ]
            .boxed()
        }
        ShapeType::Integer => prop_oneof![
            valid_integer(shape_name).prop_map(|n| Value::from(n.to_string())),
            boolean,
            valid_integer(shape_name).prop_map(|n| json!({ "value": n })),
            valid_integer(shape_name).prop_map(|n| json!([n])),
        ]
        .boxed(),
        ShapeType::Boolean => prop_oneof![text, number].boxed(),
        ShapeType::Structure => prop_oneof![
            text,
            number,
            valid_value(shape_name).prop_map(|v| json!([v])),
        ]
        .boxed(),
        ShapeType::List | ShapeType::Timestamp => prop_oneof![text, boolean].boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn sample<T: std::fmt::Debug>(s: &BoxedStrategy<T>, runner: &mut TestRunner) -> T {
        s.new_tree(runner).expect("generates").current()
    }

    /// Every string and integer shape the spec has.
    fn scalar_shapes() -> Vec<&'static str> {
        Spec::kms()
            .shapes
            .iter()
            .filter(|(_, s)| matches!(s.kind, ShapeType::String | ShapeType::Integer))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    #[test]
    fn valid_values_satisfy_the_spec_and_reach_both_length_bounds() {
        let spec = Spec::kms();
        let mut runner = TestRunner::deterministic();
        for name in scalar_shapes() {
            let shape = spec.shape(name);
            let strategy = valid_value(name);
            let mut lengths = std::collections::BTreeSet::new();
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let v = sample(&strategy, &mut runner);
                assert_eq!(broken_rules(name, &v), [], "{name}: {v}");
                if let Some(s) = v.as_str() {
                    lengths.insert(s.chars().count());
                    seen.insert(s.to_string());
                } else {
                    lengths.insert(v.as_i64().unwrap() as usize);
                }
            }
            if let Some(values) = &shape.enum_values {
                for e in values {
                    assert!(seen.contains(e), "{name}: enum value {e} never generated");
                }
                continue;
            }
            // The lowest and highest lengths (values) the pattern allows within the limits.
            let (lo, hi) = bounds(shape);
            let reachable: Vec<usize> = match templates(name, shape) {
                Some(alts) if shape.kind == ShapeType::String => alts
                    .iter()
                    .flat_map(|a| [lo.max(a.min_len()), hi.min(a.max_len())])
                    .collect(),
                _ => vec![lo, hi],
            };
            let (want_lo, want_hi) = (
                *reachable.iter().min().unwrap(),
                *reachable.iter().max().unwrap(),
            );
            assert!(lengths.contains(&want_lo), "{name}: never {want_lo} long");
            assert!(lengths.contains(&want_hi), "{name}: never {want_hi} long");
            if want_hi > want_lo + 1 {
                assert!(
                    lengths.iter().any(|l| (want_lo + 1..want_hi).contains(l)),
                    "{name}: nothing between the bounds"
                );
            }
        }
    }

    #[test]
    fn every_pattern_alternative_is_generated() {
        let mut runner = TestRunner::deterministic();
        let paths: Vec<String> = (0..300)
            .map(|_| sample(&valid_string("XksProxyUriPathType"), &mut runner))
            .collect();
        assert!(paths.iter().any(|p| p.starts_with("/kms/xks/v")));
        assert!(paths.iter().any(|p| !p.starts_with("/kms/xks/v")));
        let vpc: Vec<String> = (0..300)
            .map(|_| {
                sample(
                    &valid_string("XksProxyVpcEndpointServiceNameType"),
                    &mut runner,
                )
            })
            .collect();
        for head in ["com.", "eu."] {
            assert!(vpc.iter().any(|v| v.starts_with(head)), "no {head}");
        }
        let segments = |v: &String| v.split('.').nth(3).unwrap().matches('-').count();
        assert!(vpc.iter().any(|v| segments(v) == 2));
        assert!(vpc.iter().any(|v| segments(v) == 3));
    }

    #[test]
    fn names_stay_within_the_limit_after_the_prefix_and_use_multibyte_characters() {
        let spec = Spec::kms();
        let name = spec.shape(NAME_SHAPE);
        let mut runner = TestRunner::deterministic();
        for prefix_len in [0usize, 1, 18, 40, 255] {
            let s = name_ref(prefix_len);
            let mut multibyte = false;
            let mut at_max = false;
            for _ in 0..300 {
                let r = sample(&s, &mut runner);
                let rest = r.strip_prefix(crate::generate::NAME_REF).unwrap();
                let total = prefix_len + rest.chars().count();
                assert!(total as i64 >= name.min.unwrap(), "{prefix_len}: {r}");
                assert!(total as i64 <= name.max.unwrap(), "{prefix_len}: {r}");
                multibyte |= rest.len() > rest.chars().count();
                at_max |= total as i64 == name.max.unwrap();
            }
            assert!(at_max, "prefix {prefix_len}: never the longest name");
            if prefix_len < 200 {
                assert!(multibyte, "prefix {prefix_len}: no multi-byte character");
            }
        }
    }

    #[test]
    fn each_invalid_value_breaks_exactly_the_named_rule() {
        let mut runner = TestRunner::deterministic();
        let mut rules = std::collections::BTreeSet::new();
        for name in scalar_shapes() {
            for rule in breakable(name) {
                rules.insert(rule);
                let s = broken(name, rule);
                for _ in 0..60 {
                    let v = sample(&s, &mut runner);
                    assert_eq!(broken_rules(name, &v), [rule], "{name} {rule:?}: {v}");
                }
            }
        }
        for r in [
            Rule::LengthMin,
            Rule::LengthMax,
            Rule::Pattern,
            Rule::Enum,
            Rule::RangeMin,
            Rule::RangeMax,
            Rule::JsonType,
        ] {
            assert!(rules.contains(&r), "{r:?} is never breakable");
        }
    }

    #[test]
    fn breakable_rules_follow_what_the_pattern_allows() {
        // Cluster IDs: the pattern fixes the length bounds, so only the pattern can break.
        let cluster = breakable("CloudHsmClusterIdType");
        assert!(cluster.contains(&Rule::Pattern));
        assert!(!cluster.contains(&Rule::LengthMin) && !cluster.contains(&Rule::LengthMax));
        let name = breakable(NAME_SHAPE);
        assert_eq!(name, [Rule::LengthMin, Rule::LengthMax, Rule::JsonType]);
        let limit = breakable("LimitType");
        assert_eq!(limit, [Rule::RangeMin, Rule::RangeMax, Rule::JsonType]);
        assert_eq!(
            breakable("CustomKeyStoreType"),
            [Rule::Enum, Rule::JsonType]
        );
        // An empty name breaks the minimum length; a name of max + 1 characters the maximum.
        let max = Spec::kms().shape(NAME_SHAPE).max.unwrap() as usize;
        assert_eq!(broken_rules(NAME_SHAPE, &json!("")), [Rule::LengthMin]);
        assert_eq!(
            broken_rules(NAME_SHAPE, &json!("é".repeat(max + 1))),
            [Rule::LengthMax]
        );
        assert_eq!(broken_rules(NAME_SHAPE, &json!("é".repeat(max))), []);
    }

    #[test]
    fn the_checker_finds_what_the_model_rejects() {
        // The checker and the model's validation agree on a few hand-made bodies.
        let v = violations(
            "DescribeCustomKeyStoresRequest",
            &json!({"Limit": 0, "Marker": ""}),
        );
        assert_eq!(v, ["Limit/range-min", "Marker/length-min"]);
        let v = violations(
            "CreateCustomKeyStoreRequest",
            &json!({"XksProxyAuthenticationCredential": {"AccessKeyId": 5}}),
        );
        assert_eq!(
            v,
            [
                "CustomKeyStoreName/required",
                "XksProxyAuthenticationCredential.AccessKeyId/json-type",
                "XksProxyAuthenticationCredential.RawSecretAccessKey/required",
            ]
        );
    }

    #[test]
    fn unknown_ids_and_unissued_markers_are_valid() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..200 {
            let id = sample(&unknown_store_id(), &mut runner);
            assert_eq!(broken_rules("CustomKeyStoreIdType", &json!(id)), []);
            let m = sample(&unissued_marker(), &mut runner);
            assert_eq!(broken_rules("MarkerType", &json!(m)), []);
        }
    }
}
