//! Endpoint, region and credentials, resolved the way AWS's tools resolve them.

use std::net::IpAddr;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::sigv4::Credential;

/// The endpoint URL: the flag, else `AWS_ENDPOINT_URL_KMS`, else `AWS_ENDPOINT_URL`; None
/// means the embedded emulator.
pub fn endpoint_url(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_KMS"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .filter(|u| !u.trim().is_empty())
}

/// Checks an endpoint URL: http or https, with a host.
pub fn check_endpoint_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("endpoint URL {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "endpoint URL {url:?} must be http(s)://HOST[:PORT]"
        ));
    }
    Ok(parsed)
}

/// Whether the URL points at this machine (no rate limit is needed there by default).
pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The region: the flag, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the shared config
/// file's region for the profile.
pub async fn region(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(r) = flag
        .map(str::to_string)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
    {
        return Some(r);
    }
    let profile = ProfileFileRegionProvider::builder().build();
    ProvideRegion::region(&profile).await.map(|r| r.to_string())
}

/// Credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), else the shared config and credentials files for `AWS_PROFILE`.
/// (Not the instance metadata service: ckscheck runs from a workstation or CI, and the SDK's
/// default chain needs an HTTP client this build does not carry.)
pub async fn credentials() -> Result<Credential, String> {
    // The profile provider would build an instance-metadata client even for a plain profile;
    // it gets one that refuses to connect instead of none (which debug builds assert on).
    let offline = ProviderConfig::default().with_http_client(NoHttp);
    let chain = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Profile",
        ProfileFileCredentialsProvider::builder()
            .configure(&offline)
            .build(),
    );
    let creds = chain.provide_credentials().await.map_err(|e| {
        format!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared credentials file ({e})"
        )
    })?;
    Ok(Credential {
        access_key_id: creds.access_key_id().to_string(),
        secret_access_key: creds.secret_access_key().to_string(),
        session_token: creds.session_token().map(str::to_string),
    })
}

/// An HTTP client for the SDK's credential providers that never connects: credentials come
/// from the environment or files only.
#[derive(Debug)]
struct NoHttp;

impl HttpClient for NoHttp {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(NoHttp)
    }
}

impl HttpConnector for NoHttp {
    fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(Err(ConnectorError::other(
            "ckscheck fetches no credentials over the network".into(),
            None,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn endpoint_resolution_follows_aws_order() {
        let both = env(&[
            ("AWS_ENDPOINT_URL_KMS", "http://kms:1"),
            ("AWS_ENDPOINT_URL", "http://all:2"),
        ]);
        assert_eq!(
            endpoint_url(Some("http://flag:3"), &both).as_deref(),
            Some("http://flag:3")
        );
        assert_eq!(endpoint_url(None, &both).as_deref(), Some("http://kms:1"));
        let general = env(&[("AWS_ENDPOINT_URL", "http://all:2")]);
        assert_eq!(
            endpoint_url(None, &general).as_deref(),
            Some("http://all:2")
        );
        assert_eq!(endpoint_url(None, &env(&[])), None);
    }

    #[tokio::test]
    async fn region_resolution_follows_aws_order() {
        let both = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
        ]);
        assert_eq!(
            region(Some("ap-south-1"), &both).await.as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(region(None, &both).await.as_deref(), Some("eu-west-1"));
        let default = env(&[("AWS_DEFAULT_REGION", "us-west-2")]);
        assert_eq!(region(None, &default).await.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn endpoint_urls_are_checked_and_loopback_is_recognised() {
        assert!(check_endpoint_url("ftp://x").is_err());
        assert!(check_endpoint_url("not a url").is_err());
        let local = check_endpoint_url("http://127.0.0.1:4566").unwrap();
        assert!(is_loopback(&local));
        assert!(is_loopback(
            &check_endpoint_url("http://localhost:4566").unwrap()
        ));
        assert!(!is_loopback(
            &check_endpoint_url("http://10.1.2.3:4566").unwrap()
        ));
    }
}
