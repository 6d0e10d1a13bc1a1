//! Each bound: the value at the bound is accepted, the next one refused with the field named.

use super::*;
use crate::ids::{JobId, NodeId};
use crate::job::{ErrorKind, JobError};
use crate::node::RunningJob;
use crate::spec::JobSpec;

/// The spec with one JSON field set, validated; `Err` carries the message.
fn spec_with(path: &[&str], value: serde_json::Value) -> Result<(), String> {
    let mut json = serde_json::json!({"scenario": "720p-h264"});
    let mut at = &mut json;
    for key in &path[..path.len() - 1] {
        at = at
            .as_object_mut()
            .unwrap()
            .entry(key.to_string())
            .or_insert_with(|| serde_json::json!({}));
    }
    at[path[path.len() - 1]] = value;
    let spec: JobSpec = serde_json::from_value(json).map_err(|e| e.to_string())?;
    spec.validate().map(|_| ()).map_err(|e| e.to_string())
}

/// `inside` passes; `outside` fails naming the field and `bound`.
fn edge(path: &[&str], inside: serde_json::Value, outside: serde_json::Value, bound: &str) {
    let field = path.join(".");
    assert_eq!(spec_with(path, inside.clone()), Ok(()), "{field} = {inside}");
    let err = spec_with(path, outside.clone()).expect_err(&format!("{field} = {outside} accepted"));
    assert!(
        err.contains(&field) && err.contains(bound),
        "{field} = {outside}: {err}"
    );
}

#[test]
fn every_number_in_a_job_spec_is_bounded() {
    use serde_json::json;
    edge(
        &["resource_limits", "timeout_sec"],
        json!(MAX_TIMEOUT_S),
        json!(MAX_TIMEOUT_S + 1),
        "604800",
    );
    edge(&["resource_limits", "timeout_sec"], json!(1), json!(u64::MAX), "604800");
    edge(&["resource_limits", "timeout_sec"], json!(1), json!(0), "1..=");
    edge(
        &["resource_limits", "max_cpu_percent"],
        json!(MAX_CPU_PERCENT),
        json!(MAX_CPU_PERCENT + 1),
        "102400",
    );
    edge(&["resource_limits", "max_cpu_percent"], json!(1), json!(0), "1..=");
    edge(
        &["resource_limits", "max_memory_mb"],
        json!(MAX_MEMORY_MB),
        json!(MAX_MEMORY_MB + 1),
        &MAX_MEMORY_MB.to_string(),
    );
    edge(&["resource_limits", "max_memory_mb"], json!(1), json!(0), "1..=");
    edge(
        &["resource_limits", "max_disk_mb"],
        json!(MAX_DISK_MB),
        json!(u64::MAX),
        &MAX_DISK_MB.to_string(),
    );
    edge(&["max_retries"], json!(MAX_RETRIES), json!(MAX_RETRIES + 1), "100");
    edge(
        &["parameters", "duration"],
        json!(MAX_DURATION_S),
        json!(86_400.5),
        "86400",
    );
    edge(&["parameters", "duration"], json!(0.04), json!(0.0), "86400");
    edge(&["parameters", "duration"], json!(1), json!(1e308), "86400");
    edge(&["parameters", "fps"], json!(MAX_FPS), json!(MAX_FPS + 1), "240");
    edge(&["parameters", "fps"], json!(1), json!(0), "1..=240");
    edge(&["parameters", "bitrate"], json!("10G"), json!("10.1G"), "10000000000");
    edge(&["parameters", "bitrate"], json!("1k"), json!("999"), "1000");
    edge(&["parameters", "bitrate"], json!("5M"), json!("1e400"), "bit/s");
    edge(
        &["parameters", "bitrate"],
        json!("5M"),
        json!(format!("{}M", "0".repeat(MAX_BITRATE_LEN))),
        "1..=32 bytes",
    );
    edge(
        &["parameters", "resolution"],
        json!("7680x16"),
        json!("7682x16"),
        "7680",
    );
    edge(
        &["parameters", "resolution"],
        json!("16x16"),
        json!("14x16"),
        "16..=7680",
    );
    edge(
        &["parameters", "resolution"],
        json!("640x360"),
        json!("18446744073709551616x2"),
        "16..=7680",
    );
    edge(
        &["parameters", "input"],
        json!("a".repeat(MAX_INPUT_PATH_LEN)),
        json!("a".repeat(MAX_INPUT_PATH_LEN + 1)),
        "1024",
    );
    edge(
        &["confidence"],
        json!("a".repeat(MAX_LABEL_LEN)),
        json!("a".repeat(MAX_LABEL_LEN + 1)),
        "64",
    );
    edge(
        &["parameters", "codec"],
        json!("h264"),
        json!("h".repeat(MAX_LABEL_LEN + 1)),
        "64",
    );
    let long = spec_with(&["scenario"], json!("7".repeat(MAX_SCENARIO_LEN + 1))).unwrap_err();
    assert!(long.contains("scenario") && long.contains("64"), "{long}");
    // Queue and priority are closed sets: anything else does not parse.
    assert!(spec_with(&["queue"], json!("urgent")).is_err());
    assert!(spec_with(&["priority"], json!("x".repeat(10_000))).is_err());
}

fn registration() -> NodeRegistration {
    NodeRegistration {
        name: "node-1".into(),
        cpu_cores: 8,
        memory_mb: 16_384,
        max_concurrent_jobs: 4,
        encoders: vec!["libx264".into()],
        engines: vec!["ffmpeg".into()],
        version: "0.1.0".into(),
        enforces_limits: true,
        quality_metrics: Vec::new(),
    }
}

/// The change applied to a valid registration passes at the bound and fails past it.
fn reg_edge(field: &str, at: impl Fn(&mut NodeRegistration), past: impl Fn(&mut NodeRegistration)) {
    let mut ok = registration();
    at(&mut ok);
    assert_eq!(ok.validate(), Ok(()), "{field} at its bound");
    let mut bad = registration();
    past(&mut bad);
    let err = bad.validate().expect_err(field);
    assert!(err.field.starts_with(field), "{field}: {err}");
}

#[test]
fn every_field_of_a_registration_is_bounded() {
    use crate::quality::QualityMetric::{Psnr, Ssim, Vmaf};
    reg_edge(
        "quality_metrics",
        |r| r.quality_metrics = vec![Psnr, Ssim, Vmaf],
        |r| r.quality_metrics = vec![Psnr, Ssim, Psnr],
    );
    let label = |n: usize| "e".repeat(n);
    reg_edge(
        "name",
        |r| r.name = "n".repeat(MAX_NODE_NAME_LEN),
        |r| r.name = "n".repeat(MAX_NODE_NAME_LEN + 1),
    );
    reg_edge("name", |r| r.name = "n".into(), |r| r.name = String::new());
    reg_edge(
        "cpu_cores",
        |r| r.cpu_cores = MAX_CPU_CORES,
        |r| r.cpu_cores = MAX_CPU_CORES + 1,
    );
    reg_edge("cpu_cores", |r| r.cpu_cores = 1, |r| r.cpu_cores = 0);
    reg_edge(
        "memory_mb",
        |r| r.memory_mb = MAX_NODE_MEMORY_MB,
        |r| r.memory_mb = u64::MAX,
    );
    reg_edge(
        "max_concurrent_jobs",
        |r| r.max_concurrent_jobs = MAX_CONCURRENT_JOBS,
        |r| r.max_concurrent_jobs = MAX_CONCURRENT_JOBS + 1,
    );
    reg_edge(
        "max_concurrent_jobs",
        |r| r.max_concurrent_jobs = 1,
        |r| r.max_concurrent_jobs = 0,
    );
    reg_edge(
        "encoders",
        |r| r.encoders = vec![label(1); MAX_ENCODERS],
        |r| r.encoders = vec![label(1); MAX_ENCODERS + 1],
    );
    reg_edge(
        "encoders[0]",
        |r| r.encoders = vec![label(MAX_LABEL_LEN)],
        |r| r.encoders = vec![label(MAX_LABEL_LEN + 1)],
    );
    reg_edge(
        "engines",
        |r| r.engines = vec![label(1); MAX_ENGINES],
        |r| r.engines = vec![label(1); MAX_ENGINES + 1],
    );
    reg_edge(
        "engines[1]",
        |_| {},
        |r| r.engines = vec!["ffmpeg".into(), String::new()],
    );
    reg_edge(
        "version",
        |r| r.version = label(MAX_LABEL_LEN),
        |r| r.version = label(MAX_LABEL_LEN + 1),
    );
}

fn claim(max_jobs: u32, wait_ms: u64, claim_id: &str) -> Result<(), FieldError> {
    ClaimRequest {
        node_id: NodeId::new(),
        claim_id: claim_id.into(),
        max_jobs,
        wait_ms,
    }
    .validate()
}

#[test]
fn claims_are_bounded() {
    assert_eq!(claim(MAX_CONCURRENT_JOBS, MAX_CLAIM_WAIT_MS, "c"), Ok(()));
    assert_eq!(claim(MAX_CONCURRENT_JOBS + 1, 0, "c").unwrap_err().field, "max_jobs");
    assert_eq!(claim(1, MAX_CLAIM_WAIT_MS + 1, "c").unwrap_err().field, "wait_ms");
    assert_eq!(claim(1, u64::MAX, "c").unwrap_err().field, "wait_ms");
    assert_eq!(claim(1, 0, &"c".repeat(MAX_CLAIM_ID_LEN)), Ok(()));
    assert_eq!(
        claim(1, 0, &"c".repeat(MAX_CLAIM_ID_LEN + 1)).unwrap_err().field,
        "claim_id"
    );
    assert_eq!(claim(1, 0, "").unwrap_err().field, "claim_id");
}

fn progress() -> Progress {
    Progress {
        frame: 10,
        fps: 30.0,
        speed: 1.0,
        percent: 50.0,
        out_time_s: 0.3,
        live: None,
    }
}

#[test]
fn heartbeats_and_progress_are_bounded() {
    let running = |n: usize, p: Progress| Heartbeat {
        running: (0..n)
            .map(|_| RunningJob {
                job_id: JobId::new(),
                attempt: 1,
                progress: Some(p.clone()),
            })
            .collect(),
        power: None,
    };
    let full = MAX_CONCURRENT_JOBS as usize;
    assert_eq!(running(full, progress()).validate(), Ok(()));
    assert_eq!(running(full + 1, progress()).validate().unwrap_err().field, "running");
    let edges: [(&str, Progress, Progress); 5] = [
        (
            "frame",
            Progress {
                frame: MAX_FRAMES,
                ..progress()
            },
            Progress {
                frame: MAX_FRAMES + 1,
                ..progress()
            },
        ),
        (
            "fps",
            Progress {
                fps: MAX_RATE,
                ..progress()
            },
            Progress {
                fps: 1e300,
                ..progress()
            },
        ),
        (
            "speed",
            Progress {
                speed: 0.0,
                ..progress()
            },
            Progress {
                speed: -1.0,
                ..progress()
            },
        ),
        (
            "percent",
            Progress {
                percent: 100.0,
                ..progress()
            },
            Progress {
                percent: 100.5,
                ..progress()
            },
        ),
        (
            "out_time_s",
            Progress {
                out_time_s: MAX_REPORT_SECONDS,
                ..progress()
            },
            Progress {
                out_time_s: f64::INFINITY,
                ..progress()
            },
        ),
    ];
    for (name, inside, outside) in edges {
        assert_eq!(running(1, inside).validate(), Ok(()), "{name}");
        let err = running(1, outside).validate().unwrap_err();
        assert_eq!(err.field, format!("running[0].progress.{name}"));
    }
}

#[test]
fn reports_are_bounded() {
    let report = |event| JobReport {
        job_id: JobId::new(),
        node_id: NodeId::new(),
        attempt: 1,
        event,
    };
    let done = |result| report(JobEvent::Completed { result });
    assert_eq!(done(JobResult::default()).validate(), Ok(()));
    let bad = [
        (
            "result.frames",
            JobResult {
                frames: u64::MAX,
                ..Default::default()
            },
        ),
        (
            "result.wall_s",
            JobResult {
                wall_s: 1e300,
                ..Default::default()
            },
        ),
        (
            "result.avg_fps",
            JobResult {
                avg_fps: -2.0,
                ..Default::default()
            },
        ),
        (
            "result.output_bytes",
            JobResult {
                output_bytes: u64::MAX,
                ..Default::default()
            },
        ),
        (
            "result.speed",
            JobResult {
                speed: Some(MAX_RATE * 2.0),
                ..Default::default()
            },
        ),
        (
            "result.limits",
            JobResult {
                limits: "x".repeat(MAX_LIMITS_TEXT_LEN + 1),
                ..Default::default()
            },
        ),
    ];
    for (field, result) in bad {
        assert_eq!(done(result).validate().unwrap_err().field, field);
    }
    let failed = |n: usize| {
        report(JobEvent::Failed {
            error: JobError::new(ErrorKind::Internal, "m".repeat(n)),
        })
    };
    assert_eq!(failed(MAX_MESSAGE_LEN).validate(), Ok(()));
    assert_eq!(
        failed(MAX_MESSAGE_LEN + 1).validate().unwrap_err().field,
        "error.message"
    );
    let progress_report = report(JobEvent::Progress {
        progress: Progress {
            percent: 101.0,
            ..progress()
        },
    });
    assert_eq!(progress_report.validate().unwrap_err().field, "progress.percent");
}

fn measured() -> EnergyReport {
    EnergyReport {
        source: "rapl".into(),
        energy_joules: Some(120.0),
        avg_watts: Some(40.0),
        cpu_joules: Some(100.0),
        dram_joules: Some(20.0),
        wall_s: Some(3.0),
        attribution: Some("cgroup-cpu-share".into()),
        ..Default::default()
    }
}

#[test]
fn every_figure_of_an_energy_report_is_bounded() {
    assert_eq!(measured().validate("energy"), Ok(()));
    let at_bounds = EnergyReport {
        energy_joules: Some(MAX_JOB_JOULES),
        avg_watts: Some(MAX_JOB_WATTS),
        wall_s: Some(MAX_REPORT_SECONDS),
        source: "s".repeat(MAX_ENERGY_LABEL_LEN),
        partial_reason: Some("r".repeat(MAX_ENERGY_REASON_LEN)),
        ..measured()
    };
    assert_eq!(at_bounds.validate("energy"), Ok(()));
    let bad = [
        (
            "energy.energy_joules",
            EnergyReport {
                energy_joules: Some(f64::NAN),
                ..measured()
            },
        ),
        (
            "energy.energy_joules",
            EnergyReport {
                energy_joules: Some(-1.0),
                ..measured()
            },
        ),
        (
            "energy.energy_joules",
            EnergyReport {
                energy_joules: Some(MAX_JOB_JOULES * 2.0),
                ..measured()
            },
        ),
        (
            "energy.cpu_joules",
            EnergyReport {
                cpu_joules: Some(f64::INFINITY),
                ..measured()
            },
        ),
        (
            "energy.dram_joules",
            EnergyReport {
                dram_joules: Some(-0.5),
                ..measured()
            },
        ),
        (
            "energy.gpu_joules",
            EnergyReport {
                gpu_joules: Some(1e300),
                ..measured()
            },
        ),
        (
            "energy.avg_watts",
            EnergyReport {
                avg_watts: Some(MAX_JOB_WATTS * 2.0),
                ..measured()
            },
        ),
        (
            "energy.wall_s",
            EnergyReport {
                wall_s: Some(-3.0),
                ..measured()
            },
        ),
        (
            "energy.cpu_seconds",
            EnergyReport {
                cpu_seconds: Some(f64::NAN),
                ..measured()
            },
        ),
        (
            "energy.joules_per_frame",
            EnergyReport {
                joules_per_frame: Some(-1.0),
                ..measured()
            },
        ),
        (
            "energy.frames_per_joule",
            EnergyReport {
                frames_per_joule: Some(f64::INFINITY),
                ..measured()
            },
        ),
        (
            "energy.pixels_per_joule",
            EnergyReport {
                pixels_per_joule: Some(f64::NAN),
                ..measured()
            },
        ),
        (
            "energy.intervals",
            EnergyReport {
                intervals: u64::MAX,
                ..measured()
            },
        ),
        (
            "energy.read_errors",
            EnergyReport {
                read_errors: u64::MAX,
                ..measured()
            },
        ),
        (
            "energy.source",
            EnergyReport {
                source: "s".repeat(MAX_ENERGY_LABEL_LEN + 1),
                ..measured()
            },
        ),
        (
            "energy.attribution",
            EnergyReport {
                attribution: Some("a".repeat(MAX_ENERGY_LABEL_LEN + 1)),
                ..measured()
            },
        ),
        (
            "energy.unavailable_reason",
            EnergyReport {
                unavailable_reason: Some("u".repeat(MAX_ENERGY_REASON_LEN + 1)),
                ..measured()
            },
        ),
        (
            "energy.gpu_unavailable_reason",
            EnergyReport {
                gpu_unavailable_reason: Some("g".repeat(MAX_ENERGY_REASON_LEN + 1)),
                ..measured()
            },
        ),
        (
            "energy.partial_reason",
            EnergyReport {
                partial_reason: Some("p".repeat(MAX_ENERGY_REASON_LEN + 1)),
                ..measured()
            },
        ),
    ];
    for (field, energy) in bad {
        assert_eq!(energy.validate("energy").unwrap_err().field, field, "{energy:?}");
    }
}

#[test]
fn every_report_that_carries_energy_has_it_checked() {
    let nan = EnergyReport {
        energy_joules: Some(f64::NAN),
        ..measured()
    };
    let report = |event| JobReport {
        job_id: JobId::new(),
        node_id: NodeId::new(),
        attempt: 1,
        event,
    };
    let cases = [
        (
            "result.energy.energy_joules",
            JobEvent::Completed {
                result: JobResult {
                    energy: nan.clone(),
                    ..Default::default()
                },
            },
        ),
        (
            "error.energy.energy_joules",
            JobEvent::Failed {
                error: JobError {
                    energy: Some(nan.clone()),
                    ..JobError::new(ErrorKind::EncodeError, "bad input")
                },
            },
        ),
        (
            "energy.energy_joules",
            JobEvent::TimedOut {
                message: "too slow".into(),
                energy: Some(nan.clone()),
            },
        ),
        ("energy.energy_joules", JobEvent::Energy { energy: nan.clone() }),
    ];
    for (field, event) in cases {
        assert_eq!(report(event).validate().unwrap_err().field, field);
    }
    assert_eq!(report(JobEvent::Energy { energy: measured() }).validate(), Ok(()));
}
