//! The API server's structured authentication configuration
//! (`--authentication-config`, `apiserver.config.k8s.io/v1`) for a login
//! provider it trusts (pure): the successor of the `--oidc-*` flags, with
//! the same claim and prefix semantics, and several audiences (the
//! dashboard's client and kubectl's public client) where the flags allow one.

use serde_json::json;

/// An OpenID Connect issuer the API server trusts.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    /// The issuer URL (https), as in its ID tokens' `iss`.
    pub url: String,
    /// The CA of its serving certificate (PEM).
    pub ca_pem: String,
    /// Audiences accepted (any one of them in `aud`).
    pub audiences: Vec<String>,
    /// The claim naming the user, and what is put before it.
    pub username: (String, String),
    /// The claim holding the groups, and what is put before each.
    pub groups: (String, String),
}

/// The configuration file's text. Users and groups under `system:` are
/// refused, as the dashboard refuses them: no provider may mint them.
pub fn configuration(issuer: &JwtIssuer) -> String {
    let doc = json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {
                "url": issuer.url,
                "certificateAuthority": issuer.ca_pem,
                "audiences": issuer.audiences,
                "audienceMatchPolicy": "MatchAny",
            },
            "claimMappings": {
                "username": {"claim": issuer.username.0, "prefix": issuer.username.1},
                "groups": {"claim": issuer.groups.0, "prefix": issuer.groups.1},
            },
            "userValidationRules": [
                {"expression": "!user.username.startsWith('system:')",
                 "message": "user names under system: are reserved"},
                {"expression": "user.groups.all(g, !g.startsWith('system:'))",
                 "message": "groups under system: are reserved"},
            ],
        }],
    });
    // JSON is YAML, and the API server reads either.
    serde_json::to_string_pretty(&doc).expect("a JSON document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_the_issuer_its_audiences_and_claims() {
        let text = configuration(&JwtIssuer {
            url: "https://127.0.0.1:9443".into(),
            ca_pem: "PEM".into(),
            audiences: vec!["portico".into(), "kubectl".into()],
            username: ("preferred_username".into(), String::new()),
            groups: ("groups".into(), "oidc:".into()),
        });
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let jwt = &v["jwt"][0];
        assert_eq!(v["kind"], "AuthenticationConfiguration");
        assert_eq!(jwt["issuer"]["url"], "https://127.0.0.1:9443");
        assert_eq!(jwt["issuer"]["audiences"], json!(["portico", "kubectl"]));
        assert_eq!(jwt["issuer"]["audienceMatchPolicy"], "MatchAny");
        assert_eq!(
            jwt["claimMappings"]["username"],
            json!({"claim": "preferred_username", "prefix": ""})
        );
        assert_eq!(
            jwt["claimMappings"]["groups"],
            json!({"claim": "groups", "prefix": "oidc:"})
        );
        assert_eq!(jwt["userValidationRules"].as_array().unwrap().len(), 2);
    }
}
