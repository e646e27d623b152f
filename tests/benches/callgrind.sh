#!/usr/bin/env bash
# Instructions per request of the container endpoint, its Pod Identity route and IMDS, counted
# with valgrind's callgrind (run by hand, not in CI). Instruction counts do not depend on what
# else the machine is doing, unlike req/s on shared cores: this is the figure to compare before
# and after a change.
#
# rolecalld (release build) runs under callgrind against the sandbox; after a warm-up, the
# counters are zeroed, N requests are sent on one keep-alive connection (curl), and the counters
# are dumped: every thread's instructions (the audit writer's too) divided by N.
#
#   tests/benches/callgrind.sh               # N=2000, binaries from target/release
#   BIN=/some/dir N=500 tests/benches/callgrind.sh
#   TOP=25 tests/benches/callgrind.sh        # also the 25 costliest functions of each
#   INCLUSIVE=yes TOP=60 …                   # … counting what they call (symbols: docs/performance.md)
#   KEEP=/tmp/cg tests/benches/callgrind.sh  # keep the dumps (callgrind_annotate --tree=…)
#   TOOL=strace tests/benches/callgrind.sh   # system calls per request instead (callgrind
#                                            # counts user-space instructions only)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
N="${N:-2000}"
if [ -z "${BIN:-}" ]; then
  BIN="$TARGET/release"
  echo "== building release binaries" >&2
  (cd "$REPO" && cargo build --release -q -p rolecall -p rolecall-daemon -p rolecall-sandbox)
fi
for tool in valgrind callgrind_control strace curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rc-callgrind.XXXXXX")"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/rolecall-sandbox" --listen 127.0.0.1:0 --auto-approve >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
PIDS+=("$!")
for _ in $(seq 100); do [ -s "$WORK/sandbox.out" ] && break; sleep 0.1; done
SBX="$(head -1 "$WORK/sandbox.out")"
IMDS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

mkdir -m 700 "$WORK/state" "$WORK/run" "$WORK/home"
cat >"$WORK/config.toml" <<TOML
[daemon]
secret_store = "file"
notifications = false
container_listen = "127.0.0.1:0"

[daemon.imds]
listen = "127.0.0.1:$IMDS_PORT"
profile = "dev-admin"

[sources.corp]
kind = "identity-center"
start_url = "https://d-9067c2e5f7.awsapps.com/start"
region = "eu-west-1"
endpoint_url = "$SBX"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"
region = "eu-west-1"
TOML
export HOME="$WORK/home" ROLECALL_CONFIG="$WORK/config.toml" ROLECALL_STATE_DIR="$WORK/state" \
  ROLECALL_RUNTIME_DIR="$WORK/run" BROWSER="$BIN/rolecall-sandbox browse" ROLECALL_NO_AUTOSTART=1

TOOL="${TOOL:-callgrind}"
case "$TOOL" in
  callgrind) valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
    "$BIN/rolecalld" --foreground >"$WORK/rolecalld.out" 2>&1 & ;;
  strace) "$BIN/rolecalld" --foreground >"$WORK/rolecalld.out" 2>&1 & ;;
  *) echo "bench: TOOL is callgrind or strace" >&2; exit 2 ;;
esac
DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 600); do [ -S "$WORK/run/rolecalld.sock" ] && break; sleep 0.1; done
"$BIN/rolecall" login corp >/dev/null 2>&1
eval "$("$BIN/rolecall" container dev-admin | sed 's/^/export /')"
URL="$AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN="$AWS_CONTAINER_AUTHORIZATION_TOKEN"
POD_URL="${URL%%/v1/*}/v1/credentials"
IMDS="http://127.0.0.1:$IMDS_PORT"
SESSION="$(curl -sf -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 21600' "$IMDS/latest/api/token")"
IMDS_URL="$IMDS/latest/meta-data/iam/security-credentials/DeveloperAdmin"

# N requests on one keep-alive connection; every reply must be a 200.
requests() {
  local url="$1" header="$2" n="$3"
  : >"$WORK/curl.cfg"
  for _ in $(seq "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >>"$WORK/curl.cfg"; done
  local codes
  codes="$(curl -s -H "$header" -K "$WORK/curl.cfg" -w '%{http_code}\n' | sort | uniq -c)"
  if [ "$(echo "$codes" | awk '{print $2}')" != 200 ]; then
    echo "bench: not every request got a 200 ($codes)" >&2
    exit 1
  fi
}

# System calls (all threads) while N requests are answered.
measure_strace() {
  local name="$1" url="$2" header="$3"
  requests "$url" "$header" 200
  strace -f -c -p "$DAEMON" -o "$WORK/strace.txt" 2>/dev/null &
  local st=$!
  sleep 1
  requests "$url" "$header" "$N"
  sleep 0.5
  kill -INT "$st"
  wait "$st" || true
  awk -v n="$N" -v name="$name" '$NF == "total" {printf "%-28s %12.1f system calls/request\n", name, $(NF-2) / n}' "$WORK/strace.txt"
  if [ -n "${TOP:-}" ]; then sed -n '3,12p' "$WORK/strace.txt" | sed 's/^/    /'; fi
}

# Total instructions (all threads) in the dumps written since the last zeroing.
measure() {
  local name="$1" url="$2" header="$3"
  if [ "$TOOL" = strace ]; then
    measure_strace "$@"
    return
  fi
  requests "$url" "$header" 200 # warm-up: caches filled, connection paths taken
  callgrind_control -z "$DAEMON" >/dev/null 2>&1
  requests "$url" "$header" "$N"
  rm -f "$WORK"/cg.*.*
  callgrind_control -d "$DAEMON" >/dev/null 2>&1
  sleep 1
  local total
  total="$(cat "$WORK"/cg.*.* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}')"
  if [ "$total" = 0 ]; then
    echo "bench: callgrind wrote no counts for $name" >&2
    exit 1
  fi
  awk -v t="$total" -v n="$N" -v name="$name" 'BEGIN { printf "%-28s %12.0f instructions/request\n", name, t / n }'
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP/${name//[^a-zA-Z0-9]/_}" && cp "$WORK"/cg.*.* "$KEEP/${name//[^a-zA-Z0-9]/_}/"
  fi
  if [ -n "${TOP:-}" ]; then
    callgrind_annotate --inclusive="${INCLUSIVE:-no}" --threshold=100 "$WORK"/cg.*.* 2>/dev/null \
      | awk '/^-+$/ {sep++} sep >= 3 && NF' | grep -v '^-' | head -n "$((TOP + 1))" | sed 's/^/    /'
  fi
}

echo "== $TOOL: $N requests each, one keep-alive connection ($(date -u +%FT%TZ), $(nproc) cores)" >&2
measure "container /v1/container" "$URL" "Authorization: $TOKEN"
measure "container /v1/credentials" "$POD_URL" "Authorization: $TOKEN"
measure "imds credentials" "$IMDS_URL" "x-aws-ec2-metadata-token: $SESSION"
