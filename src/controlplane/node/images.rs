//! The node's images, built locally because no registry is reachable:
//! `portico.local/pause:1` (the sandbox of every pod: a static program that
//! reaps children and waits for SIGTERM), `portico.local/toolbox:1`
//! (Debian's static busybox plus the kubectl the project builds) and
//! `portico.local/webapp:1` (busybox httpd serving the catalog web app's
//! `MESSAGE`). Written as
//! OCI image-layout tars, cached beside the binaries under a hash of their
//! contents, and imported into the node's containerd.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};

use super::error::{NodeError, io, run};

/// The sandbox image every pod on the node starts with.
pub const PAUSE_IMAGE: &str = "portico.local/pause:1";
/// A shell with busybox and kubectl, for terminals and tests.
pub const TOOLBOX_IMAGE: &str = "portico.local/toolbox:1";

/// The catalog's web app: busybox httpd answering `GET /` with `$MESSAGE`, on port 80.
pub const WEBAPP_IMAGE: &str = "portico.local/webapp:1";

/// What the web app image runs: writes `$MESSAGE` as the page, logs a line,
/// serves it on port 80, and stops at once on SIGTERM.
const WEBAPP_SERVE: &str = r#"#!/bin/sh
message=${MESSAGE:-Hello from Portico}
mkdir -p /www
printf '%s\n' "$message" > /www/index.html
echo "webapp: serving \"$message\" on port 80"
httpd -f -v -p 80 -h /www &
pid=$!
trap 'kill $pid; exit 0' TERM INT
wait $pid
"#;

/// Where Debian's `busybox-static` puts its binary.
const BUSYBOX: &str = "/bin/busybox";

/// One entry of an image's single layer.
enum Entry {
    Dir(&'static str, u32),
    File(String, PathBuf, u32),
    Text(&'static str, &'static str),
    Symlink(String, String),
}

/// An image: its name, what it runs, and its files.
struct Image {
    name: &'static str,
    entrypoint: Vec<&'static str>,
    entries: Vec<Entry>,
}

fn pause(bin: &Path) -> Image {
    Image {
        name: PAUSE_IMAGE,
        entrypoint: vec!["/pause"],
        entries: vec![Entry::File("pause".into(), bin.join("pause"), 0o755)],
    }
}

/// Busybox with every applet linked, a root's home, `/tmp` and `/etc/passwd`.
fn busybox_root() -> Result<Vec<Entry>, NodeError> {
    if !Path::new(BUSYBOX).is_file() {
        return Err(NodeError::Missing {
            what: format!("{BUSYBOX} (Debian's busybox-static) for the toolbox and web app images"),
            fix: "apt-get install busybox-static".into(),
        });
    }
    let list = run(Command::new(BUSYBOX).arg("--list-full"))?;
    let mut entries = vec![
        Entry::Dir("bin", 0o755),
        Entry::Dir("sbin", 0o755),
        Entry::Dir("usr", 0o755),
        Entry::Dir("usr/bin", 0o755),
        Entry::Dir("usr/sbin", 0o755),
        Entry::Dir("usr/local", 0o755),
        Entry::Dir("usr/local/bin", 0o755),
        Entry::Dir("etc", 0o755),
        Entry::Dir("root", 0o700),
        Entry::Dir("tmp", 0o1777),
        Entry::Text(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        Entry::Text("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        Entry::File("bin/busybox".into(), BUSYBOX.into(), 0o755),
    ];
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if !applet.is_empty() && applet != "bin/busybox" {
            entries.push(Entry::Symlink(applet.to_string(), "/bin/busybox".into()));
        }
    }
    Ok(entries)
}

fn toolbox(bin: &Path) -> Result<Image, NodeError> {
    let mut entries = busybox_root()?;
    entries.push(Entry::File("usr/local/bin/kubectl".into(), bin.join("kubectl"), 0o755));
    Ok(Image {
        name: TOOLBOX_IMAGE,
        entrypoint: vec!["/bin/sh"],
        entries,
    })
}

fn webapp() -> Result<Image, NodeError> {
    let mut entries = busybox_root()?;
    entries.push(Entry::Text("serve", WEBAPP_SERVE));
    Ok(Image {
        name: WEBAPP_IMAGE,
        entrypoint: vec!["/bin/sh", "/serve"],
        entries,
    })
}

/// Builds (or finds in the cache) the images; returns their tar files.
pub fn ensure(bin: &Path) -> Result<Vec<PathBuf>, NodeError> {
    let cache = bin.parent().unwrap_or(bin).join("images");
    std::fs::create_dir_all(&cache).map_err(io(format!("create {}", cache.display())))?;
    [pause(bin), toolbox(bin)?, webapp()?]
        .iter()
        .map(|image| cached_tar(image, &cache))
        .collect()
}

/// Imports the image tars into the containerd at `address`, namespace `k8s.io` (where the CRI looks).
pub fn import(ctr: &Path, address: &Path, tars: &[PathBuf]) -> Result<(), NodeError> {
    for tar in tars {
        run(Command::new(ctr)
            .arg("--address")
            .arg(address)
            .args(["--namespace", "k8s.io", "images", "import"])
            .arg(tar))?;
    }
    Ok(())
}

fn cached_tar(image: &Image, cache: &Path) -> Result<PathBuf, NodeError> {
    let mut key = Sha256::new();
    key.update(format!("portico-image-v1 {} {:?}\n", image.name, image.entrypoint));
    for e in &image.entries {
        match e {
            Entry::Dir(p, m) => key.update(format!("d {p} {m}\n")),
            Entry::Text(p, t) => key.update(format!("t {p} {t}\n")),
            Entry::Symlink(p, t) => key.update(format!("l {p} {t}\n")),
            Entry::File(p, src, m) => {
                key.update(format!("f {p} {m}\n"));
                key.update(std::fs::read(src).map_err(io(format!("read {}", src.display())))?);
            }
        }
    }
    let short = image.name.replace(['/', ':'], "_");
    let path = cache.join(format!("{short}-{}.tar", &hex::encode(key.finalize())[..16]));
    if !path.exists() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, oci_archive(image)?).map_err(io(format!("write {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(io(format!("write {}", path.display())))?;
    }
    Ok(path)
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn layer(image: &Image) -> Result<Vec<u8>, NodeError> {
    let mut b = tar::Builder::new(Vec::new());
    let err = |p: &str| io(format!("add {p} to the layer of {}", image.name));
    for e in &image.entries {
        match e {
            Entry::Dir(p, m) => b
                .append_data(
                    &mut header(tar::EntryType::Directory, 0, *m),
                    format!("{p}/"),
                    std::io::empty(),
                )
                .map_err(err(p))?,
            Entry::Text(p, t) => b
                .append_data(
                    &mut header(tar::EntryType::Regular, t.len() as u64, 0o644),
                    p,
                    t.as_bytes(),
                )
                .map_err(err(p))?,
            Entry::File(p, src, m) => {
                let data = std::fs::read(src).map_err(io(format!("read {}", src.display())))?;
                b.append_data(
                    &mut header(tar::EntryType::Regular, data.len() as u64, *m),
                    p,
                    &data[..],
                )
                .map_err(err(p))?
            }
            Entry::Symlink(p, t) => b
                .append_link(&mut header(tar::EntryType::Symlink, 0, 0o777), p, t)
                .map_err(err(p))?,
        }
    }
    b.into_inner().map_err(err("the end"))
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The image as an OCI image-layout archive naming itself with
/// `io.containerd.image.name`, which `ctr images import` uses as the name.
fn oci_archive(image: &Image) -> Result<Vec<u8>, NodeError> {
    let layer = layer(image)?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": image.entrypoint,
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
    }))
    .expect("image config");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&layer), "size": layer.len()}],
    }))
    .expect("image manifest");
    let tag = image.name.rsplit(':').next().unwrap_or("latest");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": image.name, "org.opencontainers.image.ref.name": tag},
        }],
    }))
    .expect("image index");
    let mut b = tar::Builder::new(Vec::new());
    let err = || io(format!("write the archive of {}", image.name));
    let add = |b: &mut tar::Builder<Vec<u8>>, path: String, data: &[u8]| {
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
    for blob in [&layer, &config, &manifest] {
        let digest = sha(blob);
        add(
            &mut b,
            format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
            blob,
        )
        .map_err(err())?;
    }
    let mut out = b.into_inner().map_err(err())?;
    out.flush().map_err(err())?;
    Ok(out)
}
