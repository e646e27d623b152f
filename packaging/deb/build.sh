#!/usr/bin/env bash
# Builds the Debian package of rolecall with cargo-deb (cargo install cargo-deb --locked):
# rolecall, rolecalld and rolecall-sandbox in /usr/bin, the systemd user units in
# /usr/lib/systemd/user, the man pages, and bash/zsh/fish completions.
#
#   packaging/deb/build.sh                  # cargo build --release, then the .deb
#   packaging/deb/build.sh --profile dev    # from the debug build (what the tests use: quick)
#   packaging/deb/build.sh --no-build       # package what is already built
#
# Prints the path of the .deb on its last line. Honours CARGO_TARGET_DIR.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"

profile=release
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile)
      [ $# -ge 2 ] || { echo "build.sh: --profile needs a value (release or dev)" >&2; exit 2; }
      profile="$2"
      shift 2
      ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) out_name=release ;;
  dev | debug) profile=dev; out_name=debug ;;
  *) echo "build.sh: --profile must be release or dev" >&2; exit 2 ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "build.sh: cargo-deb is not installed; run: cargo install cargo-deb --locked" >&2
  exit 1
fi

target_dir="${CARGO_TARGET_DIR:-$REPO/target}"
bin_dir="$target_dir/$out_name"
if [ "$build" = 1 ]; then
  cargo build --profile "$profile" -p rolecall -p rolecall-daemon -p rolecall-sandbox
fi
for b in rolecall rolecalld rolecall-sandbox; do
  [ -x "$bin_dir/$b" ] || { echo "build.sh: $bin_dir/$b is missing (build it, or drop --no-build)" >&2; exit 1; }
done

# Assets generated from the built CLI and from packaging/, where [package.metadata.deb] in
# cli/Cargo.toml expects them (target/release/deb-assets, resolved to the profile's dir).
assets="$bin_dir/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/systemd" "$assets/man" "$assets/completions"
sed 's#@ROLECALLD@#/usr/bin/rolecalld#' packaging/systemd/rolecalld.service >"$assets/systemd/rolecalld.service"
cp packaging/systemd/rolecalld.socket "$assets/systemd/rolecalld.socket"
if grep -q '@[A-Z_]*@' "$assets/systemd/rolecalld.service"; then
  echo "build.sh: a marker is left in the rendered rolecalld.service" >&2
  exit 1
fi
"$bin_dir/rolecall" man --out-dir "$assets/man" >/dev/null
# Debian policy: man pages gzip-compressed, reproducibly (-n: no name or timestamp).
gzip -9n "$assets"/man/*.1
"$bin_dir/rolecall" completions bash >"$assets/completions/rolecall"
"$bin_dir/rolecall" completions zsh >"$assets/completions/_rolecall"
"$bin_dir/rolecall" completions fish >"$assets/completions/rolecall.fish"

deb_args=(deb -p rolecall --no-build)
# A dev package is for tests: fast compression (xz of ~110 MB of debug binaries takes minutes).
[ "$profile" = dev ] && deb_args+=(--profile dev --fast)
# cargo-deb prints the path of the package it wrote on its last line.
cargo "${deb_args[@]}" | tail -n1
