//! Swap in your own `PowerSource`: a wall meter read from a file (here a file this program
//! keeps writing with a growing µJ counter, as a meter's logger would) gives per-job energy
//! through the reference agent and FFmpeg executor: each sampling interval's energy is split
//! between jobs by their cgroups' CPU time.
//! Run (as root, for job cgroups): `cargo run -p ffrtmp-examples --example custom_power_source`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{EnergySample, JobSpec, JobState, JobStore, OutputMode, PowerError, PowerSource, ZoneEnergy};
use ffrtmp_exec::{AgentBuilder, Cgroups, FfmpegConfig, FfmpegExecutor};
use ffrtmp_power::agent::{AttributedEnergy, MeteredNode};
use ffrtmp_power::SamplerConfig;
use ffrtmp_sched::{SqliteStore, StoreTransport};

/// A wall meter whose logger keeps the cumulative energy, in µJ, in a file.
struct WallMeter(PathBuf);

impl PowerSource for WallMeter {
    fn name(&self) -> &str {
        "wall-meter"
    }

    fn sample(&self) -> Result<EnergySample, PowerError> {
        let text = std::fs::read_to_string(&self.0).map_err(|e| PowerError::Read(e.to_string()))?;
        let energy_uj = text
            .trim()
            .parse()
            .map_err(|_| PowerError::Read(format!("bad counter {text:?}")))?;
        Ok(EnergySample {
            zones: vec![ZoneEnergy {
                zone: "wall".into(),
                energy_uj,
            }],
            wraps: 0,
        })
    }
}

/// Plays the meter's logger: a steady 100 W, written atomically every 10 ms until `stop`.
fn log_meter(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let start = Instant::now();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let uj = start.elapsed().as_micros() as u64 * 100; // 100 W = 100 µJ per µs
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, uj.to_string())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .expect("meter file");
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let meter_file = dir.path().join("wall_uj");
    let stop_meter = Arc::new(AtomicBool::new(false));
    let logger = log_meter(meter_file.clone(), stop_meter.clone());
    while !meter_file.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }

    // The energy meter learns of job cgroups from the executor's `Cgroups`.
    let cgroups = Cgroups::detect();
    let no_cgroups = cgroups.unavailable_reason().map(String::from);
    let source = Arc::new(WallMeter(meter_file));
    let energy = Arc::new(AttributedEnergy::from_power_source(
        source,
        SamplerConfig::hz(20.0),
        no_cgroups.clone(),
    ));
    let cgroups = cgroups.with_observer(energy.clone());
    let config = FfmpegConfig::new(dir.path().join("in"), dir.path().join("out"));
    let executor = Arc::new(FfmpegExecutor::with_cgroups(config, cgroups));

    let store = Arc::new(SqliteStore::open(&dir.path().join("jobs.db"))?);
    let agent = AgentBuilder::new(Arc::new(StoreTransport::new(store.clone())), executor)
        .energy_meter(Arc::new(MeteredNode::new(energy)))
        .heartbeat_interval(Duration::from_millis(200))
        .config(|c| c.idle_pause = Duration::from_millis(20))
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    let mut spec = JobSpec::new("720p-h264");
    spec.parameters.duration = Some(2.0);
    spec.parameters.output_mode = Some(OutputMode::Null);
    let id = store.submit(spec).await?.id;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store.get(id).await?.state.is_terminal() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await?;
    stop_meter.store(true, Ordering::Relaxed);
    logger.join().expect("meter logger");

    let job = store.get(id).await?;
    assert_eq!(job.state, JobState::Completed, "{:?}", job.error);
    let energy = &job.result.as_ref().expect("a completed job has a result").energy;
    match (&no_cgroups, energy.energy_joules) {
        (None, Some(joules)) => {
            println!("job {id}: {joules:.2} J from the wall meter ({:?})", energy.attribution);
            assert!(joules > 0.0, "{energy:?}");
        }
        (None, None) => panic!("job cgroups exist, yet no energy: {energy:?}"),
        (Some(reason), _) => {
            // Without job cgroups there is no CPU time to split by: the report says so.
            println!("no job cgroups here ({reason}): {:?}", energy.unavailable_reason);
            assert!(energy
                .unavailable_reason
                .as_deref()
                .is_some_and(|r| r.contains(reason.as_str())));
        }
    }
    Ok(())
}
