//! The dashboard in this test: `portico ui` as the chart's service account,
//! with the development login (alice, a developer; carol, an admin), and
//! every page that reads: the catalog, a template's form, the Deployments,
//! the Terminals, the account, the admin's sessions and the live updates.

use std::time::Duration;

use portico::controlplane::{ControlPlane, Process, free_port};

use crate::common::{
    self,
    ui::{Browser, csrf, wait_http},
};

/// A running dashboard.
pub struct Dashboard {
    pub process: Process,
    pub base: String,
}

/// Starts `portico ui` with the chart's RBAC for it (the operator must run:
/// its webhook records who created each login's SessionClaim).
pub async fn start(cp: &ControlPlane) -> Dashboard {
    common::operator::ensure_namespace(cp, portico::dev::demo::SESSIONS_NAMESPACE).await;
    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let config = cp.dir().join("rbac-usage-ui.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\npublicUrl: {base}\n\
             devUsers: [{{name: alice, groups: [developers]}}, {{name: carol, groups: [portico-admins]}}]\n\
             session: {{profile: developer, namespace: {}}}\n\
             catalogNamespaces: [{}]\n",
            portico::dev::demo::SESSIONS_NAMESPACE,
            portico::dev::CATALOG_NAMESPACE,
        ),
    )
    .unwrap();
    let kubeconfig = common::operator::chart_identity(cp, "templates/dashboard-rbac.yaml", "portico-dashboard").await;
    let mut process = Process::spawn_with_env(
        "portico-ui",
        env!("CARGO_BIN_EXE_portico").as_ref(),
        &["ui".into(), "--config".into(), config.to_string_lossy().into_owned()],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
        &cp.dir().join("rbac-usage-ui.log"),
    )
    .expect("start the dashboard");
    if let Some(status) = process.exited() {
        panic!("the dashboard exited ({status}):\n{}", process.log_tail(40));
    }
    wait_http(&format!("{base}/healthz")).await;
    Dashboard { process, base }
}

/// Logs in as `user` on the development login page.
async fn login(base: &str, user: &str) -> Browser {
    let mut b = Browser::new();
    // The login page's CSRF token, which matches its pre-session cookie.
    let token = csrf(&b.get(&format!("{base}/login")).await.text().await.unwrap());
    let page = b
        .post_form(&format!("{base}/dev-login"), &[("user", user), ("csrf", &token)])
        .await;
    assert!(page.status().is_success(), "{user}'s login: {}", page.status());
    assert!(!b.cookies.is_empty(), "{user}'s login set no session cookie");
    b
}

/// GETs `path` and expects a page containing `text`.
async fn page(b: &mut Browser, base: &str, path: &str, text: &str) {
    let r = b.get(&format!("{base}{path}")).await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert!(
        status.is_success() && html.contains(text),
        "GET {path}: {status}, without {text:?}:\n{html}"
    );
}

/// Every reading page, as a developer and as an admin.
pub async fn run(base: &str) {
    let mut alice = login(base, "alice").await;
    page(&mut alice, base, "/", "/catalog/webapp/new").await;
    page(&mut alice, base, "/catalog/webapp/new", "name=\"image\"").await;
    page(&mut alice, base, "/deployments", "Deployments").await;
    page(&mut alice, base, "/terminals", "Terminals").await;
    page(&mut alice, base, "/account", "Your session").await;
    // The live updates come from the watch caches: the stream starts at once.
    let mut events = alice.send(alice.http.get(format!("{base}/events"))).await;
    assert!(events.status().is_success(), "GET /events: {}", events.status());
    let first = tokio::time::timeout(Duration::from_secs(10), events.chunk())
        .await
        .expect("the live updates start")
        .unwrap()
        .unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&first).contains("connected"),
        "GET /events began with {first:?}"
    );
    drop(events);

    let mut carol = login(base, "carol").await;
    page(&mut carol, base, "/admin/sessions", "alice").await;
}
