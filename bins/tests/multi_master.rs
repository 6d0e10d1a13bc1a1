//! Two master binaries sharing one PostgreSQL database serve four agents: no job is claimed
//! twice and each completes exactly once. Needs `FFRTMP_TEST_PG_URL` (scripts/test.sh starts
//! a private server); `FFRTMP_SKIP_PG=1` skips with a message.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{JobId, JobQuery, JobSpec, JobState, OutputMode};
use ffrtmp_http::{ApiClient, ClientConfig};

const KEY: &str = "multi-master-key-0123456789abcdef";
const JOBS: usize = 600;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;

fn admin_url() -> Option<String> {
    if std::env::var("FFRTMP_SKIP_PG").as_deref() == Ok("1") {
        eprintln!("skipping: FFRTMP_SKIP_PG=1");
        return None;
    }
    match std::env::var("FFRTMP_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => panic!("FFRTMP_TEST_PG_URL is not set: scripts/test.sh starts a private PostgreSQL and sets it"),
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(q) = query {
        out = format!("{out}?{q}");
    }
    out
}

struct Database {
    admin: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .args(["-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

fn master(dir: &Path, db: &str, name: &str) -> (Proc, String) {
    cluster::master(dir, KEY)
        .args([
            "--port",
            "0",
            "--heartbeat-interval",
            "500ms",
            "--sweep-interval",
            "200ms",
        ])
        .flag("--db", db)
        .path("--tls-dir", "tls")
        .path("--ready-file", format!("{name}.url"))
        .log(&format!("{name}.log"))
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_masters_on_one_postgres_never_hand_out_a_job_twice() {
    let Some(admin) = admin_url() else { return };
    let name = format!("mm_{}", JobId::new().to_string().replace('-', ""));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let _db = Database {
        admin: admin.clone(),
        name: name.clone(),
    };
    let db_url = with_database(&admin, &name);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_m1, url1) = master(d, &db_url, "master-1");
    let (_m2, url2) = master(d, &db_url, "master-2");

    let mut agents = Vec::new();
    for i in 0..4 {
        let url = if i % 2 == 0 { &url1 } else { &url2 };
        agents.push(cluster::noop_agent(d, url, KEY, i, &format!("agent-{i}"), "2ms").spawn());
    }
    let client = |url: &str| {
        let mut c = ClientConfig::new(url.to_string(), KEY.to_string());
        c.ca_cert = Some(d.join("tls/cert.pem"));
        Arc::new(ApiClient::new(c).unwrap())
    };
    let apis = [client(&url1), client(&url2)];
    let mut handles = Vec::new();
    for k in 0..8 {
        let api = apis[k % 2].clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..JOBS / 8 {
                let mut spec = JobSpec::new("720p-h264");
                spec.parameters.output_mode = Some(OutputMode::Null);
                ids.push(api.submit(&spec).await.unwrap().id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.extend(h.await.unwrap());
    }

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let page = apis[0]
            .list(&JobQuery {
                state: Some(JobState::Completed),
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .unwrap();
        if page.jobs.len() == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "{} of {JOBS} completed", page.jobs.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every job was claimed once (attempt 1, one `assigned` entry) and completed once, and
    // both masters' agents did work.
    let mut nodes_used = std::collections::HashSet::new();
    for id in ids {
        let job = apis[1].get(id).await.unwrap();
        let claims = job.history.iter().filter(|h| h.to == JobState::Assigned).count();
        let completions = job.history.iter().filter(|h| h.to == JobState::Completed).count();
        assert_eq!(
            (job.attempt, claims, completions),
            (1, 1, 1),
            "job {id}: {:?}",
            job.history
        );
        nodes_used.insert(job.node_id.unwrap());
    }
    assert!(nodes_used.len() >= 2, "only {} agent(s) did work", nodes_used.len());
    drop(agents);
}
