//! One image as an OCI image-layout archive: a single uncompressed layer
//! (written to a file as it is built, so large root filesystems never sit
//! in memory), its config and manifest, and an index naming the image with
//! `io.containerd.image.name`, which `ctr images import` uses as the name.

use std::{
    fs::File,
    io::{BufWriter, Read, Write},
    path::Path,
};

use sha2::{Digest, Sha256};

use crate::node::error::{NodeError, io};

/// What the image runs, written into its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The entrypoint.
    pub entrypoint: Vec<String>,
    /// `PATH` and other variables.
    pub env: Vec<String>,
    /// The signal that stops the container (the runtime's default, SIGTERM, when `None`).
    pub stop_signal: Option<&'static str>,
}

impl Config {
    /// The image config's `config` object (pure).
    pub fn to_json(&self) -> serde_json::Value {
        let mut c = serde_json::json!({
            "Entrypoint": self.entrypoint,
            "Env": self.env,
            "WorkingDir": "/",
        });
        if let Some(s) = self.stop_signal {
            c["StopSignal"] = s.into();
        }
        c
    }
}

/// A layer being written: a tar file on disk.
pub struct Layer {
    tar: tar::Builder<BufWriter<File>>,
    image: String,
}

/// A header for an entry owned by root, with a fixed time.
pub fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

impl Layer {
    /// Starts the layer of `image` in the file `path`.
    pub fn create(path: &Path, image: &str) -> Result<Layer, NodeError> {
        let file = File::create(path).map_err(io(format!("create {}", path.display())))?;
        Ok(Layer {
            tar: tar::Builder::new(BufWriter::new(file)),
            image: image.to_string(),
        })
    }

    fn err(&self, path: &str) -> impl FnOnce(std::io::Error) -> NodeError + 'static {
        io(format!("add {path} to the layer of {}", self.image))
    }

    /// A directory.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<(), NodeError> {
        let e = self.err(path);
        self.tar
            .append_data(
                &mut header(tar::EntryType::Directory, 0, mode),
                format!("{path}/"),
                std::io::empty(),
            )
            .map_err(e)
    }

    /// A regular file with `data`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), NodeError> {
        let e = self.err(path);
        self.tar
            .append_data(
                &mut header(tar::EntryType::Regular, data.len() as u64, mode),
                path,
                data,
            )
            .map_err(e)
    }

    /// A regular file copied from `src` on this machine.
    pub fn copy(&mut self, path: &str, mode: u32, src: &Path) -> Result<(), NodeError> {
        let mut f = File::open(src).map_err(io(format!("open {}", src.display())))?;
        let len = f.metadata().map_err(io(format!("stat {}", src.display())))?.len();
        let e = self.err(path);
        self.tar
            .append_data(&mut header(tar::EntryType::Regular, len, mode), path, &mut f)
            .map_err(e)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), NodeError> {
        let e = self.err(path);
        self.tar
            .append_link(&mut header(tar::EntryType::Symlink, 0, 0o777), path, target)
            .map_err(e)
    }

    /// An entry of another tar (a root filesystem), under the path `path`,
    /// with its own mode, owner and time.
    pub fn entry<R: Read>(&mut self, path: &str, entry: &mut tar::Entry<'_, R>) -> Result<(), NodeError> {
        let mut h = entry.header().clone();
        let e = self.err(path);
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(self.err(path))?
                    .map(|t| t.to_string_lossy().trim_start_matches("./").to_string())
                    .unwrap_or_default();
                self.tar.append_link(&mut h, path, target).map_err(e)
            }
            _ => self.tar.append_data(&mut h, path, entry).map_err(e),
        }
    }

    /// Ends the tar and flushes the file.
    pub fn finish(self) -> Result<(), NodeError> {
        let image = self.image;
        let mut w = self
            .tar
            .into_inner()
            .map_err(io(format!("finish the layer of {image}")))?;
        w.flush().map_err(io(format!("write the layer of {image}")))
    }
}

fn sha_of_file(path: &Path) -> Result<(String, u64), NodeError> {
    let mut f = File::open(path).map_err(io(format!("open {}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), len))
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Writes the archive of image `name` (with `config`) whose layer is the
/// tar file `layer`, to `out`.
pub fn write_archive(name: &str, config: &Config, layer: &Path, out: &Path) -> Result<(), NodeError> {
    let (layer_digest, layer_size) = sha_of_file(layer)?;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch(),
        "os": "linux",
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .expect("image config");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    }))
    .expect("image manifest");
    let tag = name.rsplit(':').next().unwrap_or("latest");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    }))
    .expect("image index");
    let file = File::create(out).map_err(io(format!("create {}", out.display())))?;
    let mut b = tar::Builder::new(BufWriter::new(file));
    let err = || io(format!("write the archive of {name}"));
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let add = |b: &mut tar::Builder<_>, path: String, data: &[u8]| {
        b.append_data(
            &mut header(tar::EntryType::Regular, data.len() as u64, 0o644),
            path,
            data,
        )
    };
    add(&mut b, "oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(err())?;
    add(&mut b, "index.json".into(), &index).map_err(err())?;
    for dir in ["blobs/", "blobs/sha256/"] {
        b.append_data(&mut header(tar::EntryType::Directory, 0, 0o755), dir, std::io::empty())
            .map_err(err())?;
    }
    for data in [&config, &manifest] {
        add(&mut b, blob(&sha(data)), data).map_err(err())?;
    }
    let mut f = File::open(layer).map_err(io(format!("open {}", layer.display())))?;
    b.append_data(
        &mut header(tar::EntryType::Regular, layer_size, 0o644),
        blob(&layer_digest),
        &mut f,
    )
    .map_err(err())?;
    b.into_inner().map_err(err())?.flush().map_err(err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_the_stop_signal_only_when_there_is_one() {
        let mut c = Config {
            entrypoint: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into()],
            stop_signal: None,
        };
        assert!(c.to_json().get("StopSignal").is_none());
        c.stop_signal = Some("SIGINT");
        assert_eq!(c.to_json()["StopSignal"], "SIGINT");
        assert_eq!(c.to_json()["Entrypoint"][0], "/bin/sh");
    }

    #[test]
    fn an_archive_holds_its_layer_by_digest_and_names_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let layer_path = dir.path().join("layer.tar");
        let mut layer = Layer::create(&layer_path, "portico.local/test:1").unwrap();
        layer.dir("etc", 0o755).unwrap();
        layer.file("etc/hello", 0o644, b"hi\n").unwrap();
        layer.symlink("etc/link", "hello").unwrap();
        layer.finish().unwrap();
        let out = dir.path().join("image.tar");
        let config = Config {
            entrypoint: vec!["/bin/sh".into()],
            env: vec![],
            stop_signal: None,
        };
        write_archive("portico.local/test:1", &config, &layer_path, &out).unwrap();
        let (digest, _) = sha_of_file(&layer_path).unwrap();
        let mut names = Vec::new();
        let mut index = String::new();
        let mut a = tar::Archive::new(File::open(&out).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p == "index.json" {
                e.read_to_string(&mut index).unwrap();
            }
            names.push(p);
        }
        assert!(names.contains(&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))));
        assert!(
            index.contains("\"io.containerd.image.name\":\"portico.local/test:1\""),
            "{index}"
        );
    }
}
