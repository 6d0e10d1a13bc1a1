//! Which node may run which job: the one decision every store's claim follows.
//!
//! A node is given a job only when it has what the job asks for:
//!
//! - an explicit `parameters.encoder` among the node's encoders;
//! - an encoder for the job's codec, unless the node advertises no encoders at all (a
//!   custom executor, which is not filtered by codec);
//! - the engine a job is pinned to (`engine: ffmpeg | gstreamer`) among the node's engines;
//! - for limits whose enforcement is `required`, a node that enforces limits.
//!
//! ```
//! use ffrtmp_core::{Enforcement, EngineChoice, JobSpec, Mismatch, NodeRegistration};
//! let node = NodeRegistration {
//!     name: "n1".into(), cpu_cores: 4, memory_mb: 8192, max_concurrent_jobs: 2,
//!     encoders: vec!["libx264".into()], engines: vec!["ffmpeg".into()],
//!     version: "1".into(), enforces_limits: false, quality_metrics: Vec::new(),
//! };
//! let mut job = JobSpec::new("720p-h264");
//! assert_eq!(node.can_run(&job), Ok(()));
//! job.engine = EngineChoice::Gstreamer;
//! assert_eq!(node.can_run(&job), Err(Mismatch::Engine("gstreamer")));
//! job.engine = EngineChoice::Auto;
//! job.resource_limits.enforcement = Enforcement::Required;
//! assert_eq!(node.can_run(&job), Err(Mismatch::Enforcement));
//! ```

use crate::node::NodeRegistration;
use crate::scenario::Codec;
use crate::spec::{Enforcement, EngineChoice, JobSpec};
use crate::valid_spec::ValidSpec;

/// Why a node may not run a job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The job names an encoder the node does not advertise.
    #[error("the node lacks the encoder {0}")]
    Encoder(String),
    /// None of the node's encoders produces the job's codec.
    #[error("the node has no encoder for {0}")]
    Codec(Codec),
    /// The job is pinned to an engine the node does not advertise.
    #[error("the node lacks the {0} engine")]
    Engine(&'static str),
    /// The job's limits are required and the node does not enforce limits.
    #[error("the job's resource limits are required and the node cannot enforce them")]
    Enforcement,
    /// The spec itself is invalid, so no node runs it.
    #[error("invalid spec: {0}")]
    Spec(String),
}

impl NodeRegistration {
    /// Whether this node may be given `spec` (see the [module](self) for the rules); the
    /// spec is validated first, so an invalid one is a [`Mismatch::Spec`].
    pub fn can_run(&self, spec: &JobSpec) -> Result<(), Mismatch> {
        let spec = ValidSpec::try_from(spec.clone()).map_err(|e| Mismatch::Spec(e.to_string()))?;
        self.can_take(&spec)
    }

    /// [`can_run`](Self::can_run) for a spec already validated, such as a stored job's:
    /// reads its scenario rather than parsing it again.
    pub fn can_take(&self, spec: &ValidSpec) -> Result<(), Mismatch> {
        self.meets(&Requirements::of(spec))
    }

    /// Whether this node has what `req` asks for: the whole decision of
    /// [`can_take`](Self::can_take), over the parts of a spec that matching reads, so a store
    /// can decide for a whole class of queued jobs at once.
    pub fn meets(&self, req: &Requirements) -> Result<(), Mismatch> {
        let codec = req.codec;
        if let Some(encoder) = &req.encoder {
            if !self.encoders.iter().any(|e| e == encoder) {
                return Err(Mismatch::Encoder(encoder.clone()));
            }
        }
        if !self.encoders.is_empty() && !self.encoders.iter().any(|e| Codec::of_encoder(e) == Some(codec)) {
            return Err(Mismatch::Codec(codec));
        }
        if let Some(engine) = req.engine.pinned() {
            if !self.engines.iter().any(|e| e == engine) {
                return Err(Mismatch::Engine(engine));
            }
        }
        if req.enforcement == Enforcement::Required && !self.enforces_limits {
            return Err(Mismatch::Enforcement);
        }
        Ok(())
    }
}

/// What a job asks of the node that runs it: the only parts of a spec that matching reads.
/// Jobs with equal requirements are run by exactly the same nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirements {
    /// The explicit `parameters.encoder`, if any.
    pub encoder: Option<String>,
    /// The codec of the job's scenario.
    pub codec: Codec,
    /// The engine the job is pinned to (`Auto`: any).
    pub engine: EngineChoice,
    /// Whether the job's limits must be enforced.
    pub enforcement: Enforcement,
}

impl Requirements {
    /// The requirements of a validated spec.
    pub fn of(spec: &ValidSpec) -> Requirements {
        Requirements {
            encoder: spec.parameters.encoder.clone(),
            codec: spec.scenario().codec,
            engine: spec.engine,
            enforcement: spec.resource_limits.enforcement,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::EngineChoice;

    fn node(encoders: &[&str], engines: &[&str], enforces_limits: bool) -> NodeRegistration {
        NodeRegistration {
            name: "n".into(),
            cpu_cores: 2,
            memory_mb: 1024,
            max_concurrent_jobs: 1,
            encoders: encoders.iter().map(|s| s.to_string()).collect(),
            engines: engines.iter().map(|s| s.to_string()).collect(),
            version: String::new(),
            enforces_limits,
            quality_metrics: Vec::new(),
        }
    }

    #[test]
    fn engines_are_matched_only_when_pinned() {
        let ffmpeg_only = node(&["libx264"], &["ffmpeg"], true);
        let both = node(&["libx264"], &["ffmpeg", "gstreamer"], true);
        let mut job = JobSpec::new("720p-h264");
        for (engine, on_ffmpeg_only) in [
            (EngineChoice::Auto, Ok(())),
            (EngineChoice::Ffmpeg, Ok(())),
            (EngineChoice::Gstreamer, Err(Mismatch::Engine("gstreamer"))),
        ] {
            job.engine = engine;
            assert_eq!(ffmpeg_only.can_run(&job), on_ffmpeg_only, "{engine:?}");
            assert_eq!(both.can_run(&job), Ok(()), "{engine:?}");
        }
        // A custom executor advertising no engines takes no pinned job.
        job.engine = EngineChoice::Ffmpeg;
        assert_eq!(node(&[], &[], true).can_run(&job), Err(Mismatch::Engine("ffmpeg")));
    }

    #[test]
    fn required_limits_need_an_enforcing_node_and_best_effort_ones_do_not() {
        let mut job = JobSpec::new("720p-h264");
        job.resource_limits.max_memory_mb = Some(256);
        let lax = node(&["libx264"], &["ffmpeg"], false);
        let strict = node(&["libx264"], &["ffmpeg"], true);
        assert_eq!(lax.can_run(&job), Ok(()), "best effort runs anywhere");
        job.resource_limits.enforcement = Enforcement::Required;
        assert_eq!(lax.can_run(&job), Err(Mismatch::Enforcement));
        assert_eq!(strict.can_run(&job), Ok(()));
    }

    #[test]
    fn encoders_and_codecs_are_matched_as_before() {
        let cpu = node(&["libx264"], &["ffmpeg"], false);
        let mut nvenc = JobSpec::new("720p-h264");
        nvenc.parameters.encoder = Some("h264_nvenc".into());
        assert_eq!(cpu.can_run(&nvenc), Err(Mismatch::Encoder("h264_nvenc".into())));
        assert_eq!(cpu.can_run(&JobSpec::new("720p-av1")), Err(Mismatch::Codec(Codec::Av1)));
        let custom = node(&[], &["example"], false);
        assert_eq!(custom.can_run(&JobSpec::new("720p-vp9")), Ok(()));
        assert_eq!(custom.can_run(&nvenc), Err(Mismatch::Encoder("h264_nvenc".into())));
        assert!(matches!(
            cpu.can_run(&JobSpec::new("1080p-mpeg2")),
            Err(Mismatch::Spec(_))
        ));
    }
}
