//! How an ID token's claims become the Kubernetes user the dashboard acts
//! as, the way kube-apiserver maps them (pure): the username claim with its
//! prefix, an e-mail only when the provider verified it, the groups claim
//! (an array of strings or one string) with its prefix — and never a name
//! Kubernetes reserves for itself (`system:`), which the dashboard, allowed
//! to impersonate, must not take from a provider.

use serde_json::Value;

use super::config::OidcConfig;

/// The user an ID token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Kubernetes user name, prefixed.
    pub name: String,
    /// Groups, prefixed.
    pub groups: Vec<String>,
}

/// Why an ID token names no user the dashboard may act as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// The username claim is missing, empty or not a string.
    #[error(
        "the ID token has no {claim:?} claim (oidc.usernameClaim); ask the provider to issue it, or name another claim"
    )]
    NoUsername {
        /// The configured claim.
        claim: String,
    },
    /// The username is an e-mail address the provider has not verified.
    #[error(
        "the provider has not verified the e-mail address {email:?} (email_verified is {seen}); verify it at the provider, or name another oidc.usernameClaim"
    )]
    EmailNotVerified {
        /// The address.
        email: String,
        /// What `email_verified` was: `false`, missing, or not a boolean.
        seen: String,
    },
    /// The groups claim is neither a string nor an array of strings.
    #[error("the ID token's {claim:?} claim is {seen}, not a list of group names (oidc.groupsClaim)")]
    BadGroups {
        /// The configured claim.
        claim: String,
        /// What it holds.
        seen: String,
    },
    /// A name Kubernetes reserves.
    #[error(
        "the provider names you {what} {name:?}, and names beginning with \"system:\" belong to Kubernetes itself; an administrator sets oidc.{key} so names from the provider cannot take them"
    )]
    Reserved {
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// The configuration key that fixes it.
        key: &'static str,
    },
}

const RESERVED: &str = "system:";

/// The user `claims` name under `cfg`.
pub fn user(claims: &Value, cfg: &OidcConfig) -> Result<User, ClaimsError> {
    let raw = claims
        .get(&cfg.username_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ClaimsError::NoUsername {
            claim: cfg.username_claim.clone(),
        })?;
    if cfg.username_claim == "email" {
        match claims.get("email_verified") {
            Some(Value::Bool(true)) => {}
            seen => {
                return Err(ClaimsError::EmailNotVerified {
                    email: raw.to_string(),
                    seen: seen.map_or_else(|| "missing".into(), Value::to_string),
                });
            }
        }
    }
    let name = format!("{}{raw}", cfg.username_prefix());
    if name.starts_with(RESERVED) {
        return Err(ClaimsError::Reserved {
            what: "user",
            name,
            key: "usernamePrefix",
        });
    }
    let bad = |seen: &Value| ClaimsError::BadGroups {
        claim: cfg.groups_claim.clone(),
        seen: seen.to_string(),
    };
    let raw_groups: Vec<&str> = match claims.get(&cfg.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(g)) => vec![g.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|g| g.as_str().ok_or_else(|| bad(g)))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad(other)),
    };
    let groups: Vec<String> = raw_groups
        .into_iter()
        .map(|g| format!("{}{g}", cfg.groups_prefix()))
        .collect();
    if let Some(g) = groups.iter().find(|g| g.starts_with(RESERVED)) {
        return Err(ClaimsError::Reserved {
            what: "group",
            name: g.clone(),
            key: "groupsPrefix",
        });
    }
    Ok(User { name, groups })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(claim: &str, username_prefix: Option<&str>, groups_prefix: Option<&str>) -> OidcConfig {
        OidcConfig {
            issuer: "https://login.example.com".into(),
            client_id: "portico".into(),
            client_secret_file: "/s".into(),
            ca_file: None,
            scopes: vec![],
            username_claim: claim.into(),
            groups_claim: "groups".into(),
            username_prefix: username_prefix.map(str::to_string),
            groups_prefix: groups_prefix.map(str::to_string),
            refresh_seconds: None,
            logout_at_provider: true,
        }
    }

    #[test]
    fn prefixes_are_applied_as_kube_apiserver_applies_them() {
        let claims = json!({"email": "alice@example.com", "email_verified": true, "preferred_username": "alice", "groups": ["dev"]});
        let u = user(&claims, &cfg("email", None, None)).unwrap();
        assert_eq!(
            (u.name.as_str(), u.groups.clone()),
            ("alice@example.com", vec!["dev".into()])
        );
        let u = user(&claims, &cfg("preferred_username", None, None)).unwrap();
        assert_eq!(u.name, "https://login.example.com#alice", "other claims get the issuer");
        let u = user(&claims, &cfg("preferred_username", Some("-"), Some("oidc:"))).unwrap();
        assert_eq!((u.name.as_str(), u.groups.clone()), ("alice", vec!["oidc:dev".into()]));
        let u = user(&claims, &cfg("email", Some("oidc:"), None)).unwrap();
        assert_eq!(u.name, "oidc:alice@example.com");
    }

    #[test]
    fn an_email_counts_only_when_the_provider_verified_it() {
        let c = cfg("email", None, None);
        for (verified, seen) in [
            (json!(false), "false"),
            (json!("true"), "\"true\""),
            (Value::Null, "null"),
        ] {
            let e = user(&json!({"email": "m@example.com", "email_verified": verified}), &c).unwrap_err();
            assert_eq!(
                e,
                ClaimsError::EmailNotVerified {
                    email: "m@example.com".into(),
                    seen: seen.into()
                }
            );
        }
        let e = user(&json!({"email": "m@example.com"}), &c).unwrap_err();
        assert!(e.to_string().contains("email_verified is missing"), "{e}");
        // Another claim needs no verified e-mail.
        assert!(user(&json!({"sub": "m"}), &cfg("sub", Some("-"), None)).is_ok());
    }

    #[test]
    fn groups_are_a_list_or_one_name_and_nothing_else() {
        let c = cfg("sub", Some("-"), None);
        assert_eq!(user(&json!({"sub": "a", "groups": "ops"}), &c).unwrap().groups, ["ops"]);
        assert!(user(&json!({"sub": "a"}), &c).unwrap().groups.is_empty());
        for bad in [json!(7), json!(["ops", 7]), json!({"ops": true})] {
            let e = user(&json!({"sub": "a", "groups": bad}), &c).unwrap_err();
            assert!(matches!(e, ClaimsError::BadGroups { .. }), "{e}");
        }
        let e = user(&json!({"groups": ["ops"]}), &c).unwrap_err();
        assert!(e.to_string().contains("no \"sub\" claim"), "{e}");
        let e = user(&json!({"sub": ""}), &c).unwrap_err();
        assert!(matches!(e, ClaimsError::NoUsername { .. }), "{e}");
    }

    #[test]
    fn names_kubernetes_reserves_are_refused_unless_a_prefix_keeps_them_apart() {
        let c = cfg("sub", Some("-"), None);
        let e = user(&json!({"sub": "system:admin"}), &c).unwrap_err();
        assert!(e.to_string().contains("oidc.usernamePrefix"), "{e}");
        let e = user(&json!({"sub": "mallory", "groups": ["dev", "system:masters"]}), &c).unwrap_err();
        assert_eq!(
            e,
            ClaimsError::Reserved {
                what: "group",
                name: "system:masters".into(),
                key: "groupsPrefix"
            }
        );
        let prefixed = cfg("sub", Some("oidc:"), Some("oidc:"));
        let u = user(&json!({"sub": "system:admin", "groups": ["system:masters"]}), &prefixed).unwrap();
        assert_eq!(
            (u.name.as_str(), u.groups[0].as_str()),
            ("oidc:system:admin", "oidc:system:masters")
        );
    }
}
