#!/usr/bin/env bash
# Waits until the API server's admission serves Paddock's kinds: right after the CRDs and the
# admission policies are applied, a policy that matches a new kind answers 503 "Resource kind ...
# not found", and a policy whose paramKind is a new kind "failed to configure policy", until the API
# server's REST mapping knows it (Established is not enough). A server-side
# dry run of the sample AgentRun and AgentApproval in the default namespace must get past that:
# created, or refused for what it says (403, 422), but not 503.
#
#   e2e/admission-ready.sh KUBECONFIG [TIMEOUT_SECONDS [SINCE_EPOCH]]
#
# SINCE_EPOCH: when the API server was (re)started, if that was after the CRDs were created (a
# restarted API server builds its admission REST mapping anew and knows no custom kind until its
# first refresh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kubeconfig=$1 timeout=${2:-120} since=${3:-0}
kubectl="$("$here/toolchain/build.sh" --path)/kubectl"
deadline=$((SECONDS + timeout))
# The run policy is evaluated, and needs its paramKind mapped, only when an AgentPolicy exists: a
# probe policy that selects no namespace is there while the samples are tried.
sed -e 's/^  name: .*/  name: paddock-admission-probe/' "$here/../crds/samples/policy.yaml" |
  "$kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null
"$kubectl" --kubeconfig "$kubeconfig" patch agentpolicy paddock-admission-probe --type merge \
  -p '{"spec": {"namespaceSelector": {"matchLabels": {"paddock.dev/admission-probe": "none"}}}}' >/dev/null
trap '"$kubectl" --kubeconfig "$kubeconfig" delete agentpolicy paddock-admission-probe --ignore-not-found >/dev/null 2>&1 || true' EXIT
# A real create (a dry run can take another path through admission), ten times in a row.
probe() {
  local out
  out=$(sed -e 's/^  namespace: .*/  namespace: default/' -e 's/^  name: .*/  name: paddock-admission-probe/' \
          "$here/../crds/samples/$1.yaml" | "$kubectl" --kubeconfig "$kubeconfig" create -o name -f - 2>&1) && {
    "$kubectl" --kubeconfig "$kubeconfig" delete -n default "$out" --ignore-not-found >/dev/null 2>&1 || true
    return 0
  }
  if grep -qE 'ServiceUnavailable|There can be a delay|the server is currently unable|failed to configure policy|failed to find resource' <<<"$out"; then
    echo "$out"; return 1
  fi
  return 0  # refused for what the sample says (403, 422): admission served it
}
for sample in run approval; do
  good=0
  while [ $good -lt 10 ]; do
    if last=$(probe "$sample"); then good=$((good + 1)); else good=0; fi
    [ $SECONDS -lt $deadline ] || { echo "admission does not serve the sample $sample yet: $last" >&2; exit 1; }
    sleep 0.5
  done
done
# kube-apiserver refreshes the REST mapping its admission policies use every 30 s; until the first
# refresh after the CRDs were created (or the API server started), a request in another namespace
# can still meet the unmapped kind. Wait until that refresh has surely happened: 31 s after the later.
created=$("$kubectl" --kubeconfig "$kubeconfig" get crd agentruns.paddock.dev -o jsonpath='{.metadata.creationTimestamp}')
created=$(date -d "$created" +%s)
ready_at=$(( (created > since ? created : since) + 31 ))
while [ "$(date +%s)" -lt "$ready_at" ]; do
  [ $SECONDS -lt $deadline ] || { echo "gave up waiting for the API server's admission REST mapping" >&2; exit 1; }
  sleep 0.5
done
