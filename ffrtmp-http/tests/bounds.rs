//! Absurd numbers at the API: the real server over TLS answers 400 with a JSON error naming
//! the field and its bound, and stores nothing.

mod common;

use bytes::Bytes;
use common::{registration, TestServer};
use ffrtmp_core::{Enforcement, JobPage};
use ffrtmp_http::{CallOptions, HttpClient, RawResponse};
use http::{Method, StatusCode};

async fn post(client: &HttpClient, path: &str, body: String) -> RawResponse {
    client
        .send(Method::POST, path, Some(Bytes::from(body)), CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// 400 with the given kind, and a message naming every one of `words`.
fn assert_refused(r: &RawResponse, kind: &str, words: &[&str]) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    let detail = r.error().unwrap_or_else(|| panic!("no JSON error body: {body}"));
    assert_eq!(detail.kind, kind, "{}", detail.message);
    for w in words {
        assert!(detail.message.contains(w), "{w:?} not in {:?}", detail.message);
    }
}

async fn stored_jobs(client: &HttpClient) -> usize {
    let r = client
        .send(Method::GET, "/jobs", None, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    serde_json::from_slice::<JobPage>(&r.body).unwrap().jobs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_numbers_in_a_job_spec_get_400_naming_the_field_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let client = server.client();
    let cases: [(&str, &[&str]); 9] = [
        (
            r#"{"scenario":"720p-h264","resource_limits":{"timeout_sec":18446744073709551615}}"#,
            &["resource_limits.timeout_sec", "604800"],
        ),
        (
            r#"{"scenario":"720p-h264","resource_limits":{"max_memory_mb":18446744073709551615}}"#,
            &["resource_limits.max_memory_mb", "16777216"],
        ),
        (
            r#"{"scenario":"720p-h264","resource_limits":{"max_cpu_percent":4294967295}}"#,
            &["resource_limits.max_cpu_percent", "102400"],
        ),
        (
            r#"{"scenario":"720p-h264","resource_limits":{"max_disk_mb":18446744073709551615}}"#,
            &["resource_limits.max_disk_mb", "1073741824"],
        ),
        (
            r#"{"scenario":"720p-h264","parameters":{"duration":1e308}}"#,
            &["parameters.duration", "86400"],
        ),
        (
            r#"{"scenario":"720p-h264","parameters":{"fps":4294967295}}"#,
            &["parameters.fps", "240"],
        ),
        (
            r#"{"scenario":"720p-h264","parameters":{"bitrate":"99999999G"}}"#,
            &["parameters.bitrate", "10000000000"],
        ),
        (
            r#"{"scenario":"720p-h264","parameters":{"resolution":"100000x100000"}}"#,
            &["parameters.resolution", "7680"],
        ),
        (
            r#"{"scenario":"720p-h264","max_retries":4294967295}"#,
            &["max_retries", "100"],
        ),
    ];
    for (body, words) in cases {
        let r = post(&client, "/jobs", body.to_string()).await;
        assert_refused(&r, "invalid_spec", words);
    }
    // Past what the type holds, or of the wrong sign: refused while parsing.
    for body in [
        r#"{"scenario":"720p-h264","resource_limits":{"timeout_sec":18446744073709551616}}"#,
        r#"{"scenario":"720p-h264","resource_limits":{"timeout_sec":-1}}"#,
        r#"{"scenario":"720p-h264","priority":"urgent"}"#,
        r#"{"scenario":"720p-h264","resource_limits":{"enforcement":"sometimes"}}"#,
    ] {
        assert_refused(&post(&client, "/jobs", body.to_string()).await, "invalid_json", &[]);
    }
    assert_eq!(stored_jobs(&client).await, 0, "no refused job was stored");

    // The largest accepted values are accepted, and a required enforcement is kept.
    let edge = r#"{"scenario":"720p-h264","resource_limits":{"timeout_sec":604800,
        "max_memory_mb":16777216,"max_cpu_percent":102400,"enforcement":"required"},"max_retries":100}"#;
    let r = post(&client, "/jobs", edge.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    let job: ffrtmp_core::Job = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(job.spec.resource_limits.enforcement, Enforcement::Required);
    assert_eq!(stored_jobs(&client).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_numbers_from_an_agent_get_400_naming_the_field() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut reg = serde_json::to_value(registration("n1", 1)).unwrap();
    for (field, value, bound) in [
        ("max_concurrent_jobs", serde_json::json!(4_294_967_295u64), "1024"),
        ("cpu_cores", serde_json::json!(4_294_967_295u64), "65536"),
        ("memory_mb", serde_json::json!(u64::MAX), "67108864"),
        ("name", serde_json::json!("n".repeat(256)), "255"),
    ] {
        let mut bad = reg.clone();
        bad[field] = value;
        let r = post(&client, "/nodes/register", bad.to_string()).await;
        assert_refused(&r, "invalid_request", &[field, bound]);
    }
    let r = client
        .send(Method::GET, "/nodes", None, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["nodes"],
        serde_json::json!([]),
        "no refused node was stored"
    );

    reg["enforces_limits"] = serde_json::json!(true);
    let r = post(&client, "/nodes/register", reg.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    let node: ffrtmp_core::Node = serde_json::from_slice(&r.body).unwrap();
    assert!(node.registration.enforces_limits);
    let claim = serde_json::json!({
        "node_id": node.id, "claim_id": "c1", "max_jobs": 1, "wait_ms": u64::MAX,
    });
    let r = post(&client, &format!("/nodes/{}/claim", node.id), claim.to_string()).await;
    assert_refused(&r, "invalid_request", &["wait_ms", "3600000"]);
    let claim = serde_json::json!({
        "node_id": node.id, "claim_id": "c1", "max_jobs": 4_294_967_295u64, "wait_ms": 0,
    });
    let r = post(&client, &format!("/nodes/{}/claim", node.id), claim.to_string()).await;
    assert_refused(&r, "invalid_request", &["max_jobs", "1024"]);
    let running: Vec<serde_json::Value> = (0..1025)
        .map(|_| serde_json::json!({"job_id": uuid::Uuid::new_v4(), "attempt": 1}))
        .collect();
    let hb = serde_json::json!({ "running": running });
    let r = post(&client, &format!("/nodes/{}/heartbeat", node.id), hb.to_string()).await;
    assert_refused(&r, "invalid_request", &["running", "1024"]);
    server.stop().await;
}

/// Energy figures an agent sends are checked like every other number: negative or absurd
/// joules get 400 naming the field, NaN (not JSON) gets 400 too, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_negative_or_absurd_joules_get_400() {
    let server = TestServer::start().await;
    let client = server.client();
    let r = post(
        &client,
        "/nodes/register",
        serde_json::to_string(&registration("n1", 1)).unwrap(),
    )
    .await;
    let node: ffrtmp_core::Node = serde_json::from_slice(&r.body).unwrap();
    let r = post(&client, "/jobs", r#"{"scenario":"720p-h264"}"#.to_string()).await;
    let job: ffrtmp_core::Job = serde_json::from_slice(&r.body).unwrap();
    let claim = serde_json::json!({"node_id": node.id, "claim_id": "c1", "max_jobs": 1, "wait_ms": 0});
    let r = post(&client, &format!("/nodes/{}/claim", node.id), claim.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let path = format!("/jobs/{}/report", job.id);
    let report = |event: &str, energy: &str| {
        format!(
            r#"{{"job_id":"{}","node_id":"{}","attempt":1,"event":"{event}",{energy}}}"#,
            job.id, node.id
        )
    };
    let cases = [
        (
            report("energy", r#""energy":{"source":"rapl","energy_joules":-1.0}"#),
            "energy.energy_joules",
        ),
        (
            report("energy", r#""energy":{"source":"rapl","energy_joules":1e300}"#),
            "energy.energy_joules",
        ),
        (
            report("energy", r#""energy":{"source":"rapl","avg_watts":1e12}"#),
            "energy.avg_watts",
        ),
        (
            report(
                "timed_out",
                r#""message":"slow","energy":{"source":"rapl","energy_joules":-5}"#,
            ),
            "energy.energy_joules",
        ),
        (
            report(
                "failed",
                r#""error":{"kind":"encode_error","message":"x","energy":{"source":"rapl","cpu_joules":1e300}}"#,
            ),
            "error.energy.cpu_joules",
        ),
        (
            report(
                "completed",
                r#""result":{"exit_code":0,"frames":1,"wall_s":1.0,"avg_fps":1.0,"output_bytes":0,"encoder":"e",
                "limits":"none","energy":{"source":"rapl","energy_joules":-0.5}}"#,
            ),
            "result.energy.energy_joules",
        ),
    ];
    for (body, field) in cases {
        assert_refused(&post(&client, &path, body).await, "invalid_request", &[field]);
    }
    let nan = report("energy", r#""energy":{"source":"rapl","energy_joules":NaN}"#);
    assert_refused(&post(&client, &path, nan).await, "invalid_json", &[]);
    let r = client
        .send(Method::GET, &format!("/jobs/{}", job.id), None, CallOptions::default())
        .await
        .unwrap();
    let stored: ffrtmp_core::Job = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        stored.state,
        ffrtmp_core::JobState::Assigned,
        "no refused report was applied"
    );
    assert!(stored.attempts_energy.is_empty(), "{:?}", stored.attempts_energy);
    server.stop().await;
}
