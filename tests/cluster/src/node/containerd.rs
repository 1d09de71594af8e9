//! containerd for the node (config is pure): its own root, state, sockets
//! and CNI configuration under the node's directory, cgroupfs, the local
//! pause image as the sandbox, and `restrict_oom_score_adj` because root on
//! these machines lacks CAP_SYS_RESOURCE (a negative `oom_score_adj` is
//! refused, and every sandbox would fail to start).

use std::path::Path;

/// Paths containerd is configured with.
pub struct Paths<'a> {
    /// Persistent data (content, snapshots).
    pub root: &'a Path,
    /// Runtime state (task bundles, network namespaces).
    pub state: &'a Path,
    /// The gRPC socket (the CRI endpoint); the ttrpc socket sits beside it.
    pub socket: &'a Path,
    /// The CNI configuration directory.
    pub cni_conf: &'a Path,
    /// The directory of the CNI plugin binaries.
    pub cni_bin: &'a Path,
    /// The runc binary.
    pub runc: &'a Path,
}

/// containerd's configuration file (version 2).
pub fn config(p: &Paths<'_>, sandbox_image: &str) -> String {
    let s = |p: &Path| toml_string(&p.to_string_lossy());
    format!(
        r#"version = 2
root = {root}
state = {state}
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = {runc}
        Root = {runc_root}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
    max_conf_num = 1
"#,
        root = s(p.root),
        state = s(p.state),
        socket = s(p.socket),
        ttrpc = toml_string(&format!("{}.ttrpc", p.socket.display())),
        opt = s(&p.root.join("opt")),
        sandbox = toml_string(sandbox_image),
        runc = s(p.runc),
        runc_root = s(&p.state.join("runc")),
        cni_bin = s(p.cni_bin),
        cni_conf = s(p.cni_conf),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxes_keep_the_oom_score_and_use_the_local_pause_image() {
        let d = Path::new("/tmp/n");
        let text = config(
            &Paths {
                root: &d.join("root"),
                state: &d.join("state"),
                socket: &d.join("containerd.sock"),
                cni_conf: &d.join("cni"),
                cni_bin: Path::new("/usr/lib/cni"),
                runc: Path::new("/usr/sbin/runc"),
            },
            "portico.local/pause:1",
        );
        for line in [
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            "SystemdCgroup = false",
            r#"sandbox_image = "portico.local/pause:1""#,
            r#"address = "/tmp/n/containerd.sock""#,
            r#"address = "/tmp/n/containerd.sock.ttrpc""#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
