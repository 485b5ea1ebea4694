#!/usr/bin/env bash
# Builds the real node's programs from the Go module proxy with the installed Go
# (GOTOOLCHAIN=local) into a cache outside the repository, keyed by the pinned versions, like
# build.sh does for the control plane. runc links Debian's libseccomp (libseccomp-dev).
#
#   e2e/toolchain/node.sh          build what is missing, then print the bin directory
#   e2e/toolchain/node.sh --path   print the bin directory only (nothing is built)
#
# Pins: the versions below, and kube/go.mod for kubelet and kube-proxy (the same Kubernetes as
# the control plane). Changing any of them, pause.c or NODE_BUILD selects a new cache directory.
set -euo pipefail

CONTAINERD_VERSION=v2.4.2   # github.com/containerd/containerd/v2: containerd, shim, ctr
RUNC_VERSION=v1.5.3         # github.com/opencontainers/runc, with seccomp (CGO)
CNI_PLUGINS_VERSION=v1.10.0 # github.com/containernetworking/plugins
CRICTL_VERSION=v1.37.0      # sigs.k8s.io/cri-tools
KUBE_ROUTER_VERSION=v2.1.0  # github.com/cloudnativelabs/kube-router/v2, NetworkPolicy only
CRANE_VERSION=v0.22.1       # github.com/google/go-containerregistry, packs OCI images
NODE_BUILD=1                # bump when the way a part is built changes (flags, tags)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/kube/go.mod")
key=$(echo "$CONTAINERD_VERSION $RUNC_VERSION $CNI_PLUGINS_VERSION $CRICTL_VERSION $KUBE_ROUTER_VERSION $CRANE_VERSION $NODE_BUILD" \
  | cat - "$here/kube/go.sum" "$here/pause.c" | sha256sum | cut -c1-12)
bin="$cache/toolchain/node-kube-$kube_version-containerd-$CONTAINERD_VERSION-runc-$RUNC_VERSION-$key/bin"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
log() { echo "[node toolchain] $*" >&2; }

# Builds into a scratch directory and moves the result into place, so an interrupted
# build never leaves a half-written binary in the cache.
install_bins() { # dir, then names
  local dir=$1; shift
  for name in "$@"; do mv -f "$dir/$name" "$bin/$name"; done
  rm -rf "$dir"
}
missing() { for name in "$@"; do [ -e "$bin/$name" ] || return 0; done; return 1; }
# `go install module/cmd@version` builds a module exactly as its own go.sum pins it,
# verified against the checksum database. Prints the scratch directory it built into.
go_install() { # version, tags, then packages (without @version)
  local version=$1 tags=$2; shift 2
  local out pkgs=() p
  out=$(mktemp -d "$bin/.build.XXXXXX")
  for p in "$@"; do pkgs+=("$p@$version"); done
  GOBIN=$out go install -trimpath -tags "$tags" -ldflags "-s -w" "${pkgs[@]}"
  echo "$out"
}

if missing containerd ctr; then
  log "building containerd $CONTAINERD_VERSION (containerd, ctr)"
  m=github.com/containerd/containerd/v2
  out=$(CGO_ENABLED=0 go_install "$CONTAINERD_VERSION" "urfave_cli_no_docs no_btrfs" "$m/cmd/containerd" "$m/cmd/ctr")
  install_bins "$out" containerd ctr
fi
if missing containerd-shim-runc-v2; then
  log "building containerd-shim-runc-v2 $CONTAINERD_VERSION"
  out=$(CGO_ENABLED=0 go_install "$CONTAINERD_VERSION" "urfave_cli_no_docs no_btrfs no_grpc" \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2)
  install_bins "$out" containerd-shim-runc-v2
fi
if missing runc; then
  log "building runc $RUNC_VERSION (seccomp)"
  out=$(CGO_ENABLED=1 go_install "$RUNC_VERSION" seccomp github.com/opencontainers/runc)
  install_bins "$out" runc
fi
if missing cni/bridge cni/host-local cni/loopback cni/portmap; then
  log "building CNI plugins $CNI_PLUGINS_VERSION (bridge, host-local, loopback, portmap)"
  m=github.com/containernetworking/plugins/plugins
  out=$(CGO_ENABLED=0 go_install "$CNI_PLUGINS_VERSION" "" \
    "$m/main/bridge" "$m/ipam/host-local" "$m/main/loopback" "$m/meta/portmap")
  mkdir -p "$bin/cni"
  for name in bridge host-local loopback portmap; do mv -f "$out/$name" "$bin/cni/$name"; done
  rm -rf "$out"
fi
if missing crictl; then
  log "building crictl $CRICTL_VERSION"
  out=$(CGO_ENABLED=0 go_install "$CRICTL_VERSION" "" sigs.k8s.io/cri-tools/cmd/crictl)
  install_bins "$out" crictl
fi
if missing crane; then
  log "building crane $CRANE_VERSION"
  out=$(CGO_ENABLED=0 go_install "$CRANE_VERSION" "" github.com/google/go-containerregistry/cmd/crane)
  install_bins "$out" crane
fi
if missing kube-router; then
  log "building kube-router $KUBE_ROUTER_VERSION (NetworkPolicy firewall only)"
  out=$(CGO_ENABLED=0 go_install "$KUBE_ROUTER_VERSION" "" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
  install_bins "$out" kube-router
fi

# kubelet and kube-proxy come from the control plane's wrapper module, so the node runs the
# very Kubernetes the API server does, stamped with the same version. They need a few modules the
# control plane does not (their sums are checked against the checksum database): they are built
# in a copy of the module, so the control plane's go.sum, and with it its cache key, stay as they are.
if missing kubelet kube-proxy; then
  log "building Kubernetes $kube_version (kubelet, kube-proxy)"
  minor=${kube_version#v1.}; minor=${minor%%.*}
  time=$(cd "$here/kube" && go list -m -json k8s.io/kubernetes | awk -F'"' '$2 == "Time" {print $4}')
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${time:-unknown}"
  done
  out=$(mktemp -d "$bin/.kube.XXXXXX")
  cp "$here/kube/go.mod" "$here/kube/go.sum" "$here/kube/tools.go" "$out/"
  (cd "$out" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" \
    -o "$out/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  install_bins "$out" kubelet kube-proxy
fi

# The sandbox ("pause") image: Kubernetes' pause.c, compiled statically, one layer with its
# entry point, as a docker-archive for `ctr images import` (the image cannot be pulled here). crane
# builds it against a registry of its own, in memory on a loopback port, stopped right after.
if missing pause.tar; then
  log "building the sandbox image (pause)"
  out=$(mktemp -d "$bin/.pause.XXXXXX")
  mkdir -p "$out/root" "$out/image"
  gcc -Os -static -Wall -Werror -o "$out/root/pause" "$here/pause.c"
  strip "$out/root/pause"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$out/root" -cf "$out/layer.tar" pause
  "$bin/crane" registry serve --address 127.0.0.1:0 > "$out/registry.log" 2>&1 &
  registry=$!
  trap 'kill $registry 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do grep -q 'serving on port' "$out/registry.log" && break; sleep 0.1; done
  ref=127.0.0.1:$(sed -n 's/.*serving on port //p' "$out/registry.log")/pause:3.10
  "$bin/crane" append --insecure -f "$out/layer.tar" -t "$ref" >/dev/null 2>&1
  "$bin/crane" mutate --insecure --entrypoint /pause --user 65535:65535 --set-platform linux/amd64 "$ref" >/dev/null 2>&1
  "$bin/crane" pull --insecure "$ref" "$out/registry.tar"
  kill $registry; trap - EXIT
  # Named as containerd's configuration expects it, not after the passing registry's address.
  tar -C "$out/image" -xf "$out/registry.tar"
  sed -i "s|\"$ref\"|\"paddock.local/pause:3.10\"|" "$out/image/manifest.json"
  grep -q '"paddock.local/pause:3.10"' "$out/image/manifest.json" || { log "cannot name the sandbox image"; exit 1; }
  tar -C "$out/image" -cf "$out/pause.tar" .
  install_bins "$out" pause.tar
fi

echo "$bin"
