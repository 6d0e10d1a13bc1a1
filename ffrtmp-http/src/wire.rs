//! JSON shapes of the API that are not types of `ffrtmp-core`: error bodies and list wrappers.

use ffrtmp_core::{Assignment, Node, NodeId, Scenario};
use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"error":{"kind":"...","message":"..."}}`.
///
/// ```
/// use ffrtmp_http::wire::ErrorBody;
/// let body = ErrorBody::new("unauthorized", "missing API key");
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"error":{"kind":"unauthorized","message":"missing API key"}}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// Shorthand constructor.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                kind: kind.into(),
                message: message.into(),
            },
        }
    }
}

/// Kind and message of an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable snake_case word (`invalid_json`, `fenced`, …).
    pub kind: String,
    /// For people.
    pub message: String,
}

/// Answer of `POST /nodes/{id}/claim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimResponse {
    /// Jobs handed to the node; empty when there was no work before the wait ended.
    pub assignments: Vec<Assignment>,
}

/// Answer of `GET /nodes`: one page of nodes in id order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeList {
    /// The nodes of this page.
    pub nodes: Vec<Node>,
    /// Pass as `after` for the next page; `null` on the last page (and from masters that
    /// did not page).
    #[serde(default)]
    pub next_cursor: Option<NodeId>,
}

/// Answer of `GET /scenarios`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioList {
    /// The scenarios of the original project, parsed.
    pub scenarios: Vec<Scenario>,
    /// The grammar every other scenario name follows.
    pub grammar: String,
}

/// Optional body of `POST /jobs/{id}/cancel`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why; recorded in the job's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer of `GET /health` and `GET /ready`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: String,
}

/// The scenario grammar as shown by `GET /scenarios`.
pub const SCENARIO_GRAMMAR: &str = "<height>p[<fps>]-<codec>, 4K = 2160p and 8K = 4320p, height 144..=4320, \
fps 1..=240 (default 30), codecs h264, h265, av1, vp9; named presets live-4k, live-stream, live-rtmp, live-abr, transcode";
