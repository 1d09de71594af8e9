//! Who may read the operator's `/metrics`, which names users (the usage
//! series): a caller with a bearer token the API server authenticates
//! (TokenReview) and allows `get` on the non-resource URL `/metrics`
//! (SubjectAccessReview) — the chart's ClusterRole `…-metrics-reader`,
//! bound to the Prometheus that scrapes it. A grant is kept for a minute by
//! a digest of the token (never the token itself), so a scrape costs the
//! API server nothing most of the time; a refusal is not kept.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use sha2::{Digest, Sha256};

/// How long a decision is kept.
const KEEP: Duration = Duration::from_secs(60);
/// Decisions kept at most (then all are forgotten at once).
const MAX_KEPT: usize = 1000;

/// What a request for `/metrics` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Served.
    Allowed,
    /// 401: no token, or one the API server does not accept.
    Unauthenticated(String),
    /// 403: a known caller without the grant.
    Forbidden(String),
}

/// The bearer token of an `Authorization` header (pure).
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Checks callers of `/metrics` against the API server.
pub struct Guard {
    client: Client,
    kept: Mutex<HashMap<[u8; 32], (Instant, Decision)>>,
}

impl Guard {
    /// A guard asking the API server `client` reaches.
    pub fn new(client: Client) -> Guard {
        Guard {
            client,
            kept: Mutex::default(),
        }
    }

    /// The decision for a request with this `Authorization` header.
    pub async fn check(&self, authorization: Option<&str>) -> Decision {
        let Some(token) = bearer(authorization) else {
            return Decision::Unauthenticated(
                "/metrics needs a bearer token of an account allowed to get the non-resource URL /metrics".into(),
            );
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((at, d)) = self.kept.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && at.elapsed() < KEEP
        {
            return d.clone();
        }
        let decision = match self.ask(token).await {
            Ok(d) => d,
            Err(e) => return Decision::Unauthenticated(format!("the API server could not check the token: {e}")),
        };
        // Only a grant is kept: a refusal is asked again, so a binding made
        // since counts at once.
        if decision != Decision::Allowed {
            return decision;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(key, (Instant::now(), decision.clone()));
        decision
    }

    async fn ask(&self, token: &str) -> Result<Decision, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let status = answer.status.unwrap_or_default();
        let (true, Some(user)) = (status.authenticated == Some(true), status.user) else {
            return Ok(Decision::Unauthenticated(
                "the API server does not accept this token".into(),
            ));
        };
        let name = user.username.clone().unwrap_or_default();
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".into()),
                    verb: Some("get".into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &sar)
            .await?;
        Ok(match answer.status.is_some_and(|s| s.allowed) {
            true => Decision::Allowed,
            false => Decision::Forbidden(format!(
                "{name} may not get /metrics: bind the chart's ClusterRole (release)-metrics-reader to it"
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_token_counts() {
        assert_eq!(bearer(Some("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic YWxpY2U6")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
