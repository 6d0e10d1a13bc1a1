//! Random operation sequences against the SQLite store and a simple in-memory model: after
//! every step each job's state and attempt agree, reports are accepted exactly when the
//! model says so, histories are legal, and no job completes twice.

mod common;

use std::time::Duration;

use common::*;
use ffrtmp_core::{
    Backoff, ErrorKind, Heartbeat, JobError, JobEvent, JobId, JobReport, JobResult, JobState, JobStore, Node,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Submit,
    Claim {
        node: usize,
        max: u32,
    },
    Report {
        job: usize,
        node: usize,
        stale: bool,
        event: Ev,
    },
    Cancel {
        job: usize,
    },
    Retry {
        job: usize,
    },
    Heartbeat {
        node: usize,
    },
    Advance {
        secs: u64,
    },
    Sweep,
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Started,
    Complete,
    FailTransient,
    FailTerminal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Submit),
        3 => (0..2usize, 1..4u32).prop_map(|(node, max)| Op::Claim { node, max }),
        6 => (0..8usize, 0..2usize, prop::bool::weighted(0.2), prop_oneof![
            Just(Ev::Started), Just(Ev::Complete), Just(Ev::FailTransient), Just(Ev::FailTerminal)
        ]).prop_map(|(job, node, stale, event)| Op::Report { job, node, stale, event }),
        1 => (0..8usize).prop_map(|job| Op::Cancel { job }),
        1 => (0..8usize).prop_map(|job| Op::Retry { job }),
        2 => (0..2usize).prop_map(|node| Op::Heartbeat { node }),
        2 => (1..60u64).prop_map(|secs| Op::Advance { secs }),
        2 => Just(Op::Sweep),
    ]
}

#[derive(Clone, Debug)]
struct MJob {
    id: JobId,
    state: JobState,
    attempt: u32,
    node: Option<usize>,
    base: u32,
    claimed_at: u64,
    /// When the job last entered the queue: claims take queued jobs in that order, then
    /// by submission.
    queued_at: u64,
}

struct MNode {
    last_seen: u64,
    online: bool,
}

const MAX_RETRIES: u32 = 1;
const SLOTS: u32 = 2;

fn fail(j: &mut MJob, transient: bool) {
    let used = j.attempt - j.base;
    j.state = if transient && used <= MAX_RETRIES {
        JobState::Retrying
    } else {
        JobState::Failed
    };
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let mut cfg = clock.config();
    // No backoff, so that a sweep releases every retrying job: the model stays exact.
    cfg.job_backoff = Backoff {
        base: Duration::ZERO,
        cap: Duration::ZERO,
        max_retries: MAX_RETRIES,
    };
    cfg.durable = false;
    // Aging and retention have their own tests; here they would only blur FIFO order.
    cfg.aging_interval = Duration::from_secs(1 << 40);
    cfg.retention = None;
    let store = open(&dir, cfg);
    let mut nodes: Vec<Node> = Vec::new();
    let mut mnodes = Vec::new();
    for i in 0..2 {
        nodes.push(
            store
                .register_node(registration(&format!("n{i}"), SLOTS))
                .await
                .unwrap(),
        );
        mnodes.push(MNode {
            last_seen: clock.0.load(std::sync::atomic::Ordering::SeqCst),
            online: true,
        });
    }
    let now = |c: &ManualClock| c.0.load(std::sync::atomic::Ordering::SeqCst);
    let mut jobs: Vec<MJob> = Vec::new();

    for op in ops {
        match op {
            Op::Submit => {
                let mut s = spec("720p-h264");
                s.max_retries = MAX_RETRIES;
                let j = store.submit(s).await.unwrap();
                jobs.push(MJob {
                    id: j.id,
                    state: JobState::Queued,
                    attempt: 0,
                    node: None,
                    base: 0,
                    claimed_at: 0,
                    queued_at: now(&clock),
                });
            }
            Op::Claim { node, max } => {
                let got = claim(&store, &nodes[node], max).await;
                mnodes[node].last_seen = now(&clock);
                mnodes[node].online = true;
                let active = jobs
                    .iter()
                    .filter(|j| j.node == Some(node) && j.state.is_active())
                    .count() as u32;
                let want = max.min(SLOTS - active) as usize;
                let mut queued: Vec<(u64, usize, JobId)> = jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| j.state == JobState::Queued)
                    .map(|(i, j)| (j.queued_at, i, j.id))
                    .collect();
                queued.sort_unstable();
                let expect: Vec<JobId> = queued.into_iter().take(want).map(|(_, _, id)| id).collect();
                let ids: Vec<JobId> = got.iter().map(|a| a.job.id).collect();
                prop_assert_eq!(&ids, &expect);
                for j in jobs.iter_mut().filter(|j| expect.contains(&j.id)) {
                    j.claimed_at = now(&clock);
                    j.attempt += 1;
                    j.node = Some(node);
                    j.state = JobState::Assigned;
                }
            }
            Op::Report {
                job,
                node,
                stale,
                event,
            } => {
                let Some(j) = jobs.get_mut(job) else { continue };
                let attempt = if stale { j.attempt.wrapping_sub(1) } else { j.attempt };
                let event_value = match event {
                    Ev::Started => JobEvent::Started,
                    Ev::Complete => JobEvent::Completed {
                        result: JobResult::default(),
                    },
                    Ev::FailTransient => JobEvent::Failed {
                        error: JobError::new(ErrorKind::Internal, "x"),
                    },
                    Ev::FailTerminal => JobEvent::Failed {
                        error: JobError::new(ErrorKind::EncodeError, "x"),
                    },
                };
                let r = store
                    .report(&JobReport {
                        job_id: j.id,
                        node_id: nodes[node].id,
                        attempt,
                        event: event_value,
                    })
                    .await;
                let accept = j.node == Some(node) && attempt == j.attempt && j.state.is_active();
                prop_assert_eq!(r.is_ok(), accept, "report {:?} on {:?}", event, j);
                if accept {
                    mnodes[node].last_seen = now(&clock);
                    mnodes[node].online = true;
                    match event {
                        Ev::Started => j.state = JobState::Running,
                        Ev::Complete => j.state = JobState::Completed,
                        Ev::FailTransient => fail(j, true),
                        Ev::FailTerminal => fail(j, false),
                    }
                }
            }
            Op::Cancel { job } => {
                let Some(j) = jobs.get_mut(job) else { continue };
                let r = store.cancel(j.id, "test").await;
                prop_assert_eq!(r.is_ok(), !j.state.is_terminal());
                if !j.state.is_terminal() {
                    j.state = JobState::Canceled;
                }
            }
            Op::Retry { job } => {
                let Some(j) = jobs.get_mut(job) else { continue };
                let r = store.retry(j.id).await;
                prop_assert_eq!(r.is_ok(), j.state.can_requeue());
                if j.state.can_requeue() {
                    j.state = JobState::Queued;
                    j.base = j.attempt;
                    j.queued_at = now(&clock);
                }
            }
            Op::Heartbeat { node } => {
                store.heartbeat(nodes[node].id, &Heartbeat::default()).await.unwrap();
                mnodes[node].last_seen = now(&clock);
                mnodes[node].online = true;
                // The heartbeat lists nothing: jobs claimed over two intervals ago are handed
                // back (interrupted, costing no retry).
                let t = now(&clock);
                for j in jobs
                    .iter_mut()
                    .filter(|j| j.node == Some(node) && j.state.is_active() && j.claimed_at < t - 60_000)
                {
                    j.base += 1;
                    fail(j, true);
                }
            }
            Op::Advance { secs } => clock.advance(Duration::from_secs(secs)),
            Op::Sweep => {
                store.sweep().await.unwrap();
                let t = now(&clock);
                for (i, n) in mnodes.iter_mut().enumerate() {
                    if n.online && n.last_seen < t.saturating_sub(90_000) {
                        n.online = false;
                        for j in jobs.iter_mut().filter(|j| j.node == Some(i) && j.state.is_active()) {
                            fail(j, true);
                        }
                    }
                }
                for j in jobs.iter_mut().filter(|j| j.state == JobState::Retrying) {
                    j.state = JobState::Queued;
                    j.queued_at = t;
                }
            }
        }
        for j in &jobs {
            let s = store.get(j.id).await.unwrap();
            prop_assert_eq!((s.state, s.attempt), (j.state, j.attempt), "job {:?}", j);
        }
    }
    for j in &jobs {
        let s = store.get(j.id).await.unwrap();
        let mut prev: Option<JobState> = None;
        for h in &s.history {
            prop_assert_eq!(h.from, prev, "history chain broken for {:?}", j);
            if let Some(p) = prev {
                prop_assert!(p.can_become(h.to) || (p.can_requeue() && h.to == JobState::Queued));
            }
            prev = Some(h.to);
        }
        let completions = s.history.iter().filter(|h| h.to == JobState::Completed).count();
        prop_assert!(completions <= 1);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
