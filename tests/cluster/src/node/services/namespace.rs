//! The services namespace: a network namespace of the node's own, bound to
//! a file under the node's directory, joined to the node's bridge by a veth
//! (`portico-sv-X` on the bridge, `eth0` inside at the bridge's `.254`).
//! Inside it, and only there, `ip_forward` is 1 and ICMP redirects are off
//! (a ClusterIP packet leaves by the interface it came in on). The
//! janitor unmounts the file and deletes the veth, whatever ends the node.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
};

use super::super::{
    error::{NodeError, io, run},
    network::Bridge,
};

/// Where the janitor finds the veth's name (on the host side).
pub const VETH_RECORD: &str = "services-veth";

/// Sysctls set inside the namespace (pure data): forwarding on, redirects
/// off. The host's own values are never touched.
pub const SYSCTLS: [(&str, &str); 3] = [
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv4/conf/all/send_redirects", "0"),
    ("net/ipv4/conf/eth0/send_redirects", "0"),
];

/// A services namespace this node created and owns.
#[derive(Clone, Debug)]
pub struct Namespace {
    /// The bind-mounted namespace file (`nsenter --net=` takes it).
    pub path: PathBuf,
    /// The host side of the veth, a port of the bridge.
    pub veth: String,
    /// The namespace's address on the bridge.
    pub address: Ipv4Addr,
}

/// The host side of the veth for `bridge` (pure): `portico-br-X` → `portico-sv-X`.
pub fn veth_name(bridge: &Bridge) -> String {
    bridge.name.replacen("portico-br-", "portico-sv-", 1)
}

/// The programs the namespace needs (util-linux's `unshare` and `nsenter`, iproute2's `ip`).
pub struct Tools {
    /// `unshare`.
    pub unshare: PathBuf,
    /// `nsenter`.
    pub nsenter: PathBuf,
    /// `ip`.
    pub ip: PathBuf,
}

impl Namespace {
    /// Creates the namespace file `dir/services.netns`, joins it to
    /// `bridge` and configures it. The veth's name is recorded first, so
    /// the janitor removes it even if a later step fails.
    pub fn create(dir: &Path, bridge: &Bridge, tools: &Tools) -> Result<Namespace, NodeError> {
        let path = dir.join("services.netns");
        std::fs::write(&path, "").map_err(io(format!("create {}", path.display())))?;
        run(Command::new(&tools.unshare)
            .arg(format!("--net={}", path.display()))
            .arg("true"))?;
        let ns = Namespace {
            path,
            veth: veth_name(bridge),
            address: bridge.services_ip(),
        };
        let record = dir.join(VETH_RECORD);
        std::fs::write(&record, &ns.veth).map_err(io(format!("write {}", record.display())))?;
        // iproute2 takes a path (anything with a '/') as a namespace.
        run(Command::new(&tools.ip)
            .args(["link", "add", &ns.veth, "type", "veth", "peer", "name", "eth0", "netns"])
            .arg(&ns.path))?;
        run(Command::new(&tools.ip).args(["link", "set", "dev", &ns.veth, "master", &bridge.name, "up"]))?;
        let inside = |args: &[&str]| {
            let mut cmd = ns.command(&tools.nsenter, &tools.ip);
            cmd.args(args);
            run(&mut cmd)
        };
        inside(&["link", "set", "dev", "lo", "up"])?;
        inside(&[
            "addr",
            "add",
            &format!("{}/{}", ns.address, bridge.subnet.prefix_len()),
            "dev",
            "eth0",
        ])?;
        inside(&["link", "set", "dev", "eth0", "up"])?;
        for (key, value) in SYSCTLS {
            // /proc/sys/net shows the namespace of the process that opens it.
            let mut cmd = ns.command(&tools.nsenter, Path::new("/bin/sh"));
            cmd.args(["-c", &format!("echo {value} > /proc/sys/{key}")]);
            run(&mut cmd)?;
        }
        Ok(ns)
    }

    /// `program` run inside the namespace (through `nsenter`, which then
    /// execs it: the process is `program` itself).
    pub fn command(&self, nsenter: &Path, program: &Path) -> Command {
        let mut cmd = Command::new(nsenter);
        cmd.args(self.wrap(program, &[]));
        cmd
    }

    /// The arguments that start `program args…` inside the namespace through `nsenter`.
    pub fn wrap(&self, program: &Path, args: &[String]) -> Vec<String> {
        let mut all = vec![
            format!("--net={}", self.path.display()),
            "--".to_string(),
            program.display().to_string(),
        ];
        all.extend(args.iter().cloned());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_veth_is_named_after_the_bridge_and_forwarding_is_set_inside_only() {
        let bridge = Bridge {
            name: "portico-br-17".into(),
            subnet: "10.201.17.0/24".parse().unwrap(),
        };
        assert_eq!(veth_name(&bridge), "portico-sv-17");
        assert!(veth_name(&bridge).len() <= 15, "an interface name has at most 15 bytes");
        let ns = Namespace {
            path: "/n/services.netns".into(),
            veth: veth_name(&bridge),
            address: bridge.services_ip(),
        };
        assert_eq!(
            ns.wrap(Path::new("/bin/kube-proxy"), &["--v=1".into()]),
            ["--net=/n/services.netns", "--", "/bin/kube-proxy", "--v=1"]
        );
        assert!(SYSCTLS.contains(&("net/ipv4/ip_forward", "1")));
    }
}
