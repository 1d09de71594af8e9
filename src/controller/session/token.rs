//! The session's token: issued by TokenRequest for the session's service
//! account, bound to its kubeconfig Secret (deleting the Secret revokes it),
//! renewed before it is due, and checked against the API server once issued.

use std::time::Duration;

use k8s_openapi::{
    api::{authentication::v1::SelfSubjectReview, core::v1::Secret},
    jiff::Timestamp,
};
use kube::{Api, Client, ResourceExt, api::PostParams};

use super::build::{self, Names};
use crate::controller::event::Happened;
use crate::{
    api::SessionClaim,
    controller::{Context, Error, apply, kube_err, report::token_renewed},
    creator::Creator,
    lifetime::until,
    tokens as token,
};

/// Reads the kubeconfig Secret (creating it empty first) and issues a token
/// bound to it when none is there or it is due; returns when it is due next,
/// or why the issued token does not work.
pub(super) async fn ensure_token(
    ctx: &Context,
    c: &SessionClaim,
    n: &Names,
    creator: &Creator,
    expires_at: Timestamp,
) -> Result<Result<Timestamp, String>, Error> {
    let client = &ctx.client;
    let ns = c.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let existing = match secrets
        .get_opt(&n.secret)
        .await
        .map_err(kube_err("read the kubeconfig Secret"))?
    {
        Some(s) => s,
        None => {
            apply(client, &build::secret(c, n, None)).await?;
            secrets
                .get(&n.secret)
                .await
                .map_err(kube_err("read the kubeconfig Secret"))?
        }
    };
    let renew = token::renew_at(&existing);
    let renew_at = match renew {
        Some(at) if at > Timestamp::now() => at,
        _ => {
            let lifetime = token::lifetime(Duration::from(ctx.config.session_token_lifetime), until(expires_at));
            let bound = (n.secret.as_str(), existing.metadata.uid.as_deref().unwrap_or_default());
            let issued = token::request(client, &ns, &n.service_account, lifetime, Some(bound)).await?;
            let server = ctx
                .config
                .session_server_url
                .clone()
                .unwrap_or_else(|| ctx.clusters.local().server.clone());
            let kc = token::kubeconfig(
                &server,
                ctx.clusters.local().ca_pem.as_deref(),
                &issued.token,
                &ns,
                &creator.user,
            );
            let (i, e) = (issued.issued.to_string(), issued.expires.to_string());
            apply(client, &build::secret(c, n, Some((&kc, &i, &e)))).await?;
            if !works(ctx, &issued.token).await {
                return Ok(Err("the issued token is not accepted by the API server".to_string()));
            }
            if renew.is_some() {
                token_renewed(ctx, c, format!("valid until {}", issued.expires)).await;
            } else {
                ctx.event(c, Happened::Ready, format!("kubeconfig in Secret {}", n.secret))
                    .await;
            }
            token::renewal_time(issued.issued, issued.expires)
        }
    };
    Ok(Ok(renew_at))
}

/// Whether the API server accepts `token` (a SelfSubjectReview with it).
async fn works(ctx: &Context, token: &str) -> bool {
    let local = ctx.clusters.local();
    let Ok(url) = local.server.parse() else { return false };
    let mut config = kube::Config::new(url);
    config.root_cert = local.ca_pem.as_ref().map(|pem| {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect()
    });
    config.auth_info.token = Some(token.to_string().into());
    let Ok(client) = Client::try_from(config) else {
        return false;
    };
    Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &Default::default())
        .await
        .is_ok()
}
