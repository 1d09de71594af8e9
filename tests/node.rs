//! The real node: a pod from the local toolbox image runs, its log and exec
//! go through the kubelet (which checks the API server's client
//! certificate), it reaches the API server at the bridge address and a
//! Service's ClusterIP and name, it writes to a volume the cluster
//! provisioned for its claim, and nothing of the node — processes, mounts,
//! network namespaces (the services namespace too), the bridge and the veth,
//! cgroups, volumes, files — is left once it stops, however the test process
//! ends; the host's own network (forwarding, routes, iptables) is as it was.

mod common;

use std::{path::Path, process::Command, time::Duration};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Service, ServiceAccount};
use kube::{
    Api,
    api::PostParams,
    runtime::wait::{await_condition, conditions},
};
use portico::controlplane::{
    ControlPlane,
    node::images::{TOOLBOX_IMAGE, WEBAPP_IMAGE},
};

/// What a node leaves behind if its teardown fails: where to look.
struct Traces {
    dir: String,
    cgroup: String,
    bridge: String,
    /// The services namespace's veth on the bridge.
    veth: String,
    /// Pod sandbox ids: the CNI plugins cache results under them.
    sandboxes: Vec<String>,
    /// The host's network before the node started.
    host: HostNetwork,
    /// Directories of the volumes the host-path provisioner made.
    volumes: Vec<String>,
}

impl Traces {
    fn of(cp: &ControlPlane, host: HostNetwork) -> Traces {
        let node = cp.node().expect("a node");
        Traces {
            dir: node.dir().display().to_string(),
            cgroup: node.cgroup().to_string(),
            bridge: node.bridge().name.clone(),
            veth: node
                .services()
                .expect("kube-proxy and CoreDNS run")
                .namespace()
                .veth
                .clone(),
            sandboxes: std::fs::read_dir(node.dir().join("containerd/io.containerd.grpc.v1.cri/sandboxes"))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default(),
            host,
            volumes: volume_paths(cp),
        }
    }

    /// Everything of the node still present, one line each.
    fn left(&self) -> Vec<String> {
        let mut left = Vec::new();
        let prefix = format!("{}/", self.dir);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4)
                && (point.starts_with(&prefix) || point == self.dir)
            {
                left.push(format!("mount {point}"));
            }
        }
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&prefix) {
                left.push(format!(
                    "process {:?}: {}",
                    entry.file_name(),
                    String::from_utf8_lossy(&cmdline)
                ));
            }
        }
        for interface in [&self.bridge, &self.veth] {
            if Path::new("/sys/class/net").join(interface).exists() {
                left.push(format!("interface {interface}"));
            }
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            if hierarchy.path().join(&self.cgroup).exists() {
                left.push(format!("cgroup {}", hierarchy.path().join(&self.cgroup).display()));
            }
        }
        // Fixed paths of the kubelet and runc, outside the node's directory.
        let sock = "/var/lib/kubelet/device-plugins/kubelet.sock";
        let listening = std::fs::read_to_string("/proc/net/unix").unwrap().contains(sock);
        if Path::new(sock).exists() && !listening {
            left.push(format!("stale socket {sock}"));
        }
        if std::fs::read_dir("/run/containerd/runc/k8s.io").is_ok_and(|mut d| d.next().is_some()) {
            left.push("runc state in /run/containerd/runc/k8s.io".into());
        }
        for result in std::fs::read_dir("/var/lib/cni/results")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = result.file_name().to_string_lossy().into_owned();
            if self.sandboxes.iter().any(|id| name.contains(id.as_str())) {
                left.push(format!("CNI result /var/lib/cni/results/{name}"));
            }
        }
        if Path::new(&self.dir).exists() {
            left.push(format!("directory {}", self.dir));
        }
        let host = HostNetwork::now();
        if host != self.host {
            left.push(format!("host network changed: before {:?}, now {host:?}", self.host));
        }
        for v in &self.volumes {
            if Path::new(v).exists() {
                left.push(format!("volume {v}"));
            }
        }
        left
    }

    /// Waits (bounded) until nothing is left: the janitor of a killed
    /// process works after it is gone.
    fn assert_none_left(&self, after: &str) {
        let mut left = self.left();
        for _ in 0..600 {
            if left.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
            left = self.left();
        }
        panic!("the node left, after {after}:\n{}", left.join("\n"));
    }
}

/// What the services would change on the host's own network if they were
/// not confined to their namespace: forwarding, a route for the service
/// range, kube-proxy's iptables chains.
#[derive(Debug, PartialEq)]
struct HostNetwork {
    ip_forward: String,
    service_routes: Vec<String>,
    kube_rules: Vec<String>,
}

impl HostNetwork {
    fn now() -> HostNetwork {
        let routes = Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .unwrap();
        let service_range = portico::controlplane::SERVICE_CIDR;
        let mut kube_rules = Vec::new();
        for table in ["nat", "filter"] {
            let rules = Command::new("iptables-save").args(["-t", table]).output().unwrap();
            assert!(rules.status.success(), "iptables-save: {rules:?}");
            kube_rules.extend(
                String::from_utf8_lossy(&rules.stdout)
                    .lines()
                    .filter(|l| l.contains("KUBE-"))
                    .map(|l| format!("{table}: {l}")),
            );
        }
        HostNetwork {
            ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            service_routes: String::from_utf8_lossy(&routes.stdout)
                .lines()
                .filter(|r| r.starts_with(service_range))
                .map(str::to_string)
                .collect(),
            kube_rules,
        }
    }
}

fn toolbox_pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "shell",
                "image": TOOLBOX_IMAGE,
                "command": ["/bin/sh", "-c", "echo hello from the toolbox; echo kept > /scratch/note; exec sleep 3600"],
                "readinessProbe": {"exec": {"command": ["test", "-s", "/scratch/note"]}, "periodSeconds": 1},
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }],
            "volumes": [{"name": "scratch", "persistentVolumeClaim": {"claimName": "scratch"}}],
        },
    }))
    .unwrap()
}

/// Starts a pod from the toolbox image in a new namespace and waits until it is Ready.
async fn run_toolbox(cp: &ControlPlane, ns: &str) -> Api<Pod> {
    let admin = cp.admin_client().await.unwrap();
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    // The pod needs the namespace's default service account (the controller manager makes it).
    await_condition(
        Api::<ServiceAccount>::namespaced(admin.clone(), ns),
        "default",
        |sa: Option<&ServiceAccount>| sa.is_some(),
    )
    .await
    .unwrap();
    // A claim without a class: the default StorageClass's provisioner makes its volume.
    let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "scratch"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }))
    .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &claim)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin, ns);
    pods.create(&PostParams::default(), &toolbox_pod("toolbox"))
        .await
        .unwrap();
    let ready = await_condition(pods.clone(), "toolbox", conditions::is_pod_running());
    if tokio::time::timeout(Duration::from_secs(60), ready).await.is_err() {
        panic!("the toolbox pod does not run within a minute\n{}", diagnose(cp, ns));
    }
    let ready = await_condition(pods.clone(), "toolbox", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("the toolbox pod is Ready")
        .unwrap();
    pods
}

/// The pod's events and the end of the node's logs, for a failure message.
fn diagnose(cp: &ControlPlane, ns: &str) -> String {
    let describe = cp.kubectl().args(["describe", "pod", "-n", ns]).output().unwrap();
    let mut text = String::from_utf8_lossy(&describe.stdout).into_owned();
    for log in ["kubelet", "containerd", "kube-scheduler"] {
        let path = cp.node().unwrap().dir().join(format!("{log}.log"));
        let all = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        text += &format!(
            "\n--- {log} ---\n{}",
            lines[lines.len().saturating_sub(25)..].join("\n")
        );
    }
    text
}

/// The host paths of the cluster's PersistentVolumes.
fn volume_paths(cp: &ControlPlane) -> Vec<String> {
    kubectl(cp, &["get", "pv", "-o", "jsonpath={.items[*].spec.hostPath.path}"])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> String {
    let out = cp.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A web app pod serving `message` behind the Service `web` in `ns`, and
/// named `web-0` under the headless Service `pods` (as a StatefulSet's pod
/// is); returns the ClusterIP of `web` once both have a ready endpoint.
async fn serve_behind_a_service(cp: &ControlPlane, ns: &str, message: &str) -> String {
    let admin = cp.admin_client().await.unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "hostname": "web-0",
            "subdomain": "pods",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "web",
                "image": WEBAPP_IMAGE,
                "env": [{"name": "MESSAGE", "value": message}],
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
            }],
        },
    }))
    .unwrap();
    Api::<Pod>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]},
    }))
    .unwrap();
    let services = Api::<Service>::namespaced(admin.clone(), ns);
    let service = services.create(&PostParams::default(), &service).await.unwrap();
    let headless: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pods"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    services.create(&PostParams::default(), &headless).await.unwrap();
    common::wait_pod_ready(&admin, ns, "web").await;
    common::wait_service_endpoints(&admin, ns, "web").await;
    common::wait_service_endpoints(&admin, ns, "pods").await;
    service.spec.unwrap().cluster_ip.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_toolbox_pod_runs_answers_through_the_kubelet_reaches_the_api_and_a_service_and_leaves_nothing() {
    let host = HostNetwork::now();
    let cp = tokio::task::spawn_blocking(ControlPlane::start_with_node)
        .await
        .unwrap()
        .expect("a control plane with a node");
    run_toolbox(&cp, "node-check").await;
    let traces = Traces::of(&cp, host);
    assert!(!traces.sandboxes.is_empty(), "the pod has a sandbox");
    assert_eq!(traces.volumes.len(), 1, "the claim has a volume");
    assert_eq!(
        std::fs::read_to_string(Path::new(&traces.volumes[0]).join("note")).unwrap(),
        "kept\n",
        "the pod wrote to its volume"
    );

    let logs = kubectl(&cp, &["logs", "-n", "node-check", "toolbox"]);
    assert_eq!(logs.trim(), "hello from the toolbox");
    let exec = kubectl(
        &cp,
        &[
            "exec",
            "-n",
            "node-check",
            "toolbox",
            "--",
            "sh",
            "-c",
            "echo $((6 * 7))",
        ],
    );
    assert_eq!(exec.trim(), "42");

    // From inside the pod, with its own service-account token, at the bridge address.
    let whoami = format!(
        "kubectl --server={} --certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt \
         --token=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token) auth whoami -o jsonpath='{{.status.userInfo.username}}'",
        cp.server()
    );
    let user = kubectl(&cp, &["exec", "-n", "node-check", "toolbox", "--", "sh", "-c", &whoami]);
    assert_eq!(user, "system:serviceaccount:node-check:default");
    assert!(
        cp.server().contains(&cp.node().unwrap().bridge().ip().to_string()),
        "{}",
        cp.server()
    );

    // A Service answers from the pod at its ClusterIP and at its name, from
    // the other pod (kube-proxy and CoreDNS in the services namespace), and
    // the host's own network has not changed for it.
    let services = cp.node().unwrap().services().expect("kube-proxy and CoreDNS run");
    let resolv = kubectl(
        &cp,
        &["exec", "-n", "node-check", "toolbox", "--", "cat", "/etc/resolv.conf"],
    );
    assert!(resolv.contains(&format!("nameserver {}", services.dns())), "{resolv}");
    assert!(
        resolv.contains("search node-check.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    let ip = serve_behind_a_service(&cp, "node-check", "answered through a Service").await;
    for url in [
        format!("http://{ip}/"),
        "http://web.node-check.svc.cluster.local/".to_string(),
        "http://web/".to_string(),
        // The form of the catalog's outputs for StatefulSet pods: <pod>.<service>.<namespace>.svc
        "http://web-0.pods.node-check.svc/".to_string(),
    ] {
        let page = common::http_get_in_pod(&cp, "node-check", "toolbox", &url);
        assert_eq!(page, "answered through a Service\n", "{url}");
    }
    // The `kubernetes` Service: an in-cluster client (no kubeconfig, only
    // the pod's KUBERNETES_SERVICE_HOST) reaches the API server through it.
    let in_cluster = kubectl(
        &cp,
        &[
            "exec",
            "-n",
            "node-check",
            "toolbox",
            "--",
            "kubectl",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(in_cluster, "system:serviceaccount:node-check:default");
    assert_eq!(HostNetwork::now(), traces.host, "the host's network is as it was");

    tokio::task::spawn_blocking(move || drop(cp)).await.unwrap();
    traces.assert_none_left("the control plane was dropped");
}

/// Run only as a child of `nothing_of_the_node_outlives_the_test_process`.
#[test]
#[ignore]
fn child_starts_a_shared_control_plane_with_a_node() {
    let Ok(out) = std::env::var("PORTICO_CHILD_TRACES") else {
        return;
    };
    static CP: std::sync::OnceLock<ControlPlane> = std::sync::OnceLock::new();
    let cp = CP.get_or_init(|| ControlPlane::start_with_node().unwrap());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run_toolbox(cp, "child"));
    let t = Traces::of(cp, HostNetwork::now());
    assert!(!t.sandboxes.is_empty(), "the pod has a sandbox");
    assert!(!t.volumes.is_empty(), "the claim has a volume");
    std::fs::write(
        &out,
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n",
            t.dir,
            t.cgroup,
            t.bridge,
            t.veth,
            t.sandboxes.join(" "),
            t.volumes.join(" ")
        ),
    )
    .unwrap();
    match std::env::var("PORTICO_CHILD_END").as_deref() {
        Ok("panic") => panic!("the test panics while the node runs"),
        Ok("hang") => std::thread::sleep(Duration::from_secs(600)),
        _ => {}
    }
}

#[test]
fn nothing_of_the_node_outlives_the_test_process() {
    for end in ["exit", "panic", "hang"] {
        let host = HostNetwork::now();
        let dir = tempfile::tempdir().unwrap();
        let traces_file = dir.path().join("traces");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_starts_a_shared_control_plane_with_a_node",
                "--ignored",
                "--nocapture",
            ])
            .env("PORTICO_CHILD_TRACES", &traces_file)
            .env("PORTICO_CHILD_END", end)
            .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
            .spawn()
            .unwrap();
        if end == "hang" {
            while !traces_file.exists() {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("child ended early: {status}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            child.kill().unwrap(); // SIGKILL: no destructors, no atexit
        }
        let status = child.wait().unwrap();
        let err = std::fs::read_to_string(dir.path().join("err")).unwrap_or_default();
        assert_eq!(status.success(), end == "exit", "child status {status}: {err}");
        let text = std::fs::read_to_string(&traces_file).expect("the child wrote where its node lives");
        let mut lines = text.lines().map(str::to_string);
        let traces = Traces {
            dir: lines.next().unwrap(),
            cgroup: lines.next().unwrap(),
            bridge: lines.next().unwrap(),
            veth: lines.next().unwrap(),
            sandboxes: lines.next().unwrap().split(' ').map(str::to_string).collect(),
            host,
            volumes: lines.next().unwrap().split(' ').map(str::to_string).collect(),
        };
        traces.assert_none_left(&format!("the test process ended by {end}"));
    }
}
