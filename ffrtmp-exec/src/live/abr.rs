//! `live-abr`: one FFmpeg process that takes one source (live or synthetic) and pushes a
//! ladder of renditions (the scenario's height, then 2/3 and 4/9 of it: 1080p, 720p, 480p),
//! each to the job's destination with `_<height>p` appended.

use std::ffi::OsString;

use ffrtmp_core::scenario::width_for;
use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{Job, OutputMode};

use crate::command::{FfmpegCommand, FfmpegConfig};
use crate::error::ExecError;

/// The scenario that asks for a ladder.
pub const ABR_SCENARIO: &str = "live-abr";

/// Whether `job` is a ladder job.
pub fn is_abr(job: &Job) -> bool {
    job.spec.scenario.trim().eq_ignore_ascii_case(ABR_SCENARIO)
}

/// One rendition of a ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Where it is pushed.
    pub url: String,
}

fn even(v: u32) -> u32 {
    v + (v % 2)
}

/// The renditions of a ladder job whose base destination is `base_url`: heights `h`,
/// `2h/3` and `4h/9` (even, 16:9 unless the job set a resolution, whose ratio is kept).
pub fn ladder(width: u32, height: u32, base_url: &str) -> Vec<Rendition> {
    [(1, 1), (2, 3), (4, 9)]
        .iter()
        .map(|(n, d)| {
            let h = even(height * n / d);
            let w = if width == width_for(height) {
                width_for(h)
            } else {
                even(width * n / d)
            };
            Rendition {
                width: w,
                height: h,
                url: format!("{base_url}_{h}p"),
            }
        })
        .collect()
}

/// The FFmpeg command of a ladder job: the checks, routes and source of
/// [`FfmpegCommand::build`], one `split` into scaled renditions, one FLV output each.
pub fn abr_command(job: &Job, config: &FfmpegConfig) -> Result<FfmpegCommand, ExecError> {
    let p = &job.spec.parameters;
    if p.output_mode != Some(OutputMode::Rtmp) {
        return Err(ExecError::InvalidParameter(
            "live-abr pushes a ladder of live renditions: it needs output_mode rtmp".into(),
        ));
    }
    if p.input.is_some() || p.encoder.is_some() {
        return Err(ExecError::InvalidParameter(
            "live-abr takes a live source (parameters.input_url) or the synthetic one, and the software encoder".into(),
        ));
    }
    let mut cmd = FfmpegCommand::build(job, config)?;
    let base = cmd.argv().last().cloned().unwrap_or_default();
    let (w, h, fps) = (cmd.scenario.width, cmd.scenario.height, cmd.scenario.fps);
    let rungs = ladder(w, h, &base);
    // Keep the head and the source of the single-output command: everything up to `-an`.
    let cut = cmd.args.iter().position(|a| a == "-an").unwrap_or(cmd.args.len());
    let mut args: Vec<OsString> = cmd.args[..cut].to_vec();
    // A live source was scaled to the scenario by `-vf`; the filter graph does it instead.
    if let Some(i) = args.iter().position(|a| a == "-vf") {
        args.drain(i..i + 2);
    }
    if let Some(i) = args.iter().position(|a| a == "-r") {
        args.drain(i..i + 2);
    }
    let n = rungs.len();
    let mut graph = format!("[0:v]fps={fps},split={n}");
    for i in 0..n {
        graph += &format!("[s{i}]");
    }
    for (i, r) in rungs.iter().enumerate() {
        graph += &format!(";[s{i}]scale={}:{}[o{i}]", r.width, r.height);
    }
    args.push("-filter_complex".into());
    args.push(graph.into());
    let bps = p.bitrate.as_deref().and_then(parse_bitrate);
    let preset = p.preset.as_deref().unwrap_or("veryfast");
    for (i, r) in rungs.iter().enumerate() {
        for a in [
            "-map",
            &format!("[o{i}]"),
            "-an",
            "-c:v",
            cmd.encoder,
            "-preset",
            preset,
        ] {
            args.push(a.into());
        }
        if let Some(b) = bps {
            // The top rendition gets the job's bitrate; lower ones in proportion to pixels.
            let share = f64::from(r.width * r.height) / f64::from(w * h);
            args.push("-b:v".into());
            args.push(((b as f64 * share) as u64).max(1000).to_string().into());
        }
        for a in ["-pix_fmt", "yuv420p", "-g", &(fps * 2).to_string(), "-f", "flv", &r.url] {
            args.push(a.into());
        }
    }
    cmd.args = args;
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, JobState};

    fn job(json: &str) -> Job {
        let spec: JobSpec = serde_json::from_str(json).unwrap();
        Job {
            state: JobState::Running,
            attempt: 1,
            ..Job::submitted(JobId::new(), 1, spec.try_into().unwrap(), 0)
        }
    }

    #[test]
    fn the_default_ladder_is_1080_720_480() {
        let r = ladder(1920, 1080, "rtmp://h/live/k");
        let sizes: Vec<_> = r.iter().map(|r| (r.width, r.height, r.url.as_str())).collect();
        assert_eq!(
            sizes,
            [
                (1920, 1080, "rtmp://h/live/k_1080p"),
                (1280, 720, "rtmp://h/live/k_720p"),
                (854, 480, "rtmp://h/live/k_480p")
            ]
        );
    }

    #[test]
    fn a_ladder_pulls_one_allowed_source_and_pushes_every_rendition() {
        let mut c = FfmpegConfig::new("/nonexistent", "/out");
        c.allow_input_prefixes = vec!["rtmp://127.0.0.1:1935/live/".into()];
        c.allow_output_prefixes = vec!["rtmp://127.0.0.1:1935/live/".into()];
        let j = job(
            r#"{"scenario":"live-abr","parameters":{"input_url":"rtmp://127.0.0.1:1935/live/src","output_mode":"rtmp","output_url":"rtmp://127.0.0.1:1935/live/abr","bitrate":"4M"}}"#,
        );
        assert!(is_abr(&j));
        let a = abr_command(&j, &c).unwrap().argv().join(" ");
        assert!(
            a.contains("-protocol_whitelist rtmp,rtmps,tcp,tls -i rtmp://127.0.0.1:1935/live/src"),
            "{a}"
        );
        assert!(
            a.contains("-filter_complex [0:v]fps=30,split=3[s0][s1][s2];[s0]scale=1920:1080[o0];[s1]scale=1280:720[o1];[s2]scale=854:480[o2]"),
            "{a}"
        );
        assert!(!a.contains("-vf "), "{a}");
        for (o, url, bps) in [
            (0, "abr_1080p", 4_000_000),
            (1, "abr_720p", 1_777_777),
            (2, "abr_480p", 790_740),
        ] {
            assert!(
                a.contains(&format!("-map [o{o}] -an -c:v libx264 -preset veryfast -b:v {bps} -pix_fmt yuv420p -g 60 -f flv rtmp://127.0.0.1:1935/live/{url}")),
                "{o}: {a}"
            );
        }
        let file = job(r#"{"scenario":"live-abr","parameters":{"input":"a.mp4","output_mode":"rtmp"}}"#);
        assert!(abr_command(&file, &c).is_err());
        let elsewhere =
            job(r#"{"scenario":"live-abr","parameters":{"output_mode":"rtmp","output_url":"rtmp://evil/live/abr"}}"#);
        assert_eq!(
            abr_command(&elsewhere, &c).unwrap_err().kind(),
            ffrtmp_core::ErrorKind::DestinationRefused
        );
    }
}
