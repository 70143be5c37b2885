#!/usr/bin/env bash
# `aiprox all` overloaded, as a new user would overload it: the built-in demo set-up
# (SQLite, in-process bus), wrk sending non-streaming chat requests as fast as it
# can for DURATION seconds (default 600), faster than the SQLite writer stores
# them. The process's RSS is sampled every 5 s through the load and the drain; after
# the load, the script waits until the spill is empty and the row count stops
# moving, then compares the rows stored with the requests wrk got answers to.
# BIN (default target/release) names the binary. Prints a markdown report.
# Usage: DURATION=600 BIN=target/release bash bench/overload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
DURATION=${DURATION:-600}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GW=$(port)
cat > "$WORK/chat.lua" <<'L'
wrk.method = "POST"
wrk.body = '{"model":"demo","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
wrk.headers["Content-Type"] = "application/json"
L
BIN=$(realpath "$BIN")
(cd "$WORK" && exec env AIPROX_GATEWAY__LISTEN=127.0.0.1:$GW AIPROX_GATEWAY__EVENTS__SPILL_MAX_BYTES=40000000000 \
  RUST_LOG=warn "$BIN/aiprox" all >"$WORK/aiprox.log" 2>&1) &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW/readyz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/{print int($2/1024)}' "/proc/$PID/status"; }
metric() { curl -s "http://127.0.0.1:$GW/metrics" | awk -v m="$1" '$1==m{print $2}'; }
rows() { python3 - "$WORK/data/aiprox.db" <<'P'
import sqlite3, sys
try:
    print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5).execute("select count(*) from request_logs").fetchone()[0])
except Exception:
    print(0)
P
}
echo "t_s rss_mb spill_mb rows" > "$WORK/samples"
sample() { echo "$1 $(rss) $(( $(metric aiprox_event_spill_bytes || echo 0) / 1048576 )) $(rows)" >> "$WORK/samples"; }
START_RSS=$(rss)
wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/chat.lua" "http://127.0.0.1:$GW/v1/chat/completions" > "$WORK/wrk.out" &
WRK=$!
T=0
while kill -0 $WRK 2>/dev/null; do sleep 5; T=$((T + 5)); sample $T; done
ANSWERED=$(awk '/requests in/{print $1}' "$WORK/wrk.out")
NON2XX=$(awk '/Non-2xx/{print $NF}' "$WORK/wrk.out"); NON2XX=${NON2XX:-0}
# Drain: until the spill is empty and the rows stop moving for 10 s.
LAST=-1; STILL=0
while [ $STILL -lt 2 ]; do
  sleep 5; T=$((T + 5)); sample $T
  NOW=$(rows); SPILL=$(metric aiprox_event_spill_bytes || echo 0)
  if [ "$NOW" = "$LAST" ] && [ "${SPILL:-0}" = 0 ]; then STILL=$((STILL + 1)); else STILL=0; fi
  LAST=$NOW
done
python3 - "$WORK/samples" "$START_RSS" "$ANSWERED" "$NON2XX" "$(rows)" "$DURATION" "$(metric aiprox_events_dropped_total)" "$(metric aiprox_events_spilled_total)" <<'P'
import sys
samples = [tuple(map(int, l.split())) for l in open(sys.argv[1]).read().split("\n")[1:] if l.strip()]
start, answered, non2xx, rows, duration = (int(x) for x in sys.argv[2:7])
dropped, spilled = sys.argv[7] or "?", sys.argv[8] or "?"
load = [s for s in samples if s[0] <= duration]
drain = [s for s in samples if s[0] > duration]
print(f"| load | RSS at start | RSS max under load | RSS max in the drain | RSS at the end | requests answered (non-2xx) | rows after the drain | events spilled | events dropped | drain |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {duration} s, {answered / duration:,.0f} req/s | {start} MB | {max(s[1] for s in load)} MB | {max((s[1] for s in drain), default=0)} MB | {samples[-1][1]} MB "
      f"| {answered:,} ({non2xx}) | {rows:,} | {spilled} | {dropped} | {drain[-1][0] - duration if drain else 0} s |")
print()
print("RSS (MB) / spill (MB) / rows, every minute: " + ", ".join(f"{t // 60}:{t % 60:02d} {r}/{s}/{n:,}" for t, r, s, n in samples if t % 60 == 0))
P
