#!/usr/bin/env bash
# The routing layer on the happy path: a mapping with three weighted targets
# (weights 1, 2, 3; STRATEGY=least_latency or least_busy to measure those)
# against one with a single target, both
# gateways at once, pinned to CPU 1 in sessions of their own and loaded by two wrk
# instances on CPU 0 (with the mock), as in publishing-side-by-side.sh. No bus:
# the difference is the routing alone. Target: at most 2 µs per request.
# RUNS (default 5) runs of SECS (default 10) seconds. Prints a markdown table.
UPSTREAM_CPU=0 source "$(dirname "$0")/lib.sh"
cat > "$WORK/three.yaml" <<Y
providers:
  mock: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1"}
  second: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1"}
  third: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1"}
mappings:
  gpt4:
    strategy: ${STRATEGY:-weighted}
    targets:
      - {provider: mock, model: gpt-4o, weight: 1}
      - {provider: second, model: gpt-4o, weight: 2}
      - {provider: third, model: gpt-4o, weight: 3}
Y
ONE_PORT=$(port); THREE_PORT=$(port)
gateway off $ONE_PORT setsid taskset -c 1
ONE=$!
AIPROX_GATEWAY__AUTH=open AIPROX_GATEWAY__LISTEN=127.0.0.1:$THREE_PORT RUST_LOG=warn \
  setsid taskset -c 1 $BIN/aiprox gateway --config "$WORK/three.yaml" >/dev/null 2>&1 &
THREE=$!
sleep 1.5
for p in $ONE $THREE; do
  [ "$(cat /proc/$p/comm)" = aiprox ] || { echo "gateways not started" >&2; exit 1; }
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
load() { taskset -c 0 wrk -t1 -c32 -d"$1"s -s "$WORK/chat.lua" "http://127.0.0.1:$2/v1/chat/completions"; }
both() {
  load "$1" $ONE_PORT > "$WORK/one.out" &
  local a=$!
  load "$1" $THREE_PORT > "$WORK/three.out"
  wait $a
}
served() { awk '/requests in/{print $1}' "$WORK/$1.out"; }
both 2
: > "$WORK/runs"
for _ in $(seq "${RUNS:-5}"); do
  o0=$(cpu $ONE); t0=$(cpu $THREE)
  both "${SECS:-10}"
  o1=$(cpu $ONE); t1=$(cpu $THREE)
  echo "$(served one) $(served three) $((o1 - o0)) $((t1 - t0))" >> "$WORK/runs"
done
python3 - "$WORK/runs" "${SECS:-10}" <<'P'
import statistics, sys
runs = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
secs = int(sys.argv[2])
us = lambda r, i: r[i + 2] * 1e4 / r[i]
print("| runs | one target req/s (each run) | three targets req/s (each run) | cost per run | throughput cost (median) | gateway CPU µs/req one / three (median) | difference (median of runs) |")
print("|---:|---|---|---|---:|---:|---:|")
costs = [1 - r[1] / r[0] for r in runs]
print(f"| {len(runs)} | {', '.join(f'{r[0] / secs:,.0f}' for r in runs)} | {', '.join(f'{r[1] / secs:,.0f}' for r in runs)} "
      f"| {', '.join(f'{c * 100:.1f}' for c in costs)} % | {statistics.median(costs) * 100:.1f} % "
      f"| {statistics.median(us(r, 0) for r in runs):.1f} / {statistics.median(us(r, 1) for r in runs):.1f} "
      f"| {statistics.median(us(r, 1) - us(r, 0) for r in runs):+.1f} µs |")
P
