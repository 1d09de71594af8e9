//! `portico dev --kubeconfig`: the whole of Portico installed into an
//! existing cluster in one command: the Helm chart (CRDs, aggregated roles,
//! the operator with its webhook, as a release `portico` in
//! `portico-system`, upgraded in place when it is there), then the catalog
//! and, unless `--no-demo`, the demo tenants and their session profiles.
//! The values given to the chart are built purely (tested).

use std::path::{Path, PathBuf};

use kube::Client;

use super::{CATALOG_DIR, CATALOG_NAMESPACE, DevError, demo, load_catalog, setup_demo};
use crate::install;

/// The release and its namespace.
pub const RELEASE: &str = "portico";
/// The namespace the chart is installed into.
pub const NAMESPACE: &str = "portico-system";

/// What to install.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Portico image (`repository:tag`); `None`: the chart's default.
    pub image: Option<String>,
    /// Create the demo tenants (team-a, team-b, alice, bob, carol) and their
    /// session profiles.
    pub demo: bool,
}

/// The chart's values for `options` (pure): the image, and with the demo,
/// its session profiles and who may ask for privileged terminal pods.
pub fn values(options: &Options) -> serde_json::Value {
    let mut values = serde_json::json!({});
    if let Some(image) = &options.image {
        // The tag is after the last ':' that follows the last '/' (a registry may have a port).
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match image[slash..].rfind(':') {
            Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
            None => (image.as_str(), "latest"),
        };
        values["image"] = serde_json::json!({"repository": repository, "tag": tag});
    }
    if options.demo {
        let profiles: serde_json::Value =
            serde_yaml_ng::from_str(demo::PROFILES_YAML).expect("the demo profiles are YAML");
        values["operator"] = serde_json::json!({"config": {
            "sessionProfiles": profiles,
            "terminal": {"privilegedGroups": [demo::ADMIN_GROUP]},
        }});
    }
    values
}

/// `helm` on the PATH, else the one the project builds into its cache.
fn helm() -> Result<PathBuf, DevError> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("helm")).find(|h| h.is_file()))
        .unwrap_or_default();
    match on_path {
        Some(h) => Ok(h),
        None => Ok(crate::controlplane::Binaries::ensure()?.path("helm")),
    }
}

/// Installs (or upgrades) the chart into the cluster of `kubeconfig` (`None`:
/// the current context) and waits until the operator is ready; then the
/// catalog and the demo. Returns what to tell the user.
pub async fn install(client: &Client, kubeconfig: Option<&Path>, options: &Options) -> Result<String, DevError> {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/portico");
    let dir = tempfile::tempdir().map_err(|e| DevError::Io("a temporary directory".into(), e))?;
    let values_file = dir.path().join("values.json");
    std::fs::write(&values_file, values(options).to_string())
        .map_err(|e| DevError::Io(values_file.display().to_string(), e))?;
    let mut cmd = std::process::Command::new(helm()?);
    cmd.args(["upgrade", "--install", RELEASE])
        .arg(&chart)
        .args(["-n", NAMESPACE, "--create-namespace", "--wait", "--timeout", "5m", "-f"])
        .arg(&values_file);
    if let Some(k) = kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    eprintln!(
        "portico dev: helm upgrade --install {RELEASE} {} -n {NAMESPACE}",
        chart.display()
    );
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("helm task")
        .map_err(|e| DevError::Io("run helm".into(), e))?;
    if !out.status.success() {
        return Err(DevError::Io(
            "helm upgrade --install".into(),
            std::io::Error::other(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        ));
    }
    install::wait_aggregated(client).await?;
    load_catalog(client, CATALOG_DIR.as_ref(), CATALOG_NAMESPACE, &[]).await?;
    let mut said = format!(
        "Portico is installed in the existing cluster: Helm release {RELEASE} in {NAMESPACE} (the operator and its webhook), the catalog in {CATALOG_NAMESPACE}."
    );
    if options.demo {
        setup_demo(client).await?;
        said.push_str(" Demo tenants: alice (team-a), bob (team-b), carol (admin).");
    }
    said.push_str(&format!(
        "\nThe dashboard needs your OpenID Connect provider: helm upgrade {RELEASE} {} -n {NAMESPACE} --reuse-values --set dashboard.enabled=true ... (see charts/portico/README.md).",
        chart.display()
    ));
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_splits_into_repository_and_tag_and_the_demo_brings_its_profiles() {
        let v = values(&Options {
            image: Some("registry.example:5000/team/portico:1.2".into()),
            demo: true,
        });
        assert_eq!(v["image"]["repository"], "registry.example:5000/team/portico");
        assert_eq!(v["image"]["tag"], "1.2");
        assert_eq!(v["operator"]["config"]["sessionProfiles"][0]["name"], "developer");
        assert_eq!(
            v["operator"]["config"]["terminal"]["privilegedGroups"][0],
            demo::ADMIN_GROUP
        );
        let v = values(&Options {
            image: Some("registry.example:5000/portico".into()),
            demo: false,
        });
        assert_eq!(v["image"]["repository"], "registry.example:5000/portico");
        assert_eq!(v["image"]["tag"], "latest");
        assert!(v.get("operator").is_none(), "no demo: the chart's own profiles");
        assert_eq!(
            values(&Options {
                image: None,
                demo: false
            }),
            serde_json::json!({})
        );
    }
}
