//! The requirement classes of queued jobs, kept in memory by each store.
//!
//! A class is what a job asks of its node ([`Requirements`]) together with its base rank
//! (queue × priority); jobs of one class are run by exactly the same nodes and age alike.
//! The claim index `jobs_class` is ordered by (base rank, class, queue entry, seq), so a
//! claim probes the head of each class its node can run and never reads a job it cannot.
//! Knowing which classes hold queued jobs lets a claim skip the database altogether when
//! its node can run none of them.
//!
//! [`QueuedClasses`] is that knowledge; both stores keep one and call the same pure
//! decision ([`crate::matching::may_run`]) over it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffrtmp_core::{Codec, Enforcement, EngineChoice, NodeRegistration, Requirements, ValidSpec};

use crate::order::rank;

/// A class as stored: (`base_rank`, `req_class`).
pub(crate) type ClassKey = (i64, String);

/// The class of a job with `spec`.
pub(crate) fn class_of(spec: &ValidSpec) -> ClassKey {
    (rank(spec.queue, spec.priority), encode(&Requirements::of(spec)))
}

/// The `req_class` column: `engine|enforced|codec|encoder`, `''` for auto and for no
/// encoder. Migrations build the same text from the older columns.
pub(crate) fn encode(r: &Requirements) -> String {
    format!(
        "{}|{}|{}|{}",
        r.engine.pinned().unwrap_or(""),
        u8::from(r.enforcement == Enforcement::Required),
        r.codec.as_str(),
        r.encoder.as_deref().unwrap_or("")
    )
}

/// The requirements a `req_class` column names; `None` when it does not parse (a row
/// written by a newer build), which [`crate::matching::may_run`] treats as runnable.
pub(crate) fn decode(text: &str) -> Option<Requirements> {
    let mut parts = text.splitn(4, '|');
    let engine = match parts.next()? {
        "" => EngineChoice::Auto,
        "ffmpeg" => EngineChoice::Ffmpeg,
        "gstreamer" => EngineChoice::Gstreamer,
        _ => return None,
    };
    let enforcement = match parts.next()? {
        "0" => Enforcement::BestEffort,
        "1" => Enforcement::Required,
        _ => return None,
    };
    let codec: Codec = parts.next()?.parse().ok()?;
    let encoder = match parts.next()? {
        "" => None,
        e => Some(e.to_string()),
    };
    Some(Requirements {
        encoder,
        codec,
        engine,
        enforcement,
    })
}

/// One class in memory: its decoded requirements (decoded once) and the number of the
/// add that last named it.
struct Class {
    req: Option<Requirements>,
    added: u64,
}

/// A class a claim may probe, with the add that last named it when the claim looked.
pub(crate) type Seen = (ClassKey, u64);

/// The classes that may hold queued jobs: every class holding one is in the set; a class
/// may stay in it a while after its last job left.
///
/// Adds come from this store's committed writes (submit, re-queue, release from backoff)
/// and from reading the database ([`QueuedClasses::merge`]) when other writers may have
/// queued jobs: for SQLite when `PRAGMA data_version` says another connection committed,
/// for PostgreSQL at most every [`QueuedClasses::REFRESH`]. A class leaves the set only
/// when a claim's probe found it empty and no add named it since the claim looked
/// ([`QueuedClasses::remove_if_unchanged`]), so a job queued meanwhile is never forgotten.
#[derive(Default)]
pub(crate) struct QueuedClasses {
    classes: HashMap<ClassKey, Class>,
    adds: u64,
    merged_at: Option<Instant>,
}

impl QueuedClasses {
    /// Longest time a class another PostgreSQL master queued may stay unknown here.
    pub const REFRESH: Duration = Duration::from_millis(500);

    /// Records that a job of `key` was queued.
    pub fn add(&mut self, key: &ClassKey) {
        self.adds += 1;
        let added = self.adds;
        self.classes
            .entry(key.clone())
            .and_modify(|c| c.added = added)
            .or_insert_with(|| Class {
                req: decode(&key.1),
                added,
            });
    }

    /// Adds the classes read from the database at `at`.
    pub fn merge(&mut self, read: impl IntoIterator<Item = ClassKey>, at: Instant) {
        for key in read {
            self.add(&key);
        }
        self.merged_at = Some(at);
    }

    /// Whether a periodic read of the database is due at `now` (never read, or longer ago
    /// than [`Self::REFRESH`]).
    pub fn refresh_due(&self, now: Instant) -> bool {
        self.merged_at.is_none_or(|at| now.duration_since(at) >= Self::REFRESH)
    }

    /// Forgets a class a probe found empty, unless a job of it was queued since the probe
    /// looked (`seen`).
    pub fn remove_if_unchanged(&mut self, (key, seen): &Seen) {
        if self.classes.get(key).is_some_and(|c| c.added == *seen) {
            self.classes.remove(key);
        }
    }

    /// The classes that may hold queued jobs `node` can run, in key order.
    pub fn runnable(&self, node: &NodeRegistration) -> Vec<Seen> {
        let mut out: Vec<Seen> = self
            .classes
            .iter()
            .filter(|(_, c)| crate::matching::may_run(node, c.req.as_ref()))
            .map(|(k, c)| (k.clone(), c.added))
            .collect();
        out.sort_unstable();
        out
    }
}

/// How a store's claims were answered since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimStats {
    /// Claims answered "nothing to run" from memory: their node can run none of the
    /// classes of queued jobs, so the queue was not read.
    pub answered_from_memory: u64,
    /// Reads of the queue: one index probe per requirement class a claim looked into.
    pub queue_probes: u64,
    /// Reads of the classes in the database by a claim, for jobs other masters queued.
    pub class_reads: u64,
}

/// The counters behind [`ClaimStats`].
#[derive(Default)]
pub(crate) struct ClaimCounters {
    from_memory: AtomicU64,
    probes: AtomicU64,
    class_reads: AtomicU64,
}

impl ClaimCounters {
    pub fn answered_from_memory(&self) {
        self.from_memory.fetch_add(1, Ordering::Relaxed);
    }

    pub fn probed(&self) {
        self.probes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read_classes(&self) {
        self.class_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> ClaimStats {
        ClaimStats {
            answered_from_memory: self.from_memory.load(Ordering::Relaxed),
            queue_probes: self.probes.load(Ordering::Relaxed),
            class_reads: self.class_reads.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobSpec, Priority, Queue};

    fn node(encoders: &[&str], engines: &[&str], enforces: bool) -> NodeRegistration {
        NodeRegistration {
            name: "n".into(),
            cpu_cores: 2,
            memory_mb: 1024,
            max_concurrent_jobs: 1,
            encoders: encoders.iter().map(|s| s.to_string()).collect(),
            engines: engines.iter().map(|s| s.to_string()).collect(),
            version: String::new(),
            enforces_limits: enforces,
            quality_metrics: Vec::new(),
        }
    }

    fn valid(s: JobSpec) -> ValidSpec {
        ValidSpec::try_from(s).unwrap()
    }

    #[test]
    fn a_class_column_decodes_to_the_requirements_it_was_made_from() {
        let mut s = JobSpec::new("720p-h264");
        s.parameters.encoder = Some("h264_nvenc".into());
        s.engine = EngineChoice::Gstreamer;
        s.resource_limits.enforcement = Enforcement::Required;
        s.queue = Queue::Batch;
        s.priority = Priority::Low;
        for spec in [valid(s), valid(JobSpec::new("720p-av1"))] {
            let (base, text) = class_of(&spec);
            assert_eq!(base, rank(spec.queue, spec.priority));
            assert_eq!(decode(&text), Some(Requirements::of(&spec)), "{text}");
        }
        assert_eq!(encode(&Requirements::of(&valid(JobSpec::new("720p-h264")))), "|0|h264|");
        assert_eq!(decode("|0||"), None, "a row without a codec is probed, never skipped");
    }

    #[test]
    fn the_set_names_the_queued_classes_the_node_can_run() {
        let cpu = node(&["libx264"], &["ffmpeg"], false);
        let mut nvenc = JobSpec::new("720p-h264");
        nvenc.parameters.encoder = Some("h264_nvenc".into());
        let nvenc = class_of(&valid(nvenc));
        let plain = class_of(&valid(JobSpec::new("720p-h264")));
        let mut set = QueuedClasses::default();
        set.add(&nvenc);
        assert!(set.runnable(&cpu).is_empty());
        set.add(&plain);
        let seen = set.runnable(&cpu);
        assert_eq!(seen, vec![(plain.clone(), 2)]);
        assert_eq!(
            set.runnable(&node(&["h264_nvenc"], &["ffmpeg"], false)),
            vec![(plain.clone(), 2), (nvenc, 1)],
            "an NVENC node runs any H.264 job"
        );
        set.remove_if_unchanged(&seen[0]);
        assert!(set.runnable(&cpu).is_empty(), "found empty, forgotten");
    }

    #[test]
    fn a_class_queued_again_after_a_probe_looked_is_kept() {
        let any = node(&[], &["ffmpeg"], true);
        let a = class_of(&valid(JobSpec::new("720p-h264")));
        let mut set = QueuedClasses::default();
        set.add(&a);
        let seen = set.runnable(&any);
        set.add(&a);
        set.remove_if_unchanged(&seen[0]);
        assert_eq!(set.runnable(&any).len(), 1, "queued after the probe looked");
        let t0 = Instant::now();
        assert!(set.refresh_due(t0));
        set.merge([class_of(&valid(JobSpec::new("720p-vp9")))], t0);
        assert_eq!(set.runnable(&any).len(), 2);
        assert!(!set.refresh_due(t0));
        assert!(set.refresh_due(t0 + QueuedClasses::REFRESH));
    }
}
