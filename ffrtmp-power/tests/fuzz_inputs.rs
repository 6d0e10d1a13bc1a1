//! The powercap fuzz target of `fuzz/` on stable Rust: a powercap-shaped tree whose files hold
//! arbitrary or mutated valid contents, opened and read through `RaplSource` (and a job's
//! `cpu.stat` through `cgroup_cpu_ns`, and `/proc/stat` through `proc_stat_total_ns`) for a
//! bounded number of cases. Reading must answer a sample or a clean error, never panic.

use std::fs;
use std::path::Path;

use ffrtmp_core::PowerSource;
use ffrtmp_power::{cgroup_cpu_ns, proc_stat_total_ns, RaplSource};
use proptest::prelude::*;
use proptest::sample::{select, Index};

const CASES: u32 = 1_000;

/// Byte edits (insert, delete, overwrite) at arbitrary places of a valid file.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (
        select(seeds),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 0..4),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.push(byte),
                }
            }
            bytes
        })
}

/// A counter file: a mutated number, any number, or any bytes (empty, huge, binary).
fn counter() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        mutated(&[
            "1000000\n",
            "262143328850\n",
            "00000000000000001234\n",
            "18446744073709551615\n"
        ]),
        any::<u64>().prop_map(|v| format!("{v}\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40),
        Just(vec![b'9'; 5000]),
    ]
}

fn zone_dir() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "intel-rapl:0",
            "intel-rapl:0:1",
            "amd-rapl:1",
            "intel-rapl-mmio:0"
        ])
        .prop_map(String::from),
        "[a-z-]{0,12}(:[0-9]{0,25}){0,3}",
    ]
}

fn write(dir: &Path, name: &str, contents: &[u8]) {
    fs::write(dir.join(name), contents).expect("write a tree file");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn powercap_files(
        entry in zone_dir(),
        name in prop_oneof![mutated(&["package-0\n", "dram\n", "psys\n", "core\n"]), prop::collection::vec(any::<u8>(), 0..24)],
        energy in counter(),
        max in counter(),
        next in counter(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let zone = dir.path().join(&entry);
        prop_assume!(fs::create_dir_all(&zone).is_ok());
        write(&zone, "name", &name);
        write(&zone, "energy_uj", &energy);
        write(&zone, "max_energy_range_uj", &max);
        match RaplSource::open(dir.path()) {
            Ok(source) => {
                let first = source.sample();
                write(&zone, "energy_uj", &next);
                let second = source.sample();
                if let (Ok(a), Ok(b)) = (first, second) {
                    assert!(b.joules_since(&a).is_finite());
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn cgroup_cpu_stat(contents in prop_oneof![
        mutated(&["usage_usec 1000\nuser_usec 900\nsystem_usec 100\n", "123456789\n"]),
        prop::collection::vec(any::<u8>(), 0..64),
    ]) {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "cpu.stat", &contents);
        write(dir.path(), "cpuacct.usage", &contents);
        if let Err(e) = cgroup_cpu_ns(dir.path()) {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn proc_stat(contents in prop_oneof![
        mutated(&["cpu  10 20 30 40 50 60 70 80 0 0\ncpu0 10 20 30 40 50 60 70 80 0 0\n"]),
        prop::collection::vec(any::<u8>(), 0..64),
    ]) {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "stat", &contents);
        if let Err(e) = proc_stat_total_ns(dir.path().join("stat")) {
            assert!(!e.to_string().is_empty());
        }
    }
}

/// The seeds read, so mutations start from a tree the reader takes.
#[test]
fn seed_tree_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = dir.path().join("intel-rapl:0");
    fs::create_dir_all(&zone).unwrap();
    write(&zone, "name", b"package-0\n");
    write(&zone, "energy_uj", b"1000000\n");
    write(&zone, "max_energy_range_uj", b"262143328850\n");
    let source = RaplSource::open(dir.path()).unwrap();
    let a = source.sample().unwrap();
    write(&zone, "energy_uj", b"3000000\n");
    let b = source.sample().unwrap();
    assert!((b.joules_since(&a) - 2.0).abs() < 1e-9);
    write(
        dir.path(),
        "cpu.stat",
        b"usage_usec 1000\nuser_usec 900\nsystem_usec 100\n",
    );
    assert_eq!(cgroup_cpu_ns(dir.path()).unwrap(), 1_000_000);
}
