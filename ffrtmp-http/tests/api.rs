//! The real server over TLS with a SQLite store, driven by the real client.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{registration, TestServer, KEY};
use ffrtmp_core::{
    ClaimRequest, Heartbeat, JobEvent, JobId, JobQuery, JobReport, JobSpec, JobState, NodeId, RunningJob, Transport,
    TransportError,
};
use ffrtmp_http::{ApiClient, CallOptions, HttpClient, RawResponse};
use http::{Method, StatusCode};

const SEED: &str = r#"{"scenario":"1080p-h264","confidence":"auto","parameters":{"duration":300,"bitrate":"5M"}}"#;

async fn send(client: &HttpClient, method: Method, path: &str, body: Option<&str>) -> RawResponse {
    let body = body.map(|b| Bytes::from(b.to_string()));
    client
        .send(method, path, body, CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn assert_error(response: &RawResponse, status: u16, kind: &str) {
    assert_eq!(
        response.status.as_u16(),
        status,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let detail = response
        .error()
        .unwrap_or_else(|| panic!("no JSON error body: {:?}", String::from_utf8_lossy(&response.body)));
    assert_eq!(detail.kind, kind, "{}", detail.message);
    assert!(!detail.message.is_empty());
}

fn claim(node: NodeId, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        node_id: node,
        claim_id: uuid::Uuid::new_v4().to_string(),
        max_jobs: 1,
        wait_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_except_for_health() {
    let server = TestServer::start().await;
    let anonymous = HttpClient::new(server.config("")).unwrap();
    let wrong = HttpClient::new(server.config("not-the-right-key")).unwrap();
    let right = server.client();

    for client in [&anonymous, &wrong] {
        for (method, path) in [
            (Method::GET, "/jobs"),
            (Method::GET, "/nodes"),
            (Method::GET, "/metrics"),
            (Method::GET, "/ready"),
            (Method::POST, "/jobs"),
            (Method::GET, "/no-such-route"),
        ] {
            let r = send(client, method, path, Some(SEED)).await;
            assert_error(&r, 401, "unauthorized");
        }
        let health = send(client, Method::GET, "/health", None).await;
        assert_eq!(health.status, StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
    assert_eq!(send(&right, Method::GET, "/jobs", None).await.status, StatusCode::OK);
    assert_eq!(send(&right, Method::GET, "/ready", None).await.status, StatusCode::OK);
    // The typed client maps 401 to Rejected.
    let err = ApiClient::from_client(wrong).nodes().await.unwrap_err();
    assert!(
        matches!(err, TransportError::Rejected { status: 401, ref kind, .. } if kind == "unauthorized"),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_json_errors_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let client = server.client();
    let cases: [(Method, String, Option<String>, u16, &str); 17] = [
        (
            Method::POST,
            "/jobs".into(),
            Some("{not json".into()),
            400,
            "invalid_json",
        ),
        (Method::POST, "/jobs".into(), Some(String::new()), 400, "invalid_json"),
        (
            Method::POST,
            "/jobs".into(),
            Some(r#"{"scenario":"720p-h264","bogus":1}"#.into()),
            400,
            "invalid_json",
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some(r#"{"scenario":"720p-h264","parameters":{"colour":"red"}}"#.into()),
            400,
            "invalid_json",
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some(r#"{"scenario":"1080p-mpeg2"}"#.into()),
            400,
            "invalid_spec",
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some(r#"{"scenario":"hd-h264"}"#.into()),
            400,
            "invalid_spec",
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some(r#"{"scenario":"720p-h264","parameters":{"duration":-5}}"#.into()),
            400,
            "invalid_spec",
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some("x".repeat(10 * 1024 * 1024)),
            413,
            "body_too_large",
        ),
        (Method::GET, "/jobs/not-a-uuid".into(), None, 400, "invalid_id"),
        (Method::GET, "/jobs?state=bogus".into(), None, 400, "invalid_query"),
        (Method::GET, format!("/jobs/{}", JobId::new()), None, 404, "not_found"),
        (
            Method::POST,
            format!("/jobs/{}/cancel", JobId::new()),
            None,
            404,
            "not_found",
        ),
        (Method::DELETE, "/jobs".into(), None, 405, "method_not_allowed"),
        (Method::GET, "/nope".into(), None, 404, "not_found"),
        (Method::GET, "/sla?window=soon".into(), None, 400, "invalid_query"),
        (Method::GET, "/sla?limit=3".into(), None, 400, "invalid_query"),
        (Method::POST, "/sla".into(), None, 405, "method_not_allowed"),
    ];
    for (method, path, body, status, kind) in cases {
        let r = send(&client, method.clone(), &path, body.as_deref()).await;
        assert_error(&r, status, kind);
    }
    // A claim whose path and body disagree.
    let other = claim(NodeId::new(), 0);
    let r = send(
        &client,
        Method::POST,
        &format!("/nodes/{}/claim", NodeId::new()),
        Some(&serde_json::to_string(&other).unwrap()),
    )
    .await;
    assert_error(&r, 400, "invalid_request");

    // Still serving, and the seed body of the original README is accepted as is.
    let r = send(&client, Method::POST, "/jobs", Some(SEED)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    let job: ffrtmp_core::Job = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.spec.confidence.as_deref(), Some("auto"));
    assert_eq!(job.spec.parameters.bitrate.as_deref(), Some("5M"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_operations_round_trip() {
    let server = TestServer::start().await;
    let api = server.api();
    assert_eq!(api.health().await.unwrap()["status"], "ok");
    assert_eq!(api.ready().await.unwrap()["status"], "ready");

    let scenarios = api.scenarios().await.unwrap();
    let list = scenarios["scenarios"].as_array().unwrap();
    assert_eq!(list.len(), ffrtmp_core::scenario::KNOWN_SCENARIOS.len());
    let first = &list[0];
    for field in ["name", "width", "height", "fps", "codec", "live"] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert!(scenarios["grammar"]
        .as_str()
        .unwrap()
        .contains("<height>p[<fps>]-<codec>"));

    let spec: JobSpec = serde_json::from_str(SEED).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(api.submit(&spec).await.unwrap().id);
    }
    // Queued jobs have not met or missed anything yet.
    let sla = api.sla(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(
        (sla.total.met, sla.total.missed, sla.total.compliance_percent),
        (0, 0, None)
    );
    let job = api.get(ids[0]).await.unwrap();
    assert_eq!(job.history.len(), 1);

    let page = api
        .list(&JobQuery {
            limit: Some(2),
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 2);
    let cursor = page.next_cursor.expect("a second page");
    let rest = api
        .list(&JobQuery {
            before_seq: Some(cursor),
            state: Some(JobState::Queued),
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.jobs.len(), 1);

    let canceled = api.cancel_with_reason(ids[0], Some("not needed")).await.unwrap();
    assert_eq!(canceled.state, JobState::Canceled);
    let history = api.get(ids[0]).await.unwrap().history;
    assert_eq!(history.last().map(|h| h.reason.as_str()), Some("not needed"));
    // Canceling twice is an invalid transition: 409, which is Rejected for users.
    let err = api.cancel(ids[0]).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Rejected { status: 409, ref kind, .. } if kind == "invalid_transition"),
        "{err}"
    );
    assert_eq!(api.retry(ids[0]).await.unwrap().state, JobState::Queued);
    assert!(api.nodes().await.unwrap().is_empty());

    let metrics = send(&server.client(), Method::GET, "/metrics", None).await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"ffrtmp_http_requests_total{route="/jobs/{id}",method="GET",status="200"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"ffrtmp_http_request_duration_seconds_bucket{route="/jobs",le="+Inf"}"#));
    assert!(text.contains("ffrtmp_jobs_submitted_total 3"), "{text}");
    assert!(text.contains("ffrtmp_sla_window_seconds 86400"), "{text}");
    for id in &ids {
        assert!(!text.contains(&id.to_string()), "metrics hold a job id");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_a_server_it_does_not_trust() {
    let server = TestServer::start().await;
    let other = tempfile::tempdir().unwrap();
    let (other_cert, _) = ffrtmp_http::tls::ensure_self_signed(other.path(), &[]).unwrap();
    let mut config = server.config(KEY);
    config.ca_cert = Some(other_cert);
    let api = ApiClient::new(config).unwrap();
    let started = Instant::now();
    let err = api.health().await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable(_)), "{err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    // Says what is wrong and what fixes it.
    let text = err.to_string();
    assert!(text.contains("the master's TLS certificate is not trusted"), "{err}");
    assert!(text.contains("--ca-cert") && text.contains("FFRTMP_CA_CERT"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a TLS failure must not be retried at length"
    );

    // The system trust store does not know a self-signed certificate either.
    if std::path::Path::new(ffrtmp_http::tls::SYSTEM_CA_BUNDLE).is_file() {
        let mut config = server.config(KEY);
        config.ca_cert = None;
        let err = ApiClient::new(config).unwrap().health().await.unwrap_err();
        assert!(matches!(err, TransportError::Unreachable(_)), "{err}");
        assert!(err.to_string().contains("--ca-cert"), "{err}");
    }
    // The right certificate works.
    assert!(server.api().health().await.is_ok());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reports_are_fenced() {
    let server = TestServer::start().await;
    let agent = server.transport();
    let api = server.api();
    let node = agent.register(&registration("fenced-node", 2)).await.unwrap();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();

    let got = agent.claim(&claim(node.id, 0)).await.unwrap();
    assert_eq!(got.len(), 1);
    let assigned = &got[0].job;
    assert_eq!((assigned.id, assigned.state), (job.id, JobState::Assigned));
    let attempt = assigned.attempt;

    let report = |attempt: u32, node_id: NodeId, event: JobEvent| JobReport {
        job_id: job.id,
        node_id,
        attempt,
        event,
    };
    let running = agent
        .report(&report(attempt, node.id, JobEvent::Started))
        .await
        .unwrap();
    assert_eq!(running.state, JobState::Running);

    let stale = agent
        .report(&report(attempt - 1, node.id, JobEvent::Started))
        .await
        .unwrap_err();
    assert!(matches!(stale, TransportError::Fenced(_)), "{stale}");
    let stranger = agent
        .report(&report(attempt, NodeId::new(), JobEvent::Started))
        .await
        .unwrap_err();
    assert!(matches!(stranger, TransportError::Fenced(_)), "{stranger}");

    // After a cancel, the holder itself is fenced and told to stop on its heartbeat.
    api.cancel(job.id).await.unwrap();
    let late = agent
        .report(&report(attempt, node.id, JobEvent::Started))
        .await
        .unwrap_err();
    assert!(matches!(late, TransportError::Fenced(_)), "{late}");
    let reply = agent
        .heartbeat(
            node.id,
            &Heartbeat {
                running: vec![RunningJob {
                    job_id: job.id,
                    attempt,
                    progress: None,
                }],
                power: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.cancel, vec![job.id]);

    // Path and body must name the same job.
    let body = serde_json::to_string(&report(attempt, node.id, JobEvent::Started)).unwrap();
    let r = send(
        &server.client(),
        Method::POST,
        &format!("/jobs/{}/report", JobId::new()),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_claim_returns_soon_after_a_submit() {
    let server = TestServer::start().await;
    let agent = server.transport();
    let api = server.api();
    let node = agent.register(&registration("poller", 1)).await.unwrap();

    let wait = Duration::from_millis(5000);
    let started = Instant::now();
    let request = claim(node.id, wait.as_millis() as u64);
    let poll = tokio::spawn({
        let agent = agent.clone();
        async move { agent.claim(&request).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!poll.is_finished(), "the claim did not wait");
    let submitted_at = Instant::now();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let got = poll.await.unwrap().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(got.len(), 1, "the waiting claim did not get the job");
    assert_eq!(got[0].job.id, job.id);
    assert!(elapsed < wait, "returned only at the deadline ({elapsed:?})");
    assert!(
        submitted_at.elapsed() < Duration::from_millis(1500),
        "took {:?} after the submit",
        submitted_at.elapsed()
    );

    // With nothing to claim, the wait ends at the deadline with no assignment.
    let started = Instant::now();
    let empty = agent.claim(&claim(node.id, 600)).await.unwrap();
    assert!(empty.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_waiting_claims_and_finishes_them() {
    let server = TestServer::start().await;
    let agent = server.transport();
    let node = agent.register(&registration("draining", 1)).await.unwrap();
    let request = claim(node.id, 20_000);
    let poll = tokio::spawn({
        let agent = agent.clone();
        async move { agent.claim(&request).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.stop().await;
    let got = poll.await.unwrap().expect("the in-flight claim was answered");
    assert!(got.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// A canceled attempt's energy report travels over HTTPS: accepted from the node that held
/// the attempt, shown by `GET /jobs/{id}`; refused (409, fenced) from any other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_attempts_energy_is_reported_over_https_and_shown_by_get() {
    let server = TestServer::start().await;
    let agent = server.transport();
    let api = server.api();
    let node = agent.register(&registration("energy-node", 1)).await.unwrap();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let attempt = agent.claim(&claim(node.id, 0)).await.unwrap()[0].job.attempt;
    api.cancel(job.id).await.unwrap();
    let energy = ffrtmp_core::EnergyReport {
        source: "rapl".into(),
        energy_joules: Some(6.25),
        attribution: Some("cgroup-cpu-share".into()),
        ..Default::default()
    };
    let report = |node_id: NodeId| JobReport {
        job_id: job.id,
        node_id,
        attempt,
        event: JobEvent::Energy { energy: energy.clone() },
    };
    let stranger = agent.report(&report(NodeId::new())).await.unwrap_err();
    assert!(matches!(stranger, TransportError::Fenced(_)), "{stranger}");
    agent.report(&report(node.id)).await.unwrap();
    let got = api.get(job.id).await.unwrap();
    assert_eq!(got.state, JobState::Canceled);
    let kept = &got.attempts_energy;
    assert_eq!(kept.total_joules, Some(6.25));
    assert_eq!(
        kept.attempts
            .iter()
            .map(|a| (a.attempt, a.node_id, a.outcome, a.energy.clone()))
            .collect::<Vec<_>>(),
        [(attempt, node.id, JobState::Canceled, energy)]
    );
    server.stop().await;
}
