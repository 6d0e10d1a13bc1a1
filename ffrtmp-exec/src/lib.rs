//! Execution engine of ffrtmp: runs jobs on an agent.
//!
//! - [`command`]: the FFmpeg command line of a job ([`FfmpegCommand`], [`FfmpegConfig`]).
//! - [`progress`]: parsing `-progress pipe:1` ([`ProgressParser`]).
//! - [`supervise`]: running any program in its own process group, `nice`d, with cancel,
//!   timeout, SIGTERM → grace → SIGKILL and no orphans.
//! - [`cgroup`]: per-job cgroups (v1 and v2) with CPU and memory limits read back.
//! - [`input`]: confining job inputs (and the files playlists name) to the input directory.
//! - [`workload`]: a supervised program in a job cgroup, classified into an outcome.
//! - [`child_env`]: the allowlisted environment of every child (no credentials).
//! - [`run_as`]: [`RunAs`], the unprivileged user workloads run as under a root agent.
//! - [`disk`]: scratch-disk checks.
//! - [`ffmpeg`]: [`FfmpegExecutor`], the default [`ffrtmp_core::Executor`].
//! - [`gstreamer`]: [`GstExecutor`], the same jobs as `gst-launch-1.0` pipelines.
//! - [`engine`]: [`AutoExecutor`], FFmpeg or GStreamer per job (live work on GStreamer).
//! - [`live`]: live routes (allowed RTMP/SRT destinations and sources).
//! - [`detect`]: what the node can do (encoders, cores, memory).
//! - [`agent`]: the agent loop ([`agent::Agent`]): register, heartbeat, claim, run, report, drain.
//! - [`wrapper`]: the edge wrapper (`ffrtmp run`, `attach`, `watch`): governing processes non-owning.
#![warn(missing_docs)]

pub mod agent;
pub mod cgroup;
pub mod child_env;
pub mod command;
pub mod detect;
pub mod disk;
pub mod engine;
pub mod error;
pub mod ffmpeg;
pub mod gstreamer;
pub mod input;
pub mod live;
pub mod noop;
pub mod progress;
pub mod quality;
pub mod run_as;
pub mod secret_env;
pub mod supervise;
pub mod verify;
pub mod workload;
pub mod wrapper;

pub use agent::AgentBuilder;
pub use cgroup::{job_cgroup_name, CgroupMode, CgroupObserver, CgroupPaths, Cgroups, JobCgroup};
pub use command::{FfmpegCommand, FfmpegConfig};
pub use disk::DiskUsage;
pub use engine::AutoExecutor;
pub use error::ExecError;
pub use ffmpeg::{FfmpegExecutor, FFMPEG_ENCODE_ERRORS};
pub use gstreamer::{GstConfig, GstExecutor};
pub use noop::NoopExecutor;
pub use progress::ProgressParser;
pub use run_as::RunAs;
pub use supervise::{ProcessExit, ProcessSpec, StopReason, Termination};
pub use workload::{run_workload, WorkloadRun};
