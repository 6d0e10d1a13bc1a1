//! The live view over the real server: agents' progress ticks, `GET /events` and its
//! back-pressure, with a SQLite store.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{
    AttemptKey, ClaimRequest, JobEvent, JobReport, JobResult, JobSpec, JobStore, LiveProgress, NodeId, Progress,
    ProgressTick, RunningJob, Transport,
};
use ffrtmp_http::api::EventFilter;
use ffrtmp_http::events::{Event, EventBus, EventType, StreamEvent};
use ffrtmp_http::{
    ApiClient, CallOptions, ClientConfig, EventStream, HttpTransport, Keyring, Roles, Server, ServerConfig, TlsSetup,
};
use http::Method;

const KEY: &str = "events-test-key-0123456789";
const READ_KEY: &str = "events-read-only-key-0123456789";

struct Running {
    base_url: String,
    ca: Option<std::path::PathBuf>,
    bus: EventBus,
    /// The server's own (publishing) store, for sweeps.
    store: Arc<dyn JobStore>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn config(&self, key: &str) -> ClientConfig {
        let config = ClientConfig::new(&self.base_url, key);
        match &self.ca {
            Some(ca) => config.with_ca_cert(ca),
            None => config.with_plaintext_allowed(),
        }
    }
    fn api(&self, key: &str) -> ApiClient {
        ApiClient::new(self.config(key)).unwrap()
    }
}

async fn start(tls: bool) -> Running {
    start_with(tls, ffrtmp_sched::SchedConfig::default()).await
}

async fn start_with(tls: bool, sched: ffrtmp_sched::SchedConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = ffrtmp_sched::SqliteStore::open_with(&dir.path().join("jobs.db"), sched).unwrap();
    let store: Arc<dyn JobStore> = Arc::new(store);
    let setup = if tls {
        TlsSetup::self_signed(dir.path().join("tls"))
    } else {
        TlsSetup::Plaintext
    };
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), setup, KEY, store);
    let mut keys = Keyring::new();
    keys.add(READ_KEY, Roles::of(ffrtmp_http::Role::ReadOnly)).unwrap();
    config.keys = keys;
    let server = Server::bind(config).await.unwrap();
    let running = Running {
        base_url: server.base_url(),
        ca: tls.then(|| dir.path().join("tls/cert.pem")),
        bus: server.events(),
        store: server.store(),
        _dir: dir,
    };
    tokio::spawn(server.run(std::future::pending()));
    running
}

/// The next decoded message within `within`, skipping what `skip` rejects.
async fn next_event(stream: &mut EventStream, within: Duration) -> StreamEvent {
    let message = tokio::time::timeout(within, stream.next())
        .await
        .expect("no event in time")
        .expect("stream broke")
        .expect("stream ended");
    StreamEvent::parse(&message.event, &message.data).unwrap_or_else(|| panic!("undecodable {message:?}"))
}

fn registration() -> ffrtmp_core::NodeRegistration {
    ffrtmp_core::NodeRegistration {
        name: "enc-1".into(),
        cpu_cores: 2,
        memory_mb: 1024,
        max_concurrent_jobs: 2,
        encoders: vec!["libx264".into()],
        engines: vec!["ffmpeg".into()],
        version: "test".into(),
        enforces_limits: false,
        quality_metrics: Vec::new(),
    }
}

fn progress(frame: u64) -> Progress {
    Progress {
        frame,
        fps: 30.0,
        speed: 1.5,
        percent: 10.0,
        out_time_s: frame as f64 / 30.0,
        live: Some(LiveProgress {
            speed: 1.0,
            drop_frames: frame / 10,
            bitrate_kbps: Some(800.0),
            uptime_s: frame as f64 / 30.0,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_a_job_from_submit_to_completed_and_ticks_fence_and_cancel() {
    let server = start(true).await;
    let api = server.api(KEY);
    let agent = HttpTransport::new(server.config(KEY)).unwrap();
    let mut stream = server.api(READ_KEY).events(&EventFilter::default()).await.unwrap();

    let node = agent.register(&registration()).await.unwrap();
    match next_event(&mut stream, Duration::from_secs(5)).await {
        StreamEvent::Node(n) => assert_eq!((n.node.as_str(), n.slots), ("enc-1", 2)),
        other => panic!("expected the node's registration, got {other:?}"),
    }
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: "c1".into(),
        max_jobs: 1,
        wait_ms: 0,
    };
    let assigned = agent.claim(&claim).await.unwrap();
    assert_eq!(assigned.len(), 1);
    let report = |event| JobReport {
        job_id: job.id,
        node_id: node.id,
        attempt: 1,
        event,
    };
    agent.report(&report(JobEvent::Started)).await.unwrap();
    let tick = |frame| ProgressTick {
        running: vec![RunningJob {
            job_id: job.id,
            attempt: 1,
            progress: Some(progress(frame)),
        }],
        power: None,
    };
    let reply = agent.progress(node.id, &tick(42)).await.unwrap();
    assert!(reply.cancel_attempts.is_empty(), "{reply:?}");
    // No heartbeat was sent: the job's record shows the tick's progress all the same.
    assert_eq!(api.get(job.id).await.unwrap().progress.map(|p| p.frame), Some(42));
    // A live stream's running QoE travels with the tick into the job's record.
    let live = api.get(job.id).await.unwrap().progress.and_then(|p| p.live);
    assert_eq!(live.map(|l| (l.drop_frames, l.bitrate_kbps)), Some((4, Some(800.0))));
    let listed = api.list(&Default::default()).await.unwrap();
    assert_eq!(listed.jobs[0].progress.as_ref().map(|p| p.frame), Some(42));

    // A stale attempt's progress is ignored, and the node is told to stop it.
    let stale = ProgressTick {
        running: vec![RunningJob {
            job_id: job.id,
            attempt: 0,
            progress: Some(progress(999)),
        }],
        power: None,
    };
    let reply = agent.progress(node.id, &stale).await.unwrap();
    assert_eq!(reply.cancel_attempts, vec![AttemptKey::new(job.id, 0)]);
    let other_node = agent.progress(NodeId::new(), &tick(7)).await.unwrap();
    assert_eq!(other_node.cancel_attempts, vec![AttemptKey::new(job.id, 1)]);
    assert_eq!(api.get(job.id).await.unwrap().progress.map(|p| p.frame), Some(42));

    agent
        .report(&report(JobEvent::Completed {
            result: JobResult::default(),
        }))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&"completed".to_string()) {
        assert!(Instant::now() < deadline, "events so far: {seen:?}");
        match next_event(&mut stream, Duration::from_secs(5)).await {
            StreamEvent::Job(j) if j.job_id == job.id => seen.push(j.state.as_str().to_string()),
            StreamEvent::Progress(p) if p.job_id == job.id => {
                assert_eq!((p.node.as_str(), p.attempt), ("enc-1", 1));
                assert_eq!(p.live.as_ref().map(|l| l.drop_frames), Some(p.frame / 10), "{p:?}");
                seen.push(format!("progress {}", p.frame));
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        ["queued", "assigned", "running", "progress 42", "completed"],
        "the stale attempt's progress must not appear"
    );

    // Cancel reaches the next tick's answer.
    let second = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let claim = ClaimRequest {
        claim_id: "c2".into(),
        ..claim
    };
    assert_eq!(agent.claim(&claim).await.unwrap()[0].job.id, second.id);
    let running = |frame| ProgressTick {
        running: vec![RunningJob {
            job_id: second.id,
            attempt: 1,
            progress: Some(progress(frame)),
        }],
        power: None,
    };
    assert!(agent
        .progress(node.id, &running(1))
        .await
        .unwrap()
        .cancel_attempts
        .is_empty());
    api.cancel(second.id).await.unwrap();
    let reply = agent.progress(node.id, &running(2)).await.unwrap();
    assert_eq!(reply.cancel_attempts, vec![AttemptKey::new(second.id, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_need_a_key_and_valid_filters() {
    let server = start(true).await;
    let anonymous = ApiClient::new(server.config("")).unwrap();
    let raw = anonymous
        .client()
        .send(Method::GET, "/events", None, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(raw.status.as_u16(), 401);
    assert_eq!(raw.error().unwrap().kind, "unauthorized");
    let err = anonymous.events(&EventFilter::default()).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let bad = server
        .api(KEY)
        .client()
        .stream("/events?type=weather")
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("invalid_query"), "{bad}");
    let bad = server.api(KEY).client().stream("/events?job=nope").await.unwrap_err();
    assert!(bad.to_string().contains("invalid_query"), "{bad}");

    // Filters: only the asked job's messages arrive.
    let api = server.api(KEY);
    let wanted = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let filter = EventFilter {
        jobs: vec![wanted.id],
        types: vec!["job".into()],
        ..Default::default()
    };
    let mut stream = server.api(READ_KEY).events(&filter).await.unwrap();
    let other = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    api.cancel(other.id).await.unwrap();
    api.cancel(wanted.id).await.unwrap();
    match next_event(&mut stream, Duration::from_secs(5)).await {
        StreamEvent::Job(j) => assert_eq!((j.job_id, j.state.as_str()), (wanted.id, "canceled")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_and_others_are_still_served() {
    let server = start(false).await;
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.bus.subscribers() < 1 {
        assert!(Instant::now() < deadline, "the stream never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // 64 MB of messages, far more than socket buffers hold; the slow client reads none.
    let payload = serde_json::json!({ "pad": "x".repeat(4096) });
    let published: usize = 16_000;
    let flood = tokio::spawn({
        let bus = server.bus.clone();
        async move {
            for i in 0..published {
                bus.publish(Event::new(EventType::Node, None, Some(format!("n{i}")), &payload));
                // Paced so the stream's pump keeps up with the bus: what fills up is the
                // never-read connection and then the stream's own buffer.
                if i % 64 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.bus.dropped_clients() < 1 {
        assert!(Instant::now() < deadline, "the slow client was never dropped");
        assert!(server.bus.queued() <= server.bus.capacity());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flood.await.unwrap();
    assert_eq!(server.bus.capacity(), EventBus::DEFAULT_CAPACITY);
    assert!(server.bus.queued() <= server.bus.capacity());

    // The server still serves, streams included.
    let api = server.api(KEY);
    assert_eq!(api.health().await.unwrap()["status"], "ok");
    let mut fresh = api.events(&EventFilter::default()).await.unwrap();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    match next_event(&mut fresh, Duration::from_secs(5)).await {
        StreamEvent::Job(j) => assert_eq!(j.job_id, job.id),
        other => panic!("{other:?}"),
    }

    // The slow client's connection was closed: what it can still read is bounded by its
    // buffers, not by what was published.
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the dropped stream's connection stayed open: {e} after {received} bytes"),
        }
    }
    let total = published * 4200;
    println!("slow client: {received} of {total} published bytes reached it before it was dropped");
    assert!(received < total / 4, "{received} bytes of {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_announces_the_lost_node_and_where_its_job_went() {
    let sched = ffrtmp_sched::SchedConfig {
        heartbeat_interval: Duration::from_millis(50),
        dead_after_intervals: 1,
        ..ffrtmp_sched::SchedConfig::default()
    };
    let server = start_with(true, sched).await;
    let api = server.api(KEY);
    let agent = HttpTransport::new(server.config(KEY)).unwrap();
    let node = agent.register(&registration()).await.unwrap();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: "c1".into(),
        max_jobs: 1,
        wait_ms: 0,
    };
    assert_eq!(agent.claim(&claim).await.unwrap().len(), 1);
    let mut stream = api.events(&EventFilter::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut offline, mut moved) = (false, None);
    while !(offline && moved.is_some()) {
        assert!(Instant::now() < deadline, "offline {offline}, job now {moved:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.store.sweep().await.unwrap();
        while let Ok(Ok(Some(m))) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            match StreamEvent::parse(&m.event, &m.data) {
                Some(StreamEvent::Node(n)) if n.node_id == Some(node.id) => {
                    offline |= n.status == ffrtmp_core::NodeStatus::Offline
                }
                Some(StreamEvent::Job(j)) if j.job_id == job.id => moved = Some(j.state),
                _ => {}
            }
        }
    }
    assert_eq!(moved, Some(ffrtmp_core::JobState::Retrying));
}

/// What one master spends on ticks: many nodes each ticking with several running attempts,
/// over TLS. Prints requests per second and CPU time per tick; asserts every tick was
/// answered and the last progress of each attempt is what the jobs show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_ticks_cost_little_and_keep_the_latest_progress() {
    const NODES: usize = 8;
    const JOBS_PER_NODE: usize = 4;
    const TICKS: u64 = 150;
    let server = start(true).await;
    let api = server.api(KEY);
    let mut fleet = Vec::new();
    for n in 0..NODES {
        let agent = HttpTransport::new(server.config(KEY)).unwrap();
        let mut reg = registration();
        reg.name = format!("enc-{n}");
        reg.max_concurrent_jobs = JOBS_PER_NODE as u32;
        let node = agent.register(&reg).await.unwrap();
        for _ in 0..JOBS_PER_NODE {
            api.submit(&JobSpec::new("720p-h264")).await.unwrap();
        }
        let claim = ClaimRequest {
            node_id: node.id,
            claim_id: format!("c{n}"),
            max_jobs: JOBS_PER_NODE as u32,
            wait_ms: 0,
        };
        let jobs: Vec<_> = agent
            .claim(&claim)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.job.id)
            .collect();
        assert_eq!(jobs.len(), JOBS_PER_NODE);
        fleet.push((agent, node.id, jobs));
    }
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (agent, node, jobs) in fleet.clone() {
        tasks.push(tokio::spawn(async move {
            for frame in 1..=TICKS {
                let tick = ProgressTick {
                    running: jobs
                        .iter()
                        .map(|j| RunningJob {
                            job_id: *j,
                            attempt: 1,
                            progress: Some(progress(frame)),
                        })
                        .collect(),
                    power: None,
                };
                let reply = agent.progress(node, &tick).await.unwrap();
                assert!(reply.cancel_attempts.is_empty(), "{reply:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let requests = (NODES as u64 * TICKS) as f64;
    println!(
        "progress ticks: {requests} requests ({} attempts each) in {elapsed:.2} s = {:.0} requests/s, \
         {:.0} µs CPU per tick (server and clients in one process, this build's profile)",
        JOBS_PER_NODE,
        requests / elapsed,
        cpu / requests * 1e6
    );
    for (_, _, jobs) in &fleet {
        for j in jobs {
            assert_eq!(api.get(*j).await.unwrap().progress.map(|p| p.frame), Some(TICKS));
        }
    }
}

/// CPU seconds (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

/// A cancel made through another master sharing the store (here: a second store on the same
/// database file) reaches the node's ticks within the re-check period, not a heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_made_elsewhere_reaches_the_ticks_within_the_recheck_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store: Arc<dyn JobStore> = Arc::new(ffrtmp_sched::SqliteStore::open(&path).unwrap());
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), TlsSetup::Plaintext, KEY, store);
    let server = Server::bind(config).await.unwrap();
    let client = ClientConfig::new(server.base_url(), KEY).with_plaintext_allowed();
    tokio::spawn(server.run(std::future::pending()));
    let api = ApiClient::new(client.clone()).unwrap();
    let agent = HttpTransport::new(client).unwrap();
    let node = agent.register(&registration()).await.unwrap();
    let job = api.submit(&JobSpec::new("720p-h264")).await.unwrap();
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: "c1".into(),
        max_jobs: 1,
        wait_ms: 0,
    };
    assert_eq!(agent.claim(&claim).await.unwrap().len(), 1);
    let tick = ProgressTick {
        running: vec![RunningJob {
            job_id: job.id,
            attempt: 1,
            progress: Some(progress(1)),
        }],
        power: None,
    };
    assert!(agent.progress(node.id, &tick).await.unwrap().cancel_attempts.is_empty());

    let elsewhere = ffrtmp_sched::SqliteStore::open(&path).unwrap();
    elsewhere.cancel(job.id, "canceled on another master").await.unwrap();
    let canceled = Instant::now();
    let limit = ffrtmp_http::events::REVERIFY_AFTER + Duration::from_secs(2);
    loop {
        let reply = agent.progress(node.id, &tick).await.unwrap();
        if reply.cancel_attempts == vec![AttemptKey::new(job.id, 1)] {
            break;
        }
        assert!(canceled.elapsed() < limit, "the cancel never reached the ticks");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "a cancel made elsewhere reached the ticks after {:?}",
        canceled.elapsed()
    );
}
