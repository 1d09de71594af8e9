//! What passes mean for the usage metrics ([`crate::metrics::usage`]): a
//! Terminal or SessionClaim opened when a pass first reports it Ready (its
//! status before the pass said it was not: [`turns_ready`], pure), ended
//! when its end is recorded, and a Deployment's change by the user who
//! made it, with the outcome the delivery metrics counted. Called once the
//! pass's status is written (or, for an expiry, once the object is deleted),
//! so a failed write is not counted before the pass that succeeds.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Condition, jiff::Timestamp};
use kube::ResourceExt;

use super::{
    Context,
    report::{Ends, Reported},
};
use crate::{
    api::{Deployment, common::EndReason},
    creator::{Creator, creator_name},
    kstatus::Phase,
    metrics::usage::Object,
};

/// Whether a pass reporting `phase` turns an object Ready whose conditions
/// were `before` (pure).
pub fn turns_ready(before: &[Condition], phase: &Phase) -> bool {
    let was = before.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    !was && matches!(phase, Phase::Ready { .. })
}

/// Seconds from `from` to `to`, never negative (pure).
pub fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()).max(0) as f64 / 1000.0
}

/// `obj`'s pass reported `phase` and its status is written: counts the
/// opening if this pass turned it Ready.
pub fn opened<K: Reported>(ctx: &Context, obj: &K, phase: &Phase) {
    let before = obj.current().map(K::conditions).unwrap_or_default();
    let user = creator_name(obj);
    if user.is_empty() || !turns_ready(before, phase) {
        return;
    }
    let (uid, ns) = (obj.uid().unwrap_or_default(), obj.namespace().unwrap_or_default());
    ctx.metrics.usage.opened(object(K::KIND, &uid, &ns, &user));
}

/// `obj` ended for `reason` at `at`: counts the end and its lifetime.
pub fn ended<K: Ends>(ctx: &Context, obj: &K, reason: EndReason, at: Timestamp) {
    let user = creator_name(obj);
    if user.is_empty() {
        return;
    }
    let lived = obj.creation_timestamp().map_or(0.0, |c| seconds(c.0, at));
    let (uid, ns) = (obj.uid().unwrap_or_default(), obj.namespace().unwrap_or_default());
    let at = at.as_millisecond() as f64 / 1000.0;
    let o = object(K::KIND, &uid, &ns, &user);
    ctx.metrics.usage.ended(o, &format!("{reason:?}"), lived, at);
}

fn object<'a>(kind: crate::api::Kind, uid: &'a str, namespace: &'a str, user: &'a str) -> Object<'a> {
    Object {
        kind,
        uid,
        namespace,
        user,
    }
}

/// A change of `d` ended `ready` or `stalled`: counted for the user who
/// made it (its last updater, else its creator).
pub fn operation(ctx: &Context, d: &Deployment, outcome: &str) {
    let annotations = d.metadata.annotations.as_ref();
    let Some(user) = Creator::updater(annotations)
        .or_else(|| Creator::from_annotations(annotations).ok())
        .map(|c| c.user)
    else {
        return;
    };
    ctx.metrics
        .usage
        .operation(&d.namespace().unwrap_or_default(), &user, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kstatus::Reason;

    fn ready(status: &str) -> Vec<Condition> {
        vec![Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
        }]
    }

    #[test]
    fn only_a_pass_that_turns_ready_opens() {
        let r = Phase::Ready {
            reason: Reason::PodReady,
            message: String::new(),
        };
        let waiting = Phase::Reconciling {
            reason: Reason::PodNotReady,
            message: String::new(),
        };
        assert!(turns_ready(&[], &r));
        assert!(turns_ready(&ready("False"), &r));
        assert!(!turns_ready(&ready("True"), &r), "a restarted operator's first pass");
        assert!(!turns_ready(&[], &waiting));
        let (a, b): (Timestamp, Timestamp) = (
            "2026-01-01T00:00:00Z".parse().unwrap(),
            "2026-01-01T01:30:00Z".parse().unwrap(),
        );
        assert_eq!(seconds(a, b), 5400.0);
        assert_eq!(seconds(b, a), 0.0);
    }
}
