//! The other clusters the dashboard knows (`clusters` of the
//! configuration): the dashboard's own identity in each, which acts there
//! only by impersonating the user, as here; which clusters a user is
//! offered — in the namespaces where the cluster's kubeconfig Secret is and
//! the user may read it (its metadata, read as the user), the first thing
//! admission asks of a Terminal that names it; and a Terminal placed in
//! one (pure).

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, config::KubeConfigOptions};
use serde::Serialize;

use super::{config::ClusterConfig, impersonate::Impersonator};
use crate::api::{
    Terminal,
    common::{ClusterRef, SecretKeyRef},
};

/// Namespaces asked about per cluster at most, for one user's offer.
const MAX_ASKED: usize = 50;
/// Reviews in flight at once for one user's offer.
const IN_FLIGHT: usize = 8;

/// One cluster the dashboard knows.
pub struct Known {
    /// Its entry of the configuration.
    pub config: ClusterConfig,
    /// The dashboard's identity there.
    pub identity: Impersonator,
}

/// Every other cluster the dashboard knows, in the configuration's order.
#[derive(Default)]
pub struct Clusters {
    known: Vec<Known>,
}

/// A cluster offered to a user, and the namespaces where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offered {
    /// The configured name (the form's value).
    pub name: String,
    /// What users see it called.
    pub title: String,
    /// Where its Secret is and the user may read it, and so open terminals in it.
    pub namespaces: Vec<String>,
}

/// Why a Terminal's cluster is not one the dashboard can act in.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnknownCluster {
    /// No configured cluster has that Secret and key.
    #[error(
        "it runs in the cluster of kubeconfig Secret {secret} (key {key:?}), which this dashboard's configuration does not name under clusters"
    )]
    NotConfigured {
        /// The Secret's name.
        secret: String,
        /// Its key.
        key: String,
    },
}

impl Clusters {
    /// Reads the dashboard's kubeconfig for each configured cluster; the
    /// error names the entry and the file.
    pub async fn load(configs: &[ClusterConfig]) -> Result<Clusters, String> {
        let mut known = vec![];
        for (i, c) in configs.iter().enumerate() {
            let at = format!("clusters[{i}].kubeconfigFile ({})", c.kubeconfig_file.display());
            let kc = kube::config::Kubeconfig::read_from(&c.kubeconfig_file)
                .map_err(|e| format!("{at}: {}", crate::clusters::kubeconfig_error(&e)))?;
            let base = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("{at}: {e}"))?;
            known.push(Known {
                config: c.clone(),
                identity: Impersonator::new(base),
            });
        }
        Ok(Clusters { known })
    }

    /// Every entry of the configuration, in its order.
    fn configs(&self) -> Vec<&ClusterConfig> {
        self.known.iter().map(|k| &k.config).collect()
    }

    /// Whether no other cluster is configured.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The cluster configured as `name`.
    pub fn named(&self, name: &str) -> Option<&Known> {
        self.known.iter().find(|k| k.config.name == name)
    }

    /// The cluster a Terminal's pod runs in: `None` for this one.
    pub fn host_of(&self, t: &Terminal) -> Result<Option<&Known>, UnknownCluster> {
        let Some(cluster) = &t.spec.host.cluster else {
            return Ok(None);
        };
        let configs = self.configs();
        match by_secret(&configs, cluster) {
            Some(i) => Ok(Some(&self.known[i])),
            None => Err(UnknownCluster::NotConfigured {
                secret: cluster.kubeconfig_secret_ref.name.clone(),
                key: cluster.kubeconfig_secret_ref.key.clone(),
            }),
        }
    }

    /// The title of a cluster a Terminal names (its host's or its
    /// target's), for its page; `None` for this cluster.
    pub fn title_of(&self, cluster: Option<&ClusterRef>) -> Option<String> {
        let cluster = cluster?;
        let configs = self.configs();
        Some(match by_secret(&configs, cluster) {
            Some(i) => self.known[i].config.title.clone(),
            None => format!("the cluster of Secret {}", cluster.kubeconfig_secret_ref.name),
        })
    }

    /// The clusters offered to the user of `client` among `namespaces`
    /// (those where they may open terminals): each where its Secret is and
    /// the user may read it. A namespace whose answer fails is not offered.
    pub async fn offered(&self, client: &Client, namespaces: &[String]) -> Vec<Offered> {
        let questions: Vec<(usize, &String)> = self
            .known
            .iter()
            .enumerate()
            .flat_map(|(i, _)| namespaces.iter().take(MAX_ASKED).map(move |ns| (i, ns)))
            .collect();
        let answers: Vec<(usize, &String, bool)> = futures::stream::iter(questions)
            .map(|(i, ns)| async move {
                let c = &self.known[i].config;
                (i, ns, secret_readable(client, ns, &c.secret_name).await)
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let configs = self.configs();
        offers(&configs, answers)
    }
}

/// Whether Secret `name` exists in `namespace` and the user of `client`
/// may `get` it: its metadata read as the user (never its data).
pub async fn secret_readable(client: &Client, namespace: &str, name: &str) -> bool {
    match Api::<Secret>::namespaced(client.clone(), namespace)
        .get_metadata_opt(name)
        .await
    {
        Ok(found) => found.is_some(),
        Err(kube::Error::Api(e)) if e.code == 403 => false,
        Err(e) => {
            tracing::warn!(namespace, secret = name, error = %e, "could not read whether a cluster's Secret is there");
            false
        }
    }
}

/// The offers from the answers `(cluster index, namespace, allowed)`: each
/// cluster with the namespaces where it was allowed, in the configuration's
/// order; clusters allowed nowhere are left out (pure).
pub fn offers<'a>(
    configs: &[&ClusterConfig],
    answers: impl IntoIterator<Item = (usize, &'a String, bool)>,
) -> Vec<Offered> {
    let mut out: Vec<Offered> = configs
        .iter()
        .map(|c| Offered {
            name: c.name.clone(),
            title: c.title.clone(),
            namespaces: vec![],
        })
        .collect();
    for (i, ns, allowed) in answers {
        if allowed && !out[i].namespaces.contains(ns) {
            out[i].namespaces.push(ns.clone());
        }
    }
    out.retain(|o| !o.namespaces.is_empty());
    out
}

/// Which of `configs` a Terminal's cluster reference names (Secret and key), if any (pure).
pub fn by_secret(configs: &[&ClusterConfig], cluster: &ClusterRef) -> Option<usize> {
    let r = &cluster.kubeconfig_secret_ref;
    configs
        .iter()
        .position(|c| c.secret_name == r.name && c.secret_key == r.key)
}

/// Where a terminal placed in another cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsIn {
    /// In that cluster, in the namespace it works on.
    There,
    /// In this cluster, in a temporary namespace of its own; only its
    /// kubeconfig reaches the other cluster (as Gardener's terminals run in
    /// the garden and reach a shoot).
    Here,
}

impl RunsIn {
    /// From the form's `runsIn`: absent or `there`, or `here`; anything
    /// else is refused, naming the choices.
    pub fn of(form: Option<&str>) -> Result<RunsIn, String> {
        match form.map(str::trim) {
            None | Some("") | Some("there") => Ok(RunsIn::There),
            Some("here") => Ok(RunsIn::Here),
            Some(other) => Err(format!(
                "There is no choice {other:?} of where the terminal runs: pick \"there\" (in the chosen cluster) or \"here\" (in this cluster)."
            )),
        }
    }
}

/// `t` placed in cluster `c`: what it reaches is there, in the namespaces
/// it names; its pod runs there too, or here in a namespace of its own (pure).
pub fn place(t: &mut Terminal, c: &ClusterConfig, runs: RunsIn) {
    let cluster = ClusterRef {
        kubeconfig_secret_ref: SecretKeyRef {
            name: c.secret_name.clone(),
            key: c.secret_key.clone(),
        },
    };
    t.spec.target.cluster = Some(cluster.clone());
    match runs {
        RunsIn::There => t.spec.host.cluster = Some(cluster),
        RunsIn::Here => {
            t.spec.host.cluster = None;
            t.spec.host.namespace = None;
            t.spec.host.temporary_namespace = Some(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, secret: &str) -> ClusterConfig {
        ClusterConfig {
            name: name.into(),
            title: name.to_uppercase(),
            secret_name: secret.into(),
            secret_key: "kubeconfig".into(),
            kubeconfig_file: "/k".into(),
        }
    }

    #[test]
    fn a_cluster_is_offered_where_its_secret_may_be_read() {
        let (b, c) = (config("b", "cluster-b"), config("c", "cluster-c"));
        let (a, t) = ("team-a".to_string(), "team-b".to_string());
        let offered = offers(
            &[&b, &c],
            [(0, &a, true), (0, &t, false), (1, &a, false), (0, &a, true)],
        );
        assert_eq!(
            offered,
            [Offered {
                name: "b".into(),
                title: "B".into(),
                namespaces: vec![a.clone()]
            }]
        );
        assert!(offers(&[&b], [(0, &t, false)]).is_empty());
    }

    #[test]
    fn a_placed_terminal_runs_and_reaches_in_that_cluster_and_is_found_by_its_secret() {
        let shortcut: super::super::shortcuts::Shortcut = serde_json::from_value(serde_json::json!({
            "name": "shell", "title": "Shell", "image": "toolbox",
            "roles": [{"kind": "ClusterRole", "name": "edit"}]
        }))
        .unwrap();
        let mut t = shortcut.terminal("shell-1", "team-a");
        let (b, c) = (config("b", "cluster-b"), config("c", "cluster-c"));
        let mut here = t.clone();
        place(&mut t, &c, RunsIn::There);
        let r = t.spec.host.cluster.clone().unwrap();
        assert_eq!(t.spec.target.cluster.as_ref(), Some(&r));
        assert_eq!(
            (
                r.kubeconfig_secret_ref.name.as_str(),
                r.kubeconfig_secret_ref.key.as_str()
            ),
            ("cluster-c", "kubeconfig")
        );
        assert_eq!(t.spec.host.namespace.as_deref(), Some("team-a"));
        assert_eq!(t.spec.target.namespace.as_deref(), Some("team-a"));
        assert_eq!(by_secret(&[&b, &c], &r), Some(1));
        let mut other = r.clone();
        other.kubeconfig_secret_ref.key = "other".into();
        assert_eq!(by_secret(&[&b, &c], &other), None, "the key counts too");
        // Run here: a namespace of its own in this cluster, reaching team-a there.
        place(&mut here, &c, RunsIn::of(Some("here")).unwrap());
        assert_eq!(here.spec.host.cluster, None);
        assert_eq!(
            (here.spec.host.namespace.as_deref(), here.spec.host.temporary_namespace),
            (None, Some(true))
        );
        assert_eq!(here.spec.target.cluster.as_ref(), Some(&r));
        assert_eq!(here.spec.target.namespace.as_deref(), Some("team-a"));
        assert_eq!(RunsIn::of(None), Ok(RunsIn::There));
        assert!(RunsIn::of(Some("Here")).unwrap_err().contains("\"Here\""));
    }

    #[test]
    fn a_terminal_of_an_unknown_cluster_says_which_secret() {
        let shortcut: super::super::shortcuts::Shortcut = serde_json::from_value(serde_json::json!({
            "name": "shell", "title": "Shell", "image": "toolbox", "roles": []
        }))
        .unwrap();
        let mut t = shortcut.terminal("shell-1", "team-a");
        let clusters = Clusters::default();
        assert!(matches!(clusters.host_of(&t), Ok(None)));
        place(&mut t, &config("x", "elsewhere"), RunsIn::There);
        let e = clusters.host_of(&t).err().unwrap().to_string();
        assert!(e.contains("Secret elsewhere") && e.contains("clusters"), "{e}");
        assert_eq!(
            clusters.title_of(t.spec.host.cluster.as_ref()).as_deref(),
            Some("the cluster of Secret elsewhere")
        );
        assert_eq!(clusters.title_of(None), None);
    }
}
