//! The report step (pure): the phase a Terminal's pod puts it in, whether
//! this pass makes it Ready, and when to look again.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::{
    api::Terminal,
    kstatus::{Phase, Reason},
};

/// How often a Terminal on another host cluster is looked at while its pod is not ready (no watch there).
pub const REMOTE_POLL: Duration = Duration::from_secs(5);

pub fn pod_phase(pod: Option<&Pod>) -> Phase {
    let Some(pod) = pod else {
        return Phase::Reconciling {
            reason: Reason::PodCreating,
            message: "creating the terminal pod".into(),
        };
    };
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    match phase.as_str() {
        "Running" if ready => Phase::Ready {
            reason: Reason::PodReady,
            message: "the terminal is ready".into(),
        },
        "Failed" | "Succeeded" => Phase::Stalled {
            reason: Reason::PodEnded,
            message: format!("the terminal pod ended ({phase}); delete this Terminal and create a new one"),
        },
        _ => Phase::Reconciling {
            reason: Reason::PodNotReady,
            message: format!("waiting for the terminal pod to become ready (phase {phase})"),
        },
    }
}

/// Whether this pass makes `t` Ready (it was not): the moment for a `Ready` Event.
pub fn becomes_ready(t: &Terminal, phase: &Phase) -> bool {
    let was = t
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    !was && matches!(phase, Phase::Ready { .. })
}

/// When to look again: at expiry or token renewal (`until_expiry`,
/// `until_renewal`), whichever is first, and within [`REMOTE_POLL`] while a
/// pod on another cluster is not ready; never zero.
pub fn next_pass(until_expiry: Duration, until_renewal: Duration, ready: bool, remote_host: bool) -> Duration {
    let mut next = until_expiry.min(until_renewal);
    if !ready && remote_host {
        next = next.min(REMOTE_POLL);
    }
    next.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_phases_map_to_kstatus() {
        assert!(matches!(pod_phase(None), Phase::Reconciling { .. }));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert!(matches!(pod_phase(Some(&pod)), Phase::Ready { .. }));
        let failed: Pod = serde_json::from_value(serde_json::json!({"status": {"phase": "Failed"}})).unwrap();
        assert!(matches!(pod_phase(Some(&failed)), Phase::Stalled { .. }));
    }

    fn terminal(ready: Option<&str>) -> Terminal {
        let conditions: Vec<serde_json::Value> = ready
            .map(|s| {
                serde_json::json!({"type": "Ready", "status": s, "reason": "PodReady", "message": "",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z"})
            })
            .into_iter()
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": "t", "namespace": "team-a"},
            "spec": {"host": {"namespace": "team-a", "pod": {"image": "toolbox"}}, "target": {"namespace": "team-a"}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn the_ready_event_comes_once_on_the_pass_that_makes_it_ready() {
        let ready = Phase::Ready {
            reason: Reason::PodReady,
            message: "ok".into(),
        };
        let waiting = pod_phase(None);
        assert!(becomes_ready(&terminal(None), &ready));
        assert!(becomes_ready(&terminal(Some("False")), &ready));
        assert!(!becomes_ready(&terminal(Some("True")), &ready), "already Ready");
        assert!(!becomes_ready(&terminal(None), &waiting));
    }

    #[test]
    fn the_next_pass_is_at_the_first_deadline_and_soon_for_a_remote_pod_not_ready() {
        let (hour, minute) = (Duration::from_secs(3600), Duration::from_secs(60));
        assert_eq!(next_pass(hour, minute, true, false), minute);
        assert_eq!(next_pass(minute, hour, false, false), minute, "a local pod is watched");
        assert_eq!(next_pass(hour, hour, false, true), REMOTE_POLL);
        assert_eq!(next_pass(hour, hour, true, true), hour);
        assert_eq!(next_pass(Duration::ZERO, hour, true, false), Duration::from_millis(1));
    }
}
