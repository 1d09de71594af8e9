//! Step 2, build: render the manifests (pure), check them against the
//! template's bounds (pure), resolve each kind through discovery (cached)
//! and mark every object as this Deployment's.

use kube::{
    ResourceExt,
    api::{ApiResource, DynamicObject, TypeMeta},
};

use super::{Context, Halt, Reason, apply::gvk_of, apply::resolve, dereference::Inputs, inventory};
use crate::controller::event::Happened;
use crate::{
    api::{
        Deployment,
        deployment::{Health, ResourceStatus},
    },
    catalog::render,
};

/// One object ready to apply.
pub struct Prepared {
    /// The rendered object, marked and with its namespace fixed for its scope.
    pub obj: DynamicObject,
    /// Its API resource.
    pub ar: ApiResource,
    /// Its apiVersion and kind.
    pub types: TypeMeta,
    /// Its inventory entry before it is applied.
    pub planned: ResourceStatus,
}

/// What a render of one Deployment sees besides its parameters: its name,
/// its namespace and the seed of its `password()` values.
pub struct Identity {
    name: String,
    namespace: String,
    seed: Vec<u8>,
}

impl Identity {
    /// The identity of `d`.
    pub fn of(d: &Deployment, ctx: &Context) -> Identity {
        Identity {
            name: d.name_any(),
            namespace: d.namespace().unwrap_or_default(),
            seed: ctx.render_seed(&d.uid().unwrap_or_default()),
        }
    }

    /// The render's inputs with `params`.
    pub fn with<'a>(&'a self, params: &'a serde_json::Value) -> render::Inputs<'a> {
        render::Inputs {
            name: &self.name,
            namespace: &self.namespace,
            params,
            seed: &self.seed,
        }
    }
}

/// Renders and prepares every object of this version; a render that fails
/// is also an Event on the template.
pub async fn build(
    d: &Deployment,
    ctx: &Context,
    inputs: &Inputs,
    render_inputs: &render::Inputs<'_>,
) -> Result<Vec<Prepared>, Halt> {
    let prepared = prepare(d, ctx, inputs, render_inputs).await;
    if let Err(Halt::Stall(Reason::RenderFailed, e)) = &prepared {
        let entry = &inputs.entry;
        let cm = super::dereference::config_map_ref(&entry.namespace, &entry.name);
        let note = format!("for {}/{}: {e}", render_inputs.namespace, render_inputs.name);
        ctx.event(&cm, Happened::RenderFailed, note).await;
    }
    prepared
}

/// Renders, checks against the bounds, resolves and marks.
pub async fn prepare(
    d: &Deployment,
    ctx: &Context,
    inputs: &Inputs,
    render_inputs: &render::Inputs<'_>,
) -> Result<Vec<Prepared>, Halt> {
    let entry = &inputs.entry;
    let ns = render_inputs.namespace;
    let objects = render::manifests(&entry.template, render_inputs)
        .map_err(|e| Halt::stall(Reason::RenderFailed, e.to_string()))?;
    if let Some(bounds) = &entry.template.bounds {
        bounds
            .admit(&objects, ns)
            .map_err(|e| Halt::stall(Reason::OutOfBounds, format!("{e}; nothing was applied")))?;
    }
    let uid = d.uid().unwrap_or_default();
    let mut prepared = vec![];
    for mut obj in objects {
        let types = obj.types.clone().unwrap_or_default();
        let (ar, namespaced) = resolve(ctx, &gvk_of(&types.api_version, &types.kind))
            .await
            .map_err(|e| Halt::stall(Reason::UnknownKind, e))?;
        if !namespaced {
            obj.metadata.namespace = None;
        }
        inventory::mark(&mut obj, &uid);
        let planned = ResourceStatus {
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            namespace: obj.metadata.namespace.clone(),
            name: obj.name_any(),
            health: Health::NotFound,
            message: None,
            applied_generation: None,
            applied_resource_version: None,
        };
        prepared.push(Prepared {
            obj,
            ar,
            types,
            planned,
        });
    }
    Ok(prepared)
}
