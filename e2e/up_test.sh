#!/usr/bin/env bash
# The README's first command, end to end: `scripts/paddock up` twice on a cluster of its own. Each
# time a new sample run must go through its phases to Succeeded (a second `up` on an existing
# cluster used to find the earlier sample finished and run nothing), then `scripts/paddock down`
# must stop what `up` started.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PADDOCK_UP_CLUSTER=uptest PADDOCK_CLUSTER_PORT=22443 PADDOCK_PROMETHEUS_PORT=22090 PADDOCK_UP_OPERATOR_PORT=22080
export PADDOCK_CACHE=${PADDOCK_CACHE:-$HOME/.cache/paddock}
paddock="$root/scripts/paddock"
trap '"$paddock" down >/dev/null 2>&1 || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

runs=()
for attempt in 1 2; do
  out=$("$paddock" up 2>&1) || { echo "$out" >&2; fail "scripts/paddock up ($attempt) failed"; }
  run=$(printf '%s\n' "$out" | sed -n 's/.*sample run paddock-sample\/\([a-z0-9-]*\): following its phases.*/\1/p' | head -1)
  [ -n "$run" ] || { echo "$out" >&2; fail "up ($attempt) did not start a sample run"; }
  printf '%s\n' "$out" | grep -q 'phase: Running' || { echo "$out" >&2; fail "up ($attempt): $run was never seen Running"; }
  printf '%s\n' "$out" | grep -q 'sample run finished: Succeeded' || { echo "$out" >&2; fail "up ($attempt): $run did not succeed"; }
  printf '%s\n' "$out" | grep -q "kubectl describe agentrun $run -n paddock-sample" || fail "up ($attempt) does not name its run"
  runs+=("$run")
  echo "up $attempt: sample run $run went Running, then Succeeded"
  # Names are by the second: the next up must not reuse this one's.
  [ "$attempt" = 2 ] || while [ "$(date -u +%Y%m%d-%H%M%S)" = "${run#hello-}" ]; do sleep 0.2; done
done
[ "${runs[0]}" != "${runs[1]}" ] || fail "both ups reported the same run ${runs[0]}"

kubectl="$("$root/e2e/toolchain/build.sh" --path)/kubectl"
kubeconfig="$PADDOCK_CACHE/clusters/uptest/kubeconfig"
for run in "${runs[@]}"; do
  phase=$("$kubectl" --kubeconfig "$kubeconfig" get agentrun "$run" -n paddock-sample -o 'jsonpath={.status.phase}')
  [ "$phase" = Succeeded ] || fail "$run is $phase on the cluster"
done

"$paddock" down >/dev/null 2>&1
pid_file="$PADDOCK_CACHE/clusters/uptest/run/kube-apiserver.pid"
[ ! -f "$pid_file" ] || fail "down left the API server's PID file"
"$paddock" status | grep -q 'paddock-operator: stopped' || fail "down left the operator running"
echo "PASS: two ups, two runs (${runs[*]}), both Succeeded; down stopped everything"
