//! Job groups left by a dead agent are removed at the next start; live and edge groups stay.

use std::time::Duration;

use ffrtmp_core::ResourceLimits;
use ffrtmp_exec::Cgroups;

#[test]
fn stale_job_groups_are_removed_and_live_or_edge_groups_stay() {
    let cgroups = Cgroups::detect();
    if let Some(reason) = cgroups.unavailable_reason() {
        eprintln!("skipped: no job cgroups ({reason})");
        return;
    }
    let pid = std::process::id();
    // A dead agent's group: created, never removed (forget skips the cleanup on drop).
    let stale = cgroups
        .create(&format!("stale-test-{pid}"), &ResourceLimits::default())
        .unwrap();
    let stale_dirs = stale.paths().to_vec();
    std::mem::forget(stale);
    // A group with a live process in it.
    let live = cgroups
        .create(&format!("live-test-{pid}"), &ResourceLimits::default())
        .unwrap();
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    for dir in live.paths() {
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
    }
    // An edge wrapper's group, owned by `watch` and operators.
    let edge_dirs: Vec<_> = stale_dirs
        .iter()
        .map(|d| d.with_file_name(format!("edge-run-test-{pid}")))
        .collect();
    for d in &edge_dirs {
        std::fs::create_dir_all(d).unwrap();
    }

    let removed = cgroups.remove_stale(Duration::ZERO);
    assert!(removed >= stale_dirs.len(), "removed {removed}");
    for d in &stale_dirs {
        assert!(!d.exists(), "{} is still there", d.display());
    }
    for d in live.paths() {
        assert!(d.exists(), "the live group {} was removed", d.display());
    }
    for d in &edge_dirs {
        assert!(d.exists(), "the edge group {} was removed", d.display());
        std::fs::remove_dir(d).unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(live.remove()).unwrap();
}
