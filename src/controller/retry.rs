//! After a pass: a failed reconcile is counted, logged, published as a
//! Warning Event and retried after a per-object delay that grows with each
//! failure in a row; a successful one starts the delays over.

use kube::{
    Resource,
    runtime::{controller::Action, events::Event},
};

use super::{Context, Error, event::Happened};
use crate::api::Kind;

/// How soon a pass superseded by a newer version of its object runs again:
/// long enough for the watch to deliver the version that superseded it.
pub const SUPERSEDED_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// The delay before the `failures`-th retry of one object (pure): 1 s,
/// doubling, at most five minutes.
pub fn retry_delay(failures: u32) -> std::time::Duration {
    let secs = 1u64.checked_shl(failures.saturating_sub(1)).unwrap_or(u64::MAX);
    std::time::Duration::from_secs(secs.min(300))
}

fn failure_key<K: Resource>(kind: Kind, obj: &K) -> String {
    let m = obj.meta();
    format!(
        "{kind}/{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

/// What every controller does when a reconcile fails: count it by reason,
/// log it with the object, publish it as a Warning Event on the object (so
/// `kubectl describe` shows it), and try again after a per-object delay that
/// grows with each failure in a row (see [`retry_delay`]).
///
/// A pass [`Error::Superseded`] by a newer version of its object did not
/// fail: it is not counted or published, and the object is reconciled
/// again after [`SUPERSEDED_RETRY`], from the version the watch has by then.
pub fn retry_after_error<K: Resource<DynamicType = ()>>(ctx: &Context, kind: Kind, obj: &K, err: &Error) -> Action {
    if let Error::Superseded { .. } = err {
        tracing::debug!(kind = kind.name(), object = %failure_key(kind, obj), "superseded; again from the latest version");
        return Action::requeue(SUPERSEDED_RETRY);
    }
    ctx.metrics.error(kind, err.metric_label());
    let key = failure_key(kind, obj);
    let failures = {
        let mut f = ctx.failures.lock().unwrap();
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = retry_delay(failures);
    tracing::warn!(kind = kind.name(), object = %key, error = %err, failures, retry_in = ?delay, "reconcile failed");
    let recorder = ctx.recorder.clone();
    let reference = obj.object_ref(&());
    let event = Event {
        type_: Happened::ReconcileFailed.type_(),
        reason: Happened::ReconcileFailed.reason(),
        note: Some(format!("{err} (retrying in {}s)", delay.as_secs())),
        action: Happened::ReconcileFailed.action().into(),
        secondary: None,
    };
    tokio::spawn(async move {
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "cannot publish event");
        }
    });
    Action::requeue(delay)
}

/// A reconcile of `obj` succeeded: its next failure starts the delays over,
/// and once it was being deleted (its cleanup is done) its last status is
/// forgotten.
pub fn reconciled<K: Resource>(ctx: &Context, kind: Kind, obj: &K) {
    let key = failure_key(kind, obj);
    {
        let mut f = ctx.failures.lock().unwrap();
        if !f.is_empty() {
            f.remove(&key);
        }
    }
    if obj.meta().deletion_timestamp.is_some() {
        ctx.written.forget(obj.meta().uid.as_deref().unwrap_or_default());
    }
}

/// The reconcile error inside a finalizer error.
pub fn from_finalizer(e: kube::runtime::finalizer::Error<Error>) -> Error {
    match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_of_one_object_back_off_from_one_second_to_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(retry_delay(200).as_secs(), 300, "no overflow");
    }
}
