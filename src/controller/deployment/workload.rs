//! Workloads that cannot start: a Deployment, StatefulSet, DaemonSet or Job
//! of a Portico Deployment still rolling out after [`LOOK_AFTER`] has its
//! pods read (as the applier, so nobody learns more than their RBAC lets
//! them) and, when one of them waits in a state it will not leave by itself
//! — CrashLoopBackOff, an image that cannot be pulled, a bad container
//! configuration — the object is Failed with that reason, so the
//! Deployment is Stalled and says why. The pods are read only then: a
//! rollout that goes well costs no request. What a failure message starts
//! with is its cause ([`cause`]), the bounded label of the stall metric.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{Api, Client, ResourceExt, api::ListParams};
use serde_json::Value;

use crate::api::deployment::{Health, ResourceStatus};

/// How long a Deployment is not Ready before its workloads' pods are read.
pub const LOOK_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

/// Container waiting reasons a pod does not leave by itself.
pub const STUCK: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The causes [`cause`] tells apart, besides [`STUCK`].
pub const CAUSES: [&str; 5] = ["RolloutFailed", "JobFailed", "PodFailed", "VolumeLost", "Other"];

/// The cause of a failed object's health message (pure): the stuck
/// container state it starts with, or what kind of failure
/// [`super::health::health`] reported.
pub fn cause(message: &str) -> &'static str {
    if let Some(s) = STUCK.iter().find(|s| message.starts_with(&format!("{s} "))) {
        return s;
    }
    match message {
        m if m.starts_with("rollout failed") => "RolloutFailed",
        m if m.starts_with("job failed") => "JobFailed",
        m if m.starts_with("pod failed") => "PodFailed",
        m if m.starts_with("the volume was lost") => "VolumeLost",
        _ => "Other",
    }
}

/// The first container of `pod` (init containers first) waiting in a
/// [`STUCK`] state, as a health message that starts with the state (pure).
pub fn stuck(pod: &Value) -> Option<String> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/status/{k}")).and_then(Value::as_array))
        .flatten()
        .find_map(|c| {
            let waiting = c.pointer("/state/waiting")?;
            let reason = waiting["reason"].as_str()?;
            STUCK.contains(&reason).then(|| {
                let container = c["name"].as_str().unwrap_or_default();
                let detail = waiting["message"].as_str().unwrap_or_default();
                let detail: String = detail.chars().take(300).collect();
                format!("{reason} in pod {name}, container {container}: {detail}")
                    .trim_end_matches([':', ' '])
                    .to_string()
            })
        })
}

/// The label selector of a workload's pods (pure): its `spec.selector`'s
/// `matchLabels`; `None` for other kinds, or a selector with expressions.
pub fn selector(kind: &str, live: &Value) -> Option<String> {
    if !matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job") {
        return None;
    }
    let sel = live.pointer("/spec/selector")?;
    if sel
        .get("matchExpressions")
        .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
    {
        return None;
    }
    let labels = sel.get("matchLabels")?.as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Whether a Deployment whose Ready condition has been false since
/// `not_ready_since` should have its workloads' pods read at `now` (pure).
pub fn time_to_look(not_ready_since: Option<Timestamp>, now: Timestamp) -> bool {
    not_ready_since.is_some_and(|t| now.duration_since(t).unsigned_abs() >= LOOK_AFTER && t <= now)
}

/// Marks Failed each workload of `inventory` still in progress whose pods
/// (read with `client` in `namespace`, the Deployment's) are stuck. A read
/// refused or failed leaves the object as it was.
pub async fn check(client: &Client, inventory: &mut [ResourceStatus], live: &BTreeMap<String, Value>) {
    for r in inventory.iter_mut().filter(|r| r.health == Health::InProgress) {
        let Some(obj) = live.get(&format!("{}/{}", r.kind, r.name)) else {
            continue;
        };
        let Some(sel) = selector(&r.kind, obj) else {
            continue;
        };
        let ns = r
            .namespace
            .clone()
            .unwrap_or_else(|| obj["metadata"]["namespace"].as_str().unwrap_or_default().into());
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match pods.list(&ListParams::default().labels(&sel)).await {
            Ok(list) => {
                let found = list.items.iter().find_map(|p| {
                    let v = serde_json::to_value(p).ok()?;
                    stuck(&v).map(|m| (p.name_any(), m))
                });
                if let Some((_, message)) = found {
                    r.health = Health::Failed;
                    r.message = Some(message);
                }
            }
            Err(e) => tracing::debug!(object = %r.name, error = %e, "the pods of a workload could not be read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: Value) -> Value {
        json!({"metadata": {"name": "web-7d9f-abcde"}, "status": statuses})
    }

    #[test]
    fn a_pod_is_stuck_only_in_a_state_it_does_not_leave_by_itself() {
        let waiting = |reason: &str| {
            pod(json!({"containerStatuses": [
                {"name": "sidecar", "state": {"running": {}}},
                {"name": "app", "state": {"waiting": {"reason": reason, "message": "back-off pulling image \"nowhere/app:1\""}}}]}))
        };
        assert_eq!(
            stuck(&waiting("ImagePullBackOff")).as_deref(),
            Some("ImagePullBackOff in pod web-7d9f-abcde, container app: back-off pulling image \"nowhere/app:1\"")
        );
        assert_eq!(stuck(&waiting("ContainerCreating")), None, "it gets there by itself");
        let init = pod(json!({"initContainerStatuses": [
            {"name": "migrate", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}));
        assert_eq!(
            stuck(&init).as_deref(),
            Some("CrashLoopBackOff in pod web-7d9f-abcde, container migrate")
        );
        assert_eq!(stuck(&pod(json!({}))), None);
    }

    #[test]
    fn a_failure_message_names_its_cause() {
        assert_eq!(
            cause("ImagePullBackOff in pod p, container c: back-off"),
            "ImagePullBackOff"
        );
        assert_eq!(cause("CrashLoopBackOff in pod p, container c"), "CrashLoopBackOff");
        assert_eq!(cause("rollout failed: too slow"), "RolloutFailed");
        assert_eq!(cause("job failed: BackoffLimitExceeded"), "JobFailed");
        assert_eq!(cause("pod failed"), "PodFailed");
        assert_eq!(cause("the volume was lost"), "VolumeLost");
        assert_eq!(cause("ImagePullBackOffice"), "Other");
    }

    #[test]
    fn pods_are_found_by_the_workloads_match_labels() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}});
        assert_eq!(selector("Deployment", &d).as_deref(), Some("app=web,tier=front"));
        assert_eq!(selector("ConfigMap", &d), None);
        let exprs = json!({"spec": {"selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "x", "operator": "Exists"}]}}});
        assert_eq!(selector("Deployment", &exprs), None, "expressions are not read");
        assert_eq!(selector("Job", &json!({"spec": {}})), None);
    }

    #[test]
    fn pods_are_read_only_once_a_deployment_has_not_been_ready_for_a_while() {
        let now: Timestamp = "2026-12-07T10:00:30Z".parse().unwrap();
        assert!(time_to_look(Some("2026-12-07T10:00:00Z".parse().unwrap()), now));
        assert!(!time_to_look(Some("2026-12-07T10:00:20Z".parse().unwrap()), now));
        assert!(!time_to_look(None, now));
    }
}
