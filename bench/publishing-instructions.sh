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
source "$(dirname "$0")/lib.sh"
SECONDS_RUN=${SECONDS_RUN:-15}
measure() { # side script -> "instructions requests"
  local side=$1 script=$2 gw_port
  gw_port=$(port)
  gateway "$side" "$gw_port" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$side.%p"
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
for scenario in chat stream; do
  read -r ir_off req_off < <(measure off $scenario)
  read -r ir_on req_on < <(measure on $scenario)
  python3 - "$scenario" "$ir_off" "$req_off" "$ir_on" "$req_on" <<'P'
import sys
name, ir_off, req_off, ir_on, req_on = sys.argv[1], *map(int, sys.argv[2:])
off, on = ir_off / req_off, ir_on / req_on
label = {"chat": "non-streaming", "stream": "streaming (20 chunks)"}[name]
print(f"| {label} | {off:,.0f} | {on:,.0f} | {(on / off - 1) * 100:.1f} % | {req_off:,} / {req_on:,} |")
P
done
