//! The web dashboard's routes over real TLS: the page needs no key, every data route does,
//! and the history ring samples what the agents report.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{registration, TestServer};
use ffrtmp_core::{ClaimRequest, Heartbeat, JobEvent, JobReport, JobSpec, Progress, RunningJob, Transport};
use ffrtmp_http::{BenchSource, CallOptions, HttpClient, RawResponse};
use http::Method;

async fn get(client: &HttpClient, path: &str) -> RawResponse {
    client
        .send(Method::GET, path, None, CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(r: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&r.body)))
}

struct Fixed;

impl BenchSource for Fixed {
    fn load(&self) -> Result<serde_json::Value, String> {
        Ok(serde_json::json!({"baseline": "a", "comparisons": []}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_public_and_every_data_route_needs_a_key() {
    let server = TestServer::start().await;
    let anonymous = HttpClient::new(server.config("")).unwrap();
    let wrong = HttpClient::new(server.config("not-the-right-key")).unwrap();

    for path in ["/ui/", "/ui", "/ui/app.js", "/ui/app.css"] {
        let r = get(&anonymous, path).await;
        assert_eq!(r.status.as_u16(), 200, "{path}");
        assert!(!r.body.is_empty(), "{path}");
    }
    let page = String::from_utf8(get(&anonymous, "/ui/").await.body.to_vec()).unwrap();
    assert!(page.contains("<script src=\"/ui/app.js\""), "{page}");
    assert_eq!(get(&anonymous, "/ui/nope.js").await.status.as_u16(), 404);

    for client in [&anonymous, &wrong] {
        for path in ["/dashboard/history", "/dashboard/bench", "/jobs", "/nodes"] {
            let r = get(client, path).await;
            assert_eq!(r.status.as_u16(), 401, "{path}");
            assert_eq!(r.error().unwrap().kind, "unauthorized", "{path}");
        }
    }
    let right = server.client();
    let history = json(&get(&right, "/dashboard/history").await);
    assert_eq!(history["interval_s"], 10.0, "{history}");
    // No bench results configured: a clear 404 that says how to get them.
    let bench = get(&right, "/dashboard/bench").await;
    assert_eq!(bench.status.as_u16(), 404);
    assert!(bench.error().unwrap().message.contains("--bench-results"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_samples_the_running_jobs_fps_and_bench_results_are_served() {
    let server = TestServer::start_with(|c, _| {
        c.dashboard.sample_interval = Duration::from_millis(100);
        c.dashboard.bench = Some(Arc::new(Fixed));
    })
    .await;
    let agent = server.transport();
    let api = server.api();
    let node = agent.register(&registration("dash-node", 1)).await.unwrap();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: "c1".into(),
        max_jobs: 1,
        wait_ms: 0,
    };
    let attempt = agent.claim(&claim).await.unwrap()[0].job.attempt;
    let started = JobReport {
        job_id: job.id,
        node_id: node.id,
        attempt,
        event: JobEvent::Started,
    };
    agent.report(&started).await.unwrap();
    let progress = Progress {
        frame: 250,
        fps: 42.5,
        speed: 1.4,
        percent: 10.0,
        out_time_s: 8.3,
        live: None,
    };
    let beat = Heartbeat {
        running: vec![RunningJob {
            job_id: job.id,
            attempt,
            progress: Some(progress),
        }],
        power: None,
    };
    agent.heartbeat(node.id, &beat).await.unwrap();

    let client = server.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let history = json(&get(&client, "/dashboard/history").await);
        let points = history["points"].as_array().unwrap();
        if points.iter().any(|p| p["fps"] == 42.5 && p["running"] == 1) {
            assert!(points.iter().all(|p| p["watts"].is_null()), "no node reports power");
            break;
        }
        assert!(Instant::now() < deadline, "no sample with the job's fps: {history}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bench = json(&get(&client, "/dashboard/bench").await);
    assert_eq!(bench["baseline"], "a");
    server.stop().await;
}
