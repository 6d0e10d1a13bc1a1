//! Powercap files (`name`, `energy_uj`, `max_energy_range_uj`, then a second `energy_uj`),
//! separated by NUL bytes, laid out as a zone and read through `RaplSource`: a sample or a
//! clean error, never a panic. Stable run: `ffrtmp-power/tests/fuzz_inputs.rs`.
#![no_main]

use ffrtmp_core::PowerSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == 0);
    let (name, energy, max, next) = (
        parts.next().unwrap_or(b""),
        parts.next().unwrap_or(b""),
        parts.next().unwrap_or(b""),
        parts.next().unwrap_or(b""),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = dir.path().join("intel-rapl:0");
    std::fs::create_dir_all(&zone).expect("zone dir");
    std::fs::write(zone.join("name"), name).expect("name");
    std::fs::write(zone.join("energy_uj"), energy).expect("energy_uj");
    std::fs::write(zone.join("max_energy_range_uj"), max).expect("max_energy_range_uj");
    if let Ok(source) = ffrtmp_power::RaplSource::open(dir.path()) {
        let first = source.sample();
        std::fs::write(zone.join("energy_uj"), next).expect("energy_uj");
        if let (Ok(a), Ok(b)) = (first, source.sample()) {
            assert!(b.joules_since(&a).is_finite());
        }
    }
});
