//! Reading request bodies under a limit, parsing JSON, and building JSON responses.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// After a body went over the limit, the rest is read and thrown away (never stored) for
/// at most this long, so the client gets to read the 413 instead of a connection reset.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Bodies that announce more than this are not drained at all: the connection is closed.
const DRAIN_MAX_DECLARED: u64 = 64 << 20;

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub(crate) async fn read_limited<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX_DECLARED) {
        return Err(ApiError::body_too_large(limit));
    }
    let mut limited = Limited::new(body, limit);
    // Most bodies arrive in one frame: kept as it is, and copied only when a second comes.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    loop {
        match limited.frame().await {
            None if buf.is_empty() => return Ok(first.unwrap_or_default()),
            None => return Ok(buf.freeze()),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { continue };
                match first.take() {
                    None if buf.is_empty() => first = Some(data),
                    held => {
                        if let Some(held) = held {
                            buf.extend_from_slice(&held);
                        }
                        buf.extend_from_slice(&data);
                    }
                }
            }
            Some(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                drop((first, buf));
                drain(&mut limited).await;
                return Err(ApiError::body_too_large(limit));
            }
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("could not read the request body: {e}"),
                ))
            }
        }
    }
}

/// [`read_limited`] with a deadline for the whole body: a client trickling it gets 408
/// (and its connection closed) instead of holding a task and a connection for as long as
/// it likes.
pub(crate) async fn read_within<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::time::timeout(deadline, read_limited(body, headers, limit))
        .await
        .unwrap_or_else(|_| Err(ApiError::body_timeout(deadline)))
}

/// Reads and discards the rest of a body, for a bounded time.
async fn drain<B>(body: &mut Limited<B>)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        loop {
            match body.frame().await {
                None => break,
                // Past the limit every data frame is an error; it is consumed all the same.
                Some(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => continue,
                Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
}

/// Parses a JSON body into `T`; refuses it with 400 `invalid_json` otherwise.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body is empty; expected a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))
}

/// Like [`parse_json`], but an empty body means `T::default()`.
pub(crate) fn parse_json_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(bytes)
}

/// A JSON response with the given status.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Full<Bytes>>, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("encoding the response: {e}")))?;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A plain-text response.
pub(crate) fn text(content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_bodies() {
        let headers = HeaderMap::new();
        let ok = read_limited(Full::new(Bytes::from_static(b"{}")), &headers, 16).await;
        assert_eq!(ok.unwrap(), Bytes::from_static(b"{}"));
        let big = Full::new(Bytes::from(vec![b'x'; 17]));
        let err = read_limited(big, &headers, 16).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.kind(), "body_too_large");
    }

    /// A body that yields the given data frames one by one.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    fn frames(parts: &[&'static [u8]]) -> Frames {
        Frames(parts.iter().map(|p| Bytes::from_static(p)).collect())
    }

    /// A body in several frames reads back whole and in order; over the limit across
    /// frames is still 413.
    #[tokio::test]
    async fn bodies_in_several_frames_are_joined() {
        let headers = HeaderMap::new();
        let whole = read_limited(frames(&[b"{\"a\"", b":", b"1}"]), &headers, 16).await;
        assert_eq!(whole.unwrap(), Bytes::from_static(b"{\"a\":1}"));
        let one = read_limited(frames(&[b"{}"]), &headers, 16).await;
        assert_eq!(one.unwrap(), Bytes::from_static(b"{}"));
        let empty = read_limited(frames(&[]), &headers, 16).await;
        assert_eq!(empty.unwrap(), Bytes::new());
        let err = read_limited(frames(&[b"0123456789", b"0123456789"]), &headers, 16)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn json_errors_are_400() {
        let err = parse_json::<ffrtmp_core::JobSpec>(b"{not json").unwrap_err();
        assert_eq!((err.status(), err.kind()), (StatusCode::BAD_REQUEST, "invalid_json"));
        let err = parse_json::<ffrtmp_core::JobSpec>(b"").unwrap_err();
        assert_eq!(err.kind(), "invalid_json");
        let err = parse_json::<ffrtmp_core::JobSpec>(br#"{"scenario":"720p-h264","x":1}"#).unwrap_err();
        assert!(err.message().contains("unknown field"), "{}", err.message());
    }
}
