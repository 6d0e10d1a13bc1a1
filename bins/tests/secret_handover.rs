//! The credential hand-over across the agent's re-exec trusts only the sealed memfd the
//! previous image made: a descriptor planted at the number it names is refused.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::libc;

/// The agent started with `FFRTMP_SECRETS_FD` naming descriptor 7, a copy of `fd`.
fn agent_with_handover(fd: &OwnedFd) -> std::process::Output {
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ffrtmp-agent"));
    cmd.arg("--help")
        .env("FFRTMP_SECRETS_FD", "7")
        .env_remove("MASTER_API_KEY");
    // SAFETY: dup2 is async-signal-safe and the descriptor stays open until after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn assert_refused(out: &std::process::Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: the agent went on ({err})");
    assert!(err.contains("is not a credential hand-over"), "{what}: {err}");
}

#[test]
fn a_planted_file_or_pipe_is_not_taken_for_credentials() {
    let planted = b"MASTER_API_KEY\0planted-key\0";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds");
    std::fs::write(&path, planted).unwrap();
    let file = OwnedFd::from(std::fs::File::open(&path).unwrap());
    assert_refused(&agent_with_handover(&file), "a regular file");

    let (read, write) = nix::unistd::pipe().unwrap();
    std::fs::File::from(write).write_all(planted).unwrap();
    assert_refused(&agent_with_handover(&read), "a pipe");
}
