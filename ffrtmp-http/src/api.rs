//! [`ApiClient`]: the user operations (submit, list, cancel…) for the CLI.

use ffrtmp_core::{Job, JobId, JobPage, JobQuery, JobSpec, Node, NodePage, NodeQuery, TransportError};
use http::Method;

use crate::client::{CallOptions, ClientConfig, HttpClient};
use crate::error::HttpError;
use crate::wire::{CancelRequest, NodeList};

/// Calls of a person or script: 409 is [`TransportError::Rejected`] (status 409) here, not
/// `Fenced`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ffrtmp_core::{JobQuery, JobSpec};
/// use ffrtmp_http::{ApiClient, ClientConfig};
/// let api = ApiClient::new(ClientConfig::new("https://127.0.0.1:8443", "a-long-api-key").with_ca_cert("tls/cert.pem"))?;
/// let job = api.submit(&JobSpec::new("1080p-h264")).await?;
/// let page = api.list(&JobQuery::default()).await?;
/// println!("job {} queued; {} jobs listed", job.seq, page.jobs.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ApiClient {
    client: HttpClient,
}

const USER: CallOptions = CallOptions {
    idempotent: true,
    timeout: None,
    conflict_is_fenced: false,
};

impl ApiClient {
    /// A client with its own connection pool.
    pub fn new(config: ClientConfig) -> Result<Self, HttpError> {
        Ok(ApiClient {
            client: HttpClient::new(config)?,
        })
    }

    /// A client over an existing [`HttpClient`].
    pub fn from_client(client: HttpClient) -> Self {
        ApiClient { client }
    }

    /// The underlying client (for raw requests).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// `POST /jobs`. Not retried after a timeout, which could submit the job twice.
    pub async fn submit(&self, spec: &JobSpec) -> Result<Job, TransportError> {
        let options = CallOptions {
            idempotent: false,
            ..USER
        };
        self.client.call(Method::POST, "/jobs", Some(spec), options).await
    }

    /// `GET /jobs/{id}`, with history.
    pub async fn get(&self, id: JobId) -> Result<Job, TransportError> {
        self.client
            .call::<(), _>(Method::GET, &format!("/jobs/{id}"), None, USER)
            .await
    }

    /// `GET /jobs?…`: one page.
    pub async fn list(&self, query: &JobQuery) -> Result<JobPage, TransportError> {
        let path = format!("/jobs{}", query_string(query));
        self.client.call::<(), _>(Method::GET, &path, None, USER).await
    }

    /// `POST /jobs/{id}/cancel`, recorded as "canceled by user".
    pub async fn cancel(&self, id: JobId) -> Result<Job, TransportError> {
        self.cancel_with_reason(id, None).await
    }

    /// `POST /jobs/{id}/cancel` with a reason for the job's history.
    pub async fn cancel_with_reason(&self, id: JobId, reason: Option<&str>) -> Result<Job, TransportError> {
        let body = CancelRequest {
            reason: reason.map(str::to_string),
        };
        self.client
            .call(Method::POST, &format!("/jobs/{id}/cancel"), Some(&body), USER)
            .await
    }

    /// `POST /jobs/{id}/retry`.
    pub async fn retry(&self, id: JobId) -> Result<Job, TransportError> {
        self.client
            .call::<(), _>(Method::POST, &format!("/jobs/{id}/retry"), None, USER)
            .await
    }

    /// Every node: `GET /nodes`, following the pages.
    pub async fn nodes(&self) -> Result<Vec<Node>, TransportError> {
        let mut query = NodeQuery {
            after: None,
            limit: Some(NodeQuery::MAX_LIMIT),
        };
        let mut nodes = Vec::new();
        loop {
            let page = self.nodes_page(&query).await?;
            nodes.extend(page.nodes);
            // A cursor that does not move would loop forever; stop on it.
            match page.next_cursor {
                Some(cursor) if query.after.is_none_or(|after| cursor > after) => query.after = Some(cursor),
                _ => return Ok(nodes),
            }
        }
    }

    /// `GET /nodes?limit=&after=`: one page of nodes in id order.
    pub async fn nodes_page(&self, query: &NodeQuery) -> Result<NodePage, TransportError> {
        let mut parts = Vec::new();
        if let Some(limit) = query.limit {
            parts.push(format!("limit={limit}"));
        }
        if let Some(after) = query.after {
            parts.push(format!("after={after}"));
        }
        let path = if parts.is_empty() {
            "/nodes".to_string()
        } else {
            format!("/nodes?{}", parts.join("&"))
        };
        let list: NodeList = self.client.call::<(), _>(Method::GET, &path, None, USER).await?;
        Ok(NodePage {
            nodes: list.nodes,
            next_cursor: list.next_cursor,
        })
    }

    /// `GET /scenarios`: `{"scenarios":[...],"grammar":"..."}`.
    pub async fn scenarios(&self) -> Result<serde_json::Value, TransportError> {
        self.client.call::<(), _>(Method::GET, "/scenarios", None, USER).await
    }

    /// `GET /health` (needs no key): `{"status":"ok"}`.
    pub async fn health(&self) -> Result<serde_json::Value, TransportError> {
        self.client.call::<(), _>(Method::GET, "/health", None, USER).await
    }

    /// `GET /sla?window=<seconds>`: SLA compliance over the last `window`.
    pub async fn sla(&self, window: std::time::Duration) -> Result<ffrtmp_core::sla::SlaReport, TransportError> {
        let path = format!("/sla?window={}", window.as_secs().max(1));
        self.client.call::<(), _>(Method::GET, &path, None, USER).await
    }

    /// `GET /nodes/efficiency?window=<seconds>`: median J/frame, fps and quality per (node,
    /// encoder, scenario) over the last `window`.
    pub async fn efficiency(
        &self,
        window: std::time::Duration,
    ) -> Result<ffrtmp_core::efficiency::EfficiencyTable, TransportError> {
        let path = format!("/nodes/efficiency?window={}", window.as_secs().max(1));
        self.client.call::<(), _>(Method::GET, &path, None, USER).await
    }

    /// `GET /ready`: `{"status":"ready"}`, or an error when the store does not answer.
    pub async fn ready(&self) -> Result<serde_json::Value, TransportError> {
        self.client.call::<(), _>(Method::GET, "/ready", None, USER).await
    }
}

/// `?state=…&queue=…` for the set fields of a query (empty when none is set).
///
/// ```
/// use ffrtmp_core::{JobQuery, JobState};
/// let q = JobQuery { state: Some(JobState::TimedOut), limit: Some(10), ..JobQuery::default() };
/// assert_eq!(ffrtmp_http::api::query_string(&q), "?state=timed_out&limit=10");
/// assert_eq!(ffrtmp_http::api::query_string(&JobQuery::default()), "");
/// ```
pub fn query_string(query: &JobQuery) -> String {
    let mut parts = Vec::new();
    if let Some(state) = query.state {
        parts.push(format!("state={}", state.as_str()));
    }
    if let Some(queue) = query.queue {
        if let Ok(serde_json::Value::String(name)) = serde_json::to_value(queue) {
            parts.push(format!("queue={name}"));
        }
    }
    if let Some(node) = query.node_id {
        parts.push(format!("node_id={node}"));
    }
    if let Some(seq) = query.before_seq {
        parts.push(format!("before_seq={seq}"));
    }
    if let Some(limit) = query.limit {
        parts.push(format!("limit={limit}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Which messages of `GET /events` to receive; empty lists mean all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only messages about these jobs.
    pub jobs: Vec<ffrtmp_core::JobId>,
    /// Only messages about these nodes (by name).
    pub nodes: Vec<String>,
    /// Only these types (`job`, `progress`, `node`).
    pub types: Vec<String>,
}

impl EventFilter {
    /// The query string (`?job=…&type=…`, empty without filters).
    ///
    /// ```
    /// use ffrtmp_http::api::EventFilter;
    /// let f = EventFilter { types: vec!["job".into(), "progress".into()], ..Default::default() };
    /// assert_eq!(f.query(), "?type=job,progress");
    /// assert_eq!(EventFilter::default().query(), "");
    /// ```
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        for job in &self.jobs {
            parts.push(format!("job={job}"));
        }
        for node in &self.nodes {
            parts.push(format!("node={}", percent_encode(node)));
        }
        if !self.types.is_empty() {
            parts.push(format!("type={}", self.types.join(",")));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// Escapes everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl ApiClient {
    /// `GET /events` with `filter`: the live stream of job changes, progress and node power.
    pub async fn events(&self, filter: &EventFilter) -> Result<crate::client::EventStream, TransportError> {
        self.client.stream(&format!("/events{}", filter.query())).await
    }
}
