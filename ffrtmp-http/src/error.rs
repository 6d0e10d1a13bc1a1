//! Errors: [`HttpError`] for setting things up, [`ApiError`] for what a request gets back.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use ffrtmp_core::StoreError;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::wire::ErrorBody;

/// Failures while configuring or starting the server or the client.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done (`reading certificate`, `writing key`…).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificates, keys or the TLS configuration were refused.
    #[error("TLS: {0}")]
    Tls(String),
    /// A configuration value is unusable (empty API key, bad base URL…).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// API keys given to a binary are unusable (too short, none, given twice).
    #[error("{0}")]
    Keys(String),
}

impl HttpError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HttpError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// An error answer of the API: a status and a JSON body `{"error":{"kind","message"}}`.
///
/// ```
/// use ffrtmp_http::ApiError;
/// use http::StatusCode;
/// let err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "expected value at line 1 column 1");
/// let body: serde_json::Value = serde_json::from_slice(&err.body_bytes()).unwrap();
/// assert_eq!(body["error"]["kind"], "invalid_json");
/// assert_eq!(err.status(), StatusCode::BAD_REQUEST);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    /// An error with the given status, kind (a stable snake_case word) and message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 400 with the given kind.
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key: send `Authorization: Bearer <key>`",
        )
    }

    /// 403 `forbidden`: a valid key that lacks the role the route needs.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 408 `body_timeout`: the request body did not arrive in time.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {limit:?}"),
        )
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("allowed methods: {}", allowed.join(", ")),
        )
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error kind, e.g. `invalid_json`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body.
    pub fn body_bytes(&self) -> Bytes {
        let body = ErrorBody::new(self.kind, self.message.clone());
        // Serializing two strings cannot fail.
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// The complete response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body_bytes()));
        *response.status_mut() = self.status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // A client without a valid key, or one trickling its body, gets no kept-alive
        // connection to hold: the server closes it after this answer.
        if matches!(self.status, StatusCode::UNAUTHORIZED | StatusCode::REQUEST_TIMEOUT) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        match err {
            StoreError::NotFound { .. } => ApiError::not_found(message),
            StoreError::InvalidSpec(_) => ApiError::bad_request("invalid_spec", message),
            StoreError::InvalidTransition(_) => ApiError::new(StatusCode::CONFLICT, "invalid_transition", message),
            StoreError::Fenced { .. } => ApiError::new(StatusCode::CONFLICT, "fenced", message),
            StoreError::InvalidRequest(_) => ApiError::bad_request("invalid_request", message),
            StoreError::Backend(_) => {
                // The details are for the operator's log, not for the client.
                tracing::error!(error = %message, "store backend error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "backend",
                    "the job store failed; the operation did not happen (see the master's log)",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobState, NodeId};

    #[test]
    fn store_errors_map_to_statuses() {
        let fenced = StoreError::Fenced {
            job_id: JobId::new(),
            attempt: 1,
            node_id: NodeId::new(),
            state: JobState::Running,
            current_attempt: 2,
        };
        let cases = [
            (
                StoreError::NotFound {
                    what: "job",
                    id: "x".into(),
                },
                404,
                "not_found",
            ),
            (fenced, 409, "fenced"),
            (
                StoreError::InvalidTransition(JobState::Completed.transition(JobState::Queued).unwrap_err()),
                409,
                "invalid_transition",
            ),
            (StoreError::InvalidRequest("no".into()), 400, "invalid_request"),
            (StoreError::Backend("disk on fire".into()), 500, "backend"),
        ];
        for (err, status, kind) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status().as_u16(), status);
            assert_eq!(api.kind(), kind);
        }
    }

    #[test]
    fn backend_details_are_not_returned() {
        let api = ApiError::from(StoreError::Backend("password=hunter2".into()));
        assert!(!api.message().contains("hunter2"));
    }
}
