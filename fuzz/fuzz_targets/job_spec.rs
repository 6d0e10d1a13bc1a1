//! Any body sent to POST /jobs: parsing and validation must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<ffrtmp_core::JobSpec>(data) {
        let _ = spec.validate();
    }
});
