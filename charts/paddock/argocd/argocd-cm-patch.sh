#!/usr/bin/env bash
# Prints the argocd-cm merge patch that installs Paddock's health check for AgentRun:
#   kubectl -n argocd patch configmap argocd-cm --type merge -p "$(charts/paddock/argocd/argocd-cm-patch.sh)"
# The value of the key is health.lua, verbatim. Needs jq.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jq -n --rawfile lua "$here/health.lua" '{data: {"resource.customizations.health.paddock.dev_AgentRun": $lua}}'
