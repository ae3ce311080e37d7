//! Reading a request body: within the size limit (413 `RequestTooLarge`), within the body-read timeout (408
//! `RequestTimeout`, and the connection is closed), and only when declared as the media type the route takes (415
//! `UnsupportedMediaType`): `application/json` for the data plane (the Azure SDKs always declare it; a `charset`
//! parameter must be UTF-8), `application/x-www-form-urlencoded` for the token endpoint. A request without a body
//! needs no Content-Type.
//!
//! An oversized body is still read (and discarded) up to [`DRAIN_FACTOR`] times the limit before the 413 is sent:
//! over HTTP/2 a response sent while the client is still uploading ends in a stream reset that clients report
//! instead of the 413, and over HTTP/1.1 it keeps the connection usable. A client that declared an oversized length
//! and waits for `100 Continue` gets the 413 at once (it has sent nothing).
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse as _, Response};

use crate::error::ApiError;

/// How much of an oversized body is read and discarded before the 413 (times the limit).
const DRAIN_FACTOR: usize = 8;

/// The media type a route's body must be declared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    Json,
    Form,
}

impl MediaType {
    fn name(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::Form => "application/x-www-form-urlencoded",
        }
    }

    /// Whether a Content-Type value declares this type (case-insensitive; parameters allowed, a charset only if
    /// UTF-8).
    fn accepts(self, value: &str) -> bool {
        let mut parts = value.split(';');
        let media = parts.next().unwrap_or("").trim();
        media.eq_ignore_ascii_case(self.name())
            && parts.all(|p| match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
                    v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                }
                Some(_) => true,
                None => p.trim().is_empty(),
            })
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads the body of a request (see the module header); the error response when it cannot be used.
pub(crate) async fn read(
    parts: &Parts,
    body: Body,
    media: MediaType,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Response> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("The request body exceeds the limit of {limit} bytes."),
        )
        .into_response()
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut body = body;
    let mut oversized = declared_length(&parts.headers).is_some_and(|len| len > limit);
    // A client waiting for `100 Continue` has sent no body yet: refuse at once (reading would invite it).
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if oversized && expects_continue {
        return Err(too_large());
    }
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR);
    let mut seen = 0usize;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(deadline, frame).await {
            Err(_) => return Err(timed_out(parts.version, timeout)),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "request body could not be read");
                return Err(ApiError::bad_parameter("The request body could not be read.").into_response());
            }
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else { continue };
                seen = seen.saturating_add(data.len());
                if !oversized && buf.len() + data.len() > limit {
                    oversized = true;
                    buf = Vec::new();
                }
                if oversized {
                    if seen > drain_cap {
                        break;
                    }
                } else {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    if oversized {
        return Err(too_large());
    }
    if !buf.is_empty() {
        let declared = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !declared.is_some_and(|ct| media.accepts(ct)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("The request body must be declared as Content-Type: {}.", media.name()),
            )
            .into_response());
        }
    }
    Ok(Bytes::from(buf))
}

/// 408 for a body that did not arrive in time; over HTTP/1.x the connection is closed after it (the rest of the
/// body is never read).
fn timed_out(version: Version, timeout: Duration) -> Response {
    let mut r = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "RequestTimeout",
        format!("The request body did not arrive within {} seconds.", timeout.as_secs()),
    )
    .into_response();
    if version < Version::HTTP_2 {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::MediaType;

    #[test]
    fn media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; odata=minimalmetadata",
        ] {
            assert!(MediaType::Json.accepts(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/x-www-form-urlencoded",
            "text/json",
        ] {
            assert!(!MediaType::Json.accepts(bad), "{bad}");
        }
        assert!(MediaType::Form.accepts("application/x-www-form-urlencoded"));
        assert!(MediaType::Form.accepts("application/x-www-form-urlencoded; charset=utf-8"));
        assert!(!MediaType::Form.accepts("application/json"));
    }
}
