//! Tests of the powercap reader on small trees laid out like `/sys/class/powercap`.

use super::*;
use std::fs;

use super::discover::{kind_of, parse_id, Kind};

const MAX: u64 = 262_143_328_850;

fn zone(root: &Path, entry: &str, name: &str, uj: u64) {
    let dir = root.join(entry);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
    fs::write(dir.join("max_energy_range_uj"), format!("{MAX}\n")).unwrap();
}

fn names(source: &RaplSource) -> Vec<&str> {
    source.zones().iter().map(|z| z.name.as_str()).collect()
}

/// Whether this process reads files whatever their mode (root, or CAP_DAC_OVERRIDE).
fn privileged(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("probe");
    fs::write(&probe, "1").unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).unwrap();
    fs::read(&probe).is_ok()
}

#[test]
fn parse_id_accepts_zones_only() {
    assert_eq!(parse_id("intel-rapl:0:2"), Some(("intel-rapl", vec![0, 2])));
    assert_eq!(parse_id("intel-rapl-mmio:0"), Some(("intel-rapl-mmio", vec![0])));
    assert_eq!(parse_id("amd-rapl:1"), Some(("amd-rapl", vec![1])));
    assert_eq!(parse_id("intel-rapl"), None);
    assert_eq!(parse_id("intel-rapl:x"), None);
    assert_eq!(parse_id("dtpm:0"), None);
}

#[test]
fn kinds_follow_zone_names() {
    assert_eq!(kind_of("package-0"), Kind::Package);
    assert_eq!(kind_of("package-1-die-0"), Kind::Package);
    assert_eq!(kind_of("dram"), Kind::Dram);
    assert_eq!(kind_of("psys"), Kind::Psys);
    assert_eq!(kind_of("core"), Kind::Contained);
    assert_eq!(kind_of("uncore"), Kind::Contained);
    assert_eq!(kind_of("gpu"), Kind::Other);
}

#[test]
fn permission_denied_maps_to_needs_root_reason() {
    let err = CounterError::Io {
        path: PathBuf::from("/sys/class/powercap/intel-rapl:0/energy_uj"),
        source: io::Error::from(io::ErrorKind::PermissionDenied),
    };
    assert_eq!(
        err.unavailable(),
        PowerError::Unavailable("needs root or read access to /sys/class/powercap/intel-rapl:0/energy_uj".into())
    );
}

#[test]
fn other_open_errors_are_unavailable_and_later_errors_are_read() {
    let io_err = || CounterError::Io {
        path: PathBuf::from("/x/energy_uj"),
        source: io::Error::from(io::ErrorKind::NotFound),
    };
    assert!(matches!(io_err().unavailable(), PowerError::Unavailable(r) if r.starts_with("cannot read /x/energy_uj")));
    let PowerError::Read(reason) = CounterError::Io {
        path: PathBuf::from("/x/energy_uj"),
        source: io::Error::from(io::ErrorKind::PermissionDenied),
    }
    .read_failed() else {
        panic!("a failure after open is a read error")
    };
    assert!(reason.contains("/x/energy_uj"), "{reason}");
}

#[test]
fn unreadable_energy_uj_is_unavailable_when_not_privileged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 10);
    let file = dir.path().join("intel-rapl:0/energy_uj");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
    if privileged(dir.path()) {
        // Root reads mode-000 files; the mapping is covered by permission_denied_maps_to_needs_root_reason.
        assert!(RaplSource::open(dir.path()).is_ok());
        return;
    }
    let err = RaplSource::open(dir.path()).unwrap_err();
    let want = format!("needs root or read access to {}", file.display());
    assert_eq!(err, PowerError::Unavailable(want));
}

#[test]
fn dram_is_named_after_its_package() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0-die-1", 1);
    zone(dir.path(), "intel-rapl:0:0", "dram", 1);
    zone(dir.path(), "intel-rapl:3", "package-3", 1);
    zone(dir.path(), "intel-rapl:3:1", "dram", 1);
    let rapl = RaplSource::open(dir.path()).unwrap();
    assert_eq!(names(&rapl), ["package-0-die-1", "dram-0-die-1", "package-3", "dram-3"]);
}

#[test]
fn counter_above_range_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 1);
    let rapl = RaplSource::open(dir.path()).unwrap();
    fs::write(dir.path().join("intel-rapl:0/energy_uj"), format!("{}\n", MAX + 1)).unwrap();
    assert!(matches!(rapl.sample(), Err(PowerError::Read(r)) if r.contains("above max_energy_range_uj")));
    fs::write(dir.path().join("intel-rapl:0/energy_uj"), "5\n").unwrap();
    let sample = rapl.sample().unwrap();
    assert_eq!(
        (sample.total_uj(), sample.wraps),
        (4, 0),
        "a failed sample leaves the state alone"
    );
}

#[test]
fn kept_open_counters_follow_in_place_writes_replacements_and_removal() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 1_000);
    let rapl = RaplSource::open(dir.path()).unwrap();
    let file = dir.path().join("intel-rapl:0/energy_uj");

    // Fixed-width, zero-padded, rewritten in place without truncation.
    let writer = fs::OpenOptions::new().write(true).open(&file).unwrap();
    writer.write_all_at(format!("{:020}\n", 3_000).as_bytes(), 0).unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 2_000);
    writer.write_all_at(format!("{:020}\n", 4_500).as_bytes(), 0).unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 3_500);

    // Replaced by a rename: the new file is read, not the old one again, and as another
    // counter it restarts from its reading.
    fs::write(dir.path().join("energy_uj.tmp"), "5000\n").unwrap();
    fs::rename(dir.path().join("energy_uj.tmp"), &file).unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 3_500);
    assert_eq!(rapl.resets(), 1);
    fs::write(&file, "5200\n").unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 3_700);

    // Removed: an error naming the file, not a repeat of the last value (0 W).
    fs::remove_file(&file).unwrap();
    for _ in 0..2 {
        let err = rapl.sample().unwrap_err();
        assert!(
            matches!(&err, PowerError::Read(r) if r.contains("intel-rapl:0/energy_uj") && r.contains("No such file")),
            "{err:?}"
        );
    }
    // Back again (a reloaded driver): the new file's counter starts from its reading.
    fs::write(&file, "6000\n").unwrap();
    let sample = rapl.sample().unwrap();
    assert_eq!((sample.total_uj(), sample.wraps, rapl.resets()), (3_700, 0, 2));
    fs::write(&file, "6100\n").unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 3_800);
}

#[test]
fn a_recreated_counter_reading_lower_is_a_reset_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 900_000);
    let rapl = RaplSource::open(dir.path()).unwrap();
    let file = dir.path().join("intel-rapl:0/energy_uj");
    fs::write(&file, "1000000\n").unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 100_000);

    // The driver is reloaded: the zone comes back with a fresh, lower count and another range.
    fs::remove_file(&file).unwrap();
    fs::write(&file, "5000\n").unwrap();
    fs::write(dir.path().join("intel-rapl:0/max_energy_range_uj"), "10000\n").unwrap();
    let sample = rapl.sample().unwrap();
    assert_eq!(
        (sample.total_uj(), sample.wraps, rapl.resets()),
        (100_000, 0, 1),
        "no energy for the restart, and no wrap"
    );
    fs::write(&file, "9000\n").unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 104_000);
    // The new range applies: 9000 → 10000 wraps to 0 → 500.
    fs::write(&file, "500\n").unwrap();
    let sample = rapl.sample().unwrap();
    assert_eq!((sample.total_uj(), sample.wraps), (105_500, 1));
}

#[test]
fn a_reset_survives_a_failed_sample() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 900_000);
    zone(dir.path(), "intel-rapl:1", "package-1", 0);
    let rapl = RaplSource::open(dir.path()).unwrap();
    let file = dir.path().join("intel-rapl:0/energy_uj");
    fs::remove_file(&file).unwrap();
    fs::write(&file, "5000\n").unwrap();
    // package-0 is reopened, then package-1 fails: the sample is lost, the reset is not.
    fs::write(dir.path().join("intel-rapl:1/energy_uj"), "garbage\n").unwrap();
    assert!(rapl.sample().is_err());
    fs::write(dir.path().join("intel-rapl:1/energy_uj"), "10\n").unwrap();
    let sample = rapl.sample().unwrap();
    assert_eq!((sample.total_uj(), sample.wraps, rapl.resets()), (10, 0, 1));
}

#[test]
fn a_counter_removed_while_standing_still_fails_at_the_next_sample() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 1_000);
    let rapl = RaplSource::open(dir.path()).unwrap();
    for _ in 0..3 {
        assert_eq!(rapl.sample().unwrap().total_uj(), 0, "standing still, still there");
    }
    fs::remove_file(dir.path().join("intel-rapl:0/energy_uj")).unwrap();
    let err = rapl.sample().unwrap_err();
    assert!(
        matches!(&err, PowerError::Read(r) if r.contains("energy_uj")),
        "{err:?}"
    );
}

#[test]
fn an_empty_counter_is_an_error_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 1_000);
    let rapl = RaplSource::open(dir.path()).unwrap();
    fs::write(dir.path().join("intel-rapl:0/energy_uj"), "").unwrap();
    assert!(matches!(rapl.sample(), Err(PowerError::Read(r)) if r.contains("not a counter")));
    fs::write(dir.path().join("intel-rapl:0/energy_uj"), "0000000000001500\n").unwrap();
    assert_eq!(rapl.sample().unwrap().total_uj(), 500);
}

#[test]
fn zero_max_range_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 1);
    fs::write(dir.path().join("intel-rapl:0/max_energy_range_uj"), "0\n").unwrap();
    assert!(matches!(RaplSource::open(dir.path()), Err(PowerError::Unavailable(r)) if r.ends_with("is zero")));
}

#[test]
fn concurrent_samples_stay_monotone_without_false_wraps() {
    let dir = tempfile::tempdir().unwrap();
    zone(dir.path(), "intel-rapl:0", "package-0", 0);
    let rapl = std::sync::Arc::new(RaplSource::open(dir.path()).unwrap());
    let file = dir.path().join("intel-rapl:0/energy_uj");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let rapl = rapl.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..200 {
                    // A half-written file may read as garbage; only good samples count.
                    if let Ok(s) = rapl.sample() {
                        assert!(s.total_uj() >= last);
                        last = s.total_uj();
                    }
                }
            })
        })
        .collect();
    for uj in 1..=200u64 {
        fs::write(&file, format!("{}\n", uj * 1000)).unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
    let end = rapl.sample().unwrap();
    assert_eq!((end.total_uj(), end.wraps), (200_000, 0));
}

#[test]
fn sample_into_overwrites_the_same_zones_in_place_and_rebuilds_others() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    zone(root, "intel-rapl:0", "package-0", 1_000_000);
    zone(root, "intel-rapl:0:0", "dram", 200_000);
    // The wrap below is a full range within microseconds, which the default power limit would
    // count as a reset; this test is about buffers, so it corrects every wrap.
    let rapl = RaplSource::open(root).unwrap().with_max_zone_watts(None);

    // Zones of another source are replaced by this source's.
    let mut reading = EnergySample {
        zones: vec![ZoneEnergy {
            zone: "gpu-0".into(),
            energy_uj: 9,
        }],
        wraps: 7,
    };
    rapl.sample_into(&mut reading).unwrap();
    assert_eq!(reading, rapl.sample().unwrap());
    let names: Vec<&str> = reading.zones.iter().map(|z| z.zone.as_str()).collect();
    assert_eq!(names, ["package-0", "dram-0"]);

    // The same zones again: the values (energy since the source opened) move, the allocations
    // stay.
    fs::write(root.join("intel-rapl:0/energy_uj"), "3000000\n").unwrap();
    fs::write(root.join("intel-rapl:0:0/energy_uj"), "100\n").unwrap(); // a wrap
    let (zones_at, name_at) = (reading.zones.as_ptr(), reading.zones[0].zone.as_ptr());
    rapl.sample_into(&mut reading).unwrap();
    assert_eq!(
        (reading.zones.as_ptr(), reading.zones[0].zone.as_ptr()),
        (zones_at, name_at)
    );
    assert_eq!(reading.zones[0].energy_uj, 2_000_000);
    assert_eq!(reading.zones[1].energy_uj, MAX - 200_000 + 100);
    assert_eq!(reading.wraps, 1);
    assert_eq!(rapl.sample().unwrap(), reading);

    // A failed read leaves the source's state as it was.
    fs::write(root.join("intel-rapl:0/energy_uj"), "not a number\n").unwrap();
    assert!(matches!(rapl.sample_into(&mut reading), Err(PowerError::Read(_))));
    fs::write(root.join("intel-rapl:0/energy_uj"), "3000001\n").unwrap();
    rapl.sample_into(&mut reading).unwrap();
    assert_eq!((reading.zones[0].energy_uj, reading.wraps), (2_000_001, 1));
}
