//! Admission of SessionClaims. Pure: the creator's hash and the profile as
//! labels and the profile's default lifetimes at creation (carried forward
//! on update); a profile the creator may claim, lifetimes within its caps.
//! With API calls: the per-user quota of active sessions of a profile,
//! reserved at creation and released at deletion (see [`super::quota`]).

use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};
use serde_json::Value;

use super::{
    Denial, WebhookState,
    mutate::{label, set_label},
    spec_str,
    validate::{Followup, check_lifetimes, label_field},
};
use crate::{
    api::{
        SessionClaimSpec,
        keys::{PROFILE_LABEL, USER_HASH_LABEL},
    },
    config::OperatorConfig,
    creator::Creator,
    lifetime,
};

/// What admission adds to a new SessionClaim: its creator's hash and its
/// profile as labels, and the profile's default lifetimes.
pub fn mutate_create(ops: &mut Vec<Value>, obj: &DynamicObject, requester: &Creator, cfg: &OperatorConfig) {
    set_label(ops, obj, USER_HASH_LABEL, &requester.user_hash());
    let Some(name) = spec_str(obj, "profile") else {
        return;
    };
    set_label(ops, obj, PROFILE_LABEL, name);
    if let Some(p) = cfg.profile(name) {
        super::mutate::default_lifetimes(
            ops,
            obj,
            &p.idle_timeout.default.to_string(),
            &p.max_lifetime.default.to_string(),
        );
    }
}

/// An update that omits the labels admission set keeps them.
pub fn mutate_update(ops: &mut Vec<Value>, old: &DynamicObject, obj: &DynamicObject) {
    for key in [USER_HASH_LABEL, PROFILE_LABEL] {
        if let (Some(v), None) = (label(old, key), label(obj, key)) {
            set_label(ops, obj, key, v);
        }
    }
}

/// A SessionClaim's own rules, on its typed spec: a profile the operator
/// offers and the creator may claim, lifetimes within the profile's caps,
/// labels that do not change. A new one then reserves a slot of the
/// profile's quota ([`Followup::Session`]).
pub fn validate(
    req: &AdmissionRequest<DynamicObject>,
    obj: &DynamicObject,
    creator: Creator,
    cfg: &OperatorConfig,
) -> Result<Option<Followup>, Denial> {
    if let (Operation::Update, Some(old)) = (&req.operation, req.old_object.as_ref()) {
        check_labels(old, obj)?;
    }
    let spec: SessionClaimSpec = super::typed_spec(obj)?;
    let name = spec.profile.as_str();
    let Some(profile) = cfg.profile(name) else {
        let offered: Vec<&str> = cfg.session_profiles.iter().map(|p| p.name.as_str()).collect();
        return Err(Denial::invalid_field(
            "spec.profile",
            format!(
                "there is no session profile named {name:?}; the operator offers: {}",
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ),
        ));
    };
    check_lifetimes(
        lifetime::problems(
            spec.idle_timeout.as_deref(),
            spec.max_lifetime.as_deref(),
            &profile.idle_timeout,
            &profile.max_lifetime,
        ),
        &format!(" (profile {name})"),
    )?;
    if let Operation::Create = req.operation {
        if !profile.allows(&creator.groups) {
            return Err(Denial::forbidden(format!(
                "{} may not claim session profile {name}: it is for members of {:?}",
                creator.user, profile.allowed_groups
            ))
            .on("spec.profile"));
        }
        return Ok(Some(Followup::Session(creator, name.to_string())));
    }
    Ok(None)
}

/// The labels admission set (the creator's hash, the profile) never change.
pub fn check_labels(old: &DynamicObject, obj: &DynamicObject) -> Result<(), Denial> {
    for key in [USER_HASH_LABEL, PROFILE_LABEL] {
        let get = |o: &DynamicObject| o.metadata.labels.as_ref().and_then(|l| l.get(key)).cloned();
        if get(old) != get(obj) {
            return Err(
                Denial::forbidden(format!("the label {key} is managed by Portico and cannot change"))
                    .on(label_field(key)),
            );
        }
    }
    Ok(())
}

/// Refuses a new session when the creator already holds the profile's
/// maximum, and otherwise reserves its slot (see [`super::quota`]).
pub async fn reserve(
    state: &WebhookState,
    req: &AdmissionRequest<DynamicObject>,
    creator: &Creator,
    profile: &str,
) -> Result<(), Denial> {
    let Some(p) = state.config.profile(profile) else {
        return Ok(());
    };
    // A generated name is filled in before validation; read it from the object too.
    let name = req
        .object
        .as_ref()
        .and_then(|o| o.metadata.name.clone())
        .unwrap_or_else(|| req.name.clone());
    let claim = format!("{}/{name}", req.namespace.as_deref().unwrap_or_default());
    state
        .quota()
        .reserve(creator, profile, p.max_active_per_user as usize, &claim, req.dry_run)
        .await
}

/// A SessionClaim is being deleted: its slot is free again at once.
pub async fn release(state: &WebhookState, req: &AdmissionRequest<DynamicObject>) {
    let Some(old) = req.old_object.as_ref() else { return };
    let (Ok(creator), Some(profile)) = (
        Creator::from_annotations(old.metadata.annotations.as_ref()),
        spec_str(old, "profile"),
    ) else {
        return;
    };
    let claim = format!("{}/{}", req.namespace.as_deref().unwrap_or_default(), req.name);
    state.quota().release(&creator, profile, &claim).await;
}
