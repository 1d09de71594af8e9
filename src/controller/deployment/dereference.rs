//! Step 1, dereference: the creator, whose rights apply this version, the
//! template (from the catalog's cache) and the parameters checked against
//! its schema. Later steps read nothing about the template or the users from
//! the cluster.

use k8s_openapi::api::core::v1::ConfigMap;

use super::{Context, Halt, Reason, cache::Caches};
use crate::controller::event::Happened;
use crate::{
    api::Deployment,
    catalog::{self, ApplyAs, params, render},
    creator::Creator,
};

/// Everything the later steps need, read once.
pub struct Inputs {
    /// Whose rights apply this version: who last changed the spec, else the creator.
    pub applied_by: Creator,
    /// The template and the ConfigMap it came from.
    pub entry: catalog::Entry,
    /// The parameters, with the schema's defaults filled in.
    pub values: serde_json::Value,
    /// The template revision and a digest of the parameters.
    pub revision: String,
}

impl Inputs {
    /// How status names whose rights applied the objects.
    pub fn applier_name(&self) -> String {
        match self.entry.template.apply_as {
            ApplyAs::Creator => self.applied_by.user.clone(),
            ApplyAs::Operator => "the operator".to_string(),
        }
    }
}

/// Whose rights apply the objects: whoever last changed the spec (recorded by
/// admission in `portico.dev/updated-by`), else the creator.
pub fn applier_of(d: &Deployment, creator: &Creator) -> Creator {
    Creator::updater(d.metadata.annotations.as_ref()).unwrap_or_else(|| creator.clone())
}

/// A reference to a template's ConfigMap, for Events about it.
pub fn config_map_ref(namespace: &str, name: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Reads the creator, the template and the parameters; an invalid template
/// is also reported by an Event on its ConfigMap.
pub async fn dereference(d: &Deployment, ctx: &Context, caches: &Caches) -> Result<Inputs, Halt> {
    read(d, ctx, caches, true).await
}

/// [`dereference`] for a Deployment being deleted: an invalid template is
/// only a reason to render nothing, not reported again.
pub async fn for_deletion(d: &Deployment, ctx: &Context, caches: &Caches) -> Result<Inputs, Halt> {
    read(d, ctx, caches, false).await
}

/// Reads the inputs; `announce`: an invalid template gets an Event.
async fn read(d: &Deployment, ctx: &Context, caches: &Caches, announce: bool) -> Result<Inputs, Halt> {
    let creator = Creator::from_annotations(d.metadata.annotations.as_ref())
        .map_err(|e| Halt::stall(Reason::MissingCreator, e.to_string()))?;
    let catalog_ns = &ctx.config.deployment.catalog_namespaces;
    let spec = &d.spec;
    // From the catalog's cache; what it does not hold (not yet seen, or
    // absent) is read from the API server, which gives the error.
    let cached = catalog::search_namespaces(catalog_ns, spec.template.namespace.as_deref())
        .ok()
        .and_then(|search| caches.template(&search, &spec.template.name));
    let found = match cached {
        Some(cm) => catalog::from_config_map(&cm),
        None => {
            catalog::lookup(
                &ctx.client,
                catalog_ns,
                &spec.template.name,
                spec.template.namespace.as_deref(),
            )
            .await
        }
    };
    let entry = match found {
        Ok(e) => e,
        Err(catalog::TemplateError::Api(e)) => return Err(Halt::Retry(super::Error::Catalog(e))),
        Err(e) => {
            if let (true, catalog::TemplateError::Invalid { .. }) = (announce, &e) {
                let cm = config_map_ref(
                    spec.template.namespace.as_deref().unwrap_or(&catalog_ns[0]),
                    &spec.template.name,
                );
                ctx.event(&cm, Happened::InvalidTemplate, e.to_string()).await;
            }
            return Err(Halt::stall(Reason::TemplateUnavailable, e.to_string()));
        }
    };
    let raw = spec.parameters.clone().unwrap_or(serde_json::Value::Null);
    let values = params::check(&entry.template.parameters, &raw).map_err(|v| {
        let list: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        Halt::stall(Reason::InvalidParameters, list.join("; "))
    })?;
    let revision = render::revision(
        &entry.resource_version,
        &format!("{}/{}", entry.namespace, entry.name),
        &values,
    );
    Ok(Inputs {
        applied_by: applier_of(d, &creator),
        entry,
        values,
        revision,
    })
}
