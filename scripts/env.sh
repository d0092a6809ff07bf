# Sourced by the other scripts: installs what the build needs (once) and
# points cargo at a target directory outside the clone, so a fresh clone
# (CI after each session) rebuilds only what changed. RocksDB's C++ takes
# ~15-25 minutes to build from clean on 2 cores; reusing the directory is
# what keeps CI short.
set -euo pipefail

need_pkgs=()
for p in clang libclang-dev fuse3 pkg-config; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
# Tools a script needs as commands ("command:package"), e.g. the FUSE tests'
# sqlite3 and git; scripts list them in CAIRN_NEED_TOOLS before sourcing.
for t in ${CAIRN_NEED_TOOLS:-}; do
    command -v "${t%%:*}" >/dev/null 2>&1 || need_pkgs+=("${t#*:}")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "cairn: installing system packages: ${need_pkgs[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
mkdir -p "$CARGO_TARGET_DIR"
export CAIRN_BIN="$CARGO_TARGET_DIR/release/cairn"
