//! The catalog as the dashboard sees it: a watch cache (reflector) of the
//! template ConfigMaps in each catalog namespace, and each template parsed
//! once per resourceVersion, with its catalog card, its compliance
//! findings (checked when first asked for) and, per set of groups, whether
//! it allows them. Pages read it; none lists the catalog.

use std::{
    collections::HashMap,
    ops::Deref,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};

use crate::catalog;

/// How long start-up waits for a catalog namespace's first list; after
/// that the dashboard starts and the catalog fills when the watch succeeds.
const FIRST_LIST: Duration = Duration::from_secs(10);
/// Sets of groups remembered per template (then forgotten at once).
const MAX_GROUP_SETS: usize = 1000;

/// A parsed template of the catalog.
pub struct Template {
    entry: catalog::Entry,
    /// What the catalog page shows of it: the template, and its `name`.
    pub card: minijinja::Value,
    allowed: Mutex<HashMap<Vec<String>, bool>>,
    findings: std::sync::OnceLock<Vec<crate::compliance::Finding>>,
}

impl Deref for Template {
    type Target = catalog::Entry;
    fn deref(&self) -> &catalog::Entry {
        &self.entry
    }
}

impl Template {
    fn of(entry: catalog::Entry) -> Template {
        let mut card = serde_json::to_value(&entry.template).unwrap_or_default();
        card["name"] = entry.name.clone().into();
        Template {
            card: minijinja::Value::from(minijinja::value::Serde(&card)),
            entry,
            allowed: Mutex::default(),
            findings: std::sync::OnceLock::new(),
        }
    }

    /// Its compliance findings ([`crate::compliance::template`]): rendered
    /// and checked once for this resourceVersion.
    pub fn findings(&self) -> &[crate::compliance::Finding] {
        self.findings
            .get_or_init(|| crate::compliance::template(&self.entry.name, &self.entry.template))
    }

    /// Whether these groups may use it ([`catalog::Template::allows`], remembered).
    pub fn allows(&self, groups: &[String]) -> bool {
        if let Some(&known) = self.allowed.lock().unwrap().get(groups) {
            return known;
        }
        let allows = self.entry.template.allows(groups);
        let mut allowed = self.allowed.lock().unwrap();
        if allowed.len() >= MAX_GROUP_SETS {
            allowed.clear();
        }
        allowed.insert(groups.to_vec(), allows);
        allows
    }
}

/// A ConfigMap's template as last parsed: `None` when it is not a valid one.
struct Parsed {
    resource_version: String,
    template: Option<Arc<Template>>,
}

/// The catalog's watch caches and parsed templates.
pub struct Catalog {
    /// One watch cache per catalog namespace, in the configured order.
    namespaces: Vec<(String, Store<ConfigMap>)>,
    parsed: Mutex<HashMap<(String, String), Parsed>>,
}

impl Catalog {
    /// Starts a watch of the template ConfigMaps in each namespace and waits
    /// (bounded) until each has listed once.
    pub async fn start(client: &Client, namespaces: &[String]) -> Catalog {
        let mut stores = vec![];
        for ns in namespaces {
            let (store, writer) = reflector::store();
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let cfg = watcher::Config::default().labels(catalog::TEMPLATE_LABEL);
            let stream = reflector(writer, watcher(api, cfg)).default_backoff().touched_objects();
            let namespace = ns.clone();
            tokio::spawn(async move {
                futures::pin_mut!(stream);
                while let Some(event) = futures::StreamExt::next(&mut stream).await {
                    if let Err(e) = event {
                        tracing::warn!(namespace, error = %e, "catalog watch failed; retrying");
                    }
                }
            });
            stores.push((ns.clone(), store));
        }
        for (ns, store) in &stores {
            if tokio::time::timeout(FIRST_LIST, store.wait_until_ready())
                .await
                .is_err()
            {
                tracing::warn!(namespace = %ns, "catalog not listed yet; it appears when the watch succeeds");
            }
        }
        Catalog {
            namespaces: stores,
            parsed: Mutex::default(),
        }
    }

    /// The template a ConfigMap holds, parsed once per resourceVersion.
    fn parse(&self, cm: &ConfigMap) -> Option<Arc<Template>> {
        let key = (cm.namespace().unwrap_or_default(), cm.name_any());
        let version = cm.resource_version().unwrap_or_default();
        let mut parsed = self.parsed.lock().unwrap();
        if let Some(p) = parsed.get(&key)
            && p.resource_version == version
        {
            return p.template.clone();
        }
        let template = catalog::from_config_map(cm)
            .inspect_err(|e| tracing::debug!(error = %e, "not a usable template"))
            .ok()
            .map(|e| Arc::new(Template::of(e)));
        parsed.insert(
            key,
            Parsed {
                resource_version: version,
                template: template.clone(),
            },
        );
        template
    }

    /// The template called `name`: from the first catalog namespace holding a valid one.
    pub fn get(&self, name: &str) -> Option<Arc<Template>> {
        self.namespaces.iter().find_map(|(ns, store)| {
            let cm = store.get(&reflector::ObjectRef::new(name).within(ns))?;
            self.parse(&cm)
        })
    }

    /// Every valid template, namespace by namespace, by name.
    pub fn all(&self) -> Vec<Arc<Template>> {
        let mut all = vec![];
        for (_, store) in &self.namespaces {
            let mut cms = store.state();
            cms.sort_by_key(|cm| cm.name_any());
            all.extend(cms.iter().filter_map(|cm| self.parse(cm)));
        }
        all
    }
}
