//! `ffrtmp-master --placement`: the policy is chosen by flag or config file, a bad name is
//! refused with a message naming it, and the startup log names the policy in force.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/procs.rs"]
mod procs;
use procs::{log_file, wait_for_file, Proc};

const KEY: &str = "placement-test-key-0123456789abcd";

#[test]
fn the_master_starts_with_the_placement_policy_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ready = d.join("ready");
    let _master = Proc(
        Command::new(env!("CARGO_BIN_EXE_ffrtmp-master"))
            .args([
                "--port",
                "0",
                "--placement",
                "energy-aware",
                "--placement-max-wait",
                "3s",
            ])
            .arg("--db")
            .arg(d.join("master.db"))
            .arg("--ready-file")
            .arg(&ready)
            .env("MASTER_API_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(log_file(d, "master.log"))
            .spawn()
            .unwrap(),
    );
    wait_for_file(&ready, Duration::from_secs(30));
    // The line is written before the master listens, so it is there once ready is.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(d.join("master.log")).unwrap();
        if log
            .lines()
            .any(|l| l.contains("placement policy") && l.contains("energy-aware"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no placement line in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_config_file_chooses_the_policy_and_a_bad_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let check = |toml: &str| {
        std::fs::write(d.join("master.toml"), toml).unwrap();
        Command::new(env!("CARGO_BIN_EXE_ffrtmp-master"))
            .arg("--config")
            .arg(d.join("master.toml"))
            .arg("--db")
            .arg(d.join("master.db"))
            .arg("--check-config")
            .env("MASTER_API_KEY", KEY)
            .output()
            .unwrap()
    };
    let ok = check("placement = \"energy-aware\"\nplacement-max-wait = \"20s\"\nplacement-window = \"6h\"\n");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(said.contains("placement energy-aware"), "{said}");
    let bad = check("placement = \"fastest\"\n");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("unknown placement policy \"fastest\""), "{err}");
}
