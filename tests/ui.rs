//! The dashboard against a real OpenID Connect provider (npm oidc-provider)
//! and the real control plane and operator: login through the provider's own
//! forms, a SessionClaim made as the user, logout and revocation, and the
//! abuse cases (forged and tampered cookies, missing CSRF token, browser
//! `Impersonate-User` headers).

mod common;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use common::shared_with_operator;
use kube::{Api, api::DeleteParams, runtime::wait::await_condition};
use portico::{
    api::SessionClaim,
    controlplane::{Process, free_port},
};
use reqwest::{StatusCode, redirect::Policy};

struct Stack {
    _provider: Process,
    _ui: Process,
    base: String,
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc"))
}

/// Tests that log in as alice take turns, so each can count her sessions.
static ALICE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the provider and the dashboard once for this test binary.
async fn stack() -> &'static Stack {
    static STACK: tokio::sync::OnceCell<Stack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let cp = shared_with_operator();
            common::operator::ensure_namespace(cp, portico::dev::demo::SESSIONS_NAMESPACE).await;
            if !oidc_dir().join("node_modules/oidc-provider").exists() {
                let out = std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(oidc_dir()).output().unwrap();
                assert!(out.status.success(), "npm ci: {}", String::from_utf8_lossy(&out.stderr));
            }
            let (op_port, ui_port) = (free_port().unwrap(), free_port().unwrap());
            let base = format!("http://127.0.0.1:{ui_port}");
            let dir = cp.dir();
            let log = dir.join("oidc.log");
            let provider = Process::spawn(
                "oidc-provider",
                "node".as_ref(),
                &[
                    oidc_dir().join("server.mjs").to_string_lossy().into_owned(),
                    op_port.to_string(),
                    "portico".into(),
                    "test-secret".into(),
                    format!("{base}/auth/callback"),
                ],
                &log,
            )
            .unwrap();
            wait_http(&format!("http://127.0.0.1:{op_port}/.well-known/openid-configuration")).await;
            use base64::Engine;
            std::fs::write(dir.join("cookie.key"), base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 64]>())).unwrap();
            std::fs::write(dir.join("client.secret"), "test-secret").unwrap();
            let config = format!(
                "listen: 127.0.0.1:{ui_port}\npublicUrl: {base}\noidc:\n  issuer: http://127.0.0.1:{op_port}\n  clientId: portico\n  clientSecretFile: {}\n  usernameClaim: preferred_username\ncookieKeyFile: {}\nsession: {{profile: developer, namespace: {}}}\n",
                dir.join("client.secret").display(),
                dir.join("cookie.key").display(),
                portico::dev::demo::SESSIONS_NAMESPACE,
            );
            std::fs::write(dir.join("ui.yaml"), config).unwrap();
            // The dashboard runs with the chart's own RBAC for it, not as admin.
            let kubeconfig = common::operator::chart_identity(cp, "templates/dashboard-rbac.yaml", "portico-dashboard").await;
            let ui = Process::spawn_with_env(
                "portico-ui",
                env!("CARGO_BIN_EXE_portico").as_ref(),
                &["ui".into(), "--config".into(), dir.join("ui.yaml").to_string_lossy().into_owned()],
                &[("KUBECONFIG", kubeconfig.as_os_str())],
                &dir.join("ui.log"),
            )
            .unwrap();
            wait_http(&format!("{base}/healthz")).await;
            Stack { _provider: provider, _ui: ui, base }
        })
        .await
}

/// Waits (bounded) until `url` answers 200.
async fn wait_http(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// A browser-like client: follows redirects by hand and keeps cookies by name.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for c in r.headers().get_all("set-cookie") {
            let text = c.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.to_ascii_lowercase().contains("max-age=0") || v.is_empty() {
                self.cookies.remove(k.trim());
            } else {
                self.cookies.insert(k.trim().to_string(), v.to_string());
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let r = req.header("cookie", self.cookie_header()).send().await.unwrap();
        self.keep(&r);
        r
    }

    /// GETs `url`, following redirects; returns the final response.
    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut url = url.to_string();
        for _ in 0..20 {
            let r = self.send(self.http.get(&url)).await;
            if !r.status().is_redirection() {
                return r;
            }
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            url = absolute(&url, &loc);
        }
        panic!("too many redirects");
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self.send(self.http.post(url).form(form)).await;
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            return self.get(&absolute(url, &loc)).await;
        }
        r
    }

    /// Logs in as `user` through the provider's own login and consent forms.
    async fn login(&mut self, base: &str, user: &str) -> String {
        let mut page = self.get(&format!("{base}/login")).await;
        for _ in 0..5 {
            let url = page.url().to_string();
            let html = page.text().await.unwrap();
            let Some(action) = form_action(&html).filter(|a| a.contains("/interaction/")) else {
                return html;
            };
            let action = absolute(&url, &action);
            page = if html.contains("name=\"login\"") {
                self.post_form(&action, &[("prompt", "login"), ("login", user), ("password", "any")])
                    .await
            } else {
                self.post_form(&action, &[("prompt", "consent")]).await
            };
        }
        panic!("login did not finish");
    }
}

fn absolute(current: &str, location: &str) -> String {
    if location.starts_with("http") {
        return location.to_string();
    }
    let origin: Vec<&str> = current.splitn(4, '/').take(3).collect();
    format!("{}{location}", origin.join("/"))
}

fn form_action(html: &str) -> Option<String> {
    let i = html.find("<form")?;
    let rest = &html[i..];
    let a = rest.find("action=\"")? + 8;
    Some(rest[a..a + rest[a..].find('"')?].replace("&amp;", "&"))
}

fn csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

async fn claims_of(user: &str) -> Vec<SessionClaim> {
    let api: Api<SessionClaim> = Api::namespaced(
        shared_with_operator().admin_client().await.unwrap(),
        portico::dev::demo::SESSIONS_NAMESPACE,
    );
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| {
            portico::creator::Creator::from_annotations(c.metadata.annotations.as_ref()).is_ok_and(|cr| cr.user == user)
        })
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test]
async fn alice_logs_in_through_the_provider_sees_her_catalog_and_logs_out() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    let before = claims_of("alice").await.len();
    let html = b.login(&s.base, "alice").await;
    assert!(html.contains("<h1>Catalog</h1>"), "{html}");
    assert!(
        html.contains("Web application") && html.contains("PostgreSQL"),
        "alice (developers) sees both: {html}"
    );
    let cookie = b.cookies.get("__Host-portico").cloned().expect("the session cookie");
    let claims = claims_of("alice").await;
    assert_eq!(
        claims.len(),
        before + 1,
        "one SessionClaim made for this login, as alice"
    );

    // Logout without the CSRF token is refused and changes nothing.
    let r = b
        .send(b.http.post(format!("{}/logout", s.base)).form(&[("csrf", "nope")]))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(claims_of("alice").await.len(), before + 1);

    let r = b
        .post_form(&format!("{}/logout", s.base), &[("csrf", &csrf(&html))])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(claims_of("alice").await.len(), before, "logout deletes the claim");
    // The old cookie no longer opens a session.
    let mut replay = Browser::new();
    replay.cookies.insert("__Host-portico".into(), cookie);
    let r = replay.send(replay.http.get(format!("{}/", s.base))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
}

#[tokio::test]
async fn an_admin_revoking_the_session_logs_the_user_out_on_the_next_request() {
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "dave").await; // dave logs in nowhere else
    let claim = claims_of("dave").await.into_iter().next().expect("dave's session");
    let api: Api<SessionClaim> = Api::namespaced(
        shared_with_operator().admin_client().await.unwrap(),
        portico::dev::demo::SESSIONS_NAMESPACE,
    );
    let name = kube::ResourceExt::name_any(&claim);
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, &name, |c: Option<&SessionClaim>| c.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    let r = b.send(b.http.get(format!("{}/", s.base))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "revoked: back to login");
    assert_eq!(r.headers()["location"], "/login");
}

#[tokio::test]
async fn forged_and_tampered_cookies_and_impersonation_headers_get_nothing() {
    let s = stack().await;
    // A forged cookie (plain JSON) and a tampered one are not a session.
    for value in [
        r#"{"user":"carol","groups":["portico-admins"],"claim":"x","exp":99999999999}"#.to_string(),
        "AAAA".repeat(30),
    ] {
        let mut b = Browser::new();
        b.cookies.insert("__Host-portico".into(), value);
        let r = b.send(b.http.get(format!("{}/", s.base))).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/login");
    }
    // The development login does not exist where OIDC is configured.
    let mut b = Browser::new();
    let r = b
        .send(b.http.post(format!("{}/dev-login", s.base)).form(&[("user", "carol")]))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("__Host-portico"));
    // A logged-in user's Impersonate-User header changes nothing: bob still sees bob's page.
    let mut b = Browser::new();
    b.login(&s.base, "bob").await;
    let r = b
        .send(
            b.http
                .get(format!("{}/", s.base))
                .header("Impersonate-User", "carol")
                .header("Impersonate-Group", "system:masters"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("<span class=\"who\">bob</span>"), "{html}");
}

fn field_error(html: &str, field: &str) -> Option<String> {
    let marker = format!("id=\"error-{field}\" role=\"alert\">");
    let i = html.find(&marker)? + marker.len();
    Some(html[i..i + html[i..].find('<')?].to_string())
}

#[tokio::test]
async fn alice_creates_a_web_app_fixing_a_wrong_parameter_then_deletes_it() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    let form = b
        .get(&format!("{}/catalog/webapp/new", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("name=\"replicas\"") && form.contains("max=\"10\""),
        "{form}"
    );
    let token = csrf(&form);
    let url = format!("{}/catalog/webapp/new", s.base);
    let wrong = [
        ("csrf", token.as_str()),
        ("__name", "shop"),
        ("__namespace", "team-a"),
        ("image", "nginx"),
        ("replicas", "50"),
    ];
    let r = b.send(b.http.post(&url).form(&wrong)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    let err = field_error(&html, "replicas").unwrap_or_else(|| panic!("no error by the field: {html}"));
    assert!(err.contains("maximum"), "{err}");
    let right = [
        ("csrf", token.as_str()),
        ("__name", "shop"),
        ("__namespace", "team-a"),
        ("image", "nginx"),
        ("replicas", "2"),
    ];
    let r = b.send(b.http.post(&url).form(&right)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/deployments/team-a/shop");
    let detail = b
        .get(&format!("{}/deployments/team-a/shop", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains("team-a/shop") && detail.contains("webapp"), "{detail}");
    let list = b.get(&format!("{}/deployments", s.base)).await.text().await.unwrap();
    assert!(list.contains("/deployments/team-a/shop"), "{list}");
    // bob's list does not show alice's deployment, and he may not open it.
    let mut bob = Browser::new();
    bob.login(&s.base, "bob").await;
    assert!(
        !bob.get(&format!("{}/deployments", s.base))
            .await
            .text()
            .await
            .unwrap()
            .contains("team-a/shop")
    );
    let r = bob.get(&format!("{}/deployments/team-a/shop", s.base)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text().await.unwrap().contains("cannot get resource"),
        "the refusal in words"
    );
    // Delete with confirmation.
    let r = b
        .post_form(
            &format!("{}/deployments/team-a/shop/delete", s.base),
            &[("csrf", &token), ("confirm", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let api: Api<portico::api::Deployment> =
        Api::namespaced(shared_with_operator().admin_client().await.unwrap(), "team-a");
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, "shop", |d: Option<&portico::api::Deployment>| d.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn bob_may_not_create_in_team_a_nor_use_a_template_for_other_groups() {
    let s = stack().await;
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ops-tool", "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": "displayName: Ops tool\nallowedGroups: [ops]\nmanifests: ''\n"}
    }))
    .unwrap();
    portico::install::apply(&shared_with_operator().admin_client().await.unwrap(), &cm)
        .await
        .unwrap();
    let mut b = Browser::new();
    let catalog = b.login(&s.base, "bob").await;
    assert!(!catalog.contains("Ops tool"), "only templates bob's groups allow");
    let r = b.get(&format!("{}/catalog/ops-tool/new", s.base)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let token = csrf(&catalog);
    let url = format!("{}/catalog/webapp/new", s.base);
    let form = [
        ("csrf", token.as_str()),
        ("__name", "intruder"),
        ("__namespace", "team-a"),
        ("image", "nginx"),
    ];
    let r = b.send(b.http.post(&url).form(&form)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text().await.unwrap().contains("cannot create resource"),
        "the API server's refusal, as bob"
    );
    let r = b
        .send(b.http.post(format!("{}/catalog/ops-tool/new", s.base)).form(&[
            ("csrf", token.as_str()),
            ("__name", "x"),
            ("__namespace", "team-b"),
        ]))
        .await;
    assert!(r.text().await.unwrap().contains("may not use template ops-tool"));
    let api: Api<portico::api::Deployment> =
        Api::namespaced(shared_with_operator().admin_client().await.unwrap(), "team-a");
    assert!(api.get_opt("intruder").await.unwrap().is_none(), "nothing created");
}

#[tokio::test]
async fn in_chromium_alice_logs_in_deploys_fixes_an_error_and_deletes() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"));
    if !dir.join("node_modules/playwright-core").exists() {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "npm ci: {}", String::from_utf8_lossy(&out.stderr));
    }
    let artifacts = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/test-artifacts/screenshots"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(dir.join("flow.mjs"))
        .args([s.base.as_str(), "alice", artifacts.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "browser flow failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for shot in [
        "catalog",
        "create-form-error",
        "deployment",
        "deployments",
        "after-delete",
        "logged-out",
    ] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "screenshot {shot}");
    }
}

#[tokio::test]
async fn the_account_page_shows_the_session_hands_out_its_kubeconfig_and_extends_it() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    let claim = claims_of("alice")
        .await
        .into_iter()
        .max_by_key(|c| c.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .expect("alice's session");
    let name = kube::ResourceExt::name_any(&claim);
    let api: Api<SessionClaim> = Api::namespaced(
        shared_with_operator().admin_client().await.unwrap(),
        portico::dev::demo::SESSIONS_NAMESPACE,
    );
    let ready = |c: Option<&SessionClaim>| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|st| st.conditions.iter().any(|x| x.type_ == "Ready" && x.status == "True"))
    };
    tokio::time::timeout(Duration::from_secs(60), await_condition(api.clone(), &name, ready))
        .await
        .unwrap()
        .unwrap();

    let page = b.get(&format!("{}/account", s.base)).await.text().await.unwrap();
    assert!(
        page.contains("developer") && page.contains("<dd>developers</dd>"),
        "{page}"
    );
    let r = b.get(&format!("{}/account/kubeconfig", s.base)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, r.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new(shared_with_operator().binaries().path("kubectl"))
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "configmaps", "-n", "team-a"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the downloaded kubeconfig works: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let before = api
        .get(&name)
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default()
        .get(portico::api::keys::LAST_HEARTBEAT_AT)
        .cloned();
    let r = b
        .post_form(&format!("{}/account/extend", s.base), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = api
        .get(&name)
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default()
        .get(portico::api::keys::LAST_HEARTBEAT_AT)
        .cloned();
    assert!(
        after.is_some() && after != before,
        "Extend records a heartbeat: {before:?} -> {after:?}"
    );
    b.post_form(&format!("{}/logout", s.base), &[("csrf", &csrf(&page))])
        .await;
}

#[tokio::test]
async fn an_admin_sees_all_sessions_and_revokes_one_from_the_dashboard() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut alice = Browser::new();
    alice.login(&s.base, "alice").await;
    let mut bob = Browser::new();
    bob.login(&s.base, "bob").await;
    assert_eq!(
        bob.get(&format!("{}/admin/sessions", s.base)).await.status(),
        StatusCode::FORBIDDEN,
        "bob is no admin"
    );
    let mut carol = Browser::new();
    carol.login(&s.base, "carol").await;
    let page = carol
        .get(&format!("{}/admin/sessions", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<td>alice</td>") && page.contains("<td>bob</td>"),
        "{page}"
    );
    let newest = claims_of("alice")
        .await
        .into_iter()
        .max_by_key(|c| c.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .expect("alice's session");
    let (ns, name) = (
        kube::ResourceExt::namespace(&newest).unwrap(),
        kube::ResourceExt::name_any(&newest),
    );
    let r = carol
        .post_form(
            &format!("{}/admin/sessions/{ns}/{name}/revoke", s.base),
            &[("csrf", &csrf(&page))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let api: Api<SessionClaim> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), &ns);
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, &name, |c: Option<&SessionClaim>| c.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    let r = alice.send(alice.http.get(format!("{}/", s.base))).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "alice is logged out on her next request"
    );
}

#[tokio::test]
async fn status_changes_reach_the_browser_as_server_sent_events() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    let mut stream = b.send(b.http.get(format!("{}/events", s.base))).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains(": connected"));
    let alice = shared_with_operator()
        .client_as("alice", &["developers"])
        .await
        .unwrap();
    let d: portico::api::Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": "live-one"},
        "spec": {"template": {"name": "webapp"}, "parameters": {"image": "nginx"}}
    }))
    .unwrap();
    let api: Api<portico::api::Deployment> = Api::namespaced(alice, "team-a");
    api.create(&kube::api::PostParams::default(), &d).await.unwrap();
    let seen = async {
        let mut text = String::new();
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\"key\":\"team-a/live-one\"") && text.contains("event: deployment") {
                return text;
            }
        }
        panic!("stream ended: {text}");
    };
    let text = tokio::time::timeout(Duration::from_secs(30), seen)
        .await
        .expect("the change arrives");
    assert!(text.contains("data: {"), "{text}");
    api.delete("live-one", &DeleteParams::default()).await.unwrap();
    let page = b.get(&format!("{}/", s.base)).await.text().await.unwrap();
    b.post_form(&format!("{}/logout", s.base), &[("csrf", &csrf(&page))])
        .await;
}
