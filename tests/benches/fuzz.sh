#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer), by hand or on a schedule; not in CI's critical path.
# CI replays the committed corpus instead (tests/fuzz_replay, an ordinary workspace test).
#
#   tests/benches/fuzz.sh                               # every target, 60 s each
#   FUZZ_SECONDS=600 tests/benches/fuzz.sh saml_response config_parse
#   FUZZ_JOBS=2 FUZZ_SECONDS=600 tests/benches/fuzz.sh  # two targets at a time
#   UPDATE_CORPUS=1 tests/benches/fuzz.sh               # merge new coverage into fuzz/corpus/
#
# Stable Rust only: `--sanitizer none`. cargo-fuzz's default AddressSanitizer needs
# `-Zsanitizer=address` (nightly); the coverage instrumentation (-Cpasses=sancov-module and
# -Cllvm-args) is stable, so libFuzzer runs and finds panics, aborts, timeouts and leaks of
# memory limits without ASan. The targets are safe Rust plus libxml2/xmlsec (not instrumented
# either way). With a nightly toolchain, FUZZ_SANITIZER=address turns ASan back on.
#
# Per target it prints run time, executions, exec/s, corpus entries/bytes and findings; the
# working corpus is fuzz/work/<target>/ (seeded from fuzz/corpus/<target>/), crashes land in
# fuzz/artifacts/<target>/. A crash makes the script exit non-zero: reproduce it with
# `cargo fuzz run --sanitizer none <target> <file>`, fix it, and commit the input under
# fuzz/regressions/<target>/ so the replay test keeps it fixed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUZZ="$REPO/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
SANITIZER="${FUZZ_SANITIZER:-none}"
export CARGO_INCREMENTAL=0

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi

cd "$FUZZ"
mapfile -t ALL < <(cargo fuzz list)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

echo "== building ${#TARGETS[@]} targets (sanitizer: $SANITIZER)" >&2
for t in "${TARGETS[@]}"; do cargo fuzz build --sanitizer "$SANITIZER" "$t" >&2; done

fuzz_one() {
  local t="$1"
  local work="$FUZZ/work/$t" log="$FUZZ/work/$t.log" dict=()
  mkdir -p "$work" "$FUZZ/artifacts/$t"
  cp -n "$FUZZ/corpus/$t/"* "$work/" 2>/dev/null || true
  [ -f "$FUZZ/dict/$t.dict" ] && dict=("-dict=$FUZZ/dict/$t.dict")
  local start end rc=0
  start=$(date +%s)
  cargo fuzz run --sanitizer "$SANITIZER" "$t" "$work" -- \
    -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$FUZZ/artifacts/$t/" "${dict[@]}" >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  local execs eps files bytes crashes
  execs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log" | head -n1)
  eps=$(awk '/^stat::average_exec_per_sec/ {print $2}' "$log" | head -n1)
  files=$(find "$work" -type f | wc -l)
  bytes=$(du -sb "$work" | cut -f1)
  crashes=$(find "$FUZZ/artifacts/$t" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$((end - start))" "${execs:-?}" "${eps:-?}" "$files" "$bytes" \
    "$([ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] && echo none || echo "CRASH ($crashes in fuzz/artifacts/$t, exit $rc)")" \
    >"$FUZZ/work/$t.result"
  if [ "${UPDATE_CORPUS:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    # Adds to the committed corpus only the inputs that reach new edges (-use_counters=0: hit
    # counts do not count, which keeps the corpus a tenth of the size).
    cargo fuzz run --sanitizer "$SANITIZER" "$t" "$FUZZ/corpus/$t" "$work" -- -merge=1 -use_counters=0 >>"$log" 2>&1
  fi
}

echo "== fuzzing ${#TARGETS[@]} targets, ${SECONDS_EACH}s each, $JOBS at a time" >&2
running=0
for t in "${TARGETS[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

status=0
printf '%-20s %8s %12s %8s %8s %10s  %s\n' target seconds executions exec/s corpus bytes findings
for t in "${TARGETS[@]}"; do
  IFS=$'\t' read -r name secs execs eps files bytes found <"$FUZZ/work/$t.result"
  printf '%-20s %8s %12s %8s %8s %10s  %s\n' "$name" "$secs" "$execs" "$eps" "$files" "$bytes" "$found"
  [ "$found" = none ] || status=1
done
exit "$status"
