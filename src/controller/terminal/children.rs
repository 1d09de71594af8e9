//! The apply step: the Terminal's objects in the target and the host, in
//! rounds of independent writes; its temporary namespaces (created, never
//! adopted); its target token, issued when missing or due for renewal.

use k8s_openapi::{
    api::core::v1::{Namespace, Pod, Secret},
    jiff::Timestamp,
};
use kube::{Api, Client, ResourceExt, api::PostParams};
use tracing::info;

use super::{
    build::{self, Names, Side},
    now,
    plan::Plan,
    present::{Key, Present, Seen},
};
use crate::{
    api::Terminal,
    clusters::ClusterClient,
    controller::{Context, Error, apply, kube_err, report::token_renewed},
    install::FIELD_MANAGER,
    lifetime::until,
    tokens as token,
};

/// Creates a namespace (never adopting one): `Ok(false)` when it exists already.
pub(super) async fn create_namespace(client: &Client, ns: &Namespace) -> Result<bool, Error> {
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone()).create(&pp, ns).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(kube_err(format!("create namespace {}", ns.name_any()))(e)),
    }
}

/// Creates the temporary namespace `name` for `t`, or confirms that the
/// existing one carries `t`'s UID label. `Ok(Some(message))` when a namespace
/// of that name exists and was not created for `t`: Portico neither uses nor
/// adopts nor deletes it.
pub(super) async fn own_namespace(client: &Client, t: &Terminal, name: &str) -> Result<Option<String>, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let read = kube_err(format!("read namespace {name}"));
    let existing = match api.get_opt(name).await.map_err(read)? {
        Some(ns) => ns,
        None => match create_namespace(client, &build::namespace(t, name)).await? {
            true => return Ok(None),
            // Made by someone else in between: judged like any existing one.
            false => api
                .get(name)
                .await
                .map_err(kube_err(format!("read namespace {name}")))?,
        },
    };
    if build::made_for(existing.labels(), t) {
        return Ok(None);
    }
    Ok(Some(format!(
        "namespace {name} already exists and was not created for this Terminal; Portico neither uses nor \
         deletes it; delete this Terminal and create a new one"
    )))
}

/// Where one Terminal's objects live.
#[derive(Clone, Copy)]
pub(super) struct Places<'a> {
    /// Where the pod, its Secret and the attach access live.
    pub host: &'a Side,
    /// Where the Terminal's role bindings grant access.
    pub target: &'a Side,
    /// Where the access service account lives.
    pub access: &'a Side,
    /// What the watch of the children in this cluster knows of them, where
    /// the host is this cluster and the watch has listed them.
    pub present: Option<&'a Present>,
}

/// Applies every child of `t` in three rounds of independent writes (each
/// round's writes at once): the access service account and its bindings in
/// the target, the attach service account, Role and RoleBinding in the
/// host, and a read of the kubeconfig Secret; then a token when one is due;
/// then the Secret and the pod. Returns when to renew the token, and the
/// pod as applied.
pub(super) async fn apply_children(
    ctx: &Context,
    t: &Terminal,
    n: &Names,
    (target, host): (&ClusterClient, &ClusterClient),
    places: &Places<'_>,
    plan: &Plan,
    expires: Timestamp,
) -> Result<(Timestamp, Option<Pod>), Error> {
    let uid = t.uid().unwrap_or_default();
    let (account_uid, existing, _) = tokio::try_join!(
        apply_target(plan, target, places.access),
        current_token(host, places.host, n, (places.present, &uid)),
        apply_host_access(plan, host),
    )?;
    // A token issued for an access service account since deleted died with it.
    let renew = existing
        .filter(|s| build::token_for_account(s.account_uid.as_deref(), account_uid.as_deref()))
        .and_then(|s| s.renew_at);
    let (renew_at, issued) = ensure_token(ctx, t, n, (target, account_uid.as_deref()), places, expires, renew).await?;
    let write_secret = async {
        match &issued {
            Some(secret) => apply(&host.client, secret).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let (_, applied) = tokio::try_join!(write_secret, apply(&host.client, &plan.pod))?;
    // The API server's answer is the pod as it is now (its status too).
    Ok((renew_at, applied.try_parse::<Pod>().ok()))
}

/// What is known of the kubeconfig Secret's token: from `present` (the
/// watch of the children in this cluster, once listed) without a request,
/// else read from the host. `uid` is the Terminal's.
async fn current_token(
    host: &ClusterClient,
    side: &Side,
    n: &Names,
    (present, uid): (Option<&Present>, &str),
) -> Result<Option<Seen>, Error> {
    if let Some(present) = present {
        let key = Key::of::<Secret>(Some(&side.namespace), &n.kubeconfig_secret);
        // Only a Secret labelled for this Terminal holds its token.
        return Ok(present.get(&key).filter(|s| s.owner_uid.as_deref() == Some(uid)));
    }
    let secret = Api::<Secret>::namespaced(host.client.clone(), &side.namespace)
        .get_opt(&n.kubeconfig_secret)
        .await
        .map_err(kube_err("read kubeconfig Secret"))?;
    Ok(secret.map(|s| Seen {
        renew_at: token::renew_at(&s),
        account_uid: s.annotations().get(build::TOKEN_ACCOUNT_UID_ANNOTATION).cloned(),
        ..Default::default()
    }))
}

/// The access service account and its bindings in the target; returns the
/// service account's UID.
async fn apply_target(plan: &Plan, target: &ClusterClient, access: &Side) -> Result<Option<String>, Error> {
    let service_account = async {
        let applied = match apply(&target.client, &plan.access).await {
            Ok(applied) => applied,
            // The first Terminal in a cluster: make the access namespace, then try again.
            Err(Error::Kube {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => {
                if create_namespace(&target.client, &build::access_namespace(&access.namespace)).await? {
                    info!(namespace = %access.namespace, "created the access namespace");
                }
                apply(&target.client, &plan.access).await?
            }
            Err(e) => return Err(e),
        };
        Ok(applied.metadata.uid)
    };
    let bindings = futures::future::try_join_all(plan.bindings.iter().map(|rb| apply(&target.client, rb)));
    let cluster_bindings =
        futures::future::try_join_all(plan.cluster_bindings.iter().map(|crb| apply(&target.client, crb)));
    let (uid, _, _) = tokio::try_join!(service_account, bindings, cluster_bindings)?;
    Ok(uid)
}

/// Issues the target token when the kubeconfig Secret's (`renew`: when it
/// is due) is missing or due for renewal: returns when to renew next, and the Secret to
/// write (`None`: the existing one is current).
async fn ensure_token(
    ctx: &Context,
    t: &Terminal,
    n: &Names,
    (target, account_uid): (&ClusterClient, Option<&str>),
    places: &Places<'_>,
    expires: Timestamp,
    renew: Option<Timestamp>,
) -> Result<(Timestamp, Option<Secret>), Error> {
    let (host_side, target_side) = (places.host, places.target);
    if let Some(at) = renew
        && at > now()
    {
        return Ok((at, None));
    }
    let wanted = token::lifetime(ctx.config.terminal.token_lifetime.into(), until(expires));
    let issued = token::request(&target.client, &places.access.namespace, &n.access, wanted, None).await?;
    let (exp, issued_at) = (issued.expires, issued.issued);
    let server = target_server(ctx, target);
    let context_ns = t
        .spec
        .target
        .kubeconfig_context_namespace
        .clone()
        .unwrap_or_else(|| target_side.namespace.clone());
    let kubeconfig = token::kubeconfig(
        &server,
        target.ca_pem.as_deref(),
        &issued.token,
        &context_ns,
        "terminal",
    );
    let marks = build::TokenMarks {
        issued: &issued_at.to_string(),
        expires: &exp.to_string(),
        account_uid,
    };
    let secret = build::kubeconfig_secret(t, n, host_side, &kubeconfig, &marks);
    if renew.is_some() {
        token_renewed(ctx, t, format!("renewed the target token, valid until {exp}")).await;
    }
    Ok((token::renewal_time(issued_at, exp), Some(secret)))
}

fn target_server(ctx: &Context, target: &ClusterClient) -> String {
    match (&target.remote, &ctx.config.terminal.server_url) {
        (None, Some(url)) => url.clone(),
        _ => target.server.clone(),
    }
}

/// The attach service account, Role and RoleBinding in the host, at once.
async fn apply_host_access(plan: &Plan, host: &ClusterClient) -> Result<(), Error> {
    tokio::try_join!(
        apply(&host.client, &plan.attach),
        apply(&host.client, &plan.role),
        apply(&host.client, &plan.binding),
    )?;
    Ok(())
}
