//! Scratch-disk checks before a job writes output.

use std::path::Path;

use crate::error::ExecError;

/// At or above this share of used space, jobs are refused.
pub const REFUSE_PERCENT: f64 = 95.0;

/// Space on the file system holding a path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiskUsage {
    /// Size of the file system in bytes.
    pub total_bytes: u64,
    /// Bytes available to unprivileged users.
    pub avail_bytes: u64,
    /// Percent used, as `df` computes it (reserved blocks count as unavailable).
    pub used_percent: f64,
}

impl DiskUsage {
    /// Measures the file system holding `path`.
    ///
    /// ```
    /// let u = ffrtmp_exec::DiskUsage::of(std::path::Path::new("/")).unwrap();
    /// assert!(u.total_bytes > 0 && (0.0..=100.0).contains(&u.used_percent));
    /// ```
    pub fn of(path: &Path) -> Result<DiskUsage, ExecError> {
        let st = nix::sys::statvfs::statvfs(path)
            .map_err(|e| ExecError::io(format!("statvfs {}", path.display()), e.into()))?;
        let frag = st.fragment_size() as u64;
        let blocks = st.blocks() as u64;
        let free = st.blocks_free() as u64;
        let avail = st.blocks_available() as u64;
        let used = blocks.saturating_sub(free);
        let usable = used + avail;
        let used_percent = if usable == 0 {
            0.0
        } else {
            used as f64 * 100.0 / usable as f64
        };
        Ok(DiskUsage {
            total_bytes: blocks * frag,
            avail_bytes: avail * frag,
            used_percent,
        })
    }

    /// Refuses (`node_unavailable`) at ≥ [`REFUSE_PERCENT`] used, or with less than `need_mb`
    /// MiB available.
    pub fn check(&self, need_mb: Option<u64>) -> Result<(), ExecError> {
        if self.used_percent >= REFUSE_PERCENT {
            return Err(ExecError::NodeUnavailable(format!(
                "scratch disk {:.1}% full (refusing at {REFUSE_PERCENT}%)",
                self.used_percent
            )));
        }
        if let Some(mb) = need_mb {
            let need = mb.saturating_mul(1024 * 1024);
            if self.avail_bytes < need {
                return Err(ExecError::NodeUnavailable(format!(
                    "scratch disk has {} MiB free, job needs {mb} MiB",
                    self.avail_bytes / (1024 * 1024)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_thresholds() {
        let u = DiskUsage {
            total_bytes: 100 << 20,
            avail_bytes: 10 << 20,
            used_percent: 90.0,
        };
        assert!(u.check(None).is_ok());
        assert!(u.check(Some(10)).is_ok());
        let e = u.check(Some(11)).unwrap_err();
        assert_eq!(e.kind(), ffrtmp_core::ErrorKind::NodeUnavailable);
        let full = DiskUsage {
            used_percent: 95.0,
            ..u
        };
        assert!(full.check(None).is_err());
    }
}
