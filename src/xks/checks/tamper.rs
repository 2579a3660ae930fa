//! `xks-tamper` (property): a Decrypt of anything Encrypt did not produce, to the bit, is
//! 400 InvalidCiphertextException: never a plaintext, never a server error. An AAD left out
//! counts as changed (AWS's test client's "Decrypt with missing AAD").

use proptest::prelude::*;

use super::property::property;
use super::requests::{self, Sealed};
use super::round_trip::bytes;
use super::{Ctx, Outcome};

/// What a case changes before decrypting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Flip one bit of the ciphertext.
    Ciphertext,
    /// Flip one bit of the IV.
    Iv,
    /// Flip one bit of the tag.
    Tag,
    /// Flip one bit of the AAD (add one byte when there is none).
    Aad,
    /// Flip one bit of ciphertextMetadata (add one byte when there is none).
    Metadata,
    /// Send the AAD as ciphertextMetadata and the metadata as AAD.
    SwapAadAndMetadata,
    /// Leave the AAD out (add one byte when there was none), as AWS's test client does.
    DropAad,
}

/// One tamper case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Plaintext length.
    pub plaintext_len: usize,
    /// AAD length (None: absent); at most 16 so a swap still fits ciphertextMetadata.
    pub aad_len: Option<usize>,
    /// Seed of the bytes.
    pub seed: u64,
    /// The change.
    pub change: Change,
    /// Which bit (modulo the field's bits).
    pub bit: usize,
}

fn cases() -> impl Strategy<Value = Case> {
    let change = prop_oneof![
        Just(Change::Ciphertext),
        Just(Change::Iv),
        Just(Change::Tag),
        Just(Change::Aad),
        Just(Change::Metadata),
        Just(Change::SwapAadAndMetadata),
        Just(Change::DropAad),
    ];
    (
        1..=256usize,
        proptest::option::of(0..=16usize),
        any::<u64>(),
        change,
        0..4096usize,
    )
        .prop_map(|(plaintext_len, aad_len, seed, change, bit)| Case {
            plaintext_len,
            aad_len,
            seed,
            change,
            bit,
        })
}

fn flip(field: &mut Vec<u8>, bit: usize) {
    if field.is_empty() {
        field.push(1 << (bit % 8));
    } else {
        let bit = bit % (field.len() * 8);
        field[bit / 8] ^= 1 << (bit % 8);
    }
}

/// Runs the check.
pub fn run(ctx: &Ctx) -> Outcome {
    property(ctx, "xks-tamper", cases(), |p, case| {
        let key = p.ctx.keys.main.clone();
        let plaintext = bytes(case.plaintext_len, case.seed);
        let aad = case.aad_len.map(|n| bytes(n, !case.seed));
        let body = requests::encrypt(&plaintext, aad.as_deref(), false);
        let request = p.request("Encrypt", Some(&key), &body);
        let what = format!("Encrypt of {} bytes", plaintext.len());
        let Some(answer) = p.expect_200("Encrypt", "crypto/round-trip", "", what, request) else {
            return;
        };
        let Some(mut sealed) = Sealed::from_answer(&answer) else {
            return;
        };
        let mut aad2 = aad.clone();
        let what = match case.change {
            Change::Ciphertext => {
                flip(&mut sealed.ciphertext, case.bit);
                "one ciphertext bit flipped"
            }
            Change::Iv => {
                flip(&mut sealed.iv, case.bit);
                "one IV bit flipped"
            }
            Change::Tag => {
                flip(&mut sealed.tag, case.bit);
                "one tag bit flipped"
            }
            Change::Aad => {
                let field = aad2.get_or_insert_with(Vec::new);
                let what = if field.is_empty() {
                    "one AAD byte added where there was none"
                } else {
                    "one AAD bit flipped"
                };
                flip(field, case.bit);
                what
            }
            Change::Metadata => {
                let field = sealed.ctm.get_or_insert_with(Vec::new);
                let what = if field.is_empty() {
                    "one ciphertextMetadata byte added where there was none"
                } else {
                    "one ciphertextMetadata bit flipped"
                };
                flip(field, case.bit);
                what
            }
            Change::DropAad => match aad2.take().filter(|a| !a.is_empty()) {
                Some(_) => "the AAD left out",
                None => {
                    let mut added = Vec::new();
                    flip(&mut added, case.bit);
                    aad2 = Some(added);
                    "one AAD byte added where there was none"
                }
            },
            Change::SwapAadAndMetadata => {
                let ctm = sealed.ctm.take();
                if ctm.as_deref().unwrap_or_default() == aad.as_deref().unwrap_or_default() {
                    // Equal parts swap to the same request: flip the ciphertext instead.
                    sealed.ctm = ctm;
                    flip(&mut sealed.ciphertext, case.bit);
                    "one ciphertext bit flipped (AAD equals the metadata, no swap possible)"
                } else {
                    sealed.ctm = aad.clone().filter(|a| !a.is_empty());
                    aad2 = ctm;
                    "AAD and ciphertextMetadata swapped"
                }
            }
        };
        let request = p.request("Decrypt", Some(&key), &sealed.decrypt(aad2.as_deref()));
        p.expect_error(
            "Decrypt",
            "crypto/tamper",
            what,
            format!("Decrypt with {what}"),
            request,
            "InvalidCiphertextException",
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_changes_exactly_one_bit_or_adds_a_byte() {
        let mut v = vec![0u8; 4];
        flip(&mut v, 9);
        assert_eq!(v, vec![0, 2, 0, 0]);
        flip(&mut v, 9 + 32);
        assert_eq!(v, vec![0, 0, 0, 0], "modulo the field's bits");
        let mut empty = Vec::new();
        flip(&mut empty, 3);
        assert_eq!(empty, vec![8]);
    }
}
