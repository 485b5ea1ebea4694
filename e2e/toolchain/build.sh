#!/usr/bin/env bash
# Builds the local control plane's programs from the Go module proxy with the installed Go
# (GOTOOLCHAIN=local) into a cache outside the repository, keyed by the pinned versions.
#
#   e2e/toolchain/build.sh          build what is missing, then print the bin directory
#   e2e/toolchain/build.sh --path   print the bin directory only (nothing is built)
#
# Pins: kube/go.mod (Kubernetes and its staging modules), etcd/go.mod, and the two
# versions below. Changing any of them selects a new cache directory.
set -euo pipefail

KWOK_VERSION=v0.8.0
HELM_VERSION=v3.19.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/kube/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")
key=$(cat "$here/kube/go.sum" "$here/etcd/go.sum" "$here/build.sh" | sha256sum | cut -c1-12)
bin="$cache/toolchain/kube-$kube_version-etcd-$etcd_version-kwok-$KWOK_VERSION-helm-$HELM_VERSION-$key/bin"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
log() { echo "[toolchain] $*" >&2; }

# Builds into a scratch directory and moves the result into place, so an interrupted
# build never leaves a half-written binary in the cache.
install_bins() { # dir, then names
  local dir=$1; shift
  for name in "$@"; do mv -f "$dir/$name" "$bin/$name"; done
  rm -rf "$dir"
}
missing() { for name in "$@"; do [ -x "$bin/$name" ] || return 0; done; return 1; }

if missing kube-apiserver kube-controller-manager kube-scheduler kubectl; then
  log "building Kubernetes $kube_version (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)"
  minor=${kube_version#v1.}; minor=${minor%%.*}
  time=$(cd "$here/kube" && go list -m -json k8s.io/kubernetes | awk -F'"' '$2 == "Time" {print $4}')
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${time:-unknown}"
  done
  out=$(mktemp -d "$bin/.kube.XXXXXX")
  (cd "$here/kube" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  install_bins "$out" kube-apiserver kube-controller-manager kube-scheduler kubectl
fi

if missing etcd; then
  log "building etcd $etcd_version"
  out=$(mktemp -d "$bin/.etcd.XXXXXX")
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)
  install_bins "$out" etcd
fi

# kwok and helm carry no replace directives, so `go install module@version` builds them
# exactly as pinned by their own go.sum, verified against the checksum database.
if missing kwok; then
  log "building kwok $KWOK_VERSION"
  out=$(mktemp -d "$bin/.kwok.XXXXXX")
  GOBIN=$out go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  install_bins "$out" kwok
fi

if missing helm; then
  log "building helm $HELM_VERSION"
  out=$(mktemp -d "$bin/.helm.XXXXXX")
  GOBIN=$out go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_bins "$out" helm
fi

echo "$bin"
