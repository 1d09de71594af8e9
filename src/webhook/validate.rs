//! The validating webhook's checks that every kind shares (pure): size,
//! the creator, updater, temporary-namespace and heartbeat annotations, and
//! who acts on another user's object; then the kind's own rules (in its
//! module), which say what is left to check with API calls ([`Followup`]).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};

use super::{Denial, Kind, annotation, ownership};
use crate::{
    api::{
        Terminal,
        keys::{CREATED_BY, LAST_HEARTBEAT_AT, OPERATION, TEMPORARY_NAMESPACE, UPDATED_BY},
    },
    config::OperatorConfig,
    creator::Creator,
    lifetime::LifetimeError,
};

/// How far ahead of the server's clock a heartbeat may be (clock steps between replicas).
pub const HEARTBEAT_SKEW: SignedDuration = SignedDuration::from_secs(2);

/// What is left to check with API calls after the pure checks pass.
#[derive(Debug)]
pub enum Followup {
    /// A new Terminal: authorize it against its creator's RBAC.
    Terminal(Creator, Box<Terminal>),
    /// A new SessionClaim: count the creator's active sessions of this profile.
    Session(Creator, String),
    /// Someone acts on another user's Terminal or SessionClaim: they need `override`.
    Override(ownership::Override),
    /// A Deployment: check its template, the creator's groups and the parameters.
    Deployment {
        /// Who created it.
        creator: Creator,
        /// Whose rights apply this version: the creator, or who changed the spec.
        applier: Creator,
        /// The template's name and catalog namespace.
        template: (String, Option<String>),
        /// The parameters now.
        params: serde_json::Value,
        /// The parameters before an update.
        old_params: Option<serde_json::Value>,
    },
}

/// Checks one request; returns what still needs API calls. `operator` is the
/// operator's own user name, whose finalizer updates and expiry deletes are
/// never someone acting on another user's object.
pub fn validate(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    now: Timestamp,
    cfg: &OperatorConfig,
    operator: Option<&str>,
) -> Result<Option<Followup>, Denial> {
    let requester = Creator {
        user: req.user_info.username.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
    };
    let followup = match req.operation {
        Operation::Delete => None,
        _ => validate_object(req, kind, now, cfg)?,
    };
    let Some(old) = req.old_object.as_ref() else {
        return Ok(followup);
    };
    // An object Portico never acted on (no creator) follows plain RBAC.
    let Ok(creator) = Creator::from_annotations(old.metadata.annotations.as_ref()) else {
        return Ok(followup);
    };
    let spec_changed = req
        .object
        .as_ref()
        .is_some_and(|o| o.data.get("spec") != old.data.get("spec"));
    match ownership::act_on_others(kind, &req.operation, spec_changed, &creator, &requester.user, operator) {
        Some(act) => Ok(Some(Followup::Override(ownership::Override {
            kind,
            namespace: req.namespace.clone().unwrap_or_default(),
            name: req.name.clone(),
            creator,
            requester,
            act,
        }))),
        None => Ok(followup),
    }
}

fn validate_object(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    now: Timestamp,
    cfg: &OperatorConfig,
) -> Result<Option<Followup>, Denial> {
    let Some(obj) = req.object.as_ref() else {
        return Ok(None);
    };
    let size = serde_json::to_vec(obj).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > cfg.webhook.max_object_bytes {
        return Err(Denial::invalid(format!(
            "this {} is {size} bytes; Portico accepts at most {} bytes; make it smaller",
            kind.name(),
            cfg.webhook.max_object_bytes
        )));
    }
    if annotation(obj, OPERATION).is_some() {
        return Err(Denial::invalid(format!(
            "{OPERATION} is consumed by Portico's mutating webhook, which did not run; check the webhook configuration"
        ))
        .on(annotation_field(OPERATION)));
    }
    let creator = Creator::from_annotations(obj.metadata.annotations.as_ref()).map_err(|e| {
        Denial::invalid(format!("{e}; check that Portico's mutating webhook is configured"))
            .on(annotation_field(CREATED_BY))
    })?;
    let requester = req.user_info.username.clone().unwrap_or_default();

    if let Operation::Update = req.operation
        && let Some(old) = req.old_object.as_ref()
    {
        if annotation(old, CREATED_BY) != annotation(obj, CREATED_BY) {
            return Err(Denial::forbidden(format!(
                "{CREATED_BY} is immutable; it records who created this {} and cannot change",
                kind.name()
            ))
            .on(annotation_field(CREATED_BY)));
        }
        let spec_same = old.data.get("spec") == obj.data.get("spec");
        if spec_same && annotation(old, UPDATED_BY) != annotation(obj, UPDATED_BY) {
            return Err(Denial::forbidden(format!(
                "{UPDATED_BY} is written by Portico when the spec changes, naming who changed it; it cannot be set"
            ))
            .on(annotation_field(UPDATED_BY)));
        }
        if !spec_same
            && kind == Kind::Deployment
            && annotation(obj, UPDATED_BY)
                .and_then(|v| Creator::parse(v).ok())
                .map(|c| c.user)
                != Some(requester.clone())
        {
            return Err(Denial::forbidden(format!(
                "{UPDATED_BY} must name the user changing the spec ({requester}); check that Portico's mutating \
                 webhook is configured"
            ))
            .on(annotation_field(UPDATED_BY)));
        }
        if annotation(old, TEMPORARY_NAMESPACE) != annotation(obj, TEMPORARY_NAMESPACE) {
            return Err(Denial::forbidden(format!(
                "{TEMPORARY_NAMESPACE} is immutable; it names the namespace Portico created for this {} \
                 and cannot change",
                kind.name()
            ))
            .on(annotation_field(TEMPORARY_NAMESPACE)));
        }
        let new_hb = annotation(obj, LAST_HEARTBEAT_AT);
        if new_hb != annotation(old, LAST_HEARTBEAT_AT) {
            if requester != creator.user {
                return Err(Denial::forbidden(format!(
                    "only the creator ({}) may change {LAST_HEARTBEAT_AT}; the request comes from {requester}",
                    creator.user
                ))
                .on(annotation_field(LAST_HEARTBEAT_AT)));
            }
            if let Some(v) = new_hb {
                check_heartbeat(v, now)?;
            }
        }
    }
    if let Operation::Create = req.operation {
        if let Some(v) = annotation(obj, LAST_HEARTBEAT_AT) {
            check_heartbeat(v, now)?;
        }
        if annotation(obj, UPDATED_BY).is_some() {
            return Err(Denial::forbidden(format!(
                "{UPDATED_BY} is written by Portico when the spec changes; remove it"
            ))
            .on(annotation_field(UPDATED_BY)));
        }
    }

    // An update that leaves the spec alone (finalizers, labels, heartbeats,
    // deletion) is not judged against today's templates, profiles or caps:
    // otherwise a removed template or a lowered cap would block deletion.
    if let (Operation::Update, Some(old)) = (&req.operation, req.old_object.as_ref())
        && (old.data.get("spec") == obj.data.get("spec") || obj.metadata.deletion_timestamp.is_some())
    {
        if kind == Kind::SessionClaim {
            super::session::check_labels(old, obj)?;
        }
        return Ok(None);
    }
    match kind {
        Kind::SessionClaim => super::session::validate(req, obj, creator, cfg),
        Kind::Deployment => super::deployment::validate(req, obj, creator),
        Kind::Terminal => super::terminal::validate(req, obj, creator, cfg),
    }
}

fn check_heartbeat(value: &str, now: Timestamp) -> Result<(), Denial> {
    let t: Timestamp = value.parse().map_err(|_| {
        Denial::invalid(format!(
            "{LAST_HEARTBEAT_AT} {value:?} is not an RFC 3339 time; request a keepalive instead"
        ))
        .on(annotation_field(LAST_HEARTBEAT_AT))
    })?;
    if t > now.saturating_add(HEARTBEAT_SKEW).unwrap_or(Timestamp::MAX) {
        return Err(Denial::invalid(format!(
            "{LAST_HEARTBEAT_AT} {value} is in the future (server time {now}); \
             send {OPERATION}: keepalive and Portico records the server's time"
        ))
        .on(annotation_field(LAST_HEARTBEAT_AT)));
    }
    Ok(())
}

/// Refuses durations that cannot be used (422), one cause a field; `context`
/// follows each message, for example ` (profile developer)`.
pub fn check_lifetimes(problems: Vec<LifetimeError>, context: &str) -> Result<(), Denial> {
    if problems.is_empty() {
        return Ok(());
    }
    let message: Vec<String> = problems.iter().map(|p| format!("{p}{context}")).collect();
    Err(problems.iter().fold(Denial::invalid(message.join("; ")), |d, p| {
        d.with_cause(p.field(), format!("{}{context}", p.detail()))
    }))
}

/// An annotation as a field path, as Kubernetes writes it: `metadata.annotations[portico.dev/created-by]`.
pub fn annotation_field(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

/// A label as a field path: `metadata.labels[portico.dev/profile]`.
pub fn label_field(key: &str) -> String {
    format!("metadata.labels[{key}]")
}

#[cfg(test)]
mod tests;
