//! `gst-launch-1.0 -v` lines: never a panic, and every block stays in range (JSON cannot carry
//! an infinite number). The first 8 bytes are the frame rate. Stable run:
//! `ffrtmp-exec/tests/fuzz_inputs.rs`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((fps, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mut parser = ffrtmp_exec::gstreamer::GstProgressParser::new(f64::from_le_bytes(*fps), None);
    let sane = |p: &ffrtmp_core::Progress| {
        assert!((0.0..=100.0).contains(&p.percent));
        assert!(p.fps.is_finite() && p.speed.is_finite() && p.out_time_s.is_finite());
    };
    for line in String::from_utf8_lossy(rest).lines() {
        if let Some(p) = parser.feed_line(line, Duration::from_millis(1)) {
            sane(&p);
        }
    }
    let frames = parser.frames();
    sane(&parser.finish(frames, Duration::from_nanos(1)));
});
