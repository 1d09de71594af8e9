//! The dashboard's terminal pages against the real control plane, operator,
//! OpenID Connect provider and Chromium: shortcuts (verified and unverified),
//! a Terminal created as the user, the WebSocket proxy attaching with the
//! Terminal's attach token (read back from the API server's audit log) to a
//! shell the node really runs (also from the team's own shortcut), the clear
//! message when no container runs (an image that is nowhere), heartbeats,
//! delete, refusals, and an attached shell told why it ended when its
//! Terminal expires.

mod common;

use std::time::Duration;

use common::{shared_with_operator, ui::*};
use futures::StreamExt;
use kube::{Api, ResourceExt, runtime::wait::await_condition};
use portico::api::{Terminal, keys};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message;

async fn admin_terminals(ns: &str) -> Api<Terminal> {
    Api::namespaced(shared_with_operator().admin_client().await.unwrap(), ns)
}

/// Waits until the operator has made the Terminal's pod and recorded it.
async fn wait_for_pod(ns: &str, name: &str) -> Terminal {
    let has_pod = |t: &Terminal| t.status.as_ref().is_some_and(|s| s.pod_name.is_some());
    common::wait::present(&admin_terminals(ns).await, name, "its pod", has_pod).await
}

async fn wait_ready(ns: &str, name: &str) {
    let ready = |t: &Terminal| t.status.as_ref().is_some_and(|s| common::wait::ready(&s.conditions));
    common::wait::present(&admin_terminals(ns).await, name, "Ready", ready).await;
}

/// Opens the terminal WebSocket with the browser's cookies and `origin`;
/// returns the text frames until the server closes, or the refusal status.
async fn attach(b: &Browser, base: &str, key: &str, origin: &str) -> Result<Vec<String>, u16> {
    let mut ws = match open_socket(b, base, key, origin).await {
        Ok(ws) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    };
    let mut texts = vec![];
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Text(t) => texts.push(t.to_string()),
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the server closes the socket");
    let _ = ws.close(None).await;
    Ok(texts)
}

#[tokio::test]
async fn alice_opens_a_terminal_from_a_shortcut_and_the_proxy_attaches_with_the_attach_token() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    let page = b.get(&format!("{}/terminals", s.base)).await.text().await.unwrap();
    assert!(
        page.contains("Team shell") && page.contains("Read-only shell"),
        "configured shortcuts"
    );
    assert!(
        page.contains("Debug toolbox") && page.contains("not from the administrators"),
        "the ConfigMap shortcut in team-a, with its warning"
    );
    // Asked for team-a (from a Deployment's page): the forms start there,
    // and each shortcut shows the Terminal it would create.
    let there = b
        .get(&format!("{}/terminals?namespace=team-a", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        there.contains(r#"<input name="namespace" required value="team-a""#),
        "{there}"
    );
    let definition = there
        .split("<summary>Definition</summary><pre>")
        .nth(1)
        .and_then(|d| d.split("</pre>").next())
        .unwrap_or_default();
    assert!(
        definition.contains("kind: Terminal")
            && definition.contains("namespace: team-a")
            && definition.contains("roleRef:"),
        "{definition}"
    );
    // Where alice may not open terminals, she is told so and nothing is filled in.
    let refused = b
        .get(&format!("{}/terminals?namespace=kube-system", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("You may not open terminals in kube-system") && !refused.contains(r#"value="kube-system""#),
        "{refused}"
    );
    let token = csrf(&page);
    let key = open(
        &mut b,
        &s.base,
        &[("csrf", &token), ("shortcut", "config/shell"), ("namespace", "team-a")],
    )
    .await;
    let (ns, name) = key.split_once('/').unwrap();
    // The list's search finds it by its name (once the dashboard's watch
    // has it), and nothing for another.
    let link = format!(r#"<a href="/terminals/{ns}/{name}">"#);
    let mut found = String::new();
    for _ in 0..100 {
        found = b
            .get(&format!("{}/terminals?q={}", s.base, name.to_uppercase()))
            .await
            .text()
            .await
            .unwrap();
        if found.contains(&link) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found.contains(&link), "{found}");
    let none = b
        .get(&format!("{}/terminals?q=no-such-terminal", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(none.contains("No terminal matches the search"), "{none}");
    let t = wait_for_pod(ns, name).await;
    let creator = portico::creator::Creator::from_annotations(t.metadata.annotations.as_ref()).unwrap();
    assert_eq!(creator.user, "alice", "created as alice");
    assert_eq!(t.annotations()[keys::SHORTCUT], "Team shell");

    // Another origin, or no session, gets no socket.
    assert_eq!(attach(&b, &s.base, &key, "http://evil.example").await, Err(403));
    assert_eq!(attach(&Browser::new(), &s.base, &key, &s.base).await, Err(401));

    // The kubelet runs the pod; once the Terminal is Ready the proxy requests
    // the attach token as alice, attaches with it, and the shell answers.
    let st = t.status.clone().unwrap();
    let (host_ns, pod, sa) = (
        st.host_namespace.unwrap(),
        st.pod_name.unwrap(),
        st.attach_service_account_name.unwrap(),
    );
    wait_ready(ns, name).await;
    let html = b
        .get(&format!("{}/terminals/{key}", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"terminal\""), "{html}");
    let answer = shell(&b, &s.base, &key, "echo portico-$((6*7))\n", "portico-42").await;
    assert!(answer.contains("portico-42"), "{answer}");
    // The API server writes an attach to its audit log when the attach ends
    // (the socket is closed above): wait, bounded, for that line.
    let is_attach = |e: &&portico::controlplane::audit::Event| {
        e.object_ref
            .as_ref()
            .is_some_and(|o| o.subresource == "attach" && o.name == pod && o.namespace == host_ns)
    };
    let mut events = shared_with_operator().audit_events();
    for _ in 0..300 {
        if events.iter().any(|e| is_attach(&e)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = shared_with_operator().audit_events();
    }
    let attach_sa = format!("system:serviceaccount:{host_ns}:{sa}");
    let attached: Vec<_> = events.iter().filter(is_attach).collect();
    assert!(!attached.is_empty(), "the attach reached the API server");
    for e in &attached {
        assert_eq!(
            e.user.username, attach_sa,
            "attached with the attach token, nobody else's"
        );
        assert!(e.impersonated_user.is_none(), "no impersonation on attach");
    }
    let minted = events.iter().find(|e| {
        e.object_ref
            .as_ref()
            .is_some_and(|o| o.subresource == "token" && o.name == sa && o.namespace == host_ns)
    });
    let minted = minted.expect("the token request is in the audit log");
    assert_eq!(
        minted.impersonated_user.as_ref().map(|u| u.username.as_str()),
        Some("alice"),
        "the dashboard asked for the token as alice"
    );
    assert_eq!(minted.code(), 201);

    // Heartbeat from the page's script, then delete.
    let before = admin_terminals(ns).await.get(name).await.unwrap();
    let r = b
        .send(
            b.http
                .post(format!("{}/terminals/{key}/extend", s.base))
                .header("accept", "application/json")
                .form(&[("csrf", token.as_str())]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = admin_terminals(ns).await.get(name).await.unwrap();
    assert!(after.annotations().contains_key(keys::LAST_HEARTBEAT_AT));
    assert_ne!(
        before.resource_version(),
        after.resource_version(),
        "the heartbeat changed it"
    );
    let r = b
        .post_form(&format!("{}/terminals/{key}/delete", s.base), &[("csrf", &token)])
        .await;
    assert_eq!(r.url().path(), "/terminals");
    let gone = await_condition(admin_terminals(ns).await, name, |t: Option<&Terminal>| {
        t.is_none_or(|t| t.metadata.deletion_timestamp.is_some())
    });
    tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn unverified_shortcuts_need_trust_and_others_are_refused() {
    let s = stack().await;
    let mut bob = Browser::new();
    bob.login(&s.base, "bob").await;
    let page = bob.get(&format!("{}/terminals", s.base)).await.text().await.unwrap();
    assert!(
        !page.contains("Debug toolbox"),
        "bob cannot read team-a's ConfigMaps, so is not offered its shortcut"
    );
    let token = csrf(&page);
    let count = |ns: &'static str| async move {
        admin_terminals(ns)
            .await
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|t| portico::controller::creator_name(*t) == "bob")
            .count()
    };
    // bob in team-a: the API server refuses, the page says so, nothing is made.
    let r = bob
        .post_form(
            &format!("{}/terminals", s.base),
            &[("csrf", &token), ("shortcut", "config/shell"), ("namespace", "team-a")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("refused"));
    assert_eq!(count("team-a").await, 0);
    // No CSRF token: refused before anything is asked of the API server.
    let r = bob
        .post_form(
            &format!("{}/terminals", s.base),
            &[("shortcut", "config/shell"), ("namespace", "team-b")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // An unknown shortcut, and no namespace for one that needs it.
    let r = bob
        .post_form(
            &format!("{}/terminals", s.base),
            &[("csrf", &token), ("shortcut", "team-a/team-a-tools/debug")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "bob cannot use a shortcut he cannot read"
    );
    let r = bob
        .post_form(
            &format!("{}/terminals", s.base),
            &[("csrf", &token), ("shortcut", "config/shell")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(count("team-b").await, 0, "nothing made by the refused requests");

    // The unverified shortcut needs the trust box.
    let _turn = ALICE_TURN.lock().await;
    let mut alice = Browser::new();
    alice.login(&s.base, "alice").await;
    let token_a = csrf(&alice.get(&format!("{}/terminals", s.base)).await.text().await.unwrap());
    let r = alice
        .post_form(
            &format!("{}/terminals", s.base),
            &[("csrf", &token_a), ("shortcut", "team-a/team-a-tools/debug")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("I trust this shortcut"));
    let key = open(
        &mut alice,
        &s.base,
        &[
            ("csrf", &token_a),
            ("shortcut", "team-a/team-a-tools/debug"),
            ("trust", "on"),
        ],
    )
    .await;
    let (ns, name) = key.split_once('/').unwrap();
    let t = wait_for_pod(ns, name).await;
    assert_eq!(t.spec.host.pod.image, common::TOOLBOX);
    // The team's shortcut runs the node's toolbox: a shell that answers.
    wait_ready(ns, name).await;
    shell(&alice, &s.base, &key, "echo team-$((6*7))\n", "team-42").await;

    // bob sees neither alice's terminal page nor its socket.
    let r = bob.get(&format!("{}/terminals/{key}", s.base)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let said = attach(&bob, &s.base, &key, &s.base).await.unwrap();
    assert!(said.iter().any(|m| m.contains("refused")), "{said:?}");
    admin_terminals(ns)
        .await
        .delete(name, &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_terminal_whose_image_is_nowhere_says_its_pod_is_not_running() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut alice = Browser::new();
    alice.login(&s.base, "alice").await;
    // An image no registry here has and the node did not build: its pod
    // stays Pending (ErrImagePull), and the page and the socket say so.
    let terminal: Terminal = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
        "metadata": {"name": "no-such-image", "namespace": "team-a"},
        "spec": {
            "host": {"namespace": "team-a", "pod": {"image": "portico.local/not-built:1", "command": ["/bin/sh"]}},
            "target": {"namespace": "team-a", "roleBindings": [
                {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "view"}]},
        },
    }))
    .unwrap();
    let as_alice = shared_with_operator()
        .client_as("alice", &["developers", "system:authenticated"])
        .await
        .unwrap();
    Api::<Terminal>::namespaced(as_alice, "team-a")
        .create(&Default::default(), &terminal)
        .await
        .unwrap();
    wait_for_pod("team-a", "no-such-image").await;
    let key = "team-a/no-such-image";
    let html = alice
        .get(&format!("{}/terminals/{key}", s.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("waiting for the terminal pod") || html.contains("creating the terminal pod"),
        "{html}"
    );
    let said = attach(&alice, &s.base, key, &s.base).await.unwrap();
    assert!(said.iter().any(|m| m.contains("not running")), "{said:?}");
    admin_terminals("team-a")
        .await
        .delete("no-such-image", &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn in_chromium_alice_opens_a_terminal_and_its_shell_answers_within_her_rights() {
    use tokio::io::AsyncBufReadExt;
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let artifacts = screenshots();
    let mut flow = browser_script(
        "terminal_flow.mjs",
        &[s.base.as_str(), "alice", artifacts.to_str().unwrap()],
    );
    let mut lines = tokio::io::BufReader::new(flow.stdout.take().unwrap()).lines();
    let mut seen = vec![];
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push(line);
    }
    let out = flow.wait_with_output().await.unwrap();
    // A kubectl request typed again after it was lost: in the test's
    // output (on failure, or with --nocapture).
    for note in seen.iter().filter(|l| l.starts_with("note:")) {
        eprintln!("{note}");
    }
    assert!(
        out.status.success() && seen.iter().any(|l| l == "ok"),
        "browser flow failed:\n{}\n{}",
        seen.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    for shot in [
        "terminals-dark",
        "terminal-connected",
        "terminal-shell",
        "terminal-reconnected",
        "terminal-connected-light",
        "terminal-ended-light",
        "terminals-after-delete",
        "account",
        "account-warning",
        "admin-sessions",
        "admin-deployments",
    ] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "screenshot {shot}");
    }
}

#[tokio::test]
async fn an_attached_shell_ends_at_logout_and_nobody_else_may_attach_to_it() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    let page = b.get(&format!("{}/terminals", s.base)).await.text().await.unwrap();
    let token = csrf(&page);
    let key = open(
        &mut b,
        &s.base,
        &[("csrf", &token), ("shortcut", "config/shell"), ("namespace", "team-a")],
    )
    .await;
    let (ns, name) = key.split_once('/').unwrap();
    wait_for_pod(ns, name).await;
    wait_ready(ns, name).await;

    // bob, logged in himself, may not attach to alice's Terminal.
    let mut bob = Browser::new();
    bob.login(&s.base, "bob").await;
    let refused = attach(&bob, &s.base, &key, &s.base).await;
    match &refused {
        Err(code) => assert!(matches!(code, 403 | 404), "{code}"),
        Ok(frames) => assert!(
            !frames.iter().any(|t| t.contains("\"attached\""))
                && frames.iter().any(|t| t.contains("error") && t.contains("forbidden")),
            "bob attached to alice's terminal: {frames:?}"
        ),
    }

    // alice's shell is attached; logging out (in another tab) ends it.
    let mut ws = open_socket(&b, &s.base, &key, &s.base).await.expect("websocket");
    let attached = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && t.contains("\"attached\"")
            {
                return;
            }
        }
        panic!("the socket closed before attaching");
    };
    tokio::time::timeout(Duration::from_secs(60), attached)
        .await
        .expect("attached");
    assert_eq!(b.logout(&s.base).await.status(), StatusCode::OK);
    let mut said = vec![];
    let ended = async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) => said.push(t.to_string()),
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), ended)
        .await
        .expect("the shell's socket ends with the session");
    assert!(
        said.iter().any(|t| t.contains("error") || t.contains("session")),
        "the page is told why: {said:?}"
    );
    admin_terminals(ns)
        .await
        .delete(name, &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_attached_shell_ends_when_its_terminal_expires_and_is_told_why() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut b = Browser::new();
    b.login(&s.base, "alice").await;
    // alice's own Terminal (kubectl's way), living at most 60 s.
    let name = format!("expiring-{:08x}", rand::random::<u32>());
    let t: Terminal = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
        "metadata": {"name": name},
        "spec": {
            "host": {"namespace": "team-a", "pod": {
                "image": portico::controlplane::node::images::TOOLBOX_IMAGE, "command": ["/bin/sh"]}},
            "target": {"namespace": "team-a", "roleBindings": [
                {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "view"}]},
            "maxLifetime": "60s",
        },
    }))
    .unwrap();
    let alice = shared_with_operator()
        .client_as("alice", &["developers"])
        .await
        .unwrap();
    Api::<Terminal>::namespaced(alice, "team-a")
        .create(&Default::default(), &t)
        .await
        .unwrap();
    wait_ready("team-a", &name).await;

    let key = format!("team-a/{name}");
    let mut ws = open_socket(&b, &s.base, &key, &s.base).await.expect("websocket");
    let mut said = vec![];
    let until_closed = async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) => said.push(t.to_string()),
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), until_closed)
        .await
        .expect("the shell's socket closes when the Terminal expires");
    assert!(
        said.iter().any(|t| t.contains("\"attached\"")),
        "it attached first: {said:?}"
    );
    let ended: serde_json::Value = said
        .iter()
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .find(|v| v.get("ended").is_some())
        .unwrap_or_else(|| panic!("the page is told the shell ended: {said:?}"));
    assert_eq!(
        ended,
        serde_json::json!({"ended": "This terminal has ended: the maximum lifetime was reached.", "again": false}),
        "the reason is the expiry, and connecting again is not offered"
    );
    let api = admin_terminals("team-a").await;
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, &name, |t: Option<&Terminal>| t.is_none()),
    )
    .await
    .expect("the expired Terminal is gone")
    .unwrap();
}

#[tokio::test]
async fn a_terminal_page_shows_the_maximum_lifetime_and_offers_no_extend_once_it_is_the_end() {
    let _turn = ALICE_TURN.lock().await;
    let s = stack().await;
    let mut alice = Browser::new();
    alice.login(&s.base, "alice").await;
    let as_alice = shared_with_operator()
        .client_as("alice", &["developers", "system:authenticated"])
        .await
        .unwrap();
    let api = Api::<Terminal>::namespaced(as_alice, "team-a");
    use common::fixtures::With;
    // Idle timeout longer than the maximum lifetime: the maximum is the end from the start.
    let capped = common::fixtures::terminal_in("capped", "team-a", "team-a", "view")
        .with(serde_json::json!({"spec": {"idleTimeout": "30m", "maxLifetime": "10m"}}));
    let open = common::fixtures::terminal_in("extendable", "team-a", "team-a", "view")
        .with(serde_json::json!({"spec": {"idleTimeout": "10m", "maxLifetime": "2h"}}));
    for t in [&capped, &open] {
        api.create(&Default::default(), t).await.unwrap();
    }
    for name in ["capped", "extendable"] {
        let has_end = |t: &Terminal| t.status.as_ref().is_some_and(|s| s.expires_at.is_some());
        common::wait::present(&admin_terminals("team-a").await, name, "its end", has_end).await;
    }
    let url = |name: &str| format!("{}/terminals/team-a/{name}", s.base);
    let html = alice.get(&url("capped")).await.text().await.unwrap();
    assert!(html.contains("Maximum lifetime: until"), "{html}");
    assert!(
        html.contains(r#"<p data-field="capped">This is its maximum lifetime: it cannot be extended.</p>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-field="extend" hidden>"#), "no Extend: {html}");
    let html = alice.get(&url("extendable")).await.text().await.unwrap();
    assert!(html.contains("Maximum lifetime: until"), "{html}");
    assert!(html.contains(r#"<p data-field="capped" hidden>"#), "{html}");
    assert!(
        !html.contains(r#"data-field="extend" hidden>"#),
        "Extend offered: {html}"
    );
    for name in ["capped", "extendable"] {
        admin_terminals("team-a")
            .await
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
}

/// The Terminals `user` created in `ns` that are not being deleted.
async fn terminals_of(user: &str, ns: &str) -> Vec<Terminal> {
    admin_terminals(ns)
        .await
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .filter(|t| {
            portico::creator::Creator::from_annotations(t.metadata.annotations.as_ref()).is_ok_and(|c| c.user == user)
        })
        .collect()
}

#[tokio::test]
async fn several_shortcuts_open_together_or_not_at_all() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::{DeleteParams, PostParams};
    let s = stack().await;
    let admin = shared_with_operator().admin_client().await.unwrap();
    // dave may open terminals in team-b (and make their pods) and holds
    // view there, not edit.
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "dave-terminals"},
        "rules": [
            {"apiGroups": ["portico.dev"], "resources": ["terminals"], "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
        ],
    }))
    .unwrap();
    let bindings: Vec<RoleBinding> = [
        ("dave-terminals", "Role", "dave-terminals"),
        ("dave-view", "ClusterRole", "view"),
    ]
    .iter()
    .map(|(name, kind, role)| {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dave"}],
        }))
        .unwrap()
    })
    .collect();
    let pp = PostParams::default();
    Api::<Role>::namespaced(admin.clone(), "team-b")
        .create(&pp, &role)
        .await
        .unwrap();
    let rb_api: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-b");
    for b in &bindings {
        rb_api.create(&pp, b).await.unwrap();
    }

    let mut b = Browser::new();
    b.login(&s.base, "dave").await;
    let page = b.get(&format!("{}/terminals", s.base)).await.text().await.unwrap();
    assert!(
        page.contains("Open several at once") && page.contains(r#"name="pick:config&#x2f;shell""#),
        "{page}"
    );
    let token = csrf(&page);
    let several = format!("{}/terminals/several", s.base);
    // Picked: the read-only shell (dave holds view), then the team shell
    // (edit, which he does not hold): the second is refused, and the first,
    // already made, is deleted again.
    let r = b
        .post_form(
            &several,
            &[
                ("csrf", token.as_str()),
                ("pick:config/viewer", "1"),
                ("pick:config/shell", "1"),
                ("namespace", "team-b"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("The API server refused Team shell in team-b")
            && text.contains("None of the picked terminals was kept"),
        "{text}"
    );
    assert!(
        terminals_of("dave", "team-b").await.is_empty(),
        "the read-only shell made first was deleted again"
    );
    // A shortcut that is not offered to him: nothing is made.
    let r = b
        .post_form(
            &several,
            &[
                ("csrf", token.as_str()),
                ("pick:config/nope", "1"),
                ("namespace", "team-b"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The read-only shell alone opens.
    let r = b
        .post_form(
            &several,
            &[
                ("csrf", token.as_str()),
                ("pick:config/viewer", "1"),
                ("namespace", "team-b"),
            ],
        )
        .await;
    assert_eq!(r.url().path(), "/terminals");
    let made = terminals_of("dave", "team-b").await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].annotations()[keys::SHORTCUT], "Read-only shell");
    b.logout(&s.base).await;

    // alice opens both in team-a at once.
    let _turn = ALICE_TURN.lock().await;
    let mut a = Browser::new();
    a.login(&s.base, "alice").await;
    let page = a.get(&format!("{}/terminals", s.base)).await.text().await.unwrap();
    let before: std::collections::BTreeSet<String> = terminals_of("alice", "team-a")
        .await
        .iter()
        .map(|t| t.name_any())
        .collect();
    let r = a
        .post_form(
            &several,
            &[
                ("csrf", csrf(&page).as_str()),
                ("pick:config/shell", "1"),
                ("pick:config/viewer", "1"),
                ("pick:config/shell", "1"),
                ("namespace", "team-a"),
            ],
        )
        .await;
    assert_eq!(r.url().path(), "/terminals");
    let mine: Vec<Terminal> = terminals_of("alice", "team-a")
        .await
        .into_iter()
        .filter(|t| !before.contains(&t.name_any()))
        .collect();
    let mut titles: Vec<String> = mine.iter().map(|t| t.annotations()[keys::SHORTCUT].clone()).collect();
    titles.sort();
    assert_eq!(
        titles,
        ["Read-only shell", "Team shell"],
        "one of each, the one picked twice once"
    );
    a.logout(&s.base).await;

    for t in made.iter().chain(mine.iter()) {
        let api = admin_terminals(&t.namespace().unwrap()).await;
        let _ = api.delete(&t.name_any(), &DeleteParams::default()).await;
    }
    rb_api.delete("dave-terminals", &DeleteParams::default()).await.unwrap();
    rb_api.delete("dave-view", &DeleteParams::default()).await.unwrap();
    Api::<Role>::namespaced(admin, "team-b")
        .delete("dave-terminals", &DeleteParams::default())
        .await
        .unwrap();
}
