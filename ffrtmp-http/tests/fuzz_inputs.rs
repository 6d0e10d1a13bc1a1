//! The HTTP fuzz targets of `fuzz/` on stable Rust: `ffrtmp_http::inputs`, which the server
//! runs on every request before touching the store, fed arbitrary and mutated request targets
//! and bodies for a bounded number of cases. Each answer must be a value or a 4xx `ApiError`
//! of a documented kind, never a panic or a 5xx.

use ffrtmp_core::{
    ClaimRequest, EnergyReport, Heartbeat, JobEvent, JobId, JobReport, JobResult, NodeId, NodeRegistration, Progress,
    RunningJob,
};
use ffrtmp_http::{inputs, ApiError};
use proptest::prelude::*;
use proptest::sample::{select, Index};

const CASES: u32 = 2_000;

/// Checks that an error is a 4xx of one of `kinds`.
fn clean(result: Result<impl Sized, ApiError>, kinds: &[&str]) {
    if let Err(e) = result {
        assert!(e.status().is_client_error(), "{} {}", e.status(), e.kind());
        assert!(kinds.contains(&e.kind()), "unexpected kind {}", e.kind());
    }
}

fn check_target(method: &str, target: &str) {
    clean(
        inputs::parse_target(method, target),
        &["not_found", "method_not_allowed", "invalid_id", "invalid_query"],
    );
}

const BODY_KINDS: &[&str] = &["invalid_json", "invalid_request", "invalid_spec"];

/// Every body parser, as the route that reads it does.
fn check_bodies(body: &[u8]) {
    clean(inputs::job_spec_body(body), BODY_KINDS);
    clean(inputs::report_body(body), BODY_KINDS);
    clean(inputs::heartbeat_body(body), BODY_KINDS);
    clean(inputs::claim_body(body), BODY_KINDS);
    clean(inputs::registration_body(body), BODY_KINDS);
    clean(inputs::cancel_body(body), BODY_KINDS);
    clean(inputs::progress_tick_body(body), BODY_KINDS);
}

/// Valid request targets of every route.
fn targets() -> Vec<String> {
    let (job, node) = (JobId::new(), NodeId::new());
    vec![
        "/health".into(),
        "/ready".into(),
        "/metrics".into(),
        "/scenarios".into(),
        "/jobs?state=queued&queue=live&limit=5&before_seq=10".into(),
        format!("/jobs?node_id={node}&state=timed%5Fout"),
        format!("/jobs/{job}"),
        format!("/jobs/{job}/cancel"),
        format!("/jobs/{job}/retry/"),
        format!("/jobs/{job}/report"),
        format!("/nodes?limit=10&after={node}"),
        "/nodes/register".into(),
        format!("/nodes/{node}/heartbeat"),
        format!("/nodes/{node}/claim"),
        format!("/nodes/{node}/progress"),
        format!("/events?job={job}&node=enc-1&type=job,progress"),
    ]
}

/// Valid bodies of every kind the agent and the users send.
fn bodies() -> Vec<String> {
    let (job_id, node_id) = (JobId::new(), NodeId::new());
    let report = |event| {
        serde_json::to_string(&JobReport {
            job_id,
            node_id,
            attempt: 1,
            event,
        })
        .unwrap()
    };
    let result = JobResult {
        energy: EnergyReport::default(),
        ..JobResult::default()
    };
    vec![
        r#"{"scenario":"720p-h264","parameters":{"duration":2,"bitrate":"5M"},"queue":"live"}"#.into(),
        report(JobEvent::Started),
        report(JobEvent::Progress {
            progress: Progress::default(),
        }),
        report(JobEvent::Completed { result }),
        report(JobEvent::TimedOut {
            message: "too long".into(),
            energy: None,
        }),
        serde_json::to_string(&Heartbeat {
            running: vec![RunningJob {
                job_id,
                attempt: 2,
                progress: Some(Progress::default()),
            }],
            power: None,
        })
        .unwrap(),
        serde_json::to_string(&ClaimRequest {
            node_id,
            claim_id: "c-1".into(),
            max_jobs: 4,
            wait_ms: 100,
        })
        .unwrap(),
        serde_json::to_string(&NodeRegistration {
            name: "edge-1".into(),
            cpu_cores: 8,
            memory_mb: 16_384,
            max_concurrent_jobs: 2,
            encoders: vec!["libx264".into()],
            engines: vec!["ffmpeg".into()],
            version: "0.1.0".into(),
            enforces_limits: true,
            quality_metrics: Vec::new(),
        })
        .unwrap(),
        r#"{"reason":"operator"}"#.into(),
        String::new(),
    ]
}

/// Byte edits (insert, delete, overwrite) at arbitrary places of a valid input.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    (
        select(seeds),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 0..8),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.into_bytes();
            for (at, byte, op) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.push(byte),
                }
            }
            bytes
        })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "get", ""]).prop_map(String::from),
        "[ -~]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn targets_arbitrary(method in method(), target in "/?[ -~]{0,80}") {
        check_target(&method, &target);
    }

    #[test]
    fn targets_mutated(method in method(), target in mutated(targets())) {
        check_target(&method, &String::from_utf8_lossy(&target));
    }

    #[test]
    fn queries_shaped(
        path in select(vec!["/jobs", "/nodes"]),
        pairs in prop::collection::vec(
            ("(state|queue|node_id|before_seq|limit|after|cursor|%[0-9a-fA-F]{0,2}|[a-z]{0,6})",
             "(-?[0-9]{0,25}|%[0-9a-fA-Z]{0,3}|[a-z_+]{0,10}|[0-9a-f-]{36})"),
            0..5,
        ),
    ) {
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        check_target("GET", &format!("{path}?{}", query.join("&")));
    }

    #[test]
    fn bodies_arbitrary(body in prop::collection::vec(any::<u8>(), 0..256)) {
        check_bodies(&body);
    }

    #[test]
    fn bodies_mutated(body in mutated(bodies())) {
        check_bodies(&body);
    }
}

/// The seeds are accepted, so mutations start from input the server takes.
#[test]
fn seeds_are_valid() {
    for target in targets() {
        let method = if target.starts_with("/nodes/")
            || target.contains("/cancel")
            || target.contains("/retry")
            || target.ends_with("/report")
        {
            "POST"
        } else {
            "GET"
        };
        inputs::parse_target(method, &target).unwrap_or_else(|e| panic!("{method} {target}: {}", e.kind()));
    }
    let bodies = bodies();
    assert!(inputs::job_spec_body(bodies[0].as_bytes()).is_ok());
    for report in &bodies[1..5] {
        inputs::report_body(report.as_bytes()).unwrap_or_else(|e| panic!("{report}: {e:?}"));
    }
    assert!(inputs::heartbeat_body(bodies[5].as_bytes()).is_ok());
    assert!(inputs::claim_body(bodies[6].as_bytes()).is_ok());
    assert!(inputs::registration_body(bodies[7].as_bytes()).is_ok());
    assert!(inputs::cancel_body(bodies[8].as_bytes()).is_ok());
    assert!(inputs::heartbeat_body(b"").is_ok());
    // A tick has a heartbeat's fields.
    assert!(inputs::progress_tick_body(bodies[5].as_bytes()).is_ok());
    assert!(inputs::progress_tick_body(b"").is_ok());
}

/// What a client sees for each kind of bad target.
#[test]
fn bad_targets_get_their_4xx() {
    let kind = |m: &str, t: &str| inputs::parse_target(m, t).map(|_| "ok").unwrap_or_else(|e| e.kind());
    assert_eq!(kind("GET", "/nope"), "not_found");
    assert_eq!(kind("DELETE", "/jobs"), "method_not_allowed");
    assert_eq!(kind("GET", "/events?type=weather"), "invalid_query");
    assert_eq!(kind("GET", "/events?job=1"), "invalid_query");
    assert_eq!(kind("POST", "/events"), "method_not_allowed");
    assert_eq!(kind("POST", "/nodes/x/progress"), "invalid_id");
    assert_eq!(kind("GET", "/jobs/123"), "invalid_id");
    assert_eq!(kind("GET", "/jobs?limit=0"), "invalid_query");
    assert_eq!(kind("GET", "/nodes?after=x"), "invalid_query");
    assert_eq!(kind("GET", "/health"), "ok");
}
