//! The XKS crypto facts both sides need: the ciphertext data integrity value (CDIV) and the
//! AAD that binds ciphertextMetadata into the GCM tag.

use sha2::{Digest, Sha256};

/// `SHA-256(AAD ‖ ctm ‖ IV ‖ ciphertext ‖ tag)` over decoded bytes, absent parts empty, no
/// length prefixes (XKS spec, Encrypt).
pub fn cdiv(aad: &[u8], ctm: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [aad, ctm, iv, ciphertext, tag] {
        h.update(part);
    }
    h.finalize().into()
}

/// The AAD the spec recommends a key manager authenticate, binding ciphertextMetadata:
/// `u16_be(len AAD) ‖ AAD ‖ u8(len ctm) ‖ ctm` (absent parts have length 0). None when a part
/// is too long for its length prefix.
pub fn bound_aad(aad: &[u8], ctm: &[u8]) -> Option<Vec<u8>> {
    let aad_len = u16::try_from(aad.len()).ok()?;
    let ctm_len = u8::try_from(ctm.len()).ok()?;
    let mut out = Vec::with_capacity(3 + aad.len() + ctm.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(ctm_len);
    out.extend_from_slice(ctm);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn cdiv_matches_the_specification_vector() {
        let b = |s: &str| STANDARD.decode(s).unwrap();
        let digest = cdiv(
            b"project=nile,department=marketing",
            b"key_version=1",
            &b("HMrlRw85cAJUd5Ax"),
            &b("ghxkK1txeDNn3q8Y"),
            &b("vBxN2ncH1oEkR8WVXpmyYQ=="),
        );
        assert_eq!(
            STANDARD.encode(digest),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
        // One bit anywhere changes it.
        let flipped = cdiv(
            b"project=nile,department=marketinh",
            b"key_version=1",
            &b("HMrlRw85cAJUd5Ax"),
            &b("ghxkK1txeDNn3q8Y"),
            &b("vBxN2ncH1oEkR8WVXpmyYQ=="),
        );
        assert_ne!(flipped, digest);
    }

    #[test]
    fn bound_aad_prefixes_lengths_so_aad_and_ctm_cannot_be_swapped() {
        assert_eq!(bound_aad(b"", b"").unwrap(), vec![0, 0, 0]);
        assert_eq!(
            bound_aad(b"ab", b"c").unwrap(),
            vec![0, 2, b'a', b'b', 1, b'c']
        );
        assert_ne!(bound_aad(b"x", b"y"), bound_aad(b"y", b"x"));
        assert_ne!(bound_aad(b"xy", b""), bound_aad(b"x", b"y"));
        assert!(bound_aad(b"", &[0; 256]).is_none());
    }
}
