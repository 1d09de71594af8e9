#!/usr/bin/env bash
# Builds the Kubernetes binaries Portico runs in its tests and in `portico dev`
# (kube-apiserver, kube-controller-manager, kubectl) from the Go module
# k8s.io/kubernetes, pinned in go.mod beside this script, through the Go
# module proxy; the `kstatus` helper (../kstatus) the tests use to compute
# status the way Flux does; and `helm` (../helm) for the chart's tests. Idempotent: a second run finds them and does nothing.
#
# Prints the bin directory on its last line of stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no 'require k8s.io/kubernetes' line in $here/go.mod" >&2; exit 1; }
cache=${PORTICO_CACHE:-$HOME/.cache/portico}
bin="$cache/$version/bin"
binaries=(kube-apiserver kube-controller-manager kubectl kstatus helm)
kstatus_dir="$here/../kstatus"
helm_dir="$here/../helm"

# The stamp holds a hash of go.mod and go.sum, so a changed pin rebuilds.
stamp_want=$(cat "$here/go.mod" "$here/go.sum" "$0" "$kstatus_dir/go.mod" "$kstatus_dir/go.sum" "$kstatus_dir/main.go" "$helm_dir/go.mod" "$helm_dir/go.sum" | sha256sum | cut -d' ' -f1)
if [ -f "$bin/.stamp" ] && [ "$(cat "$bin/.stamp")" = "$stamp_want" ]; then
  ok=1
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || ok=0; done
  if [ "$ok" = 1 ]; then echo "$bin"; exit 0; fi
fi

command -v go >/dev/null || { echo "build.sh: 'go' is not on PATH; install Go 1.26 or newer" >&2; exit 1; }
mkdir -p "$bin"

minor=$(echo "$version" | cut -d. -f2)
commit=$(echo "$version" | sha1sum | cut -d' ' -f1)  # modules carry no git commit; a stable stand-in keeps /version well-formed
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
cd "$here"
for b in kube-apiserver kube-controller-manager kubectl; do
  if [ -x "$bin/$b" ] && [ -f "$bin/.stamp-$b" ] && [ "$(cat "$bin/.stamp-$b")" = "$(cat go.mod go.sum | sha256sum)" ]; then
    continue
  fi
  echo "build.sh: building $b $version (the first build takes several minutes)" >&2
  start=$(date +%s)
  go build -trimpath -ldflags "$ldflags" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  mv "$bin/$b.tmp" "$bin/$b"
  cat go.mod go.sum | sha256sum > "$bin/.stamp-$b"
  echo "build.sh: $b built in $(( $(date +%s) - start ))s" >&2
done
echo "build.sh: building kstatus (sigs.k8s.io/cli-utils)" >&2
(cd "$kstatus_dir" && go build -trimpath -ldflags "-s -w" -o "$bin/kstatus.tmp" .)
mv "$bin/kstatus.tmp" "$bin/kstatus"
helm_version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$helm_dir/go.mod")
echo "build.sh: building helm $helm_version (a few minutes the first time)" >&2
(cd "$helm_dir" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" \
  -o "$bin/helm.tmp" helm.sh/helm/v3/cmd/helm)
mv "$bin/helm.tmp" "$bin/helm"
echo "$stamp_want" > "$bin/.stamp"
echo "$bin"
