# shellcheck shell=bash
# Sourced by the wrk benchmarks. `wrk_figures NAME FILE` prints "req/s p50 p99 errors" from the
# RESULT line bench.lua writes into a wrk output FILE, and fails (no figures, one line saying
# why) when wrk reported errors: a ratio computed over failed requests would measure the
# failure path, not the endpoint.
wrk_figures() {
  local name="$1" file="$2" bad result
  bad="$(grep -E '^[[:space:]]*(Non-2xx or 3xx responses|Socket errors):' "$file" || true)"
  if [ -n "$bad" ]; then
    echo "bench: wrk reported errors against $name, no ratio computed: $(echo "$bad" | tr -s ' \n' ' ')" >&2
    return 1
  fi
  result="$(awk '/^RESULT/ {print $2, $3, $4, $5}' "$file")"
  if [ -z "$result" ]; then
    echo "bench: no RESULT line in wrk's output against $name" >&2
    return 1
  fi
  if [ "${result##* }" != 0 ]; then
    echo "bench: wrk counted ${result##* } errors against $name, no ratio computed" >&2
    return 1
  fi
  echo "$result"
}
