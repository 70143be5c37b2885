#!/usr/bin/env bash
# Tracing off, sampled out and at 100 %, counted in instructions rather than
# seconds (as publishing-instructions.sh does for publishing): one publishing
# gateway at a time runs under `valgrind --tool=callgrind`, exporting its spans
# over OTLP/gRPC to `otlp-sink` when tracing is on; after a warm-up the counters
# are zeroed, wrk sends load for a fixed time, and the instructions the gateway
# executed (every thread) are divided by the requests it answered. The counts
# repeat to within a fraction of a percent whatever else the machine does: the
# steady number beside tracing-side-by-side.sh's noisy req/s.
# KIND=chat (default) or stream. KEEP=dir keeps the callgrind dumps there
# (callgrind_annotate reads them). Needs the release binaries. Prints a markdown
# table.
source "$(dirname "$0")/lib.sh"
SINK_PORT=$(port)
$BIN/otlp-sink 127.0.0.1:$SINK_PORT > "$WORK/sink.out" 2>&1 &
OTEL=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
SCRIPT=${KIND:-chat}
# The publisher's last linger and acks, and the exporter's batch (every 5 s).
read -r ir_off req_off < <(counted off on "$SCRIPT" 6 RUST_LOG=warn)
read -r ir_out req_out < <(counted out on "$SCRIPT" 6 "${OTEL[@]}" OTEL_TRACES_SAMPLER=always_off)
read -r ir_all req_all < <(counted all on "$SCRIPT" 6 "${OTEL[@]}" OTEL_TRACES_SAMPLER=always_on)
python3 - "$SCRIPT" "$ir_off" "$req_off" "$ir_out" "$req_out" "$ir_all" "$req_all" <<'P'
import sys
name, *n = sys.argv[1], *map(int, sys.argv[2:])
off, out, full = n[0] / n[1], n[2] / n[3], n[4] / n[5]
label = {"chat": "non-streaming", "stream": "streaming (20 chunks)"}[name]
print("| scenario | off instructions/req | sampled out | 100 % | sampled out adds | 100 % adds | requests off / out / 100 % |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| {label} | {off:,.0f} | {out:,.0f} | {full:,.0f} | {(out / off - 1) * 100:+.1f} % ({out - off:+,.0f}) "
      f"| {(full / off - 1) * 100:+.1f} % ({full - off:+,.0f}) | {n[1]:,} / {n[3]:,} / {n[5]:,} |")
P
