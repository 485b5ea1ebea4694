#!/usr/bin/env bash
# Builds Paddock's images without a Docker daemon, from the same Dockerfiles `docker build` uses:
#   1. a Debian 12 root filesystem from the Debian archive (mmdebstrap), committed as the local
#      base image paddock.local/debian:bookworm; for agent-claude-code, that base plus Debian's
#      Node.js and npm as paddock.local/node:bookworm;
#   2. each Dockerfile target built by buildah (--isolation chroot, no daemon), FROM the local
#      base through the Dockerfiles' own build arguments (DEBIAN_IMAGE, NODE_IMAGE), so nothing
#      is pulled from a registry;
#   3. each image saved as a docker-archive for `ctr images import`.
# Everything is cached in $PADDOCK_CACHE/images, keyed by a hash of the image's inputs (the
# Dockerfile, the sources it compiles, the pins): an unchanged image is not rebuilt.
#
#   images/build.sh [IMAGE...]     build what is missing, print one archive path per image
#   images/build.sh --list         the image names and their references
# IMAGE: operator, stage, agent-sim, agent-claude-code (default: all four). Needs root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}/images
# The Claude Code CLI from npm: pinned once, by the Dockerfile's ARG CLAUDE_CODE_VERSION.
CLAUDE_CODE_VERSION=$(sed -n 's/^ARG CLAUDE_CODE_VERSION=//p' "$root/images/agent-claude-code/Dockerfile")
BASE_REVISION=1  # bump to rebuild the base images from the archive's current packages
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${PADDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
build_ca=${PADDOCK_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}

declare -A dockerfile=([operator]=images/Dockerfile [stage]=images/Dockerfile [agent-sim]=images/Dockerfile
                       [agent-claude-code]=images/agent-claude-code/Dockerfile)
declare -A target=([operator]=operator [stage]=stage [agent-sim]=agent-sim [agent-claude-code]="")
# The references the images are imported as (the e2e tests and the node's pods name these).
declare -A ref=([operator]=paddock.local/paddock-operator:dev [stage]=paddock.local/paddock-stage:dev
                [agent-sim]=paddock.local/paddock-agent-sim:dev
                [agent-claude-code]=paddock.local/agent-claude-code:$CLAUDE_CODE_VERSION)
order=(operator stage agent-sim agent-claude-code)

if [ "${1:-}" = --list ]; then for i in "${order[@]}"; do echo "$i ${ref[$i]}"; done; exit 0; fi
log() { echo "[images] $*" >&2; }
for i in "$@"; do [ -n "${ref[$i]:-}" ] || { log "no image named '$i' (one of: ${order[*]})"; exit 2; }; done
[ $# -gt 0 ] || set -- "${order[@]}"
[ "$(id -u)" = 0 ] || { log "needs root (buildah --isolation chroot and mmdebstrap as root)"; exit 1; }
command -v buildah >/dev/null && command -v mmdebstrap >/dev/null \
  || { log "needs Debian's buildah and mmdebstrap (scripts/paddock deps installs them)"; exit 1; }

mkdir -p "$cache"
buildah() {
  command buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver overlay "$@"
}

# Commits a root filesystem tarball as image $2, after running $3 (a shell line, may be empty) in it.
commit_rootfs() { # tarball, image, setup
  local c; c=$(buildah from scratch)
  buildah add "$c" "$1" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$c"
  [ -z "$3" ] || buildah run --isolation chroot "$c" -- /bin/bash -o pipefail -c "$3"
  buildah commit --rm -q "$c" "$2" >/dev/null
}

base_key() { printf '%s\n' "$BASE_REVISION" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12; }

# The local base images, built once per base_key.
base_images() {
  local key; key=$(base_key)
  [ -f "$cache/base-$key.done" ] && return 0
  log "building the Debian $DEBIAN_SUITE root filesystem from $DEBIAN_MIRROR (mmdebstrap)"
  local tar="$cache/debian-$DEBIAN_SUITE.tar"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$DEBIAN_SUITE" "$tar" "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main"
  commit_rootfs "$tar" paddock.local/debian:bookworm ""
  log "building paddock.local/node:bookworm (Debian's Node.js and npm)"
  commit_rootfs "$tar" paddock.local/node:bookworm \
    "apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/* /var/cache/apt/*"
  rm -f "$tar"
  touch "$cache/base-$key.done"
}

# The inputs of image $1: its Dockerfile, the base images, the pins above and what its build
# compiles: the top CMakeLists.txt and the folders it adds unconditionally (its unindented
# add_subdirectory lines: what CMake configures with the Dockerfile's -DBUILD_TESTING=OFF), so an
# edit to tests, docs or charts rebuilds no image, and a folder added there is hashed with it.
mapfile -t image_sources < <(echo CMakeLists.txt; sed -n 's/^add_subdirectory(\([^ )]*\))$/\1/p' "$root/CMakeLists.txt")
inputs_key() {
  { echo "$1 ${ref[$1]} $CLAUDE_CODE_VERSION $(base_key)"; cat "$root/${dockerfile[$1]}"
    if [ "$1" = agent-claude-code ]; then cat "$root/images/agent-claude-code/entrypoint.sh"
    else (cd "$root" && git ls-files -co --exclude-standard -z -- "${image_sources[@]}" | xargs -0 sha256sum 2>/dev/null); fi
  } | sha256sum | cut -c1-16
}

build_image() {
  local i=$1 key out args=()
  key=$(inputs_key "$i")
  out="$cache/$i-$key.tar"
  if [ ! -f "$out" ]; then
    base_images
    log "building $i as ${ref[$i]} (buildah, ${dockerfile[$i]}${target[$i]:+ --target ${target[$i]}})"
    [ -z "${target[$i]}" ] || args+=(--target "${target[$i]}")
    # The machine's CA bundle, for a registry reached through a TLS-inspecting proxy (a build secret:
    # never in a layer).
    [ ! -s "$build_ca" ] || args+=(--secret "id=build-ca,src=$build_ca")
    # Docker's image format: OCI's has no SHELL, and the Dockerfiles' RUN lines rely on pipefail.
    buildah build --isolation chroot --format docker --layers --pull-never --quiet \
      --build-arg DEBIAN_IMAGE=paddock.local/debian:bookworm --build-arg NODE_IMAGE=paddock.local/node:bookworm \
      --build-arg CLAUDE_CODE_VERSION="$CLAUDE_CODE_VERSION" \
      -f "$root/${dockerfile[$i]}" "${args[@]}" -t "${ref[$i]}" "$root" >/dev/null
    rm -f "$cache/$i"-*.tar
    buildah push --quiet "${ref[$i]}" "docker-archive:$out.tmp:${ref[$i]}"
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

for i in "$@"; do build_image "$i"; done
