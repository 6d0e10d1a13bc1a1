//! [`HttpTransport`]: the agent's [`Transport`] over HTTPS.

use std::time::Duration;

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, Job, JobReport, Node, NodeId, NodeRegistration, ProgressReply,
    ProgressTick, Transport, TransportError,
};
use http::Method;

use crate::client::{CallOptions, ClientConfig, HttpClient};
use crate::error::HttpError;
use crate::handlers::MAX_CLAIM_WAIT;
use crate::wire::ClaimResponse;

/// Extra time a waiting claim gets beyond its wait before the client gives up on it.
const CLAIM_SLACK: Duration = Duration::from_secs(10);

/// How long a progress tick may take before it is given up (the next one follows).
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(5);

/// An agent's connection to a master over HTTPS.
///
/// Retries connection failures, timeouts, 429 and 5xx with the configured backoff; a 409 is
/// [`TransportError::Fenced`], any other 4xx [`TransportError::Rejected`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ffrtmp_core::{NodeRegistration, Transport};
/// use ffrtmp_http::{ClientConfig, HttpTransport};
/// let config = ClientConfig::new("https://master.example:8443", "a-long-api-key")
///     .with_ca_cert("/etc/ffrtmp/master-cert.pem");
/// let transport = HttpTransport::new(config)?;
/// let node = transport
///     .register(&NodeRegistration {
///         name: "encoder-1".into(),
///         cpu_cores: 2,
///         memory_mb: 4096,
///         max_concurrent_jobs: 1,
///         encoders: vec!["libx264".into()],
///         engines: vec!["ffmpeg".into()],
///         version: "0.1.0".into(),
///         enforces_limits: false,
///         quality_metrics: Vec::new(),
///     })
///     .await?;
/// println!("registered as {}", node.id);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: HttpClient,
}

impl HttpTransport {
    /// A transport with its own client.
    pub fn new(config: ClientConfig) -> Result<Self, HttpError> {
        Ok(HttpTransport {
            client: HttpClient::new(config)?,
        })
    }

    /// A transport over an existing client (sharing its connection pool).
    pub fn from_client(client: HttpClient) -> Self {
        HttpTransport { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn register(&self, registration: &NodeRegistration) -> Result<Node, TransportError> {
        // A repeated registration would create a second node: retry only what surely failed.
        let options = CallOptions {
            idempotent: false,
            ..CallOptions::default()
        };
        self.client
            .call(Method::POST, "/nodes/register", Some(registration), options)
            .await
    }

    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, TransportError> {
        let path = format!("/nodes/{node_id}/heartbeat");
        self.client
            .call(Method::POST, &path, Some(heartbeat), CallOptions::default())
            .await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, TransportError> {
        let path = format!("/nodes/{}/claim", request.node_id);
        let wait = Duration::from_millis(request.wait_ms).min(MAX_CLAIM_WAIT);
        let options = CallOptions {
            // Claims are idempotent per claim_id.
            idempotent: true,
            timeout: Some((wait + CLAIM_SLACK).max(self.client.request_timeout())),
            conflict_is_fenced: true,
        };
        let response: ClaimResponse = self.client.call(Method::POST, &path, Some(request), options).await?;
        Ok(response.assignments)
    }

    async fn progress(&self, node_id: NodeId, tick: &ProgressTick) -> Result<ProgressReply, TransportError> {
        let path = format!("/nodes/{node_id}/progress");
        // A tick is soon stale: one try, a short timeout, and the next tick carries on.
        let options = CallOptions {
            idempotent: true,
            timeout: Some(PROGRESS_TIMEOUT.min(self.client.request_timeout())),
            conflict_is_fenced: true,
        };
        self.client.send_once(Method::POST, &path, Some(tick), options).await
    }

    async fn report(&self, report: &JobReport) -> Result<Job, TransportError> {
        let path = format!("/jobs/{}/report", report.job_id);
        self.client
            .call(Method::POST, &path, Some(report), CallOptions::default())
            .await
    }
}
