#!/bin/bash
# The agent container's entry point: Claude Code, non-interactively, on the run's task.
# Reads $PADDOCK_TASK_FILE, the API key from the mounted Secret, and exits with Claude Code's
# status (the operator reads the pod's exit). Extra arguments go to claude.
set -euo pipefail

# $HOME is an emptyDir: make the directories the environment points into.
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME" "$CLAUDE_CONFIG_DIR"

# The policy mounts secrets as files (never env in the pod spec); export the API key for claude.
# Behind paddock-gateway (PADDOCK_GATEWAY_CREDENTIAL_FILE set) there is no key: Claude Code's
# apiKeyHelper prints the run's credential and ANTHROPIC_BASE_URL points at the gateway.
key_file="${PADDOCK_SECRETS_DIR:-/var/run/paddock/secrets}/anthropic-api-key/api-key"
if [ -n "${PADDOCK_GATEWAY_CREDENTIAL_FILE:-}" ]; then
  unset ANTHROPIC_API_KEY
elif [ -z "${ANTHROPIC_API_KEY:-}" ] && [ -r "$key_file" ]; then
  ANTHROPIC_API_KEY=$(<"$key_file")
  export ANTHROPIC_API_KEY
fi

task_file=${PADDOCK_TASK_FILE:-/etc/paddock/task/task.md}
[ -r "$task_file" ] || { echo "paddock-agent: no task at $task_file" >&2; exit 2; }

model_args=()
[ -n "${ANTHROPIC_MODEL:-}" ] && model_args=(--model "$ANTHROPIC_MODEL")
exec claude --print "${model_args[@]}" "$@" < "$task_file"
