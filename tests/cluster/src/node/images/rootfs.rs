//! A Debian root filesystem (a tar from `mmdebstrap`) merged into an image
//! layer: device nodes and FIFOs are skipped (the runtime gives every
//! container its own `/dev`), and documentation, manual pages, translations,
//! apt's caches and the install logs are dropped to keep the image small.
//! Which entries stay is decided by [`keep`] (pure).

use std::{collections::BTreeSet, fs::File, path::Path};

use super::oci::Layer;
use crate::node::error::{NodeError, io};

/// Directories whose contents an image does not need.
const DROPPED: &[&str] = &[
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
    "var/cache/apt/",
    "var/cache/debconf/templates.dat",
    "var/lib/apt/lists/",
    "var/log/",
];

/// The kind of a root filesystem entry, as far as [`keep`] cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file, symbolic or hard link.
    File,
    /// A device node or FIFO.
    Special,
}

/// Whether the entry at `path` (relative, without a leading `./`) belongs
/// in the image (pure). Dropped directories themselves stay, empty.
pub fn keep(path: &str, kind: Kind) -> bool {
    if kind == Kind::Special || path.is_empty() {
        return false;
    }
    let as_dir = format!("{}/", path.trim_end_matches('/'));
    !DROPPED
        .iter()
        .any(|d| path.starts_with(d) && !(kind == Kind::Dir && as_dir == *d))
}

/// `./usr/bin/x` → `usr/bin/x`; `./` → ``.
pub fn relative(path: &str) -> &str {
    path.trim_start_matches("./").trim_start_matches('/')
}

/// Adds the entries of the root filesystem tar `rootfs` that [`keep`] keeps
/// to `layer`; a hard link to a dropped file is dropped too. Returns how
/// many entries were added.
pub fn merge(rootfs: &Path, layer: &mut Layer) -> Result<usize, NodeError> {
    let file = File::open(rootfs).map_err(io(format!("open {}", rootfs.display())))?;
    let mut archive = tar::Archive::new(file);
    let read = |e: std::io::Error| NodeError::Io {
        context: format!("read the root filesystem {}", rootfs.display()),
        source: e,
    };
    let mut dropped = BTreeSet::new();
    let mut added = 0;
    for entry in archive.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Symlink | tar::EntryType::Link => Kind::File,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => Kind::Special,
            _ => continue, // archive metadata (global headers), not files
        };
        let path = entry.path().map_err(read)?.to_string_lossy().into_owned();
        let path = relative(&path).to_string();
        if !keep(&path, kind) {
            dropped.insert(path);
            continue;
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            let target = entry.link_name().map_err(read)?.unwrap_or_default();
            if dropped.contains(relative(&target.to_string_lossy())) {
                continue;
            }
        }
        layer.entry(&path, &mut entry)?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_libraries_and_configuration_stay() {
        for p in [
            "usr/bin/curl",
            "etc/passwd",
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/share/zoneinfo/UTC",
        ] {
            assert!(keep(p, Kind::File), "{p}");
        }
        assert!(keep("usr/share", Kind::Dir));
        assert!(keep("dev", Kind::Dir), "the mount point for the runtime's /dev");
    }

    #[test]
    fn devices_docs_manuals_and_caches_go_but_their_directories_stay() {
        assert!(!keep("dev/null", Kind::Special));
        assert!(!keep("usr/share/doc/bash/copyright", Kind::File));
        assert!(!keep("usr/share/doc/bash", Kind::Dir));
        assert!(!keep("usr/share/man/man1/ls.1.gz", Kind::File));
        assert!(!keep("usr/share/locale/de/LC_MESSAGES/psql-15.mo", Kind::File));
        assert!(!keep("var/lib/apt/lists/deb.debian.org_dists", Kind::File));
        assert!(!keep("var/log/dpkg.log", Kind::File));
        assert!(keep("usr/share/doc", Kind::Dir));
        assert!(keep("usr/share/doc/", Kind::Dir));
        assert!(keep("var/log", Kind::Dir));
        assert!(!keep("", Kind::Dir), "the root itself is not an entry");
    }

    #[test]
    fn paths_lose_their_leading_dot() {
        assert_eq!(relative("./usr/bin/jq"), "usr/bin/jq");
        assert_eq!(relative("./"), "");
        assert_eq!(relative("/etc"), "etc");
    }

    #[test]
    fn a_merged_root_filesystem_keeps_files_and_links_and_skips_devices() {
        use super::super::oci::header;
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs.tar");
        let mut b = tar::Builder::new(File::create(&rootfs).unwrap());
        let mut add = |kind, path: &str, data: &[u8], link: Option<&str>| {
            let mut h = header(kind, data.len() as u64, 0o755);
            match link {
                Some(t) => b.append_link(&mut h, path, t).unwrap(),
                None => b.append_data(&mut h, path, data).unwrap(),
            }
        };
        add(tar::EntryType::Directory, "./", b"", None);
        add(tar::EntryType::Directory, "./usr/bin/", b"", None);
        add(tar::EntryType::Regular, "./usr/bin/perl", b"#!", None);
        add(tar::EntryType::Link, "./usr/bin/perl5.36", b"", Some("./usr/bin/perl"));
        add(tar::EntryType::Regular, "./usr/share/man/man1/perl.1.gz", b"x", None);
        add(
            tar::EntryType::Link,
            "./usr/bin/perlman",
            b"",
            Some("./usr/share/man/man1/perl.1.gz"),
        );
        add(tar::EntryType::Symlink, "./bin", b"", Some("usr/bin"));
        add(tar::EntryType::Char, "./dev/null", b"", None);
        b.into_inner().unwrap();

        let out = dir.path().join("layer.tar");
        let mut layer = Layer::create(&out, "portico.local/test:1").unwrap();
        assert_eq!(merge(&rootfs, &mut layer).unwrap(), 4);
        layer.finish().unwrap();
        let mut a = tar::Archive::new(File::open(&out).unwrap());
        let got: Vec<(String, Option<String>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
                (e.path().unwrap().to_string_lossy().into_owned(), link)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("usr/bin/".to_string(), None),
                ("usr/bin/perl".to_string(), None),
                ("usr/bin/perl5.36".to_string(), Some("usr/bin/perl".to_string())),
                ("bin".to_string(), Some("usr/bin".to_string())),
            ]
        );
    }
}
