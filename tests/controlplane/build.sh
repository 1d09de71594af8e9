#!/usr/bin/env bash
# Builds the Kubernetes binaries Portico runs in its tests and in `portico dev`
# (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl,
# kube-proxy) from the Go module
# k8s.io/kubernetes, pinned in go.mod beside this script, through the Go
# module proxy; the `kstatus` helper (../kstatus) the tests use to compute
# status the way Flux does; `helm` (../helm) for the chart's tests; `pause`
# (../pause), the sandbox program of the node's pause image; and `coredns`
# (../coredns), the node's cluster DNS; and `kubectl-oidc_login`
# (../kubelogin), kubectl's plugin for logging in through the login
# provider; and Flux's source-controller, kustomize-controller and helm-controller
# (../flux/*), with their CRDs copied into flux-crds/ beside them.
# Idempotent: each
# binary carries a stamp of its inputs, and a second run finds them all and
# does nothing.
#
# Prints the bin directory on its last line of stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no 'require k8s.io/kubernetes' line in $here/go.mod" >&2; exit 1; }
cache=${PORTICO_CACHE:-$HOME/.cache/portico}
bin="$cache/$version/bin"
kube=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
flux=(source-controller kustomize-controller helm-controller)
binaries=("${kube[@]}" kube-proxy kstatus helm pause coredns kubectl-oidc_login "${flux[@]}")
kstatus_dir="$here/../kstatus"
helm_dir="$here/../helm"
pause_dir="$here/../pause"
coredns_dir="$here/../coredns"
kubelogin_dir="$here/../kubelogin"

# Each binary's stamp holds a hash of what it is built from, so a changed pin
# rebuilds exactly what it affects.
stamp_of() {
  case "$1" in
    kstatus) cat "$kstatus_dir/go.mod" "$kstatus_dir/go.sum" "$kstatus_dir/main.go" | sha256sum ;;
    helm) cat "$helm_dir/go.mod" "$helm_dir/go.sum" | sha256sum ;;
    pause) cat "$pause_dir/go.mod" "$pause_dir/main.go" | sha256sum ;;
    kube-proxy) cat "$here/go.mod" "$here/go.sum" "$here/kube-proxy.sum" | sha256sum ;;
    coredns) cat "$coredns_dir/go.mod" "$coredns_dir/go.sum" "$coredns_dir/main.go" | sha256sum ;;
    kubectl-oidc_login) cat "$kubelogin_dir/go.mod" "$kubelogin_dir/go.sum" | sha256sum ;;
    source-controller | kustomize-controller | helm-controller) cat "$here/../flux/$1/go.mod" "$here/../flux/$1/go.sum" | sha256sum ;;
    *) cat "$here/go.mod" "$here/go.sum" | sha256sum ;;
  esac
}
fresh() { [ -x "$bin/$1" ] && [ -f "$bin/.stamp-$1" ] && [ "$(cat "$bin/.stamp-$1")" = "$(stamp_of "$1")" ]; }
all_fresh=1
for b in "${binaries[@]}"; do fresh "$b" || all_fresh=0; done
if [ "$all_fresh" = 1 ]; then echo "$bin"; exit 0; fi

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
build() {  # name, then the go build arguments; run in the current directory
  local b=$1; shift
  fresh "$b" && return 0
  echo "build.sh: building $b" >&2
  local start; start=$(date +%s)
  go build -trimpath -o "$bin/$b.tmp" "$@"
  mv "$bin/$b.tmp" "$bin/$b"
  stamp_of "$b" > "$bin/.stamp-$b"
  echo "build.sh: $b built in $(( $(date +%s) - start ))s" >&2
}
for b in "${kube[@]}"; do
  fresh "$b" || echo "build.sh: $b $version (the first build takes several minutes)" >&2
  build "$b" -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$b"
done
# kube-proxy imports four modules the others do not (vishvananda/netlink and
# netns, moby/ipvs, knftables). Their hashes live in kube-proxy.sum, and it
# builds with a copy of go.mod whose go.sum is go.sum plus those, so go.sum —
# and with it every other binary's stamp — stays as it is.
if ! fresh kube-proxy; then
  proxy_mod=$(mktemp -d)
  trap 'rm -rf "$proxy_mod"' EXIT
  cp "$here/go.mod" "$proxy_mod/kube-proxy.mod"
  cat "$here/go.sum" "$here/kube-proxy.sum" > "$proxy_mod/kube-proxy.sum"
  build kube-proxy -modfile="$proxy_mod/kube-proxy.mod" -mod=readonly -ldflags "$ldflags" k8s.io/kubernetes/cmd/kube-proxy
fi
(cd "$kstatus_dir" && build kstatus -ldflags "-s -w" .)
helm_version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$helm_dir/go.mod")
(cd "$helm_dir" && build helm -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" helm.sh/helm/v3/cmd/helm)
(cd "$pause_dir" && build pause -ldflags "-s -w" .)
(cd "$coredns_dir" && build coredns -ldflags "-s -w" .)
kubelogin_version=$(awk '$1 == "require" && $2 == "github.com/int128/kubelogin" {print $3}' "$kubelogin_dir/go.mod")
(cd "$kubelogin_dir" && build kubectl-oidc_login -ldflags "-s -w -X main.version=$kubelogin_version" github.com/int128/kubelogin)
# Flux's controllers, each from its own module, and their CRDs from the
# same module sources.
for c in "${flux[@]}"; do
  fresh "$c" && continue
  (
    cd "$here/../flux/$c"
    mkdir -p "$bin/flux-crds"
    # `go list -m` names the module's directory only once it is in the
    # module cache, which on a fresh machine it is not yet.
    go mod download "github.com/fluxcd/$c"
    src=$(go list -m -f '{{.Dir}}' "github.com/fluxcd/$c")
    [ -n "$src" ] || { echo "build.sh: no source directory for github.com/fluxcd/$c" >&2; exit 1; }
    cp "$src"/config/crd/bases/*.yaml "$bin/flux-crds/"
    chmod u+w "$bin"/flux-crds/*.yaml
    build "$c" -ldflags "-s -w" "github.com/fluxcd/$c"
  )
done
echo "$bin"
