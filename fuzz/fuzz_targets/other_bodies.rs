//! The other bodies clients send (job spec, claim, registration, cancel, progress tick): a value or a 400,
//! never a panic. Stable run: `ffrtmp-http/tests/fuzz_inputs.rs`.
#![no_main]

use ffrtmp_http::inputs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let statuses = [
        inputs::job_spec_body(data).err(),
        inputs::claim_body(data).err(),
        inputs::registration_body(data).err(),
        inputs::cancel_body(data).err(),
        inputs::progress_tick_body(data).err(),
    ];
    for e in statuses.into_iter().flatten() {
        assert_eq!(e.status().as_u16(), 400);
    }
});
