//! The exec fuzz targets of `fuzz/` on stable Rust: FFmpeg `-progress` lines, `gst-launch-1.0
//! -v` lines and `ffrtmp watch` YAML rules, fed arbitrary and mutated valid input for a bounded
//! number of cases. Parsers must never panic, and what they report stays in range (percent in
//! 0..=100, finite rates) whatever a child process prints.

use std::time::Duration;

use ffrtmp_core::Progress;
use ffrtmp_exec::gstreamer::GstProgressParser;
use ffrtmp_exec::wrapper::watch::WatchConfig;
use ffrtmp_exec::ProgressParser;
use proptest::prelude::*;
use proptest::sample::{select, Index};

const CASES: u32 = 2_000;

/// One block of real `-progress pipe:1` output.
const FFMPEG_LINES: &[&str] = &[
    "frame=30",
    "fps=29.50",
    "stream_0_0_q=28.0",
    "bitrate=1234.5kbits/s",
    "total_size=123456",
    "out_time_us=1000000",
    "out_time_ms=1000000",
    "out_time=00:00:01.000000",
    "dup_frames=0",
    "drop_frames=0",
    "speed=1.5x",
    "progress=continue",
    "progress=end",
];

/// Lines of `gst-launch-1.0 -v` output of an ffrtmp pipeline.
const GST_LINES: &[&str] = &[
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* (ffrtmp_frames:sink) \
     (1382400 bytes, dts: none, pts: 0:00:00.966666666, duration: 0:00:00.033333334, offset: 29, \
     offset_end:  30, flags: 00000000 ) 0x5581",
    "ffrtmp_progress (00:00:01): 1 / 2 seconds (50.0 %)",
    "Got EOS from element \"pipeline0\".",
    "Execution ended after 0:00:02.000000000",
];

/// Watch files in block and flow style.
const WATCH_FILES: &[&str] = &[
    "rules:\n  - match: ffmpeg\n    args_contain: [\"-c:v\"]\n    cpu_quota: 150\n    memory_limit_mb: 2048\n    nice: 5\n",
    "rules: [{match: \"ffmpeg\", args_contain: [\"-c:v\"], cpu_quota: 150, cpu_weight: 100, name: transcodes}]",
    "rules:\n  - match: gst-launch-1.0\n  - match: x264\n    memory_limit_mb: 512\n",
];

/// Byte edits (insert, delete, overwrite) at arbitrary places of a valid input.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        select(seeds),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.push(byte),
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

/// A line as a child might print it: a real one mutated, a real key with an edge value, or noise.
fn line(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        select(vec![
            "nan",
            "inf",
            "-inf",
            "N/A",
            "1e400",
            "-0",
            "1.5x",
            "99999999999999999999999",
            ""
        ])
        .prop_map(String::from),
    ];
    let key = seeds
        .iter()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect::<Vec<_>>();
    prop_oneof![
        mutated(seeds),
        (select(if key.is_empty() { vec!["pts"] } else { key }), value).prop_map(|(k, v)| format!("{k}={v}")),
        prop::collection::vec(any::<u8>(), 0..60).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Pieces of YAML, so arbitrary documents are mostly YAML-shaped.
const YAML_TOKENS: &[&str] = &[
    "rules:",
    "match:",
    "args_contain:",
    "cpu_quota:",
    "nice:",
    "name:",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "\n",
    "\n  ",
    "&a ",
    "*a",
    "!!str ",
    "\"",
    "'",
    "ffmpeg",
    "-1",
    "4294967296",
    "1e9",
    "~",
    "#",
    "?",
    "|",
    "x",
];

fn sane(progress: &Progress) {
    assert!((0.0..=100.0).contains(&progress.percent), "{progress:?}");
    for v in [progress.fps, progress.speed, progress.out_time_s] {
        assert!(v.is_finite() && v >= 0.0, "{progress:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ffmpeg_progress_lines(
        expected in prop::option::of(any::<f64>()),
        fps in prop::option::of(any::<f64>()),
        lines in prop::collection::vec(line(FFMPEG_LINES), 0..16),
    ) {
        let mut parser = ProgressParser::new(expected, fps);
        for l in &lines {
            if let Some(p) = parser.feed_line(l) {
                sane(&p);
            }
        }
        if let Some(p) = parser.last() {
            sane(p);
        }
    }

    #[test]
    fn gstreamer_progress_lines(
        fps in any::<f64>(),
        expected in prop::option::of(any::<u64>()),
        lines in prop::collection::vec(line(GST_LINES), 0..16),
        elapsed_ms in any::<u64>(),
    ) {
        let mut parser = GstProgressParser::new(fps, expected);
        let elapsed = Duration::from_millis(elapsed_ms);
        for l in &lines {
            if let Some(p) = parser.feed_line(l, elapsed) {
                sane(&p);
            }
        }
        let frames = parser.frames();
        sane(&parser.finish(frames, elapsed));
    }

    #[test]
    fn watch_rules_mutated(text in mutated(WATCH_FILES)) {
        check_watch(&text);
    }

    #[test]
    fn watch_rules_arbitrary(tokens in prop::collection::vec(select(YAML_TOKENS), 0..40)) {
        check_watch(&tokens.concat());
    }
}

/// The `watch_rules` fuzz target: parse, then match a process as `watch` does.
fn check_watch(text: &str) {
    match WatchConfig::parse(text) {
        Ok(config) => {
            let argv = vec!["/usr/bin/ffmpeg".to_string(), "-c:v".to_string(), "libx264".to_string()];
            if let Some(rule) = config.find("ffmpeg", &argv) {
                let _ = rule.limits();
                assert!(!rule.label().is_empty());
            }
            let _ = config.find("", &[]);
        }
        Err(e) => assert!(e.starts_with("invalid watch config"), "{e}"),
    }
}

/// The seeds parse, so mutations start from input the parsers take.
#[test]
fn seeds_are_valid() {
    for text in WATCH_FILES {
        WatchConfig::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    let mut p = ProgressParser::new(Some(2.0), Some(30.0));
    let blocks: Vec<Progress> = FFMPEG_LINES.iter().filter_map(|l| p.feed_line(l)).collect();
    assert_eq!(blocks.len(), 2);
    let mut g = GstProgressParser::new(30.0, Some(60));
    assert!(
        GST_LINES
            .iter()
            .filter_map(|l| g.feed_line(l, Duration::from_secs(1)))
            .count()
            == 1
    );
    assert_eq!(g.frames(), 1);
    assert!(g.reached_eos());
}
