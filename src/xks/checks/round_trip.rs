//! `xks-round-trip` (property): Encrypt then Decrypt gives the plaintext back, with exact
//! sizes, a correct integrity value when asked, and an IV never seen before in the run.

use proptest::prelude::*;

use super::probe::{Probe, labelled};
use super::property::property;
use super::requests::{self, Sealed};
use super::{Ctx, Outcome};
use crate::xks::crypto::cdiv;

/// The additional authenticated data of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aad {
    /// No `additionalAuthenticatedData` member.
    Absent,
    /// An empty string.
    Empty,
    /// This many random bytes.
    Random(usize),
    /// 8192 bytes, the size every proxy must accept.
    Largest,
}

impl Aad {
    /// The AAD in a few words with no size that varies: for finding kinds.
    pub fn label(self) -> &'static str {
        match self {
            Aad::Absent => "no AAD",
            Aad::Empty => "empty AAD",
            Aad::Random(_) => "AAD",
            Aad::Largest => "8192-byte AAD",
        }
    }

    /// The AAD bytes, None when absent.
    pub fn bytes(self, seed: u64) -> Option<Vec<u8>> {
        match self {
            Aad::Absent => None,
            Aad::Empty => Some(Vec::new()),
            Aad::Random(n) => Some(bytes(n, seed ^ 0xa5a5)),
            Aad::Largest => Some(bytes(8192, seed ^ 0x5a5a)),
        }
    }
}

/// One round trip.
#[derive(Debug, Clone)]
pub struct Case {
    /// Plaintext length in bytes.
    pub plaintext_len: usize,
    /// The seed of the plaintext and AAD bytes.
    pub seed: u64,
    /// The AAD.
    pub aad: Aad,
    /// Whether the integrity value is asked for.
    pub cdiv: bool,
}

/// `n` pseudo-random bytes from `seed` (splitmix64), so a case is small to print.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// AAD absent, empty, random or the largest size.
pub fn aad() -> impl Strategy<Value = Aad> {
    prop_oneof![
        Just(Aad::Absent),
        Just(Aad::Empty),
        (1..=64usize).prop_map(Aad::Random),
        Just(Aad::Largest),
    ]
}

fn cases() -> impl Strategy<Value = Case> {
    let len = prop_oneof![1 => Just(1usize), 1 => Just(4300usize), 4 => 1..=4300usize];
    (len, any::<u64>(), aad(), any::<bool>()).prop_map(|(plaintext_len, seed, aad, cdiv)| Case {
        plaintext_len,
        seed,
        aad,
        cdiv,
    })
}

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    property(ctx, "xks-round-trip", cases(), |p, case| {
        round_trip(p, case);
    })
}

/// Encrypts under the main key, judges the answer, decrypts; returns what Encrypt gave.
pub fn round_trip(p: &mut Probe, case: &Case) -> Option<Sealed> {
    let key = p.ctx.keys.main.clone();
    let plaintext = bytes(case.plaintext_len, case.seed);
    let aad = case.aad.bytes(case.seed);
    let what = format!(
        "Encrypt of {} bytes, AAD {:?}, integrity value {}",
        plaintext.len(),
        case.aad,
        if case.cdiv { "asked" } else { "not asked" }
    );
    let body = requests::encrypt(&plaintext, aad.as_deref(), case.cdiv);
    let request = p.request("Encrypt", Some(&key), &body);
    let answer = p.expect_ok(
        "Encrypt",
        "crypto/round-trip",
        case.aad.label(),
        &what,
        request,
        "EncryptResponse",
    )?;
    let at = Some(p.exchanges.len() - 1);
    let sealed = Sealed::from_answer(&answer)?;
    if sealed.ciphertext.len() != plaintext.len() {
        let n = sealed.ciphertext.len();
        let m = plaintext.len();
        p.find(
            "Encrypt",
            "crypto/sizes",
            if n > m {
                "expected a ciphertext as long as the plaintext, got a longer one"
            } else {
                "expected a ciphertext as long as the plaintext, got a shorter one"
            },
            format!("{n}-byte ciphertext for a {m}-byte plaintext"),
            at,
        );
    }
    let expected = cdiv(
        aad.as_deref().unwrap_or_default(),
        sealed.ctm.as_deref().unwrap_or_default(),
        &sealed.iv,
        &sealed.ciphertext,
        &sealed.tag,
    );
    match (&sealed.cdiv, case.cdiv) {
        (None, true) => p.find(
            "Encrypt",
            "crypto/cdiv",
            "expected an integrity value, got none",
            "the integrity value was asked for and not returned",
            at,
        ),
        (Some(_), false) => p.find(
            "Encrypt",
            "crypto/cdiv",
            "expected no integrity value, got one",
            "an integrity value came back that was not asked for",
            at,
        ),
        (Some(got), true) if got[..] != expected[..] => p.find(
            "Encrypt",
            "crypto/cdiv",
            labelled(
                case.aad.label(),
                "expected SHA-256(AAD ‖ ctm ‖ IV ‖ ciphertext ‖ tag), got another value",
            ),
            format!(
                "ciphertextDataIntegrityValue {} is not SHA-256(AAD ‖ ctm ‖ IV ‖ ciphertext ‖ tag) = {}",
                super::shape::encode(got),
                super::shape::encode(&expected)
            ),
            at,
        ),
        _ => {}
    }
    if !p.ctx.fresh_iv(&key, &sealed.iv) {
        let iv = super::shape::encode(&sealed.iv);
        p.find(
            "Encrypt",
            "crypto/iv-unique",
            "expected a fresh IV, got one returned before",
            format!("IV {iv} was returned before in this run"),
            at,
        );
    }
    let request = p.request("Decrypt", Some(&key), &sealed.decrypt(aad.as_deref()));
    let what = format!("Decrypt of what Encrypt returned, AAD {:?}", case.aad);
    let answer = p.expect_ok(
        "Decrypt",
        "crypto/round-trip",
        case.aad.label(),
        &what,
        request,
        "DecryptResponse",
    )?;
    let got = answer["plaintext"].as_str().and_then(super::shape::decode);
    if got.as_deref() != Some(&plaintext[..]) {
        let at = Some(p.exchanges.len() - 1);
        let n = got.map_or(0, |g| g.len());
        p.find(
            "Decrypt",
            "crypto/round-trip",
            labelled(
                case.aad.label(),
                "expected the plaintext back, got other bytes",
            ),
            format!(
                "Decrypt returned {n} bytes that are not the {}-byte plaintext",
                plaintext.len()
            ),
            at,
        );
    }
    Some(sealed)
}
