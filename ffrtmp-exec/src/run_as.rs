//! [`RunAs`]: the unprivileged user workloads run as when the agent runs as root, so that a
//! workload compromised by hostile media cannot read the agent's memory, keys or other jobs'
//! files, nor change its cgroups.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::unistd::User;

use crate::error::ExecError;

/// The system user an agent running as root creates for its workloads when none is named.
pub const DEFAULT_WORKER: &str = "ffrtmp-worker";

/// A user that children run as: its uid, primary group and the supplementary groups the
/// user database gives it (e.g. `render` for a VAAPI device), never those of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its home directory (the children's `HOME`).
    pub home: PathBuf,
    /// Its groups from the user database (the primary group included).
    pub groups: Vec<u32>,
}

impl RunAs {
    /// The user named `name` from the system's user database.
    ///
    /// ```
    /// let root = ffrtmp_exec::RunAs::lookup("root").unwrap();
    /// assert_eq!((root.uid, root.gid), (0, 0));
    /// assert!(ffrtmp_exec::RunAs::lookup("no-such-user-here").is_err());
    /// ```
    pub fn lookup(name: &str) -> Result<RunAs, ExecError> {
        match User::from_name(name) {
            Ok(Some(u)) => {
                let groups = std::ffi::CString::new(u.name.clone())
                    .ok()
                    .and_then(|c| nix::unistd::getgrouplist(&c, u.gid).ok())
                    .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect())
                    .unwrap_or_else(|| vec![u.gid.as_raw()]);
                Ok(RunAs {
                    name: u.name,
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                    home: u.dir,
                    groups,
                })
            }
            Ok(None) => Err(ExecError::NodeUnavailable(format!(
                "no user named {name:?} on this host"
            ))),
            Err(e) => Err(ExecError::NodeUnavailable(format!("looking up user {name:?}: {e}"))),
        }
    }

    /// [`DEFAULT_WORKER`], created as a system user without a login shell when missing
    /// (`useradd`). When it cannot be created this fails: sharing a user such as `nobody`
    /// with other services is only done when asked for (`--run-as nobody`).
    pub fn system_worker() -> Result<RunAs, ExecError> {
        RunAs::created(DEFAULT_WORKER, "useradd")
    }

    /// The user `name`, created with the `useradd` program when missing.
    fn created(name: &str, useradd: &str) -> Result<RunAs, ExecError> {
        if let Ok(u) = RunAs::lookup(name) {
            return Ok(u);
        }
        let created = std::process::Command::new(useradd)
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        // Another agent on the host may have created it meanwhile: look again either way.
        match RunAs::lookup(name) {
            Ok(u) => Ok(u),
            Err(_) => {
                let why = match created {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                Err(ExecError::NodeUnavailable(format!(
                    "cannot create the workload user {name} ({why}); create it, or name an existing \
                     unprivileged user with --run-as (e.g. --run-as nobody)"
                )))
            }
        }
    }

    /// The user an agent runs workloads as, given `--run-as` (`requested`): as root, the named
    /// user, or [`RunAs::system_worker`] when none is named, and `None` (stay root) for
    /// `root`; not as root, `None` (its own user), and naming any other user is an error.
    pub fn for_agent(requested: Option<&str>) -> Result<Option<RunAs>, ExecError> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            return match requested {
                None => Ok(None),
                Some(name) if RunAs::lookup(name)?.uid == euid.as_raw() => Ok(None),
                Some(name) => Err(ExecError::NodeUnavailable(format!(
                    "--run-as {name} needs the agent to run as root (it runs as uid {euid})"
                ))),
            };
        }
        let user = match requested {
            None => RunAs::system_worker()?,
            Some(name) => RunAs::lookup(name)?,
        };
        Ok(Some(user).filter(|u| !u.is_root()))
    }

    /// Whether this is the superuser (running as it drops nothing).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Makes sure this user's workloads can write their outputs to `dir` without the agent
    /// giving away a directory the operator owns: a missing `dir` is created (mode 0750)
    /// and given to this user; an existing one must already be this user's (a directory,
    /// not a symlink), and is otherwise refused, never changed.
    pub fn own_dir(&self, dir: &Path) -> Result<(), ExecError> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let unusable = |e: std::io::Error| {
            ExecError::NodeUnavailable(format!(
                "output directory {} cannot be given to user {}: {e}",
                dir.display(),
                self.name
            ))
        };
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(unusable)?;
        }
        match std::fs::DirBuilder::new().mode(0o750).create(dir) {
            // Created here, so nobody else's: safe to hand over.
            Ok(()) => return std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid)).map_err(unusable),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(unusable(e)),
        }
        let meta = std::fs::symlink_metadata(dir).map_err(unusable)?;
        if !meta.is_dir() || meta.uid() != self.uid {
            return Err(ExecError::NodeUnavailable(format!(
                "output directory {} exists and is not owned by user {} (uid {}), which runs the workloads; \
                 the agent does not change its owner: chown it to that user, or name a directory that does \
                 not exist yet (the agent creates it)",
                dir.display(),
                self.name,
                self.uid
            )));
        }
        Ok(())
    }

    /// Checks, as this user, that `dir` can be listed and entered (and written when
    /// `write`): a parent directory closed to the user fails here, at start-up, rather than
    /// every job later.
    pub fn check_dir(&self, dir: &Path, write: bool) -> Result<(), ExecError> {
        let script = if write {
            "test -d \"$1\" && test -r \"$1\" && test -x \"$1\" && test -w \"$1\""
        } else {
            "test -d \"$1\" && test -r \"$1\" && test -x \"$1\""
        };
        let status = self
            .test_as(script, dir)
            .status()
            .map_err(|e| self.not_checked(dir, e))?;
        if status.success() {
            return Ok(());
        }
        Err(ExecError::NodeUnavailable(format!(
            "user {} (uid {}) cannot {} {}: make it and every parent directory reachable by that user, \
             or choose another with --run-as",
            self.name,
            self.uid,
            if write { "write to" } else { "read" },
            dir.display()
        )))
    }

    /// Checks, as this user, that the input file `path` can be read, so that a file closed
    /// to the workload fails with that reason rather than as an encoder error.
    pub async fn check_readable(&self, path: &Path) -> Result<(), ExecError> {
        let mut cmd = tokio::process::Command::from(self.test_as("test -r \"$1\"", path));
        let status = cmd.status().await.map_err(|e| self.not_checked(path, e))?;
        if status.success() {
            return Ok(());
        }
        Err(ExecError::NodeUnavailable(format!(
            "input {} is not readable by user {} (uid {}), which runs the workloads: make it (and its \
             directories) readable by that user",
            path.display(),
            self.name,
            self.uid
        )))
    }

    /// `sh -c script check path` as this user, with the child environment and no output.
    fn test_as(&self, script: &str, path: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new("sh");
        let who = self.credentials();
        // SAFETY: `assume` only makes async-signal-safe calls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || who.assume());
        }
        cmd.args(["-c", script, "check"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::child_env::scrub_std(&mut cmd, Some(self));
        cmd
    }

    /// The ids to take on in a child, prepared before it forks.
    pub(crate) fn credentials(&self) -> Credentials {
        Credentials {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
        }
    }

    fn not_checked(&self, path: &Path, e: std::io::Error) -> ExecError {
        ExecError::NodeUnavailable(format!("checking {} as user {}: {e}", path.display(), self.name))
    }
}

/// A user's ids, ready to be taken on between fork and exec.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Credentials {
    /// Sets the groups, the gid, then the uid of the calling process (still privileged: the
    /// groups first). Async-signal-safe: system calls only, no allocation.
    pub(crate) fn assume(&self) -> std::io::Result<()> {
        use nix::libc;
        // SAFETY: plain system calls on a buffer that lives as long as `self`.
        let failed = unsafe {
            libc::setgroups(self.groups.len(), self.groups.as_ptr()) != 0
                || libc::setgid(self.gid) != 0
                || libc::setuid(self.uid) != 0
        };
        if failed {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_cannot_be_created_is_an_error_not_nobody() {
        let err = RunAs::created("ffrtmp-no-such-worker", "false").unwrap_err();
        assert_eq!(err.kind(), ffrtmp_core::ErrorKind::NodeUnavailable);
        assert!(err.to_string().contains("--run-as nobody"), "{err}");
    }
}
