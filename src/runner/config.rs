//! Endpoint, region and credentials, resolved the way AWS's tools resolve them.

use std::net::IpAddr;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::default_provider::region::DefaultRegionChain;
use aws_credential_types::provider::ProvideCredentials;

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
    DefaultRegionChain::builder()
        .build()
        .region()
        .await
        .map(|r| r.to_string())
}

/// Credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), else the shared config and credentials files for `AWS_PROFILE`.
pub async fn credentials() -> Result<Credential, String> {
    let chain = DefaultCredentialsChain::builder().build().await;
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
