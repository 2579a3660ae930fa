//! The external keys and their AES-256-GCM: a random 12-byte IV per Encrypt, the 16-byte tag
//! split off, ciphertextMetadata bound into the tag (`crypto::bound_aad`), the CDIV when asked,
//! and a trial decrypt before any ciphertext is returned.

use std::collections::HashMap;

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{Aes256Gcm, AesGcm, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::KeyDef;
use super::faults::{Planted, ProxyFault};
use crate::xks::crypto;

/// The ciphertextMetadata of every Encrypt: the scheme (ctm bound as `bound_aad`) and version.
pub(super) const CTM: &[u8] = b"ckscheck:v1";

/// AES-GCM with a 16-byte IV (the spec allows 12 or 16; this proxy makes 12).
type Aes256Gcm16 = AesGcm<Aes256, U16>;

/// Reads base64 key material (32 bytes) for `KeyDef::material`.
pub(super) fn material_from_base64<'de, D>(d: D) -> Result<Option<[u8; 32]>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(d)?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| serde::de::Error::custom(format!("material is not base64: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "material must be 32 bytes (AES-256), got {}",
                bytes.len()
            ))
        })
}

/// A keys file's `enabled` when the line is left out.
pub(super) fn enabled_by_default() -> bool {
    true
}

/// Parses a TOML keys file of `[[key]]` tables (id, usage, enabled, optional base64 material).
pub fn parse_keys_toml(text: &str) -> Result<Vec<KeyDef>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct KeysFile {
        #[serde(default)]
        key: Vec<KeyDef>,
    }
    let file: KeysFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.key.is_empty() {
        return Err("the keys file defines no [[key]]".into());
    }
    Ok(file.key)
}

/// Why a key cannot do what it is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyError {
    /// The key is disabled.
    Disabled,
    /// The key's usage does not include the operation.
    Usage(&'static str),
    /// The ciphertext, IV, tag, AAD or metadata do not authenticate.
    BadCiphertext,
    /// The crypto failed where it must not.
    Internal(&'static str),
}

/// What Encrypt returns.
pub(super) struct Sealed {
    /// The ciphertext (as long as the plaintext).
    pub ciphertext: Vec<u8>,
    /// The IV.
    pub iv: [u8; 12],
    /// The authentication tag.
    pub tag: [u8; 16],
    /// The ciphertextMetadata.
    pub ctm: &'static [u8],
    /// The CDIV, when asked for.
    pub cdiv: Option<[u8; 32]>,
}

/// One key: its definition and ciphers.
pub(super) struct Key {
    /// The definition (material dropped).
    pub def: KeyDef,
    gcm12: Aes256Gcm,
    gcm16: Aes256Gcm16,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.def.fmt(f)
    }
}

/// Every key, by id, and a private key for deep health checks.
pub(super) struct Keyring {
    keys: HashMap<String, Key>,
    health: Key,
}

/// Whether an external key id is well formed: 1-128 chars of `A-Z a-z 0-9 - . _`.
pub(super) fn valid_key_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl Key {
    fn new(def: &KeyDef) -> Key {
        let material = def.material.unwrap_or_else(rand::random);
        let key = aes_gcm::Key::<Aes256Gcm>::from(material);
        Key {
            def: KeyDef {
                material: None,
                ..def.clone()
            },
            gcm12: Aes256Gcm::new(&key),
            gcm16: Aes256Gcm16::new(&key),
        }
    }

    fn allows(&self, usage: &str) -> bool {
        self.def.usage.iter().any(|u| u == usage)
    }

    /// Whether the key may do `usage` (`ENCRYPT` or `DECRYPT`) now.
    pub fn check(&self, usage: &'static str, planted: &Planted) -> Result<(), KeyError> {
        if !self.def.enabled {
            return Err(KeyError::Disabled);
        }
        if !self.allows(usage) && !planted.has(ProxyFault::IgnoresKeyUsage) {
            return Err(KeyError::Usage(usage));
        }
        Ok(())
    }

    /// Encrypts under a fresh IV; verifies by a trial decrypt before returning.
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        want_cdiv: bool,
        planted: &Planted,
    ) -> Result<Sealed, KeyError> {
        let iv: [u8; 12] = if planted.has(ProxyFault::ReusedIv) {
            let digest = Sha256::digest(self.def.id.as_bytes());
            let mut iv = [0; 12];
            iv.copy_from_slice(&digest[..12]);
            iv
        } else {
            rand::random()
        };
        let bound = gcm_aad(aad, CTM, planted).ok_or(KeyError::Internal("AAD too long"))?;
        let mut ciphertext = plaintext.to_vec();
        let tag = self
            .gcm12
            .encrypt_inout_detached(&Nonce::from(iv), &bound, ciphertext.as_mut_slice().into())
            .map_err(|_| KeyError::Internal("encryption failed"))?;
        let tag: [u8; 16] = tag.into();
        let cdiv = want_cdiv.then(|| {
            let tag_part: &[u8] = if planted.has(ProxyFault::WrongCdiv) {
                &[]
            } else {
                &tag
            };
            crypto::cdiv(aad, CTM, &iv, &ciphertext, tag_part)
        });
        let again = self.decrypt(&ciphertext, aad, CTM, &iv, &tag, planted)?;
        if again != plaintext {
            return Err(KeyError::Internal("the trial decrypt did not match"));
        }
        Ok(Sealed {
            ciphertext,
            iv,
            tag,
            ctm: CTM,
            cdiv,
        })
    }

    /// Decrypts and authenticates; BadCiphertext when anything was changed.
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        aad: &[u8],
        ctm: &[u8],
        iv: &[u8],
        tag: &[u8],
        planted: &Planted,
    ) -> Result<Vec<u8>, KeyError> {
        let bound = gcm_aad(aad, ctm, planted).ok_or(KeyError::BadCiphertext)?;
        let tag = Tag::<U16>::try_from(tag).map_err(|_| KeyError::BadCiphertext)?;
        let mut buffer = ciphertext.to_vec();
        let skip_tag = planted.has(ProxyFault::TagNotChecked);
        let opened = match iv.len() {
            // GCM is CTR underneath: "encrypting" the ciphertext recovers the plaintext and
            // ignores the tag, which is the bug.
            12 if skip_tag => self
                .gcm12
                .encrypt_inout_detached(
                    &Nonce::try_from(iv).map_err(|_| KeyError::BadCiphertext)?,
                    &bound,
                    buffer.as_mut_slice().into(),
                )
                .map(|_| ()),
            12 => self.gcm12.decrypt_inout_detached(
                &Nonce::try_from(iv).map_err(|_| KeyError::BadCiphertext)?,
                &bound,
                buffer.as_mut_slice().into(),
                &tag,
            ),
            16 if skip_tag => self
                .gcm16
                .encrypt_inout_detached(
                    &Nonce::try_from(iv).map_err(|_| KeyError::BadCiphertext)?,
                    &bound,
                    buffer.as_mut_slice().into(),
                )
                .map(|_| ()),
            16 => self.gcm16.decrypt_inout_detached(
                &Nonce::try_from(iv).map_err(|_| KeyError::BadCiphertext)?,
                &bound,
                buffer.as_mut_slice().into(),
                &tag,
            ),
            _ => return Err(KeyError::BadCiphertext),
        };
        opened.map_err(|_| KeyError::BadCiphertext)?;
        Ok(buffer)
    }
}

/// The AAD GCM authenticates: `bound_aad(AAD, ctm)`; the AAD and ctm faults are planted here.
fn gcm_aad(aad: &[u8], ctm: &[u8], planted: &Planted) -> Option<Vec<u8>> {
    if planted.has(ProxyFault::CtmNotBound) {
        return Some(aad.to_vec());
    }
    let aad = if planted.has(ProxyFault::AadIgnored) {
        &[][..]
    } else {
        aad
    };
    crypto::bound_aad(aad, ctm)
}

impl Keyring {
    /// The keys of `defs`; an error for a malformed or duplicate id.
    pub fn new(defs: &[KeyDef]) -> Result<Keyring, String> {
        let mut keys = HashMap::new();
        for def in defs {
            if !valid_key_id(&def.id) {
                return Err(format!(
                    "key id {:?} is not 1-128 characters of A-Z a-z 0-9 - . _",
                    def.id
                ));
            }
            if keys.insert(def.id.clone(), Key::new(def)).is_some() {
                return Err(format!("key id {:?} is defined twice", def.id));
            }
        }
        let health = Key::new(&KeyDef::new("health-check", &["ENCRYPT", "DECRYPT"], true));
        Ok(Keyring { keys, health })
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.get(id)
    }

    /// A deep health check: an encrypt and a decrypt on a key no customer uses.
    pub fn healthy(&self) -> bool {
        let clean = Planted::default();
        let probe = b"ckscheck health probe";
        self.health
            .encrypt(probe, b"health", true, &clean)
            .is_ok_and(|s| {
                self.health
                    .decrypt(&s.ciphertext, b"health", s.ctm, &s.iv, &s.tag, &clean)
                    .is_ok_and(|p| p == probe)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new(&KeyDef::new("k", &["ENCRYPT", "DECRYPT"], true))
    }

    fn open(k: &Key, s: &Sealed, aad: &[u8], planted: &Planted) -> Result<Vec<u8>, KeyError> {
        k.decrypt(&s.ciphertext, aad, s.ctm, &s.iv, &s.tag, planted)
    }

    #[test]
    fn round_trip_keeps_lengths_uses_fresh_ivs_and_a_correct_cdiv() {
        let k = key();
        let clean = Planted::default();
        let plaintext = vec![7u8; 4300];
        let aad = vec![1u8; 8192];
        let a = k.encrypt(&plaintext, &aad, true, &clean).unwrap();
        let b = k.encrypt(&plaintext, &aad, false, &clean).unwrap();
        assert_eq!(a.ciphertext.len(), plaintext.len());
        assert_ne!(a.ciphertext, plaintext);
        assert!(a.ctm.len() <= 20);
        assert_ne!(a.iv, b.iv);
        assert!(b.cdiv.is_none());
        let expected = crypto::cdiv(&aad, a.ctm, &a.iv, &a.ciphertext, &a.tag);
        assert_eq!(a.cdiv, Some(expected));
        assert_eq!(open(&k, &a, &aad, &clean).unwrap(), plaintext);
    }

    #[test]
    fn any_change_fails_to_decrypt_and_so_does_an_aad_ctm_swap() {
        let k = key();
        let clean = Planted::default();
        let s = k.encrypt(b"secret", b"aad", false, &clean).unwrap();
        let flip = |v: &[u8]| {
            let mut v = v.to_vec();
            v[0] ^= 1;
            v
        };
        let bad = Err(KeyError::BadCiphertext);
        let d = |ct: &[u8], aad: &[u8], ctm: &[u8], iv: &[u8], tag: &[u8]| {
            k.decrypt(ct, aad, ctm, iv, tag, &clean)
        };
        assert_eq!(d(&flip(&s.ciphertext), b"aad", s.ctm, &s.iv, &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aae", s.ctm, &s.iv, &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aad", &flip(s.ctm), &s.iv, &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aad", s.ctm, &flip(&s.iv), &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aad", s.ctm, &s.iv, &flip(&s.tag)), bad);
        assert_eq!(d(&s.ciphertext, b"aad", b"", &s.iv, &s.tag), bad);
        assert_eq!(d(&s.ciphertext, s.ctm, b"aad", &s.iv, &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aad", s.ctm, &[0; 16], &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aad", s.ctm, &[0; 8], &s.tag), bad);
        assert_eq!(d(&s.ciphertext, b"aad", s.ctm, &s.iv, &s.tag[..12]), bad);
    }

    #[test]
    fn the_crypto_faults_each_let_one_kind_of_tampering_through() {
        let k = key();
        let tag = Planted::new(&[ProxyFault::TagNotChecked]);
        let s = k.encrypt(b"secret", b"aad", false, &tag).unwrap();
        let mut t = s.tag;
        t[0] ^= 1;
        assert!(
            k.decrypt(&s.ciphertext, b"aad", s.ctm, &s.iv, &t, &tag)
                .is_ok()
        );

        let aad = Planted::new(&[ProxyFault::AadIgnored]);
        let s = k.encrypt(b"secret", b"aad", false, &aad).unwrap();
        assert_eq!(open(&k, &s, b"other", &aad).unwrap(), b"secret");

        let ctm = Planted::new(&[ProxyFault::CtmNotBound]);
        let s = k.encrypt(b"secret", b"aad", false, &ctm).unwrap();
        assert!(
            k.decrypt(&s.ciphertext, b"aad", b"forged", &s.iv, &s.tag, &ctm)
                .is_ok()
        );

        let iv = Planted::new(&[ProxyFault::ReusedIv]);
        let a = k.encrypt(b"one", b"", false, &iv).unwrap();
        let b = k.encrypt(b"two", b"", false, &iv).unwrap();
        assert_eq!(a.iv, b.iv);

        let cdiv = Planted::new(&[ProxyFault::WrongCdiv]);
        let s = k.encrypt(b"x", b"a", true, &cdiv).unwrap();
        assert_ne!(
            s.cdiv,
            Some(crypto::cdiv(b"a", s.ctm, &s.iv, &s.ciphertext, &s.tag))
        );
    }

    #[test]
    fn usage_and_state_are_enforced_unless_the_usage_fault_is_planted() {
        let clean = Planted::default();
        let enc = Key::new(&KeyDef::new("e", &["ENCRYPT"], true));
        assert_eq!(enc.check("ENCRYPT", &clean), Ok(()));
        assert_eq!(
            enc.check("DECRYPT", &clean),
            Err(KeyError::Usage("DECRYPT"))
        );
        let ignore = Planted::new(&[ProxyFault::IgnoresKeyUsage]);
        assert_eq!(enc.check("DECRYPT", &ignore), Ok(()));
        let off = Key::new(&KeyDef::new("d", &["ENCRYPT", "DECRYPT"], false));
        assert_eq!(off.check("ENCRYPT", &ignore), Err(KeyError::Disabled));
    }

    #[test]
    fn keys_files_parse_with_and_without_material_and_refuse_unknown_fields() {
        let text = r#"
            [[key]]
            id = "a"
            usage = ["ENCRYPT", "DECRYPT"]
            enabled = true
            material = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            [[key]]
            id = "b"
            usage = ["ENCRYPT"]
            enabled = false
        "#;
        let keys = parse_keys_toml(text).unwrap();
        assert_eq!(keys.len(), 2);
        let material: Vec<u8> = (0..32).collect();
        assert_eq!(keys[0].material.unwrap().to_vec(), material);
        assert!(keys[1].material.is_none() && !keys[1].enabled);
        assert!(!format!("{:?}", keys[0]).contains("AAEC"));
        let err = parse_keys_toml("[[key]]\nid=\"a\"\nusage=[]\nenabled=true\ncolour=1\n");
        assert!(err.unwrap_err().contains("colour"));
        let err = parse_keys_toml("[[key]]\nid=\"a\"\nusage=[]\nenabled=true\nmaterial=\"AAAA\"\n");
        assert!(err.unwrap_err().contains("32 bytes"));
        assert!(parse_keys_toml("").is_err());
    }

    #[test]
    fn a_key_with_no_usage_and_no_enabled_line_parses_as_an_enabled_impotent_key() {
        let keys = parse_keys_toml("[[key]]\nid = \"impotent_key\"\nusage = []\n")
            .expect("usage = [] and a missing enabled are accepted");
        assert_eq!(keys.len(), 1);
        assert!(keys[0].usage.is_empty());
        assert!(keys[0].enabled, "enabled defaults to true");
        let off = parse_keys_toml("[[key]]\nid = \"k\"\nusage = [\"ENCRYPT\"]\nenabled = false\n");
        assert!(!off.unwrap()[0].enabled);
        let ring = Keyring::new(&keys).unwrap();
        let key = ring.get("impotent_key").unwrap();
        let clean = Planted::default();
        assert_eq!(
            key.check("ENCRYPT", &clean),
            Err(KeyError::Usage("ENCRYPT"))
        );
        assert_eq!(
            key.check("DECRYPT", &clean),
            Err(KeyError::Usage("DECRYPT"))
        );
    }

    #[test]
    fn keyrings_refuse_bad_and_duplicate_ids_and_pass_their_health_check() {
        let a = KeyDef::new("a", &["ENCRYPT"], true);
        assert!(Keyring::new(&[a.clone(), a.clone()]).is_err());
        assert!(Keyring::new(&[KeyDef::new("a/b", &[], true)]).is_err());
        assert!(Keyring::new(&[KeyDef::new(&"x".repeat(129), &[], true)]).is_err());
        let ring = Keyring::new(&[a]).unwrap();
        assert!(ring.get("a").is_some() && ring.get("b").is_none());
        assert!(ring.healthy());
    }
}
