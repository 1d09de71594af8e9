# The node's janitor: waits until its parent closes stdin (a normal stop) or
# dies (even by SIGKILL, when the kernel closes the pipe), then removes
# everything the node made: processes, mounts, the bridge, cgroups and files.
# Arguments: the node's directory, its cgroup name, the cluster's etcd data
# directory.
set -u
trap '' PIPE INT TERM HUP
dir=$1 cgroup=$2 etcd=$3
cat >/dev/null

say() { echo "portico node janitor: $*" >&2; }
cgroups() { for d in /sys/fs/cgroup/*/"$cgroup" /sys/fs/cgroup/"$cgroup"; do [ -d "$d" ] && echo "$d"; done; }

# 1. Processes started with the node's directory on their command line
#    (kubelet, containerd and its shims, kube-proxy, CoreDNS), then everything in the node's
#    cgroups (the pods), until none is left.
for round in $(seq 50); do
  found=0
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    args=$(tr '\0' '\n' 2>/dev/null <"$p/cmdline") || continue  # gone meanwhile: quietly
    case "$args" in *"$dir/"*) ;; *) continue ;; esac
    case "$args" in
      *containerd-shim*)  # its socket lives outside the node's directory
        ns=$(echo "$args" | sed -n '/^-namespace$/{n;p}')
        id=$(echo "$args" | sed -n '/^-id$/{n;p}')
        addr=$(echo "$args" | sed -n '/^-address$/{n;p}')
        sock=/run/containerd/s/$(printf %s "$addr/$ns/$id" | sha256sum | cut -d' ' -f1)
        kill -9 "$pid" 2>/dev/null && found=1
        rm -f "$sock" ;;
      *) kill -9 "$pid" 2>/dev/null && found=1 ;;
    esac
  done
  for d in $(cgroups); do
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -9 "$pid" 2>/dev/null && found=1
    done
  done
  [ "$found" = 0 ] && break
  sleep 0.1
done
rmdir /run/containerd/s /run/containerd 2>/dev/null

# 2. Mounts under the node's directory (overlay roots, shm, network
#    namespaces — the pods' and the services namespace —, pod volumes),
#    deepest first.
for round in 1 2 3; do
  mounts=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

# 3. The services namespace's veth (gone with the namespace, unless
#    something still holds it).
veth=$(cat "$dir/services-veth" 2>/dev/null)
[ -n "$veth" ] && [ -e "/sys/class/net/$veth" ] && ip link del "$veth" 2>/dev/null

# 4. The volumes the cluster's host-path provisioner made. Kubernetes puts
#    them at /tmp/hostpath_pv/<uuid>, shared by every cluster on the machine;
#    which are this cluster's is written in its PersistentVolumes, and the
#    etcd data holds those objects (plain protobuf) even after a SIGKILL.
volumes=$(grep -rhoaE '/tmp/hostpath_pv/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$etcd" 2>/dev/null | sort -u)
for v in $volumes; do rm -rf "$v"; done
rmdir /tmp/hostpath_pv 2>/dev/null

# 5. The bridge, the CNI plugins' cache and the kubelet's log links.
bridge=$(cat "$dir/bridge" 2>/dev/null)
[ -n "$bridge" ] && ip link del "$bridge" 2>/dev/null
for sandbox in "$dir"/containerd/io.containerd.grpc.v1.cri/sandboxes/*; do
  rm -f /var/lib/cni/results/*-"${sandbox##*/}"-*
done
for f in /var/log/containers/*; do
  case "$(readlink "$f")" in "$dir/"*) rm -f "$f" ;; esac
done
# The fixed directories kubelets and the CNI plugins share go with the last node.
if [ -z "$(ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 == "kubelet"')" ]; then
  rmdir /var/lib/cni/results /var/lib/cni /var/log/containers 2>/dev/null
fi
# The kubelet's device-plugin socket has a fixed path: removed once nobody listens on it.
sock=/var/lib/kubelet/device-plugins/kubelet.sock
if [ -S "$sock" ] && ! awk '{print $8}' /proc/net/unix | grep -qxF "$sock"; then
  rm -f "$sock"
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
fi

# 5. Cgroups, leaves first.
for round in $(seq 50); do
  left=0
  for d in $(cgroups); do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || left=1; done
  [ -z "$(cgroups)" ] && break
  sleep 0.1
done
[ -n "$(cgroups)" ] && say "cgroups left: $(cgroups)"

# 6. The directory, once nothing is mounted in it.
if awk -v d="$dir/" 'index($5, d) == 1 {found=1} END {exit !found}' /proc/self/mountinfo; then
  say "mounts left under $dir; not deleting it"
  exit 1
fi
rm -rf "$dir"
