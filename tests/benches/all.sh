#!/usr/bin/env bash
# Runs every benchmark script and prints one table: what was measured, our figure, the limit
# it is compared with (a minimal program doing the least the interface must do, or the goal),
# a peer where one is installable, and whether the goal was met. Run by hand; it takes several
# minutes and both cores (the figures are only comparable within one run).
#
#   tests/benches/all.sh                       # every script
#   tests/benches/all.sh startup prompt        # some of them (credential_process, prompt,
#                                              #  container, startup)
# Logs: $BENCH_LOG_DIR (default a temporary directory, printed at the end). Exits non-zero when
# any script failed or missed a goal.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPTS=(credential_process prompt container startup)
[ $# -gt 0 ] && SCRIPTS=("$@")
LOGS="${BENCH_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/rc-bench-all.XXXXXX")}"
mkdir -p "$LOGS"

echo "== building release binaries once" >&2
(cd "$REPO" && CARGO_INCREMENTAL=0 cargo build --release -q -p rolecall -p rolecall-daemon -p rolecall-sandbox) || exit 2

STATUS=0
for s in "${SCRIPTS[@]}"; do
  echo "== $s.sh (log: $LOGS/$s.log)" >&2
  start=$(date +%s)
  "$REPO/tests/benches/$s.sh" >"$LOGS/$s.log" 2>&1
  rc=$?
  echo "$rc $(($(date +%s) - start))" >"$LOGS/$s.rc"
  [ "$rc" -eq 0 ] || STATUS=1
done

python3 - "$LOGS" "${SCRIPTS[@]}" <<'PYEOF'
import re, sys
logs, scripts = sys.argv[1], sys.argv[2:]
rows = []  # (what, ours, limit, peer, verdict)

def verdict(line):
    if "MISSED" in line:
        return "MISSED"
    if re.search(r"\b(ok|flat)\s*$", line):
        return "ok"
    return ""

for s in scripts:
    text = open(f"{logs}/{s}.log", errors="replace").read()
    rc, secs = open(f"{logs}/{s}.rc").read().split()
    found = 0
    def add(*row):
        global found
        found += 1
        rows.append(row)
    if s == "credential_process":
        m = re.search(r"credential-process \(warm\): median ([\d.]+) ms.*?minimal binary ([\d.]+) ms; ratio ([\d.]+).*?(ok|MISSED)", text)
        peer = re.search(r"aws-sso-util credential-process \(warm\): median ([\d.]+) ms", text)
        if m:
            add("credential-process, warm (median)", f"{m[1]} ms", f"minimal binary {m[2]} ms (ratio {m[3]}; goal <= 2 ms, <= 2x)",
                f"aws-sso-util {peer[1]} ms" if peer else "-", m[4])
        m = re.search(r"VmRSS ([\d.]+) MiB.*?(ok|MISSED)", text)
        if m:
            add("rolecalld RSS after 100 profiles", f"{m[1]} MiB", "goal <= 25 MiB", "-", m[2])
    elif s == "prompt":
        for line in text.splitlines():
            m = re.match(r"\s+(median rolecall prompt \(ms\)|ratio prompt / constant line|.*hung.*|populate.*?)\s{2,}([\d.]+)\s+goal (\S+ [\d.]+)\s+(ok|MISSED)", line)
            if m:
                add(f"prompt: {m[1]}", m[2], f"goal {m[3]}", "-", m[4])
        m = re.search(r"median constant-line binary \(ms\)\s+([\d.]+)", text)
        if m:
            add("prompt: constant-line binary (the limit)", f"{m[1]} ms", "-", "-", "")
    elif s == "container":
        how = re.search(r"^== (.*wrk -t\d+ -c\d+), (\d+) rounds of ([^,\s]+)", text, re.M)
        how = f"{'pinned ' if how and 'taskset' in how[1] else ''}wrk -c64, median of {how[2]} x {how[3]}" if how else "wrk"
        ref = re.search(r"^median reference\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, re.M)
        for route, label in (("container", "container endpoint"), ("imds", "IMDS credentials")):
            d = re.search(rf"^median {route}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, re.M)
            ratio = re.search(rf"ratio {route}/reference: ([\d.]+) \(goal ([^)]*)\) (\S+)", text)
            p99 = re.search(rf"{route} p99: ([\d.]+) ms \(goal ([^;)]*)[^)]*\) (\S+)", text)
            if d and ref:
                add(f"{label} req/s ({how})", d[1],
                    f"hyper reference {ref[1]}" + (f" (ratio {ratio[1]}, goal {ratio[2]})" if ratio else ""),
                    "-", ratio[3] if ratio else "")
            if p99:
                add(f"{label} p99", f"{p99[1]} ms", f"goal {p99[2]} ms" + (f" (reference {ref[3]} ms)" if ref else ""), "-", p99[3])
            # CPU per request (median over the rounds; no goal): what each server costs,
            # whatever limited a round's req/s.
            cpu = lambda n: re.search(rf"^median {n}(?:\s+[\d.]+){{4}}\s+([\d.]+)\s+([\d.]+)\s*$", text, re.M)
            ours, theirs = cpu(route), cpu("reference")
            if ours and theirs:
                add(f"{label} CPU per request", f"{ours[2]} us ({ours[1]} % of its core)",
                    f"hyper reference {theirs[2]} us ({theirs[1]} %)", "-", "")
        m = re.search(r"RSS under load: (\S+) KiB \(spread (\d+) KiB\) (.*)$", text, re.M)
        if m:
            add("container endpoint RSS under load", f"{m[1]} KiB", "flat (spread <= 2048 KiB)", "-", "ok" if "MISSED" not in m[3] else "MISSED")
        m = re.search(r"audit under load: (\d+) hand-outs on record, (\S+) dropped", text)
        if m:
            add("audit records dropped under load", m[2], f"0 (of {m[1]} hand-outs)", "-", "ok" if m[2] == "0" and m[1] != "0" else "MISSED")
    for line in text.splitlines():
        # figure|what|ours|limit|peer|goal verdict
        if line.startswith("figure|"):
            f = (line.split("|") + [""] * 6)[1:6]
            add(*f)
    if not found:
        # A script whose output this table does not know (yet): its goal lines as they are.
        for line in text.splitlines():
            if verdict(line):
                add(f"{s}: {line.strip()[:70]}", "", "", "", verdict(line))
    if rc != "0":
        last = [l for l in text.splitlines() if l.strip()][-1:] or ["(no output)"]
        rows.append((f"{s}.sh exit {rc} after {secs} s", "", "", "", last[0][:60]))

w = [max(len(str(r[i])) for r in rows + [("what", "ours", "limit", "peer", "goal")]) for i in range(5)]
def fmt(r):
    return "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip()
print(fmt(("what", "ours", "limit", "peer", "goal")))
print(fmt(tuple("-" * x for x in w)))
for r in rows:
    print(fmt(r))
PYEOF
echo "logs: $LOGS" >&2
exit "$STATUS"
