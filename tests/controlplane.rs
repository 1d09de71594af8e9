//! The control-plane module itself: several at once, an API server restart
//! that keeps the data, users acting through RBAC, and no process left
//! behind when the test process ends (normally, by panic, or killed).

use std::{process::Command, time::Duration};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use portico::controlplane::ControlPlane;

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("value".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_control_planes_side_by_side_are_independent() {
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(ControlPlane::start),
        tokio::task::spawn_blocking(ControlPlane::start)
    );
    let (a, b) = (
        a.unwrap().expect("first control plane"),
        b.unwrap().expect("second control plane"),
    );
    assert_ne!(a.server(), b.server());
    let ca: Api<ConfigMap> = Api::namespaced(a.admin_client().await.unwrap(), "default");
    let cb: Api<ConfigMap> = Api::namespaced(b.admin_client().await.unwrap(), "default");
    ca.create(&PostParams::default(), &config_map("only-in-a", "1"))
        .await
        .unwrap();
    assert!(
        cb.get_opt("only-in-a").await.unwrap().is_none(),
        "b must not see a's objects"
    );
    let pids: Vec<u32> = a.pids().into_iter().chain(b.pids()).collect();
    drop(a);
    drop(b);
    for pid in pids {
        assert!(!alive(pid), "process {pid} still running after drop");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apiserver_restart_keeps_the_data() {
    let cp = tokio::task::spawn_blocking(ControlPlane::start).await.unwrap().unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(cp.admin_client().await.unwrap(), "default");
    cms.create(&PostParams::default(), &config_map("survivor", "42"))
        .await
        .unwrap();
    let before = cp.pids();
    let cp = tokio::task::spawn_blocking(move || {
        cp.restart_apiserver().expect("restart");
        cp
    })
    .await
    .unwrap();
    let after = cp.pids();
    assert_eq!(before[0], after[0], "etcd keeps running");
    assert_ne!(before[1], after[1], "kube-apiserver is a new process");
    assert!(!alive(before[1]));
    let cms: Api<ConfigMap> = Api::namespaced(cp.admin_client().await.unwrap(), "default");
    let cm = cms.get("survivor").await.expect("data kept across the restart");
    assert_eq!(cm.data.unwrap()["value"], "42");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_act_through_rbac_and_the_controller_manager_runs() {
    let cp = tokio::task::spawn_blocking(ControlPlane::start).await.unwrap().unwrap();
    let admin = cp.admin_client().await.unwrap();
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "rbac-check"}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    // kube-controller-manager's service-account controller creates `default`.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "rbac-check");
    kube::runtime::wait::await_condition(sas, "default", |sa: Option<&ServiceAccount>| sa.is_some())
        .await
        .unwrap();
    // A user without bindings is refused, by impersonation and by client certificate.
    let mallory: Api<ConfigMap> = Api::namespaced(cp.client_as("mallory", &["nobody"]).await.unwrap(), "rbac-check");
    match mallory.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // The audit log records the refusal: the admin, impersonating mallory.
    let refused = cp.audit_events().into_iter().find(|e| {
        e.impersonated_user.as_ref().is_some_and(|u| u.username == "mallory")
            && e.object_ref.as_ref().is_some_and(|o| o.resource == "configmaps")
    });
    let refused = refused.expect("the refused list is in the audit log");
    assert_eq!(
        (refused.user.username.as_str(), refused.verb.as_str(), refused.code()),
        ("portico-admin", "list", 403)
    );
    let kubeconfig = cp.user_kubeconfig("mallory", &["nobody"]).unwrap();
    let out = Command::new(cp.binaries().path("kubectl"))
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "mallory",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = cp.kubectl().args(["version", "-o", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&version.stdout).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], v["clientVersion"]["gitVersion"]);
    assert!(
        v["serverVersion"]["gitVersion"].as_str().unwrap().starts_with("v1."),
        "{v}"
    );
    // TokenRequest works: the service-account issuer and signing key are set up.
    let token = kube::Api::<ServiceAccount>::namespaced(admin, "rbac-check")
        .create_token_request("default", &PostParams::default(), &Default::default())
        .await
        .expect("TokenRequest");
    let jwt = token.status.and_then(|s| s.token).unwrap_or_default();
    assert_eq!(jwt.split('.').count(), 3, "a JWT: {jwt}");
}

/// Run only as a child of `nothing_is_left_running_after_the_test_process_ends`.
#[test]
#[ignore]
fn child_starts_a_shared_control_plane() {
    let Ok(pid_file) = std::env::var("PORTICO_CHILD_PID_FILE") else {
        return;
    };
    static CP: std::sync::OnceLock<ControlPlane> = std::sync::OnceLock::new();
    let cp = CP.get_or_init(|| ControlPlane::start().unwrap());
    let pids: Vec<String> = cp.pids().iter().map(u32::to_string).collect();
    std::fs::write(&pid_file, pids.join(" ")).unwrap();
    match std::env::var("PORTICO_CHILD_END").as_deref() {
        Ok("panic") => panic!("the test panics while the control plane runs"),
        Ok("hang") => std::thread::sleep(Duration::from_secs(600)),
        _ => {}
    }
}

fn run_child(end: &str) -> Vec<u32> {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_starts_a_shared_control_plane",
            "--ignored",
            "--nocapture",
        ])
        .env("PORTICO_CHILD_PID_FILE", &pid_file)
        .env("PORTICO_CHILD_END", end)
        // The child's own test report (a FAILED line for the panic case) stays out of ours.
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    if end == "hang" {
        while !pid_file.exists() {
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
    let text = std::fs::read_to_string(&pid_file).expect("child wrote its pids");
    let pids: Vec<u32> = text.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 3);
    pids
}

#[test]
fn nothing_is_left_running_after_the_test_process_ends() {
    for end in ["exit", "panic", "hang"] {
        for pid in run_child(end) {
            assert!(
                wait_gone(pid),
                "process {pid} outlived a test process that ended by {end}"
            );
        }
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// The kernel delivers the parent-death signal asynchronously: poll until the
/// process is gone (bounded; a live process after 10s is a failure).
fn wait_gone(pid: u32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
