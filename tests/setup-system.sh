#!/usr/bin/env bash
# Installs what building rolecall and running its tests and demo need on a Debian/Ubuntu machine:
# the system packages (the ONE list of them lives here), the Python venv with the real AWS
# clients (tests/.venv) and the AWS SDK for JavaScript (tests/js/node_modules).
#
# Idempotent and quick when everything is there: it only asks apt for missing packages, and only
# creates the venv / node_modules when they are missing or their requirement files changed.
#
# Used by .ci/run (CI, as root, fresh machine) and by tests/run (developers), so the README's
# two commands work on a fresh machine.
#
#   tests/setup-system.sh            # packages + venv + node_modules
#   tests/setup-system.sh --packages # only the system packages
#   tests/setup-system.sh --tools    # only the venv, node_modules, cargo-deb, and cargo-deny (CI's
#                                    # check; tests/run, which runs the default, does not need it)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Why each package is here:
#   libclang-dev            samael's xmlsec feature runs bindgen (panics without libclang)
#   libxmlsec1-dev pkg-config libssl-dev   xmlsec/openssl for SAML signatures (sandbox + daemon)
#   libdbus-1-dev           keyring / notify-rust (Secret Service, desktop notifications over D-Bus);
#                           also dbus-python (pulled in by python-dbusmock: sdist only, no wheel)
#   libglib2.0-dev python3-dev   dbus-python's meson build needs glib-2.0 and Python headers
#   chromium                the entra-saml capture drives a real Chromium over --remote-debugging-pipe
#   wrk hyperfine           benchmarks (tests/benches)
#   zsh fish tmux shellcheck   shell integration tests (real shells, an interactive pty, lint)
#   python3-venv            tests/.venv with boto3/awscli/moto/aws-sso-util
#   dbus gnome-keyring      a private session bus + Secret Service for keyring tests
#   iproute2 iptables nftables   container endpoint tests (network namespace, 169.254.170.2 DNAT)
#   systemd                 systemd-analyze verify / systemd-socket-activate for packaging/
#   ruby                    `ruby -c` on the Homebrew formula (packaging/homebrew)
#   openssl xmlsec1 curl    fixtures and debugging (curl --unix-socket against the daemon)
#   bsdutils procps         `script` (pty for interactive callers), `ps`/`pgrep` in tests
#   patch                   `rolecall populate --diff` output is checked by applying it with patch
# Plus, only when the machine has no `node`/`npm` of its own (CI images ship Node 20):
#   nodejs npm              tests/js (the AWS SDK for JavaScript v3). Debian 12's nodejs is 18,
#                           older than the >= 20 the locked SDK packages declare: setup warns
#                           (the JavaScript tests passed with 18.20.4 and npm 9.2 on 2026-12-04).
# Not needed, on purpose: cmake (aws-lc-sys builds with cc), meson/ninja (pip fetches them as
# dbus-python's build dependencies), git (CI clones before any of this runs).
PACKAGES=(
  build-essential pkg-config
  libclang-dev libxmlsec1-dev libssl-dev libdbus-1-dev
  libglib2.0-dev python3-dev
  chromium
  wrk hyperfine
  zsh fish tmux shellcheck
  python3-venv
  dbus gnome-keyring
  iproute2 iptables nftables
  systemd ruby
  openssl xmlsec1 curl ca-certificates
  bsdutils procps patch
)

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root to run: $*"
    return 1
  fi
}

install_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    log "not a Debian-family system: install the equivalents of: ${PACKAGES[*]} (and Node.js 20 with npm)"
    return 0
  fi
  local missing=() p wanted=("${PACKAGES[@]}")
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    wanted+=(nodejs npm)
  fi
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "system packages present"
    return 0
  fi
  log "installing: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# A stamp of the requirement file inside the tool dir tells whether it is up to date.
stamp_ok() { # <stamp file> <source file>
  [ -f "$1" ] && cmp -s "$1" "$2"
}

setup_venv() {
  local venv="$REPO/tests/.venv" req="$REPO/tests/py/requirements.txt"
  if [ -x "$venv/bin/pytest" ] && stamp_ok "$venv/.requirements.stamp" "$req"; then
    log "python venv up to date"
    return 0
  fi
  local py
  py="$(command -v python3.11 || command -v python3)"
  log "creating tests/.venv with $py"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements.stamp"
}

setup_node() {
  local dir="$REPO/tests/js"
  [ -f "$dir/package.json" ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found: the JavaScript SDK tests need Node.js 20 and npm"
    return 1
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "${major:-0}" -lt 20 ]; then
    log "warning: Node.js $(node --version 2>/dev/null) is older than the 20 the AWS SDK for JavaScript v3 packages in tests/js declare; install Node.js 20 if the JavaScript tests fail"
  fi
  if [ -d "$dir/node_modules" ] && stamp_ok "$dir/node_modules/.package-lock.stamp" "$dir/package-lock.json"; then
    log "node_modules up to date"
    return 0
  fi
  log "installing tests/js/node_modules"
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
  cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.stamp"
}

# cargo-deb builds the Debian package in tests/packaging (about 2 CPU-minutes to compile once).
setup_cargo_deb() {
  if cargo deb --version >/dev/null 2>&1; then
    log "cargo-deb present"
    return 0
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: cannot install cargo-deb"
    return 1
  fi
  log "installing cargo-deb (cargo install cargo-deb --locked)"
  cargo install cargo-deb --locked --quiet
}

# cargo-deny checks the dependency tree against deny.toml in .ci/run (about 4 minutes to compile
# once on the 2-core machine, so only --tools installs it). Pinned: its config format changes
# between releases.
setup_cargo_deny() {
  if cargo deny --version >/dev/null 2>&1; then
    log "cargo-deny present"
    return 0
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: cannot install cargo-deny"
    return 1
  fi
  log "installing cargo-deny (cargo install cargo-deny --version 0.20.2 --locked)"
  # Its release profile asks for fat LTO with one codegen unit, the slowest build there is; a
  # licence and source check does not need it.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install cargo-deny --version 0.20.2 --locked --quiet
}

# The cargo installs compile (CPU) while pip and npm mostly download (network): side by side, the
# setup of a fresh machine is shorter by the venv's minute or two. --with-deny: cargo-deny too.
setup_tools() {
  local cargo_log cargo_pid
  cargo_log="$(mktemp)"
  if [ "${1:-}" = "--with-deny" ]; then
    (setup_cargo_deb && setup_cargo_deny) >"$cargo_log" 2>&1 &
  else
    setup_cargo_deb >"$cargo_log" 2>&1 &
  fi
  cargo_pid=$!
  # shellcheck disable=SC2064 # the pid and path are fixed now
  trap "kill $cargo_pid 2>/dev/null || true; rm -f '$cargo_log'" EXIT
  setup_venv
  setup_node
  if ! wait "$cargo_pid"; then
    cat "$cargo_log" >&2
    log "installing the cargo tools failed"
    return 1
  fi
  cat "$cargo_log" >&2
}

case "${1:-all}" in
  --packages) install_packages ;;
  --tools) setup_tools --with-deny ;;
  all | --all) install_packages; setup_tools ;;
  *) log "usage: $0 [--packages|--tools]"; exit 2 ;;
esac
