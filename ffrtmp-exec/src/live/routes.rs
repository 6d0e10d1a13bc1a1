//! Where a live job may push to and pull from: the node's RTMP URL template and its allowed
//! output and input prefixes. Anything else is refused before a process starts.

use ffrtmp_core::Job;

use crate::error::ExecError;

/// A node's live routes, as configured by its operator.
///
/// ```
/// use ffrtmp_exec::live::LiveRoutes;
/// let routes = LiveRoutes {
///     rtmp_url: None,
///     output_prefixes: vec!["rtmp://media.local/live/".into()],
///     input_prefixes: vec![],
/// };
/// assert!(routes.output_allowed("rtmp://media.local/live/cam1"));
/// assert!(!routes.output_allowed("rtmp://media.local.evil/live/cam1"));
/// assert!(!routes.output_allowed("rtmp://elsewhere/live/cam1"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveRoutes<'a> {
    /// The node's own endpoint for `output_mode: rtmp`, `{job_id}` replaced by the job id.
    pub rtmp_url: Option<&'a str>,
    /// Prefixes a job's `parameters.output_url` must start with.
    pub output_prefixes: Vec<String>,
    /// Prefixes a job's `parameters.input_url` must start with.
    pub input_prefixes: Vec<String>,
}

impl LiveRoutes<'_> {
    /// Whether `url` starts with one of the allowed output prefixes.
    pub fn output_allowed(&self, url: &str) -> bool {
        self.output_prefixes.iter().any(|p| under_prefix(url, p))
    }

    /// Whether `url` starts with one of the allowed input prefixes.
    pub fn input_allowed(&self, url: &str) -> bool {
        self.input_prefixes.iter().any(|p| under_prefix(url, p))
    }

    /// The URL a job's live output goes to: its `parameters.output_url` when allowed, else
    /// the node's template. Fails `destination_refused` for a URL outside the allowed
    /// prefixes, `invalid_parameter` when the node has no endpoint at all.
    pub fn output_url(&self, job: &Job) -> Result<String, ExecError> {
        let own = self.rtmp_url.map(|t| t.replace("{job_id}", &job.id.to_string()));
        match &job.spec.parameters.output_url {
            Some(url) if self.output_allowed(url) || own.as_deref() == Some(url.as_str()) => Ok(url.clone()),
            Some(url) => Err(ExecError::DestinationRefused(format!(
                "destination {url} refused: this node pushes only to {}",
                describe(&self.output_prefixes, own.as_deref())
            ))),
            None => own
                .ok_or_else(|| ExecError::InvalidParameter("rtmp output needs a configured rtmp endpoint".to_string())),
        }
    }

    /// The live source of a job (`parameters.input_url`), when it has one and it is allowed;
    /// `destination_refused` when it is not.
    pub fn input_url(&self, job: &Job) -> Result<Option<String>, ExecError> {
        match &job.spec.parameters.input_url {
            None => Ok(None),
            Some(url) if self.input_allowed(url) => Ok(Some(url.clone())),
            Some(url) => Err(ExecError::DestinationRefused(format!(
                "live source {url} refused: this node pulls only from {}",
                describe(&self.input_prefixes, None)
            ))),
        }
    }
}

/// `url` is `prefix` or lies under it: a prefix not ending in `/` must be followed by `/`,
/// `?` or nothing, so that `rtmp://host` does not admit `rtmp://host.evil`. A URL with a
/// `..` segment is never under a prefix.
fn under_prefix(url: &str, prefix: &str) -> bool {
    if prefix.is_empty() || url.split('/').any(|seg| seg == "..") {
        return false;
    }
    match url.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?']),
    }
}

fn describe(prefixes: &[String], own: Option<&str>) -> String {
    let mut all: Vec<String> = prefixes.iter().map(|p| format!("{p}*")).collect();
    all.extend(own.map(str::to_string));
    if all.is_empty() {
        "nothing (no allowed prefixes configured)".to_string()
    } else {
        all.join(", ")
    }
}

/// The FFmpeg muxer for a live URL: FLV for RTMP, MPEG-TS for SRT.
pub fn muxer_for(url: &str) -> &'static str {
    if url.len() > 6 && url[..6].eq_ignore_ascii_case("srt://") {
        "mpegts"
    } else {
        "flv"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{ErrorKind, JobId, JobSpec, JobState};

    fn job(json: &str) -> Job {
        let spec: JobSpec = serde_json::from_str(json).unwrap();
        Job {
            state: JobState::Running,
            attempt: 1,
            ..Job::submitted(JobId::new(), 1, spec.try_into().unwrap(), 0)
        }
    }

    fn routes() -> LiveRoutes<'static> {
        LiveRoutes {
            rtmp_url: Some("rtmp://127.0.0.1:1935/live/{job_id}"),
            output_prefixes: vec!["rtmp://cdn.example/live/".into(), "srt://127.0.0.1:9000".into()],
            input_prefixes: vec!["rtmp://127.0.0.1:1935/ingest/".into()],
        }
    }

    #[test]
    fn outputs_inside_the_allowed_prefixes_only() {
        let r = routes();
        let j = job(r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp"}}"#);
        assert_eq!(
            r.output_url(&j).unwrap(),
            format!("rtmp://127.0.0.1:1935/live/{}", j.id)
        );
        let allowed = job(
            r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","output_url":"rtmp://cdn.example/live/k1"}}"#,
        );
        assert_eq!(r.output_url(&allowed).unwrap(), "rtmp://cdn.example/live/k1");
        let srt = job(
            r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","output_url":"srt://127.0.0.1:9000?streamid=a"}}"#,
        );
        assert_eq!(r.output_url(&srt).unwrap(), "srt://127.0.0.1:9000?streamid=a");
        assert_eq!(muxer_for("srt://127.0.0.1:9000"), "mpegts");
        assert_eq!(muxer_for("rtmp://cdn.example/live/k1"), "flv");
        for bad in [
            "rtmp://evil.example/live/k1",
            "rtmp://cdn.example/other/k1",
            "rtmp://cdn.example/live/../admin/k",
            "srt://127.0.0.1:90001",
            "rtmp://127.0.0.1:1935/live/someone-else",
        ] {
            let j = job(&format!(
                r#"{{"scenario":"live-rtmp","parameters":{{"output_mode":"rtmp","output_url":"{bad}"}}}}"#
            ));
            let err = r.output_url(&j).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DestinationRefused, "{bad}");
            assert!(
                err.to_string().starts_with(&format!("destination {bad} refused")),
                "{err}"
            );
            assert!(err.to_string().contains("rtmp://cdn.example/live/*"), "{err}");
        }
        let none = LiveRoutes::default();
        assert_eq!(none.output_url(&j).unwrap_err().kind(), ErrorKind::InvalidParameter);
    }

    #[test]
    fn live_sources_inside_the_allowed_prefixes_only() {
        let r = routes();
        let plain = job(r#"{"scenario":"live-rtmp"}"#);
        assert_eq!(r.input_url(&plain).unwrap(), None);
        let ok = job(r#"{"scenario":"live-rtmp","parameters":{"input_url":"rtmp://127.0.0.1:1935/ingest/cam"}}"#);
        assert_eq!(
            r.input_url(&ok).unwrap().as_deref(),
            Some("rtmp://127.0.0.1:1935/ingest/cam")
        );
        let bad = job(r#"{"scenario":"live-rtmp","parameters":{"input_url":"rtmp://10.0.0.1/ingest/cam"}}"#);
        let err = r.input_url(&bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DestinationRefused);
        assert!(
            err.to_string()
                .contains("pulls only from rtmp://127.0.0.1:1935/ingest/*"),
            "{err}"
        );
        let err = LiveRoutes::default().input_url(&ok).unwrap_err();
        assert!(err.to_string().contains("no allowed prefixes configured"), "{err}");
    }
}
