//! Reading the few bytes of a counter file with as few system calls as possible.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Largest file [`read_small`] reads: sysfs attributes and cgroup `cpu.stat` files are far smaller.
pub(crate) const SMALL_FILE_MAX: usize = 4096;

/// Reads a small text file into `buf` with one `open` and, usually, one `read`.
///
/// `fs::read_to_string` also asks for the file's size and reads again to see the end; counter
/// files (sysfs, cgroup, procfs) hand over their whole content, ending in a newline, in one read,
/// so a short read ending in `\n` is taken as the end. Otherwise it reads on until the end.
pub(crate) fn read_small<'a>(path: &Path, buf: &'a mut [u8; SMALL_FILE_MAX]) -> io::Result<&'a str> {
    let mut file = File::open(path)?;
    let mut len = 0;
    loop {
        let n = match file.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        let ends_line = len > 0 && buf[len - 1] == b'\n';
        if n == 0 || (ends_line && len < SMALL_FILE_MAX) {
            break;
        }
        if len == SMALL_FILE_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is larger than {SMALL_FILE_MAX} bytes", path.display()),
            ));
        }
    }
    std::str::from_utf8(&buf[..len]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_files_with_or_without_a_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = [0u8; SMALL_FILE_MAX];
        let path = dir.path().join("f");
        for text in ["123\n", "123", "", "a\nb\nc\n"] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_small(&path, &mut buf).unwrap(), text);
        }
        std::fs::write(&path, "x".repeat(SMALL_FILE_MAX)).unwrap();
        assert_eq!(
            read_small(&path, &mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        std::fs::write(&path, [0xff, b'\n']).unwrap();
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
}
