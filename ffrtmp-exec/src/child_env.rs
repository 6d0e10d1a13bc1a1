//! The environment every child of the engine gets (workloads, encoder probes, `gst-inspect`):
//! an allowlist of this process's variables, never its credentials.
//!
//! Workloads process untrusted media, and a probe's environment is visible to anything that
//! runs as the same user; so a child starts from an empty environment and receives only
//! what tools need to find themselves, their libraries, devices and locale.

use std::ffi::{OsStr, OsString};

use crate::run_as::RunAs;

/// Environment variables that hold credentials: never passed to a child, even where another
/// rule would allow them.
pub const SECRET_ENV: [&str; 2] = ["MASTER_API_KEY", "FFRTMP_API_KEY"];

/// Variables passed through by exact name.
const ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "LIBVA_DRIVER_NAME",
    "LIBVA_DRIVERS_PATH",
    "VDPAU_DRIVER",
];

/// Variables passed through by prefix: locale categories and GStreamer's own settings.
const ALLOWED_PREFIXES: &[&str] = &["LC_", "GST_"];

/// Whether a variable named `name` may reach a child.
///
/// ```
/// use ffrtmp_exec::child_env::is_allowed;
/// assert!(is_allowed("PATH") && is_allowed("LC_ALL") && is_allowed("GST_DEBUG"));
/// assert!(!is_allowed("MASTER_API_KEY") && !is_allowed("AWS_SECRET_ACCESS_KEY"));
/// ```
pub fn is_allowed(name: &str) -> bool {
    !SECRET_ENV.contains(&name) && (ALLOWED.contains(&name) || ALLOWED_PREFIXES.iter().any(|p| name.starts_with(p)))
}

/// The allowlisted variables of this process, with `HOME`, `USER` and `LOGNAME` replaced by
/// those of `run_as` when the child runs as another user.
pub fn child_env(run_as: Option<&RunAs>) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(is_allowed))
        .collect();
    if let Some(user) = run_as {
        vars.retain(|(k, _)| !["HOME", "USER", "LOGNAME"].iter().any(|n| k == OsStr::new(n)));
        vars.push(("HOME".into(), user.home.clone().into_os_string()));
        vars.push(("USER".into(), user.name.clone().into()));
        vars.push(("LOGNAME".into(), user.name.clone().into()));
    }
    vars
}

/// Gives `cmd` the child environment ([`child_env`]) instead of this process's.
pub fn scrub_std(cmd: &mut std::process::Command, run_as: Option<&RunAs>) {
    cmd.env_clear().envs(child_env(run_as));
}

/// [`scrub_std`] for a tokio command.
pub fn scrub(cmd: &mut tokio::process::Command, run_as: Option<&RunAs>) {
    cmd.env_clear().envs(child_env(run_as));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_users_get_their_own_home() {
        let user = RunAs {
            name: "worker".into(),
            uid: 4242,
            gid: 4242,
            home: "/var/lib/worker".into(),
            groups: vec![4242],
        };
        let env = child_env(Some(&user));
        let get = |k: &str| {
            env.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("HOME"), [OsString::from("/var/lib/worker")]);
        assert_eq!(get("USER"), [OsString::from("worker")]);
        assert!(env.iter().all(|(k, _)| is_allowed(k.to_str().unwrap())));
    }
}
