//! Reading a server-sent event stream (`GET /events`) with the client's TLS and key.

use bytes::{Buf, Bytes, BytesMut};
use ffrtmp_core::TransportError;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::{decode, HttpClient, RawResponse};

/// Longest single message accepted from a stream; a longer one ends it with an error.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// One message of a server-sent event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event:` name (`message` when the server gave none).
    pub event: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// An open event stream; [`next`](EventStream::next) yields its messages.
#[derive(Debug)]
pub struct EventStream {
    body: Incoming,
    buf: BytesMut,
}

impl HttpClient {
    /// Opens `GET path_and_query` as an event stream. Connection failures and error
    /// statuses are answered like [`HttpClient::call`]'s, without retries: a watcher decides
    /// itself whether to reconnect.
    pub async fn stream(&self, path_and_query: &str) -> Result<EventStream, TransportError> {
        let uri = format!("{}{}", self.base, path_and_query);
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(&uri)
            .header(header::ACCEPT, "text/event-stream")
            .header(header::USER_AGENT, concat!("ffrtmp-http/", env!("CARGO_PKG_VERSION")));
        if let Some(auth) = &self.auth {
            builder = builder.header(header::AUTHORIZATION, auth.clone());
        }
        let request = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| TransportError::Rejected {
                status: 0,
                kind: "invalid_request".into(),
                message: format!("invalid request URI {uri:?}: {e}"),
            })?;
        let unreachable = |m: String| TransportError::Unreachable(format!("GET {path_and_query}: {m}"));
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let body = Limited::new(body, 64 << 10)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let raw = RawResponse {
                status: parts.status,
                body,
            };
            return Err(decode::<serde_json::Value>(raw, false)
                .err()
                .unwrap_or_else(|| TransportError::Rejected {
                    status: parts.status.as_u16(),
                    kind: "unknown".into(),
                    message: "unexpected answer".into(),
                }));
        }
        Ok(EventStream {
            body,
            buf: BytesMut::new(),
        })
    }
}

impl EventStream {
    /// The next message; `Ok(None)` when the server ended the stream. Comments (such as
    /// keepalives) are skipped.
    pub async fn next(&mut self) -> Result<Option<SseMessage>, TransportError> {
        loop {
            while let Some(block) = self.take_block() {
                if let Some(message) = parse_block(&block) {
                    return Ok(Some(message));
                }
            }
            if self.buf.len() > MAX_MESSAGE_BYTES {
                return Err(TransportError::Unreachable("event stream: message too long".into()));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(TransportError::Unreachable(format!("event stream broke: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// Removes one complete block (up to a blank line) from the buffer.
    fn take_block(&mut self) -> Option<String> {
        let text = &self.buf[..];
        let end = text.windows(2).position(|w| w == b"\n\n")?;
        let block = String::from_utf8_lossy(&text[..end]).replace('\r', "");
        self.buf.advance(end + 2);
        Some(block)
    }
}

/// The message of one block, `None` for a block of comments only.
fn parse_block(block: &str) -> Option<SseMessage> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if event.is_none() && data.is_empty() {
        return None;
    }
    Some(SseMessage {
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_as_sse_does() {
        let m = parse_block("event: job\ndata: {\"a\":1}").unwrap();
        assert_eq!((m.event.as_str(), m.data.as_str()), ("job", "{\"a\":1}"));
        assert_eq!(parse_block(": keepalive"), None);
        let m = parse_block("data: a\ndata: b").unwrap();
        assert_eq!((m.event.as_str(), m.data.as_str()), ("message", "a\nb"));
    }
}
