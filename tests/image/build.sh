#!/usr/bin/env bash
# Builds the `portico` image on a machine with no Docker engine and no image
# registry, with buildah (Debian's package), from the repository's own
# Dockerfile:
#
# - the Dockerfile's `build` stage runs here, as the same command (checked
#   below: the script stops when the Dockerfile's command differs), and its
#   `assets` stage as the same `npm ci`; each result becomes a one-layer
#   stage image;
# - the runtime base (`RUNTIME_IMAGE`, distroless cc-debian12:nonroot where a
#   registry is reachable) is made from Debian's own packages by mmdebstrap:
#   glibc, libgcc, CA certificates, tzdata, netbase, and the nonroot user
#   65532;
# - the Dockerfile's runtime stage, its lines as written, is built by
#   `buildah bud` on top, with `--from=build` and `--from=assets` naming the
#   stage images.
#
# The result is an OCI archive cached under $PORTICO_CACHE/images by a hash of
# everything that goes into it (built once, then found). Prints on its last
# line of stdout the archive's path and the image's name
# (`portico.local/portico:<hash>`); progress goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${PORTICO_CACHE:-$HOME/.cache/portico}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
images="$cache/images"
mkdir -p "$images"
log() { echo "image: $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }

for tool in buildah mmdebstrap cargo npm strip sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed (apt-get install buildah mmdebstrap binutils; Rust and npm as the README says)"
done

dockerfile="$root/Dockerfile"
# The build stage's command, as the Dockerfile runs it.
build_cmd='cargo build --release --locked --no-default-features --bin portico'
grep -qxF "RUN $build_cmd && strip target/release/portico" "$dockerfile" \
  || die "the Dockerfile's build stage no longer runs '$build_cmd && strip target/release/portico'; make this script run what the Dockerfile runs"
grep -qxF "RUN npm ci --no-audit --no-fund --omit=dev" "$dockerfile" \
  || die "the Dockerfile's assets stage no longer runs 'npm ci --no-audit --no-fund --omit=dev'; make this script run what the Dockerfile runs"
# The runtime stage: from its FROM line to the end.
runtime_stage=$(sed -n '/^FROM \${RUNTIME_IMAGE}/,$p' "$dockerfile")
[ -n "$runtime_stage" ] || die "the Dockerfile has no line 'FROM \${RUNTIME_IMAGE} …' starting its runtime stage"

# One build at a time: a second caller waits, then finds the archive.
exec 9>"$images/portico.lock"
flock 9

log "cargo build of the image's binary (release, no dev feature)"
(cd "$root" && $build_cmd >&2)
work=$(mktemp -d "$images/.portico-XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/build/src/target/release" "$work/assets/ui"
strip -o "$work/build/src/target/release/portico" "$CARGO_TARGET_DIR/release/portico"

# The runtime base, made once per recipe.
base_packages=libc6,libgcc-s1,ca-certificates,tzdata,netbase
base_recipe="debian bookworm extract $base_packages; nonroot 65532; v1"
base_key=$(echo "$base_recipe" | sha256sum | cut -c1-16)
base_tar="$images/portico-runtime-base-$base_key.tar"
if [ ! -f "$base_tar" ]; then
  log "runtime base from Debian bookworm ($base_packages) with mmdebstrap"
  mmdebstrap --variant=extract --include="$base_packages" --skip=output/dev \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='cat "$1"/usr/share/ca-certificates/mozilla/*.crt > "$1"/etc/ssl/certs/ca-certificates.crt' \
    --customize-hook='printf "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" > "$1"/etc/passwd' \
    --customize-hook='printf "root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\n" > "$1"/etc/group' \
    --customize-hook='mkdir -p "$1"/tmp "$1"/root "$1"/home/nonroot && chmod 1777 "$1"/tmp && chmod 700 "$1"/root && chown 65532:65532 "$1"/home/nonroot' \
    --customize-hook='rm -rf "$1"/etc/apt "$1"/var/lib/apt "$1"/var/cache/apt "$1"/var/log/apt "$1"/etc/dpkg/dpkg.cfg.d/99mmdebstrap' \
    bookworm "$work/base.tar" >&2 2>"$work/mmdebstrap.log" \
    || { cat "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (log above)"; }
  mv "$work/base.tar" "$base_tar"
fi

log "npm ci of the dashboard's assets (no dev packages)"
cp "$root/ui/package.json" "$root/ui/package-lock.json" "$work/assets/ui/"
(cd "$work/assets/ui" && npm ci --no-audit --no-fund --omit=dev --silent >&2)
rm -f "$work/assets/ui/package.json" "$work/assets/ui/package-lock.json"

# The cache key: the binary, the assets' lock, the runtime stage and the base.
key=$( {
  sha256sum "$work/build/src/target/release/portico" | cut -d' ' -f1
  sha256sum "$root/ui/package-lock.json" | cut -d' ' -f1
  echo "$runtime_stage"
  echo "$base_key"
} | sha256sum | cut -c1-16)
name="portico.local/portico:$key"
archive="$images/portico-$key.tar"
if [ -f "$archive" ]; then
  log "$name found in the cache"
  echo "$archive $name"
  exit 0
fi

# buildah's storage lives in the work directory and goes with it: nothing is
# left in /var/lib/containers, and every build starts clean.
b() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
stage_image() {  # name, directory: a one-layer image holding the directory's tree
  local c
  c=$(b from --quiet scratch)
  b copy --quiet "$c" "$2" / >/dev/null
  b commit --quiet --rm "$c" "$1" >/dev/null
}
log "stage images and the runtime base"
stage_image localhost/portico-stage-build "$work/build"
stage_image localhost/portico-stage-assets "$work/assets"
c=$(b from --quiet scratch)
b add --quiet "$c" "$base_tar" / >/dev/null
b config --user 65532:65532 --workingdir /home/nonroot \
  --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$c"
b commit --quiet --rm "$c" localhost/portico-runtime-base >/dev/null

log "the Dockerfile's runtime stage with buildah bud"
mkdir -p "$work/context"
{
  echo "ARG RUNTIME_IMAGE"
  echo "$runtime_stage" | sed -e 's|--from=build |--from=localhost/portico-stage-build |' \
    -e 's|--from=assets |--from=localhost/portico-stage-assets |'
} >"$work/Containerfile"
grep -q -- '--from=localhost/portico-stage-build ' "$work/Containerfile" \
  || die "the Dockerfile's runtime stage copies nothing --from=build"
b bud --quiet --pull=never --layers=false --format oci \
  --build-arg RUNTIME_IMAGE=localhost/portico-runtime-base \
  -f "$work/Containerfile" -t "$name" "$work/context" >/dev/null
b push --quiet "$name" "oci-archive:$work/image.tar:$name" >/dev/null
mv "$work/image.tar" "$archive"
# Older builds of the image are not needed again.
find "$images" -maxdepth 1 -name 'portico-????????????????.tar' ! -name "portico-$key.tar" -delete
log "built $name ($(($(stat -c %s "$archive") / 1000000)) MB)"
echo "$archive $name"
