//! Reading a request body within the size cap and the body timeout.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use super::Limits;

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over `Limits::max_body_bytes` (announced, or seen while reading): answer 413.
    TooLarge,
    /// Not complete within `Limits::body_timeout`: answer 408 (or the server's 4xx).
    Timeout,
    /// The client broke the framing or reset the stream: answer 400.
    Broken,
}

/// The whole body, or why not. A `Content-Length` over the cap is refused before any body byte
/// is read; a chunked (or HTTP/2 unsized) body is refused as soon as it passes the cap, so an
/// oversized body is never read whole.
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limits: &Limits,
) -> Result<Bytes, BodyError> {
    let max = limits.max_body_bytes;
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_long = |n: u64| usize::try_from(n).map_or(true, |n| n > max);
    if announced.is_some_and(too_long) || too_long(body.size_hint().lower()) {
        return Err(BodyError::TooLarge);
    }
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(limits.body_timeout, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
        Err(_) => Err(BodyError::Timeout),
    }
}
