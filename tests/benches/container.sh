#!/usr/bin/env bash
# Benchmark of the container credentials endpoint and IMDS (run by hand, not in CI):
#   1. wrk against rolecalld's container endpoint (the token header), its IMDS credentials
#      route (session token header), and a minimal hyper reference server that checks the same
#      header and answers a fixed JSON body of the same size, in ROUNDS interleaved rounds (the
#      order rotates each round): req/s, p50, p99 per round, and the median over the rounds.
#      Goals, each: rolecalld's median req/s >= 0.85 x the reference's, median p99 <= 2 ms.
#      The load generator and the servers are pinned to different CPUs (PIN=1, the default on
#      a machine with 2 or more): on shared cores wrk's threads and the server's preempt each
#      other and p99 measures the scheduler (the reference's own p99 is then 3-5 ms on a
#      2-core machine; PIN=0 measures that way, docs/performance.md has both).
#   2. A LONG-second wrk run against rolecalld: its CPU time and RSS sampled every 5 s.
#      Goal: memory flat.
# Everything on loopback against the sandbox, in a throw-away installation.
#
#   tests/benches/container.sh                  # ROUNDS=5 DURATION=5s LONG=60 by default
#   ROUNDS=3 DURATION=10s LONG=30 tests/benches/container.sh
#   PIN=0 tests/benches/container.sh            # the goal rounds unpinned (wrk -t2 -c64)
#   BIN=/old/build tests/benches/container.sh   # another build of the three binaries
#   PERF=/tmp/rc.perf tests/benches/container.sh # also perf profiles of rolecalld and of the
#                                                # reference (/tmp/rc.perf.reference), each
#                                                # during a 10 s run (rolecalld needs a build with
#                                                # symbols: CARGO_PROFILE_RELEASE_STRIP=none, see
#                                                # docs/performance.md), printed after the table
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
REL="$TARGET/release"
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-5}"
LONG="${LONG:-60}"
CPUS="$(nproc)"
PIN="${PIN:-$([ "$CPUS" -ge 2 ] && echo 1 || echo 0)}"
# Pinned: the servers on the last CPU, wrk (one thread) on the others.
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "bench: taskset is required to pin (util-linux), or PIN=0" >&2; exit 2; }
  SERVER_CPU=$((CPUS - 1))
  ON_SERVER_CPU=(taskset -c "$SERVER_CPU")
  WRK=(taskset -c "0-$((SERVER_CPU - 1))" wrk -t1 -c64)
else
  ON_SERVER_CPU=()
  WRK=(wrk -t2 -c64)
fi

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

"${ON_SERVER_CPU[@]}" "$BIN/rolecalld" --foreground >"$WORK/rolecalld.out" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 100); do [ -S "$WORK/run/rolecalld.sock" ] && break; sleep 0.1; done
"$BIN/rolecall" login corp >/dev/null 2>&1
eval "$("$BIN/rolecall" container dev-admin | sed 's/^/export /')"
URL="$AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN="$AWS_CONTAINER_AUTHORIZATION_TOKEN"
BODY="$(curl -sf -H "Authorization: $TOKEN" "$URL")"
SIZE="${#BODY}"

"${ON_SERVER_CPU[@]}" "$REL/container-reference" 127.0.0.1:0 "$TOKEN" "$SIZE" >"$WORK/ref.out" &
REFERENCE=$!
PIDS+=("$REFERENCE")
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
# `run_wrk NAME URL DURATION`: figures of one run ("req/s p50 p99 errors");
# exits when wrk reported errors (set -e: a failing command substitution in an assignment).
run_wrk() {
  local name="$1" url="$2" duration="$3"
  case "$name" in
    imds*) HEADER=x-aws-ec2-metadata-token TOKEN="$SESSION" "${WRK[@]}" -d"$duration" -s "$WORK/bench.lua" "$url" >"$WORK/$name.out" ;;
    *) "${WRK[@]}" -d"$duration" -s "$WORK/bench.lua" "$url" >"$WORK/$name.out" ;;
  esac
  wrk_figures "$name" "$WORK/$name.out"
}
declare -A TARGET_URL=([container]="$URL" [imds]="$IMDS_URL" [reference]="$REF")
ORDER=(container imds reference)
MISSED=()

echo "== ${WRK[*]}, $ROUNDS rounds of $DURATION, ${SIZE}-byte reply$([ "$PIN" = 1 ] && echo ", servers on CPU $SERVER_CPU")" >&2
# Besides wrk's figures, each round reads the server's CPU time (user + system, all its
# threads) before and after: "cpu %" is its share of its core over the round, "cpu us/req" the
# CPU it spent per request. A server below ~95 % of its core was not the bottleneck (wrk or the
# host was), and its req/s then says little; CPU per request says what each server costs
# whatever limited the round.
TICK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A SERVER_PID=([container]="$DAEMON" [imds]="$DAEMON" [reference]="$REFERENCE")
printf '%-26s %10s %9s %9s %7s %7s %11s\n' "" "req/s" "p50 ms" "p99 ms" "errors" "cpu %" "cpu us/req"
: >"$WORK/rounds"
for round in $(seq "$ROUNDS"); do
  for i in 0 1 2; do
    name="${ORDER[$(((i + round) % 3))]}"
    pid="${SERVER_PID[$name]}"
    t0="$(cpu_ticks "$pid")" w0="$(date +%s%N)"
    F="$(run_wrk "$name-$round" "${TARGET_URL[$name]}" "$DURATION")"
    t1="$(cpu_ticks "$pid")" w1="$(date +%s%N)"
    read -r rps p50 p99 err <<<"$F"
    read -r pct us <<<"$(awk -v t="$((t1 - t0))" -v hz="$TICK" -v ns="$((w1 - w0))" -v rps="$rps" \
      'BEGIN { s = t / hz; printf "%.0f %.2f\n", 100 * s / (ns / 1e9), (rps > 0 ? 1e6 * s / (rps * ns / 1e9) : 0) }')"
    echo "$name $F $pct $us" >>"$WORK/rounds"
    printf '%-26s %10s %9s %9s %7s %7s %11s\n' "round $round $name" "$rps" "$p50" "$p99" "$err" "$pct" "$us"
  done
done
# Medians over the rounds (req/s, p50, p99, CPU each on its own).
median() { awk -v n="$1" -v col="$2" '$1 == n {print $col}' "$WORK/rounds" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for name in "${ORDER[@]}"; do
  printf '%-26s %10s %9s %9s %7s %7s %11s\n' "median $name" "$(median "$name" 2)" "$(median "$name" 3)" "$(median "$name" 4)" 0 \
    "$(median "$name" 6)" "$(median "$name" 7)"
done
# Not a goal: what the reference's CPU per request is of each server's (1 = as cheap).
for name in container imds; do
  awk -v name="$name" -v d="$(median "$name" 7)" -v r="$(median reference 7)" \
    'BEGIN { if (d > 0) printf "cpu per request, reference/%s: %.2f\n", name, r / d }'
done
R_RPS="$(median reference 2)"
goals() {
  awk -v name="$1" -v d="$(median "$1" 2)" -v r="$R_RPS" -v p="$(median "$1" 4)" -v rp="$(median reference 4)" 'BEGIN {
    printf "ratio %s/reference: %.2f (goal >= 0.85) %s\n", name, d / r, (d / r >= 0.85 ? "ok" : "MISSED")
    printf "%s p99: %.2f ms (goal <= 2; reference %.2f ms) %s\n", name, p, rp, (p <= 2 ? "ok" : "MISSED") }'
}
{ goals container; goals imds; } | tee "$WORK/goals"
while read -r goal; do MISSED+=("$goal"); done < <(grep MISSED "$WORK/goals" || true)

if [ -n "${PERF:-}" ]; then
  # The same profile of the reference, to compare entry by entry ($PERF.reference).
  for target in rolecalld reference; do
    case "$target" in
      rolecalld) pid="$DAEMON" out="$PERF" url="$URL" ;;
      reference) pid="$REFERENCE" out="$PERF.reference" url="$REF" ;;
    esac
    echo "== perf profile of the $target under wrk (10 s): $out" >&2
    perf record -q -F 1999 -g -o "$out" -p "$pid" -- sleep 10 2>"$WORK/perf.err" &
    PERF_PID=$!
    "${WRK[@]}" -d10s -s "$WORK/bench.lua" "$url" >/dev/null
    wait "$PERF_PID" || { echo "bench: perf record failed: $(head -1 "$WORK/perf.err")" >&2; exit 2; }
    perf report -i "$out" -g none --no-children --sort comm,dso,symbol --percent-limit 0.7 --stdio 2>/dev/null \
      | grep -v '^$' | grep -E '^ +[0-9.]+%' | head -60
  done
fi

echo "== ${LONG}-second run against rolecalld: CPU and RSS every 5 s" >&2
rss() { awk '/VmRSS/ {print $2}' "/proc/$DAEMON/status"; }
CPU0="$(cpu_ticks "$DAEMON")"
RSS0="$(rss)"
"${WRK[@]}" -d"${LONG}s" -s "$WORK/bench.lua" "$URL" >"$WORK/long.out" &
LONG_WRK=$!
SAMPLES="$RSS0"
for _ in $(seq $((LONG / 5))); do
  sleep 5
  SAMPLES="$SAMPLES $(rss)"
done
wait "$LONG_WRK"
CPU1="$(cpu_ticks "$DAEMON")"
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
# The audit writer shares the server's core with the serving thread; it must still keep up: no
# record dropped (no `dropped` line in the files kept, no warning in the daemon's log; the log rotates,
# so the hand-outs still on record are fewer than those served).
read -r AUDITED DROPPED < <(python3 - "$WORK/state" <<'PY'
import json, pathlib, sys
handed = dropped = 0
for f in pathlib.Path(sys.argv[1]).rglob("audit*"):
    for line in f.read_text(errors="replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("event") == "credentials":
            handed += r.get("count", 1)
        elif r.get("event") == "dropped":
            dropped += r.get("count", 0)
print(handed, dropped)
PY
)
if grep -rqs "cannot keep up" "$WORK/state" "$WORK/rolecalld.out"; then DROPPED="${DROPPED}+"; fi
echo "audit under load: $AUDITED hand-outs on record, $DROPPED dropped"
if [ "$DROPPED" != 0 ] || [ "$AUDITED" = 0 ]; then MISSED+=("audit records dropped under load: $DROPPED"); fi
if [ "${#MISSED[@]}" -gt 0 ]; then
  printf 'bench: goal missed: %s\n' "${MISSED[@]}" >&2
  exit 1
fi
