//! The cleanup step, on deletion: records the end, then removes what was
//! made in the target (the access service account first, which revokes the
//! token at once) and in the host — only objects carrying this Terminal's
//! UID label.

use std::time::Duration;

use k8s_openapi::{
    api::{
        core::v1::{Namespace, Pod, Secret, ServiceAccount},
        rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, ResourceExt, api::ListParams, runtime::controller::Action};
use tracing::info;

use super::{
    KIND,
    build::{self, Names, Side},
    now, sides,
};
use crate::controller::event::Happened;
use crate::{
    api::Terminal,
    clusters::ClusterClient,
    controller::{Context, Error, delete_if_exists, delete_labelled, kube_err, report::record_deletion},
    lifetime::until,
};

pub(super) async fn cleanup(t: &Terminal, ctx: &Context) -> Result<Action, Error> {
    record_deletion(ctx, t).await;
    let ns = t.namespace().unwrap_or_default();
    let names = Names::for_uid(&t.uid().unwrap_or_default());
    let mut failures: Vec<Left> = vec![];
    if let Some((host_side, target_side)) = sides(t) {
        match ctx.clusters.get(&ns, t.spec.target.cluster.as_ref()).await {
            Ok(c) => {
                let access = &ctx.config.terminal.access_namespace;
                if let Err(e) = cleanup_target(t, &names, &c, &target_side, access).await {
                    failures.push(Left::retry(format!("target: {e}")));
                }
            }
            Err(e) => failures.push(Left::cluster(format!("target cluster: {e}"), e.is_permanent())),
        }
        match ctx.clusters.get(&ns, t.spec.host.cluster.as_ref()).await {
            Ok(c) => {
                if let Err(e) = cleanup_host(t, &names, &c, &host_side).await {
                    failures.push(Left::retry(format!("host: {e}")));
                }
            }
            Err(e) => failures.push(Left::cluster(format!("host cluster: {e}"), e.is_permanent())),
        }
    }
    if failures.is_empty() {
        info!("terminal cleaned up");
        return Ok(Action::await_change());
    }
    ctx.metrics.cleanup_failed(KIND);
    let deleting_since = t.metadata.deletion_timestamp.as_ref().map(|d| d.0).unwrap_or_else(now);
    let timeout: Duration = ctx.config.terminal.cleanup_timeout.into();
    let deadline = deleting_since
        .saturating_add(SignedDuration::try_from(timeout).unwrap_or_default())
        .unwrap_or(Timestamp::MAX);
    match after_failures(&failures, until(deadline).is_zero(), timeout) {
        Outcome::GiveUp(note) => {
            ctx.event(t, Happened::CleanupIncomplete, note).await;
            Ok(Action::await_change())
        }
        Outcome::Retry(msg) => {
            ctx.event(t, Happened::CleanupRetrying, msg.clone()).await;
            Err(Error::Cleanup(msg))
        }
    }
}

/// What one side's cleanup left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Left {
    /// What was left, and why.
    what: String,
    /// Whether retrying cannot help: a cluster whose credentials are gone.
    permanent: bool,
}

impl Left {
    fn retry(what: String) -> Left {
        Left { what, permanent: false }
    }

    fn cluster(what: String, permanent: bool) -> Left {
        Left { what, permanent }
    }
}

/// What a cleanup pass that left something behind leads to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Stop trying (the finalizer goes); the Warning Event's note.
    GiveUp(String),
    /// Try again; what was left.
    Retry(String),
}

/// Decides after `failures`: give up when every failure is permanent (a
/// cluster whose credentials are gone) or the cleanup timeout has passed,
/// else try again (pure).
fn after_failures(failures: &[Left], past_deadline: bool, timeout: Duration) -> Outcome {
    let msg = failures.iter().map(|l| l.what.as_str()).collect::<Vec<_>>().join("; ");
    if failures.iter().all(|l| l.permanent) {
        Outcome::GiveUp(format!(
            "cannot reach a cluster to remove what this Terminal created there; remove it by hand: {msg}"
        ))
    } else if past_deadline {
        Outcome::GiveUp(format!("gave up after {timeout:?}; left behind: {msg}"))
    } else {
        Outcome::Retry(msg)
    }
}

async fn cleanup_target(t: &Terminal, n: &Names, c: &ClusterClient, side: &Side, access: &str) -> Result<(), Error> {
    let selector = format!("{}={}", build::UID_LABEL, t.uid().unwrap_or_default());
    let crbs: Api<ClusterRoleBinding> = Api::all(c.client.clone());
    for crb in crbs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("list ClusterRoleBindings"))?
    {
        delete_if_exists::<ClusterRoleBinding>(&c.client, None, &crb.name_any()).await?;
    }
    let uid = t.uid().unwrap_or_default();
    let mark = (build::UID_LABEL, uid.as_str());
    // The access service account first: its deletion revokes the target token at once.
    delete_labelled::<ServiceAccount>(&c.client, Some(access), &n.access, mark).await?;
    if side.temporary {
        delete_labelled::<Namespace>(&c.client, None, &side.namespace, mark).await?;
        return Ok(());
    }
    let rbs: Api<RoleBinding> = Api::namespaced(c.client.clone(), &side.namespace);
    for rb in rbs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("list RoleBindings"))?
    {
        if rb.name_any().starts_with(&n.access) {
            delete_if_exists::<RoleBinding>(&c.client, Some(&side.namespace), &rb.name_any()).await?;
        }
    }
    Ok(())
}

async fn cleanup_host(t: &Terminal, n: &Names, c: &ClusterClient, side: &Side) -> Result<(), Error> {
    let uid = t.uid().unwrap_or_default();
    let mark = (build::UID_LABEL, uid.as_str());
    if side.temporary {
        delete_labelled::<Namespace>(&c.client, None, &side.namespace, mark).await?;
        return Ok(());
    }
    let ns = Some(side.namespace.as_str());
    delete_labelled::<Pod>(&c.client, ns, &n.pod, mark).await?;
    delete_labelled::<Secret>(&c.client, ns, &n.kubeconfig_secret, mark).await?;
    delete_labelled::<RoleBinding>(&c.client, ns, &n.attach, mark).await?;
    delete_labelled::<Role>(&c.client, ns, &n.attach, mark).await?;
    delete_labelled::<ServiceAccount>(&c.client, ns, &n.attach, mark).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleanup_gives_up_only_on_lost_clusters_or_after_its_timeout() {
        let timeout = Duration::from_secs(300);
        let lost = vec![Left::cluster("target cluster: no Secret".into(), true)];
        assert_eq!(
            after_failures(&lost, false, timeout),
            Outcome::GiveUp(
                "cannot reach a cluster to remove what this Terminal created there; remove it by hand: target \
                 cluster: no Secret"
                    .into()
            )
        );
        let mixed = vec![
            Left::cluster("target cluster: no Secret".into(), true),
            Left::retry("host: 503".into()),
        ];
        assert_eq!(
            after_failures(&mixed, false, timeout),
            Outcome::Retry("target cluster: no Secret; host: 503".into())
        );
        assert_eq!(
            after_failures(&mixed, true, timeout),
            Outcome::GiveUp("gave up after 300s; left behind: target cluster: no Secret; host: 503".into())
        );
    }
}
