#!/usr/bin/env bash
# Runs `.ci/run` on a machine that has never run it: a fresh Debian 12 (bookworm) root built with
# debootstrap (minbase: what a Debian image has before anyone installs anything), plus only the
# toolchains a CI image ships preinstalled, taken from this machine:
#   - rustup + the installed Rust toolchain (/root/.rustup, read-only) and cargo-nextest, with an
#     EMPTY cargo home (no crates downloaded, no cargo-deb installed),
#   - pyenv's Python 3.11 (/root/.pyenv, read-only),
#   - Node.js + npm (the node binary and its npm directory, read-only).
# A clean `git clone` of this checkout's HEAD goes to /tmp/rolecall inside (CI clones under /tmp),
# and `CI=true bash .ci/run </dev/null` runs there as root, in its own mount and PID namespace.
#
# What it proves: tests/setup-system.sh names every system package that the setup, the build and
# the tests need (a missing -dev package, pkg-config file, libclang, a tool a test calls…).
# What it cannot prove (see docs/testing.md): the kernel, the network stack, iptables and cgroups
# are this machine's; the CPU and the disk are shared with whatever else runs here.
#
#   tests/fresh-machine.sh               # the whole .ci/run (about as long as CI: ~25 min)
#   tests/fresh-machine.sh --setup-only  # system packages, venv, node_modules, cargo-deb, build
#   tests/fresh-machine.sh --keep        # keep the root afterwards (printed path)
#   tests/fresh-machine.sh --new-base    # debootstrap again instead of reusing the cached base
#   tests/fresh-machine.sh --root DIR    # run again in a kept root (its clone reset to HEAD):
#                                        # e.g. the whole .ci/run after a --setup-only --keep
#
# Root only (debootstrap, chroot, mounts). Work dir: $ROLECALL_FRESH_DIR (/var/tmp/rolecall-fresh).
# The base system is cached there as a tarball; each run unpacks a new copy of it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="${ROLECALL_FRESH_DIR:-/var/tmp/rolecall-fresh}"
MIRROR="${ROLECALL_FRESH_MIRROR:-http://deb.debian.org/debian}"
SETUP_ONLY=0
KEEP=0
NEW_BASE=0
REUSE=""

log() { printf 'fresh-machine: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

while [ "$#" -gt 0 ]; do
  a="$1"
  shift
  case "$a" in
    --setup-only) SETUP_ONLY=1 ;;
    --keep) KEEP=1 ;;
    --new-base) NEW_BASE=1 ;;
    --root)
      [ "$#" -gt 0 ] || die "--root needs a directory"
      REUSE="$(cd "$1" && pwd)" || die "no root at $1"
      [ -x "$REUSE/root/fresh-run.sh" ] || die "$1 is not a root made by this script"
      KEEP=1
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$a' (try --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and bind mounts) — run it with sudo"
command -v unshare >/dev/null || die "unshare not found (util-linux)"
command -v git >/dev/null || die "git not found: the run starts from a clean clone of HEAD"

# --- the toolchains a CI image ships ----------------------------------------------------------
RUSTUP_HOME_HOST="${RUSTUP_HOME:-$HOME/.rustup}"
RUSTUP_BIN="$(command -v rustup || true)"
NEXTEST_BIN="$(command -v cargo-nextest || true)"
PYENV_ROOT_HOST="${PYENV_ROOT:-$HOME/.pyenv}"
NODE_BIN="$(command -v node || true)"
if [ ! -d "$RUSTUP_HOME_HOST/toolchains" ] || [ -z "$RUSTUP_BIN" ]; then
  die "rustup and an installed toolchain are needed (looked in $RUSTUP_HOME_HOST)"
fi
[ -n "$NEXTEST_BIN" ] || die "cargo-nextest not found on PATH"
[ -x "$PYENV_ROOT_HOST/bin/pyenv" ] || die "pyenv not found at $PYENV_ROOT_HOST"
[ -n "$NODE_BIN" ] || die "node not found on PATH"
NODE_BIN="$(readlink -f "$NODE_BIN")"
NODE_MODULES="$(dirname "$(dirname "$NODE_BIN")")/lib/node_modules"
[ -d "$NODE_MODULES/npm" ] || die "npm not found beside node (looked in $NODE_MODULES/npm)"
RUSTUP_BIN="$(readlink -f "$RUSTUP_BIN")"

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi

mkdir -p "$SCRATCH"
BASE="$SCRATCH/bookworm-minbase.tar"

# A new root: the cached base unpacked, the network settings, the toolchains' places, a clone.
make_root() {
# --- the base system (cached) -----------------------------------------------------------------
if [ "$NEW_BASE" = 1 ] || [ ! -f "$BASE" ]; then
  log "debootstrap --variant=minbase bookworm (about a minute)"
  rm -rf "$SCRATCH/base.tmp"
  debootstrap --variant=minbase bookworm "$SCRATCH/base.tmp" "$MIRROR" >"$SCRATCH/debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $SCRATCH/debootstrap.log"
  tar -C "$SCRATCH/base.tmp" -cf "$BASE.tmp" .
  mv "$BASE.tmp" "$BASE"
  rm -rf "$SCRATCH/base.tmp"
fi

# Old roots of earlier runs (kept with --keep or after a failure) are several GB each.
for old in "$SCRATCH"/root-*; do
  [ -d "$old" ] || continue
  if [ -z "$(find "$old" -maxdepth 0 -mmin -1440 2>/dev/null)" ]; then
    log "removing a root older than a day: $old"
    rm -rf --one-file-system "$old"
  fi
done

mkdir -p "$ROOT"
log "unpacking a fresh root in $ROOT"
tar -C "$ROOT" -xf "$BASE"

# What a Debian 12 image's apt sees: the release, its updates and the security archive.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/hosts "$ROOT/etc/hosts"
# This machine's network, not the project's needs: when egress goes through a TLS-inspecting
# proxy, its CA (local CAs, picked up when setup-system installs ca-certificates) and the files
# and variables that point pip and npm at the system bundle come along, as on any CI runner of
# that network.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
fi
for f in /etc/pip.conf /etc/npmrc /usr/etc/npmrc; do
  if [ -f "$f" ]; then
    mkdir -p "$ROOT$(dirname "$f")"
    cp "$f" "$ROOT$f"
  fi
done

# An empty cargo home with the rustup proxies, like a fresh `rustup-init` leaves it.
mkdir -p "$ROOT/root/.cargo/bin" "$ROOT/root/.rustup" "$ROOT/root/.pyenv" "$ROOT/usr/local/bin"
cp "$RUSTUP_BIN" "$ROOT/root/.cargo/bin/rustup"
for p in cargo rustc rustdoc cargo-clippy clippy-driver cargo-fmt rustfmt rust-gdb rust-lldb; do
  ln -s rustup "$ROOT/root/.cargo/bin/$p"
done
cp "$NEXTEST_BIN" "$ROOT/usr/local/bin/cargo-nextest"
# Node: the binary and npm, where the nodejs package puts them.
mkdir -p "$ROOT/usr/lib/node_modules"
touch "$ROOT/usr/bin/node"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/bin/npx"

# The checkout: a clean clone of HEAD (nothing untracked, no target/, no venv), and the
# project's shared notes beside it as on a developer's machine.
mkdir -p "$ROOT/tmp"
git clone -q --no-local --no-hardlinks "$REPO" "$ROOT/tmp/rolecall"
log "cloned $(git -C "$REPO" rev-parse --short HEAD) into /tmp/rolecall"
if [ -d "$REPO/../shared" ]; then
  cp -a "$REPO/../shared" "$ROOT/tmp/shared"
fi
}

CA_ENV=()
for v in SSL_CERT_FILE SSL_CERT_DIR PIP_CERT REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS CURL_CA_BUNDLE; do
  if [ -n "${!v:-}" ]; then CA_ENV+=("$v=${!v}"); fi
done

if [ -n "$REUSE" ]; then
  ROOT="$REUSE"
  RUN_LOG="$ROOT.$(date -u +%Y%m%dT%H%M%S).log"
  git -C "$ROOT/tmp/rolecall" fetch -q "$REPO" HEAD
  git -C "$ROOT/tmp/rolecall" reset -q --hard FETCH_HEAD
  log "reusing $ROOT, its clone reset to $(git -C "$REPO" rev-parse --short HEAD)"
else
  ROOT="$SCRATCH/root-$(date -u +%Y%m%dT%H%M%S)"
  RUN_LOG="$ROOT.log"
  make_root
fi

# What runs inside. --setup-only stops after the setup steps of .ci/run and the build.
cat >"$ROOT/root/fresh-run.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
cd /tmp/rolecall
if [ "${FRESH_SETUP_ONLY:-0}" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive CARGO_TERM_COLOR=never
  T=$SECONDS
  timed() { local s=$SECONDS rc=0; "$@" || rc=$?; printf '===== %s: %ss (exit %s)\n' "$*" "$((SECONDS - s))" "$rc"; return "$rc"; }
  timed apt-get update -q
  timed tests/setup-system.sh --packages
  timed tests/setup-system.sh --tools
  timed cargo build --workspace --bins
  printf 'setup-only total %ss\n' "$((SECONDS - T))"
else
  exec bash .ci/run </dev/null
fi
EOF
chmod 755 "$ROOT/root/fresh-run.sh"

# Inside a private mount + PID namespace: every mount below disappears with the run.
# shellcheck disable=SC2016 # expanded by the inner shell
INNER='
set -eu
R="$1"
# The root a mount point, as / is on a machine: `unshare --propagation` and `ip netns exec`
# (which the tests run) change the propagation of / and fail on a plain directory.
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --make-rslave "$R/sys"
mount --rbind /dev "$R/dev"
mount --make-rslave "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mkdir -p "$R/run/lock" "$R/run/netns"
mount --bind -o ro "$RUSTUP_HOME_HOST" "$R/root/.rustup"
mount --bind -o ro "$PYENV_ROOT_HOST" "$R/root/.pyenv"
mount --bind -o ro "$NODE_BIN" "$R/usr/bin/node"
mount --bind -o ro "$NODE_MODULES" "$R/usr/lib/node_modules"
# shellcheck disable=SC2086 # CA_ENV: NAME=/path words
exec chroot "$R" /usr/bin/env -i $CA_ENV \
  HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 CI=true \
  PYENV_ROOT=/root/.pyenv FRESH_SETUP_ONLY="$FRESH_SETUP_ONLY" \
  PATH=/root/.cargo/bin:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash /root/fresh-run.sh
'

log "running $([ "$SETUP_ONLY" = 1 ] && echo 'the setup and the build' || echo '.ci/run') (log: $RUN_LOG)"
START=$SECONDS
set +e
RUSTUP_HOME_HOST="$RUSTUP_HOME_HOST" PYENV_ROOT_HOST="$PYENV_ROOT_HOST" NODE_BIN="$NODE_BIN" \
  NODE_MODULES="$NODE_MODULES" FRESH_SETUP_ONLY="$SETUP_ONLY" CA_ENV="${CA_ENV[*]}" \
  unshare --mount --propagation private --pid --fork --kill-child \
  sh -c "$INNER" inner "$ROOT" </dev/null 2>&1 | tee "$RUN_LOG"
rc="${PIPESTATUS[0]}"
set -e
log "exit $rc after $((SECONDS - START))s (log: $RUN_LOG)"

if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
  log "root kept for inspection: $ROOT (chroot into it, or rm -rf --one-file-system it)"
else
  rm -rf --one-file-system "$ROOT"
fi
exit "$rc"
