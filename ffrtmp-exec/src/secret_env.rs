//! Keeping credentials out of a binary's environment after start-up.
//!
//! `/proc/<pid>/environ` shows the environment block a process was *started* with;
//! removing a variable later (`std::env::remove_var`) does not change it, so anything able
//! to read that file (a workload running as the same user, a debugger) would still find the
//! key. [`hide_secrets`] therefore re-executes the binary once with the credentials taken out
//! of its environment (and of its command line, for the flags named), handing them over
//! through an inherited, sealed memfd that the new image checks, reads and closes at once
//! (a memfd, unlike a pipe, never blocks the writer however much it holds).

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::stat::{fstat, SFlag};

/// Why credentials could not be kept out of the environment.
#[derive(Debug, thiserror::Error)]
pub enum SecretEnvError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A hand-over is missing, malformed or too large.
    #[error("{0}")]
    Invalid(String),
}

fn io_err(what: impl Into<String>, source: impl Into<std::io::Error>) -> SecretEnvError {
    SecretEnvError::Io {
        what: what.into(),
        source: source.into(),
    }
}

/// Names the hand-over descriptor across the re-exec (a number, not a secret).
const SECRETS_FD_ENV: &str = "FFRTMP_SECRETS_FD";
/// Largest hand-over: far more than any set of keys, and a bound on what is read back.
const MAX_HANDOVER: usize = 48 * 1024;
/// The seals of the hand-over: its content cannot change once written.
fn handover_seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK
}

/// Makes this process non-dumpable (`PR_SET_DUMPABLE` 0): processes of the same user can
/// no longer read its memory or environment through `/proc/<pid>/` nor attach to it, and it
/// leaves no core dump. Call once credentials are in memory, before any child is started.
pub fn forbid_inspection() -> Result<(), SecretEnvError> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| io_err("making the process non-dumpable", e))
}

/// Whether an environment variable named `name` holds a credential.
///
/// ```
/// use ffrtmp_exec::secret_env::is_secret;
/// assert!(is_secret("MASTER_API_KEY") && is_secret("FFRTMP_AGENT_API_KEY") && is_secret("X_TOKEN"));
/// assert!(!is_secret("MASTER_API_KEY_FILE") && !is_secret("PATH"));
/// ```
pub fn is_secret(name: &str) -> bool {
    crate::child_env::SECRET_ENV.contains(&name)
        || ["_API_KEY", "_TOKEN", "_PASSWORD", "_SECRET"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// The credentials restored into this process's (library-level) environment for flag
/// parsing; [`Restored::forget`] removes them again.
#[derive(Debug, Default)]
#[must_use = "call forget() once the flags are parsed"]
pub struct Restored {
    names: Vec<OsString>,
}

impl Restored {
    /// Removes the restored variables from the environment (children never inherit them,
    /// and `/proc/<pid>/environ` never showed them). Call before any thread is started.
    pub fn forget(self) {
        for name in self.names {
            std::env::remove_var(name);
        }
    }
}

/// Takes credentials out of the process environment and command line. Must run first in
/// `main`, before any thread exists (it changes the environment and may replace the process
/// image).
///
/// - When this process was started with credentials (variables for which [`is_secret`]
///   holds, or a flag of `flags` such as `("--api-key", "MASTER_API_KEY")`), it re-executes
///   itself without them and does not return; the new image gets them through a pipe.
/// - In that new image (or when there were none), it puts what the pipe carried into the
///   environment for flag parsing (the variable named with each flag), and returns which,
///   to be [forgotten](Restored::forget) once parsed.
pub fn hide_secrets(flags: &[(&str, &str)]) -> Result<Restored, SecretEnvError> {
    if let Some(fd) = std::env::var_os(SECRETS_FD_ENV) {
        std::env::remove_var(SECRETS_FD_ENV);
        return restore(&fd);
    }
    let mut secrets: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(is_secret))
        .collect();
    let mut argv = std::env::args_os();
    let arg0 = argv.next().unwrap_or_default();
    let (args, from_flags) = split_secret_flags(argv, flags);
    secrets.extend(from_flags);
    if secrets.is_empty() {
        return Ok(Restored::default());
    }
    reexec(arg0, args, secrets)
}

/// Takes the values of `flags` (`--flag value` or `--flag=value`) out of `args`, each
/// paired with the environment variable named with its flag.
///
/// ```
/// use std::ffi::OsString;
/// let args = ["--name", "a", "--api-key", "k1", "--api-key=k2", "--x"].map(OsString::from);
/// let (rest, found) = ffrtmp_exec::secret_env::split_secret_flags(args, &[("--api-key", "MASTER_API_KEY")]);
/// assert_eq!(rest, ["--name", "a", "--x"]);
/// assert_eq!(found, [("MASTER_API_KEY".into(), "k1".into()), ("MASTER_API_KEY".into(), "k2".into())]);
/// ```
pub fn split_secret_flags(
    args: impl IntoIterator<Item = OsString>,
    flags: &[(&str, &str)],
) -> (Vec<OsString>, Vec<(OsString, OsString)>) {
    let mut rest = Vec::new();
    let mut secrets = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        let hit = flags.iter().find_map(|(flag, var)| {
            let f = flag.as_bytes();
            if bytes == f {
                Some((var, None))
            } else if bytes.len() > f.len() && bytes.starts_with(f) && bytes[f.len()] == b'=' {
                Some((var, Some(OsStr::from_bytes(&bytes[f.len() + 1..]).to_os_string())))
            } else {
                None
            }
        });
        match hit {
            Some((var, Some(value))) => secrets.push(((*var).into(), value)),
            Some((var, None)) => match args.next() {
                Some(value) => secrets.push(((*var).into(), value)),
                // No value: left for the flag parser to report.
                None => rest.push(arg),
            },
            None => rest.push(arg),
        }
    }
    (rest, secrets)
}

/// Replaces this process with itself, minus the credentials, which go through a memfd.
fn reexec(arg0: OsString, args: Vec<OsString>, secrets: Vec<(OsString, OsString)>) -> Result<Restored, SecretEnvError> {
    let mut data = Vec::new();
    for (k, v) in &secrets {
        data.extend_from_slice(k.as_bytes());
        data.push(0);
        data.extend_from_slice(v.as_bytes());
        data.push(0);
    }
    if data.len() > MAX_HANDOVER {
        return Err(SecretEnvError::Invalid(format!(
            "credentials in the environment exceed {MAX_HANDOVER} bytes"
        )));
    }
    let memfd = memfd_create(
        c"ffrtmp-credentials",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .map_err(|e| io_err("creating the credential hand-over", e))?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(&data)
        .map_err(|e| io_err("handing credentials over", e))?;
    // The offset is shared with the next image, which reads from the start.
    std::io::Seek::rewind(&mut file).map_err(|e| io_err("handing credentials over", e))?;
    fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(handover_seals()))
        .map_err(|e| io_err("sealing the credential hand-over", e))?;
    let read = OwnedFd::from(file);
    fcntl(read.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map_err(|e| io_err("passing the credential hand-over on", e))?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(arg0)
        .args(args)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| !secrets.iter().any(|(s, _)| s == k)))
        .env(SECRETS_FD_ENV, read.as_raw_fd().to_string());
    let err = cmd.exec();
    drop(read);
    Err(io_err("re-executing without credentials in the environment", err))
}

/// In the re-executed image: checks that the descriptor named is the sealed memfd a previous
/// image made (not whatever a caller put at that number), reads it and restores its variables.
fn restore(fd: &OsStr) -> Result<Restored, SecretEnvError> {
    let fd: i32 = fd
        .to_str()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 2)
        .ok_or_else(|| SecretEnvError::Invalid(format!("{SECRETS_FD_ENV} is not a descriptor number")))?;
    // SAFETY: the descriptor was opened for this purpose by the previous image and is owned
    // by nothing else here; a wrong number fails the read below.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    check_handover(&owned)
        .map_err(|e| SecretEnvError::Invalid(format!("{SECRETS_FD_ENV}={fd} is not a credential hand-over: {e}")))?;
    let mut data = Vec::new();
    std::fs::File::from(owned)
        .take(MAX_HANDOVER as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| io_err("reading handed-over credentials", e))?;
    if data.len() > MAX_HANDOVER {
        return Err(SecretEnvError::Invalid(format!(
            "handed-over credentials exceed {MAX_HANDOVER} bytes"
        )));
    }
    let mut parts = data.split(|b| *b == 0);
    let mut names = Vec::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k.is_empty() {
            break;
        }
        let name = OsString::from_vec(k.to_vec());
        std::env::set_var(&name, OsStr::from_bytes(v));
        names.push(name);
    }
    Ok(Restored { names })
}

/// A hand-over is an anonymous (unlinked) regular file carrying all of [`handover_seals`]:
/// what [`reexec`] makes, and nothing a file, pipe or socket inherited by mistake would be.
fn check_handover(fd: &OwnedFd) -> Result<(), SecretEnvError> {
    let st = fstat(fd.as_raw_fd()).map_err(|e| io_err("fstat", e))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG || st.st_nlink != 0 {
        return Err(SecretEnvError::Invalid("not an anonymous memory file".into()));
    }
    let seals = fcntl(fd.as_raw_fd(), FcntlArg::F_GET_SEALS).map_err(|e| io_err("not a memfd", e))?;
    if !SealFlag::from_bits_truncate(seals).contains(handover_seals()) {
        return Err(SecretEnvError::Invalid("not sealed".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn after_forbid_inspection_the_process_is_not_dumpable() {
        super::forbid_inspection().unwrap();
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
    }
}
