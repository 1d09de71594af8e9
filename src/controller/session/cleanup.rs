//! The cleanup step, on deletion: records the end, then removes the
//! kubeconfig Secret first (which revokes its bound token at once), the
//! service account, every binding carrying the claim's UID label in every
//! namespace, and the reader Role.

use k8s_openapi::api::{
    core::v1::{Secret, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{Api, ResourceExt, api::ListParams, runtime::controller::Action};
use tracing::info;

use super::{
    KIND,
    build::{self, Names},
};
use crate::controller::event::Happened;
use crate::{
    api::SessionClaim,
    controller::{Context, Error, delete_if_exists, kube_err, report::record_deletion},
};

pub(super) async fn cleanup(c: &SessionClaim, ctx: &Context) -> Result<Action, Error> {
    record_deletion(ctx, c).await;
    let client = &ctx.client;
    let ns = c.namespace().unwrap_or_default();
    let n = Names::for_uid(&c.uid().unwrap_or_default());
    let result = async {
        delete_if_exists::<Secret>(client, Some(&ns), &n.secret).await?;
        delete_if_exists::<ServiceAccount>(client, Some(&ns), &n.service_account).await?;
        let selector = format!("{}={}", build::UID_LABEL, c.uid().unwrap_or_default());
        let rbs = Api::<RoleBinding>::all(client.clone())
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_err("list the session's RoleBindings"))?;
        for rb in rbs {
            delete_if_exists::<RoleBinding>(client, rb.namespace().as_deref(), &rb.name_any()).await?;
        }
        delete_if_exists::<Role>(client, Some(&ns), &n.reader).await?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        ctx.metrics.cleanup_failed(KIND);
        ctx.event(c, Happened::CleanupRetrying, e.to_string()).await;
        return Err(e);
    }
    info!("session cleaned up");
    Ok(Action::await_change())
}
