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
/// keeps reading the old one, which is never the case for kernel counters (a sysfs or cgroup
/// file is not replaced while its zone or group exists; when they go away, reads fail with
/// `ENODEV`). Writers of file-backed trees should rewrite the file in place; callers that must
/// also follow replacements check [`unlinked`](Self::unlinked) and [`reopen`](Self::reopen).
#[derive(Debug)]
pub(crate) struct CounterFile {
    path: PathBuf,
    file: File,
}

impl CounterFile {
    /// Opens `path` for reading.
    pub(crate) fn open(path: PathBuf) -> io::Result<Self> {
        let file = File::open(&path)?;
        Ok(CounterFile { path, file })
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
        Ok(())
    }
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
