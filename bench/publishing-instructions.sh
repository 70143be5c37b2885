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
echo "| scenario | off instructions/req | on instructions/req | publishing adds | requests off / on |"
echo "|---|---:|---:|---:|---:|"
for scenario in chat stream; do
  # The publisher's last linger and acks: half a second.
  read -r ir_off req_off < <(counted off off $scenario 0.5 RUST_LOG=warn)
  read -r ir_on req_on < <(counted on on $scenario 0.5 RUST_LOG=warn)
  python3 - "$scenario" "$ir_off" "$req_off" "$ir_on" "$req_on" <<'P'
import sys
name, ir_off, req_off, ir_on, req_on = sys.argv[1], *map(int, sys.argv[2:])
off, on = ir_off / req_off, ir_on / req_on
label = {"chat": "non-streaming", "stream": "streaming (20 chunks)"}[name]
print(f"| {label} | {off:,.0f} | {on:,.0f} | {(on / off - 1) * 100:.1f} % | {req_off:,} / {req_on:,} |")
P
done
