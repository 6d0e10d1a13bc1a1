//! A request's method and target (path and query), parsed as the server does before it reads
//! the body: a route or a 4xx, never a panic. Input: the method, a space, the target.
//! Stable run: `ffrtmp-http/tests/fuzz_inputs.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (method, target) = text.split_once(' ').unwrap_or(("GET", &text));
    if let Err(e) = ffrtmp_http::inputs::parse_target(method, target) {
        assert!(e.status().is_client_error());
    }
});
