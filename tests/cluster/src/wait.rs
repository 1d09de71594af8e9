//! Waiting for the cluster's components: ports, `/readyz`, aggregated
//! roles, containerd, a Ready node, health endpoints (kube-proxy, CoreDNS);
//! and the few API calls the node makes while starting and stopping
//! (granting the API server the kubelet API, CoreDNS's RBAC, the default
//! StorageClass, draining). Each wait gives up when its process exits or time runs out,
//! with the end of that process's log.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    config::Kubeconfig,
};

use super::{ControlPlaneError, Process, client_for};

pub(super) const START_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn wait_for_port(p: &mut Process, port: u16) -> Result<(), ControlPlaneError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        check_alive(p, deadline, &format!("port {port} is not accepting connections"))?;
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn check_alive(p: &mut Process, deadline: Instant, waiting_for: &str) -> Result<(), ControlPlaneError> {
    let reason = if let Some(status) = p.exited() {
        format!("exited with {status}")
    } else if Instant::now() > deadline {
        format!("timed out after {START_TIMEOUT:?}: {waiting_for}")
    } else {
        return Ok(());
    };
    Err(ControlPlaneError::NotReady {
        component: p.name().to_string(),
        reason,
        log: p.log_tail(30),
    })
}

/// Polls `/readyz` and the `default` namespace.
pub(super) fn wait_api_ready(kc: &Kubeconfig, p: &mut Process) -> Result<(), ControlPlaneError> {
    poll_until(
        kc,
        p,
        "/readyz did not pass and the default namespace did not appear",
        |client| async move {
            let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
            let req = http::Request::get("/readyz").body(Vec::new()).expect("request");
            let ready = matches!(client.request_text(req).await, Ok(body) if body.trim() == "ok");
            ready && namespaces.get_opt("default").await.ok().flatten().is_some()
        },
    )
}

/// Waits until kube-controller-manager has aggregated the built-in `admin`,
/// `edit` and `view` roles (so RBAC behaves as in any cluster).
pub(super) fn wait_controllers_ready(kc: &Kubeconfig, p: &mut Process) -> Result<(), ControlPlaneError> {
    poll_until(
        kc,
        p,
        "the built-in admin, edit and view roles were not aggregated",
        |client| async move {
            let roles: kube::Api<k8s_openapi::api::rbac::v1::ClusterRole> = kube::Api::all(client);
            for name in ["admin", "edit", "view"] {
                let filled = roles
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.rules)
                    .is_some_and(|r| !r.is_empty());
                if !filled {
                    return false;
                }
            }
            true
        },
    )
}

/// Polls `check` every 100ms on a private runtime in its own thread (so
/// callers may be sync or async) until it passes, `p` exits, or time runs out.
pub(super) fn poll_until<F, Fut>(
    kc: &Kubeconfig,
    p: &mut Process,
    waiting_for: &str,
    check: F,
) -> Result<(), ControlPlaneError>
where
    F: Fn(kube::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool>,
{
    let kc = kc.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let _ = tx.send(rt.block_on(async move {
            let client = client_for(&kc, None).await?;
            loop {
                if check(client.clone()).await {
                    return Ok::<(), ControlPlaneError>(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => check_alive(p, deadline, waiting_for)?,
            Err(e) => {
                return Err(ControlPlaneError::NotReady {
                    component: p.name().to_string(),
                    reason: e.to_string(),
                    log: p.log_tail(30),
                });
            }
        }
    }
}

/// Waits until containerd answers on `socket`.
pub(super) fn containerd_ready(p: &mut Process, ctr: &Path, socket: &Path) -> Result<(), ControlPlaneError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let answered = Command::new(ctr)
            .arg("--address")
            .arg(socket)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if answered {
            return Ok(());
        }
        check_alive(
            p,
            deadline,
            &format!("containerd does not answer on {}", socket.display()),
        )?;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the Node `name` is Ready.
pub(super) fn node_ready(kc: &Kubeconfig, p: &mut Process, name: &'static str) -> Result<(), ControlPlaneError> {
    poll_until(kc, p, "the node did not become Ready", move |client| async move {
        let node = Api::<Node>::all(client).get_opt(name).await.ok().flatten();
        let conditions = node
            .and_then(|n| n.status)
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Runs `f` with an admin client on a private runtime in its own thread.
fn blocking<F, Fut, T>(kc: &Kubeconfig, f: F) -> Result<T, ControlPlaneError>
where
    F: FnOnce(kube::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, ControlPlaneError>>,
    T: Send + 'static,
{
    let kc = kc.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async move { f(client_for(&kc, None).await?).await })
    })
    .join()
    .expect("the API thread does not panic")
}

/// Binds `user` (the API server's kubelet client) to `system:kubelet-api-admin`,
/// so the kubelet's Webhook authorization lets it read logs and exec.
pub(super) fn grant_kubelet_api(kc: &Kubeconfig, user: &'static str) -> Result<(), ControlPlaneError> {
    blocking(kc, move |client| async move {
        let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "portico:kube-apiserver-kubelet-client"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kubelet-api-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }))
        .expect("a ClusterRoleBinding");
        Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client)
            .patch(
                "portico:kube-apiserver-kubelet-client",
                &PatchParams::apply("portico"),
                &Patch::Apply(&binding),
            )
            .await?;
        Ok(())
    })
}

/// Server-side applies the cluster-scoped `object` as the field manager `portico`.
pub(super) fn apply_cluster_object<K>(kc: &Kubeconfig, object: K) -> Result<(), ControlPlaneError>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + 'static,
{
    blocking(kc, move |client| async move {
        let name = object.meta().name.clone().unwrap_or_default();
        Api::<K>::all(client)
            .patch(&name, &PatchParams::apply("portico"), &Patch::Apply(&object))
            .await?;
        Ok(())
    })
}

/// How long stopping waits for the node's pods to go.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Cordons the node and deletes its pods (one second of grace), and waits
/// until the kubelet has stopped them all and torn down their networks.
pub(super) fn drain(kc: &Kubeconfig, name: &'static str) -> Result<(), ControlPlaneError> {
    blocking(kc, move |client| async move {
        let nodes = Api::<Node>::all(client.clone());
        let cordon = serde_json::json!({"spec": {"unschedulable": true}});
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&cordon))
            .await?;
        let pods = Api::<Pod>::all(client.clone());
        let on_node = ListParams::default().fields(&format!("spec.nodeName={name}"));
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = pods.list(&on_node).await?.items;
            if left.is_empty() || Instant::now() > deadline {
                return Ok(());
            }
            for pod in left.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                let (Some(ns), Some(pod_name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
                    continue;
                };
                let _ = Api::<Pod>::namespaced(client.clone(), ns)
                    .delete(pod_name, &DeleteParams::default().grace_period(1))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Waits until `GET path` on `addr` answers 200 (a component's health or
/// readiness endpoint).
pub(super) fn http_ok(p: &mut Process, addr: std::net::SocketAddr, path: &str) -> Result<(), ControlPlaneError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if http_status(addr, path) == Some(200) {
            return Ok(());
        }
        check_alive(p, deadline, &format!("http://{addr}{path} does not answer 200"))?;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status code of `GET path` on `addr` (HTTP/1.0, short timeouts), if it answers.
fn http_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let timeout = Duration::from_millis(500);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Applies a ClusterRole and its ClusterRoleBinding (server-side, field manager `portico`).
pub(super) fn apply_rbac(
    kc: &Kubeconfig,
    role: serde_json::Value,
    binding: serde_json::Value,
) -> Result<(), ControlPlaneError> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let role: ClusterRole = serde_json::from_value(role).expect("a ClusterRole");
    let binding: ClusterRoleBinding = serde_json::from_value(binding).expect("a ClusterRoleBinding");
    blocking(kc, move |client| async move {
        let apply = PatchParams::apply("portico");
        let name = role.metadata.name.clone().unwrap_or_default();
        Api::<ClusterRole>::all(client.clone())
            .patch(&name, &apply, &Patch::Apply(&role))
            .await?;
        let name = binding.metadata.name.clone().unwrap_or_default();
        Api::<ClusterRoleBinding>::all(client)
            .patch(&name, &apply, &Patch::Apply(&binding))
            .await?;
        Ok(())
    })
}
