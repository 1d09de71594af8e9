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
/// Nor did one [`Error::Waiting`] for what is under way: it runs again
/// after the same growing delay, and its status says what it waits for.
pub fn retry_after_error<K: Resource<DynamicType = ()>>(ctx: &Context, kind: Kind, obj: &K, err: &Error) -> Action {
    if let Error::Superseded { .. } = err {
        tracing::debug!(kind = kind.name(), object = %failure_key(kind, obj), "superseded; again from the latest version");
        return Action::requeue(SUPERSEDED_RETRY);
    }
    let key = failure_key(kind, obj);
    let failures = {
        let mut f = ctx.failures.lock().unwrap();
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = retry_delay(failures);
    if let Error::Waiting(what) = err {
        tracing::debug!(kind = kind.name(), object = %key, waiting = %what, again_in = ?delay, "waiting");
        return Action::requeue(delay);
    }
    ctx.metrics.error(kind, err.metric_label());
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
        let uid = obj.meta().uid.as_deref().unwrap_or_default();
        ctx.written.forget(uid);
        // A pass of an object being deleted succeeds once its cleanup is
        // done and the finalizer removed (or it had none of Portico's).
        ctx.released.release(uid);
    }
}

/// Whether `obj` is being deleted and this operator already cleaned up
/// after it and removed its finalizer: a pass from a version the watch
/// has not yet replaced, with nothing to do (see [`super::released`]).
pub fn nothing_left<K: Resource>(ctx: &Context, obj: &K) -> bool {
    let m = obj.meta();
    let done = m.deletion_timestamp.is_some() && ctx.released.released(m.uid.as_deref().unwrap_or_default());
    if done {
        tracing::debug!("cleaned up already; the watch has not delivered the deletion yet");
    }
    done
}

/// A pass's result out of the finalizer helper: the reconcile error inside
/// a finalizer error; a finalizer the API server no longer has an object
/// to remove from (a pass that cleaned up after an object another pass
/// already released) is done.
pub fn settle(result: Result<Action, kube::runtime::finalizer::Error<Error>>) -> Result<Action, Error> {
    use kube::runtime::finalizer::Error as F;
    match result {
        Ok(action) => Ok(action),
        Err(F::RemoveFinalizer(kube::Error::Api(s))) if s.code == 404 => {
            tracing::debug!("gone before its finalizer was removed: released already");
            Ok(Action::await_change())
        }
        Err(F::ApplyFailed(e) | F::CleanupFailed(e)) => Err(e),
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": "x", "message": "x",
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn a_finalizer_whose_object_is_gone_is_released_and_other_failures_stay_failures() {
        use kube::runtime::finalizer::Error as F;
        assert_eq!(
            settle(Err(F::RemoveFinalizer(api_error(404)))).unwrap(),
            Action::await_change()
        );
        assert!(matches!(
            settle(Err(F::RemoveFinalizer(api_error(422)))),
            Err(Error::Finalizer(_))
        ));
        assert!(matches!(
            settle(Err(F::AddFinalizer(api_error(404)))),
            Err(Error::Finalizer(_))
        ));
        assert!(matches!(
            settle(Err(F::CleanupFailed(Error::Cleanup("1 left".into())))),
            Err(Error::Cleanup(_))
        ));
    }

    #[test]
    fn retries_of_one_object_back_off_from_one_second_to_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(retry_delay(200).as_secs(), 300, "no overflow");
    }
}
