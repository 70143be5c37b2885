#!/usr/bin/env bash
# Publishing on versus off, both at once: the two gateways (no bus, and publishing
# to a local `nats-server -js`) are pinned to the same CPU 1 and loaded at the same
# time by two wrk instances (CPU 0, with the mock and nats-server). Each gateway
# runs in a session of its own, so the scheduler (autogroups) shares CPU 1 evenly
# between the two processes whatever threads each runs; so the ratio of the requests they serve in the same
# seconds is their cost ratio, and whatever slows the machine slows both alike:
# the comparison does not drift with the VM as consecutive runs do.
# KIND=chat (default) or stream (20 chunks); RUNS (default 5) runs of SECS
# (default 10) seconds; the median ratio is the cost; CPU read from /proc (clock
# ticks of 10 ms). BIN (default target/release) names the binaries, which
# `bash bench/run.sh` builds. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(port); NATS_PORT=$(port); OFF_PORT=$(port); ON_PORT=$(port)
taskset -c 0 $BIN/mock-upstream --listen 127.0.0.1:$MOCK_PORT --no-record --chunks 20 >/dev/null 2>&1 &
taskset -c 0 nats-server -js -a 127.0.0.1 -p $NATS_PORT -sd "$WORK/nats" >/dev/null 2>&1 &
cat > "$WORK/aiprox.yaml" <<Y
providers:
  mock: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1"}
mappings:
  gpt4: {provider: mock, model: gpt-4o}
Y
AIPROX_GATEWAY__AUTH=open AIPROX_GATEWAY__LISTEN=127.0.0.1:$OFF_PORT RUST_LOG=warn \
  setsid taskset -c 1 $BIN/aiprox gateway --config "$WORK/aiprox.yaml" >/dev/null 2>&1 &
OFF=$!
AIPROX_GATEWAY__AUTH=open AIPROX_GATEWAY__LISTEN=127.0.0.1:$ON_PORT AIPROX_NATS_URL=nats://127.0.0.1:$NATS_PORT \
  AIPROX_GATEWAY__EVENTS__SPILL_DIR="$WORK/spill" RUST_LOG=warn \
  setsid taskset -c 1 $BIN/aiprox gateway --config "$WORK/aiprox.yaml" >/dev/null 2>&1 &
ON=$!
sleep 1.5
if [ "${KIND:-chat}" = stream ]; then
  BODY='{"model":"gpt4","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
else
  BODY='{"model":"gpt4","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
fi
cat > "$WORK/post.lua" <<L
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
L
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
load() { taskset -c 0 wrk -t1 -c32 -d"$1"s -s "$WORK/post.lua" "http://127.0.0.1:$2/v1/chat/completions"; }
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
