#!/usr/bin/env bash
# Publishing on versus off with the gateway on a core of its own: the gateways are
# pinned to CPU 1, wrk, the mock upstream and nats-server to CPU 0, so the numbers
# are the gateway's own cost of publishing, not nats-server's CPU taken from the
# same cores (in production NATS runs on other nodes). Alternating rounds (ROUNDS,
# default 6, of SECS, default 8, seconds); medians compared. Needs the release
# binaries (`bash bench/run.sh` builds them). Prints a markdown table.
UPSTREAM_CPU=0 source "$(dirname "$0")/lib.sh"
OFF_PORT=$(port); ON_PORT=$(port)
gateway off $OFF_PORT taskset -c 1
OFF=$!
gateway on $ON_PORT taskset -c 1
ON=$!
sleep 1.5
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
for p in $OFF_PORT $ON_PORT; do taskset -c 0 wrk -t2 -c32 -d2s -s "$WORK/chat.lua" "http://127.0.0.1:$p/v1/chat/completions" >/dev/null; done
: > "$WORK/runs"
for round in $(seq "${ROUNDS:-6}"); do
  if [ $((round % 2)) = 1 ]; then sides="off on"; else sides="on off"; fi
  for side in $sides; do
    if [ "$side" = off ]; then P=$OFF; PORT=$OFF_PORT; else P=$ON; PORT=$ON_PORT; fi
    c0=$(cpu $P); n0=$(cpu $NATS)
    out=$(taskset -c 0 wrk -t2 -c32 -d"${SECS:-8}"s -s "$WORK/chat.lua" "http://127.0.0.1:$PORT/v1/chat/completions")
    c1=$(cpu $P); n1=$(cpu $NATS)
    req=$(echo "$out" | awk '/requests in/{print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    echo "$side $rps $(( (c1 - c0) * 10000 / req )) $(( (n1 - n0) * 10000 / req ))" >> "$WORK/runs"
  done
done
curl -s "http://127.0.0.1:$ON_PORT/metrics" | awk '/^aiprox_events_(published|spilled|replayed|dropped)_total|^aiprox_event_publish_failures_total/{printf "%s=%s ", $1, $2} END{print ""}' > "$WORK/metrics"
python3 - "$WORK/runs" <<'P'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
side = lambda s: [(float(r[1]), int(r[2]), int(r[3])) for r in runs if r[0] == s]
off, on = side("off"), side("on")
mo, mn = statistics.median(r[0] for r in off), statistics.median(r[0] for r in on)
print("| placement | off req/s (median) | on req/s (median) | throughput cost | runs off | runs on | gateway CPU µs/req off / on (median) | nats-server CPU µs/req (on) |")
print("|---|---:|---:|---:|---|---|---:|---:|")
print(f"| gateway alone on CPU 1; wrk, mock, nats-server on CPU 0 | {mo:,.0f} | {mn:,.0f} | {(1 - mn / mo) * 100:.1f} % "
      f"| {', '.join(f'{r[0]:,.0f}' for r in off)} | {', '.join(f'{r[0]:,.0f}' for r in on)} "
      f"| {statistics.median(r[1] for r in off)} / {statistics.median(r[1] for r in on)} | {statistics.median(r[2] for r in on)} |")
P
echo
echo "Publishing gateway counters: $(cat "$WORK/metrics")"
