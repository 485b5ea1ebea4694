#!/usr/bin/env bash
# A real Prometheus (Debian's package, /usr/bin/prometheus) on loopback for end-to-end tests. It
# scrapes, once a second, every target listed in the JSON files of its targets directory
# (file_sd_configs), so a test adds an agent by writing one file there and removes it by deleting it.
#
#   e2e/prometheus.sh up     [--name NAME] [--port PORT] [--fresh]
#                                         start (or confirm running), then print its URL;
#                                         --fresh restarts it with no data and no targets
#   e2e/prometheus.sh down   [--name NAME]   stop it by PID; keeps data and targets
#   e2e/prometheus.sh reset  [--name NAME]   stop it and delete everything
#   e2e/prometheus.sh status [--name NAME]   say whether it runs; exit 1 when it is not ready
#   e2e/prometheus.sh targets [--name NAME]  print the targets directory
#
# NAME defaults to "dev". Ports: dev 19090, test 29090, bench 31090, anything else --port (or
# $PADDOCK_PROMETHEUS_PORT); --port overrides for any name. It listens on 127.0.0.1 only.
# State lives in $PADDOCK_CACHE/prometheus/NAME: prometheus.yml, targets/, data/ (the TSDB,
# retention 1h), prometheus.log, prometheus.pid, port.
#
# A targets file, for example targets/fix-1.json (write it to a temporary name and rename it),
# carries the labels Kubernetes service discovery would give the agent's pod:
#   [{"targets": ["127.0.0.1:40123"], "labels": {"__meta_kubernetes_namespace": "team",
#     "__meta_kubernetes_pod_name": "fix-1-agent", "__meta_kubernetes_pod_uid": "...",
#     "__meta_kubernetes_pod_label_paddock_dev_run": "fix-1", ...}}]
# The job relabels them exactly as the shipped scrape job does
# (charts/paddock/files/agent-scrape-job.yaml, honor_labels false): namespace, pod, pod_uid and
# agentrun come from the pod, and the agent's own labels of those names become exported_*.
# An operator to scrape (its /metrics, for the dashboard's test) goes in targets/operator/*.json,
# plain: [{"targets": ["127.0.0.1:PORT"]}].
set -euo pipefail

cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}
prometheus=${PADDOCK_PROMETHEUS_BIN:-/usr/bin/prometheus}

cmd=${1:-}; shift || true
name=dev
port=""
fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --name=*) name=${1#--name=}; shift ;;
    --port) port=$2; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    --fresh) fresh=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

dir="$cache/prometheus/$name"
targets="$dir/targets"
pidfile="$dir/prometheus.pid"

if [ -z "$port" ] && [ -f "$dir/port" ]; then port=$(cat "$dir/port"); fi
if [ -z "$port" ]; then
  case "$name" in
    dev) port=19090 ;;
    test) port=29090 ;;
    bench) port=31090 ;;
    *) port=${PADDOCK_PROMETHEUS_PORT:?set --port or PADDOCK_PROMETHEUS_PORT for a Prometheus named $name} ;;
  esac
fi
url="http://127.0.0.1:$port"

log() { echo "[prometheus $name] $*" >&2; }

alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

ready() { curl -sf --max-time 2 "$url/-/ready" >/dev/null 2>&1; }

stop() {
  if alive; then
    local pid; pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

job_file="$(cd "$(dirname "$0")/.." && pwd)/charts/paddock/files/agent-scrape-job.yaml"

write_config() {
  {
    cat <<YAML
# Written by e2e/prometheus.sh: every agent listed in targets/*.json, scraped once a second,
# relabelled by the relabel_configs of $job_file.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: paddock-operator
    file_sd_configs:
      - files: ["$targets/operator/*.json"]
        refresh_interval: 1s
  - job_name: paddock-agents
    honor_labels: false
    file_sd_configs:
      - files: ["$targets/*.json"]
        refresh_interval: 1s
YAML
    sed -n '/^  relabel_configs:/,$p' "$job_file" | sed 's/^/  /'
  } > "$dir/prometheus.yml.tmp"
  grep -q 'relabel_configs:' "$dir/prometheus.yml.tmp" || { log "no relabel_configs in $job_file"; exit 1; }
}

up() {
  [ -x "$prometheus" ] || { log "$prometheus is missing: install Debian's prometheus package (scripts/paddock deps)"; exit 1; }
  if [ $fresh = 1 ]; then stop; rm -rf "$dir/data" "$targets"; fi
  mkdir -p "$targets/operator" "$dir/data"
  write_config
  if alive && ready && [ "$(cat "$dir/port" 2>/dev/null)" = "$port" ] && cmp -s "$dir/prometheus.yml.tmp" "$dir/prometheus.yml"; then
    rm -f "$dir/prometheus.yml.tmp"
    log "already running on $url"; echo "$url"; return 0
  fi
  stop
  mv "$dir/prometheus.yml.tmp" "$dir/prometheus.yml"
  echo "$port" > "$dir/port"
  "$prometheus" --config.file "$dir/prometheus.yml" \
    --web.listen-address "127.0.0.1:$port" \
    --storage.tsdb.path "$dir/data" --storage.tsdb.retention.time 1h \
    --web.enable-lifecycle \
    > "$dir/prometheus.log" 2>&1 &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + 60))
  until ready; do
    if ! alive || [ $SECONDS -ge $deadline ]; then
      log "did not become ready; the last lines of $dir/prometheus.log:"; tail -n 15 "$dir/prometheus.log" >&2
      stop; exit 1
    fi
    sleep 0.1
  done
  log "ready on $url, targets in $targets"
  echo "$url"
}

status() {
  if alive; then echo "prometheus: running (pid $(cat "$pidfile"))"; else echo "prometheus: stopped"; fi
  echo "targets: $targets"
  if ready; then echo "prometheus: ready on $url"; else echo "prometheus: not ready"; return 1; fi
}

case "$cmd" in
  up) up ;;
  down) stop; log "stopped" ;;
  reset) stop; rm -rf "$dir"; log "deleted $dir" ;;
  status) status ;;
  targets) echo "$targets" ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = --help ] || exit 2 ;;
esac
