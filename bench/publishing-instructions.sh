#!/usr/bin/env bash
# Publishing on versus off, counted in instructions rather than seconds: the same
# gateway binary runs under `valgrind --tool=callgrind` without a bus and then
# publishing to a local `nats-server -js`; after a warm-up the counters are zeroed,
# wrk sends load for a fixed time, and the instructions the gateway executed (every
# thread: runtime workers, blocking pool, publisher) are divided by the requests it
# answered. Instruction counts repeat to within a fraction of a percent whatever
# else the machine does, so this is the steady number beside the noisy req/s.
# Under valgrind the gateway runs ~50x slower, so the publisher gathers smaller
# batches than at full speed: its per-batch costs weigh more here than in
# production (the comparison errs against publishing).
# KEEP=dir keeps the callgrind dumps there (callgrind_annotate reads them).
# Needs the release binaries (`bash bench/run.sh` builds them). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(port); NATS_PORT=$(port)
$BIN/mock-upstream --listen 127.0.0.1:$MOCK_PORT --no-record --chunks 20 >/dev/null 2>&1 &
nats-server -js -a 127.0.0.1 -p $NATS_PORT -sd "$WORK/nats" >/dev/null 2>&1 &
cat > "$WORK/aiprox.yaml" <<Y
providers:
  mock: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1"}
mappings:
  gpt4: {provider: mock, model: gpt-4o}
Y
cat > "$WORK/post.lua" <<'L'
wrk.method = "POST"
wrk.body = '{"model":"gpt4","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
wrk.headers["Content-Type"] = "application/json"
L
cat > "$WORK/stream.lua" <<'L'
wrk.method = "POST"
wrk.body = '{"model":"gpt4","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
wrk.headers["Content-Type"] = "application/json"
L
SECONDS_RUN=${SECONDS_RUN:-15}
measure() { # side script -> "instructions requests"
  local side=$1 script=$2 gw_port env=()
  gw_port=$(port)
  if [ "$side" = on ]; then
    env=(AIPROX_NATS_URL=nats://127.0.0.1:$NATS_PORT AIPROX_GATEWAY__EVENTS__SPILL_DIR="$WORK/spill")
  fi
  env "${env[@]}" AIPROX_GATEWAY__AUTH=open AIPROX_GATEWAY__LISTEN=127.0.0.1:$gw_port RUST_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$side.%p" \
    $BIN/aiprox gateway --config "$WORK/aiprox.yaml" >/dev/null 2>"$WORK/vg.$side" &
  local gw=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$gw_port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  wrk -t2 -c32 -d5s -s "$WORK/$script.lua" "http://127.0.0.1:$gw_port/v1/chat/completions" >/dev/null
  sleep 1
  callgrind_control -z $gw >/dev/null 2>&1
  local out
  out=$(wrk -t2 -c32 -d${SECONDS_RUN}s -s "$WORK/$script.lua" "http://127.0.0.1:$gw_port/v1/chat/completions")
  sleep 0.5 # the publisher's last linger and acks
  callgrind_control -d $gw >/dev/null 2>&1
  kill -INT $gw; wait $gw 2>/dev/null || true
  local file
  file=$(ls -t "$WORK"/cg.$side.$gw.* 2>/dev/null | head -1)
  local ir
  ir=$(awk '/^summary:/{print $2} /^totals:/{t=$2} END{}' "$file" | head -1)
  echo "$ir $(echo "$out" | awk '/requests in/{print $1}')"
  if [ -n "${KEEP:-}" ]; then cp "$file" "$KEEP/callgrind.$side.$script"; fi
  rm -f "$WORK"/cg.$side.*
}
echo "| scenario | off instructions/req | on instructions/req | publishing adds | requests off / on |"
echo "|---|---:|---:|---:|---:|"
for scenario in post stream; do
  read -r ir_off req_off < <(measure off $scenario)
  read -r ir_on req_on < <(measure on $scenario)
  python3 - "$scenario" "$ir_off" "$req_off" "$ir_on" "$req_on" <<'P'
import sys
name, ir_off, req_off, ir_on, req_on = sys.argv[1], *map(int, sys.argv[2:])
off, on = ir_off / req_off, ir_on / req_on
label = {"post": "non-streaming", "stream": "streaming (20 chunks)"}[name]
print(f"| {label} | {off:,.0f} | {on:,.0f} | {(on / off - 1) * 100:.1f} % | {req_off:,} / {req_on:,} |")
P
done
