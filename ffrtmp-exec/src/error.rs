//! [`ExecError`]: what can go wrong in this crate before or around a workload.

use std::io;
use std::path::PathBuf;

use ffrtmp_core::{ErrorKind, JobError};

/// An error of the execution engine itself (not a workload's own failure, which is an
/// [`ExecOutcome`](ffrtmp_core::ExecOutcome)).
///
/// Every variant maps onto a job [`ErrorKind`] with [`ExecError::kind`], so that callers can
/// turn it into a [`JobError`] and the master knows whether to retry.
///
/// ```
/// use ffrtmp_exec::ExecError;
/// use ffrtmp_core::ErrorKind;
/// let e = ExecError::ProgramNotFound { program: "/opt/ffmpeg".into() };
/// assert_eq!(e.to_string(), "ffmpeg not found at /opt/ffmpeg");
/// assert_eq!(e.kind(), ErrorKind::NodeUnavailable);
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A job parameter cannot be honoured on this node (path outside the input directory,
    /// RTMP output without an endpoint, invalid spec…).
    #[error("{0}")]
    InvalidParameter(String),
    /// A live destination or source outside what the node is configured to use.
    #[error("{0}")]
    DestinationRefused(String),
    /// A live destination went away and did not come back within the reconnect window.
    #[error("{0}")]
    DestinationLost(String),
    /// The program to run does not exist.
    #[error("{} not found at {}", program_name(.program), .program.display())]
    ProgramNotFound {
        /// The path that was tried.
        program: PathBuf,
    },
    /// The program exists but could not be started.
    #[error("cannot start {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The node cannot take the job right now (scratch disk full, missing engine…).
    #[error("{0}")]
    NodeUnavailable(String),
    /// A cgroup file or directory could not be created, written or read back.
    #[error("cgroup {op} {}: {source}", .path.display())]
    Cgroup {
        /// What was being done (`create`, `write`, `read back`, `remove`…).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A cgroup limit was written but reads back differently.
    #[error("cgroup limit {} reads back {found:?}, wrote {wrote:?}", .path.display())]
    CgroupReadBack {
        /// The limit file.
        path: PathBuf,
        /// What was written.
        wrote: String,
        /// What was read back.
        found: String,
    },
    /// The encode finished but its output does not decode in full or does not hold what the
    /// job asked for (see [`crate::verify`]).
    #[error("{0}")]
    OutputInvalid(String),
    /// Any other I/O failure around the workload (pipes, waiting, signals).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn program_name(program: &std::path::Path) -> String {
    program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.display().to_string())
}

impl ExecError {
    /// The job error kind this maps to: parameters are terminal, node trouble is transient.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecError::InvalidParameter(_) => ErrorKind::InvalidParameter,
            ExecError::DestinationRefused(_) => ErrorKind::DestinationRefused,
            ExecError::DestinationLost(_) => ErrorKind::DestinationLost,
            ExecError::OutputInvalid(_) => ErrorKind::OutputInvalid,
            ExecError::ProgramNotFound { .. } | ExecError::NodeUnavailable(_) => ErrorKind::NodeUnavailable,
            ExecError::Spawn { source, .. } if is_no_space(source) => ErrorKind::NodeUnavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        ExecError::Io {
            context: context.into(),
            source,
        }
    }
}

fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ENOSPC)
}

impl From<ExecError> for JobError {
    fn from(e: ExecError) -> Self {
        JobError::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            ExecError::InvalidParameter("x".into()).kind(),
            ErrorKind::InvalidParameter
        );
        let nospace = ExecError::Spawn {
            program: "/bin/x".into(),
            source: io::Error::from_raw_os_error(nix::libc::ENOSPC),
        };
        assert_eq!(nospace.kind(), ErrorKind::NodeUnavailable);
        let other = ExecError::io("wait", io::Error::other("boom"));
        assert_eq!(other.kind(), ErrorKind::Internal);
        let je: JobError = ExecError::ProgramNotFound {
            program: "/usr/bin/ffmpeg".into(),
        }
        .into();
        assert_eq!(je.message, "ffmpeg not found at /usr/bin/ffmpeg");
    }
}
