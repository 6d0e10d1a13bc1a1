//! FFmpeg `-progress pipe:1` lines: never a panic, and every block stays in range (JSON
//! cannot carry an infinite number). Stable run: `ffrtmp-exec/tests/fuzz_inputs.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parser = ffrtmp_exec::ProgressParser::new(Some(2.0), Some(30.0));
    for line in text.lines() {
        if let Some(p) = parser.feed_line(line) {
            assert!((0.0..=100.0).contains(&p.percent));
            assert!(p.fps.is_finite() && p.speed.is_finite() && p.out_time_s.is_finite());
        }
    }
});
