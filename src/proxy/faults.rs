//! Planted faults: realistic XKS proxy bugs the reference proxy can be told to have
//! (`ckscheck xks serve --fault NAME`), so the certification checks can prove they catch them.
//! Each one is a single deviation at one point of the clean code path.

use std::collections::BTreeSet;

/// A deliberate bug the reference proxy can plant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyFault {
    /// Every Encrypt under a key uses the same IV (derived from the key id).
    ReusedIv,
    /// Decrypt never checks the authentication tag.
    TagNotChecked,
    /// The request's AAD is not authenticated.
    AadIgnored,
    /// ciphertextMetadata is returned but not bound into the tag.
    CtmNotBound,
    /// The CDIV leaves out the authentication tag.
    WrongCdiv,
    /// ValidationException is answered with HTTP 500.
    WrongErrorStatus,
    /// ValidationException is named `ValidationError`.
    WrongErrorName,
    /// GetKeyMetadata says `AES_128`.
    MetadataWrongKeyspec,
    /// GetKeyMetadata returns an empty keyUsage.
    MetadataEmptyKeyusage,
    /// Any signature passes when the access key id is known.
    AcceptsBadSignatures,
    /// The x-amz-date skew is not checked.
    IgnoresSkew,
    /// Plaintext over 4096 bytes is refused with ValidationException.
    #[serde(rename = "refuses-4300-byte-plaintext")]
    Refuses4300BytePlaintext,
    /// Bad base64 is answered with 500 InternalException.
    #[serde(rename = "5xx-on-bad-base64")]
    BadBase64As5xx,
    /// Every answer is delayed by 300 ms.
    Slow,
    /// GetHealthStatus lacks ekmVendor.
    HealthMissingMember,
    /// Key usage is not enforced: an encrypt-only key decrypts.
    IgnoresKeyUsage,
    /// 429 ThrottlingException when more than 4 requests are in flight.
    ThrottlesBursts,
    /// Every ekmFleetDetails entry is UNAVAILABLE.
    HealthUnavailable,
    /// 403 AccessDeniedException to every authenticated request, health included.
    DeniesAccess,
    /// 401 AuthenticationFailedException to every request, correctly signed ones included.
    RejectsCredentials,
    /// 404 InvalidUriPathException to every request, as if its prefix had moved.
    InvalidUriPath,
    /// Encrypt with a CDIV on a key that may not decrypt answers 200 (trap 10).
    CdivWithoutDecryptUsage,
}

impl ProxyFault {
    /// Every fault.
    pub const ALL: [ProxyFault; 22] = [
        ProxyFault::ReusedIv,
        ProxyFault::TagNotChecked,
        ProxyFault::AadIgnored,
        ProxyFault::CtmNotBound,
        ProxyFault::WrongCdiv,
        ProxyFault::WrongErrorStatus,
        ProxyFault::WrongErrorName,
        ProxyFault::MetadataWrongKeyspec,
        ProxyFault::MetadataEmptyKeyusage,
        ProxyFault::AcceptsBadSignatures,
        ProxyFault::IgnoresSkew,
        ProxyFault::Refuses4300BytePlaintext,
        ProxyFault::BadBase64As5xx,
        ProxyFault::Slow,
        ProxyFault::HealthMissingMember,
        ProxyFault::IgnoresKeyUsage,
        ProxyFault::ThrottlesBursts,
        ProxyFault::HealthUnavailable,
        ProxyFault::DeniesAccess,
        ProxyFault::RejectsCredentials,
        ProxyFault::InvalidUriPath,
        ProxyFault::CdivWithoutDecryptUsage,
    ];

    /// The kebab-case name, as on the command line (`--fault NAME`).
    pub fn name(self) -> &'static str {
        match self {
            ProxyFault::ReusedIv => "reused-iv",
            ProxyFault::TagNotChecked => "tag-not-checked",
            ProxyFault::AadIgnored => "aad-ignored",
            ProxyFault::CtmNotBound => "ctm-not-bound",
            ProxyFault::WrongCdiv => "wrong-cdiv",
            ProxyFault::WrongErrorStatus => "wrong-error-status",
            ProxyFault::WrongErrorName => "wrong-error-name",
            ProxyFault::MetadataWrongKeyspec => "metadata-wrong-keyspec",
            ProxyFault::MetadataEmptyKeyusage => "metadata-empty-keyusage",
            ProxyFault::AcceptsBadSignatures => "accepts-bad-signatures",
            ProxyFault::IgnoresSkew => "ignores-skew",
            ProxyFault::Refuses4300BytePlaintext => "refuses-4300-byte-plaintext",
            ProxyFault::BadBase64As5xx => "5xx-on-bad-base64",
            ProxyFault::Slow => "slow",
            ProxyFault::HealthMissingMember => "health-missing-member",
            ProxyFault::IgnoresKeyUsage => "ignores-key-usage",
            ProxyFault::ThrottlesBursts => "throttles-bursts",
            ProxyFault::HealthUnavailable => "health-unavailable",
            ProxyFault::DeniesAccess => "denies-access",
            ProxyFault::RejectsCredentials => "rejects-credentials",
            ProxyFault::InvalidUriPath => "invalid-uri-path",
            ProxyFault::CdivWithoutDecryptUsage => "cdiv-without-decrypt-usage",
        }
    }

    /// One line: the bug it plants.
    pub fn describe(self) -> &'static str {
        match self {
            ProxyFault::ReusedIv => {
                "every Encrypt under a key uses the same IV (derived from the key id): GCM nonce reuse"
            }
            ProxyFault::TagNotChecked => {
                "Decrypt never checks the authentication tag: tampered ciphertexts decrypt"
            }
            ProxyFault::AadIgnored => {
                "the request's AAD is not authenticated: Decrypt with other AAD succeeds"
            }
            ProxyFault::CtmNotBound => {
                "ciphertextMetadata is returned but not bound into the GCM tag: altered metadata decrypts"
            }
            ProxyFault::WrongCdiv => {
                "the ciphertextDataIntegrityValue leaves out the authentication tag"
            }
            ProxyFault::WrongErrorStatus => "ValidationException is answered with HTTP 500",
            ProxyFault::WrongErrorName => {
                "ValidationException is named ValidationError in error bodies"
            }
            ProxyFault::MetadataWrongKeyspec => "GetKeyMetadata says keySpec AES_128",
            ProxyFault::MetadataEmptyKeyusage => "GetKeyMetadata returns an empty keyUsage array",
            ProxyFault::AcceptsBadSignatures => {
                "any SigV4 signature passes when the access key id is known"
            }
            ProxyFault::IgnoresSkew => {
                "x-amz-date is not checked against the clock (a SHOULD: strict runs only)"
            }
            ProxyFault::Refuses4300BytePlaintext => {
                "plaintext over 4096 bytes is refused with 400 ValidationException (the spec asks for 4300)"
            }
            ProxyFault::BadBase64As5xx => {
                "bad base64 in a request is answered with 500 InternalException, not ValidationException"
            }
            ProxyFault::Slow => "every answer is delayed by 300 ms (KMS gives up after 250 ms)",
            ProxyFault::HealthMissingMember => "GetHealthStatus answers without ekmVendor",
            ProxyFault::IgnoresKeyUsage => {
                "key usage is not enforced: an encrypt-only key decrypts, a decrypt-only key encrypts"
            }
            ProxyFault::ThrottlesBursts => {
                "429 ThrottlingException whenever more than 4 requests are in flight or 4 connections open"
            }
            ProxyFault::HealthUnavailable => {
                "GetHealthStatus reports every ekmFleetDetails entry UNAVAILABLE"
            }
            ProxyFault::DeniesAccess => {
                "403 AccessDeniedException to every authenticated request, GetHealthStatus included"
            }
            ProxyFault::RejectsCredentials => {
                "401 AuthenticationFailedException to every request, correctly signed ones included"
            }
            ProxyFault::InvalidUriPath => {
                "404 InvalidUriPathException to every request, as if its URI path prefix had moved"
            }
            ProxyFault::CdivWithoutDecryptUsage => {
                "Encrypt with a CDIV on an encrypt-only key answers 200 (AWS's test client expects InvalidKeyUsageException; a SHOULD: strict runs only)"
            }
        }
    }

    /// The name of the certification check that must catch it.
    pub fn caught_by(self) -> &'static str {
        match self {
            ProxyFault::ReusedIv | ProxyFault::WrongCdiv | ProxyFault::Refuses4300BytePlaintext => {
                "xks-round-trip"
            }
            ProxyFault::TagNotChecked | ProxyFault::AadIgnored | ProxyFault::CtmNotBound => {
                "xks-tamper"
            }
            ProxyFault::WrongErrorStatus
            | ProxyFault::WrongErrorName
            | ProxyFault::BadBase64As5xx => "xks-validation",
            ProxyFault::MetadataWrongKeyspec | ProxyFault::MetadataEmptyKeyusage => "xks-metadata",
            ProxyFault::AcceptsBadSignatures
            | ProxyFault::IgnoresSkew
            | ProxyFault::RejectsCredentials => "xks-authentication",
            ProxyFault::Slow => "xks-latency",
            ProxyFault::HealthMissingMember
            | ProxyFault::HealthUnavailable
            | ProxyFault::DeniesAccess
            | ProxyFault::InvalidUriPath => "xks-health",
            ProxyFault::IgnoresKeyUsage | ProxyFault::CdivWithoutDecryptUsage => "xks-key-usage",
            ProxyFault::ThrottlesBursts => "xks-concurrency",
        }
    }

    /// True when only a strict run must catch it (it breaks a SHOULD, not a MUST).
    pub fn strict_only(self) -> bool {
        matches!(
            self,
            ProxyFault::IgnoresSkew | ProxyFault::CdivWithoutDecryptUsage
        )
    }

    /// The fault with this kebab-case name; the error lists the valid names.
    pub fn parse(name: &str) -> Result<ProxyFault, String> {
        ProxyFault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = ProxyFault::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown XKS proxy fault {name:?}; valid faults: {}",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for ProxyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of faults a running proxy plants.
#[derive(Debug, Clone, Default)]
pub(super) struct Planted(BTreeSet<ProxyFault>);

impl Planted {
    /// The set of these faults.
    pub(super) fn new(faults: &[ProxyFault]) -> Planted {
        Planted(faults.iter().copied().collect())
    }

    /// Whether `fault` is planted.
    pub(super) fn has(&self, fault: ProxyFault) -> bool {
        self.0.contains(&fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_are_unique_and_the_error_lists_them() {
        let mut names = BTreeSet::new();
        for f in ProxyFault::ALL {
            assert_eq!(ProxyFault::parse(f.name()), Ok(f));
            assert!(names.insert(f.name()), "duplicate name {}", f.name());
            assert_eq!(f.to_string(), f.name());
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
            assert!(f.caught_by().starts_with("xks-"), "{f}");
            assert!(!f.describe().is_empty() && !f.describe().contains('\n'));
        }
        let err = ProxyFault::parse("no-such-fault").unwrap_err();
        assert!(
            err.contains("no-such-fault") && err.contains("reused-iv"),
            "{err}"
        );
        assert!(err.contains("5xx-on-bad-base64") && err.contains("denies-access"));
    }

    #[test]
    fn only_the_skew_and_cdiv_faults_are_strict_only_and_the_catching_checks_are_as_documented() {
        let strict: Vec<_> = ProxyFault::ALL
            .into_iter()
            .filter(|f| f.strict_only())
            .collect();
        assert_eq!(
            strict,
            vec![ProxyFault::IgnoresSkew, ProxyFault::CdivWithoutDecryptUsage]
        );
        assert_eq!(ProxyFault::ReusedIv.caught_by(), "xks-round-trip");
        assert_eq!(ProxyFault::CtmNotBound.caught_by(), "xks-tamper");
        assert_eq!(ProxyFault::Slow.caught_by(), "xks-latency");
        assert_eq!(ProxyFault::ThrottlesBursts.caught_by(), "xks-concurrency");
        assert_eq!(ProxyFault::IgnoresKeyUsage.caught_by(), "xks-key-usage");
        assert_eq!(ProxyFault::DeniesAccess.caught_by(), "xks-health");
    }

    #[test]
    fn planted_holds_exactly_the_given_faults() {
        let planted = Planted::new(&[ProxyFault::Slow, ProxyFault::Slow]);
        assert!(planted.has(ProxyFault::Slow));
        assert!(!planted.has(ProxyFault::ReusedIv));
        assert!(!Planted::default().has(ProxyFault::Slow));
    }
}
