//! API keys from flags and key files, so that keys can stay out of `ps` (`--api-key-file`,
//! `*_API_KEY_FILE`): the one key a client sends ([`client_key`]) and a master's keyring by
//! role ([`master_keyring`]).

use std::path::{Path, PathBuf};

use crate::auth::read_key_file;
use crate::{HttpError, Keyring, Role, Roles};

/// Shortest key a master accepts.
pub const MIN_KEY_LEN: usize = 16;

/// The one key a client sends: `--api-key` or the first key of `--api-key-file`. `None`
/// when neither is given; an error when both are.
pub fn client_key(key: Option<&str>, file: Option<&Path>) -> Result<Option<String>, HttpError> {
    match (key.filter(|k| !k.is_empty()), file) {
        (Some(_), Some(file)) => Err(HttpError::Keys(format!(
            "give the API key either with --api-key (MASTER_API_KEY) or with --api-key-file ({}), not both",
            file.display()
        ))),
        (Some(key), None) => Ok(Some(key.to_string())),
        (None, Some(file)) => Ok(read_key_file(file)?.into_iter().next()),
        (None, None) => Ok(None),
    }
}

/// The key files of a master, by role.
#[derive(Clone, Debug, Default)]
pub struct RoleKeyFiles {
    /// Keys with every role (`--api-key-file`).
    pub all: Option<PathBuf>,
    /// Agent keys (`--agent-key-file`).
    pub agent: Vec<PathBuf>,
    /// User keys (`--user-key-file`).
    pub user: Vec<PathBuf>,
    /// Read-only keys (`--read-key-file`).
    pub read: Vec<PathBuf>,
}

/// The master's keyring: `--api-key` (all roles) and every key of every key file. Each key
/// must be at least [`MIN_KEY_LEN`] characters; at least one key must be given.
pub fn master_keyring(api_key: Option<&str>, files: &RoleKeyFiles) -> Result<Keyring, HttpError> {
    let mut ring = Keyring::new();
    let mut add = |key: &str, roles: Roles, from: &str| -> Result<(), HttpError> {
        if key.len() < MIN_KEY_LEN {
            return Err(HttpError::Keys(format!(
                "every API key must be at least {MIN_KEY_LEN} characters (a key from {from} is shorter)"
            )));
        }
        ring.add(key, roles)
            .map_err(|e| HttpError::Keys(format!("an API key from {from}: {e}")))
    };
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        add(key, Roles::ALL, "--api-key")?;
    }
    let sets = [
        (files.all.iter().collect::<Vec<_>>(), Roles::ALL),
        (files.agent.iter().collect(), Roles::of(Role::Agent)),
        (files.user.iter().collect(), Roles::of(Role::User)),
        (files.read.iter().collect(), Roles::of(Role::ReadOnly)),
    ];
    for (paths, roles) in sets {
        for path in paths {
            for key in read_key_file(path)? {
                add(&key, roles, &path.display().to_string())?;
            }
        }
    }
    if ring.is_empty() {
        return Err(HttpError::Keys(
            "no API key: give --api-key-file (or --api-key), or keys by role with --agent-key-file, \
             --user-key-file and --read-key-file"
                .into(),
        ));
    }
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_key_comes_from_the_flag_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "# agent key\nkey-from-the-file-0001\n").unwrap();
        assert_eq!(
            client_key(None, Some(&file)).unwrap().as_deref(),
            Some("key-from-the-file-0001")
        );
        assert_eq!(client_key(Some("flag-key"), None).unwrap().as_deref(), Some("flag-key"));
        assert_eq!(client_key(Some(""), None).unwrap(), None);
        assert!(client_key(Some("flag-key"), Some(&file)).is_err());
        assert!(client_key(None, Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn master_keyring_needs_long_keys_and_at_least_one() {
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("agents");
        std::fs::write(&agents, "agent-key-0000000001\nagent-key-0000000002\n").unwrap();
        let files = RoleKeyFiles {
            agent: vec![agents.clone()],
            ..RoleKeyFiles::default()
        };
        assert_eq!(master_keyring(None, &files).unwrap().len(), 2);
        assert_eq!(master_keyring(Some("all-roles-key-000001"), &files).unwrap().len(), 3);
        assert!(master_keyring(None, &RoleKeyFiles::default()).is_err());
        assert!(master_keyring(Some("short"), &RoleKeyFiles::default()).is_err());
        std::fs::write(&agents, "too-short\n").unwrap();
        assert!(master_keyring(None, &files).is_err());
    }
}
