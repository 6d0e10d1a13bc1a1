//! Bearer API keys with roles, compared in constant time.
//!
//! An expected key is kept only as its SHA-256 digest. A presented key is hashed the same
//! way and the 32-byte digests are compared with `subtle`, so neither the content nor the
//! length of a key shows in the timing. A [`Keyring`] holds several keys, each with the
//! [`Roles`] it grants; a presented key is compared with every key of the ring, without
//! stopping at a match, so the timing does not tell which key matched. Keys are never
//! logged: `Debug` prints nothing of them.

use std::fmt;
use std::path::Path;

use http::{header, HeaderMap};
use ring::digest::{digest, SHA256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

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
        single_bearer(headers).is_some_and(|token| self.matches(token))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// What a key may do. Each route needs one role (see the crate documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Agents: register, heartbeat, claim, report.
    Agent,
    /// People and scripts: submit, list, cancel, retry; may also read.
    User,
    /// Dashboards and metrics scrapers: `GET` routes only.
    ReadOnly,
}

impl Role {
    fn bit(self) -> u8 {
        match self {
            Role::Agent => 1,
            Role::User => 2,
            Role::ReadOnly => 4,
        }
    }

    /// The lowercase name used in messages and flags (`agent`, `user`, `read`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::User => "user",
            Role::ReadOnly => "read",
        }
    }
}

/// A set of [`Role`]s.
///
/// ```
/// use ffrtmp_http::auth::{Role, Roles};
/// assert!(Roles::ALL.contains(Role::Agent));
/// assert!(Roles::of(Role::User).contains(Role::User));
/// assert!(!Roles::of(Role::User).contains(Role::Agent));
/// assert!(Roles::NONE.is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Roles(u8);

impl Roles {
    /// No role.
    pub const NONE: Roles = Roles(0);
    /// Every role: the key of `--api-key`.
    pub const ALL: Roles = Roles(7);

    /// Just `role`.
    pub fn of(role: Role) -> Self {
        Roles(role.bit())
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    pub fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }
}

/// The keys a server accepts, each with its roles. Several keys may share a role, so a key
/// can be rotated without downtime: add the new one, move the clients, remove the old one.
///
/// ```
/// use ffrtmp_http::auth::{Keyring, Role, Roles};
/// use http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
///
/// let mut ring = Keyring::new();
/// ring.add("agent-key-1", Roles::of(Role::Agent)).unwrap();
/// ring.add("agent-key-2", Roles::of(Role::Agent)).unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer agent-key-2"));
/// assert_eq!(ring.roles(&headers), Some(Roles::of(Role::Agent)));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer unknown-key"));
/// assert_eq!(ring.roles(&headers), None);
/// ```
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Vec<(ApiKey, Roles)>,
}

impl Keyring {
    /// An empty keyring; it authorizes nothing.
    pub fn new() -> Self {
        Keyring::default()
    }

    /// Adds `key` with `roles` (a key added twice gets the union of its roles). Refuses weak
    /// keys like [`ApiKey::new`].
    pub fn add(&mut self, key: &str, roles: Roles) -> Result<(), HttpError> {
        let key = ApiKey::new(key)?;
        match self.keys.iter_mut().find(|(k, _)| k.digest == key.digest) {
            Some((_, existing)) => *existing = existing.union(roles),
            None => self.keys.push((key, roles)),
        }
        Ok(())
    }

    /// Adds every key of a key file ([`read_key_file`]) with `roles`.
    pub fn add_file(&mut self, path: &Path, roles: Roles) -> Result<(), HttpError> {
        for key in read_key_file(path)? {
            self.add(&key, roles)?;
        }
        Ok(())
    }

    /// How many distinct keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The roles of the key in the headers' one `Authorization: Bearer <key>`; `None` when
    /// there is no such header or the key is unknown. Every key of the ring is compared.
    pub fn roles(&self, headers: &HeaderMap) -> Option<Roles> {
        let token = single_bearer(headers)?;
        let presented = sha256(token);
        let mut granted = 0u8;
        for (key, roles) in &self.keys {
            let hit = key.digest.ct_eq(&presented);
            granted = u8::conditional_select(&granted, &(granted | roles.0), hit);
        }
        (granted != 0).then_some(Roles(granted))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({} keys, <redacted>)", self.keys.len())
    }
}

/// Reads a key file: one key per line; blank lines and lines starting with `#` are
/// skipped, surrounding whitespace is trimmed. A file without any key is an error, so a
/// wrong path or an empty file never leaves a role without keys by accident.
pub fn read_key_file(path: &Path) -> Result<Vec<String>, HttpError> {
    let text = std::fs::read_to_string(path).map_err(|e| HttpError::io("reading key file", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            tracing::warn!(file = %path.display(), "API key file is readable by group or others; chmod 600 it");
        }
    }
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(HttpError::Config(format!("key file {} holds no key", path.display())));
    }
    Ok(keys)
}

/// The token of the headers' one `Authorization: Bearer` value; `None` when there is none
/// or more than one.
fn single_bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    bearer_token(value.as_bytes())
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
    fn keyring_grants_the_roles_of_the_matching_key() {
        let mut ring = Keyring::new();
        ring.add("agent-key-one", Roles::of(Role::Agent)).unwrap();
        ring.add("user-key-one", Roles::of(Role::User)).unwrap();
        ring.add("all-roles-key", Roles::ALL).unwrap();
        ring.add("user-key-one", Roles::of(Role::ReadOnly)).unwrap();
        assert_eq!(ring.len(), 3);
        let user = ring.roles(&headers(&["Bearer user-key-one"])).unwrap();
        assert!(user.contains(Role::User) && user.contains(Role::ReadOnly) && !user.contains(Role::Agent));
        assert_eq!(
            ring.roles(&headers(&["Bearer agent-key-one"])),
            Some(Roles::of(Role::Agent))
        );
        assert_eq!(ring.roles(&headers(&["Bearer all-roles-key"])), Some(Roles::ALL));
        assert_eq!(ring.roles(&headers(&["Bearer agent-key-on"])), None);
        assert_eq!(ring.roles(&headers(&[])), None);
        assert_eq!(Keyring::new().roles(&headers(&["Bearer agent-key-one"])), None);
        assert!(!format!("{ring:?}").contains("key-one"));
    }

    #[test]
    fn key_files_hold_one_key_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "# rotated 2026-12\n  new-key-000001  \n\nold-key-000001\n").unwrap();
        assert_eq!(read_key_file(&path).unwrap(), ["new-key-000001", "old-key-000001"]);
        std::fs::write(&path, "# nothing\n\n").unwrap();
        assert!(matches!(read_key_file(&path), Err(HttpError::Config(_))));
        assert!(matches!(
            read_key_file(&dir.path().join("missing")),
            Err(HttpError::Io { .. })
        ));
    }

    #[test]
    fn refuses_weak_keys() {
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("short").is_err());
        assert!(ApiKey::new("has a space").is_err());
        assert!(ApiKey::new("long-enough").is_ok());
    }
}
