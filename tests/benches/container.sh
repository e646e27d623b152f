#!/usr/bin/env bash
# Benchmark of the container credentials endpoint and IMDS (run by hand, not in CI):
#   1. wrk -t2 -c64 -d20s with the token header against rolecalld's endpoint (release build),
#      against its IMDS credentials route (session token header), and in the same run against a
#      minimal hyper reference server that checks the same header and answers a fixed JSON body
#      of the same size: req/s, p50, p99.
#      Goals, each: rolecalld >= 0.85 x the reference's req/s, p99 <= 2 ms.
#   2. A 60-second wrk run against rolecalld: its CPU time and RSS sampled every 5 s.
#      Goal: memory flat.
# Everything on loopback against the sandbox, in a throw-away installation.
#
#   tests/benches/container.sh                  # DURATION=20s LONG=60 by default
#   DURATION=10s LONG=30 tests/benches/container.sh
#   BIN=/old/build tests/benches/container.sh   # another build of the three binaries
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
REL="$TARGET/release"
DURATION="${DURATION:-20s}"
LONG="${LONG:-60}"

for tool in wrk cargo curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (tests/setup-system.sh)" >&2; exit 2; }
done

# BIN: rolecall, rolecalld and rolecall-sandbox from elsewhere (an older build, to compare).
if [ -z "${BIN:-}" ]; then
  echo "== building release binaries" >&2
  (cd "$REPO" && cargo build --release -q -p rolecall -p rolecall-daemon -p rolecall-sandbox)
  BIN="$REL"
fi
REFDIR="$REPO/tests/benches/container_reference"
cp "$REPO/Cargo.lock" "$REFDIR/Cargo.lock"
(cd "$REFDIR" && cargo build --release -q --offline --target-dir "$TARGET" --manifest-path Cargo.toml)
rm -f "$REFDIR/Cargo.lock"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rc-cbench.XXXXXX")"
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

"$BIN/rolecalld" --foreground >"$WORK/rolecalld.out" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 100); do [ -S "$WORK/run/rolecalld.sock" ] && break; sleep 0.1; done
"$BIN/rolecall" login corp >/dev/null 2>&1
eval "$("$BIN/rolecall" container dev-admin | sed 's/^/export /')"
URL="$AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN="$AWS_CONTAINER_AUTHORIZATION_TOKEN"
BODY="$(curl -sf -H "Authorization: $TOKEN" "$URL")"
SIZE="${#BODY}"

"$REL/container-reference" 127.0.0.1:0 "$TOKEN" "$SIZE" >"$WORK/ref.out" &
PIDS+=("$!")
for _ in $(seq 100); do [ -s "$WORK/ref.out" ] && break; sleep 0.1; done
REF="http://$(head -1 "$WORK/ref.out")/v1/container/dev-admin"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "$REF")" = 200 ]

IMDS="http://127.0.0.1:$IMDS_PORT"
SESSION="$(curl -sf -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 21600' "$IMDS/latest/api/token")"
IMDS_URL="$IMDS/latest/meta-data/iam/security-credentials/DeveloperAdmin"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "x-aws-ec2-metadata-token: $SESSION" "$IMDS_URL")" = 200 ]

# The token header (HEADER names it: Authorization, or IMDS's session header), and
# machine-readable figures at the end.
cat >"$WORK/bench.lua" <<'LUA'
wrk.headers[os.getenv("HEADER") or "Authorization"] = os.getenv("TOKEN")
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA
export TOKEN

# shellcheck source=tests/benches/wrk_figures.sh
. "$REPO/tests/benches/wrk_figures.sh"
# Exits when wrk reported errors (set -e: a failing command substitution in an assignment).
run_wrk() { wrk -t2 -c64 -d"$3" -s "$WORK/bench.lua" "$2" >"$WORK/$1.out"; wrk_figures "$1" "$WORK/$1.out"; }
run_imds() { HEADER=x-aws-ec2-metadata-token TOKEN="$SESSION" run_wrk "$@"; }
MISSED=()

echo "== wrk -t2 -c64 -d$DURATION, ${SIZE}-byte reply" >&2
D="$(run_wrk rolecalld "$URL" "$DURATION")"
I="$(run_imds imds "$IMDS_URL" "$DURATION")"
R="$(run_wrk reference "$REF" "$DURATION")"
read -r D_RPS D_P50 D_P99 D_ERR <<<"$D"
read -r I_RPS I_P50 I_P99 I_ERR <<<"$I"
read -r R_RPS R_P50 R_P99 R_ERR <<<"$R"
printf '%-22s %10s %9s %9s %7s\n' "" "req/s" "p50 ms" "p99 ms" "errors"
printf '%-22s %10s %9s %9s %7s\n' "rolecalld container" "$D_RPS" "$D_P50" "$D_P99" "$D_ERR"
printf '%-22s %10s %9s %9s %7s\n' "rolecalld imds" "$I_RPS" "$I_P50" "$I_P99" "$I_ERR"
printf '%-22s %10s %9s %9s %7s\n' "hyper reference" "$R_RPS" "$R_P50" "$R_P99" "$R_ERR"
goals() {
  awk -v name="$1" -v d="$2" -v r="$R_RPS" -v p="$3" 'BEGIN {
    printf "ratio %s/reference: %.2f (goal >= 0.85) %s\n", name, d / r, (d / r >= 0.85 ? "ok" : "MISSED")
    printf "%s p99: %.2f ms (goal <= 2) %s\n", name, p, (p <= 2 ? "ok" : "MISSED") }'
}
{ goals container "$D_RPS" "$D_P99"; goals imds "$I_RPS" "$I_P99"; } | tee "$WORK/goals"
while read -r goal; do MISSED+=("$goal"); done < <(grep MISSED "$WORK/goals" || true)

echo "== ${LONG}-second run against rolecalld: CPU and RSS every 5 s" >&2
TICK="$(getconf CLK_TCK)"
cpu() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$DAEMON/status"; }
CPU0="$(cpu)"
RSS0="$(rss)"
wrk -t2 -c64 -d"${LONG}s" -s "$WORK/bench.lua" "$URL" >"$WORK/long.out" &
WRK=$!
SAMPLES="$RSS0"
for _ in $(seq $((LONG / 5))); do
  sleep 5
  SAMPLES="$SAMPLES $(rss)"
done
wait "$WRK"
CPU1="$(cpu)"
L="$(wrk_figures "rolecalld (long run)" "$WORK/long.out")"
read -r L_RPS L_P50 L_P99 L_ERR <<<"$L"
echo "rolecalld over ${LONG}s: $L_RPS req/s, p50 $L_P50 ms, p99 $L_P99 ms, $L_ERR errors"
awk -v c0="$CPU0" -v c1="$CPU1" -v t="$TICK" -v s="$LONG" 'BEGIN {
  printf "rolecalld CPU: %.1f s over %d s (%.0f%% of one core)\n", (c1 - c0) / t, s, 100 * (c1 - c0) / t / s }'
echo "rolecalld RSS KiB (every 5 s): $SAMPLES"
echo "$SAMPLES" | awk '{ min = $2; max = $2; for (i = 2; i <= NF; i++) { if ($i < min) min = $i; if ($i > max) max = $i }
  printf "RSS under load: %d..%d KiB (spread %d KiB) %s\n", min, max, max - min, (max - min <= 2048 ? "flat" : "GROWING? MISSED") }' \
  | tee "$WORK/rss"
if grep -q MISSED "$WORK/rss"; then MISSED+=("RSS not flat under load"); fi
if [ "${#MISSED[@]}" -gt 0 ]; then
  printf 'bench: goal missed: %s\n' "${MISSED[@]}" >&2
  exit 1
fi
