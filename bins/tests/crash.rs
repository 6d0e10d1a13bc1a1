//! Crash safety of the real binaries: `kill -9` of the master while four agents work through
//! 2,000 short jobs; after a restart on the same database every job completes exactly once.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{JobId, JobQuery, JobSpec, JobState, OutputMode};
use ffrtmp_http::{ApiClient, ClientConfig};

const KEY: &str = "crash-test-key-0123456789abcdef";
const JOBS: usize = 2000;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;

/// A master on `db` and its URL, once ready.
fn master(dir: &Path, db: &str, port: u16, log: &str) -> (Proc, String) {
    let _ = std::fs::remove_file(dir.join("ready"));
    cluster::master(dir, KEY)
        .args([
            "--port",
            &port.to_string(),
            "--heartbeat-interval",
            "500ms",
            "--sweep-interval",
            "200ms",
        ])
        .args(["--retry-base", "100ms"])
        .flag("--db", db)
        .path("--tls-dir", "tls")
        .log(log)
        .start()
}

async fn count(api: &ApiClient, state: JobState) -> usize {
    let mut q = JobQuery {
        state: Some(state),
        limit: Some(1000),
        ..Default::default()
    };
    let mut n = 0;
    loop {
        let page = api.list(&q).await.unwrap();
        n += page.jobs.len();
        match page.next_cursor {
            Some(c) => q.before_seq = Some(c),
            None => return n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_master_mid_run_and_every_job_completes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("master.db").to_string_lossy().into_owned();
    crash_and_restart(dir.path(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_postgres() {
    if std::env::var("FFRTMP_SKIP_PG").as_deref() == Ok("1") {
        eprintln!("skipping: FFRTMP_SKIP_PG=1");
        return;
    }
    let admin = std::env::var("FFRTMP_TEST_PG_URL")
        .expect("FFRTMP_TEST_PG_URL is not set: scripts/test.sh starts a private PostgreSQL and sets it");
    let name = format!("crash_{}", JobId::new().to_string().replace('-', ""));
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .arg(&admin)
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    };
    psql(&format!("CREATE DATABASE {name}"));
    let (base, _) = admin.rsplit_once('/').unwrap();
    let db = format!("{base}/{name}");
    let dir = tempfile::tempdir().unwrap();
    crash_and_restart(dir.path(), &db).await;
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}

async fn crash_and_restart(d: &Path, db: &str) {
    let (mut m, url) = master(d, db, 0, "master-1.log");
    let port: u16 = url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();

    let mut agents = Vec::new();
    for i in 0..4 {
        agents.push(cluster::noop_agent(d, &url, KEY, i, &format!("noop-{i}"), "5ms").spawn());
    }

    let mut config = ClientConfig::new(url.clone(), KEY.to_string());
    config.ca_cert = Some(d.join("tls/cert.pem"));
    let api = Arc::new(ApiClient::new(config).unwrap());
    let mut ids: Vec<JobId> = Vec::with_capacity(JOBS);
    let mut handles = Vec::new();
    for chunk in 0..16 {
        let api = api.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..JOBS / 16 {
                let mut spec = JobSpec::new("720p-h264");
                spec.parameters.output_mode = Some(OutputMode::Null);
                mine.push(api.submit(&spec).await.unwrap().id);
            }
            let _ = chunk;
            mine
        }));
    }
    for h in handles {
        ids.extend(h.await.unwrap());
    }
    assert_eq!(ids.len(), JOBS);

    // Kill the master once a good part of the work is done, mid-flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&api, JobState::Completed).await < JOBS / 4 {
        assert!(Instant::now() < deadline, "agents made no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    m.0.kill().unwrap();
    m.0.wait().unwrap();
    let (_m2, _) = master(d, db, port, "master-2.log");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let done = count(&api, JobState::Completed).await;
        if done == JOBS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {JOBS} jobs completed after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Exactly one completion per job in the durable history.
    let mut handles = Vec::new();
    for chunk in ids.chunks(JOBS / 8) {
        let api = api.clone();
        let chunk = chunk.to_vec();
        handles.push(tokio::spawn(async move {
            for id in chunk {
                let job = api.get(id).await.unwrap();
                let completions = job.history.iter().filter(|h| h.to == JobState::Completed).count();
                assert_eq!(completions, 1, "job {id}: {:?}", job.history);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    drop(agents);
}
