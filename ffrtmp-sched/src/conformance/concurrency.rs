//! Concurrent claimers and masters: each job handed out once, each sweep's work done once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::SchedConfig;
use ffrtmp_core::{Backoff, JobQuery, JobState, JobStore};

use super::support::*;
use super::Backend;

/// `threads` OS threads, each with its own runtime and node, race to claim `jobs` jobs
/// through `stores` (thread `i` uses store `i % stores.len()`): every job is claimed exactly
/// once and no node ever holds more than its slots.
fn race(stores: &[Arc<dyn JobStore>], threads: usize, jobs: usize, slots: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..jobs {
            let s = stores[i % stores.len()].clone();
            handles.push(tokio::spawn(async move { s.submit(spec("720p-h264")).await.unwrap() }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let stores: Vec<Arc<dyn JobStore>> = stores.to_vec();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let node = stores[i % stores.len()]
                        .register_node(registration(&format!("n{i}"), slots))
                        .await
                        .unwrap();
                    let mut mine = Vec::new();
                    let mut round = i;
                    let mut empty = 0;
                    // With several stores, a claimer alternates between them.
                    while empty < 3 {
                        round += 1;
                        let store = stores[round % stores.len()].as_ref();
                        let got = claim(store, &node, slots).await;
                        assert!(got.len() <= slots as usize);
                        if got.is_empty() {
                            empty += 1;
                            continue;
                        }
                        empty = 0;
                        for a in got {
                            assert_eq!(a.job.attempt, 1);
                            store.report(&completed(&a, &node, 1)).await.unwrap();
                            mine.push(a.job.id);
                        }
                    }
                    mine
                })
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in workers {
        all.extend(t.join().unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no job claimed twice");
    assert_eq!(all.len(), jobs, "every job claimed");
    let left = rt.block_on(stores[0].list(&JobQuery {
        state: Some(JobState::Queued),
        ..Default::default()
    }));
    assert!(left.unwrap().jobs.is_empty());
    let done = rt.block_on(stores[0].list(&JobQuery {
        state: Some(JobState::Completed),
        limit: Some(JobQuery::MAX_LIMIT),
        ..Default::default()
    }));
    assert_eq!(done.unwrap().jobs.len(), jobs.min(JobQuery::MAX_LIMIT as usize));
}

/// 8 threads race to claim 2,000 jobs: every job is claimed exactly once.
pub async fn claim_race_hands_out_each_job_once(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    tokio::task::block_in_place(|| race(&[store], 8, 2000, 16));
}

/// Two masters (two stores on one storage), four claimers alternating between them: every
/// job is claimed exactly once.
pub async fn two_masters_hand_out_each_job_once(b: &dyn Backend) {
    let one = b.open(SchedConfig::default()).await;
    let two = b.open(SchedConfig::default()).await;
    tokio::task::block_in_place(|| race(&[one, two], 4, 1000, 8));
}

/// Two masters sweep at the same moment: a lost node is lost once, its job is requeued
/// once (exactly one `retrying` history entry), a due job is released once.
pub async fn concurrent_sweeps_do_the_work_once(b: &dyn Backend) {
    let clock = ManualClock::new();
    let mut cfg = clock.config();
    cfg.job_backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
        max_retries: 3,
    };
    let one = b.open(cfg.clone()).await;
    let two = b.open(cfg).await;
    for round in 0..5 {
        let node = one.register_node(registration(&format!("n{round}"), 1)).await.unwrap();
        let job = two.submit(spec("720p-h264")).await.unwrap();
        let a = claim(&*one, &node, 1).await;
        assert_eq!(ids(&a), vec![(job.id, 1)]);
        clock.advance(Duration::from_secs(91));
        let (s1, s2) = tokio::join!(
            tokio::spawn({
                let one = one.clone();
                async move { one.sweep().await.unwrap() }
            }),
            tokio::spawn({
                let two = two.clone();
                async move { two.sweep().await.unwrap() }
            })
        );
        let (s1, s2) = (s1.unwrap(), s2.unwrap());
        assert_eq!(s1.nodes_lost + s2.nodes_lost, 1, "round {round}: {s1:?} {s2:?}");
        assert_eq!(s1.jobs_requeued + s2.jobs_requeued, 1, "round {round}: {s1:?} {s2:?}");
        let h = one.get(job.id).await.unwrap().history;
        assert_eq!(h.iter().filter(|e| e.to == JobState::Retrying).count(), 1, "{h:?}");

        clock.advance(Duration::from_secs(2));
        let (r1, r2) = tokio::join!(one.sweep(), two.sweep());
        assert_eq!(r1.unwrap().jobs_released + r2.unwrap().jobs_released, 1);
        let j = two.get(job.id).await.unwrap();
        assert_eq!(j.state, JobState::Queued);
        assert_eq!(j.history.iter().filter(|e| e.to == JobState::Queued).count(), 2);
        // Take it off the queue so the next round starts clean.
        two.cancel(job.id, "done").await.unwrap();
    }
}
