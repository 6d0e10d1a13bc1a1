//! Cost of one `RaplSource::sample()` on a file tree with two packages and their DRAM zones
//! (`powercap_sample_2pkg_dram`, four counters), and with a single package zone
//! (`powercap_sample_1pkg`: one counter read, the unit of a sample's cost), and the sampler's way
//! of reading the four (`powercap_sample_into_2pkg_dram`: into the last reading, no allocation).
//! The counters stand still, so every read also pays the `fstat` that checks a counter which did
//! not move (a sysfs counter skips it).

use std::fs;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use ffrtmp_core::PowerSource;
use ffrtmp_power::RaplSource;

fn zone(root: &Path, entry: &str, name: &str, uj: u64) {
    let dir = root.join(entry);
    fs::create_dir_all(&dir).expect("create zone dir");
    fs::write(dir.join("name"), format!("{name}\n")).expect("write name");
    fs::write(dir.join("energy_uj"), format!("{uj}\n")).expect("write energy_uj");
    fs::write(dir.join("max_energy_range_uj"), "262143328850\n").expect("write max_energy_range_uj");
}

fn sample(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    zone(dir.path(), "intel-rapl:0", "package-0", 1_000_000);
    zone(dir.path(), "intel-rapl:0:0", "core", 400_000);
    zone(dir.path(), "intel-rapl:0:1", "dram", 200_000);
    zone(dir.path(), "intel-rapl:1", "package-1", 2_000_000);
    zone(dir.path(), "intel-rapl:1:0", "core", 800_000);
    zone(dir.path(), "intel-rapl:1:1", "dram", 300_000);
    let rapl = RaplSource::open(dir.path()).expect("open tree");
    assert_eq!(rapl.zones().len(), 4);
    c.bench_function("powercap_sample_2pkg_dram", |b| {
        b.iter(|| std::hint::black_box(rapl.sample().expect("sample")))
    });
    let mut reading = rapl.sample().expect("sample");
    c.bench_function("powercap_sample_into_2pkg_dram", |b| {
        b.iter(|| rapl.sample_into(std::hint::black_box(&mut reading)).expect("sample"))
    });

    let one = tempfile::tempdir().expect("tempdir");
    zone(one.path(), "intel-rapl:0", "package-0", 1_000_000);
    let rapl = RaplSource::open(one.path()).expect("open tree");
    assert_eq!(rapl.zones().len(), 1);
    c.bench_function("powercap_sample_1pkg", |b| {
        b.iter(|| std::hint::black_box(rapl.sample().expect("sample")))
    });
}

criterion_group!(benches, sample);
criterion_main!(benches);
