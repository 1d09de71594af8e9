//! What the node needs of the machine: root, the programs and CNI plugins
//! (each missing piece named with its fix), its cgroup root in every
//! hierarchy, and the open-files limit the kubelet passes to containers.

use std::path::{Path, PathBuf};

use super::{NodeError, error::io, images};
use crate::Binaries;

/// A program from `PATH` or the usual system directories.
pub(super) fn program(name: &str) -> Result<PathBuf, NodeError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| NodeError::Missing {
            what: format!("the program {name}"),
            fix: match name {
                "ip" => "apt-get install iproute2",
                "runc" => "apt-get install runc",
                _ => "apt-get install containerd runc containernetworking-plugins",
            }
            .into(),
        })
}

/// Where Debian's containernetworking-plugins puts the CNI plugins.
pub(super) const CNI_BIN: &str = "/usr/lib/cni";

/// Everything the node needs, each missing piece named with its fix.
pub fn preflight(binaries: &Binaries) -> Result<(), NodeError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(NodeError::Missing {
            what: "root (the kubelet and containerd make mounts, cgroups and network namespaces)".into(),
            fix: "run as root, e.g. sudo -E".into(),
        });
    }
    for name in ["containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip"] {
        program(name)?;
    }
    for plugin in ["bridge", "host-local", "loopback"] {
        if !Path::new(CNI_BIN).join(plugin).is_file() {
            return Err(NodeError::Missing {
                what: format!("the CNI plugin {CNI_BIN}/{plugin}"),
                fix: "apt-get install containernetworking-plugins".into(),
            });
        }
    }
    for name in ["kubelet", "kube-scheduler", "pause"] {
        if !binaries.path(name).is_file() {
            return Err(NodeError::Missing {
                what: format!("{} in {}", name, binaries.dir().display()),
                fix: format!("bash {}", crate::binaries::BUILD_SCRIPT),
            });
        }
    }
    images::preflight(binaries.dir())
}

/// The node's cgroup in every hierarchy (the kubelet requires its
/// `cgroupRoot` to exist); cpusets start with the parent's CPUs and memory nodes.
pub(super) fn make_cgroup_root(name: &str) -> Result<(), NodeError> {
    let root = Path::new("/sys/fs/cgroup");
    let unified = root.join("cgroup.controllers").exists();
    let dirs: Vec<PathBuf> = if unified {
        vec![root.to_path_buf()]
    } else {
        std::fs::read_dir(root)
            .map_err(io("list /sys/fs/cgroup"))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists())
            .collect()
    };
    for parent in dirs {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).map_err(io(format!("create the cgroup {}", dir.display())))?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(parent.join(file)) {
                std::fs::write(dir.join(file), value.trim()).map_err(io(format!("write {}/{file}", dir.display())))?;
            }
        }
    }
    Ok(())
}

pub(super) fn open_files_hard_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok { limit.rlim_max } else { 1_048_576 }
}
