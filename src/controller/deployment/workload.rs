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

use k8s_openapi::{
    api::{apps::v1::ReplicaSet, core::v1::Pod},
    jiff::Timestamp,
};
use kube::{Api, Client, api::ListParams, core::PartialObjectMeta};
use serde_json::Value;

use crate::api::deployment::{DeploymentStatus, Health, Operation, OperationResult, ResourceStatus};

/// How long a Deployment is not Ready after its latest change before its
/// workloads' pods are read.
pub const LOOK_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

/// Container waiting reasons a pod does not leave by itself. (An image
/// pull that failed once, `ErrImagePull`, may pass: its back-off counts.)
pub const STUCK: [&str; 6] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// A container in CrashLoopBackOff counts once it restarted this often.
pub const CRASHES: i64 = 3;

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
/// [`STUCK`] state (a crash loop after [`CRASHES`] restarts), as a health
/// message that starts with the state (pure).
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
            let crashing = reason == "CrashLoopBackOff";
            let counts = !crashing || c["restartCount"].as_i64().unwrap_or(0) >= CRASHES;
            (STUCK.contains(&reason) && counts).then(|| {
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

/// Since when the pods may be read (pure): while Ready is False, from the
/// later of its turning False and the latest create or update the history
/// records — so the change that mends a stuck workload gets its own
/// [`LOOK_AFTER`] before the old pods could fail it again.
pub fn clock(status: &DeploymentStatus) -> Option<Timestamp> {
    let not_ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "False")?
        .last_transition_time
        .0;
    let changed = status
        .history
        .iter()
        .rev()
        .find(|h| {
            matches!(h.operation, Operation::Create | Operation::Update) && h.result == OperationResult::Succeeded
        })
        .map(|h| h.time.0);
    Some(changed.map_or(not_ready, |c| c.max(not_ready)))
}

/// Whether pods may be read at `now`, the [`clock`] having started at `since` (pure).
pub fn time_to_look(since: Option<Timestamp>, now: Timestamp) -> bool {
    since.is_some_and(|t| t <= now && now.duration_since(t).unsigned_abs() >= LOOK_AFTER)
}

/// The UID of the ReplicaSet a Deployment (`uid`) rolls out now (pure): of
/// those it owns, the one with the highest revision.
pub fn newest_replica_set(uid: &str, sets: &[PartialObjectMeta<ReplicaSet>]) -> Option<String> {
    let revision = |rs: &PartialObjectMeta<ReplicaSet>| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    sets.iter()
        .filter(|rs| owned_by(&rs.metadata.owner_references, uid))
        .max_by_key(|rs| revision(rs))
        .and_then(|rs| rs.metadata.uid.clone())
}

fn owned_by(refs: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>, uid: &str) -> bool {
    refs.iter().flatten().any(|r| r.uid == uid)
}

/// Whether `pod` belongs to the current revision of a workload (pure): owned
/// by `owner` (the workload, or its newest ReplicaSet) and, for a
/// StatefulSet, labelled with its update `revision`.
pub fn current(pod: &Pod, owner: &str, revision: Option<&str>) -> bool {
    let labelled = |want: &str| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("controller-revision-hash"))
            .is_some_and(|h| h == want)
    };
    owned_by(&pod.metadata.owner_references, owner) && revision.is_none_or(labelled)
}

/// Marks Failed each object of `inventory` still in progress whose current
/// pods are stuck: a bare Pod from its live object; a Deployment,
/// StatefulSet, DaemonSet or Job from its pods (of its newest ReplicaSet,
/// or its update revision), read with `client` (the applier) where the
/// object lives. A read refused or failed leaves the object as it was.
pub async fn check(client: &Client, inventory: &mut [ResourceStatus], live: &BTreeMap<String, Value>) {
    for r in inventory.iter_mut().filter(|r| r.health == Health::InProgress) {
        let Some(obj) = live.get(&format!("{}/{}", r.kind, r.name)) else {
            continue;
        };
        let found = match r.kind.as_str() {
            "Pod" => stuck(obj),
            _ => match stuck_pods(client, r, obj).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(object = %r.name, error = %e, "the pods of a workload could not be read");
                    None
                }
            },
        };
        if let Some(message) = found {
            r.health = Health::Failed;
            r.message = Some(message);
        }
    }
}

/// The first stuck pod of the current revision of workload `r` (`obj` live).
async fn stuck_pods(client: &Client, r: &ResourceStatus, obj: &Value) -> Result<Option<String>, kube::Error> {
    let Some(sel) = selector(&r.kind, obj) else {
        return Ok(None);
    };
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = r
        .namespace
        .clone()
        .unwrap_or_else(|| obj["metadata"]["namespace"].as_str().unwrap_or_default().into());
    let params = ListParams::default().labels(&sel);
    let (owner, revision) = match r.kind.as_str() {
        "Deployment" => {
            let sets = Api::<ReplicaSet>::namespaced(client.clone(), &ns)
                .list_metadata(&params)
                .await?;
            match newest_replica_set(uid, &sets.items) {
                Some(rs) => (rs, None),
                None => return Ok(None),
            }
        }
        "StatefulSet" => (
            uid.to_string(),
            obj.pointer("/status/updateRevision").and_then(Value::as_str),
        ),
        _ => (uid.to_string(), None),
    };
    let pods = Api::<Pod>::namespaced(client.clone(), &ns).list(&params).await?;
    Ok(pods
        .items
        .iter()
        .filter(|p| current(p, &owner, revision))
        .find_map(|p| serde_json::to_value(p).ok().and_then(|v| stuck(&v))))
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
        assert_eq!(
            stuck(&waiting("ErrImagePull")),
            None,
            "a pull that failed once may pass"
        );
        let crashing = |restarts: i64| {
            pod(json!({"initContainerStatuses": [
                {"name": "migrate", "restartCount": restarts, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}))
        };
        assert_eq!(
            stuck(&crashing(3)).as_deref(),
            Some("CrashLoopBackOff in pod web-7d9f-abcde, container migrate")
        );
        assert_eq!(stuck(&crashing(1)), None, "it may still come up (a database starting)");
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
    fn pods_are_read_only_once_a_deployment_has_not_been_ready_for_a_while_since_its_change() {
        let now: Timestamp = "2026-12-07T10:00:30Z".parse().unwrap();
        assert!(time_to_look(Some("2026-12-07T10:00:00Z".parse().unwrap()), now));
        assert!(!time_to_look(Some("2026-12-07T10:00:20Z".parse().unwrap()), now));
        assert!(!time_to_look(None, now));
        let status = |ready: &str, changed: &str| -> DeploymentStatus {
            serde_json::from_value(json!({
                "conditions": [{"type": "Ready", "status": ready, "reason": "Progressing", "message": "",
                                "lastTransitionTime": "2026-12-07T09:00:00Z"}],
                "history": [{"time": changed, "operation": "Update", "result": "Succeeded"},
                            {"time": "2026-12-07T09:59:00Z", "operation": "Update", "result": "Failed"}],
            }))
            .unwrap()
        };
        assert_eq!(
            clock(&status("False", "2026-12-07T10:00:10Z")),
            Some("2026-12-07T10:00:10Z".parse().unwrap()),
            "the change that mends it starts the clock again"
        );
        assert_eq!(
            clock(&status("False", "2026-12-07T08:00:00Z")),
            Some("2026-12-07T09:00:00Z".parse().unwrap())
        );
        assert_eq!(clock(&status("True", "2026-12-07T08:00:00Z")), None, "Ready");
    }

    #[test]
    fn only_the_current_revisions_pods_count() {
        let rs = |uid: &str, owner: &str, revision: &str| -> PartialObjectMeta<ReplicaSet> {
            serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": uid, "uid": uid, "annotations": {"deployment.kubernetes.io/revision": revision},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": owner}]}}))
            .unwrap()
        };
        let sets = [
            rs("rs-1", "d-1", "1"),
            rs("rs-2", "d-1", "2"),
            rs("rs-9", "someone-else", "9"),
        ];
        assert_eq!(newest_replica_set("d-1", &sets).as_deref(), Some("rs-2"));
        assert_eq!(newest_replica_set("d-2", &sets), None);
        let pod = |owner: &str, hash: &str| -> Pod {
            serde_json::from_value(
                json!({"metadata": {"name": "p", "labels": {"controller-revision-hash": hash},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": owner}]}}),
            )
            .unwrap()
        };
        assert!(current(&pod("rs-2", "h"), "rs-2", None));
        assert!(!current(&pod("rs-1", "h"), "rs-2", None), "the old revision's");
        assert!(
            !current(&pod("other", "h"), "rs-2", None),
            "another workload's, with the same labels"
        );
        assert!(current(&pod("sts", "web-2"), "sts", Some("web-2")));
        assert!(!current(&pod("sts", "web-1"), "sts", Some("web-2")));
    }
}
