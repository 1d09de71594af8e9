//! The report plumbing the three controllers share: a kind's status carries
//! a kstatus summary ([`Reported`]); a pass writes its phase into it (only
//! when it changed), stalls with a Warning Event, or — for the kinds that
//! end ([`Ends`]) — records why the object ended and deletes it.

use std::{fmt::Debug, time::Duration};

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::Condition, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::controller::Action,
};
use serde::{Serialize, de::DeserializeOwned};

use super::{Context, Error, event::Happened, kube_err, written};
use crate::{
    api::{
        Deployment, DeploymentStatus, Kind, SessionClaim, SessionClaimStatus, Terminal, TerminalStatus,
        common::EndReason,
    },
    install::FIELD_MANAGER,
    kstatus::{Phase, Reason},
};

/// How soon a stalled object is looked at again without a change.
pub const STALLED_RETRY: Duration = Duration::from_secs(60);

/// A kind whose status its controller writes, with a kstatus summary:
/// `message`, `conditions` and `observedGeneration`.
pub trait Reported:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug
{
    /// The status type.
    type Status: Clone + Default + PartialEq + Serialize;
    /// Which kind it is.
    const KIND: Kind;
    /// Whether its status is written only over the version a pass read:
    /// a status that accumulates (a history, an inventory of what was
    /// applied) must not be replaced by a pass that started before the
    /// last write's watch event arrived. Such a write is refused as
    /// [`Error::Superseded`] and the pass runs again from the latest
    /// version; a status computed whole on every pass is written as is.
    const GUARDED: bool;
    /// The status it has now.
    fn current(&self) -> Option<&Self::Status>;
    /// The conditions in a status.
    fn conditions(status: &Self::Status) -> &[Condition];
    /// Sets a status's summary.
    fn summarize(status: &mut Self::Status, message: String, conditions: Vec<Condition>, generation: Option<i64>);
}

/// A kind that ends (by idle timeout, maximum lifetime or deletion) and
/// records why in `status.endReason`.
pub trait Ends: Reported {
    /// The end reason in a status.
    fn end_reason(status: &mut Self::Status) -> &mut Option<EndReason>;
}

macro_rules! reported {
    ($kind:ident, $status:ident, $guarded:literal) => {
        impl Reported for $kind {
            type Status = $status;
            const KIND: Kind = Kind::$kind;
            const GUARDED: bool = $guarded;
            fn current(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn conditions(status: &$status) -> &[Condition] {
                &status.conditions
            }
            fn summarize(status: &mut $status, message: String, conditions: Vec<Condition>, generation: Option<i64>) {
                status.message = Some(message);
                status.conditions = conditions;
                status.observed_generation = generation;
            }
        }
    };
}
reported!(Terminal, TerminalStatus, false);
reported!(SessionClaim, SessionClaimStatus, false);
// Its history and its inventory of applied objects accumulate.
reported!(Deployment, DeploymentStatus, true);

impl Ends for Terminal {
    fn end_reason(status: &mut TerminalStatus) -> &mut Option<EndReason> {
        &mut status.end_reason
    }
}

impl Ends for SessionClaim {
    fn end_reason(status: &mut SessionClaimStatus) -> &mut Option<EndReason> {
        &mut status.end_reason
    }
}

/// `base` summarizing `phase` at `now` (pure): its message, its conditions
/// (each keeping its transition time from `obj`'s current status while its
/// value holds) and `obj`'s generation.
pub fn with_phase<K: Reported>(obj: &K, mut base: K::Status, phase: &Phase, now: Timestamp) -> K::Status {
    let old = obj.current().map(K::conditions).unwrap_or_default();
    let generation = obj.meta().generation;
    let conditions = crate::kstatus::conditions(phase, generation, now, old);
    K::summarize(&mut base, phase.message().to_string(), conditions, generation);
    base
}

/// Writes `base` summarizing `phase` as `obj`'s status (no write when nothing changed).
pub async fn set_phase<K: Reported>(ctx: &Context, obj: &K, base: K::Status, phase: &Phase) -> Result<(), Error> {
    let status = with_phase(obj, base, phase, Timestamp::now());
    set_status(ctx, obj, obj.current(), &status).await
}

/// `obj` cannot go on until something changes: a `Stalled` status, a
/// Warning Event with the reason (once the status says it: a pass whose
/// write was superseded publishes nothing, and its next pass does), and
/// another look after [`STALLED_RETRY`].
pub async fn stall<K: Reported>(
    ctx: &Context,
    obj: &K,
    base: K::Status,
    reason: Reason,
    message: String,
) -> Result<Action, Error> {
    let phase = Phase::Stalled {
        reason,
        message: message.clone(),
    };
    set_phase(ctx, obj, base, &phase).await?;
    ctx.event(obj, Happened::Stalled(reason), message).await;
    Ok(Action::requeue(STALLED_RETRY))
}

/// Ends an object that expired for `reason` at `at`: records the reason in
/// its status (no longer Ready), publishes an Event, counts the expiry,
/// and deletes it (its finalizer then removes what was made for it).
pub async fn expire<K: Ends>(
    ctx: &Context,
    obj: &K,
    mut base: K::Status,
    reason: EndReason,
    at: Timestamp,
) -> Result<Action, Error> {
    *K::end_reason(&mut base) = Some(reason);
    set_phase(ctx, obj, base, &Phase::ended(reason)).await?;
    let kind = K::KIND;
    let note = format!("deleting the {kind}: {}", reason.describe());
    ctx.event(obj, Happened::Ended(reason), note).await;
    ctx.metrics.expired(kind, &format!("{reason:?}"));
    tracing::info!(reason = ?reason, "expired");
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    match api.delete(&obj.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(kube_err(format!("delete the expired {kind}"))(e)),
    }
    // Once deleted: a pass after a failed delete, or after a restart, expires
    // it again. It lived until it expired, however late this pass came.
    super::usage::ended(ctx, obj, reason, at);
    Ok(Action::await_change())
}

/// On deletion, before cleanup: unless an end was recorded already, records
/// that `obj` was deleted (no longer Ready) and counts it; best effort, the
/// cleanup goes on either way.
pub async fn record_deletion<K: Ends>(ctx: &Context, obj: &K) {
    let mut base = obj.current().cloned().unwrap_or_default();
    if K::end_reason(&mut base).is_some() {
        return;
    }
    *K::end_reason(&mut base) = Some(EndReason::Deleted);
    // Counted once the status says so: a pass after a failed write (or a
    // restart) records it then, and one after that finds it recorded.
    if let Err(e) = set_phase(ctx, obj, base, &Phase::ended(EndReason::Deleted)).await {
        tracing::debug!(error = %e, "cannot record the deletion in the status");
        return;
    }
    ctx.metrics.expired(K::KIND, "Deleted");
    let at = obj
        .meta()
        .deletion_timestamp
        .as_ref()
        .map_or_else(Timestamp::now, |t| t.0);
    super::usage::ended(ctx, obj, EndReason::Deleted, at);
}

/// A token was renewed: counted, and a `TokenRenewed` Event on `obj` saying until when.
pub async fn token_renewed<K: Reported>(ctx: &Context, obj: &K, note: String) {
    ctx.metrics.token_renewed(K::KIND);
    ctx.event(obj, Happened::TokenRenewed, note).await;
}

/// Writes `status` unless it equals the object's current one, or a pass
/// from this same version of the object wrote it already (so an unchanged
/// state costs no write and produces no watch event). For a
/// [`Reported::GUARDED`] kind, only over the version `obj` is.
pub async fn set_status<K: Reported>(
    ctx: &Context,
    obj: &K,
    current: Option<&K::Status>,
    status: &K::Status,
) -> Result<(), Error> {
    if current == Some(status) {
        return Ok(());
    }
    let value = serde_json::to_value(status).expect("status serializes");
    let (uid, rv) = (
        obj.meta().uid.as_deref().unwrap_or_default(),
        obj.meta().resource_version.as_deref().unwrap_or_default(),
    );
    let digest = written::digest(&value);
    if ctx.written.already(uid, rv, digest) {
        return Ok(());
    }
    // This operator wrote over that version already: the API server would
    // refuse the write, so it is not sent.
    if K::GUARDED && ctx.written.replaced(uid, rv) {
        return Err(Error::Superseded {
            kind: K::KIND.name().to_string(),
            name: obj.name_any(),
        });
    }
    let over = K::GUARDED.then_some(rv);
    write_status(&ctx.client, obj, value, over).await?;
    ctx.written.wrote(uid, rv, digest);
    Ok(())
}

/// The JSON patch that replaces an object's status with `status` (pure);
/// with `over`, only if the object is still at that resourceVersion (the
/// API server answers 409 Conflict otherwise).
pub fn status_patch(status: serde_json::Value, over: Option<&str>) -> json_patch::Patch {
    let mut ops = vec![serde_json::json!({"op": "add", "path": "/status", "value": status})];
    if let Some(rv) = over {
        ops.push(serde_json::json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv}));
    }
    serde_json::from_value(serde_json::Value::Array(ops)).expect("a JSON patch")
}

/// Replaces the object's status with `status` (a JSON patch on the status
/// subresource): the operator writes every status whole, and a JSON patch
/// costs the API server less than a server-side apply of the same status
/// (no YAML decoding, no merge of field sets). With `over`, only over that
/// resourceVersion: a newer object refuses it as [`Error::Superseded`].
pub async fn write_status<K>(
    client: &Client,
    obj: &K,
    status: serde_json::Value,
    over: Option<&str>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let result = api
        .patch_status(
            &obj.name_any(),
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::<()>::Json(status_patch(status, over)),
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 && over.is_some() => Err(Error::Superseded {
            kind: K::kind(&()).to_string(),
            name: obj.name_any(),
        }),
        Err(e) => Err(kube_err(format!(
            "update status of {} {}",
            K::kind(&()),
            obj.name_any()
        ))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_status_write_names_the_version_it_replaces() {
        let status = serde_json::json!({"message": "ready"});
        let as_is = serde_json::to_value(status_patch(status.clone(), None)).unwrap();
        assert_eq!(
            as_is,
            serde_json::json!([{"op": "add", "path": "/status", "value": {"message": "ready"}}])
        );
        let guarded = serde_json::to_value(status_patch(status, Some("42"))).unwrap();
        assert_eq!(
            guarded,
            serde_json::json!([
                {"op": "add", "path": "/status", "value": {"message": "ready"}},
                {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"},
            ])
        );
        // Statuses that accumulate are guarded; those computed whole are not.
        const { assert!(<Deployment as Reported>::GUARDED) };
        const { assert!(!<Terminal as Reported>::GUARDED) };
    }

    fn terminal(status: serde_json::Value) -> Terminal {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": "t", "namespace": "team-a", "generation": 3},
            "spec": {"host": {"namespace": "team-a", "pod": {"image": "toolbox"}}, "target": {"namespace": "team-a"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_phase_sets_the_summary_and_keeps_the_rest_of_the_status() {
        let t = terminal(serde_json::json!({}));
        let base = TerminalStatus {
            pod_name: Some("p".into()),
            ..Default::default()
        };
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let waiting = Phase::Reconciling {
            reason: Reason::PodNotReady,
            message: "waiting".into(),
        };
        let s = with_phase(&t, base, &waiting, at);
        assert_eq!(s.pod_name.as_deref(), Some("p"));
        assert_eq!(s.message.as_deref(), Some("waiting"));
        assert_eq!(s.observed_generation, Some(3));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.observed_generation), ("False", Some(3)));
    }

    #[test]
    fn an_unchanged_phase_keeps_its_transition_times() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let ready = Phase::Ready {
            reason: Reason::PodReady,
            message: "ok".into(),
        };
        let first = with_phase(&terminal(serde_json::json!({})), TerminalStatus::default(), &ready, at);
        let t = terminal(serde_json::to_value(&first).unwrap());
        let again = with_phase(&t, first.clone(), &ready, later);
        assert_eq!(
            again, first,
            "the same phase an hour later is the same status (no write)"
        );
        let ended = with_phase(&t, first, &Phase::ended(EndReason::Deleted), later);
        let r = ended.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((r.status.as_str(), r.last_transition_time.0), ("False", later));
        assert_eq!(ended.message.as_deref(), Some("ended: it was deleted"));
    }
}
