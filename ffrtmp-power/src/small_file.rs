//! Reading the few bytes of a counter file with as few system calls as possible.
//!
//! The sampler reads the same handful of counters ten times a second for as long as the agent
//! runs, so [`CounterFile`] keeps each one open and re-reads it with `pread` at offset 0: one
//! system call per reading instead of `open`, `read` and `close`. sysfs, cgroup and procfs files
//! (kernfs and `seq_file`) regenerate their content on a read at offset 0, and an ordinary file
//! rewritten in place shows its new bytes through the open descriptor. [`read_small`] reads a
//! file once, through the same read loop.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Largest file [`read_small`] reads: sysfs attributes and cgroup `cpu.stat` files are far smaller.
pub(crate) const SMALL_FILE_MAX: usize = 4096;

/// Reads a small text file into `buf` with one `open` and, usually, one `read`.
pub(crate) fn read_small<'a>(path: &Path, buf: &'a mut [u8; SMALL_FILE_MAX]) -> io::Result<&'a str> {
    let file = File::open(path)?;
    read_whole(&file, path, buf)
}

/// A counter file kept open and read from offset 0 each time.
///
/// The descriptor follows the file it opened: a file *replaced* by another (rename over it)
/// keeps reading the old one, and a kernel file whose zone or group went away fails with
/// `ENODEV`. [`read_value`](Self::read_value) follows both by opening the path again.
#[derive(Debug)]
pub(crate) struct CounterFile {
    path: PathBuf,
    file: File,
    /// The file is a sysfs or cgroup (kernfs) file: once removed it fails to read with `ENODEV`,
    /// while its link count stays 1, so there is no name to check.
    kernfs: bool,
}

impl CounterFile {
    /// Opens `path` for reading.
    pub(crate) fn open(path: PathBuf) -> io::Result<Self> {
        let file = File::open(&path)?;
        let kernfs = is_kernfs(&file);
        Ok(CounterFile { path, file, kernfs })
    }

    /// The path the file was opened from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The whole content, read into `buf`; a file that fills `buf` is refused as too large.
    pub(crate) fn read<'a>(&self, buf: &'a mut [u8]) -> io::Result<&'a str> {
        read_whole(&self.file, &self.path, buf)
    }

    /// Whether the open file no longer has a name (removed, or replaced by a rename), so that
    /// reading it again would repeat its last content forever. A failed `fstat` counts as yes.
    pub(crate) fn unlinked(&self) -> bool {
        self.file.metadata().map_or(true, |m| m.nlink() == 0)
    }

    /// Opens the path again, for a file that was replaced or whose descriptor went stale.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        self.file = File::open(&self.path)?;
        self.kernfs = is_kernfs(&self.file);
        Ok(())
    }

    /// Reads the file into `buf` and parses it with `parse`, following a file that was removed or
    /// replaced: the path is opened again and read once more when the read fails (a stale
    /// descriptor), or when the value equals `last` (it stands still) or does not parse and the
    /// open file has lost its name. A removed file then gives an error rather than its last value
    /// forever, and a replaced one is read instead of the old one.
    ///
    /// Live kernel counters move between readings, so the `fstat` behind the name check is only
    /// paid by a counter that stands still, and never by a sysfs or cgroup file, whose removal
    /// shows as a failed read; `last` is `None` when there is nothing to compare yet.
    pub(crate) fn read_value<T: PartialEq>(
        &mut self,
        buf: &mut [u8],
        last: Option<&T>,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Reading<T>, ReadError> {
        let first = self.parse_once(buf, &parse);
        let reopen = match &first {
            Ok(value) => last == Some(value) && !self.kernfs && self.unlinked(),
            // ENODEV once a zone's driver is reloaded or a cgroup removed.
            Err(ReadError::Io(_)) => true,
            Err(ReadError::Parse(_)) => self.unlinked(),
        };
        if !reopen {
            return first.map(|value| Reading { value, reopened: false });
        }
        self.reopen().map_err(ReadError::Io)?;
        self.parse_once(buf, &parse)
            .map(|value| Reading { value, reopened: true })
    }

    fn parse_once<T>(&self, buf: &mut [u8], parse: impl Fn(&str) -> Option<T>) -> Result<T, ReadError> {
        let text = self.read(buf).map_err(ReadError::Io)?;
        parse(text).ok_or_else(|| ReadError::Parse(text.trim().to_string()))
    }
}

/// A value read by [`CounterFile::read_value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reading<T> {
    /// The parsed value.
    pub(crate) value: T,
    /// The value comes from the path opened again (the old file was removed or replaced, or its
    /// descriptor went stale): it may count from another origin than the values before it.
    pub(crate) reopened: bool,
}

/// Why [`CounterFile::read_value`] has no value.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file could not be read, or could not be opened again.
    Io(io::Error),
    /// The content, trimmed, is not what the parser takes.
    Parse(String),
}

/// Whether `file` lives on sysfs or a cgroup (v1 or v2) file system, all kernfs.
fn is_kernfs(file: &File) -> bool {
    use nix::sys::statfs::{fstatfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, SYSFS_MAGIC};
    fstatfs(file).is_ok_and(|fs| [SYSFS_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC].contains(&fs.filesystem_type()))
}

/// Reads `file` from offset 0 until its end into `buf`.
///
/// Counter files hand over their whole content, ending in a newline, in one read, so a short
/// read ending in `\n` is taken as the end (saving the read that would return 0). A file that
/// fills `buf` is refused rather than cut.
fn read_whole<'a>(file: &File, path: &Path, buf: &'a mut [u8]) -> io::Result<&'a str> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is larger than {} bytes", path.display(), buf.len()),
            ));
        }
        let n = match file.read_at(&mut buf[len..], len as u64) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        if n == 0 || (buf[len - 1] == b'\n' && len < buf.len()) {
            break;
        }
    }
    std::str::from_utf8(&buf[..len]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reads_whole_files_with_or_without_a_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = [0u8; SMALL_FILE_MAX];
        let path = dir.path().join("f");
        for text in ["123\n", "123", "", "a\nb\nc\n"] {
            fs::write(&path, text).unwrap();
            assert_eq!(read_small(&path, &mut buf).unwrap(), text);
        }
        fs::write(&path, "x".repeat(SMALL_FILE_MAX)).unwrap();
        assert_eq!(
            read_small(&path, &mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::write(&path, [0xff, b'\n']).unwrap();
        assert_eq!(
            read_small(&path, &mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            read_small(&missing, &mut buf).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_kept_open_file_sees_in_place_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("energy_uj");
        fs::write(&path, "0000000001\n").unwrap();
        let counter = CounterFile::open(path.clone()).unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(counter.read(&mut buf).unwrap(), "0000000001\n");
        // In place without truncation, as a fixed-width writer does.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(b"0000000002\n", 0)
            .unwrap();
        assert_eq!(counter.read(&mut buf).unwrap(), "0000000002\n");
        // In place with truncation (`fs::write`): shorter content is not mixed with the old.
        fs::write(&path, "7\n").unwrap();
        assert_eq!(counter.read(&mut buf).unwrap(), "7\n");
        assert!(!counter.unlinked());
    }

    #[test]
    fn a_replaced_or_removed_file_is_noticed_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("energy_uj");
        fs::write(&path, "1\n").unwrap();
        let mut counter = CounterFile::open(path.clone()).unwrap();
        let mut buf = [0u8; 32];

        let tmp = dir.path().join("energy_uj.tmp");
        fs::write(&tmp, "2\n").unwrap();
        fs::rename(&tmp, &path).unwrap();
        // The descriptor still reads the old file, and says it has no name any more.
        assert_eq!(counter.read(&mut buf).unwrap(), "1\n");
        assert!(counter.unlinked());
        counter.reopen().unwrap();
        assert!(!counter.unlinked());
        assert_eq!(counter.read(&mut buf).unwrap(), "2\n");

        fs::remove_file(&path).unwrap();
        assert!(counter.unlinked());
        let err = counter.reopen().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(counter.path(), path);
    }

    fn parse_u64(text: &str) -> Option<u64> {
        text.trim().parse().ok()
    }

    #[test]
    fn read_value_follows_a_replaced_file_and_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("energy_uj");
        fs::write(&path, "10\n").unwrap();
        let mut counter = CounterFile::open(path.clone()).unwrap();
        let mut buf = [0u8; 32];
        let read = |c: &mut CounterFile, buf: &mut [u8], last: u64| c.read_value(buf, Some(&last), parse_u64).unwrap();
        assert_eq!(
            read(&mut counter, &mut buf, 0),
            Reading {
                value: 10,
                reopened: false
            }
        );
        assert_eq!(
            read(&mut counter, &mut buf, 10),
            Reading {
                value: 10,
                reopened: false
            }
        );

        // The old file still reads 10, the value seen last: its lost name is noticed at once.
        let tmp = dir.path().join("energy_uj.tmp");
        fs::write(&tmp, "3\n").unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert_eq!(
            read(&mut counter, &mut buf, 10),
            Reading {
                value: 3,
                reopened: true
            }
        );
        assert_eq!(
            read(&mut counter, &mut buf, 3),
            Reading {
                value: 3,
                reopened: false
            }
        );

        // A replacement that does not parse is followed too, and reported as a parse error.
        fs::write(&tmp, "x\n").unwrap();
        fs::rename(&tmp, &path).unwrap();
        let err = counter.read_value(&mut buf, Some(&3), parse_u64).unwrap_err();
        assert!(matches!(&err, ReadError::Parse(text) if text == "x"), "{err:?}");
    }

    #[test]
    fn read_value_notices_a_removed_file_on_the_first_still_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.stat");
        fs::write(&path, "5\n").unwrap();
        let mut counter = CounterFile::open(path.clone()).unwrap();
        let mut buf = [0u8; 32];
        fs::remove_file(&path).unwrap();
        // With nothing to compare with, the open file is trusted.
        assert_eq!(counter.read_value(&mut buf, None, parse_u64).unwrap().value, 5);
        let err = counter.read_value(&mut buf, Some(&5), parse_u64).unwrap_err();
        assert!(
            matches!(&err, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        // Back again: read from the new file, which is said to be a new one.
        fs::write(&path, "2\n").unwrap();
        let reading = counter.read_value(&mut buf, Some(&5), parse_u64).unwrap();
        assert_eq!(
            reading,
            Reading {
                value: 2,
                reopened: true
            }
        );
    }

    /// A cgroup directory created for a test, removed when dropped (also when the test fails).
    struct TestGroup(PathBuf);

    impl TestGroup {
        fn create(mount: &Path, name: &str) -> io::Result<TestGroup> {
            let dir = mount.join(format!("ffrtmp-{name}-{}", std::process::id()));
            // Left over by a killed run with the same pid: an empty group can go.
            let _ = fs::remove_dir(&dir);
            fs::create_dir(&dir)?;
            Ok(TestGroup(dir))
        }
    }

    impl Drop for TestGroup {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
        }
    }

    /// Every cgroup file system (v2, and v1 with cpuacct) this process can create groups in:
    /// (mount point, CPU counter file).
    fn writable_cgroups() -> Vec<(PathBuf, &'static str)> {
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        mounts
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (dir, kind, options) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
                let counter = match *kind {
                    "cgroup2" => "cpu.stat",
                    "cgroup" if options.split(',').any(|o| o == "cpuacct") => "cpuacct.usage",
                    _ => return None,
                };
                let probe = TestGroup::create(Path::new(dir), "kernfs-probe").ok()?;
                probe.0.join(counter).exists().then(|| (PathBuf::from(dir), counter))
            })
            .collect()
    }

    #[test]
    fn kernel_files_are_told_from_ordinary_ones() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("energy_uj"), "1\n").unwrap();
        assert!(!CounterFile::open(dir.path().join("energy_uj")).unwrap().kernfs);
        let sysfs = Path::new("/sys/devices/system/cpu/online");
        if sysfs.exists() {
            assert!(CounterFile::open(sysfs.to_path_buf()).unwrap().kernfs);
        }
    }

    /// On a real cgroup, a counter standing still is trusted without a name check, and the
    /// group's removal shows at the next reading all the same.
    #[test]
    fn a_removed_cgroup_counter_fails_at_the_next_reading() {
        let cgroups = writable_cgroups();
        if cgroups.is_empty() {
            eprintln!("no writable cgroup file system here: the kernfs removal path is not exercised");
        }
        let parse = |text: &str| {
            let text = text.trim();
            text.strip_prefix("usage_usec ")
                .map_or(text, |rest| rest.lines().next().unwrap_or(""))
                .parse::<u64>()
                .ok()
        };
        for (mount, counter) in cgroups {
            let group = TestGroup::create(&mount, "kernfs-test").unwrap();
            let mut file = CounterFile::open(group.0.join(counter)).unwrap();
            assert!(file.kernfs, "{}", mount.display());
            let mut buf = [0u8; SMALL_FILE_MAX];
            let first = file.read_value(&mut buf, None, parse).unwrap();
            // No process ever ran in the group: its counter stands still.
            let again = file.read_value(&mut buf, Some(&first.value), parse).unwrap();
            assert_eq!(
                again,
                Reading {
                    value: first.value,
                    reopened: false
                },
                "{}",
                mount.display()
            );
            fs::remove_dir(&group.0).unwrap();
            let err = file.read_value(&mut buf, Some(&first.value), parse).unwrap_err();
            assert!(
                matches!(&err, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound),
                "{}: {err:?}",
                mount.display()
            );
        }
    }

    #[test]
    fn a_counter_larger_than_the_buffer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "123456789\n").unwrap();
        let counter = CounterFile::open(path).unwrap();
        let err = counter.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("larger than 8 bytes"), "{err}");
        assert_eq!(counter.read(&mut [0u8; 11]).unwrap(), "123456789\n");
    }
}
