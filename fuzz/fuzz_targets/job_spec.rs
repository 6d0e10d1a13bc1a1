//! Any body sent to POST /jobs: parsing and validation must never panic, and a valid spec
//! names a scenario that parses. Stable run: `ffrtmp-core/tests/fuzz_inputs.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<ffrtmp_core::JobSpec>(data) {
        if spec.validate().is_ok() {
            assert!(ffrtmp_core::Scenario::parse(&spec.scenario).is_ok());
        }
    }
});
