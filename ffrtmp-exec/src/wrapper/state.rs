//! The state file of `ffrtmp watch`: which processes (pid + start time) it attached, under
//! which rule, into which cgroup. Written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves either the old or the new state, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::proc::StartTime;

/// One attached process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    /// Its process id.
    pub pid: i32,
    /// Its start time (`/proc/P/stat` field 22); with `pid` it names the process.
    pub start_time: StartTime,
    /// The rule that matched it.
    pub rule: String,
    /// Its cgroup directories (empty when limits were not enforced).
    pub cgroup: Vec<PathBuf>,
    /// What was enforced.
    pub limits: String,
}

/// Everything `watch` has attached and not yet seen exit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchState {
    /// Format version, 1.
    pub version: u32,
    /// The attached processes.
    pub entries: Vec<StateEntry>,
}

impl WatchState {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> io::Result<WatchState> {
        match fs::read(path) {
            Ok(raw) => serde_json::from_slice(&raw)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(WatchState {
                version: 1,
                entries: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Writes the state to `path` atomically.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        text.push(b'\n');
        write_atomic(path, &text)
    }

    /// Whether the process (pid, start time) is recorded.
    pub fn contains(&self, pid: i32, start_time: StartTime) -> bool {
        self.entries.iter().any(|e| e.pid == pid && e.start_time == start_time)
    }
}

/// Replaces `path` with `data` atomically: writes `.<name>.tmp-<pid>` beside it, fsyncs it,
/// renames it over `path` and fsyncs the directory so the rename itself is durable.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "state path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32) -> StateEntry {
        StateEntry {
            pid,
            start_time: 1000 + pid as u64,
            rule: "ffmpeg".into(),
            cgroup: vec![PathBuf::from("/sys/fs/cgroup/cpu/ffrtmp/edge-watch-1-2")],
            limits: "cgroup v1 cpu=150%".into(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let missing = WatchState::load(&path).unwrap();
        assert!(missing.entries.is_empty());
        let state = WatchState {
            version: 1,
            entries: vec![entry(1), entry(2)],
        };
        state.save(&path).unwrap();
        let back = WatchState::load(&path).unwrap();
        assert_eq!(back, state);
        assert!(back.contains(2, 1002));
        assert!(!back.contains(2, 1003));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new contents").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new contents");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("state.json")]);
        // A failed write (target is a directory) leaves the directory and no temporary file.
        let target = dir.path().join("adir");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), "x").unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        assert!(target.is_dir());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{not json").unwrap();
        assert_eq!(WatchState::load(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
