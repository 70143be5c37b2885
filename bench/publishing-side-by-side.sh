#!/usr/bin/env bash
# Publishing on versus off, both at once: the two gateways (no bus, and publishing
# to a local `nats-server -js`) are pinned to the same CPU 1 and loaded at the same
# time by two wrk instances (CPU 0, with the mock and nats-server). Each gateway
# runs in a session of its own, so the scheduler (autogroups) shares CPU 1 evenly
# between the two processes whatever threads each runs: the ratio of the requests
# they serve in the same seconds is their cost ratio, and whatever slows the
# machine slows both alike:
# the comparison does not drift with the VM as consecutive runs do.
# KIND=chat (default) or stream (20 chunks); RUNS (default 5) runs of SECS
# (default 10) seconds; the median ratio is the cost; CPU read from /proc (clock
# ticks of 10 ms). BIN (default target/release) names the binaries, which
# `bash bench/run.sh` builds. Prints a markdown table.
UPSTREAM_CPU=0 source "$(dirname "$0")/lib.sh"
OFF_PORT=$(port); ON_PORT=$(port)
gateway off $OFF_PORT setsid taskset -c 1
OFF=$!
gateway on $ON_PORT setsid taskset -c 1
ON=$!
sleep 1.5
# setsid runs in place (no fork), so these are the gateways themselves.
[ "$(cat /proc/$OFF/comm)" = aiprox ] && [ "$(cat /proc/$ON/comm)" = aiprox ] || { echo "gateways not started" >&2; exit 1; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
load() { taskset -c 0 wrk -t1 -c32 -d"$1"s -s "$WORK/${KIND:-chat}.lua" "http://127.0.0.1:$2/v1/chat/completions"; }
load 2 $OFF_PORT >/dev/null &
W=$!
load 2 $ON_PORT >/dev/null
wait $W
sleep 0.5
: > "$WORK/runs"
for _ in $(seq "${RUNS:-5}"); do
  o0=$(cpu $OFF); n0=$(cpu $ON)
  load "${SECS:-10}" $OFF_PORT > "$WORK/off.out" &
  W=$!
  load "${SECS:-10}" $ON_PORT > "$WORK/on.out"
  wait $W
  o1=$(cpu $OFF); n1=$(cpu $ON)
  off=$(awk '/requests in/{print $1}' "$WORK/off.out"); on=$(awk '/requests in/{print $1}' "$WORK/on.out")
  echo "$off $on $((o1 - o0)) $((n1 - n0))" >> "$WORK/runs"
done
curl -s "http://127.0.0.1:$ON_PORT/metrics" | awk '/^aiprox_events_(published|spilled|dropped)_total/{printf "%s=%s ", $1, $2} END{print ""}' > "$WORK/metrics"
LABEL="non-streaming"; [ "${KIND:-chat}" = stream ] && LABEL="streaming (20 chunks)"
python3 - "$WORK/runs" "${SECS:-10}" "$LABEL" <<'P'
import statistics, sys
runs = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
secs = int(sys.argv[2])
costs = [1 - on / off for off, on, _, _ in runs]
print("| scenario | runs | off req/s (each run) | on req/s (each run) | cost per run | throughput cost (median) | gateway CPU µs/req off / on (median) |")
print("|---|---:|---|---|---|---:|---:|")
print(f"| {sys.argv[3]} | {len(runs)} | {', '.join(f'{r[0] / secs:,.0f}' for r in runs)} | {', '.join(f'{r[1] / secs:,.0f}' for r in runs)} "
      f"| {', '.join(f'{c * 100:.1f} %' for c in costs)} | {statistics.median(costs) * 100:.1f} % "
      f"| {statistics.median(r[2] * 1e4 / r[0] for r in runs):.1f} / {statistics.median(r[3] * 1e4 / r[1] for r in runs):.1f} |")
P
echo
echo "Publishing gateway counters: $(cat "$WORK/metrics")"
