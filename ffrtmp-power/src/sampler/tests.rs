use super::*;
use ffrtmp_core::{EnergySample, ZoneEnergy};

#[derive(Default)]
struct Fake {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    zones: Vec<(String, u64)>,
    fail: Option<PowerError>,
    machine_ns: Option<u64>,
    jobs: HashMap<String, u64>,
}

impl Fake {
    fn new(zones: &[&str]) -> Arc<Fake> {
        let fake = Fake::default();
        {
            let mut st = fake.state.lock().unwrap();
            st.zones = zones.iter().map(|z| (z.to_string(), 0)).collect();
            st.machine_ns = Some(0);
        }
        Arc::new(fake)
    }

    /// Advances by `secs` on `cpus` CPUs with `watts` per zone and the given job CPU fractions
    /// (of the whole machine).
    fn advance(&self, secs: f64, cpus: f64, watts: &[f64], jobs: &[(&str, f64)]) {
        let mut st = self.state.lock().unwrap();
        for (z, w) in st.zones.iter_mut().zip(watts) {
            z.1 += (w * secs * 1e6).round() as u64;
        }
        let machine = secs * cpus * 1e9;
        *st.machine_ns.as_mut().unwrap() += machine as u64;
        for (job, frac) in jobs {
            *st.jobs.entry(job.to_string()).or_default() += (machine * frac) as u64;
        }
    }
}

impl PowerSource for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn sample(&self) -> Result<EnergySample, PowerError> {
        let st = self.state.lock().unwrap();
        if let Some(e) = &st.fail {
            return Err(e.clone());
        }
        Ok(EnergySample {
            zones: st
                .zones
                .iter()
                .map(|(zone, uj)| ZoneEnergy {
                    zone: zone.clone(),
                    energy_uj: *uj,
                })
                .collect(),
            wraps: 0,
        })
    }
}

impl CpuTimes for Fake {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        self.state.lock().unwrap().jobs.get(job).copied()
    }
    fn total_ns(&self) -> Option<u64> {
        self.state.lock().unwrap().machine_ns
    }
}

fn manual(fake: &Arc<Fake>) -> Sampler {
    Sampler::manual(fake.clone(), fake.clone(), SamplerConfig::default())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn no_jobs_means_all_other_and_idle() {
    let fake = Fake::new(&["package-0", "dram-0"]);
    let s = manual(&fake);
    fake.advance(1.0, 2.0, &[20.0, 5.0], &[]);
    let r = s.tick().unwrap().unwrap();
    assert!(close(r.total_joules, 25.0) && close(r.other_joules, 25.0) && r.jobs_joules == 0.0);
    // Watts divide by real time between readings, which this test does not control.
    let idle = s.idle_power().unwrap();
    assert!(idle.watts > 0.0 && idle.seconds > 0.0 && !idle.jobs_ran, "{idle:?}");
    let t = s.totals();
    assert!(close(t.other_joules, 25.0) && close(t.idle_joules, 25.0));
    assert_eq!(t.zones.len(), 2);
}

#[test]
fn shares_never_exceed_the_interval() {
    let fake = Fake::new(&["package-0"]);
    let s = manual(&fake);
    s.job_started("a");
    s.job_started("b");
    // The job counters claim 3 CPU-s on a machine that counted 2: jobs split all of it.
    {
        let mut st = fake.state.lock().unwrap();
        st.zones[0].1 = 30_000_000;
        st.machine_ns = Some(2_000_000_000);
        st.jobs.insert("a".into(), 1_000_000_000);
        st.jobs.insert("b".into(), 2_000_000_000);
    }
    let r = s.tick().unwrap().unwrap();
    assert!(close(r.jobs_joules, 30.0) && r.other_joules == 0.0, "{r:?}");
    let a = s.job_finished("a").unwrap();
    assert!(close(a.joules_cpu, 10.0), "{a:?}");
    assert_eq!(s.job_finished("a"), None);
}

#[test]
fn failed_reading_is_covered_by_the_next() {
    let fake = Fake::new(&["package-0"]);
    let s = manual(&fake);
    s.job_started("a");
    fake.advance(1.0, 1.0, &[10.0], &[("a", 0.5)]);
    fake.state.lock().unwrap().fail = Some(PowerError::Read("flaky".into()));
    assert!(s.tick().is_err());
    fake.state.lock().unwrap().fail = None;
    fake.advance(1.0, 1.0, &[10.0], &[("a", 0.5)]);
    s.tick().unwrap();
    let e = s.job_finished("a").unwrap();
    assert!(close(e.joules_total, 10.0), "{e:?}");
    assert_eq!((e.read_errors, e.partial, e.unavailable.clone()), (1, false, None));
}

#[test]
fn unreadable_machine_cpu_skips_the_tick() {
    let fake = Fake::new(&["package-0"]);
    let s = manual(&fake);
    fake.state.lock().unwrap().machine_ns = None;
    let err = s.tick().unwrap_err();
    assert!(matches!(err, PowerError::Read(r) if r.contains("total_ns")));
}

#[test]
fn job_counter_reset_counts_from_zero_and_adopted_jobs_from_first_reading() {
    let mut acc = JobAcc::new(true);
    assert_eq!(acc.advance(Some(5)), 5);
    assert_eq!(acc.advance(None), 0);
    assert_eq!(acc.advance(Some(9)), 4);
    assert_eq!(acc.advance(Some(2)), 2);
    let mut adopted = JobAcc::new(false);
    assert_eq!(adopted.advance(Some(1_000)), 0);
    assert_eq!(adopted.advance(Some(1_500)), 500);
}

#[test]
fn zones_changing_restart_from_the_new_reading() {
    let fake = Fake::new(&["package-0"]);
    let s = manual(&fake);
    s.job_started("a");
    fake.state.lock().unwrap().zones = vec![("package-1".into(), 7)];
    let err = s.tick().unwrap_err();
    assert!(matches!(err, PowerError::Read(r) if r.contains("different zones")));
    fake.advance(1.0, 1.0, &[4.0], &[("a", 1.0)]);
    s.tick().unwrap();
    let e = s.job_finished("a").unwrap();
    assert!(e.partial && close(e.joules_total, 4.0), "{e:?}");
    assert_eq!(s.totals().zones[0].zone, "package-1");
}

#[test]
fn ring_is_bounded() {
    let fake = Fake::new(&["package-0"]);
    let config = SamplerConfig {
        ring_capacity: 3,
        ..SamplerConfig::default()
    };
    let s = Sampler::manual(fake.clone(), fake.clone(), config);
    for _ in 0..10 {
        fake.advance(0.1, 1.0, &[10.0], &[]);
        s.tick().unwrap();
    }
    let recent = s.recent();
    assert_eq!(recent.len(), 3);
    assert!(recent.windows(2).all(|w| w[0].end_s <= w[1].end_s));
    assert!(close(s.totals().total_joules, 10.0));
}

#[test]
fn the_node_total_never_goes_back_when_zones_change() {
    let fake = Fake::new(&["package-0", "dram-0"]);
    let s = manual(&fake);
    fake.advance(1.0, 1.0, &[10.0, 2.0], &[]);
    s.tick().unwrap();
    assert!(close(s.totals().total_joules, 12.0));
    // The DRAM zone goes away: the per-zone totals restart, the node's does not.
    fake.state.lock().unwrap().zones.truncate(1);
    assert!(s.tick().is_err());
    let t = s.totals();
    assert!(close(t.total_joules, 12.0), "{t:?}");
    assert_eq!((t.zones.len(), t.zones[0].joules), (1, 0.0));
    fake.advance(1.0, 1.0, &[10.0], &[]);
    s.tick().unwrap();
    let t = s.totals();
    assert!(close(t.total_joules, 22.0) && close(t.zones[0].joules, 10.0), "{t:?}");
    assert!(close(t.jobs_joules + t.other_joules, t.total_joules), "{t:?}");
}

#[test]
fn the_last_reading_age_is_kept_across_failed_readings() {
    let none = Sampler::unavailable(PowerError::Unavailable("no powercap".into()));
    assert_eq!(none.totals().last_reading_age_s, None);
    let fake = Fake::new(&["package-0"]);
    fake.state.lock().unwrap().fail = Some(PowerError::Read("not yet".into()));
    let s = manual(&fake);
    assert_eq!(s.totals().last_reading_age_s, None, "no good reading yet");
    fake.state.lock().unwrap().fail = None;
    s.tick().unwrap();
    let fresh = s.totals().last_reading_age_s.unwrap();
    fake.state.lock().unwrap().fail = Some(PowerError::Read("gone".into()));
    assert!(s.tick().is_err());
    // Still measured from the last good reading, not from the failed one.
    let later = s.totals().last_reading_age_s.unwrap();
    assert!(later >= fresh, "{fresh} then {later}");
}

#[test]
fn an_abandoned_job_is_dropped_without_a_reading() {
    let fake = Fake::new(&["package-0"]);
    let s = manual(&fake);
    s.job_started("a");
    let ticks = s.stats().ticks;
    assert!(s.job_abandoned("a"));
    assert_eq!(s.stats().ticks, ticks, "no reading taken");
    assert!(s.running_jobs().is_empty());
    assert!(s.job_finished("a").is_none());
    assert!(!s.job_abandoned("a"));
}
