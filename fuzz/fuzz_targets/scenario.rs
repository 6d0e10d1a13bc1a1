//! Scenario names from users: parsing must never panic and must give sane sizes.
//! Stable run: `ffrtmp-core/tests/fuzz_inputs.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(s) = ffrtmp_core::Scenario::parse(text) {
            assert!(s.width % 2 == 0 && s.height >= 144 && s.fps >= 1);
        }
    }
});
