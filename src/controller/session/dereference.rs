//! Step 1, dereference (pure): whose session it is, its profile in the
//! operator configuration, and when it ends. What cannot be resolved is a
//! stall with its reason; later steps read only [`Inputs`].

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use crate::{
    api::{SessionClaim, session_claim::SessionClaimStatus},
    config::{OperatorConfig, SessionProfile},
    creator::Creator,
    kstatus::Reason,
    lifetime::{self, Expiry},
};

/// What the later steps need of one claim.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The user the session is for, from `portico.dev/created-by`.
    pub creator: Creator,
    /// The claim's profile.
    pub profile: &'a SessionProfile,
    /// When the session ends, and which limit ends it.
    pub expiry: Expiry,
}

/// Resolves `c` under `config` at `now`, recording in `status` what it
/// learns (user, groups, expiry) even when a later part stalls.
pub fn dereference<'a>(
    c: &SessionClaim,
    config: &'a OperatorConfig,
    now: Timestamp,
    status: &mut SessionClaimStatus,
) -> Result<Inputs<'a>, (Reason, String)> {
    let creator = Creator::from_annotations(c.metadata.annotations.as_ref())
        .map_err(|e| (Reason::MissingCreator, e.to_string()))?;
    status.user = Some(creator.user.clone());
    status.groups = creator.groups.clone();
    let profile = config.profile(&c.spec.profile).ok_or_else(|| {
        (
            Reason::ProfileMissing,
            format!(
                "session profile {:?} does not exist in the operator configuration",
                c.spec.profile
            ),
        )
    })?;
    let life = lifetime::effective(
        c.spec.idle_timeout.as_deref(),
        c.spec.max_lifetime.as_deref(),
        &profile.idle_timeout,
        &profile.max_lifetime,
    )
    .map_err(|e| (Reason::InvalidLifetime, e.to_string()))?;
    let expiry = lifetime::of_object(&c.metadata, &life, now);
    status.expires_at = Some(Time(expiry.at));
    Ok(Inputs {
        creator,
        profile,
        expiry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::EndReason;

    fn claim(annotations: serde_json::Value, spec: serde_json::Value) -> SessionClaim {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim",
            "metadata": {"name": "s", "namespace": "team-a", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    fn config() -> OperatorConfig {
        let profile: SessionProfile = serde_json::from_value(serde_json::json!({
            "name": "debug", "allowedGroups": ["*"],
            "idleTimeout": {"default": "10m", "max": "1h"}, "maxLifetime": {"default": "1h", "max": "2h"},
        }))
        .unwrap();
        OperatorConfig {
            session_profiles: vec![profile],
            ..OperatorConfig::default()
        }
    }

    const ALICE: &str = r#"{"user":"alice","groups":["team-a"]}"#;

    #[test]
    fn a_claim_resolves_to_its_creator_profile_and_end() {
        let c = claim(
            serde_json::json!({"portico.dev/created-by": ALICE}),
            serde_json::json!({"profile": "debug"}),
        );
        let cfg = config();
        let mut status = SessionClaimStatus::default();
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let inputs = dereference(&c, &cfg, now, &mut status).unwrap();
        assert_eq!(inputs.creator.user, "alice");
        assert_eq!(inputs.profile.name, "debug");
        assert_eq!(inputs.expiry.reason, EndReason::IdleTimeout);
        assert_eq!(inputs.expiry.at.to_string(), "2026-01-01T00:10:00Z");
        assert_eq!(status.user.as_deref(), Some("alice"));
        assert_eq!(status.groups, ["team-a"]);
        assert_eq!(status.expires_at.map(|t| t.0), Some(inputs.expiry.at));
    }

    #[test]
    fn what_cannot_be_resolved_stalls_with_its_reason() {
        let cfg = config();
        let now = Timestamp::now();
        let mut status = SessionClaimStatus::default();
        let unsigned = claim(serde_json::json!({}), serde_json::json!({"profile": "debug"}));
        let (reason, _) = dereference(&unsigned, &cfg, now, &mut status).unwrap_err();
        assert_eq!(reason, Reason::MissingCreator);

        let unknown = claim(
            serde_json::json!({"portico.dev/created-by": ALICE}),
            serde_json::json!({"profile": "ops"}),
        );
        let (reason, message) = dereference(&unknown, &cfg, now, &mut status).unwrap_err();
        assert_eq!(reason, Reason::ProfileMissing);
        assert_eq!(
            message,
            "session profile \"ops\" does not exist in the operator configuration"
        );
        assert_eq!(
            status.user.as_deref(),
            Some("alice"),
            "the user is recorded all the same"
        );

        let long = claim(
            serde_json::json!({"portico.dev/created-by": ALICE}),
            serde_json::json!({"profile": "debug", "maxLifetime": "3h"}),
        );
        let (reason, message) = dereference(&long, &cfg, now, &mut status).unwrap_err();
        assert_eq!(reason, Reason::InvalidLifetime);
        assert!(
            message.contains("spec.maxLifetime 3h is above the maximum of 7200s"),
            "{message}"
        );
    }
}
