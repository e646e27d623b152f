#!/usr/bin/env bash
# Benchmarks of the credential hot path and the daemon's footprint (run by hand, not in CI):
#   1. `rolecall credential-process` on a warm cache, as a whole process, against a minimal Rust
#      binary that prints a constant JSON line (hyperfine -N, alternating rounds): median, ratio.
#      Goals: median <= 2 ms, ratio <= 2.
#   2. `aws-sso-util credential-process` on a warm token and the same sandbox, for comparison.
#   3. rolecalld's resident memory after serving 100 profiles (VmRSS). Goal: <= 25 MiB.
# Release builds; everything on loopback against the sandbox, in a throw-away installation.
#
#   tests/benches/credential_process.sh            # RUNS=300 ROUNDS=3 by default
#   RUNS=1000 tests/benches/credential_process.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
REL="$TARGET/release"
RUNS="${RUNS:-300}"
ROUNDS="${ROUNDS:-3}"
PY="$REPO/tests/.venv/bin/python"
START_URL="https://d-9067c2e5f7.awsapps.com/start"
REGION="eu-west-1"

for tool in hyperfine rustc; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (tests/setup-system.sh)" >&2; exit 2; }
done

echo "== building release binaries" >&2
(cd "$REPO" && cargo build --release -q -p rolecall -p rolecall-daemon -p rolecall-sandbox)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rc-bench.XXXXXX")"
SBX_PID=""
cleanup() {
  "$REL/rolecall" daemon stop >/dev/null 2>&1 || true
  if [ -n "$SBX_PID" ]; then kill "$SBX_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

rustc -C opt-level=3 -C strip=symbols -o "$WORK/minimal" "$REPO/tests/benches/minimal/main.rs"

# An isolated installation: nothing of the user's own rolecall or AWS setup is touched.
export HOME="$WORK/home"
export ROLECALL_CONFIG="$HOME/.config/rolecall/config.toml"
export ROLECALL_STATE_DIR="$HOME/.local/state/rolecall"
export ROLECALL_RUNTIME_DIR="$WORK/run"
export XDG_RUNTIME_DIR="$WORK/xdg"
export XDG_CONFIG_HOME="$HOME/.config"
export AWS_CONFIG_FILE="$HOME/.aws/config"
export AWS_SHARED_CREDENTIALS_FILE="$HOME/.aws/credentials"
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN DISPLAY WAYLAND_DISPLAY
mkdir -p "$HOME/.config/rolecall" "$HOME/.aws" "$ROLECALL_STATE_DIR"
mkdir -p "$ROLECALL_RUNTIME_DIR" "$XDG_RUNTIME_DIR"
chmod 700 "$ROLECALL_RUNTIME_DIR" "$XDG_RUNTIME_DIR"

# The default directory plus 34 generated accounts x 3 permission sets (102 roles for alice).
{ cat "$REPO/tests/sandbox/seeds/default.toml"; printf '\n[generate]\naccounts = 34\npermission_sets = 3\n'; } >"$WORK/seed.toml"
"$REL/rolecall-sandbox" --listen 127.0.0.1:0 --auto-approve --seed "$WORK/seed.toml" >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SBX_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/sandbox.out" ] && break
  sleep 0.1
done
URL="$(head -n1 "$WORK/sandbox.out")"
case "$URL" in http://127.0.0.1:*) ;; *) echo "bench: the sandbox did not start" >&2; cat "$WORK/sandbox.err" >&2; exit 1 ;; esac

# shellcheck disable=SC2016 # "$1" belongs to the generated script
printf '#!/bin/sh\nexec %q browse "$1"\n' "$REL/rolecall-sandbox" >"$WORK/browser.sh"
chmod +x "$WORK/browser.sh"
export BROWSER="$WORK/browser.sh"

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
{
  printf '[daemon]\nsecret_store = "file"\nnotifications = false\ncontainer_listen = "127.0.0.1:%s"\n\n' "$PORT"
  printf '[sources.corp]\nkind = "identity-center"\nstart_url = "%s"\nregion = "%s"\nendpoint_url = "%s"\n\n' "$START_URL" "$REGION" "$URL"
  printf '[profiles.dev-admin]\nsource = "corp"\naccount = "111111111111"\nrole = "DeveloperAdmin"\n\n'
  n=0
  for a in $(seq 0 33); do
    for s in 01 02 03; do
      n=$((n + 1))
      [ "$n" -le 100 ] || break
      printf '[profiles.bench-%03d]\nsource = "corp"\naccount = "%012d"\nrole = "GeneratedSet%s"\n\n' "$n" $((500000000000 + a)) "$s"
    done
  done
} >"$ROLECALL_CONFIG"

"$REL/rolecall" daemon start >/dev/null
"$REL/rolecall" login corp >/dev/null 2>&1
"$REL/rolecall" credential-process dev-admin >/dev/null

echo "== 1. credential-process, warm cache ($ROUNDS alternating rounds x $RUNS runs)" >&2
RC_CMD="$REL/rolecall credential-process dev-admin"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then first="$WORK/minimal"; second="$RC_CMD"; else first="$RC_CMD"; second="$WORK/minimal"; fi
  hyperfine -N --style basic --warmup 50 --runs "$RUNS" --export-json "$WORK/hf-$round.json" "$first" "$second" >&2
done

echo "== 2. aws-sso-util credential-process, warm token, same sandbox" >&2
SSO_MEDIAN=""
if [ -x "$REPO/tests/.venv/bin/aws-sso-util" ]; then
  printf '[profile sso-dev]\nsso_start_url = %s\nsso_region = %s\nsso_account_id = 111111111111\nsso_role_name = DeveloperAdmin\nregion = %s\n' \
    "$START_URL" "$REGION" "$REGION" >"$AWS_CONFIG_FILE"
  "$PY" "$REPO/tests/benches/sso_token.py" "$URL" "$START_URL" "$REGION"
  export AWS_ENDPOINT_URL_SSO="$URL"
  SSO_CMD="$REPO/tests/.venv/bin/aws-sso-util credential-process --profile sso-dev"
  if $SSO_CMD >/dev/null 2>"$WORK/sso.err"; then
    hyperfine -N --style basic --warmup 2 --runs 20 --export-json "$WORK/hf-sso.json" "$SSO_CMD" "$RC_CMD" >&2
    SSO_MEDIAN=1
  else
    echo "aws-sso-util failed: $(tail -n1 "$WORK/sso.err")" >&2
  fi
else
  echo "tests/.venv has no aws-sso-util: skipped" >&2
fi

echo "== 3. rolecalld memory after serving 100 profiles" >&2
for n in $(seq -f '%03g' 1 100); do
  "$REL/rolecall" credential-process "bench-$n" >/dev/null
done
PID="$(cat "$ROLECALL_RUNTIME_DIR/rolecalld.pid" 2>/dev/null || true)"
RSS_KB="$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")"
HWM_KB="$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")"

"$PY" - "$WORK" "$RC_CMD" "$RSS_KB" "$HWM_KB" "$SSO_MEDIAN" <<'PYEOF'
import glob, json, statistics, sys
work, rc_cmd, rss_kb, hwm_kb, sso = sys.argv[1:6]
times = {}
for f in sorted(glob.glob(f"{work}/hf-[0-9]*.json")):
    for r in json.load(open(f))["results"]:
        key = "rolecall" if r["command"] == rc_cmd else "minimal"
        times.setdefault(key, []).extend(r["times"])
rc = statistics.median(times["rolecall"]) * 1000
mn = statistics.median(times["minimal"]) * 1000
missed = []
def goal(ok, what):
    if not ok:
        missed.append(what)
    return "ok" if ok else "MISSED"
print(f"credential-process (warm): median {rc:.2f} ms over {len(times['rolecall'])} runs; "
      f"minimal binary {mn:.2f} ms; ratio {rc / mn:.2f}  [goal <= 2 ms, ratio <= 2] "
      f"{goal(rc <= 2 and rc / mn <= 2, 'credential-process median <= 2 ms and <= 2x minimal')}")
if sso:
    res = json.load(open(f"{work}/hf-sso.json"))["results"]
    s = statistics.median(res[0]["times"]) * 1000
    r2 = statistics.median(res[1]["times"]) * 1000
    print(f"aws-sso-util credential-process (warm): median {s:.1f} ms; rolecall {r2:.2f} ms; "
          f"rolecall is {s / r2:.0f}x faster")
print(f"rolecalld after serving 100 profiles: VmRSS {int(rss_kb) / 1024:.1f} MiB "
      f"(peak VmHWM {int(hwm_kb) / 1024:.1f} MiB)  [goal <= 25 MiB] "
      f"{goal(int(rss_kb) <= 25 * 1024, 'rolecalld VmRSS <= 25 MiB')}")
if missed:
    print("bench: goal missed: " + "; ".join(missed), file=sys.stderr)
    sys.exit(1)
PYEOF
