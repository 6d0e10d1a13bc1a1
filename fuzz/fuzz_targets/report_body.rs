//! The body of POST /jobs/{id}/report: a report or a 400, never a panic.
//! Stable run: `ffrtmp-http/tests/fuzz_inputs.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ffrtmp_http::inputs::report_body(data) {
        assert_eq!(e.status().as_u16(), 400);
    }
});
