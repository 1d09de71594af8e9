//! Short-lived service-account tokens from the TokenRequest API, handed out
//! as kubeconfigs in Secrets that record when each token was issued and
//! expires, and renewed at 80% of their life.

use std::time::Duration;

use k8s_openapi::{
    api::{
        authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
        core::v1::ServiceAccount,
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, Client, ResourceExt, api::PostParams};

/// A token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The API server refused or failed the TokenRequest.
    #[error("request a token for service account {account}: {source}")]
    Request {
        /// `namespace/name` of the service account.
        account: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The API server answered without a token or an expiry.
    #[error("token request for service account {0}: the API server returned no token or no expiry")]
    Empty(String),
}

/// Annotation on a kubeconfig Secret: when its token expires.
pub use crate::api::keys::TOKEN_EXPIRES_ANNOTATION as EXPIRES_ANNOTATION;
/// Annotation on a kubeconfig Secret: when its token was issued.
pub use crate::api::keys::TOKEN_ISSUED_ANNOTATION as ISSUED_ANNOTATION;
/// The API server's minimum for a TokenRequest.
pub const MIN_LIFETIME: Duration = Duration::from_secs(600);

/// When the token in `secret` should be renewed, if it records its times.
pub fn renew_at(secret: &impl ResourceExt) -> Option<Timestamp> {
    let a = secret.annotations();
    let issued: Timestamp = a.get(ISSUED_ANNOTATION)?.parse().ok()?;
    let expires: Timestamp = a.get(EXPIRES_ANNOTATION)?.parse().ok()?;
    Some(renewal_time(issued, expires))
}

/// Renew when 80% of a token's life has passed.
pub fn renewal_time(issued: Timestamp, expires: Timestamp) -> Timestamp {
    let life = expires.duration_since(issued);
    issued
        .saturating_add(SignedDuration::from_nanos((life.as_nanos() as f64 * 0.8) as i64))
        .unwrap_or(expires)
}

/// A token's lifetime: the configured one, but no longer than the owner may
/// still live, and no shorter than the API server allows.
pub fn lifetime(configured: Duration, owner_left: Duration) -> Duration {
    configured.min(owner_left).max(MIN_LIFETIME)
}

/// A token that was issued.
pub struct Issued {
    /// The bearer token.
    pub token: String,
    /// When it was asked for.
    pub issued: Timestamp,
    /// When it expires.
    pub expires: Timestamp,
}

/// Requests a token for `namespace/sa`, optionally bound to a Secret (then
/// deleting the Secret revokes it at once).
pub async fn request(
    client: &Client,
    namespace: &str,
    sa: &str,
    lifetime: Duration,
    bound_secret: Option<(&str, &str)>,
) -> Result<Issued, TokenError> {
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(lifetime.as_secs() as i64),
            bound_object_ref: bound_secret.map(|(name, uid)| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
            }),
        }),
        ..Default::default()
    };
    let issued = Timestamp::now();
    let resp = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .map_err(|source| TokenError::Request {
            account: format!("{namespace}/{sa}"),
            source,
        })?;
    let st = resp.status.unwrap_or_default();
    match (st.token, st.expiration_timestamp) {
        (Some(token), Some(exp)) => Ok(Issued {
            token,
            issued,
            expires: exp.0,
        }),
        _ => Err(TokenError::Empty(format!("{namespace}/{sa}"))),
    }
}

/// A kubeconfig that reaches `server` with `token`, defaulting to `namespace`.
pub fn kubeconfig(server: &str, ca_pem: Option<&str>, token: &str, namespace: &str, user: &str) -> String {
    use base64::Engine;
    let ca = ca_pem.map(|p| base64::engine::general_purpose::STANDARD.encode(p));
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "portico", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "portico", "context": {"cluster": "portico", "user": user, "namespace": namespace}}],
        "current-context": "portico",
    });
    serde_yaml_ng::to_string(&doc).expect("a kubeconfig serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_renew_at_eighty_percent() {
        let issued: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let exp: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        assert_eq!(renewal_time(issued, exp).to_string(), "2026-01-01T00:48:00Z");
    }

    #[test]
    fn lifetime_is_capped_by_the_owner_and_floored_by_the_api_server() {
        let h = Duration::from_secs(3600);
        assert_eq!(lifetime(h, Duration::from_secs(7200)), h);
        assert_eq!(lifetime(h, Duration::from_secs(1200)), Duration::from_secs(1200));
        assert_eq!(lifetime(h, Duration::from_secs(5)), MIN_LIFETIME);
    }

    #[test]
    fn kubeconfig_holds_server_token_and_namespace() {
        let k = kubeconfig("https://10.0.0.1:443", Some("PEM"), "tok", "team-b", "terminal");
        let v: serde_json::Value = serde_yaml_ng::from_str(&k).unwrap();
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "team-b");
        assert_eq!(v["clusters"][0]["cluster"]["server"], "https://10.0.0.1:443");
    }
}
