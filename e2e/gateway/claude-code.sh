#!/bin/bash
# Installs the pinned Claude Code (the version images/agent-claude-code/Dockerfile names, the one
# place it is pinned) from npm into $PADDOCK_CACHE/claude-code-<version>, once, and prints the
# path of its `claude` binary. The gateway tests run it as the agent.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^ARG CLAUDE_CODE_VERSION=//p' "$root/images/agent-claude-code/Dockerfile")
[ -n "$version" ] || { echo "no CLAUDE_CODE_VERSION in images/agent-claude-code/Dockerfile" >&2; exit 1; }
dir=${PADDOCK_CACHE:-$HOME/.cache/paddock}/claude-code-$version
bin=$dir/node_modules/.bin/claude
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  # A lock, so parallel tests install once.
  exec 9>"$dir.lock"
  flock 9
  [ -x "$bin" ] || npm install --no-fund --no-audit --loglevel=error --prefix "$dir" "@anthropic-ai/claude-code@$version" >&2
fi
"$bin" --version >/dev/null
echo "$bin"
