//! [`BenchError`], the error of every fallible benchmark step, and [`Context`], which adds
//! what was being done to a failure (the way the CLI prints it: `reading x.json: …`).

use std::net::AddrParseError;

use ffrtmp_core::{StoreError, TransportError};
use ffrtmp_http::HttpError;
use ffrtmp_power::compare::RunsFileError;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON could not be parsed or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A runs file (JSON or CSV) is malformed.
    #[error(transparent)]
    RunsFile(#[from] RunsFileError),
    /// A request to the master failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The HTTPS client or server could not be set up.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An address could not be parsed.
    #[error(transparent)]
    Addr(#[from] AddrParseError),
    /// The input (a matrix, flags, a runs file) is not usable; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// Something did not happen in time; the text says what.
    #[error("{0}")]
    Timeout(String),
    /// `source` happened while doing what `context` says.
    #[error("{context}")]
    Context {
        /// What was being done, e.g. `reading runs.json`.
        context: String,
        /// The failure.
        #[source]
        source: Box<BenchError>,
    },
}

impl BenchError {
    /// A [`BenchError::Invalid`] with this text.
    pub fn invalid(text: impl Into<String>) -> BenchError {
        BenchError::Invalid(text.into())
    }

    /// The error and its causes on one line, `context: cause: …`, as the CLI prints it.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// Adds context to a failure, turning it into a [`BenchError::Context`].
pub trait Context<T> {
    /// Wraps the error with `context`.
    fn context(self, context: impl Into<String>) -> Result<T, BenchError>;
    /// Wraps the error with the context `f` returns (only called on failure).
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T, BenchError>;
}

impl<T, E: Into<BenchError>> Context<T> for Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T, BenchError> {
        self.with_context(|| context)
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T, BenchError> {
        self.map_err(|e| BenchError::Context {
            context: f().into(),
            source: Box::new(e.into()),
        })
    }
}

/// The result of a benchmark step.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_prints_before_the_cause_in_the_source_chain() {
        let err = std::fs::read_to_string("/nonexistent/ffrtmp-bench")
            .context("reading x")
            .unwrap_err();
        assert_eq!(err.to_string(), "reading x");
        let cause = std::error::Error::source(&err).expect("a cause").to_string();
        assert!(cause.contains("No such file"), "{cause}");
        assert_eq!(err.chain(), format!("reading x: {cause}"));
    }
}
