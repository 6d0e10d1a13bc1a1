//! `GET /nodes/efficiency` on the real server over TLS with a SQLite store: jobs completed by
//! two nodes through the agent API come back as one row per (node, encoder, scenario).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{registration, TestServer};
use ffrtmp_core::{ClaimRequest, EnergyReport, JobEvent, JobReport, JobResult, JobSpec, JobState, NodeId, Transport};
use ffrtmp_http::CallOptions;
use http::Method;

fn claim(node: NodeId) -> ClaimRequest {
    ClaimRequest {
        node_id: node,
        claim_id: uuid::Uuid::new_v4().to_string(),
        max_jobs: 1,
        wait_ms: 0,
    }
}

fn result(fps: f64, jpf: Option<f64>, estimated: bool) -> JobResult {
    JobResult {
        exit_code: Some(0),
        frames: 60,
        wall_s: 60.0 / fps,
        avg_fps: fps,
        encoder: "ffmpeg/libx264".into(),
        energy: EnergyReport {
            source: if jpf.is_some() { "rapl" } else { "unavailable" }.into(),
            energy_joules: jpf.map(|j| j * 60.0),
            joules_per_frame: jpf,
            estimated,
            model: estimated.then(|| "datasheet 10-65 W".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_jobs_are_grouped_per_node_encoder_and_scenario() {
    let server = TestServer::start().await;
    let agent = server.transport();
    let api = server.api();
    let fast = agent.register(&registration("fast", 1)).await.unwrap();
    let slow = agent.register(&registration("slow", 1)).await.unwrap();

    // (node, scenario, result), run one at a time so each claim takes the one queued job.
    let runs = [
        (fast.id, "720p-h264", result(300.0, Some(0.2), false)),
        (fast.id, "720p-h264", result(100.0, Some(0.4), false)),
        (fast.id, "720p-h264", result(200.0, None, false)),
        (slow.id, "720p-h264", result(50.0, Some(2.0), true)),
        (slow.id, "480p-h264", result(80.0, Some(1.0), false)),
    ];
    for (node, scenario, outcome) in runs {
        let job = api.submit(&JobSpec::new(scenario)).await.unwrap();
        let got = agent.claim(&claim(node)).await.unwrap();
        assert_eq!(got[0].job.id, job.id);
        let report = |event| JobReport {
            job_id: job.id,
            node_id: node,
            attempt: got[0].job.attempt,
            event,
        };
        agent.report(&report(JobEvent::Started)).await.unwrap();
        let done = agent
            .report(&report(JobEvent::Completed { result: outcome }))
            .await
            .unwrap();
        assert_eq!(done.state, JobState::Completed);
    }
    // A job still queued counts nowhere.
    api.submit(&JobSpec::new("720p-h264")).await.unwrap();

    let table = api.efficiency(Duration::from_secs(3600)).await.unwrap();
    let row = |node: NodeId, scenario: &str| {
        table
            .rows
            .iter()
            .find(|r| r.node_id == node.to_string() && r.scenario == scenario)
            .unwrap_or_else(|| panic!("no row for {node} {scenario}: {table:#?}"))
    };
    assert_eq!(table.rows.len(), 3, "{table:#?}");
    let fast_720 = row(fast.id, "720p-h264");
    assert_eq!(fast_720.encoder, "ffmpeg/libx264");
    assert_eq!((fast_720.samples, fast_720.median_fps), (3, Some(200.0)));
    assert_eq!(fast_720.energy_samples, 2);
    assert!((fast_720.joules_per_frame.unwrap() - 0.3).abs() < 1e-9, "{fast_720:?}");
    let slow_720 = row(slow.id, "720p-h264");
    assert_eq!((slow_720.joules_per_frame, slow_720.energy_samples), (None, 0));
    assert_eq!(
        (slow_720.estimated_joules_per_frame, slow_720.estimated_samples),
        (Some(2.0), 1)
    );
    assert_eq!(row(slow.id, "480p-h264").joules_per_frame, Some(1.0));

    // Bad queries: 400 with a JSON error; the route is read-only.
    let client = server.client();
    for (method, path, status) in [
        (Method::GET, "/nodes/efficiency?window=soon", 400),
        (Method::GET, "/nodes/efficiency?node=a", 400),
        (Method::POST, "/nodes/efficiency", 405),
    ] {
        let r = client
            .send(method, path, Some(Bytes::from_static(b"{}")), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), status, "{path}");
        assert!(r.error().is_some_and(|e| !e.message.is_empty()), "{path}");
    }
    server.stop().await;
}
