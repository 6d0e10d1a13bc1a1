//! Output quality per job (`parameters.quality`): the metric asked for and what the node found.

use serde::{Deserialize, Serialize};

use crate::ids::AttemptKey;
use crate::job::EnergyReport;

/// A quality metric of an encode against its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    /// Peak signal-to-noise ratio, in dB (average over Y, U, V): ffmpeg's `psnr` filter.
    Psnr,
    /// Structural similarity, 0 to 1 (`All`): ffmpeg's `ssim` filter.
    Ssim,
    /// VMAF, 0 to 100: ffmpeg's `libvmaf` filter, where the node's ffmpeg has it.
    Vmaf,
}

impl QualityMetric {
    /// The name on the wire: `psnr`, `ssim`, `vmaf`.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityMetric::Psnr => "psnr",
            QualityMetric::Ssim => "ssim",
            QualityMetric::Vmaf => "vmaf",
        }
    }

    /// The unit of a score: `dB` for PSNR, none for the others.
    pub fn unit(self) -> &'static str {
        match self {
            QualityMetric::Psnr => " dB",
            _ => "",
        }
    }
}

impl std::str::FromStr for QualityMetric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "psnr" => Ok(QualityMetric::Psnr),
            "ssim" => Ok(QualityMetric::Ssim),
            "vmaf" => Ok(QualityMetric::Vmaf),
            other => Err(format!("unknown quality metric {other:?}: expected psnr, ssim or vmaf")),
        }
    }
}

/// The quality of a job's output, measured after the encode by a separate pass whose time and
/// energy are reported here, apart from the encode's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The metric.
    pub metric: QualityMetric,
    /// The score; `None` when it could not be computed (`unavailable_reason` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Why there is no score, e.g. `this node's ffmpeg has no libvmaf filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
    /// Wall seconds of the quality pass, not counted in the job's `wall_s`. The pass runs
    /// outside the job's cgroup, so the job's attributed energy is the encode's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// Energy of the quality pass itself, attributed by the node's meter exactly as the
    /// encode's is (its own cgroup, the same sampler; `estimated` with the model named on a node
    /// with a power model), and never included in the job's `energy`. `None` where the node
    /// has no meter or the report predates this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergyReport>,
    /// Quality per joule: the score divided by the joules of the *encode* (the job's
    /// `energy.energy_joules`, not the quality pass's), e.g. PSNR dB or VMAF points per joule;
    /// estimated when the encode's energy is. `None` without a score or encode energy, or when
    /// that energy is partial (a lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_per_joule: Option<f64>,
}

/// The cgroup (and energy attribution key) of a job attempt's quality pass: the attempt key
/// with [`QUALITY_PASS_SUFFIX`], so the pass is measured like an encode yet apart from it.
///
/// ```
/// let key: ffrtmp_core::AttemptKey = "0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11-a2".parse().unwrap();
/// assert_eq!(ffrtmp_core::quality::quality_pass_key(&key), "0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11-a2-quality");
/// ```
pub fn quality_pass_key(attempt: &AttemptKey) -> String {
    format!("{attempt}{QUALITY_PASS_SUFFIX}")
}

/// What [`quality_pass_key`] appends to the attempt key.
pub const QUALITY_PASS_SUFFIX: &str = "-quality";

impl QualityReport {
    /// A report without a score, with the reason.
    pub fn unavailable(metric: QualityMetric, reason: impl Into<String>) -> Self {
        QualityReport {
            metric,
            score: None,
            unavailable_reason: Some(reason.into()),
            wall_s: None,
            energy: None,
            score_per_joule: None,
        }
    }

    /// Quality per joule: the score per joule of the encode's energy (`joules`), where both
    /// exist. This is the definition used everywhere (results' `score_per_joule`, `ffrtmp jobs
    /// status`, the efficiency table): e.g. PSNR dB or VMAF points per joule of encode. The
    /// quality pass's own energy is not in the denominator.
    ///
    /// ```
    /// use ffrtmp_core::quality::{QualityMetric, QualityReport};
    /// let q = QualityReport { score: Some(40.0), ..QualityReport::unavailable(QualityMetric::Psnr, "") };
    /// assert_eq!(q.per_joule(Some(8.0)), Some(5.0));
    /// assert_eq!(q.per_joule(None), None);
    /// ```
    pub fn per_joule(&self, joules: Option<f64>) -> Option<f64> {
        let j = joules.filter(|j| j.is_finite() && *j > 0.0)?;
        self.score.map(|s| s / j)
    }
}

#[cfg(test)]
mod tests {
    use crate::JobSpec;

    #[test]
    fn quality_needs_a_file_output_and_a_known_metric() {
        let spec =
            |p: &str| serde_json::from_str::<JobSpec>(&format!(r#"{{"scenario":"720p-h264","parameters":{p}}}"#));
        assert!(spec(r#"{"quality":"psnr"}"#).unwrap().validate().is_ok());
        let err = spec(r#"{"quality":"ssim","output_mode":"null"}"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("parameters.quality"), "{err}");
        assert!(spec(r#"{"quality":"butteraugli"}"#).is_err());
    }
}
