//! kstatus conditions (pure): `Ready`, `Reconciling` and `Stalled` with
//! `observedGeneration`, keeping each condition's `lastTransitionTime` while
//! its status stays the same, so an unchanged state writes an unchanged status.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

/// Why an object is in its state: the `reason` of its conditions and of the
/// Warning Events about it, one name a cause, for all three controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // Ready
    /// A Terminal's pod runs and is ready.
    PodReady,
    /// A session's kubeconfig is issued.
    KubeconfigReady,
    /// Every object of a Deployment is current.
    AllCurrent,
    // Reconciling
    /// A Terminal's pod is being made.
    PodCreating,
    /// A Terminal's pod exists but is not ready.
    PodNotReady,
    /// A Deployment waits for its objects to become ready.
    Progressing,
    /// A Deployment is suspended.
    Suspended,
    /// A Terminal or SessionClaim ended (`status.endReason`) and is being removed.
    Ended,
    // Stalled
    /// The object has no `portico.dev/created-by` (admission did not run).
    MissingCreator,
    /// Its lifetimes are not valid under today's configuration.
    InvalidLifetime,
    /// A temporary namespace was asked for but admission named none.
    MissingTemporaryNamespace,
    /// A namespace of the name exists and was not created for this Terminal.
    NamespaceNotOwned,
    /// The target cluster cannot be reached.
    TargetClusterUnreachable,
    /// The host cluster cannot be reached.
    HostClusterUnreachable,
    /// The creator may not grant what the Terminal asks for there.
    NotAuthorized,
    /// A Terminal's pod ended.
    PodEnded,
    /// The session profile is gone from the configuration.
    ProfileMissing,
    /// The API server does not accept the session's token.
    TokenRejected,
    /// The template cannot be used.
    TemplateUnavailable,
    /// The parameters do not fit the template's schema.
    InvalidParameters,
    /// The template does not render.
    RenderFailed,
    /// The render holds something outside the template's bounds.
    OutOfBounds,
    /// The render holds a kind the cluster does not serve.
    UnknownKind,
    /// An object of the name exists and was not created by this Deployment.
    ObjectNotOwned,
    /// The API server refused an apply.
    ApplyRefused,
    /// One of a Deployment's objects failed.
    ResourceFailed,
}

impl std::fmt::Display for Reason {
    /// The reason as conditions and Events spell it: the variant's name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The state a reconcile reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Everything is in place and ready.
    Ready {
        /// Why, for example `PodReady`.
        reason: Reason,
        /// For the user.
        message: String,
    },
    /// Work is in progress and expected to finish by itself.
    Reconciling {
        /// Why, for example `PodNotReady`.
        reason: Reason,
        /// For the user.
        message: String,
    },
    /// It cannot proceed without a change from someone.
    Stalled {
        /// Why, for example `ApplyRefused`.
        reason: Reason,
        /// For the user.
        message: String,
    },
}

impl Phase {
    /// An object that ended: no longer Ready, its removal in progress.
    pub fn ended(why: crate::api::common::EndReason) -> Phase {
        Phase::Reconciling {
            reason: Reason::Ended,
            message: format!("ended: {}", why.describe()),
        }
    }

    /// The user-facing message.
    pub fn message(&self) -> &str {
        match self {
            Phase::Ready { message, .. } | Phase::Reconciling { message, .. } | Phase::Stalled { message, .. } => {
                message
            }
        }
    }
}

fn cond(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
    old: &[Condition],
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: last,
    }
}

/// The three conditions for `phase`, reusing transition times from `old`.
pub fn conditions(phase: &Phase, generation: Option<i64>, now: Timestamp, old: &[Condition]) -> Vec<Condition> {
    let now = Time(now);
    let c = |t: &str, ok: bool, reason: &Reason, message: &str| {
        cond(t, ok, &reason.to_string(), message, generation, &now, old)
    };
    match phase {
        Phase::Ready { reason, message } => vec![
            c("Ready", true, reason, message),
            c("Reconciling", false, reason, ""),
            c("Stalled", false, reason, ""),
        ],
        Phase::Reconciling { reason, message } => vec![
            c("Ready", false, reason, message),
            c("Reconciling", true, reason, message),
            c("Stalled", false, reason, ""),
        ],
        Phase::Stalled { reason, message } => vec![
            c("Ready", false, reason, message),
            c("Reconciling", false, reason, ""),
            c("Stalled", true, reason, message),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_times_hold_while_status_is_unchanged() {
        let t1: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let pending = Phase::Reconciling {
            reason: Reason::PodNotReady,
            message: "waiting".into(),
        };
        let first = conditions(&pending, Some(1), t1, &[]);
        let again = conditions(&pending, Some(1), t2, &first);
        assert_eq!(first, again, "an unchanged phase must produce identical conditions");
        let ready = Phase::Ready {
            reason: Reason::PodReady,
            message: "ok".into(),
        };
        let next = conditions(&ready, Some(1), t2, &again);
        let r = next.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((r.status.as_str(), r.last_transition_time.0), ("True", t2));
        let s = next.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(s.last_transition_time.0, t1, "Stalled stayed False");
    }

    #[test]
    fn an_ended_object_is_no_longer_ready_and_says_why() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let ready = conditions(
            &Phase::Ready {
                reason: Reason::PodReady,
                message: "ok".into(),
            },
            Some(1),
            now,
            &[],
        );
        let ended = Phase::ended(crate::api::common::EndReason::Deleted);
        assert_eq!(ended.message(), "ended: it was deleted");
        let c = conditions(&ended, Some(1), now, &ready);
        let r = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str(), r.message.as_str()),
            ("False", "Ended", "ended: it was deleted")
        );
        let rec = c.iter().find(|c| c.type_ == "Reconciling").unwrap();
        assert_eq!(rec.status, "True");
    }

    #[test]
    fn stalled_sets_stalled_true_and_ready_false() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = conditions(
            &Phase::Stalled {
                reason: Reason::ApplyRefused,
                message: "m".into(),
            },
            Some(3),
            now,
            &[],
        );
        let get = |t: &str| c.iter().find(|x| x.type_ == t).unwrap().status.clone();
        assert_eq!(
            (get("Ready"), get("Reconciling"), get("Stalled")),
            ("False".into(), "False".into(), "True".into())
        );
        assert!(c.iter().all(|x| x.observed_generation == Some(3)));
    }
}
