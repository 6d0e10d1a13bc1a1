//! Finding where job cgroups go: parsing `/proc/self/mountinfo` and `/proc/self/cgroup`.

use std::path::PathBuf;

/// Parent directories under which job cgroups are created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Legacy hierarchies.
    V1 {
        /// Parent of the job groups in the cpu hierarchy.
        cpu: Option<PathBuf>,
        /// … in the cpuacct hierarchy (may equal `cpu` when co-mounted).
        cpuacct: Option<PathBuf>,
        /// … in the memory hierarchy.
        memory: Option<PathBuf>,
    },
    /// Unified hierarchy.
    V2 {
        /// Parent of the job groups.
        parent: PathBuf,
    },
}

/// Candidate parent directories, best first, from `/proc/self/mountinfo` and
/// `/proc/self/cgroup` text. v1 controllers win when mounted (v2 cannot use them then); on v2
/// the own group comes first, then the root (the own group cannot delegate controllers while
/// it holds processes, the root can).
pub(super) fn plan(mountinfo: &str, self_cgroup: &str) -> Result<Vec<Layout>, String> {
    let mut v1 = std::collections::HashMap::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mount) = (unescape(pre[3]), PathBuf::from(unescape(pre[4])));
        match post[0] {
            "cgroup" => {
                for opt in post[2].split(',') {
                    if matches!(opt, "cpu" | "cpuacct" | "memory") {
                        v1.insert(opt.to_string(), (root.clone(), mount.clone()));
                    }
                }
            }
            "cgroup2" => v2 = Some((root, mount)),
            _ => {}
        }
    }
    let own = |controller: Option<&str>| -> Option<String> {
        self_cgroup.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let hit = match controller {
                Some(c) => ctrls.split(',').any(|x| x == c),
                None => ctrls.is_empty(),
            };
            hit.then(|| path.to_string())
        })
    };
    let under = |(root, mount): &(String, PathBuf), path: Option<String>| -> PathBuf {
        // The mount may show a sub-tree (`root`) of the hierarchy; own paths are absolute.
        let path = path.unwrap_or_else(|| "/".into());
        let rel = path
            .strip_prefix(root.as_str())
            .unwrap_or(&path)
            .trim_start_matches('/');
        let base = if rel.is_empty() { mount.clone() } else { mount.join(rel) };
        base.join("ffrtmp")
    };
    if v1.contains_key("cpu") || v1.contains_key("memory") {
        let dir = |c: &str| v1.get(c).map(|m| under(m, own(Some(c))));
        return Ok(vec![Layout::V1 {
            cpu: dir("cpu"),
            cpuacct: dir("cpuacct"),
            memory: dir("memory"),
        }]);
    }
    if let Some(m) = &v2 {
        let mut candidates = vec![Layout::V2 {
            parent: under(m, own(None)),
        }];
        let root = Layout::V2 { parent: under(m, None) };
        if candidates[0] != root {
            candidates.push(root);
        }
        return Ok(candidates);
    }
    Err("no cgroup v1 cpu/memory hierarchy and no cgroup2 mount".to_string())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const SELF_V1: &str = "4:memory:/process_api/c47b\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn plans_v1_below_the_own_groups() {
        let layout = plan(MOUNTINFO_V1, SELF_V1).unwrap();
        assert_eq!(
            layout,
            vec![Layout::V1 {
                cpu: Some("/sys/fs/cgroup/cpu/ffrtmp".into()),
                cpuacct: Some("/sys/fs/cgroup/cpuacct/ffrtmp".into()),
                memory: Some("/sys/fs/cgroup/memory/process_api/c47b/ffrtmp".into()),
            }]
        );
    }

    #[test]
    fn plans_v2_and_comounted_v1() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let layout = plan(mi, "0::/system.slice/ffrtmp-agent.service\n").unwrap();
        assert_eq!(
            layout,
            vec![
                Layout::V2 {
                    parent: "/sys/fs/cgroup/system.slice/ffrtmp-agent.service/ffrtmp".into()
                },
                Layout::V2 {
                    parent: "/sys/fs/cgroup/ffrtmp".into()
                }
            ]
        );
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  33 31 0:30 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n";
        let layout = plan(mi, "3:cpu,cpuacct:/\n2:memory:/docker/abc/x\n").unwrap();
        assert_eq!(
            layout,
            vec![Layout::V1 {
                cpu: Some("/sys/fs/cgroup/cpu,cpuacct/ffrtmp".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct/ffrtmp".into()),
                memory: Some("/sys/fs/cgroup/mem ory/x/ffrtmp".into()),
            }]
        );
        assert!(plan("1 2 0:1 / /proc rw - proc proc rw\n", "0::/\n").is_err());
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain\\"), "/plain\\");
    }
}
