#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for development and end-to-end tests:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes that run
# the pod lifecycle), all built from source by e2e/toolchain/build.sh; with --node, a real node
# instead of the fake ones (e2e/node.sh: containerd, kubelet, kube-proxy, kube-router's firewall).
#
#   e2e/cluster.sh up     [--name NAME] [--fresh] [--node]
#                                         start (or confirm running), then print the kubeconfig path;
#                                         --fresh restarts it on an empty etcd; --node adds a real
#                                         node (needs root) and no fake ones
#   e2e/cluster.sh down   [--name NAME]   stop every process by PID; keeps certificates and data
#   e2e/cluster.sh reset  [--name NAME]   stop and delete everything, data included
#   e2e/cluster.sh status [--name NAME]   say what runs; exit 1 when the API server is not ready
#   e2e/cluster.sh restart [--name NAME] COMPONENT   stop one component and start it again
#   e2e/cluster.sh compact [--name NAME]  compact etcd to its current revision (old watches get 410)
#   e2e/cluster.sh apply [--name NAME] FILE|DIR...  kubectl apply, then wait for CRDs to be Established
#   e2e/cluster.sh import [--name NAME] ARCHIVE...  import image archives into the real node's runtime
#   e2e/cluster.sh user   [--name NAME] USER [GROUP...]
#                                         write a kubeconfig for USER (client certificate) and print its path
#
# NAME defaults to "dev". Each cluster keeps its state in $PADDOCK_CACHE/clusters/NAME (certificates,
# etcd data, logs, PIDs, kubeconfigs) and uses its own ports: dev from 16443, test from 26443,
# node-e2e (the real node's tests) from 23443, bench from 31443, chaos (scripts/paddock chaos) from 21443, anything else from
# $PADDOCK_CLUSTER_PORT; all below Linux's ephemeral range (32768 and up), so a client
# connection's local port never takes one. Everything listens on 127.0.0.1 only, except with --node: then kube-apiserver listens on 198.18.K.1, the machine's end
# of the node's veth pair, where pods reach it (e2e/node.sh has the addresses). Services are in
# 198.19.0.0/16 and kwok's fake pods in 198.18.128.0/17: no cluster uses a private range.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}

cmd=${1:-}; shift || true
name=dev
fresh=0
node=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --name=*) name=${1#--name=}; shift ;;
    --fresh) fresh=1; shift ;;
    --node) node=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

case "$name" in
  dev) base=16443 ;;
  test) base=26443 ;;
  bench) base=31443 ;;
  node-e2e) base=23443 ;;
  chaos) base=21443 ;;
  bench-node) base=35443 ;;
  *) base=${PADDOCK_CLUSTER_PORT:?set PADDOCK_CLUSTER_PORT for a cluster named $name} ;;
esac
api_port=$base etcd_port=$((base + 1)) peer_port=$((base + 2)) kcm_port=$((base + 3))
sched_port=$((base + 4)) kwok_port=$((base + 5))

dir="$cache/clusters/$name"
pki="$dir/pki" logs="$dir/logs" run="$dir/run"
kubeconfig="$dir/kubeconfig"
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
source "$here/node.sh"
# A node cluster is one started with --node, or one whose node still runs.
if [ -f "$run/kubelet.pid" ] || [ -f "$run/containerd.pid" ]; then node=1; fi
if [ $node = 1 ]; then
  api_host=$node_host_ip
  components=(etcd kube-apiserver kube-controller-manager kube-scheduler "${node_components[@]}")
else
  api_host=127.0.0.1
fi

log() { echo "[cluster $name] $*" >&2; }

alive() { local f="$run/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

api_ready() {
  curl -sf --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://$api_host:$api_port/readyz" >/dev/null 2>&1
}

# Stops the named components by PID: TERM, then KILL after 10 s.
stop_pids() {
  local c pids=()
  for c in "$@"; do
    alive "$c" && { kill -TERM "$(cat "$run/$c.pid")" 2>/dev/null || true; pids+=("$(cat "$run/$c.pid")"); }
  done
  local pid
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for c in "$@"; do rm -f "$run/$c.pid"; done
}

stop_all() {
  if [ $node = 1 ]; then node_down; fi
  stop_pids kwok kube-scheduler kube-controller-manager kube-apiserver etcd
  if [ $node = 1 ]; then node_net_down; fi
  rm -f "$run"/*.pid
}

# A certificate signed by the cluster CA. $1 name, $2 subject, $3 optional subjectAltName. An
# existing one is kept unless its subjectAltName differs (a server's addresses changed).
issue_cert() {
  local n=$1 subj=$2 san=${3:-}
  [ -f "$pki/$n.crt" ] && [ "$(cat "$pki/$n.san" 2>/dev/null)" = "$san" ] && return 0
  openssl genrsa -out "$pki/$n.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$n.key" -subj "$subj" -out "$pki/$n.csr" 2>/dev/null
  local ext="$pki/$n.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi
  } > "$ext"
  openssl x509 -req -in "$pki/$n.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$pki/$n.crt" 2>/dev/null
  rm -f "$pki/$n.csr" "$ext"
  printf '%s' "$san" > "$pki/$n.san"
}

make_pki() {
  mkdir -p "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=paddock-local-ca-$name" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$pki/ca.crt" 2>/dev/null
  fi
  issue_cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$node_host_ip,IP:$node_service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue_cert admin "/O=system:masters/CN=paddock-admin"
  issue_cert kube-controller-manager "/CN=system:kube-controller-manager"
  issue_cert kube-scheduler "/CN=system:kube-scheduler"
  issue_cert kwok "/O=system:masters/CN=kwok"
  issue_cert front-proxy-client "/CN=front-proxy-client"
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  if [ ! -f "$pki/sa.key" ]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  chmod 600 "$pki"/*.key
}

# Writes a kubeconfig for the client certificate $2 to $1.
write_kubeconfig() {
  local out=$1 cert=$2 user=${3:-$2}
  cat > "$out.tmp" <<EOF
apiVersion: v1
kind: Config
current-context: paddock-$name
clusters:
- name: paddock-$name
  cluster:
    server: https://$api_host:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$cert.crt
    client-key: $pki/$cert.key
contexts:
- name: paddock-$name
  context: {cluster: paddock-$name, user: $user}
EOF
  mv "$out.tmp" "$out"
}

# Starts $1 in the background with its output in logs/$1.log and its PID in run/$1.pid.
launch() {
  local c=$1; shift
  "$@" > "$logs/$c.log" 2>&1 &
  echo $! > "$run/$c.pid"
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then log "timed out after ${secs}s waiting for $what"; return 1; fi
    sleep 0.25
  done
}

fail_start() {
  log "start failed: $1. Last lines of the logs in $logs:"
  for c in "${components[@]}"; do
    [ -f "$logs/$c.log" ] && { echo "--- $c" >&2; tail -n 15 "$logs/$c.log" >&2; }
  done
  stop_all
  exit 1
}

# The default StorageClass: kube-controller-manager's hostPath provisioner (for tests on one
# machine) binds claims at once, so pods with a PersistentVolumeClaim (a run's shared workspace)
# schedule onto the fake nodes.
storage_class() {
  "$bin/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-hostpath
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
}

fake_nodes() {
  local i manifest=""
  for i in 0 1 2 3; do
    manifest+="
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: \"0\"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: \"4000\", memory: 16Ti, ephemeral-storage: 100Ti, pods: \"5000\"}
  capacity: {cpu: \"4000\", memory: 16Ti, ephemeral-storage: 100Ti, pods: \"5000\"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}"
  done
  echo "$manifest" | "$bin/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null
}

up() {
  bin=$("$here/toolchain/build.sh")
  if [ $fresh = 1 ]; then stop_all; rm -rf "$dir/etcd"; fi
  mkdir -p "$logs" "$run" "$dir/etcd"
  if alive kube-apiserver && api_ready; then
    local all=1 c
    for c in "${components[@]}"; do alive "$c" || all=0; done
    if [ $all = 1 ]; then log "already running"; echo "$kubeconfig"; return 0; fi
  fi
  stop_all
  if [ $node = 1 ]; then node_net_up || fail_start "cannot create the node's network namespace (needs root)"; fi
  make_pki
  write_kubeconfig "$kubeconfig" admin paddock-admin
  write_kubeconfig "$dir/kube-controller-manager.kubeconfig" kube-controller-manager
  write_kubeconfig "$dir/kube-scheduler.kubeconfig" kube-scheduler
  write_kubeconfig "$dir/kwok.kubeconfig" kwok

  start_etcd
  start_kube-apiserver
  log "starting kube-controller-manager and kube-scheduler"
  start_kube-controller-manager
  start_kube-scheduler
  local c started=(kube-controller-manager kube-scheduler)
  if [ $node = 0 ]; then start_kwok; started+=(kwok); fi
  for c in "${started[@]}"; do
    wait_for "$c" 5 alive "$c" || fail_start "$c exited"
  done
  storage_class || fail_start "cannot create the default StorageClass"
  if [ $node = 1 ]; then
    node_pki
    node_up
  else
    fake_nodes || fail_start "cannot create the fake nodes"
    wait_for "a Ready kwok node" 60 kwok_node_ready || fail_start "no kwok node became Ready"
  fi
  # Namespaces get their default service account from kube-controller-manager.
  wait_for "the default service account" 60 \
    "$bin/kubectl" --kubeconfig "$kubeconfig" get serviceaccount default -n default -o name \
    >/dev/null 2>&1 || fail_start "kube-controller-manager did not create the default service account"
  log "ready: $("$bin/kubectl" --kubeconfig "$kubeconfig" version -o json 2>/dev/null | awk -F'"' '/gitVersion/ {v=$4} END {print v}') on https://$api_host:$api_port"
  echo "$kubeconfig"
}

# One function per component, so `restart` can start one alone.
start_etcd() {
  log "starting etcd on 127.0.0.1:$etcd_port"
  launch etcd "$bin/etcd" --name paddock --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "paddock=http://127.0.0.1:$peer_port" --listen-metrics-urls "" \
    --log-level warn --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_for etcd 30 curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$etcd_port/health" || fail_start "etcd is not healthy"
}

start_kube-apiserver() {
  log "starting kube-apiserver on https://$api_host:$api_port"
  launch kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$api_host" --advertise-address "$api_host" --secure-port "$api_port" \
    --endpoint-reconciler-type "$([ $node = 1 ] && echo lease || echo none)" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" --kubelet-certificate-authority "$pki/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$node_service_cidr" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,PodSecurity,MutatingAdmissionPolicy,ValidatingAdmissionPolicy \
    --feature-gates MutatingAdmissionPolicy=true \
    --runtime-config admissionregistration.k8s.io/v1beta1=true \
    --requestheader-client-ca-file "$pki/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --allow-privileged=true --profiling=false --shutdown-delay-duration 0s
  wait_for kube-apiserver 120 api_ready || fail_start "kube-apiserver is not ready"

}

start_kube-controller-manager() {
  launch kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --kube-api-qps "${PADDOCK_KCM_QPS:-20}" --kube-api-burst "${PADDOCK_KCM_BURST:-30}" \
    --enable-hostpath-provisioner
}

start_kube-scheduler() {
  launch kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false
}

start_kwok() {
  launch kwok "$bin/kwok" --kubeconfig "$dir/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --config "$here/kwok/stages.yaml" \
    --server-address "127.0.0.1:$kwok_port" --cidr 198.18.128.1/17 --node-ip 198.18.63.254
}

kwok_node_ready() {
  "$bin/kubectl" --kubeconfig "$kubeconfig" get node kwok-node-0 \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}

status() {
  local c rc=0
  for c in "${components[@]}"; do
    if alive "$c"; then echo "$c: running (pid $(cat "$run/$c.pid"))"; else echo "$c: stopped"; fi
  done
  if api_ready; then echo "kube-apiserver: ready on https://$api_host:$api_port"; echo "kubeconfig: $kubeconfig"
  else echo "kube-apiserver: not ready"; rc=1; fi
  return $rc
}

user() {
  [ ${#args[@]} -ge 1 ] || { echo "usage: $0 user [--name NAME] USER [GROUP...]" >&2; exit 2; }
  [ -f "$pki/ca.key" ] || { echo "cluster $name has no certificates yet: run '$0 up --name $name' first" >&2; exit 1; }
  local u=${args[0]} subj="" g
  for g in "${args[@]:1}"; do subj+="/O=$g"; done
  local safe=user-$(printf '%s' "$u" | tr -c 'a-zA-Z0-9._-' '_')
  # A fresh certificate each time, so the user has exactly the groups asked for now.
  rm -f "$pki/$safe.crt"
  issue_cert "$safe" "$subj/CN=$u"
  write_kubeconfig "$dir/$safe.kubeconfig" "$safe" "$u"
  echo "$dir/$safe.kubeconfig"
}

# Stops one component and starts it again with the same configuration.
restart() {
  local c=${args[0]:-}
  case " ${components[*]} " in *" $c "*) ;; *) echo "usage: $0 restart [--name NAME] {${components[*]}}" >&2; exit 2 ;; esac
  bin=$("$here/toolchain/build.sh" --path) nbin=$("$here/toolchain/node.sh" --path)
  if alive "$c"; then
    local pid; pid=$(cat "$run/$c.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  local started; started=$(date +%s)
  "start_$c"
  [ "$c" = etcd ] || [ "$c" = kube-apiserver ] || wait_for "$c" 5 alive "$c" || fail_start "$c exited"
  # A restarted API server knows Paddock's kinds in admission only after its first REST-mapping
  # refresh: when the CRDs are installed, return once admission serves them again.
  if [ "$c" = kube-apiserver ]; then
    wait_for "the API server" 60 "$bin/kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s \
      get --raw /readyz >/dev/null 2>&1 || { log "the restarted API server is not ready"; exit 1; }
    if "$bin/kubectl" --kubeconfig "$kubeconfig" get crd agentruns.paddock.dev >/dev/null 2>&1; then
      "$here/admission-ready.sh" "$kubeconfig" 120 "$started" || { log "admission does not serve Paddock's kinds"; exit 1; }
    fi
  fi
  log "restarted $c"
}

# Compacts etcd's history up to its current revision, so watches from older resource versions get 410 Gone.
compact() {
  local rev
  rev=$(curl -sf -X POST "http://127.0.0.1:$etcd_port/v3/kv/range" -d '{"key":"AA=="}' | sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
  [ -n "$rev" ] || { log "cannot read etcd's revision"; exit 1; }
  curl -sf -X POST "http://127.0.0.1:$etcd_port/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
  log "compacted etcd to revision $rev"
}

# kubectl apply of files or folders, then waits for any CRDs among them to be Established.
apply() {
  [ ${#args[@]} -ge 1 ] || { echo "usage: $0 apply [--name NAME] FILE|DIR..." >&2; exit 2; }
  bin=$("$here/toolchain/build.sh" --path)
  local f files=()
  for f in "${args[@]}"; do files+=(-f "$f"); done
  "$bin/kubectl" --kubeconfig "$kubeconfig" apply "${files[@]}" >/dev/null
  "$bin/kubectl" --kubeconfig "$kubeconfig" wait --for condition=Established crd --all --timeout 60s >/dev/null
  log "applied ${args[*]}"
}

case "$cmd" in
  up) up ;;
  apply) apply ;;
  import) node_import "${args[@]}" ;;
  restart) restart ;;
  compact) compact ;;
  down) stop_all; log "stopped" ;;
  reset) stop_all; rm -rf "$dir"; log "deleted $dir" ;;
  status) status ;;
  user) user ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = --help ] || exit 2 ;;
esac
