//! Step 4, report (pure): the Ready phase and its message from what was
//! granted, when to look again, and how many sessions each profile holds.

use std::{collections::BTreeMap, time::Duration};

use super::children::Granted;
use crate::{
    api::SessionClaim,
    config::SessionProfile,
    kstatus::{Phase, Reason},
};

/// The session is ready: its message says what was granted and what not.
pub fn ready(g: &Granted) -> Phase {
    let mut message = if g.granted.is_empty() {
        "the session's kubeconfig is ready; the profile grants nothing you hold".to_string()
    } else {
        format!("the session's kubeconfig is ready; granted {}", g.granted.join(", "))
    };
    if !g.skipped.is_empty() {
        message.push_str(&format!(
            "; not granted (you lack these rights): {}",
            g.skipped.join("; ")
        ));
    }
    Phase::Ready {
        reason: Reason::KubeconfigReady,
        message,
    }
}

/// When to look again: at the session's end or its token's renewal,
/// whichever is first; never zero.
pub fn next_pass(until_expiry: Duration, until_renewal: Duration) -> Duration {
    until_expiry.min(until_renewal).max(Duration::from_millis(1))
}

/// The sessions not being deleted, per profile (every configured profile
/// listed, so one whose last session ended reads 0).
pub fn active_per_profile<'a>(
    profiles: &[SessionProfile],
    claims: impl IntoIterator<Item = &'a SessionClaim>,
) -> BTreeMap<String, i64> {
    let mut counts: BTreeMap<String, i64> = profiles.iter().map(|p| (p.name.clone(), 0)).collect();
    for claim in claims.into_iter().filter(|c| c.metadata.deletion_timestamp.is_none()) {
        *counts.entry(claim.spec.profile.clone()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_message_names_what_was_granted_and_what_not() {
        let none = Granted::default();
        assert_eq!(
            ready(&none).message(),
            "the session's kubeconfig is ready; the profile grants nothing you hold"
        );
        let some = Granted {
            granted: vec!["view in team-a".into(), "edit in team-b".into()],
            skipped: vec!["admin in team-c".into()],
        };
        assert_eq!(
            ready(&some).message(),
            "the session's kubeconfig is ready; granted view in team-a, edit in team-b; not granted (you lack \
             these rights): admin in team-c"
        );
    }

    #[test]
    fn the_next_pass_is_the_first_deadline() {
        let (hour, minute) = (Duration::from_secs(3600), Duration::from_secs(60));
        assert_eq!(next_pass(hour, minute), minute);
        assert_eq!(next_pass(minute, hour), minute);
        assert_eq!(next_pass(Duration::ZERO, hour), Duration::from_millis(1));
    }

    #[test]
    fn sessions_count_per_profile_without_those_being_deleted() {
        let profile = |name: &str| -> SessionProfile {
            serde_json::from_value(serde_json::json!({"name": name, "allowedGroups": ["*"]})).unwrap()
        };
        let claim = |profile: &str, deleting: bool| -> SessionClaim {
            let mut meta = serde_json::json!({"name": "s", "namespace": "team-a"});
            if deleting {
                meta["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim",
                "metadata": meta, "spec": {"profile": profile},
            }))
            .unwrap()
        };
        let claims = [claim("debug", false), claim("debug", true), claim("gone", false)];
        let counts = active_per_profile(&[profile("debug"), profile("idle")], &claims);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [("debug".into(), 1), ("gone".into(), 1), ("idle".into(), 0)]
        );
    }
}
