use std::collections::BTreeSet;

use ffrtmp_core::{ErrorKind, ExecOutcome, Job, JobError, JobId, JobSpec, JobState, Progress};

use super::executor::with_first_error;
use super::pipeline::quote;
use super::progress::parse_clock;
use super::*;
use crate::error::ExecError;

fn job(json: &str) -> Job {
    Job {
        state: JobState::Running,
        attempt: 2,
        ..Job::submitted(
            JobId::new(),
            1,
            ffrtmp_core::ValidSpec::stored(serde_json::from_str::<JobSpec>(json).unwrap()).unwrap(),
            0,
        )
    }
}

fn argv(json: &str, config: &GstConfig) -> Result<(Job, GstPipeline), ExecError> {
    let j = job(json);
    let p = GstPipeline::build(&j, config, None)?;
    Ok((j, p))
}

fn cfg() -> GstConfig {
    GstConfig::new("/nonexistent/in", "/out")
}

/// The pipeline part, after the options.
fn pipeline(p: &GstPipeline) -> String {
    p.argv()[5..].join(" ")
}

#[test]
fn synthetic_h265_file() {
    let (j, p) = argv(
        r#"{"scenario":"1080p60-h265","parameters":{"duration":0.5,"bitrate":"5M","preset":"slow"}}"#,
        &cfg(),
    )
    .unwrap();
    assert_eq!(&p.argv()[..5], ["gst-launch-1.0", "-e", "-v", "-X", "caps"]);
    assert_eq!(
        pipeline(&p),
        format!(
            "videotestsrc num-buffers=30 pattern=smpte ! video/x-raw,width=1920,height=1080,framerate=60/1 \
             ! videoconvert ! video/x-raw,format=I420 ! identity name=ffrtmp_frames silent=false \
             ! progressreport name=ffrtmp_progress update-freq=1 silent=false \
             ! x265enc speed-preset=slow key-int-max=120 bitrate=5000 ! h265parse ! mp4mux \
             ! filesink location=\"/out/{}-a2.mp4\"",
            j.id
        )
    );
    assert_eq!(p.encoder_label(), "gstreamer/x265enc");
    assert_eq!(p.frame_limit, Some(30));
    assert_eq!(p.output, Some(format!("/out/{}-a2.mp4", j.id).into()));
}

#[test]
fn null_vp9_and_av1() {
    let (_, p) = argv(
        r#"{"scenario":"240p-vp9","parameters":{"duration":1,"output_mode":"null","preset":"medium"}}"#,
        &cfg(),
    )
    .unwrap();
    assert!(
        pipeline(&p).ends_with("! vp9enc deadline=1000000 cpu-used=3 row-mt=true keyframe-max-dist=60 ! fakesink"),
        "{}",
        pipeline(&p)
    );
    assert_eq!(p.output, None);
    let (j, p) = argv(r#"{"scenario":"720p-vp9","parameters":{"bitrate":"1M"}}"#, &cfg()).unwrap();
    let text = pipeline(&p);
    assert!(text.contains("target-bitrate=1000000 ! webmmux ! filesink"), "{text}");
    assert!(text.ends_with(&format!("{}-a2.webm\"", j.id)));
    assert!(!text.contains("parse"));
    let (_, p) = argv(r#"{"scenario":"720p-av1","parameters":{"bitrate":"1M"}}"#, &cfg()).unwrap();
    assert!(pipeline(&p).contains("! svtav1enc preset=10 target-bitrate=1000 ! av1parse ! mp4mux"));
}

#[test]
fn missing_elements_are_refused_up_front() {
    let have: BTreeSet<String> = GST_ELEMENTS
        .iter()
        .filter(|e| **e != "svtav1enc")
        .map(|e| e.to_string())
        .collect();
    let j = job(r#"{"scenario":"720p-av1"}"#);
    let e = GstPipeline::build(&j, &cfg(), Some(&have)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert_eq!(
        e.to_string(),
        "this node's GStreamer has no svtav1enc element (needed for av1 file output)"
    );
    let j = job(r#"{"scenario":"720p-h264"}"#);
    assert!(GstPipeline::build(&j, &cfg(), Some(&have)).is_ok());
}

#[test]
fn rtmp_and_parameter_checks() {
    let json = r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","duration":5}}"#;
    let e = argv(json, &cfg()).unwrap_err();
    assert_eq!(e.to_string(), "rtmp output needs a configured rtmp endpoint");
    let mut c = cfg();
    c.rtmp_url = Some("rtmp://media.local/live/{job_id}".into());
    let (j, p) = argv(json, &c).unwrap();
    let text = pipeline(&p);
    assert!(
        text.starts_with("videotestsrc num-buffers=150 pattern=smpte is-live=true !"),
        "{text}"
    );
    assert!(text.ends_with(&format!(
        "! h264parse ! flvmux streamable=true ! rtmp2sink location=\"rtmp://media.local/live/{}\"",
        j.id
    )));
    let e = argv(r#"{"scenario":"720p-h265","parameters":{"output_mode":"rtmp"}}"#, &c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    let e = argv(r#"{"scenario":"720p-h265","parameters":{"bitrate":"200M"}}"#, &c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert!(e.to_string().contains("x265enc"), "{e}");
    let e = argv(r#"{"scenario":"720p-h264","parameters":{"encoder":"h264_nvenc"}}"#, &c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
}

#[test]
fn file_input_is_quoted_and_stays_inside() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in dir");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("a !b\"c.mp4"), b"x").unwrap();
    std::fs::write(root.path().join("secret.mp4"), b"x").unwrap();
    let c = GstConfig::new(&input, root.path().join("out"));
    let (_, p) = argv(r#"{"scenario":"360p-h264","parameters":{"input":"a !b\"c.mp4"}}"#, &c).unwrap();
    let canon = input.canonicalize().unwrap();
    let expected = format!("location=\"{}/a !b\\\"c.mp4\"", canon.display());
    assert_eq!(p.argv()[6], expected);
    assert!(pipeline(&p).contains(
        "! decodebin ! videoconvert ! videoscale ! videorate \
         ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! identity"
    ));
    assert_eq!(p.frame_limit, None);
    let e = argv(r#"{"scenario":"360p-h264","parameters":{"input":"../secret.mp4"}}"#, &c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    let e = argv(
        r#"{"scenario":"360p-h264","parameters":{"input":"a !b\"c.mp4","duration":1}}"#,
        &c,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert!(e.to_string().contains("cannot limit the duration"), "{e}");
}

#[test]
fn a_live_push_has_its_rate_and_sent_bytes_read_and_a_file_encode_does_not() {
    let mut c = cfg();
    c.rtmp_url = Some("rtmp://media.local/live/{job_id}".into());
    let (j, p) = argv(
        r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","duration":2}}"#,
        &c,
    )
    .unwrap();
    let text = pipeline(&p);
    assert!(
        text.contains("framerate=30/1 ! videorate name=ffrtmp_rate silent=false ! videoconvert !"),
        "{text}"
    );
    assert!(
        text.contains("! identity name=ffrtmp_sent silent=false ! h264parse ! flvmux"),
        "{text}"
    );
    assert_eq!(
        p.destination.as_deref(),
        Some(&*format!("rtmp://media.local/live/{}", j.id))
    );
    let (_, file) = argv(r#"{"scenario":"live-rtmp","parameters":{"duration":2}}"#, &c).unwrap();
    let text = pipeline(&file);
    assert!(!text.contains("ffrtmp_rate") && !text.contains("ffrtmp_sent"), "{text}");
    assert_eq!(file.destination, None);
}

/// Captured from `gst-launch-1.0 -e -v -X caps` (GStreamer 1.22), abridged.
const CAPTURED: &str = concat!(
    "Setting pipeline to PAUSED ...\n",
    "Pipeline is PREROLLING ...\n",
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = event   ******* ",
    "(ffrtmp_frames:sink) E (type: stream-start (10254), GstEventStreamStart, ",
    "stream-id=(string)4e64;) 0x7fc9\n",
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* ",
    "(ffrtmp_frames:sink) (345600 bytes, dts: none, pts: 0:00:00.000000000, duration: ",
    "0:00:00.033333333, offset: 0, offset_end:  1, flags: 00000040 discont , meta: ",
    "GstVideoMeta) 0x7fc9\n",
    "ffrtmp_progress (00:00:00): 0 / 3 seconds ( 0.0 %)\n",
    "Pipeline is PREROLLED ...\n",
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* ",
    "(ffrtmp_frames:sink) (345600 bytes, dts: none, pts: 0:00:00.033333333, duration: ",
    "0:00:00.033333334, offset: 1, offset_end:  2, flags: 00000000 , meta: GstVideoMeta) ",
    "0x7fc9\n",
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* ",
    "(ffrtmp_frames:sink) (345600 bytes, dts: none, pts: 0:00:00.066666667, duration: ",
    "0:00:00.033333333, offset: 2, offset_end:  3, flags: 00000000 , meta: GstVideoMeta) ",
    "0x7fc9\n",
    "ffrtmp_progress (00:00:01): 1 / 3 seconds (33.3 %)\n",
    "ffrtmp_progress ( 0: 0: 1): Could not query position and/or duration\n",
    "ffrtmp_progress (00:00:02): 2 seconds\n",
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = event   ******* ",
    "(ffrtmp_frames:sink) E (type: eos (28174), ) 0x7fc9\n",
    "Got EOS from element \"pipeline0\".\n",
);

#[test]
fn captured_output() {
    let mut p = GstProgressParser::new(30.0, None);
    let blocks: Vec<Progress> = CAPTURED
        .lines()
        .enumerate()
        .filter_map(|(i, l)| p.feed_line(l, Duration::from_millis(500 * i as u64)))
        .collect();
    assert_eq!(blocks.len(), 3);
    assert_eq!((blocks[0].frame, blocks[0].percent), (1, 0.0));
    assert_eq!(blocks[1].frame, 3);
    assert_eq!(blocks[1].percent, 33.3);
    assert!((blocks[1].out_time_s - 0.1).abs() < 1e-6, "{}", blocks[1].out_time_s);
    // A report without a duration keeps the percent.
    assert_eq!(blocks[2].percent, 33.3);
    assert!(blocks[1].fps > 0.0 && blocks[1].speed > 0.0);
    assert!(p.reached_eos());
    let last = p.finish(3, Duration::from_secs(2));
    assert_eq!((last.frame, last.percent), (3, 100.0));
    assert_eq!(p.frames(), 3);
}

#[test]
fn percent_from_expected_frames_and_odd_lines() {
    let mut p = GstProgressParser::new(25.0, Some(100));
    let chain = "/X/GstIdentity:ffrtmp_frames: last-message = chain ******* (ffrtmp_frames:sink) \
                 (1 bytes, dts: none, pts: none, duration: none, offset: 0)";
    for _ in 0..25 {
        p.feed_line(chain, Duration::ZERO);
    }
    assert_eq!(p.out_time_s(), 1.0);
    let b = p
        .feed_line("ffrtmp_progress (00:00:00): 0 / 4 seconds ( 0.0 %)", Duration::ZERO)
        .unwrap();
    assert_eq!((b.frame, b.percent, b.fps, b.speed), (25, 25.0, 0.0, 0.0));
    for junk in [
        "",
        "garbage",
        "ffrtmp_progress",
        "ffrtmp_progress (",
        "ffrtmp_progress (x): 3 buffers",
    ] {
        assert!(p.feed_line(junk, Duration::ZERO).is_none(), "{junk:?}");
    }
    assert_eq!(parse_clock("0:01:02.500000000"), Some(62.5));
    assert_eq!(parse_clock("none"), None);
    assert_eq!(parse_clock("-1:00:00"), None);
}

/// Found by the `gstreamer_progress` fuzz target: a subnormal frame rate or a huge timestamp
/// made the output time and the speed infinite, which JSON writes as `null`, so the master
/// refused every progress report after it.
#[test]
fn overflowing_times_keep_progress_finite() {
    let chain = |pts: &str| {
        format!(
            "/X/GstIdentity:ffrtmp_frames: last-message = chain ******* (ffrtmp_frames:sink) \
             (1 bytes, dts: none, pts: {pts}, duration: none, offset: 0)"
        )
    };
    let mut tiny_fps = GstProgressParser::new(8.7e-309, None);
    tiny_fps.feed_line(&chain("none"), Duration::from_secs(1));
    let mut huge_pts = GstProgressParser::new(30.0, None);
    huge_pts.feed_line(&chain("1e308:00:00.0"), Duration::from_secs(1));
    huge_pts.feed_line(&chain("0:00:01.000000000"), Duration::from_secs(1));
    assert_eq!(huge_pts.out_time_s(), 1.0);
    let mut huge_over_tiny = GstProgressParser::new(30.0, None);
    huge_over_tiny.feed_line(&chain("1e300:00:00.0"), Duration::from_secs(1));
    for mut p in [tiny_fps, huge_pts, huge_over_tiny] {
        let last = p.finish(2, Duration::from_nanos(1));
        let json = serde_json::to_string(&last).unwrap();
        let back: Progress = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert!(back.out_time_s.is_finite() && back.speed.is_finite(), "{back:?}");
    }
}

#[test]
fn first_error_is_quoted() {
    let tail: Vec<String> = [
        "ERROR: from element /GstPipeline:pipeline0/GstFileSrc:filesrc0: Resource not found.",
        "Additional debug info:",
        "ERROR: pipeline doesn't want to preroll.",
    ]
    .map(String::from)
    .to_vec();
    let failed = ExecOutcome::Failed {
        error: JobError::new(
            ErrorKind::EncodeError,
            "gst-launch-1.0 exited with status 1: Additional debug info:",
        ),
    };
    let ExecOutcome::Failed { error } = with_first_error(failed, &tail) else {
        panic!()
    };
    assert_eq!(
        error.message,
        "gst-launch-1.0 exited with status 1: Additional debug info: (first error: ERROR: from element \
         /GstPipeline:pipeline0/GstFileSrc:filesrc0: Resource not found.)"
    );
    assert_eq!(with_first_error(ExecOutcome::Canceled, &tail), ExecOutcome::Canceled);
}

#[test]
fn quoting() {
    assert_eq!(quote(r#"/a b/c"d\e"#), r#""/a b/c\"d\\e""#);
}

#[test]
fn an_input_name_with_a_backslash_is_refused_not_misparsed() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("clip\\"), b"x").unwrap();
    let c = GstConfig::new(&input, root.path().join("out"));
    let e = argv(r#"{"scenario":"360p-h264","parameters":{"input":"clip\\"}}"#, &c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert!(e.to_string().contains("backslash"), "{e}");
}
