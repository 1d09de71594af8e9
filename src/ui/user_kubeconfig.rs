//! kubectl as the user, where the API server trusts the login provider
//! (pure): a kubeconfig whose credential comes from kubectl's `oidc-login`
//! plugin (kubelogin) logging in at the issuer, and the one-off
//! `kubectl --token` line with the ID token of the dashboard's login.

use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;

/// What a kubeconfig for a user is made of.
pub struct ForUser<'a> {
    /// The API server's URL as users reach it.
    pub server: &'a str,
    /// The CA of its serving certificate (PEM), when not one the system trusts.
    pub server_ca: Option<&'a str>,
    /// The issuer URL.
    pub issuer: &'a str,
    /// The CA of the issuer's serving certificate (PEM), when not one the system trusts.
    pub issuer_ca: Option<&'a str>,
    /// The public client the plugin logs in with.
    pub client_id: &'a str,
    /// Scopes besides `openid`.
    pub scopes: &'a [String],
    /// The user, for the context's name.
    pub user: &'a str,
}

/// How to install the plugin, shown by kubectl when it is missing.
pub const INSTALL_HINT: &str = "This kubeconfig logs in through kubectl's oidc-login plugin (kubelogin). \
Install it with `kubectl krew install oidc-login`, or put its `kubectl-oidc_login` binary on your PATH.";

/// The cluster's name in kubeconfigs: the server's host.
fn cluster_name(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or(rest);
    if host.is_empty() { "cluster" } else { host }
}

/// The kubeconfig (YAML): one cluster, one context, and a user whose
/// credential is `kubectl oidc-login get-token` against the issuer (a
/// browser login on first use, then the plugin's own cache and refresh).
pub fn kubeconfig(k: &ForUser) -> String {
    let cluster = cluster_name(k.server);
    let mut args = vec![
        "oidc-login".to_string(),
        "get-token".into(),
        format!("--oidc-issuer-url={}", k.issuer),
        format!("--oidc-client-id={}", k.client_id),
    ];
    args.extend(
        k.scopes
            .iter()
            .filter(|s| s.as_str() != "openid")
            .map(|s| format!("--oidc-extra-scope={s}")),
    );
    if let Some(ca) = k.issuer_ca {
        args.push(format!("--certificate-authority-data={}", STANDARD.encode(ca)));
    }
    let mut cluster_entry = json!({"server": k.server});
    if let Some(ca) = k.server_ca {
        cluster_entry["certificate-authority-data"] = json!(STANDARD.encode(ca));
    }
    let context = format!("{}@{cluster}", k.user);
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": format!("oidc-{}", k.user), "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "kubectl",
            "args": args,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": false,
            "installHint": INSTALL_HINT,
        }}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": format!("oidc-{}", k.user)}}],
        "current-context": context,
    });
    serde_yaml_ng::to_string(&doc).expect("a kubeconfig serialises")
}

/// The one-off command: `kubectl auth whoami` with the ID token; `ca_file`
/// names the API server's CA as the user saved it.
pub fn token_command(server: &str, ca_file: Option<&str>, token: &str) -> String {
    let ca = ca_file
        .map(|f| format!(" --certificate-authority={f}"))
        .unwrap_or_default();
    format!("kubectl --server={server}{ca} --token={token} auth whoami")
}

/// When a JWT expires (its `exp`, Unix seconds), read without checking its
/// signature: for tokens this dashboard checked when it received them.
pub fn expiry(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["exp"].as_i64()
}

/// Whether `token` is valid at `now` for at least `margin` more seconds.
pub fn valid_for(token: &str, now: i64, margin: i64) -> bool {
    expiry(token).is_some_and(|e| e > now + margin)
}

/// Whether `offered` should replace the `held` ID token: it is valid and
/// lasts longer (an older cookie never replaces a refreshed token).
pub fn replaces(held: Option<&str>, offered: &str, now: i64) -> bool {
    let ends = |t: &str| expiry(t).unwrap_or(0);
    ends(offered) > now && held.is_none_or(|h| ends(h) < ends(offered))
}

/// How the API server's name for the user differs from the dashboard's
/// (pure): the user, or the groups besides `system:authenticated`, which
/// it gives everyone it authenticates. `None`: they agree.
pub fn identity_mismatch(api: (&str, &[String]), dashboard: (&str, &[String])) -> Option<String> {
    use std::collections::BTreeSet;
    let api_groups: BTreeSet<&str> = api
        .1
        .iter()
        .map(String::as_str)
        .filter(|g| *g != "system:authenticated")
        .collect();
    let groups: BTreeSet<&str> = dashboard.1.iter().map(String::as_str).collect();
    if api.0 == dashboard.0 && api_groups == groups {
        return None;
    }
    Some(format!(
        "the API server names this login {:?} in the groups [{}], this dashboard {:?} in [{}]: set \
         oidc.usernameClaim, usernamePrefix, groupsClaim and groupsPrefix as the API server has them",
        api.0,
        api_groups.into_iter().collect::<Vec<_>>().join(", "),
        dashboard.0,
        groups.into_iter().collect::<Vec<_>>().join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn for_alice<'a>(scopes: &'a [String], issuer_ca: Option<&'a str>) -> ForUser<'a> {
        ForUser {
            server: "https://api.example.com:6443",
            server_ca: Some("SERVER CA"),
            issuer: "https://login.example.com",
            issuer_ca,
            client_id: "kubectl",
            scopes,
            user: "alice",
        }
    }

    #[test]
    fn the_kubeconfig_logs_in_through_the_plugin_at_the_issuer() {
        let scopes = vec!["openid".to_string(), "profile".into(), "groups".into()];
        let text = kubeconfig(&for_alice(&scopes, Some("LOGIN CA")));
        let v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(v["current-context"], "alice@api.example.com");
        let cluster = &v["clusters"][0];
        assert_eq!(cluster["name"], "api.example.com");
        assert_eq!(cluster["cluster"]["server"], "https://api.example.com:6443");
        assert_eq!(
            cluster["cluster"]["certificate-authority-data"],
            STANDARD.encode("SERVER CA")
        );
        let exec = &v["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], "kubectl");
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        let args: Vec<&str> = exec["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "oidc-login",
                "get-token",
                "--oidc-issuer-url=https://login.example.com",
                "--oidc-client-id=kubectl",
                "--oidc-extra-scope=profile",
                "--oidc-extra-scope=groups",
                &format!("--certificate-authority-data={}", STANDARD.encode("LOGIN CA")),
            ]
        );
        assert!(
            !text.contains("secret"),
            "no secret in a public client's kubeconfig: {text}"
        );
        let plain = kubeconfig(&ForUser {
            server_ca: None,
            ..for_alice(&[], None)
        });
        let v: serde_json::Value = serde_yaml_ng::from_str(&plain).unwrap();
        assert!(v["clusters"][0]["cluster"].get("certificate-authority-data").is_none());
        assert_eq!(v["users"][0]["user"]["exec"]["args"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn the_token_line_names_the_server_and_the_ca_when_there_is_one() {
        assert_eq!(
            token_command("https://api:6443", Some("ca.crt"), "T"),
            "kubectl --server=https://api:6443 --certificate-authority=ca.crt --token=T auth whoami"
        );
        assert_eq!(
            token_command("https://api:6443", None, "T"),
            "kubectl --server=https://api:6443 --token=T auth whoami"
        );
    }

    fn token(exp: i64) -> String {
        format!("h.{}.s", URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#)))
    }

    #[test]
    fn a_newer_token_replaces_an_older_one_and_an_expired_one_nothing() {
        let (old, new) = (token(200), token(300));
        assert!(replaces(None, &old, 100));
        assert!(replaces(Some(&old), &new, 100));
        assert!(
            !replaces(Some(&new), &old, 100),
            "an older cookie does not undo a refresh"
        );
        assert!(!replaces(None, &token(50), 100), "expired");
        assert!(!replaces(None, "garbage", 100));
        assert!(valid_for(&old, 100, 10) && !valid_for(&old, 195, 10));
    }

    #[test]
    fn the_api_server_and_the_dashboard_must_name_a_login_alike() {
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (api, mine) = (g(&["developers", "system:authenticated"]), g(&["developers"]));
        assert_eq!(identity_mismatch(("dave", &api), ("dave", &mine)), None);
        let user = identity_mismatch(("oidc:dave", &api), ("dave", &mine)).unwrap();
        assert!(
            user.contains("\"oidc:dave\"") && user.contains("usernamePrefix"),
            "{user}"
        );
        let groups = identity_mismatch(("dave", &g(&["oidc:developers"])), ("dave", &mine)).unwrap();
        assert!(
            groups.contains("[oidc:developers]") && groups.contains("[developers]"),
            "{groups}"
        );
    }

    #[test]
    fn a_tokens_expiry_is_its_exp_claim() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"alice","exp":1800000000}"#);
        assert_eq!(expiry(&format!("h.{payload}.s")), Some(1_800_000_000));
        assert_eq!(expiry("not a jwt"), None);
        assert_eq!(expiry(&format!("h.{}.s", URL_SAFE_NO_PAD.encode("{}"))), None);
    }
}
