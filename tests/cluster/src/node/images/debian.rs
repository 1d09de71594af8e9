//! Debian root filesystems from Debian's own package mirror, made by
//! `mmdebstrap` (no registry needed): a minimal base (`--variant=minbase`)
//! plus the packages an image names, without documentation, manual pages or
//! translations. The mirror lines come from this machine's apt sources when
//! they name the suite, else `deb.debian.org`. Building the arguments and
//! reading the sources are pure.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use crate::node::error::{NodeError, run};

/// The Debian release the images are built from.
pub const SUITE: &str = "bookworm";

/// The mirror used when this machine's apt sources do not name the suite.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// This machine's apt sources (deb822), read for the mirror lines.
const HOST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// A root filesystem: the packages on top of the minimal base, and shell
/// commands run on it at the end (`$1` is its directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Packages besides the minimal base.
    pub packages: &'static [&'static str],
    /// Paths of those packages dpkg does not install, besides [`DPKG_EXCLUDES`].
    pub excludes: &'static [&'static str],
    /// `mmdebstrap --customize-hook` commands, in order.
    pub customize: &'static [&'static str],
}

impl Recipe {
    /// Text that changes whenever the built root filesystem would (pure):
    /// part of the image's cache key.
    pub fn key(&self) -> String {
        format!(
            "debian {SUITE} minbase\npackages {}\ncustomize {}\nexcludes {} {}\n",
            self.packages.join(","),
            self.customize.join("\n"),
            DPKG_EXCLUDES.join(","),
            self.excludes.join(",")
        )
    }
}

/// Paths dpkg does not install: documentation (the packages' copyright files
/// with it), manual and info pages, translations, lintian overrides. What
/// maintainer scripts add there anyway the layer filter drops.
const DPKG_EXCLUDES: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
];

/// One-line apt sources for `suite` from a deb822 sources file (pure): every
/// URI of every stanza whose suites are `suite` or `suite-*`, each suite on
/// its own line. Empty when none names the suite.
pub fn mirror_lines(sources: &str, suite: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for stanza in sources.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        if !field("Types").iter().any(|t| t == "deb") {
            continue;
        }
        let components = field("Components").join(" ");
        for uri in field("URIs") {
            for s in field("Suites") {
                let ours = s == suite || s.strip_prefix(suite).is_some_and(|rest| rest.starts_with('-'));
                if ours && !components.is_empty() {
                    lines.push(format!("deb {uri} {s} {components}"));
                }
            }
        }
    }
    lines
}

/// The mirror lines for [`SUITE`]: this machine's, or the default mirror.
fn mirrors() -> Vec<String> {
    let lines = std::fs::read_to_string(HOST_SOURCES)
        .map(|s| mirror_lines(&s, SUITE))
        .unwrap_or_default();
    if lines.is_empty() {
        vec![format!("deb {DEFAULT_MIRROR} {SUITE} main")]
    } else {
        lines
    }
}

/// `mmdebstrap`'s arguments to write `recipe`'s root filesystem as the tar `out` (pure).
pub fn args(recipe: &Recipe, out: &Path, mirrors: &[String]) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--variant=minbase".into(),
        "--format=tar".into(),
        "--quiet".into(),
        "--aptopt=Acquire::Retries \"3\"".into(),
    ];
    if !recipe.packages.is_empty() {
        a.push(format!("--include={}", recipe.packages.join(",")).into());
    }
    for x in DPKG_EXCLUDES.iter().chain(recipe.excludes) {
        a.push(format!("--dpkgopt=path-exclude={x}").into());
    }
    for hook in recipe.customize {
        a.push(format!("--customize-hook={hook}").into());
    }
    a.push(SUITE.into());
    a.push(out.into());
    a.extend(mirrors.iter().map(OsString::from));
    a
}

/// Where `mmdebstrap` is, or how to install it.
fn mmdebstrap() -> Result<PathBuf, NodeError> {
    ["/usr/bin/mmdebstrap", "/usr/local/bin/mmdebstrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| NodeError::Missing {
            what: "mmdebstrap (builds the Debian root filesystems of the toolbox and PostgreSQL images)".into(),
            fix: "apt-get install mmdebstrap".into(),
        })
}

/// `mmdebstrap` is installed, or the error says how to install it.
pub fn preflight() -> Result<(), NodeError> {
    mmdebstrap().map(|_| ())
}

/// Builds `recipe`'s root filesystem as the tar `out`. Needs root and the mirror.
pub fn build(recipe: &Recipe, out: &Path) -> Result<(), NodeError> {
    let mut cmd = Command::new(mmdebstrap()?);
    cmd.args(args(recipe, out, &mirrors()));
    run(&mut cmd).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &str = "Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main contrib
";

    #[test]
    fn the_hosts_sources_give_one_line_per_suite_of_the_release() {
        assert_eq!(
            mirror_lines(SOURCES, "bookworm"),
            [
                "deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main",
            ]
        );
        assert_eq!(
            mirror_lines(SOURCES, "trixie"),
            ["deb http://deb.debian.org/debian trixie main contrib"]
        );
        assert!(mirror_lines(SOURCES, "bullseye").is_empty());
        assert!(mirror_lines("", "bookworm").is_empty());
    }

    #[test]
    fn the_arguments_name_the_packages_the_hooks_the_output_and_the_mirrors() {
        let r = Recipe {
            packages: &["bash", "curl"],
            excludes: &["/usr/lib/*/libLLVM-*"],
            customize: &["rm -rf \"$1\"/var/lib/postgresql/15/main"],
        };
        let a: Vec<String> = args(&r, Path::new("/tmp/x.tar"), &["deb http://m bookworm main".into()])
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(a.contains(&"--variant=minbase".into()));
        assert!(a.contains(&"--include=bash,curl".into()));
        assert!(a.contains(&"--dpkgopt=path-exclude=/usr/share/man/*".into()));
        assert!(a.contains(&"--dpkgopt=path-exclude=/usr/lib/*/libLLVM-*".into()));
        assert!(a.contains(&"--customize-hook=rm -rf \"$1\"/var/lib/postgresql/15/main".into()));
        assert_eq!(
            a[a.len() - 3..],
            ["bookworm", "/tmp/x.tar", "deb http://m bookworm main"]
        );
    }

    #[test]
    fn the_key_changes_with_the_packages_and_the_hooks() {
        let a = Recipe {
            packages: &["bash"],
            excludes: &[],
            customize: &[],
        };
        let b = Recipe {
            packages: &["bash", "jq"],
            excludes: &[],
            customize: &[],
        };
        let c = Recipe {
            packages: &["bash"],
            excludes: &[],
            customize: &["true"],
        };
        assert_ne!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_eq!(a.key(), a.clone().key());
    }
}
