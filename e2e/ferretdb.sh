#!/usr/bin/env bash
# A MongoDB-protocol server on loopback for the audit store's tests and benchmark: FerretDB with
# its SQLite backend, built by e2e/toolchain/ferretdb.sh.
#
#   e2e/ferretdb.sh up   [--name NAME] [--fresh]   start (or confirm running), then print its mongodb:// URI;
#                                                  --fresh starts on empty data
#   e2e/ferretdb.sh down [--name NAME]             stop it by PID; keeps the data
#   e2e/ferretdb.sh uri  [--name NAME]             print the URI only
#
# NAME defaults to "audit-test" (port 27217); "audit-bench" uses 27218, anything else
# $PADDOCK_FERRETDB_PORT. State (SQLite files, log, PID) lives in $PADDOCK_CACHE/ferretdb/NAME.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}

cmd=${1:-}; shift || true
name=audit-test
fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --name=*) name=${1#--name=}; shift ;;
    --fresh) fresh=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$name" in
  audit-test) port=27217 ;;
  audit-bench) port=27218 ;;
  *) port=${PADDOCK_FERRETDB_PORT:?set PADDOCK_FERRETDB_PORT for an instance named $name} ;;
esac
dir="$cache/ferretdb/$name"
uri="mongodb://127.0.0.1:$port/"

log() { echo "[ferretdb $name] $*" >&2; }
alive() { [ -f "$dir/ferretdb.pid" ] && kill -0 "$(cat "$dir/ferretdb.pid")" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

down() {
  if alive; then
    local pid; pid=$(cat "$dir/ferretdb.pid")
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "stopped"
  fi
  rm -f "$dir/ferretdb.pid"
}

up() {
  if [ $fresh = 1 ]; then down; rm -rf "$dir/data"; fi
  if alive; then echo "$uri"; return; fi
  if listening; then log "port $port is taken by another process"; exit 1; fi
  local bin; bin=$("$here/toolchain/ferretdb.sh")
  mkdir -p "$dir/data"
  # No debug HTTP listener: nothing reads it, and its fixed default port would collide with any
  # other FerretDB on the machine.
  "$bin" --handler=sqlite --sqlite-url="file:$dir/data/" --state-dir="$dir" --listen-addr="127.0.0.1:$port" \
    --debug-addr=- --telemetry=disable --log-level=warn --log-format=json >"$dir/ferretdb.log" 2>&1 &
  echo $! > "$dir/ferretdb.pid"
  for _ in $(seq 100); do
    if listening; then log "listening on 127.0.0.1:$port"; echo "$uri"; return; fi
    alive || break
    sleep 0.1
  done
  log "did not start; its log:"; tail -n 20 "$dir/ferretdb.log" >&2; exit 1
}

case "$cmd" in
  up) up ;;
  down) down ;;
  uri) echo "$uri" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
