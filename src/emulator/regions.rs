//! KMS is regional: each region a request is signed for has its own stores, quota and IDs.
//! The emulator keeps one model per region, made on the region's first request.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Fixtures, IdSource, KmsError, Model, ModelConfig, SeededIds};

/// The most regions one emulator keeps; a request for another one is refused.
pub const MAX_REGIONS: usize = 32;

/// One model per region; the configured region's model uses the emulator's own ID source.
pub struct Regions {
    config: ModelConfig,
    fixtures: Arc<Fixtures>,
    models: BTreeMap<String, Model>,
}

impl Regions {
    /// Only the configured region, its model drawing IDs from `ids`.
    pub fn new(config: ModelConfig, fixtures: Arc<Fixtures>, ids: Box<dyn IdSource>) -> Regions {
        let home = Model::new(config.clone(), fixtures.clone(), ids);
        let models = BTreeMap::from([(config.region.clone(), home)]);
        Regions {
            config,
            fixtures,
            models,
        }
    }

    /// The model of `region` (the configured region when None), made on first use.
    pub fn model(&mut self, region: Option<&str>) -> Result<&mut Model, KmsError> {
        let region = region.unwrap_or(&self.config.region).to_string();
        if !self.models.contains_key(&region) {
            if !looks_like_region(&region) {
                return Err(KmsError {
                    name: "UnrecognizedClientException".into(),
                    message: format!(
                        "The request is signed for region {region:?}, which is not a region name."
                    ),
                });
            }
            if self.models.len() >= MAX_REGIONS {
                return Err(KmsError {
                    name: "UnrecognizedClientException".into(),
                    message: format!(
                        "This emulator keeps at most {MAX_REGIONS} regions; region {region} would be one more."
                    ),
                });
            }
            let config = ModelConfig {
                region: region.clone(),
                ..self.config.clone()
            };
            let ids = Box::new(SeededIds::new(region_seed(&region)));
            let model = Model::new(config, self.fixtures.clone(), ids);
            self.models.insert(region.clone(), model);
        }
        Ok(self.models.get_mut(&region).expect("inserted above"))
    }
}

/// A seed of its own per region, so two regions do not hand out the same store IDs.
fn region_seed(region: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(region.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: lower-case words joined by `-`, ending in a
/// number.
fn looks_like_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    region.len() <= 32
        && parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The region of a SigV4 `Authorization` header's credential scope, if it has one.
pub fn signed_region(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(2).filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Regions {
        Regions::new(
            ModelConfig::default(),
            Arc::new(Fixtures::builtin()),
            Box::new(SeededIds::new(1)),
        )
    }

    #[test]
    fn the_region_comes_from_the_credential_scope() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=ab";
        assert_eq!(signed_region(header), Some("eu-west-1"));
        assert_eq!(signed_region("Bearer x"), None);
        assert_eq!(signed_region("AWS4-HMAC-SHA256 Credential=AKID"), None);
    }

    #[test]
    fn regions_are_made_on_demand_and_refused_past_the_limit_or_when_malformed() {
        let mut r = regions();
        let home = ModelConfig::default().region;
        assert!(r.model(None).is_ok());
        assert!(r.model(Some(&home)).is_ok());
        assert!(r.model(Some("eu-west-1")).is_ok());
        assert!(r.model(Some("us-gov-west-1")).is_ok());
        for bad in ["", "../x", "EU-WEST-1", "eu-west", "eu--1"] {
            assert!(r.model(Some(bad)).is_err(), "{bad:?}");
        }
        for i in 0..MAX_REGIONS {
            let _ = r.model(Some(&format!("zz-test-{i}")));
        }
        assert_eq!(r.models.len(), MAX_REGIONS);
        let err = r.model(Some("zz-more-1")).err().expect("over the limit");
        assert!(err.message.contains("at most"), "{}", err.message);
        assert!(
            r.model(Some("eu-west-1")).is_ok(),
            "known regions still answer"
        );
    }

    #[test]
    fn two_regions_hand_out_different_ids() {
        assert_ne!(region_seed("us-east-1"), region_seed("us-west-2"));
    }
}
