//! Bearer API key, compared in constant time.
//!
//! The expected key is kept only as its SHA-256 digest. A presented key is hashed the same
//! way and the two 32-byte digests are compared with `subtle`, so neither the content nor
//! the length of the key shows in the timing. The key is never logged: [`ApiKey`]'s
//! `Debug` prints nothing of it.

use std::fmt;

use http::{header, HeaderMap};
use ring::digest::{digest, SHA256};
use subtle::ConstantTimeEq;

use crate::error::HttpError;

/// The API key a server expects.
///
/// ```
/// use ffrtmp_http::ApiKey;
/// use http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
///
/// let key = ApiKey::new("s3cret-key").unwrap();
/// let mut headers = HeaderMap::new();
/// assert!(!key.authorizes(&headers));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret-key"));
/// assert!(key.authorizes(&headers));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret-kez"));
/// assert!(!key.authorizes(&headers));
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// ```
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl ApiKey {
    /// Keys shorter than this are refused.
    pub const MIN_LEN: usize = 8;

    /// The key to expect. Refuses keys shorter than [`ApiKey::MIN_LEN`] bytes and keys with
    /// characters that cannot travel in a header (control characters, spaces).
    pub fn new(key: &str) -> Result<Self, HttpError> {
        if key.len() < Self::MIN_LEN {
            return Err(HttpError::Config(format!(
                "the API key must be at least {} characters",
                Self::MIN_LEN
            )));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HttpError::Config(
                "the API key must be printable ASCII without spaces".to_string(),
            ));
        }
        Ok(ApiKey {
            digest: sha256(key.as_bytes()),
        })
    }

    /// Whether `presented` is the key, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.digest.ct_eq(&sha256(presented)).into()
    }

    /// Whether the headers carry exactly one `Authorization: Bearer <key>` with this key.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        match bearer_token(value.as_bytes()) {
            Some(token) => self.matches(token),
            None => false,
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The token of a `Bearer` authorization value (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let token = value[SCHEME.len()..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accepts_only_the_key() {
        let key = ApiKey::new("correct-horse").unwrap();
        assert!(key.authorizes(&headers(&["Bearer correct-horse"])));
        assert!(key.authorizes(&headers(&["bearer correct-horse"])));
        assert!(!key.authorizes(&headers(&["Bearer correct-hors"])));
        assert!(!key.authorizes(&headers(&["Bearer correct-horsee"])));
        assert!(!key.authorizes(&headers(&["Basic correct-horse"])));
        assert!(!key.authorizes(&headers(&["correct-horse"])));
        assert!(!key.authorizes(&headers(&["Bearer "])));
        assert!(!key.authorizes(&headers(&[])));
        assert!(!key.authorizes(&headers(&["Bearer correct-horse", "Bearer correct-horse"])));
    }

    #[test]
    fn refuses_weak_keys() {
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("short").is_err());
        assert!(ApiKey::new("has a space").is_err());
        assert!(ApiKey::new("long-enough").is_ok());
    }
}
