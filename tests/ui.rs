//! The dashboard against a real OpenID Connect provider (npm oidc-provider)
//! and the real control plane and operator: login through the provider's own
//! forms, a SessionClaim made as the user, logout and revocation, and the
//! abuse cases (forged and tampered cookies, missing CSRF token, browser
//! `Impersonate-User` headers).

mod common;

use common::ui::*;

use std::time::Duration;

use common::shared_with_operator;
use kube::{Api, api::DeleteParams, runtime::wait::await_condition};
use portico::api::SessionClaim;
use reqwest::StatusCode;

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
    assert!(html.contains(r#"<link rel="icon" href="/favicon.ico""#), "{html}");
    let icon = b.get(&format!("{}/favicon.ico", s.base)).await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));
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
    let refused = r.text().await.unwrap();
    assert!(refused.contains("CSRF token is missing or wrong"), "{refused}");
    assert!(
        refused.contains("Log out") && !refused.contains(r#"href="/login""#),
        "a logged-in page: {refused}"
    );
    assert_eq!(claims_of("alice").await.len(), before + 1);

    // Logged in at the provider too: another login needs no password.
    let mut again = Browser::new();
    again.cookies = b.cookies.clone();
    again.cookies.remove("__Host-portico");
    again.cookies.remove("__Host-portico-provider");
    let html2 = again.get(&format!("{}/login", s.base)).await.text().await.unwrap();
    assert!(
        html2.contains("<h1>Catalog</h1>"),
        "the provider's login carries a second one: {html2}"
    );
    assert_eq!(claims_of("alice").await.len(), before + 2);

    // Logout ends the session, then the login at the provider
    // (RP-initiated logout, its ID token as the hint), and comes back.
    let r = b
        .post_form(&format!("{}/logout", s.base), &[("csrf", &csrf(&html))])
        .await;
    assert_eq!(
        claims_of("alice").await.len(),
        before + 1,
        "logout deletes its claim only"
    );
    assert!(
        r.url().as_str().starts_with(&s.issuer) && r.url().as_str().contains("id_token_hint="),
        "sent to the provider's end-session endpoint: {}",
        r.url()
    );
    assert!(
        !b.cookies.contains_key("__Host-portico") && !b.cookies.contains_key("__Host-portico-provider"),
        "{:?}",
        b.cookies.keys()
    );
    let r = b.confirm_provider_logout(&s.base, r).await;
    assert_eq!(r.url().as_str(), format!("{}/logged-out", s.base));
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("Logged out"), "{text}");
    // The provider's login ended too: logging in asks for the password again.
    let prompt = b.get(&format!("{}/login", s.base)).await.text().await.unwrap();
    assert!(prompt.contains("name=\"login\""), "{prompt}");
    let r = again.logout(&s.base).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(claims_of("alice").await.len(), before);
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
    b.login(&s.base, "frank").await; // frank logs in nowhere else
    let claim = claims_of("frank").await.into_iter().next().expect("frank's session");
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
    assert!(
        csp.ends_with(&format!("form-action 'self' {}", s.issuer)),
        "forms post here, and logout's redirect goes on to the provider only: {csp}"
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
    // The browser checks what it can before sending: the required image, and
    // the name as a DNS label with a pattern Chromium compiles (v flag).
    let tag = |name: &str| {
        let i = form.find(&format!("name=\"{name}\"")).expect("the field");
        let start = form[..i].rfind('<').unwrap();
        form[start..i + form[i..].find('>').unwrap()].to_string()
    };
    assert!(tag("image").contains(" required"), "{}", tag("image"));
    assert!(!tag("replicas").contains(" required"), "{}", tag("replicas"));
    assert!(
        tag("__name").contains(r#"pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?""#)
            && tag("__name").contains(r#"maxlength="63""#),
        "{}",
        tag("__name")
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
    // Placed from the webhook's cause for spec.parameters.replicas, not from its message.
    assert_eq!(err, "50 is greater than the maximum of 10");
    assert!(html.contains("Not saved: change the values marked below."), "{html}");
    assert_eq!(field_error(&html, "image"), None, "{html}");
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
        "data": {"template.yaml": "displayName: Ops tool\nallowedGroups: [portico-admins]\nmanifests: ''\n"}
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
    // The refusal keeps the layout of a logged-in page: the navigation and
    // Log out, not an offer to log in.
    let page = r.text().await.unwrap();
    assert!(page.contains("No such template"), "{page}");
    assert!(
        page.contains(r#"<nav aria-label="Main">"#) && page.contains("Log out"),
        "{page}"
    );
    assert!(!page.contains(r#"href="/login""#), "{page}");
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
    let artifacts = screenshots();
    let flow = browser_script("flow.mjs", &[s.base.as_str(), "alice", artifacts.to_str().unwrap()]);
    expect_browser_ok(flow).await;
    for shot in [
        "catalog",
        "create-form-error",
        "deployment",
        "deployment-ready",
        "pod-log",
        "edit-form",
        "deployments",
        "after-delete",
        "narrow",
        "refused",
        "refused-dark",
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
    let (_, name) = login_with_claim(&mut b, &s.base, "alice").await;
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

    // The end reads to the second in UTC; the machine-readable time stays in
    // `datetime`. The login's heartbeat may still move the end: the page is
    // read again until the dashboard's cache has the claim's current end.
    let mut page = String::new();
    let mut shown = String::new();
    for _ in 0..50 {
        page = b.get(&format!("{}/account", s.base)).await.text().await.unwrap();
        let end = api.get(&name).await.unwrap().status.unwrap().expires_at.unwrap().0;
        shown = format!(
            ">{} UTC</time>",
            end.round(k8s_openapi::jiff::Unit::Second)
                .unwrap()
                .strftime("%Y-%m-%d %H:%M:%S")
        );
        if page.contains(&shown) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("developer") && page.contains("<dd>developers</dd>"),
        "{page}"
    );
    assert!(page.contains(&shown), "{shown} in {page}");
    // Both ends: the maximum lifetime is stated, and Extend is offered before it.
    assert!(page.contains("Maximum lifetime: until"), "{page}");
    assert!(page.contains(r#"<p data-field="capped" hidden>"#), "{page}");
    assert!(
        page.contains(r#"<form method="post" action="/account/extend" data-field="extend">"#),
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
    b.logout(&s.base).await;
}

#[tokio::test]
async fn an_admin_sees_all_sessions_and_revokes_one_from_the_dashboard() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut alice = Browser::new();
    let (ns, name) = login_with_claim(&mut alice, &s.base, "alice").await;
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
    let revoke = format!("{}/admin/sessions/{ns}/{name}/revoke", s.base);
    // Without the confirmation nothing is revoked, and the page says how.
    let r = carol.post_form(&revoke, &[("csrf", &csrf(&page))]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Tick the confirmation to revoke"));
    let admin_claims: Api<SessionClaim> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), &ns);
    assert!(
        admin_claims
            .get(&name)
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    let r = carol
        .post_form(&revoke, &[("csrf", &csrf(&page)), ("confirm", "on")])
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

    // A stream starts with the current state of what the page shows: a
    // suspended Deployment whose status no longer changes still arrives.
    let still: portico::api::Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": "live-still"},
        "spec": {"template": {"name": "webapp"}, "parameters": {"image": "nginx"}, "suspend": true}
    }))
    .unwrap();
    api.create(&kube::api::PostParams::default(), &still).await.unwrap();
    let admin_api: Api<portico::api::Deployment> =
        Api::namespaced(shared_with_operator().admin_client().await.unwrap(), "team-a");
    let suspended = |d: &portico::api::Deployment| {
        d.status.as_ref().and_then(|s| s.message.as_deref()) == Some("suspended: changes are not applied")
    };
    common::wait::present(&admin_api, "live-still", "its suspended status", suspended).await;
    let mut again = b
        .send(
            b.http
                .get(format!("{}/events?keys=team-a/live-still,team-a/nothing-here", s.base)),
        )
        .await;
    // The dashboard's own watch may see the status a moment after the API
    // server answered above: then the stream's first state is the earlier
    // one and the suspended status follows on the same stream. Either way
    // it arrives without a further change.
    let current = async {
        let mut text = String::new();
        while let Some(chunk) = again.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("suspended: changes are not applied") {
                return text;
            }
        }
        panic!("stream ended: {text}");
    };
    let text = tokio::time::timeout(Duration::from_secs(10), current)
        .await
        .expect("the current state arrives on connect");
    assert!(text.contains("suspended: changes are not applied"), "{text}");
    assert!(!text.contains("nothing-here"), "{text}");

    // A stream sends what the lists show: bob (edit in team-b only) gets the
    // state of his namespace's Deployment and none of team-a's. The current
    // states come in the order asked, so team-a's would come first.
    let bobs: Api<portico::api::Deployment> = Api::namespaced(
        shared_with_operator().client_as("bob", &["developers"]).await.unwrap(),
        "team-b",
    );
    let mut live_bob = still.clone();
    live_bob.metadata = kube::api::ObjectMeta {
        name: Some("live-bob".into()),
        ..Default::default()
    };
    bobs.create(&kube::api::PostParams::default(), &live_bob).await.unwrap();
    let mut bob = Browser::new();
    bob.login(&s.base, "bob").await;
    let url = format!("{}/events?keys=team-a/live-still,team-b/live-bob", s.base);
    let mut seen = None;
    // Until the dashboard's own watch has seen bob's new Deployment.
    for _ in 0..50 {
        let mut stream = bob.send(bob.http.get(&url)).await;
        let read = async {
            let mut text = String::new();
            while let Ok(Some(chunk)) = stream.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if text.contains("\"key\":\"team-b/live-bob\"") {
                    return text;
                }
            }
            text
        };
        if let Ok(text) = tokio::time::timeout(Duration::from_millis(500), read).await
            && text.contains("\"key\":\"team-b/live-bob\"")
        {
            seen = Some(text);
            break;
        }
    }
    let text = seen.expect("bob's stream sends his Deployment's state");
    assert!(!text.contains("team-a/live-still"), "{text}");
    bobs.delete("live-bob", &DeleteParams::default()).await.unwrap();
    api.delete("live-still", &DeleteParams::default()).await.unwrap();
    b.logout(&s.base).await;
}

async fn create_as(user: &str, groups: &[&str], ns: &str, name: &str) -> portico::api::Deployment {
    let client = shared_with_operator().client_as(user, groups).await.unwrap();
    let d: portico::api::Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"name": "webapp"}, "parameters": {"image": "docker.io/library/nginx:1.27"}},
    }))
    .unwrap();
    Api::namespaced(client, ns)
        .create(&Default::default(), &d)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_detail_page_shows_events_pods_and_actions_only_to_users_allowed_them() {
    let s = stack().await;
    let mine = create_as("alice", &["developers"], "team-a", "events-a").await;
    // An Event about alice's Deployment, as a controller would record it,
    // and one in another namespace that names its UID (not about it: Events
    // are found by namespace and UID; the API server refuses an Event whose
    // object is in another namespace than its own).
    let admin = shared_with_operator().admin_client().await.unwrap();
    for (ns, reason) in [("team-a", "SeenByTheTest"), ("team-b", "ForgedElsewhere")] {
        let event: k8s_openapi::api::core::v1::Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "events-a.test", "namespace": ns},
            "involvedObject": {"apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "name": "events-a",
                               "namespace": ns, "uid": mine.metadata.uid},
            "reason": reason, "message": "an event for the detail page", "type": "Normal",
            "lastTimestamp": k8s_openapi::jiff::Timestamp::now().to_string(),
        }))
        .unwrap();
        Api::<k8s_openapi::api::core::v1::Event>::namespaced(admin.clone(), ns)
            .create(&Default::default(), &event)
            .await
            .unwrap();
    }
    // ivy may read Portico's Deployments in team-a, but not its Events.
    let rbac = [
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "ivy-deployments", "namespace": "team-a"},
            "rules": [{"apiGroups": ["portico.dev"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "ivy-deployments", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ivy-deployments"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ivy"}]}),
    ];
    let pp = kube::api::PatchParams::apply("ui-test").force();
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(admin.clone(), "team-a");
    roles
        .patch("ivy-deployments", &pp, &kube::api::Patch::Apply(&rbac[0]))
        .await
        .unwrap();
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(admin.clone(), "team-a");
    bindings
        .patch("ivy-deployments", &pp, &kube::api::Patch::Apply(&rbac[1]))
        .await
        .unwrap();

    let url = format!("{}/deployments/team-a/events-a", s.base);
    let part = format!("{url}/pods?fragment=1");
    let (detail, (part_status, part_html), pods_page) = {
        let _turn = ALICE_TURN.lock().await;
        let mut alice = Browser::new();
        alice.login(&s.base, "alice").await;
        // The Events come from the dashboard's watch, which may trail the create by a moment.
        let mut detail = String::new();
        for _ in 0..100 {
            detail = alice.get(&url).await.text().await.unwrap();
            if detail.contains("SeenByTheTest") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = alice.get(&part).await;
        let part = (r.status(), r.text().await.unwrap());
        let page = alice.get(&format!("{url}/pods")).await.text().await.unwrap();
        // The create form offers the namespaces where alice may create deployments.
        let form = alice
            .get(&format!("{}/catalog/webapp/new", s.base))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            form.contains(r#"<datalist id="namespaces-offered">"#) && form.contains(r#"<option value="team-a">"#),
            "{form}"
        );
        assert!(
            !form.contains(r#"<option value="team-b">"#),
            "alice may not create in team-b: {form}"
        );
        (detail, part, page)
    };
    assert!(
        detail.contains("SeenByTheTest") && detail.contains("an event for the detail page"),
        "{detail}"
    );
    assert!(!detail.contains("ForgedElsewhere"), "{detail}");
    assert!(
        detail
            .replace("&#x2f;", "/")
            .contains(r#"<a href="/terminals?namespace=team-a#open">Open a terminal in team-a</a>"#),
        "a terminal opens from the Deployment's namespace: {detail}"
    );
    assert!(
        detail.contains("Change parameters") && detail.contains("<h2>Delete</h2>"),
        "alice may change and delete it: {detail}"
    );
    // The same from a shell, and the object as she may read it (the page escapes '/').
    let shown = detail.replace("&#x2f;", "/");
    assert!(
        shown.contains("kubectl wait --for=condition=Ready deployments.portico.dev/events-a -n team-a")
            && shown.contains("kubectl delete deployments.portico.dev events-a -n team-a"),
        "{detail}"
    );
    assert!(
        detail.contains("name: events-a") && !detail.contains("managedFields"),
        "{detail}"
    );
    // Its pods come after the page, read as the user: a part the page places
    // (data-fragment), or a page of their own (the link without scripts).
    assert!(
        detail.contains("data-fragment=\"/deployments/team-a/events-a/pods?fragment=1\""),
        "{detail}"
    );
    assert_eq!(part_status, StatusCode::OK);
    assert!(
        !part_html.contains("<html") && (part_html.contains("No pods.") || part_html.contains("class=\"pods\"")),
        "{part_html}"
    );
    assert!(
        pods_page.contains("<h1>Pods of") && pods_page.contains("<nav"),
        "a page with the layout: {pods_page}"
    );

    let mut ivy = Browser::new();
    ivy.login(&s.base, "ivy").await;
    let r = ivy.get(&url).await;
    assert_eq!(r.status(), StatusCode::OK);
    let detail = r.text().await.unwrap();
    assert!(detail.contains("team-a/events-a"), "the page itself: {detail}");
    assert!(
        detail.contains("The events cannot be shown: you may not list Events in namespace team-a."),
        "{detail}"
    );
    assert!(!detail.contains("SeenByTheTest"), "{detail}");
    // ivy may only read: no action is offered, and the page says why.
    assert!(
        !detail.contains("Change parameters") && !detail.contains("<h2>Delete</h2>"),
        "{detail}"
    );
    assert!(
        detail.contains("You may read this deployment but not change or delete it"),
        "{detail}"
    );
    assert!(!detail.contains("kubectl delete"), "{detail}");
    let form = ivy
        .get(&format!("{}/catalog/webapp/new", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(!form.contains("namespaces-offered"), "ivy may create nowhere: {form}");
    // ivy may not list pods there: the part says so, in its place (once
    // the operator has recorded what owns its pods, which is then listed).
    let deployments: Api<portico::api::Deployment> = Api::namespaced(admin.clone(), "team-a");
    let applied = |d: Option<&portico::api::Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| !s.resources.is_empty())
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(deployments, "events-a", applied),
    )
    .await
    .expect("events-a applied")
    .unwrap();
    let part_html = ivy.get(&part).await.text().await.unwrap();
    assert!(part_html.contains("The pods cannot be shown"), "{part_html}");
    // Nor follow a log there: the stream says why in one event and ends.
    let r = ivy.get(&format!("{url}/logs/follow?pod=events-a-0")).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = r.text().await.unwrap();
    assert!(
        events.starts_with("event: stopped\ndata: ")
            && events.contains("Its pods cannot be read as you")
            && !events.contains("event: line"),
        "{events}"
    );
}

#[tokio::test]
async fn admins_filter_the_list_and_alice_updates_parameters_without_losing_changes() {
    let s = stack().await;
    create_as("alice", &["developers"], "team-a", "filter-a").await;
    create_as("bob", &["developers"], "team-b", "filter-b").await;
    let admin = shared_with_operator().admin_client().await.unwrap();
    // Applied into team-a by a GitOps controller: another identity, with edit there.
    create_as(
        "system:serviceaccount:flux-system:kustomize-controller",
        &["system:serviceaccounts", "system:masters"],
        "team-a",
        "filter-gitops",
    )
    .await;
    // carol (admin) filters by user and template; the watch cache may trail the create by a moment.
    let mut carol = Browser::new();
    carol.login(&s.base, "carol").await;
    let mut list = String::new();
    for _ in 0..100 {
        list = carol
            .get(&format!("{}/deployments?user=alice", s.base))
            .await
            .text()
            .await
            .unwrap();
        if list.contains("filter-a") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        list.contains("/deployments/team-a/filter-a") && !list.contains("filter-b"),
        "{list}"
    );
    let list = carol
        .get(&format!("{}/deployments?user=bob&template=webapp", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("filter-b") && !list.contains("filter-a"));
    let list = carol
        .get(&format!("{}/deployments?user=bob&template=postgresql", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("No deployment matches the filter"));
    // The search box: namespace or name, any case, for every user.
    let list = carol
        .get(&format!("{}/deployments?q=FILTER-B", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("filter-b") && !list.contains("filter-a") && list.contains(r#"name="q" value="FILTER-B""#),
        "{list}"
    );

    let _turn = ALICE_TURN.lock().await;
    let mut alice = Browser::new();
    alice.login(&s.base, "alice").await;
    // alice's list is what her RBAC lets her list (edit in team-a): hers and
    // the GitOps one, with their creators, and nothing of team-b.
    let list = alice
        .get(&format!("{}/deployments", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("/deployments/team-a/filter-a") && list.contains("/deployments/team-a/filter-gitops"),
        "{list}"
    );
    assert!(
        list.contains("system:serviceaccount:flux-system:kustomize-controller"),
        "{list}"
    );
    assert!(
        !list.contains("filter-b") && !list.contains(">bob<"),
        "nothing of team-b: {list}"
    );
    let list = alice
        .get(&format!("{}/deployments?user=bob", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("No deployment matches the filter") && !list.contains("filter-b"),
        "{list}"
    );
    let list = alice
        .get(&format!(
            "{}/deployments?user=system:serviceaccount:flux-system:kustomize-controller",
            s.base
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("filter-gitops") && !list.contains("/deployments/team-a/filter-a\""),
        "{list}"
    );
    // A user with no role anywhere lists nothing, not even what exists.
    let mut erin = Browser::new();
    erin.login(&s.base, "erin").await;
    let list = erin.get(&format!("{}/deployments", s.base)).await.text().await.unwrap();
    assert!(
        list.contains("No deployments yet") && !list.contains("filter-"),
        "{list}"
    );
    let detail = alice
        .get(&format!("{}/deployments/team-a/filter-a", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        detail.contains("Rendered manifests") && detail.contains("kind: Deployment"),
        "the rendered manifests are shown: {detail}"
    );

    // Update: a stale form is refused, the fixed parameter cannot be changed, a bad value is named.
    let form = alice
        .get(&format!("{}/deployments/team-a/filter-a/edit", s.base))
        .await
        .text()
        .await
        .unwrap();
    let token = csrf(&form);
    let marker = "name=\"__generation\" value=\"";
    let rv_at = form.find(marker).unwrap() + marker.len();
    let rv = form[rv_at..rv_at + form[rv_at..].find('"').unwrap()].to_string();
    let url = format!("{}/deployments/team-a/filter-a/edit", s.base);
    let r = alice
        .post_form(
            &url,
            &[
                ("csrf", &token),
                ("__generation", "999"),
                ("image", "nginx"),
                ("replicas", "3"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(html.contains("changed while you were editing"), "{html}");
    let r = alice
        .post_form(
            &url,
            &[
                ("csrf", &token),
                ("__generation", &rv),
                ("image", "nginx"),
                ("replicas", "99"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"error-replicas\""),
        "the error is by the field: {html}"
    );
    let r = alice
        .post_form(
            &url,
            &[
                ("csrf", &token),
                ("__generation", &rv),
                ("image", "docker.io/library/nginx:1.27"),
                ("replicas", "3"),
                ("port", "9999"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "back on the detail page");
    let d = Api::<portico::api::Deployment>::namespaced(admin.clone(), "team-a")
        .get("filter-a")
        .await
        .unwrap();
    let params = serde_json::to_value(&d.spec.parameters).unwrap();
    assert_eq!(params["replicas"], 3);
    assert!(
        params.get("port").is_none_or(|p| p == 80),
        "the fixed parameter kept its value: {params}"
    );
    let r = alice.post_form(&url, &[("__generation", &rv), ("replicas", "4")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    for (ns, name) in [("team-a", "filter-a"), ("team-b", "filter-b")] {
        Api::<portico::api::Deployment>::namespaced(admin.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
}

// Abuse cases of the dashboard (issue 11), one test per threat.

/// The newest live SessionClaim of `user`: (namespace, name).
async fn login_with_claim(b: &mut Browser, base: &str, user: &str) -> (String, String) {
    let before: std::collections::BTreeSet<String> =
        claims_of(user).await.iter().map(kube::ResourceExt::name_any).collect();
    b.login(base, user).await;
    let made: Vec<SessionClaim> = claims_of(user)
        .await
        .into_iter()
        .filter(|c| !before.contains(&kube::ResourceExt::name_any(c)))
        .collect();
    assert_eq!(made.len(), 1, "{user}'s login made one SessionClaim: {made:?}");
    (
        kube::ResourceExt::namespace(&made[0]).unwrap(),
        kube::ResourceExt::name_any(&made[0]),
    )
}

/// Reads a stream to its end, bounded: what it said, or a failure naming `what`.
async fn read_to_end(stream: &mut reqwest::Response, within: Duration, what: &str) -> String {
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = stream.chunk().await.unwrap_or(None) {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    if tokio::time::timeout(within, read).await.is_err() {
        panic!("{what}: the stream was still open after {within:?}");
    }
    text
}

#[tokio::test]
async fn a_non_admin_cannot_end_another_users_session_through_an_admin_route() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut alice = Browser::new();
    let (ns, name) = login_with_claim(&mut alice, &s.base, "alice").await;
    let mut bob = Browser::new();
    let page = bob.login(&s.base, "bob").await;
    // bob posts the admin form with his own, valid CSRF token.
    let r = bob
        .send(
            bob.http
                .post(format!("{}/admin/sessions/{ns}/{name}/revoke", s.base))
                .form(&[("csrf", csrf(&page).as_str())]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("This needs admin rights, and bob is in none of the admin groups"),
        "{text}"
    );
    let r = bob.get(&format!("{}/admin/sessions", s.base)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(text.contains("needs admin rights"), "{text}");
    assert!(
        text.contains("Log out") && !text.contains(r#"href="/login""#),
        "bob is logged in: {text}"
    );
    let api: Api<SessionClaim> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), &ns);
    let claim = api.get_opt(&name).await.unwrap().expect("alice's claim is still there");
    assert!(claim.metadata.deletion_timestamp.is_none(), "and not being deleted");
    let r = alice.send(alice.http.get(format!("{}/", s.base))).await;
    assert_eq!(r.status(), StatusCode::OK, "alice is still logged in");
    bob.logout(&s.base).await;
    alice.logout(&s.base).await;
}

#[tokio::test]
async fn a_live_update_stream_does_not_outlive_logout_or_revocation() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    // Logout: the stream the page opened before closes, after saying why.
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    let mut stream = b.send(b.http.get(format!("{}/events", s.base))).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains(": connected"));
    assert_eq!(b.logout(&s.base).await.status(), StatusCode::OK);
    let said = read_to_end(&mut stream, Duration::from_secs(10), "after logout").await;
    assert!(
        said.contains("event: ended") && said.contains("Your session has ended; log in again."),
        "{said}"
    );

    // Revocation (the SessionClaim deleted by an admin with kubectl): the same.
    let mut dave = Browser::new();
    let (ns, name) = login_with_claim(&mut dave, &s.base, "dave").await;
    let mut stream = dave.send(dave.http.get(format!("{}/events", s.base))).await;
    assert_eq!(stream.status(), StatusCode::OK);
    stream.chunk().await.unwrap().unwrap();
    let api: Api<SessionClaim> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), &ns);
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let said = read_to_end(&mut stream, Duration::from_secs(10), "after revocation").await;
    assert!(said.contains("event: ended"), "{said}");
}

#[tokio::test]
async fn another_site_cannot_log_the_browser_in_through_the_development_login() {
    // It logs alice in and out: other tests count her sessions.
    let _turn = ALICE_TURN.lock().await;
    let s = dev_stack().await;
    let url = format!("{}/dev-login", s.base);
    // A form on another site, posted by the victim's browser: refused by its Origin.
    let mut victim = Browser::new();
    let r = victim
        .send(
            victim
                .http
                .post(&url)
                .header("origin", "https://evil.example")
                .form(&[("user", "carol")]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("This form was sent from another site (https:&#x2f;&#x2f;evil.example)"),
        "{text}"
    );
    // Without an Origin and without the token: refused by the token.
    let r = victim.send(victim.http.post(&url).form(&[("user", "carol")])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text().await.unwrap().contains("CSRF token is missing or wrong"),
        "no token"
    );
    // The attacker's own token is useless without the victim's pre-session cookie.
    let mut attacker = Browser::new();
    let theirs = csrf(&attacker.get(&format!("{}/login", s.base)).await.text().await.unwrap());
    let r = victim
        .send(victim.http.post(&url).form(&[("user", "carol"), ("csrf", &theirs)]))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!victim.cookies.contains_key("__Host-portico"), "no session made");

    // The dashboard's own login page still logs in.
    let page = victim.get(&format!("{}/login", s.base)).await.text().await.unwrap();
    let r = victim
        .send(
            victim
                .http
                .post(&url)
                .header("origin", &s.base)
                .form(&[("user", "alice"), ("csrf", &csrf(&page))]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let catalog = victim.get(&format!("{}/", s.base)).await.text().await.unwrap();
    assert!(catalog.contains("<span class=\"who\">alice</span>"), "{catalog}");
    assert_eq!(victim.logout(&s.base).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_attempts_not_page_views_are_limited_per_client_behind_the_proxy() {
    let s = dev_stack().await;
    let b = Browser::new();
    let from = |client: &str, req: reqwest::RequestBuilder| req.header("x-forwarded-for", client.to_string());
    // Page views are not attempts.
    for _ in 0..60 {
        let r = from("203.0.113.9", b.http.get(format!("{}/login", s.base)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "viewing the login page is never limited");
    }
    // Attempts are, per client as the trusted proxy names it.
    let attempt = |client: &'static str| {
        from(client, b.http.post(format!("{}/dev-login", s.base)))
            .form(&[("user", "alice"), ("csrf", "wrong")])
            .send()
    };
    let mut allowed = 0;
    let refused = loop {
        let r = attempt("203.0.113.10").await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break r;
        }
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "a wrong token, refused");
        allowed += 1;
        assert!(allowed <= 100, "no limit after {allowed} attempts");
    };
    assert!(allowed >= 30, "30 attempts a minute are allowed, got {allowed}");
    assert!(refused.headers().contains_key("retry-after"));
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("Too many login attempts from your address (203.0.113.10). Wait"),
        "{text}"
    );
    let r = attempt("203.0.113.11").await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "another client behind the same proxy is not limited"
    );
}

#[tokio::test]
async fn a_login_refused_at_the_session_limit_offers_the_users_own_sessions_to_end() {
    let s = stack().await;
    let sessions = portico::dev::demo::SESSIONS_NAMESPACE;
    let claim = |name: &str| -> SessionClaim {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim",
            "metadata": {"name": name}, "spec": {"profile": "developer"},
        }))
        .unwrap()
    };
    // hank holds the profile's maximum (10), claimed with kubectl; bob holds one.
    let hank: Api<SessionClaim> = Api::namespaced(
        shared_with_operator().client_as("hank", &["developers"]).await.unwrap(),
        sessions,
    );
    let names: Vec<String> = (0..10).map(|i| format!("hank-cli-{i}")).collect();
    for name in &names {
        hank.create(&Default::default(), &claim(name)).await.unwrap();
    }
    let bob: Api<SessionClaim> = Api::namespaced(
        shared_with_operator().client_as("bob", &["developers"]).await.unwrap(),
        sessions,
    );
    bob.create(&Default::default(), &claim("bobs-cli")).await.unwrap();
    let admin: Api<SessionClaim> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), sessions);
    for name in names.iter().map(String::as_str).chain(["bobs-cli"]) {
        common::wait::present(&admin, name, "its user in status", |c: &SessionClaim| {
            c.status.as_ref().is_some_and(|s| s.user.is_some())
        })
        .await;
    }

    let mut b = Browser::new();
    // The dashboard's claims cache may trail the API server by a moment.
    let mut page = String::new();
    for _ in 0..50 {
        page = b.login(&s.base, "hank").await;
        if names.iter().all(|n| page.contains(n.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("Too many sessions") && page.contains("already has 10 active sessions"),
        "{page}"
    );
    assert!(
        names.iter().all(|n| page.contains(n.as_str())),
        "every one of hank's: {page}"
    );
    assert!(!page.contains("bobs-cli"), "nobody else's: {page}");
    let token = csrf(&page);
    let end = format!("{}/login/end-session", s.base);
    let http = b.http.clone();
    let post = |claim: &str| {
        http.post(&end)
            .header("origin", &s.base)
            .form(&[("csrf", token.as_str()), ("claim", claim)])
    };
    // Another user's session is not offered, and cannot be ended here.
    let r = b.send(post("bobs-cli")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("not one of your active sessions"));
    assert!(
        admin.get_opt("bobs-cli").await.unwrap().is_some(),
        "bob's session is untouched"
    );
    // Without the refused login's own cookie, nothing is ended.
    let mut other = Browser::new();
    for (k, v) in &b.cookies {
        if k != "__Host-portico-pending" {
            other.cookies.insert(k.clone(), v.clone());
        }
    }
    let r = other
        .send(
            other
                .http
                .post(&end)
                .header("origin", &s.base)
                .form(&[("csrf", token.as_str()), ("claim", "hank-cli-0")]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(admin.get_opt("hank-cli-0").await.unwrap().is_some());
    // Ending the oldest logs hank in.
    let r = b.send(post("hank-cli-0")).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(r.headers()["location"], "/");
    assert!(
        !b.cookies.contains_key("__Host-portico-pending"),
        "the login that went on removed the pending identity"
    );
    let home = b.get(&format!("{}/", s.base)).await.text().await.unwrap();
    assert!(home.contains("<span class=\"who\">hank</span>"), "{home}");
    common::wait::gone(&admin, "hank-cli-0").await;
    for name in names.iter().skip(1).map(String::as_str).chain(["bobs-cli"]) {
        admin.delete(name, &DeleteParams::default()).await.unwrap();
    }
    b.logout(&s.base).await;
}

#[tokio::test]
async fn the_provider_cannot_name_a_user_kubernetes_reserves_nor_an_unverified_email() {
    let s = stack().await;
    // sysop is in the group system:masters at the provider: the dashboard,
    // which may impersonate groups, must not act as it.
    let mut b = Browser::new();
    let page = b.login(&s.base, "sysop").await;
    assert!(
        page.contains("Login failed") && page.contains("system:masters") && page.contains("oidc.groupsPrefix"),
        "{page}"
    );
    assert!(claims_of("sysop").await.is_empty(), "no session was made");
    assert!(!b.cookies.contains_key("__Host-portico"), "{:?}", b.cookies.keys());

    // Where users are named by e-mail, only a verified one counts.
    let dex = dex_stack().await;
    let mut b = Browser::new();
    let page = b.login(&dex.base, "mallory").await;
    assert!(
        page.contains("Login failed")
            && page.contains("has not verified the e-mail address")
            && page.contains("mallory@example.com"),
        "{page}"
    );
    assert!(claims_of("mallory@example.com").await.is_empty());
    assert!(!b.cookies.contains_key("__Host-portico"), "{:?}", b.cookies.keys());
}

#[tokio::test]
async fn a_user_disabled_at_the_provider_loses_the_dashboard_at_the_next_refresh() {
    let s = stack().await;
    let dex = dex_stack().await;
    let mut b = Browser::new();
    let home = b.login(&dex.base, "kim").await;
    let made = claims_of("kim@example.com").await;
    assert_eq!(
        made.len(),
        1,
        "kim's login made one SessionClaim, as kim@example.com: {home}"
    );
    let (ns, claim) = (
        kube::ResourceExt::namespace(&made[0]).unwrap(),
        kube::ResourceExt::name_any(&made[0]),
    );
    assert!(
        home.contains("<span class=\"who\">kim@example.com</span>"),
        "named by e-mail: {home}"
    );
    // Without its provider cookie the session counts for nothing: none
    // escapes the refresh by dropping it.
    let mut stripped = Browser::new();
    stripped.cookies = b.cookies.clone();
    assert!(
        stripped.cookies.remove("__Host-portico-provider").is_some(),
        "the provider cookie"
    );
    let r = stripped.send(stripped.http.get(format!("{}/", dex.base))).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a session without its provider cookie"
    );
    assert_eq!(r.headers()["location"], "/login");

    // Every second the session is refreshed, and the provider rotates the
    // refresh token (and refuses a spent one): the browser's requests get
    // each new one; three in a row, then again after an idle spell in which
    // the dashboard refreshed on its own.
    let mut seen = vec![b.cookies["__Host-portico-provider"].clone()];
    let rotated = tokio::time::timeout(Duration::from_secs(60), async {
        while seen.len() < 4 {
            let r = b.send(b.http.get(format!("{}/account", dex.base))).await;
            assert_eq!(r.status(), StatusCode::OK, "refreshes that succeed keep the session");
            let now = &b.cookies["__Host-portico-provider"];
            if now != seen.last().unwrap() {
                seen.push(now.clone());
            }
            if seen.len() == 3 {
                // Idle: no request of kim's for three refresh intervals.
                tokio::time::sleep(Duration::from_secs(3)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    })
    .await;
    assert!(
        rotated.is_ok(),
        "refreshed tokens reached the browser {} times",
        seen.len() - 1
    );
    let api: Api<SessionClaim> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), &ns);
    assert!(api.get_opt(&claim).await.unwrap().is_some(), "the session lives on");

    // kim is disabled at the provider: the next refresh fails and the
    // session ends (its claim deleted as kim), without any request of hers.
    let r = reqwest::Client::new()
        .post(format!("{}/test/disable/kim", s.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    common::wait::gone(&api, &claim).await;
    let r = b.send(b.http.get(format!("{}/", dex.base))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "back to login");
    assert_eq!(r.headers()["location"], "/login");
}

#[tokio::test]
async fn who_has_access_lists_bindings_in_words_and_portico_grants_while_they_last() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use kube::api::PostParams;
    let s = stack().await;
    let cp = shared_with_operator();
    let admin = cp.admin_client().await.unwrap();
    // lee reads RBAC and Portico's objects everywhere; zed may read pods in
    // team-a through a Role made with kubectl's rights.
    let reader: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "portico-test-access-reader"},
        "rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "clusterrolebindings", "roles", "clusterroles"], "verbs": ["get", "list"]},
            {"apiGroups": ["portico.dev"], "resources": ["terminals", "sessionclaims"], "verbs": ["get", "list"]},
        ],
    }))
    .unwrap();
    let reader_binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "portico-test-access-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "portico-test-access-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "lee"}],
    }))
    .unwrap();
    let pod_reader: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "access-pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    }))
    .unwrap();
    let zed: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "access-zed"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "access-pod-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "zed"}],
    }))
    .unwrap();
    let pp = PostParams::default();
    Api::<ClusterRole>::all(admin.clone())
        .create(&pp, &reader)
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&pp, &reader_binding)
        .await
        .unwrap();
    let roles: Api<Role> = Api::namespaced(admin.clone(), "team-a");
    roles.create(&pp, &pod_reader).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-a");
    bindings.create(&pp, &zed).await.unwrap();

    // alice's Terminal binds edit in team-a for its access service account.
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let terminals: Api<portico::api::Terminal> = Api::namespaced(alice, "team-a");
    let t = terminals
        .create(
            &pp,
            &common::fixtures::terminal_in("access-t", "team-a", "team-a", "edit"),
        )
        .await
        .unwrap();
    let uid = kube::ResourceExt::uid(&t).unwrap();
    let made_for_t = |bs: &[RoleBinding]| {
        bs.iter()
            .find(|b| {
                b.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(portico::api::keys::TERMINAL_UID_LABEL))
                    == Some(&uid)
                    && b.role_ref.name == "edit"
            })
            .map(kube::ResourceExt::name_any)
    };
    let granted = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(name) = made_for_t(&bindings.list(&Default::default()).await.unwrap().items) {
                return name;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the Terminal's binding in team-a");

    let mut b = Browser::new();
    b.login(&s.base, "lee").await;
    let index = b.get(&format!("{}/access", s.base)).await.text().await.unwrap();
    assert!(
        index.contains("href=\"&#x2f;access&#x2f;team-a\"") || index.contains("href=\"/access/team-a\""),
        "{index}"
    );
    let page = b.get(&format!("{}/access/team-a", s.base)).await.text().await.unwrap();
    let page = page.replace("&#x2f;", "/");
    for expected in [
        "<h1>Who has access to team-a</h1>",
        "custom: get, list on pods",
        "edit: read and change most objects, not roles or bindings",
        "portico-admins",
        "cluster-wide",
        "<a href=\"/terminals/team-a/access-t\">Terminal team-a/access-t</a> by alice",
        granted.as_str(),
    ] {
        assert!(page.contains(expected), "{expected:?} missing: {page}");
    }
    assert!(
        page.contains("of Kubernetes' own bindings (names beginning with system:) are hidden")
            && !page.contains("system:kube-scheduler"),
        "{page}"
    );
    let all = b
        .get(&format!("{}/access/team-a?system=1", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        all.contains("system:kube-scheduler") && all.contains("access-zed"),
        "{all}"
    );
    let zed_row = page
        .lines()
        .skip_while(|l| !l.contains("\">zed</td>"))
        .take(2)
        .collect::<String>();
    assert!(zed_row.contains("Role/access-pod-reader"), "{zed_row}");

    let r = b.get(&format!("{}/access/team-a?format=csv", s.base)).await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("kind,subject,role,allows,binding,cluster_wide,granted_by,creator,ends\n"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("User,zed,Role/access-pod-reader,")),
        "{text}"
    );
    let r = b.get(&format!("{}/access/team-a?format=json", s.base)).await;
    let rows: Vec<serde_json::Value> = r.json().await.unwrap();
    let t_row = rows
        .iter()
        .find(|r| r["binding"] == granted.as_str())
        .expect("the Terminal's binding");
    assert_eq!(t_row["granted_by"]["creator"], "alice");
    assert!(t_row["granted_by"]["ends"].is_string(), "{t_row}");
    // In Chromium, in both themes and at phone width.
    let artifacts = screenshots();
    expect_browser_ok(browser_script(
        "access.mjs",
        &[s.base.as_str(), "lee", "team-a", artifacts.to_str().unwrap()],
    ))
    .await;
    let r = b.get(&format!("{}/access/team-a?format=xml", s.base)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("use csv or json"));

    // alice (edit) may not list RoleBindings: she is told so, and offered nothing.
    let _turn = ALICE_TURN.lock().await;
    let mut a = Browser::new();
    a.login(&s.base, "alice").await;
    let r = a.get(&format!("{}/access/team-a", s.base)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("You may not see who has access to team-a") && !text.contains("access-zed"),
        "{text}"
    );
    let index = a.get(&format!("{}/access", s.base)).await.text().await.unwrap();
    assert!(
        index.contains("There is no namespace where you may list RoleBindings"),
        "{index}"
    );

    // What alice can reach, asked by carol (admin in every namespace) for
    // alice and the groups her session recorded: the API server's answers.
    let mut c = Browser::new();
    c.login(&s.base, "carol").await;
    let page = c
        .get(&format!("{}/access?user=alice", s.base))
        .await
        .text()
        .await
        .unwrap();
    let page = page.replace("&#x2f;", "/");
    assert!(
        page.contains("What alice can reach") && page.contains("in the groups developers"),
        "{page}"
    );
    let team_a = page.lines().find(|l| l.contains(">team-a</a>")).unwrap_or_default();
    assert!(
        team_a.contains("edits: may create and change workloads")
            && team_a.contains("<td data-label=\"Terminals\">1</td>"),
        "{page}"
    );
    assert!(!page.contains(">team-b</a>"), "alice has nothing in team-b: {page}");
    let r = c.get(&format!("{}/access?user=alice&format=json", s.base)).await;
    let answer: serde_json::Value = r.json().await.unwrap();
    let a_row = answer["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == "team-a")
        .cloned()
        .expect("team-a");
    assert_eq!(
        (a_row["level"].as_str(), a_row["terminals"].as_u64()),
        (Some("edit"), Some(1))
    );
    // Her recent activity: the Terminal she made and, for carol (an admin),
    // the login she holds now; newest first.
    let activity = answer["activity"].as_array().unwrap();
    let made = activity
        .iter()
        .find(|a| a["object"] == "team-a/access-t")
        .expect("the Terminal she made");
    assert_eq!(made["what"], "made the Terminal");
    assert_eq!(made["link"], "/terminals/team-a/access-t");
    assert!(
        activity.iter().any(|a| a["what"] == "logged in: the session"
            && a["object"].as_str().unwrap().starts_with("portico-sessions/ui-")),
        "{answer}"
    );
    let times: Vec<k8s_openapi::jiff::Timestamp> = activity
        .iter()
        .map(|a| a["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let page = c
        .get(&format!("{}/access?user=alice", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Recent activity") && page.contains("made the Terminal"),
        "{page}"
    );
    // With a group given, the answers follow it: portico-admins administer team-b.
    let page = c
        .get(&format!("{}/access?user=alice&groups=portico-admins", s.base))
        .await
        .text()
        .await
        .unwrap();
    let team_b = page.lines().find(|l| l.contains(">team-b</a>")).unwrap_or_default();
    assert!(team_b.contains("administers: may give others access"), "{page}");
    let r = c.get(&format!("{}/access?user=", s.base)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    c.logout(&s.base).await;
    // lee may read bindings but not ask the API server about others.
    let r = b.get(&format!("{}/access?user=alice", s.base)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("You may not ask the API server what alice may do")
    );
    a.logout(&s.base).await;

    // The Terminal ends: its binding goes, and the view says so.
    let admin_terminals: Api<portico::api::Terminal> = Api::namespaced(admin.clone(), "team-a");
    admin_terminals
        .delete("access-t", &DeleteParams::default())
        .await
        .unwrap();
    common::wait::gone(&admin_terminals, "access-t").await;
    // Its bindings go with it (those in its host namespace by their owner).
    tokio::time::timeout(Duration::from_secs(60), async {
        while bindings.list(&Default::default()).await.unwrap().items.iter().any(|b| {
            b.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(portico::api::keys::TERMINAL_UID_LABEL))
                == Some(&uid)
        }) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the Terminal's bindings deleted");
    let page = b.get(&format!("{}/access/team-a", s.base)).await.text().await.unwrap();
    assert!(!page.contains("access-t<") && !page.contains(&granted), "{page}");
    b.logout(&s.base).await;

    bindings.delete("access-zed", &DeleteParams::default()).await.unwrap();
    roles
        .delete("access-pod-reader", &DeleteParams::default())
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .delete("portico-test-access-reader", &DeleteParams::default())
        .await
        .unwrap();
    Api::<ClusterRole>::all(admin)
        .delete("portico-test-access-reader", &DeleteParams::default())
        .await
        .unwrap();
}

/// Where the API server trusts the login provider: a user takes kubectl
/// access as themselves from the account page — a kubeconfig that logs in
/// through kubectl's oidc-login plugin (built from its Go module, driving
/// Chromium as a user's browser) and the login's own ID token for one
/// `kubectl --token` — and the dashboard acts with the user's ID token; the
/// API server sees the user every time, never an impersonation, and gives
/// the same answers as through the impersonating dashboard.
#[tokio::test]
async fn dave_uses_kubectl_as_himself_and_the_dashboard_acts_with_his_own_token() {
    let s = kubectl_stack().await;
    let cp = shared_with_operator();
    let ns = common::test_namespace("as-dave").await;
    common::kubectl_ok(&[
        "create",
        "rolebinding",
        "dave-admin",
        "--clusterrole=admin",
        "--user=dave",
        "-n",
        &ns,
    ]);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let flow = browser_script(
        "kubectl_login.mjs",
        &[&s.base, "dave", dir.to_str().unwrap(), screenshots().to_str().unwrap()],
    );
    expect_browser_ok(flow).await;

    // The downloaded kubeconfig, as it is: its plugin opens "the browser"
    // (the first xdg-open on PATH: Chromium, logging in as dave).
    let bin = cp.binaries().dir().to_path_buf();
    let shim = dir.join("shim");
    std::fs::create_dir(&shim).unwrap();
    let opener = shim.join("xdg-open");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\necho browser opened >>{log}\nexec node {} \"$1\" dave >>{log} 2>&1\n",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/kubelogin_browser.mjs")
                .display(),
            log = dir.join("browser.log").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        shim.display(),
        bin.display(),
        std::env::var("PATH").unwrap()
    );
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    let kubectl = |args: &[&str]| {
        std::process::Command::new(bin.join("kubectl"))
            .arg(format!("--kubeconfig={}", dir.join("kubeconfig").display()))
            .args(args)
            .env("PATH", &path)
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let whoami = kubectl(&["auth", "whoami", "-o", "json"]);
    assert!(
        whoami.status.success(),
        "kubectl with the login kubeconfig: {}\nbrowser: {}",
        String::from_utf8_lossy(&whoami.stderr),
        std::fs::read_to_string(dir.join("browser.log")).unwrap_or_default()
    );
    let who: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "dave", "{who}");
    assert!(
        who["status"]["userInfo"]["groups"]
            .as_array()
            .unwrap()
            .contains(&"developers".into()),
        "{who}"
    );
    let mine = kubectl(&["create", "configmap", "made-by-dave", "-n", &ns]);
    assert!(mine.status.success(), "{}", String::from_utf8_lossy(&mine.stderr));
    let elsewhere = kubectl(&["get", "configmaps", "-n", "team-a"]);
    assert!(!elsewhere.status.success());
    let refusal = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        refusal.contains(r#"User "dave" cannot list resource "configmaps""#),
        "{refusal}"
    );
    // The plugin keeps its token: a second command opens no browser.
    let again = kubectl(&["get", "configmap", "made-by-dave", "-n", &ns]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let opened = std::fs::read_to_string(dir.join("browser.log")).unwrap();
    assert_eq!(opened.matches("browser opened").count(), 1, "{opened}");

    // The one-off command with the login's ID token (issued to the
    // dashboard's client, which the API server accepts as an audience).
    let line = std::fs::read_to_string(dir.join("token-command.txt")).unwrap();
    let args: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(args[0], "kubectl", "{line}");
    let token = args.iter().find_map(|a| a.strip_prefix("--token=")).unwrap();
    use base64::Engine;
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["aud"], "portico", "the dashboard's own ID token: {payload}");
    let empty_home = dir.join("empty-home");
    std::fs::create_dir(&empty_home).unwrap();
    let once = std::process::Command::new(bin.join("kubectl"))
        .args(&args[1..])
        .current_dir(dir)
        .env("HOME", &empty_home)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert!(String::from_utf8_lossy(&once.stdout).contains("dave"));

    // The API server saw dave himself: the plugin's token and the
    // dashboard's requests (the login's SessionClaim, made with his token).
    let events = cp.audit_events();
    let as_dave = |resource: &str, verb: &str, namespace: &str| {
        events.iter().any(|e| {
            e.user.username == "dave"
                && e.impersonated_user.is_none()
                && e.verb == verb
                && e.object_ref
                    .as_ref()
                    .is_some_and(|o| o.resource == resource && o.namespace == namespace)
        })
    };
    assert!(as_dave("configmaps", "create", &ns), "kubectl's create, as dave");
    assert!(
        as_dave("sessionclaims", "create", portico::dev::demo::SESSIONS_NAMESPACE),
        "the dashboard started dave's session with his own token"
    );
    // Nothing about his namespace or the token dashboard's session of his
    // was done by impersonating him. (Other tests log dave in to the
    // impersonating dashboard, and the operator asks the API server what he
    // may do in SelfSubjectRulesReviews made as him.)
    let his_session: Vec<&str> = events
        .iter()
        .filter(|e| e.user.username == "dave" && e.impersonated_user.is_none() && e.verb == "create")
        .filter_map(|e| e.object_ref.as_ref().filter(|o| o.resource == "sessionclaims"))
        .map(|o| o.name.as_str())
        .collect();
    assert!(!his_session.is_empty());
    let impersonations: Vec<_> = events
        .iter()
        .filter(|e| e.impersonated_user.as_ref().is_some_and(|u| u.username == "dave"))
        .filter(|e| !e.request_uri.ends_with("/selfsubjectrulesreviews"))
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.namespace == ns || his_session.contains(&o.name.as_str()))
        })
        .map(|e| (&e.user.username, &e.verb, &e.request_uri))
        .collect();
    assert!(
        impersonations.is_empty(),
        "nobody acted as dave by impersonation: {impersonations:?}"
    );

    // The login's first ID token expires (the test provider's last
    // ID_TOKEN_TTL seconds); the token dashboard goes on acting as dave
    // with those its refreshes brought.
    let first_ends = payload["exp"].as_i64().unwrap();
    assert!(first_ends <= k8s_openapi::jiff::Timestamp::now().as_second() + ID_TOKEN_TTL);
    while k8s_openapi::jiff::Timestamp::now().as_second() <= first_ends {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Both dashboards give dave the same answers: his namespace's access
    // page (he administers it), and a refusal for team-a.
    let mut with_token = Browser::new();
    for line in std::fs::read_to_string(dir.join("cookies.txt")).unwrap().lines() {
        let (k, v) = line.split_once('=').unwrap();
        with_token.cookies.insert(k.into(), v.into());
    }
    let imp = stack().await;
    let mut impersonated = Browser::new();
    impersonated.login(&imp.base, "dave").await;
    // A dashboard whose API server's trust is not configured offers none of it.
    let account = impersonated
        .get(&format!("{}/account", imp.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(!account.contains("kubectl as yourself"), "{account}");
    for path in ["/account/kubeconfig-login", "/account/token"] {
        let r = impersonated.get(&format!("{}{path}", imp.base)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains("apiServer."), "{path} says what to configure: {text}");
    }
    for (b, base) in [(&mut with_token, &s.base), (&mut impersonated, &imp.base)] {
        let page = b.get(&format!("{base}/access/{ns}")).await;
        assert_eq!(page.status(), StatusCode::OK, "{base}");
        let html = page.text().await.unwrap();
        assert!(html.contains("dave-admin"), "{base}: {html}");
        let refused = b.get(&format!("{base}/access/team-a")).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{base}");
    }
    assert!(
        cp.audit_events().iter().any(|e| e.user.username == "dave"
            && e.impersonated_user.is_none()
            && e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource == "rolebindings" && o.namespace == ns)),
        "the token dashboard read the bindings as dave"
    );

    // Logging out of the token dashboard ends the session (its claim
    // deleted with dave's token) and sends the browser to the provider's
    // logout without the ID token in the URL: it is a credential here.
    let claims: Api<SessionClaim> =
        Api::namespaced(cp.admin_client().await.unwrap(), portico::dev::demo::SESSIONS_NAMESPACE);
    let home = with_token.get(&format!("{}/", s.base)).await.text().await.unwrap();
    let r = with_token
        .send(
            with_token
                .http
                .post(format!("{}/logout", s.base))
                .form(&[("csrf", csrf(&home))]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with(&common::trusted_issuer().url) && !to.contains("id_token_hint"),
        "{to}"
    );
    for name in &his_session {
        common::wait::gone(&claims, name).await;
    }
}

/// One search over every kind: templates the user's groups may use, and
/// Deployments and Terminals where the user may list them — what the lists
/// show them, and nothing of other namespaces.
#[tokio::test]
async fn the_search_finds_templates_and_objects_the_user_may_see_and_nothing_else() {
    use kube::api::PostParams;
    let s = stack().await;
    let cp = shared_with_operator();
    let name = format!("needle-{}", std::process::id());
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let terminals: Api<portico::api::Terminal> = Api::namespaced(alice, "team-a");
    terminals
        .create(
            &PostParams::default(),
            &common::fixtures::terminal_in(&name, "team-a", "team-a", "view"),
        )
        .await
        .unwrap();
    let link = format!("href=\"/terminals/team-a/{name}\"");
    let hits = |html: &str| html.replace("&#x2f;", "/");
    // A template for portico-admins only: carol's group, not bob's.
    let ops_only = format!("search-ops-{}", std::process::id());
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": ops_only, "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": "displayName: Needle ops tool\nallowedGroups: [portico-admins]\nmanifests: ''\n"}
    }))
    .unwrap();
    portico::install::apply(&cp.admin_client().await.unwrap(), &cm)
        .await
        .unwrap();

    // carol (an admin) finds it by part of its name in any case, and the
    // catalog's PostgreSQL template by its title.
    let mut c = Browser::new();
    c.login(&s.base, "carol").await;
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let page = hits(
                &c.get(&format!("{}/search?q=NEEDLE-{}", s.base, std::process::id()))
                    .await
                    .text()
                    .await
                    .unwrap(),
            );
            if page.contains(&link) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the Terminal appears in carol's search once the watch has it");
    assert!(found.contains("Terminals <span class=\"hint\">(1)</span>"), "{found}");
    // carol's group may use the admins' template: she finds it once the
    // catalog's watch has it.
    let template_link = format!("href=\"/catalog/{ops_only}/new\"");
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let page = c
                .get(&format!("{}/search?q=needle+ops", s.base))
                .await
                .text()
                .await
                .unwrap();
            if hits(&page).contains(&template_link) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the admins' template appears in carol's search");
    // An empty search shows only the form; one too long is refused in words.
    let empty = c.get(&format!("{}/search?q=+", s.base)).await.text().await.unwrap();
    assert!(
        empty.contains("<h1>Search</h1>") && !empty.contains("id=\"hits-terminals\""),
        "{empty}"
    );
    let long = c.get(&format!("{}/search?q={}", s.base, "x".repeat(101))).await;
    assert_eq!(long.status(), StatusCode::BAD_REQUEST);
    assert!(long.text().await.unwrap().contains("at most 100 characters"));
    c.logout(&s.base).await;

    // bob (team-b only) finds nothing of team-a.
    let mut b = Browser::new();
    b.login(&s.base, "bob").await;
    let page = hits(
        &b.get(&format!("{}/search?q=needle", s.base))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(!page.contains(&link), "{page}");
    assert!(page.contains("None matches where you may list them"), "{page}");
    // ... nor the template his groups may not use.
    let ops = hits(
        &b.get(&format!("{}/search?q=needle+ops", s.base))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        !ops.contains(&ops_only) && ops.contains("No template you may use matches"),
        "{ops}"
    );
    b.logout(&s.base).await;

    terminals.delete(&name, &DeleteParams::default()).await.unwrap();
    let catalog: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cp.admin_client().await.unwrap(), portico::dev::CATALOG_NAMESPACE);
    catalog.delete(&ops_only, &DeleteParams::default()).await.unwrap();
}
