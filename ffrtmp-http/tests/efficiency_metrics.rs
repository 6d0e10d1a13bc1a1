//! The master's efficiency series on a real SQLite store: the table of `GET /nodes/efficiency`
//! per (node, encoder, scenario), measured and estimated J/frame apart, read from the store at
//! most once per cache period; and per-node energy from a power model labelled `estimated`.
//! The exposition passes `promtool check metrics`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::quality::{QualityMetric, QualityReport};
use ffrtmp_core::{
    ClaimRequest, EnergyReport, JobEvent, JobReport, JobResult, JobSpec, JobStore, Node, NodePower, NodeRegistration,
};
use ffrtmp_http::metrics::{ClusterSnapshot, EfficiencyCache};
use ffrtmp_http::Metrics;

/// What one completed job reported.
struct Done {
    frames: u64,
    joules: f64,
    estimated: bool,
    psnr: Option<f64>,
}

/// Registers node `name` and completes one job per `done` on it, with those figures.
async fn completed(store: &Arc<dyn JobStore>, name: &str, done: &[Done]) -> Node {
    let registration: NodeRegistration = serde_json::from_value(serde_json::json!({
        "name": name, "cpu_cores": 8, "memory_mb": 8192, "max_concurrent_jobs": 16
    }))
    .unwrap();
    let node = store.register_node(registration).await.unwrap();
    for _ in done {
        store.submit(JobSpec::new("720p-h264")).await.unwrap();
    }
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: format!("eff-{}", node.id),
        max_jobs: done.len() as u32,
        wait_ms: 0,
    };
    let assigned = store.claim(&claim).await.unwrap();
    assert_eq!(assigned.len(), done.len());
    for (a, d) in assigned.iter().zip(done) {
        let report = |event| JobReport {
            job_id: a.job.id,
            node_id: node.id,
            attempt: a.job.attempt,
            event,
        };
        store.report(&report(JobEvent::Started)).await.unwrap();
        let result = JobResult {
            frames: d.frames,
            wall_s: 2.0,
            avg_fps: d.frames as f64 / 2.0,
            encoder: "ffmpeg/libx264".into(),
            energy: EnergyReport {
                source: if d.estimated { "model:vm".into() } else { "rapl".into() },
                energy_joules: Some(d.joules),
                joules_per_frame: Some(d.joules / d.frames as f64),
                estimated: d.estimated,
                model: d.estimated.then(|| "vm".into()),
                ..Default::default()
            },
            quality: d.psnr.map(|s| {
                Box::new(QualityReport {
                    score: Some(s),
                    ..QualityReport::unavailable(QualityMetric::Psnr, "")
                })
            }),
            ..Default::default()
        };
        store.report(&report(JobEvent::Completed { result })).await.unwrap();
    }
    node
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package prometheus; scripts/test.sh installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn efficiency_series_per_node_encoder_and_scenario_are_cached_and_estimates_are_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(ffrtmp_sched::SqliteStore::open(&dir.path().join("jobs.db")).unwrap());
    let metered = completed(
        &store,
        "metered",
        &[
            Done {
                frames: 60,
                joules: 30.0,
                estimated: false,
                psnr: Some(40.0),
            },
            Done {
                frames: 60,
                joules: 60.0,
                estimated: false,
                psnr: Some(42.0),
            },
            Done {
                frames: 60,
                joules: 90.0,
                estimated: false,
                psnr: None,
            },
        ],
    )
    .await;
    let modelled = completed(
        &store,
        "modelled",
        &[Done {
            frames: 60,
            joules: 120.0,
            estimated: true,
            psnr: None,
        }],
    )
    .await;
    let power = |source: &str| NodePower {
        source: source.into(),
        energy_joules: 500.0,
        measured_s: 10.0,
        watts: Some(50.0),
        idle_watts: Some(20.0),
        counting_since_ms: 1,
        sampled_at_ms: 2,
        cpus: Some(8),
    };
    let mut nodes = store.list_nodes().await.unwrap();
    for n in &mut nodes {
        n.power = Some(power(if n.id == modelled.id { "model:vm" } else { "rapl" }));
    }

    let cache = EfficiencyCache::new(Duration::from_secs(3600), Duration::from_secs(30));
    let render = |efficiency| {
        Metrics::default().render_with(&ClusterSnapshot {
            nodes: nodes.clone(),
            efficiency: Some(efficiency),
            ..Default::default()
        })
    };
    let text = render(cache.get(&store).await.unwrap());
    let (m, e) = (metered.id.to_string(), modelled.id.to_string());
    let row = |node: &str| format!(r#"node="{node}",encoder="ffmpeg/libx264",scenario="720p-h264""#);
    for needle in [
        format!(
            r#"ffrtmp_efficiency_joules_per_frame{{{},energy="measured"}} 1"#,
            row(&m)
        ),
        format!(
            r#"ffrtmp_efficiency_joules_per_frame{{{},energy="estimated"}} 2"#,
            row(&e)
        ),
        format!(r#"ffrtmp_efficiency_fps{{{}}} 30"#, row(&m)),
        format!(r#"ffrtmp_efficiency_samples{{{}}} 3"#, row(&m)),
        format!(r#"ffrtmp_efficiency_samples{{{}}} 1"#, row(&e)),
        format!(r#"ffrtmp_efficiency_quality{{{},metric="psnr"}} 41"#, row(&m)),
        "ffrtmp_efficiency_window_seconds 3600".to_string(),
        "# TYPE ffrtmp_efficiency_joules_per_frame gauge".to_string(),
        format!(r#"ffrtmp_node_power_watts{{node="{e}",name="modelled",estimated="vm"}} 50"#),
        format!(r#"ffrtmp_node_energy_joules{{node="{e}",name="modelled",estimated="vm"}} 500"#),
        format!(r#"ffrtmp_node_power_watts{{node="{m}",name="metered"}} 50"#),
    ] {
        assert!(text.contains(&needle), "lacks {needle}\n{text}");
    }
    // 40 dB over 30 J and 42 dB over 60 J: the median of 1.333 and 0.7 dB/J.
    let per_joule = format!(
        r#"ffrtmp_efficiency_quality_per_joule{{{},metric="psnr",energy="measured"}} "#,
        row(&m)
    );
    let v: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(per_joule.as_str()))
        .unwrap_or_else(|| panic!("lacks {per_joule}\n{text}"))
        .parse()
        .unwrap();
    assert!((v - (40.0 / 30.0 + 42.0 / 60.0) / 2.0).abs() < 1e-9, "{v}");
    // Estimated energy never sits in the measured series, nor measured in the estimated.
    assert!(!text.contains(&format!(r#"{},energy="estimated""#, row(&m))), "{text}");
    assert!(!text.contains(&format!(r#"{},energy="measured""#, row(&e))), "{text}");
    promtool_check(&text);

    // Another job: within the cache period a scrape sees the cached table; a fresh read sees it.
    completed(
        &store,
        "late",
        &[Done {
            frames: 60,
            joules: 6.0,
            estimated: false,
            psnr: None,
        }],
    )
    .await;
    let cached = render(cache.get(&store).await.unwrap());
    assert_eq!(cached.matches("ffrtmp_efficiency_samples{").count(), 2, "{cached}");
    let fresh = EfficiencyCache::new(Duration::from_secs(3600), Duration::ZERO);
    let text = render(fresh.get(&store).await.unwrap());
    assert_eq!(text.matches("ffrtmp_efficiency_samples{").count(), 3, "{text}");
}
