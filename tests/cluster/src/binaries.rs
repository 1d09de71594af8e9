//! Finds the Kubernetes binaries, building them with `tests/controlplane/build.sh`
//! (idempotent, cached under `~/.cache/portico`) when they are missing.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::ControlPlaneError;

/// The script that builds kube-apiserver, kube-controller-manager and kubectl.
pub const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../controlplane/build.sh");

/// The directory holding kube-apiserver, kube-controller-manager and kubectl.
#[derive(Clone, Debug)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// `$PORTICO_K8S_BIN` if set, else whatever `build.sh` prints (building first if needed).
    pub fn ensure() -> Result<Binaries, ControlPlaneError> {
        if let Some(dir) = std::env::var_os("PORTICO_K8S_BIN") {
            let b = Binaries { dir: dir.into() };
            return b.check().map(|_| b);
        }
        let out = Command::new("bash")
            .arg(BUILD_SCRIPT)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| ControlPlaneError::Build(format!("cannot run {BUILD_SCRIPT}: {e}")))?;
        if !out.status.success() {
            return Err(ControlPlaneError::Build(format!(
                "{BUILD_SCRIPT} failed ({}); its messages are above",
                out.status
            )));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = stdout.lines().last().unwrap_or_default().trim();
        let b = Binaries { dir: dir.into() };
        b.check().map(|_| b)
    }

    fn check(&self) -> Result<(), ControlPlaneError> {
        for name in [
            "kube-apiserver",
            "kube-controller-manager",
            "kubectl",
            "kstatus",
            "helm",
        ] {
            if !self.dir.join(name).is_file() {
                return Err(ControlPlaneError::Build(format!(
                    "{} has no {name}; run {BUILD_SCRIPT} or unset PORTICO_K8S_BIN",
                    self.dir.display()
                )));
            }
        }
        Ok(())
    }

    /// The directory itself (for `PATH`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of one binary.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The etcd bundled with the crate `etcd-bin-vendored`.
    pub fn etcd() -> Result<PathBuf, ControlPlaneError> {
        etcd_bin_vendored::etcd_bin_path()
            .map(Path::to_path_buf)
            .map_err(|e| ControlPlaneError::Build(e.to_string()))
    }
}
