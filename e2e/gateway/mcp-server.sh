#!/bin/bash
# Installs the reference MCP server @modelcontextprotocol/server-everything at the version pinned
# here from npm into $PADDOCK_CACHE/mcp-server-everything-<version>, once, and prints the path of
# its entry point (run with node: `node PATH streamableHttp`). The MCP tests put it behind the
# gateway as the real server.
set -euo pipefail
version=2026.8.31
dir=${PADDOCK_CACHE:-$HOME/.cache/paddock}/mcp-server-everything-$version
entry=$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js
if [ ! -f "$entry" ]; then
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9
  [ -f "$entry" ] || npm install --no-fund --no-audit --loglevel=error --prefix "$dir" \
    "@modelcontextprotocol/server-everything@$version" >&2
fi
echo "$entry"
