//! Health of a live object, kstatus style (pure): rollout progress for
//! Deployments, StatefulSets and DaemonSets, Job completion or failure, PVC
//! bound, Pod ready, and anything else by its `Ready` condition.

use serde_json::Value;

use crate::api::deployment::Health;

fn int(v: &Value, path: &[&str]) -> i64 {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn cond_true(v: &Value, type_: &str) -> bool {
    condition(v, type_).is_some_and(|c| c["status"] == "True")
}

/// The health of `obj` (a live object as JSON) and why.
pub fn health(kind: &str, obj: &Value) -> (Health, String) {
    let generation = int(obj, &["metadata", "generation"]);
    let observed = int(obj, &["status", "observedGeneration"]);
    let stale = generation > 0 && observed < generation && obj.pointer("/status/observedGeneration").is_some();
    let current = |msg: &str| (Health::Current, msg.to_string());
    let progress = |msg: String| (Health::InProgress, msg);
    match kind {
        "Deployment" => {
            if let Some(c) = condition(obj, "Progressing")
                && c["reason"] == "ProgressDeadlineExceeded"
            {
                return (
                    Health::Failed,
                    format!("rollout failed: {}", c["message"].as_str().unwrap_or_default()),
                );
            }
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let (updated, available) = (
                int(obj, &["status", "updatedReplicas"]),
                int(obj, &["status", "availableReplicas"]),
            );
            if stale || obj.pointer("/status/observedGeneration").is_none() {
                return progress("waiting for the rollout to start".into());
            }
            if updated < want || available < want {
                return progress(format!("{available} of {want} replicas available, {updated} updated"));
            }
            current(&format!("{available} replicas available"))
        }
        "StatefulSet" => {
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let ready = int(obj, &["status", "readyReplicas"]);
            let (cur, upd) = (
                obj.pointer("/status/currentRevision"),
                obj.pointer("/status/updateRevision"),
            );
            if stale || obj.pointer("/status/observedGeneration").is_none() {
                return progress("waiting for the rollout to start".into());
            }
            if ready < want || (upd.is_some() && cur != upd) {
                return progress(format!("{ready} of {want} replicas ready"));
            }
            current(&format!("{ready} replicas ready"))
        }
        "DaemonSet" => {
            let desired = int(obj, &["status", "desiredNumberScheduled"]);
            let (available, updated) = (
                int(obj, &["status", "numberAvailable"]),
                int(obj, &["status", "updatedNumberScheduled"]),
            );
            if stale || available < desired || updated < desired {
                return progress(format!("{available} of {desired} pods available"));
            }
            current(&format!("{available} pods available"))
        }
        "Job" => {
            if cond_true(obj, "Failed") {
                let m = condition(obj, "Failed")
                    .and_then(|c| c["message"].as_str())
                    .unwrap_or_default();
                return (Health::Failed, format!("job failed: {m}"));
            }
            if cond_true(obj, "Complete") {
                return current("job complete");
            }
            progress(format!("{} pods active", int(obj, &["status", "active"])))
        }
        "PersistentVolumeClaim" => match obj.pointer("/status/phase").and_then(Value::as_str) {
            Some("Bound") => current("bound"),
            Some("Lost") => (Health::Failed, "the volume was lost".into()),
            p => progress(format!("waiting for a volume ({})", p.unwrap_or("Pending"))),
        },
        "Pod" => match obj.pointer("/status/phase").and_then(Value::as_str) {
            Some("Succeeded") => current("pod succeeded"),
            Some("Failed") => (Health::Failed, "pod failed".into()),
            _ if cond_true(obj, "Ready") => current("pod ready"),
            p => progress(format!("pod not ready ({})", p.unwrap_or("Pending"))),
        },
        _ => match condition(obj, "Ready") {
            None => current("exists"),
            Some(_) if stale => progress("not yet observed by its controller".into()),
            Some(c) if c["status"] == "True" => current("ready"),
            Some(c) if cond_true(obj, "Stalled") => {
                (Health::Failed, c["message"].as_str().unwrap_or("stalled").to_string())
            }
            Some(c) => progress(c["message"].as_str().unwrap_or("not ready").to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployments_progress_until_all_replicas_are_available() {
        let d = |status: Value| json!({"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status});
        assert_eq!(health("Deployment", &d(json!({}))).0, Health::InProgress);
        assert_eq!(
            health(
                "Deployment",
                &d(json!({"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}))
            )
            .0,
            Health::InProgress
        );
        assert_eq!(
            health(
                "Deployment",
                &d(json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 1}))
            )
            .0,
            Health::InProgress
        );
        assert_eq!(
            health(
                "Deployment",
                &d(json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}))
            )
            .0,
            Health::Current
        );
        let failed = d(
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]}),
        );
        assert_eq!(
            health("Deployment", &failed),
            (Health::Failed, "rollout failed: too slow".into())
        );
    }

    #[test]
    fn jobs_pvcs_pods_and_custom_resources() {
        let job = |c: &str| json!({"status": {"conditions": [{"type": c, "status": "True", "message": "m"}]}});
        assert_eq!(health("Job", &job("Complete")).0, Health::Current);
        assert_eq!(health("Job", &job("Failed")).0, Health::Failed);
        assert_eq!(health("Job", &json!({})).0, Health::InProgress);
        assert_eq!(
            health("PersistentVolumeClaim", &json!({"status": {"phase": "Bound"}})).0,
            Health::Current
        );
        assert_eq!(
            health("PersistentVolumeClaim", &json!({"status": {"phase": "Pending"}})).0,
            Health::InProgress
        );
        assert_eq!(
            health(
                "Pod",
                &json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
            )
            .0,
            Health::Current
        );
        assert_eq!(
            health(
                "Widget",
                &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
            )
            .0,
            Health::InProgress
        );
        assert_eq!(
            health(
                "Widget",
                &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
            )
            .0,
            Health::Current
        );
        assert_eq!(health("ConfigMap", &json!({"data": {}})).0, Health::Current);
        assert_eq!(health("StatefulSet", &json!({"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "a"}})).0, Health::Current);
    }
}
