//! The node's janitor: a script that outlives this process on purpose and,
//! once we stop or die, removes what killing processes leaves behind —
//! shims, pods, mounts, the services namespace and its veth, the volumes the
//! host-path provisioner made, the bridge, cgroups, the node's directory.

use std::path::Path;

use super::error::{NodeError, io};
use crate::process::Janitor;

/// The script (arguments: the node's directory, its cgroup name, the etcd data directory).
const SCRIPT: &str = include_str!("janitor.sh");

/// Starts the janitor for the node in `dir` whose pods live under the
/// cgroup `cgroup`, of the cluster whose etcd keeps its data in `etcd_data`.
pub fn spawn(dir: &Path, cgroup: &str, etcd_data: &Path) -> Result<Janitor, NodeError> {
    Janitor::spawn(SCRIPT, &[dir, Path::new(cgroup), etcd_data]).map_err(io("start the node's janitor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_janitor_reads_where_the_node_records_its_interfaces() {
        assert!(SCRIPT.contains("$dir/bridge"));
        let veth = format!("$dir/{}", super::super::services::VETH_RECORD);
        assert!(
            SCRIPT.contains(&veth),
            "the janitor deletes the services veth named in {veth}"
        );
    }
}
