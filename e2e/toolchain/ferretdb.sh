#!/usr/bin/env bash
# Builds FerretDB, a MongoDB-protocol server, for the audit store's tests: from the Go module
# proxy with the installed Go (GOTOOLCHAIN=local), pinned by ferretdb/go.mod and go.sum, into a
# cache outside the repository. The tests run it with its SQLite backend on loopback.
#
#   e2e/toolchain/ferretdb.sh          build it if missing, then print the binary's path
#   e2e/toolchain/ferretdb.sh --path   print the binary's path only (nothing is built)
#
# FerretDB embeds build/version/version.txt, which its module zip does not carry, so the module
# is copied to a scratch directory, the file written there, and the wrapper module built with a
# replace directive pointing at the copy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

module=github.com/FerretDB/FerretDB
version=$(awk '$1 == "require" && $2 == "'$module'" {print $3}' "$here/ferretdb/go.mod")
key=$(cat "$here/ferretdb/go.sum" "$here/ferretdb.sh" | sha256sum | cut -c1-12)
bin="$cache/toolchain/ferretdb-$version-$key/bin/ferretdb"

if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
echo "[toolchain] building FerretDB $version" >&2
mkdir -p "$(dirname "$bin")"
scratch=$(mktemp -d "$(dirname "$bin")/.build.XXXXXX")
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT

# The module, verified against go.sum, then a writable copy of it with its version file.
src=$(cd "$here/ferretdb" && go mod download -json "$module" | awk -F'"' '$2 == "Dir" {print $4}')
cp -r "$src" "$scratch/src" && chmod -R u+w "$scratch/src"
echo "$version" > "$scratch/src/build/version/version.txt"
echo "release" > "$scratch/src/build/version/package.txt"

cp "$here/ferretdb/go.mod" "$here/ferretdb/go.sum" "$here/ferretdb/tools.go" "$scratch/"
(cd "$scratch" && go mod edit -replace "$module=$scratch/src" &&
  go build -trimpath -tags ferretdb_no_postgresql -ldflags "-s -w" -o "$scratch/ferretdb" "$module/cmd/ferretdb")
mv -f "$scratch/ferretdb" "$bin"
echo "$bin"
