//! The node's images, built on this machine because no registry is
//! reachable, cached beside the binaries under a hash of everything that
//! goes into them (built once, then found), and imported into the node's
//! containerd. Their names say they are local (`portico.local/…`):
//!
//! | image | what it is |
//! |---|---|
//! | `portico.local/pause:1` | every pod's sandbox: a static program that reaps children and waits for SIGTERM |
//! | `portico.local/toolbox:2` | a terminal toolbox: Debian bookworm with bash, curl, jq, an editor, network and PostgreSQL clients, and the project's kubectl |
//! | `portico.local/postgresql:15` | Debian's PostgreSQL 15 with an entrypoint for the catalog template's environment |
//! | `portico.local/webapp:1` | busybox httpd serving the catalog web app's `MESSAGE` |
//!
//! The Debian images come from `mmdebstrap` ([`debian`]) merged into one
//! layer ([`rootfs`]); every image is an OCI archive ([`oci`]).

mod debian;
mod oci;
mod rootfs;

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use sha2::{Digest, Sha256};

use super::error::{NodeError, io, run};

/// The sandbox image every pod on the node starts with.
pub const PAUSE_IMAGE: &str = "portico.local/pause:1";
/// The terminal toolbox: a Debian shell with the tools people reach for and kubectl.
pub const TOOLBOX_IMAGE: &str = "portico.local/toolbox:2";
/// Debian's PostgreSQL 15, honouring `POSTGRES_USER`, `POSTGRES_PASSWORD`, `POSTGRES_DB` and `PGDATA`.
pub const POSTGRESQL_IMAGE: &str = "portico.local/postgresql:15";
/// [`POSTGRESQL_IMAGE`] without its tag (the catalog template adds the version).
pub const POSTGRESQL_REPOSITORY: &str = "portico.local/postgresql";
/// The PostgreSQL major version [`POSTGRESQL_IMAGE`] runs (Debian bookworm's).
pub const POSTGRESQL_VERSION: &str = "15";

/// The catalog's web app: busybox httpd answering `GET /` with `$MESSAGE`, on port 80.
pub const WEBAPP_IMAGE: &str = "portico.local/webapp:1";

/// What the toolbox has besides Debian's minimal base.
const TOOLBOX_PACKAGES: &[&str] = &[
    "bash",
    "bash-completion",
    "ca-certificates",
    "curl",
    "jq",
    "less",
    "vim-tiny",
    "nano",
    "procps",
    "iproute2",
    "iputils-ping",
    "bind9-dnsutils",
    "netcat-openbsd",
    "postgresql-client",
];

/// What the PostgreSQL image has besides Debian's minimal base.
const POSTGRESQL_PACKAGES: &[&str] = &["postgresql-15"];

/// What of PostgreSQL's packages is not installed: the LLVM just-in-time
/// compiler (libLLVM, z3 and the bitcode, about 150 MB; the entrypoint turns
/// `jit` off).
const POSTGRESQL_EXCLUDES: &[&str] = &[
    "/usr/lib/*/libLLVM-*",
    "/usr/lib/*/libz3.so*",
    "/usr/lib/postgresql/*/lib/llvmjit*",
    "/usr/lib/postgresql/*/lib/bitcode/*",
];

/// Removes what installing PostgreSQL makes that an image must not carry:
/// the `main` cluster Debian creates (the entrypoint initialises `PGDATA`
/// instead) and the snake-oil TLS key every copy would share.
const POSTGRESQL_CUSTOMIZE: &[&str] = &[
    "rm -rf \"$1\"/var/lib/postgresql/15/main \"$1\"/etc/postgresql/15/main",
    "rm -f \"$1\"/etc/ssl/private/ssl-cert-snakeoil.key \"$1\"/etc/ssl/certs/ssl-cert-snakeoil.pem",
];

/// The PostgreSQL image's entrypoint.
const POSTGRESQL_ENTRYPOINT: &str = include_str!("postgresql-entrypoint.sh");

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

/// The `PATH` of every image.
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One entry of an image's layer besides its root filesystem.
enum Entry {
    Dir(&'static str, u32),
    File(String, PathBuf, u32),
    Text(&'static str, &'static str, u32),
    Symlink(String, String),
}

/// An image: its name, what it runs, an optional Debian root filesystem,
/// and its own files (added after the root filesystem).
struct Image {
    name: &'static str,
    config: oci::Config,
    debian: Option<debian::Recipe>,
    entries: Vec<Entry>,
}

fn config(entrypoint: &[&str]) -> oci::Config {
    oci::Config {
        entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
        env: vec![PATH.into()],
        stop_signal: None,
    }
}

fn pause(bin: &Path) -> Image {
    Image {
        name: PAUSE_IMAGE,
        config: config(&["/pause"]),
        debian: None,
        entries: vec![Entry::File("pause".into(), bin.join("pause"), 0o755)],
    }
}

/// Busybox with every applet linked, a root's home, `/tmp` and `/etc/passwd`.
fn busybox_root() -> Result<Vec<Entry>, NodeError> {
    if !Path::new(BUSYBOX).is_file() {
        return Err(NodeError::Missing {
            what: format!("{BUSYBOX} (Debian's busybox-static) for the web app image"),
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
        Entry::Dir("etc", 0o755),
        Entry::Dir("root", 0o700),
        Entry::Dir("tmp", 0o1777),
        Entry::Text(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        ),
        Entry::Text("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
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

fn toolbox(bin: &Path) -> Image {
    Image {
        name: TOOLBOX_IMAGE,
        config: config(&["/bin/sh"]),
        debian: Some(debian::Recipe {
            packages: TOOLBOX_PACKAGES,
            excludes: &[],
            customize: &[],
        }),
        entries: vec![Entry::File("usr/local/bin/kubectl".into(), bin.join("kubectl"), 0o755)],
    }
}

fn postgresql() -> Image {
    let mut config = config(&["/usr/local/bin/postgresql-entrypoint"]);
    config.env = vec![
        format!("PATH=/usr/lib/postgresql/{POSTGRESQL_VERSION}/bin:{}", &PATH[5..]),
        "PGDATA=/var/lib/postgresql/data".into(),
        "LANG=C.UTF-8".into(),
    ];
    // Like the PostgreSQL project's own images: a fast shutdown when the
    // container is stopped (SIGTERM would wait for every client to leave).
    config.stop_signal = Some("SIGINT");
    Image {
        name: POSTGRESQL_IMAGE,
        config,
        debian: Some(debian::Recipe {
            packages: POSTGRESQL_PACKAGES,
            excludes: POSTGRESQL_EXCLUDES,
            customize: POSTGRESQL_CUSTOMIZE,
        }),
        entries: vec![Entry::Text(
            "usr/local/bin/postgresql-entrypoint",
            POSTGRESQL_ENTRYPOINT,
            0o755,
        )],
    }
}

fn webapp() -> Result<Image, NodeError> {
    let mut entries = busybox_root()?;
    entries.push(Entry::Text("serve", WEBAPP_SERVE, 0o755));
    Ok(Image {
        name: WEBAPP_IMAGE,
        config: config(&["/bin/sh", "/serve"]),
        debian: None,
        entries,
    })
}

/// An image's archive in the cache.
pub struct Archive {
    /// The OCI archive.
    pub path: PathBuf,
    /// Unpack it into a snapshot when importing (the sandbox image), rather
    /// than when a container first uses it: the Debian images cost seconds
    /// of unpacking each, which a node whose pods never use them is spared.
    pub unpack: bool,
}

/// Builds (or finds in the cache `cache`) the images; returns their archives.
/// The first build of the Debian images downloads and installs their
/// packages (a few minutes); later calls only hash their inputs.
pub fn ensure(bin: &Path) -> Result<Vec<Archive>, NodeError> {
    let cache = cache_dir(bin);
    std::fs::create_dir_all(&cache).map_err(io(format!("create {}", cache.display())))?;
    [pause(bin), toolbox(bin), postgresql(), webapp()?]
        .iter()
        .map(|image| {
            Ok(Archive {
                path: cached(image, &cache)?,
                unpack: image.name == PAUSE_IMAGE,
            })
        })
        .collect()
}

/// Checks that what building the images needs is here: busybox always,
/// `mmdebstrap` while a Debian image is not in the cache yet.
pub fn preflight(bin: &Path) -> Result<(), NodeError> {
    let cache = cache_dir(bin);
    webapp()?;
    for image in [toolbox(bin), postgresql()] {
        if !archive_path(&image, &cache)?.exists() {
            debian::preflight()?;
        }
    }
    Ok(())
}

fn cache_dir(bin: &Path) -> PathBuf {
    bin.parent().unwrap_or(bin).join("images")
}

/// Imports the image archives into the containerd at `address`, namespace
/// `k8s.io` (where the CRI looks). An image not unpacked here is unpacked by
/// the CRI when a container first uses it.
pub fn import(ctr: &Path, address: &Path, archives: &[Archive]) -> Result<(), NodeError> {
    for a in archives {
        let mut cmd = Command::new(ctr);
        cmd.arg("--address")
            .arg(address)
            .args(["--namespace", "k8s.io", "images", "import"]);
        if !a.unpack {
            cmd.arg("--no-unpack");
        }
        run(cmd.arg(&a.path))?;
    }
    Ok(())
}

/// The cache key: a hash of everything that goes into the image.
fn key(image: &Image) -> Result<String, NodeError> {
    let mut key = Sha256::new();
    key.update(format!("portico-image-v2 {}\n{}\n", image.name, image.config.to_json()));
    if let Some(recipe) = &image.debian {
        key.update(recipe.key());
    }
    for e in &image.entries {
        match e {
            Entry::Dir(p, m) => key.update(format!("d {p} {m}\n")),
            Entry::Text(p, t, m) => key.update(format!("t {p} {m} {t}\n")),
            Entry::Symlink(p, t) => key.update(format!("l {p} {t}\n")),
            Entry::File(p, src, m) => {
                key.update(format!("f {p} {m}\n"));
                key.update(std::fs::read(src).map_err(io(format!("read {}", src.display())))?);
            }
        }
    }
    Ok(hex::encode(key.finalize())[..16].to_string())
}

/// Where the image's archive is cached.
fn archive_path(image: &Image, cache: &Path) -> Result<PathBuf, NodeError> {
    let short = image.name.replace(['/', ':'], "_");
    Ok(cache.join(format!("{short}-{}.tar", key(image)?)))
}

/// The image's archive in `cache`, built first when it is not there. One
/// process builds it at a time (a lock file); the archive appears whole (a rename).
fn cached(image: &Image, cache: &Path) -> Result<PathBuf, NodeError> {
    let short = image.name.replace(['/', ':'], "_");
    let path = archive_path(image, cache)?;
    if path.exists() {
        return Ok(path);
    }
    let lock_path = cache.join(format!("{short}.lock"));
    let lock = File::create(&lock_path).map_err(io(format!("create {}", lock_path.display())))?;
    // SAFETY: flock on a file descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(io(format!("lock {}", lock_path.display()))(
            std::io::Error::last_os_error(),
        ));
    }
    if path.exists() {
        return Ok(path);
    }
    let started = Instant::now();
    if image.debian.is_some() {
        eprintln!(
            "portico node: building {} from Debian {} with mmdebstrap (once; a few minutes)",
            image.name,
            debian::SUITE
        );
    }
    let work = tempfile::Builder::new()
        .prefix(&format!(".{short}-"))
        .tempdir_in(cache)
        .map_err(io(format!("create a build directory in {}", cache.display())))?;
    let layer_path = work.path().join("layer.tar");
    let mut layer = oci::Layer::create(&layer_path, image.name)?;
    if let Some(recipe) = &image.debian {
        let rootfs = work.path().join("rootfs.tar");
        debian::build(recipe, &rootfs)?;
        rootfs::merge(&rootfs, &mut layer)?;
        std::fs::remove_file(&rootfs).map_err(io(format!("remove {}", rootfs.display())))?;
    }
    for e in &image.entries {
        match e {
            Entry::Dir(p, m) => layer.dir(p, *m)?,
            Entry::Text(p, t, m) => layer.file(p, *m, t.as_bytes())?,
            Entry::File(p, src, m) => layer.copy(p, *m, src)?,
            Entry::Symlink(p, t) => layer.symlink(p, t)?,
        }
    }
    layer.finish()?;
    let tmp = work.path().join("image.tar");
    oci::write_archive(image.name, &image.config, &layer_path, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(io(format!("write {}", path.display())))?;
    if image.debian.is_some() {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "portico node: built {} in {:.0} s ({} MB)",
            image.name,
            started.elapsed().as_secs_f64(),
            size / 1_000_000
        );
    }
    Ok(path)
}
