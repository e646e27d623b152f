#!/usr/bin/env bash
# Builds rolecall from this checkout and installs it for one user, for people without a
# package: rolecall, rolecalld and rolecall-sandbox (for `rolecall demo`) in PREFIX/bin, the man
# pages, and bash/zsh/fish completions. Nothing outside PREFIX is touched; the systemd unit or
# launchd agent is opt-in afterwards (`rolecall service install`).
#
#   packaging/install.sh                      # cargo build --release, install into ~/.local
#   packaging/install.sh --prefix /opt/rolecall
#   packaging/install.sh --profile dev        # the debug build (quick; for tests)
#   packaging/install.sh --no-build           # install what is already built
#   packaging/install.sh --uninstall [--prefix DIR]
#
# Honours CARGO_TARGET_DIR. Every installed file is listed in PREFIX/share/rolecall/installed,
# which --uninstall reads.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${HOME:?HOME is not set}/.local"
profile=release
action=install
build=1

usage() { sed -n '2,14p' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "install.sh: --prefix needs a directory" >&2
        exit 2
      fi
      prefix="$2"
      shift 2
      ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --profile)
      [ $# -ge 2 ] || { echo "install.sh: --profile needs a value (release or dev)" >&2; exit 2; }
      profile="$2"
      shift 2
      ;;
    --uninstall) action=uninstall; shift ;;
    --no-build) build=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) out_name=release ;;
  dev | debug) profile=dev; out_name=debug ;;
  *) echo "install.sh: --profile must be release or dev" >&2; exit 2 ;;
esac
case "$prefix" in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac
manifest="$prefix/share/rolecall/installed"

if [ "$action" = uninstall ]; then
  if [ ! -f "$manifest" ]; then
    echo "install.sh: no rolecall installation in $prefix ($manifest does not exist)" >&2
    exit 1
  fi
  while IFS= read -r f; do
    # Only paths under the prefix, whatever the manifest says.
    case "$f" in
      "$prefix"/*) rm -f -- "$f" ;;
      *) echo "install.sh: skipping $f (outside $prefix)" >&2 ;;
    esac
  done <"$manifest"
  rm -f -- "$manifest"
  rmdir -- "$prefix/share/rolecall" 2>/dev/null || true
  echo "Removed rolecall from $prefix"
  echo "(A systemd unit or launchd agent is separate: rolecall service uninstall, before this.)"
  exit 0
fi

cd "$REPO"
bin_dir="${CARGO_TARGET_DIR:-$REPO/target}/$out_name"
if [ "$build" = 1 ]; then
  command -v cargo >/dev/null 2>&1 || { echo "install.sh: cargo is not installed (https://rustup.rs)" >&2; exit 1; }
  echo "==> cargo build --profile $profile (rolecall, rolecalld, rolecall-sandbox)"
  cargo build --profile "$profile" -p rolecall -p rolecall-daemon -p rolecall-sandbox
fi
for b in rolecall rolecalld rolecall-sandbox; do
  if [ ! -x "$bin_dir/$b" ]; then
    echo "install.sh: $bin_dir/$b is missing (build it, or drop --no-build)" >&2
    exit 1
  fi
done

stage="$(mktemp -d "${TMPDIR:-/tmp}/rolecall-install.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
"$bin_dir/rolecall" man --out-dir "$stage/man" >/dev/null
"$bin_dir/rolecall" completions bash >"$stage/rolecall.bash"
"$bin_dir/rolecall" completions zsh >"$stage/_rolecall"
"$bin_dir/rolecall" completions fish >"$stage/rolecall.fish"

installed=()
put() { # <mode> <source> <destination dir> [name]
  local dest="$3/${4:-$(basename "$2")}"
  mkdir -p "$3"
  # Through a temporary name and a rename: replacing a running binary must not corrupt it.
  install -m "$1" "$2" "$dest.new"
  mv -f "$dest.new" "$dest"
  installed+=("$dest")
}

echo "==> installing into $prefix"
for b in rolecall rolecalld rolecall-sandbox; do
  put 755 "$bin_dir/$b" "$prefix/bin"
done
for page in "$stage"/man/*.1; do
  put 644 "$page" "$prefix/share/man/man1"
done
put 644 "$stage/rolecall.bash" "$prefix/share/bash-completion/completions" rolecall
put 644 "$stage/_rolecall" "$prefix/share/zsh/site-functions"
put 644 "$stage/rolecall.fish" "$prefix/share/fish/vendor_completions.d"

mkdir -p "$(dirname "$manifest")"
printf '%s\n' "${installed[@]}" >"$manifest"
installed+=("$manifest")
echo "Installed ${#installed[@]} files (listed in $manifest)"

case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "Note: $prefix/bin is not on your PATH; add it, e.g.: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
echo "Next: rolecall demo (try it against a local sandbox), rolecall init <shell> (shell integration),"
echo "      rolecall service install (optional: run rolecalld under systemd or launchd)"
