#!/usr/bin/env bash
# CTest chart.argocd-health: renders the argocd-cm patch exactly as the README says to
# (argocd-cm-patch.sh), checks that its value is health.lua verbatim, and runs that value in
# gopher-lua the way Argo CD runs a health check (gopherlua/main.go) over every phase, condition,
# spec.cancel, generation and stage combination.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}
bin="$cache/argocd-health-check/argocd-health-check"
mkdir -p "$(dirname "$bin")"
(cd "$here/gopherlua" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$bin" .)
patch=$(mktemp); trap 'rm -f "$patch"' EXIT
"$here/argocd-cm-patch.sh" > "$patch"
jq -e --rawfile lua "$here/health.lua" '.data["resource.customizations.health.paddock.dev_AgentRun"] == $lua' "$patch" >/dev/null ||
  { echo "FAIL: the argocd-cm patch does not hold health.lua verbatim"; exit 1; }
"$bin" --argocd-cm "$patch"
