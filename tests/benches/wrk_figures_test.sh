#!/usr/bin/env bash
# Checks wrk_figures on captured wrk outputs: figures from a clean run, refusal on errors.
#   tests/benches/wrk_figures_test.sh
set -euo pipefail
# shellcheck source=tests/benches/wrk_figures.sh
. "$(dirname "${BASH_SOURCE[0]}")/wrk_figures.sh"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

cat >"$T/clean" <<'OUT'
Running 20s test @ http://127.0.0.1:41234/v1/container/dev-admin
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   412.00us  120.11us   5.01ms   81.20%
    Req/Sec    45.70k     2.10k   50.12k    70.00%
  1818181 requests in 20.00s, 1.20GB read
Requests/sec:  90909.05
Transfer/sec:     61.44MB
RESULT 90909 0.380 0.912 0
OUT
sed -e '/^Requests\/sec/i\  Non-2xx or 3xx responses: 1818181' -e 's/^RESULT 90909 0.380 0.912 0/RESULT 90909 0.380 0.912 1818181/' "$T/clean" >"$T/non2xx"
sed -e '/^Requests\/sec/i\  Socket errors: connect 0, read 12, write 0, timeout 3' -e 's/ 0$/ 15/' "$T/clean" >"$T/socket"
sed -e '/^RESULT/d' "$T/clean" >"$T/noresult"

[ "$(wrk_figures ours "$T/clean")" = "90909 0.380 0.912 0" ] || { echo "FAIL: clean run" >&2; exit 1; }
for bad in non2xx socket noresult; do
  if out="$(wrk_figures ours "$T/$bad" 2>"$T/err")"; then
    echo "FAIL: $bad accepted: $out" >&2; exit 1
  fi
  grep -q '^bench: ' "$T/err" || { echo "FAIL: $bad: no reason given" >&2; exit 1; }
done
# The error lines alone refuse, even if the RESULT count were zero.
sed -e 's/ 15$/ 0/' "$T/socket" >"$T/socket0"
if wrk_figures ours "$T/socket0" >/dev/null 2>&1; then echo "FAIL: socket errors line ignored" >&2; exit 1; fi
echo "wrk_figures: ok"
