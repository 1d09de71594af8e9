//! Step 4, report (pure): the phase a Deployment is in, from the health of
//! its objects, and its bounded history.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use crate::{
    api::deployment::{HISTORY_LIMIT, Health, HistoryEntry, Operation, OperationResult, ResourceStatus},
    kstatus::{Phase, Reason},
};

/// The phase from the objects' health: Stalled when one failed, Reconciling
/// while suspended or while any is not current, else Ready.
pub fn phase(resources: &[ResourceStatus], suspended: bool) -> Phase {
    let describe = |r: &ResourceStatus| format!("{} {}: {}", r.kind, r.name, r.message.clone().unwrap_or_default());
    if let Some(f) = resources.iter().find(|r| r.health == Health::Failed) {
        return Phase::Stalled {
            reason: Reason::ResourceFailed,
            message: describe(f),
        };
    }
    if suspended {
        return Phase::Reconciling {
            reason: Reason::Suspended,
            message: "suspended: changes are not applied".into(),
        };
    }
    match resources.iter().find(|r| r.health != Health::Current) {
        Some(w) => Phase::Reconciling {
            reason: Reason::Progressing,
            message: format!("waiting for {}", describe(w)),
        },
        None => Phase::Ready {
            reason: Reason::AllCurrent,
            message: format!("all {} objects are ready", resources.len()),
        },
    }
}

/// Adds an operation to the history, newest last, keeping at most
/// [`HISTORY_LIMIT`]; a failure repeated on every retry is recorded once.
pub fn record(history: &mut Vec<HistoryEntry>, operation: Operation, result: OperationResult, message: String) {
    if let Some(last) = history.last()
        && last.operation == operation
        && last.result == result
        && last.message.as_deref() == Some(message.as_str())
        && result == OperationResult::Failed
    {
        return;
    }
    history.push(HistoryEntry {
        time: Time(Timestamp::now()),
        operation,
        result,
        message: Some(message),
    });
    let excess = history.len().saturating_sub(HISTORY_LIMIT);
    history.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, health: Health) -> ResourceStatus {
        ResourceStatus {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("team-a".into()),
            name: name.into(),
            health,
            message: Some(format!("{health:?}")),
            applied_generation: None,
            applied_resource_version: None,
        }
    }

    #[test]
    fn one_failed_object_stalls_any_waiting_one_reconciles_else_ready() {
        let ok = object("a", Health::Current);
        let slow = object("b", Health::InProgress);
        let broken = object("c", Health::Failed);
        assert!(matches!(phase(&[ok.clone(), slow.clone(), broken], false),
            Phase::Stalled { reason: Reason::ResourceFailed, ref message } if message.starts_with("Deployment c")));
        assert!(matches!(phase(&[ok.clone(), slow.clone()], false),
            Phase::Reconciling { reason: Reason::Progressing, ref message } if message == "waiting for Deployment b: InProgress"));
        assert!(matches!(
            phase(std::slice::from_ref(&ok), true),
            Phase::Reconciling {
                reason: Reason::Suspended,
                ..
            }
        ));
        assert!(matches!(phase(&[ok.clone(), ok], false),
            Phase::Ready { reason: Reason::AllCurrent, ref message } if message == "all 2 objects are ready"));
    }

    #[test]
    fn history_is_bounded_and_repeated_failures_are_recorded_once() {
        let mut h = vec![];
        for _ in 0..3 {
            record(&mut h, Operation::Update, OperationResult::Failed, "refused".into());
        }
        assert_eq!(h.len(), 1);
        for i in 0..30 {
            record(
                &mut h,
                Operation::Update,
                OperationResult::Succeeded,
                format!("update {i}"),
            );
        }
        assert_eq!(h.len(), HISTORY_LIMIT);
        assert_eq!(h.last().unwrap().message.as_deref(), Some("update 29"));
    }
}
