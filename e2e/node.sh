# A real node beside cluster.sh's control plane (sourced by cluster.sh for `up --node`): containerd
# with runc, kubelet, kube-proxy (iptables) and kube-router's NetworkPolicy firewall, built by
# e2e/toolchain/node.sh, each started and stopped by PID.
#
# The node lives in a network namespace of its own (paddock-NAME), joined to the machine by a veth
# pair, so two clusters' kube-proxy and firewall rules never meet. Addresses, all in 198.18.0.0/15
# and never routed off the machine (K = the cluster's base port / 1000, e.g. 26 for "test"):
#   198.18.K.1/30       the machine's end of the veth; kube-apiserver binds and advertises it
#   198.18.K.2/30       the node (kubelet, kube-proxy, kube-router), the veth's other end
#   198.18.(64+K).0/24  the pods, on the bridge cni0 at 198.18.(64+K).1 inside the namespace
#   198.19.0.0/16       the services (198.19.0.1: kubernetes), programmed by kube-proxy
# Pods are routed to 198.18.0.0/15 only (no default route) and never masqueraded.
# Uses cluster.sh's variables and helpers (name, dir, pki, logs, run, base, launch, alive, ...).

node_k=$((base / 1000))
node_netns=paddock-$name
node_veth=pdk$node_k
node_host_ip=198.18.$node_k.1
node_ip=198.18.$node_k.2
node_pod_cidr=198.18.$((64 + node_k)).0/24
node_bridge_ip=198.18.$((64 + node_k)).1
node_service_cidr=198.19.0.0/16
node_service_ip=198.19.0.1
node_name=paddock-$name
node_dir=$dir/node
node_components=(containerd kubelet kube-proxy kube-router)

node_in_ns() { ip netns exec "$node_netns" "$@"; }
# Daemons join only the network namespace (ip netns exec would also give them a mount namespace
# of their own, and kubelet's volume mounts must be the ones containerd sees).
node_launch() { local c=$1; shift; launch "$c" nsenter --net="/run/netns/$node_netns" -- "$@"; }

node_net_up() {
  [ -e "/run/netns/$node_netns" ] || ip netns add "$node_netns"
  ip link show "$node_veth" >/dev/null 2>&1 || ip link add "$node_veth" type veth peer name eth0 netns "$node_netns"
  ip addr replace "$node_host_ip/30" dev "$node_veth"
  ip link set "$node_veth" up
  node_in_ns ip link set lo up
  node_in_ns ip addr replace "$node_ip/30" dev eth0
  node_in_ns ip link set eth0 up
  node_in_ns ip route replace 198.18.0.0/15 via "$node_host_ip"
  ip route replace "$node_pod_cidr" via "$node_ip" dev "$node_veth"
  node_in_ns sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

node_net_down() {
  ip link del "$node_veth" 2>/dev/null || true
  [ ! -e "/run/netns/$node_netns" ] || ip netns del "$node_netns"
}

node_pki() {
  issue_cert kubelet "/O=system:nodes/CN=system:node:$node_name"
  issue_cert kubelet-serving "/CN=$node_name" "IP:$node_ip,DNS:$node_name"
  issue_cert kube-proxy "/CN=system:kube-proxy"
  issue_cert kube-router "/CN=paddock:kube-router"
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  chmod 600 "$pki"/*.key
  write_kubeconfig "$dir/kubelet.kubeconfig" kubelet "system:node:$node_name"
  write_kubeconfig "$dir/kube-proxy.kubeconfig" kube-proxy
  write_kubeconfig "$dir/kube-router.kubeconfig" kube-router
}

node_config() {
  local nbin=$1
  mkdir -p "$node_dir/cni" "$node_dir/containerd" "$node_dir/kubelet"
  : > "$node_dir/resolv.conf"  # no name server: pods resolve nothing unless a test gives them DNS
  # For tests and people: where the node's parts are.
  printf 'host_ip=%s\nnode_ip=%s\npod_cidr=%s\nbridge_ip=%s\napi_port=%s\nnetns=%s\nnode_name=%s\n' \
    "$node_host_ip" "$node_ip" "$node_pod_cidr" "$node_bridge_ip" "$api_port" "$node_netns" "$node_name" \
    > "$node_dir/addresses"
  cat > "$node_dir/containerd.toml" <<EOF
version = 3
# NRI's socket is one per machine: off, so two clusters' nodes can run side by side.
disabled_plugins = ["io.containerd.nri.v1.nri"]
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
[grpc]
  address = "$node_dir/containerd.sock"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "paddock.local/pause:3.10"
[plugins."io.containerd.cri.v1.runtime"]
  # This machine's root lacks CAP_SYS_RESOURCE, so no process may lower its OOM score below
  # containerd's: kubelet's -998 for sandboxes is capped there instead of failing runc.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$nbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$nbin/cni"]
    conf_dir = "$node_dir/cni"
EOF
  cat > "$node_dir/cni/10-paddock.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "paddock-$name",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$node_dir/ipam",
        "ranges": [[{"subnet": "$node_pod_cidr", "gateway": "$node_bridge_ip"}]],
        "routes": [{"dst": "198.18.0.0/15"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat > "$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /paddock-$name
podLogsDir: $node_dir/pod-logs
containerRuntimeEndpoint: unix://$node_dir/containerd.sock
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: $node_dir/resolv.conf
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
maxPods: 110
podPidsLimit: 4096
EOF
  cat > "$node_dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $dir/kube-proxy.kubeconfig}
hostnameOverride: $node_name
clusterCIDR: $node_pod_cidr
bindAddress: $node_ip
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
nodePortAddresses: ["$node_ip/32"]
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# kube-router's firewall reads pods, namespaces, policies and its node, nothing more.
node_rbac() {
  "$bin/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "paddock:kube-router"}
rules:
- apiGroups: [""]
  resources: [pods, namespaces, nodes, services, endpoints]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "paddock:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "paddock:kube-router"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "paddock:kube-router"}]
EOF
}

# kubelet's cgroup root (cgroup v1: one directory per controller; cpuset needs its CPUs and
# memory nodes before a task may join). kubelet makes kubepods and the pods' cgroups under it.
node_cgroups() {
  local c d
  for c in /sys/fs/cgroup/*/; do
    [ "$c" = /sys/fs/cgroup/unified/ ] && continue
    d="$c/paddock-$name"
    mkdir -p "$d"
    if [ -f "$c/cpuset.cpus" ]; then
      cat "$c/cpuset.cpus" > "$d/cpuset.cpus"; cat "$c/cpuset.mems" > "$d/cpuset.mems"
    fi
  done
}

node_containerd_ready() { "$nbin/ctr" --address "$node_dir/containerd.sock" version >/dev/null 2>&1; }

start_containerd() {
  log "starting containerd (node $node_name, $node_ip)"
  PATH="$nbin:$PATH" node_launch containerd "$nbin/containerd" --config "$node_dir/containerd.toml"
  wait_for containerd 30 node_containerd_ready || fail_start "containerd is not ready"
  "$nbin/ctr" --address "$node_dir/containerd.sock" -n k8s.io images import "$nbin/pause.tar" >/dev/null \
    || fail_start "cannot import the sandbox image"
}

start_kubelet() {
  PATH="$nbin:$PATH" node_launch kubelet "$nbin/kubelet" --config "$node_dir/kubelet.yaml" \
    --kubeconfig "$dir/kubelet.kubeconfig" --root-dir "$node_dir/kubelet" \
    --hostname-override "$node_name" --node-ip "$node_ip" --v 1
}

start_kube-proxy() {
  node_launch kube-proxy "$nbin/kube-proxy" --config "$node_dir/kube-proxy.yaml" --v 1
}

start_kube-router() {
  node_launch kube-router "$nbin/kube-router" --kubeconfig "$dir/kube-router.kubeconfig" \
    --hostname-override "$node_name" --run-firewall=true --run-router=false --run-service-proxy=false \
    --enable-cni=false --metrics-port 0 --health-port 20244 --v 1
}

node_ready() {
  "$bin/kubectl" --kubeconfig "$kubeconfig" get node "$node_name" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}

node_up() {
  nbin=$("$here/toolchain/node.sh")
  node_config "$nbin"
  node_cgroups
  node_rbac || fail_start "cannot grant kube-router its rights"
  start_containerd
  log "starting kubelet and kube-proxy"
  start_kubelet
  start_kube-proxy
  local c
  for c in kubelet kube-proxy; do wait_for "$c" 5 alive "$c" || fail_start "$c exited"; done
  wait_for "node $node_name Ready" 120 node_ready || fail_start "node $node_name did not become Ready"
  # kube-router looks its Node up once, at start, and exits when kubelet has not registered it
  # yet ("failed to identify the node by NODE_NAME, hostname or --hostname-override"): it starts
  # after the node is Ready, and is up once its firewall's chains are in the node's iptables.
  log "starting kube-router"
  start_kube-router
  wait_for "kube-router's firewall chains" 60 node_firewall_ready || fail_start "kube-router did not program its firewall"
}

# kube-router runs and its network policy controller has made its top-level chain.
node_firewall_ready() {
  alive kube-router && node_in_ns iptables -t filter -S KUBE-ROUTER-FORWARD >/dev/null 2>&1
}

# Imports image archives (docker or OCI) into the node's containerd, where kubelet finds them.
node_import() {
  local nbin f; nbin=$("$here/toolchain/node.sh" --path)
  alive containerd || { log "the node's containerd is not running: start the cluster with --node"; exit 1; }
  for f in "$@"; do
    "$nbin/ctr" --address "$node_dir/containerd.sock" -n k8s.io images import "$f" >/dev/null
    log "imported $f"
  done
}

# Removes the node's pods (with kubelet stopped, so nothing restarts them), then stops containerd.
node_down() {
  local nbin; nbin=$("$here/toolchain/node.sh" --path)
  stop_pids kube-router kube-proxy kubelet
  if alive containerd; then
    CONTAINER_RUNTIME_ENDPOINT="unix://$node_dir/containerd.sock" timeout 60 "$nbin/crictl" rmp -a -f >/dev/null 2>&1 || true
  fi
  stop_pids containerd
  # What kubelet and containerd left mounted (volumes, root filesystems), deepest first.
  awk -v d="$node_dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
