//! `ffrtmp config recommend`: agent settings suggested from this machine's hardware (cores,
//! memory, FFmpeg's software encoders, RAPL access), each with its reason.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What was found on this machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hardware {
    /// Logical CPUs available to this process.
    pub cpu_cores: u32,
    /// Total memory in MiB (0 when `/proc/meminfo` is unreadable).
    pub memory_mb: u64,
    /// The ffmpeg binary found (`$FFMPEG`, else `ffmpeg` on `PATH`).
    pub ffmpeg: Option<PathBuf>,
    /// Software encoders that ffmpeg offers (of those ffrtmp uses).
    pub encoders: Vec<String>,
    /// Why encoders could not be listed, when they could not.
    pub encoder_problem: Option<String>,
    /// RAPL energy: `None` when readable, else why not.
    pub energy_problem: Option<String>,
    /// Readable RAPL zones.
    pub rapl_zones: usize,
}

/// One suggested agent flag.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestion {
    /// The `ffrtmp-agent` flag.
    pub flag: String,
    /// Its suggested value.
    pub value: String,
    /// Why.
    pub reason: String,
}

/// The suggestions for this machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// What was found.
    pub hardware: Hardware,
    /// Suggested flags.
    pub suggestions: Vec<Suggestion>,
    /// Other remarks (missing ffmpeg, energy unavailable, …).
    pub notes: Vec<String>,
    /// An agent command line with the suggested flags.
    pub command: String,
}

/// Memory budgeted per concurrent 1080p software encode, MiB.
pub const MB_PER_JOB: u64 = 1024;
/// Memory left for the system and the agent, MiB.
pub const MB_RESERVED: u64 = 1024;

fn find_on_path(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|c| c.is_file())
}

/// Looks at this machine.
pub async fn detect() -> Hardware {
    let name = std::env::var_os("FFMPEG")
        .map(PathBuf::from)
        .unwrap_or_else(|| "ffmpeg".into());
    let ffmpeg = find_on_path(&name);
    let (encoders, encoder_problem) = match &ffmpeg {
        Some(path) => match ffrtmp_exec::detect::software_encoders(path).await {
            Ok(list) => (list, None),
            Err(e) => (Vec::new(), Some(e)),
        },
        None => (Vec::new(), Some(format!("{} not found on PATH", name.display()))),
    };
    let (rapl_zones, energy_problem) = match ffrtmp_power::RaplSource::system() {
        Ok(source) => (source.zones().len(), None),
        Err(e) => (0, Some(e.to_string())),
    };
    Hardware {
        cpu_cores: ffrtmp_exec::detect::cpu_cores(),
        memory_mb: ffrtmp_exec::detect::memory_mb(),
        ffmpeg,
        encoders,
        encoder_problem,
        energy_problem,
        rapl_zones,
    }
}

/// The suggestions for `hw`.
///
/// ```
/// use ffrtmp_bench::recommend::{recommend, Hardware};
/// let hw = Hardware { cpu_cores: 16, memory_mb: 4096, ffmpeg: None, encoders: vec![],
///     encoder_problem: None, energy_problem: None, rapl_zones: 1 };
/// let r = recommend(&hw);
/// // 16 cores would allow 8 jobs, but 4 GiB of memory only 3.
/// assert_eq!(r.suggestions[0].value, "3");
/// ```
pub fn recommend(hw: &Hardware) -> Recommendation {
    let cores = hw.cpu_cores.max(1);
    let by_cores = (cores / 2).max(1);
    let by_memory = (hw.memory_mb > 0).then(|| (hw.memory_mb.saturating_sub(MB_RESERVED) / MB_PER_JOB).max(1));
    let jobs = match by_memory {
        Some(m) if m < by_cores as u64 => m as u32,
        _ => by_cores,
    };
    let mut reason = format!(
        "{cores} cores / 2 = {by_cores}: a 1080p software encode (libx264, medium-fast presets) keeps about 2 \
         cores busy, so cores/2 jobs fill the machine without oversubscribing it, which would slow every job \
         and blur per-job energy attribution"
    );
    match by_memory {
        Some(m) if m < by_cores as u64 => reason.push_str(&format!(
            "; limited to {m} by memory ({} MiB, about {MB_PER_JOB} MiB per encode plus {MB_RESERVED} MiB for \
             the system)",
            hw.memory_mb
        )),
        Some(_) => reason.push_str(&format!("; memory ({} MiB) allows it", hw.memory_mb)),
        None => reason.push_str("; memory unknown (/proc/meminfo unreadable)"),
    }
    reason.push_str(&format!(
        ". For 4K, H.265 or AV1 encodes, which use more cores each, use about cores/4 = {}; for 720p, up to \
         cores = {cores}",
        (cores / 4).max(1)
    ));
    let suggestions = vec![
        Suggestion {
            flag: "--max-concurrent-jobs".into(),
            value: jobs.to_string(),
            reason,
        },
        Suggestion {
            flag: "--heartbeat-interval".into(),
            value: "30s".into(),
            reason: "the master's default, and it must equal the master's --heartbeat-interval: a node silent \
                     for 3 intervals (90 s) is declared lost and its jobs are retried elsewhere. Lower both \
                     (e.g. 10s) for faster failover at the cost of more requests"
                .into(),
        },
        Suggestion {
            flag: "--claim-wait".into(),
            value: "20s".into(),
            reason: "long poll: a claim returns as soon as work is queued, so a longer wait only saves idle \
                     requests; the master caps waits at 30 s and a request times out after 40 s, so 20 s \
                     leaves margin on slow links"
                .into(),
        },
        Suggestion {
            flag: "--drain-timeout".into(),
            value: "30s".into(),
            reason: "on SIGTERM, running jobs get this long to finish before they are stopped and handed \
                     back for a retry elsewhere; keep it below the supervisor's stop timeout (systemd \
                     TimeoutStopSec, 90 s by default), and raise both if most jobs take a little longer"
                .into(),
        },
    ];
    let mut notes = Vec::new();
    match (&hw.ffmpeg, &hw.encoder_problem) {
        (None, _) => notes
            .push("ffmpeg not found: the agent needs it (e.g. apt-get install ffmpeg, or --ffmpeg PATH)".to_string()),
        (Some(_), Some(problem)) => notes.push(format!("could not list ffmpeg's encoders: {problem}")),
        (Some(_), None) if hw.encoders.is_empty() => {
            notes.push("ffmpeg offers none of libx264, libx265, libsvtav1, libvpx-vp9".to_string())
        }
        (Some(_), None) => notes.push(format!(
            "software encoders the agent will advertise: {}",
            hw.encoders.join(", ")
        )),
    }
    match &hw.energy_problem {
        None => notes.push(format!(
            "RAPL energy readable ({} zones): jobs get measured joules",
            hw.rapl_zones
        )),
        Some(problem) => notes.push(format!(
            "no RAPL energy here ({problem}): jobs will report energy as unavailable; run the agent with \
             read access to /sys/class/powercap/*/energy_uj for measured joules"
        )),
    }
    let mut command = String::from("ffrtmp-agent --master https://MASTER:8443 --ca-cert tls/cert.pem");
    for s in &suggestions {
        command.push_str(&format!(" {} {}", s.flag, s.value));
    }
    Recommendation {
        hardware: hw.clone(),
        suggestions,
        notes,
        command,
    }
}

/// The recommendation as text: hardware, each flag with its reason, notes, a command line.
pub fn render_text(r: &Recommendation) -> String {
    let hw = &r.hardware;
    let mut out = format!(
        "this machine: {} cores, {} MiB memory, ffmpeg {}\n\n",
        hw.cpu_cores,
        hw.memory_mb,
        hw.ffmpeg
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found".into())
    );
    for s in &r.suggestions {
        out.push_str(&format!("{} {}\n    {}\n", s.flag, s.value, s.reason));
    }
    out.push('\n');
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!("\n{}\n", r.command));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hw(cores: u32, memory_mb: u64) -> Hardware {
        Hardware {
            cpu_cores: cores,
            memory_mb,
            ffmpeg: Some("/usr/bin/ffmpeg".into()),
            encoders: vec!["libx264".into()],
            encoder_problem: None,
            energy_problem: Some("no powercap interface".into()),
            rapl_zones: 0,
        }
    }

    #[test]
    fn concurrency_follows_cores_and_memory() {
        let jobs = |h: &Hardware| recommend(h).suggestions[0].value.clone();
        assert_eq!(jobs(&hw(1, 0)), "1");
        assert_eq!(jobs(&hw(2, 8192)), "1");
        assert_eq!(jobs(&hw(8, 65536)), "4");
        assert_eq!(jobs(&hw(64, 4096)), "3");
        assert_eq!(jobs(&hw(8, 512)), "1");
        let r = recommend(&hw(64, 4096));
        assert!(r.suggestions[0].reason.contains("limited to 3 by memory"));
    }

    #[test]
    fn text_and_json_carry_reasons() {
        let r = recommend(&hw(8, 16384));
        let text = render_text(&r);
        assert!(text.contains("--max-concurrent-jobs 4\n"), "{text}");
        assert!(text.contains("--heartbeat-interval 30s"));
        assert!(text.contains("--claim-wait 20s"));
        assert!(text.contains("--drain-timeout 30s"));
        assert!(text.contains("no RAPL energy here (no powercap interface)"), "{text}");
        assert!(text.contains("libx264"));
        assert!(r.command.ends_with("--drain-timeout 30s"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["suggestions"][0]["flag"], "--max-concurrent-jobs");
        assert_eq!(v["hardware"]["cpu_cores"], 8);
    }
}
