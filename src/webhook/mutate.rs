//! The mutating webhook (pure), what all kinds share: records the creator,
//! keeps the cleanup finalizer, turns a keepalive request into the server's
//! heartbeat time, and carries forward on update everything admission added,
//! so a GitOps applier that omits those fields never removes them. Each
//! kind's own additions (lifetimes, temporary namespaces, labels, who
//! changed a spec) are in its module.

use k8s_openapi::jiff::Timestamp;
use kube::core::{DynamicObject, admission::AdmissionRequest, admission::Operation};
use serde_json::{Value, json};

use super::{Denial, Kind, annotation, spec_str};
use crate::{
    api::keys::{CREATED_BY, FINALIZER, LAST_HEARTBEAT_AT, OPERATION, TEMPORARY_NAMESPACE, UPDATED_BY},
    config::OperatorConfig,
    creator::Creator,
};

/// The one operation a client may request through `portico.dev/operation`.
pub const KEEPALIVE: &str = "keepalive";

/// JSON-pointer escaping of one path segment.
fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub(super) fn set_annotation(ops: &mut Vec<Value>, obj: &DynamicObject, key: &str, value: &str) {
    if obj.metadata.annotations.is_none() && !ops.iter().any(|o| o["path"] == "/metadata/annotations") {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
    }
    ops.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", esc(key)), "value": value}));
}

pub(super) fn set_label(ops: &mut Vec<Value>, obj: &DynamicObject, key: &str, value: &str) {
    if obj.metadata.labels.is_none() && !ops.iter().any(|o| o["path"] == "/metadata/labels") {
        ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
    }
    ops.push(json!({"op": "add", "path": format!("/metadata/labels/{}", esc(key)), "value": value}));
}

/// Adds Portico's cleanup finalizer unless `obj` has it: every Portico
/// object carries it from its creation (the controller needs no
/// write of its own first), and an update that drops it while the object is
/// not being deleted (an apply by a client that never listed it) keeps it.
fn keep_finalizer(ops: &mut Vec<Value>, obj: &DynamicObject) {
    if has_finalizer(obj) {
        return;
    }
    ops.push(match obj.metadata.finalizers {
        Some(_) => json!({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}),
        None => json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}),
    });
}

fn has_finalizer(obj: &DynamicObject) -> bool {
    obj.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER)
}

pub(super) fn label<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a str> {
    obj.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// The patch for one admission request, as JSON-patch operations, or a denial.
pub fn mutate(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    now: Timestamp,
    cfg: &OperatorConfig,
    random_suffix: impl FnOnce() -> String,
) -> Result<Vec<Value>, Denial> {
    let Some(obj) = req.object.as_ref() else {
        return Ok(vec![]);
    };
    let requester = Creator {
        user: req.user_info.username.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
    };
    let mut ops = vec![];
    match req.operation {
        Operation::Create => {
            if let Some(given) = annotation(obj, CREATED_BY)
                && Creator::from_annotations(obj.metadata.annotations.as_ref())
                    .ok()
                    .as_ref()
                    != Some(&requester)
            {
                return Err(Denial::forbidden(format!(
                    "{CREATED_BY} is written by Portico from the requesting user and cannot be set by a client \
                     (the object says {given:?}, the request comes from {:?}); remove the annotation",
                    requester.user
                )));
            }
            if let Some(given) = annotation(obj, UPDATED_BY) {
                return Err(Denial::forbidden(format!(
                    "{UPDATED_BY} is written by Portico when someone changes the spec; a client cannot set it \
                     (the object says {given:?}); remove the annotation"
                )));
            }
            if let Some(given) = annotation(obj, TEMPORARY_NAMESPACE) {
                return Err(Denial::forbidden(format!(
                    "{TEMPORARY_NAMESPACE} is written by Portico, which names the namespace it creates for this \
                     {}; a client cannot set it (the object says {given:?}); remove the annotation and set \
                     spec.host.temporaryNamespace or spec.target.temporaryNamespace: true instead",
                    kind.name()
                )));
            }
            set_annotation(&mut ops, obj, CREATED_BY, &requester.to_annotation());
            if annotation(obj, OPERATION).is_some() {
                ops.push(json!({"op": "remove", "path": format!("/metadata/annotations/{}", esc(OPERATION))}));
            }
            match kind {
                Kind::Terminal => super::terminal::mutate_create(&mut ops, obj, cfg, random_suffix),
                Kind::SessionClaim => super::session::mutate_create(&mut ops, obj, &requester, cfg),
                Kind::Deployment => {}
            }
            keep_finalizer(&mut ops, obj);
        }
        Operation::Update => {
            let Some(old) = req.old_object.as_ref() else {
                return Ok(vec![]);
            };
            for key in [CREATED_BY, TEMPORARY_NAMESPACE, LAST_HEARTBEAT_AT, UPDATED_BY] {
                if let (Some(v), None) = (annotation(old, key), annotation(obj, key)) {
                    set_annotation(&mut ops, obj, key, v);
                }
            }
            if has_finalizer(old) && obj.metadata.deletion_timestamp.is_none() {
                keep_finalizer(&mut ops, obj);
            }
            match kind {
                Kind::Deployment => super::deployment::mutate_update(&mut ops, old, obj, &requester),
                Kind::SessionClaim => super::session::mutate_update(&mut ops, old, obj),
                Kind::Terminal => {}
            }
            if matches!(kind, Kind::Terminal | Kind::SessionClaim) {
                for field in ["idleTimeout", "maxLifetime"] {
                    if let (Some(v), None) = (spec_str(old, field), spec_str(obj, field)) {
                        ops.push(json!({"op": "add", "path": format!("/spec/{field}"), "value": v}));
                    }
                }
            }
            if let Some(op) = annotation(obj, OPERATION) {
                if op != KEEPALIVE {
                    return Err(Denial::invalid(format!(
                        "{OPERATION}: unknown operation {op:?}; the only operation is {KEEPALIVE:?}"
                    )));
                }
                let creator = Creator::from_annotations(old.metadata.annotations.as_ref())
                    .map_err(|e| Denial::forbidden(format!("cannot keep this object alive: {e}")))?;
                if creator.user != requester.user {
                    return Err(Denial::forbidden(format!(
                        "only the creator ({}) may keep this {} alive; the request comes from {}",
                        creator.user,
                        kind.name(),
                        requester.user
                    )));
                }
                if old.metadata.deletion_timestamp.is_some() {
                    return Err(Denial::invalid(format!(
                        "this {} is being deleted and cannot be kept alive",
                        kind.name()
                    )));
                }
                ops.push(json!({"op": "remove", "path": format!("/metadata/annotations/{}", esc(OPERATION))}));
                set_annotation(&mut ops, obj, LAST_HEARTBEAT_AT, &heartbeat_value(now));
            }
        }
        _ => {}
    }
    Ok(ops)
}

/// The heartbeat annotation's value: RFC 3339 with milliseconds, UTC.
pub fn heartbeat_value(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Adds the configured default lifetimes where `obj`'s spec gives none.
pub(super) fn default_lifetimes(ops: &mut Vec<Value>, obj: &DynamicObject, idle: &str, max: &str) {
    if spec_str(obj, "idleTimeout").is_none() {
        ops.push(json!({"op": "add", "path": "/spec/idleTimeout", "value": idle}));
    }
    if spec_str(obj, "maxLifetime").is_none() {
        ops.push(json!({"op": "add", "path": "/spec/maxLifetime", "value": max}));
    }
}

#[cfg(test)]
mod tests;
