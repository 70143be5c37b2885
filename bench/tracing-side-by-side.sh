#!/usr/bin/env bash
# Tracing off, configured but sampled out, and sampled at 100 %, all at once: four
# publishing gateways (log events to a local `nats-server -js`, as in production)
# pinned to CPU 1, each in a session of its own so the scheduler shares the core
# evenly, loaded at the same time by four wrk instances (CPU 0, with the mock,
# nats-server and the OTLP receiver `otlp-sink`). The ratio of the requests each
# serves in the same seconds is its cost, as in publishing-side-by-side.sh.
#   off:         no OTEL_* variable
#   off again:   the same, a second time: how far two identical gateways differ
#                (the noise a cost must exceed to be one)
#   sampled out: OTEL_EXPORTER_OTLP_ENDPOINT set, OTEL_TRACES_SAMPLER=always_off
#   100 %:       OTEL_TRACES_SAMPLER=always_on, every span exported over gRPC
# KIND=chat (default) or stream; RUNS (default 5) runs of SECS (default 10)
# seconds; the median of the per-run ratios is the cost. Prints a markdown table
# and how many spans the receiver got per request the traced gateway served.
UPSTREAM_CPU=0 source "$(dirname "$0")/lib.sh"
SINK_PORT=$(port)
taskset -c 0 $BIN/otlp-sink 127.0.0.1:$SINK_PORT > "$WORK/sink.out" 2>&1 &
OTEL=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
OFF_PORT=$(port); AGAIN_PORT=$(port); OUT_PORT=$(port); ALL_PORT=$(port)
gateway on $OFF_PORT setsid taskset -c 1
OFF=$!
gateway on $AGAIN_PORT setsid taskset -c 1
AGAIN=$!
gateway on $OUT_PORT env "${OTEL[@]}" OTEL_TRACES_SAMPLER=always_off setsid taskset -c 1
OUT=$!
gateway on $ALL_PORT env "${OTEL[@]}" OTEL_TRACES_SAMPLER=always_on setsid taskset -c 1
ALL=$!
sleep 1.5
for p in $OFF $AGAIN $OUT $ALL; do
  [ "$(cat /proc/$p/comm)" = aiprox ] || { echo "gateways not started" >&2; exit 1; }
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
load() { taskset -c 0 wrk -t1 -c32 -d"$1"s -s "$WORK/${KIND:-chat}.lua" "http://127.0.0.1:$2/v1/chat/completions"; }
four() {
  load "$1" $OFF_PORT > "$WORK/off.out" &
  local a=$!
  load "$1" $AGAIN_PORT > "$WORK/again.out" &
  local b=$!
  load "$1" $OUT_PORT > "$WORK/out.out" &
  local c=$!
  load "$1" $ALL_PORT > "$WORK/all.out"
  wait $a $b $c
}
served() { awk '/requests in/{print $1}' "$WORK/$1.out"; }
four 2
traced=$(served all)
sleep 0.5
: > "$WORK/runs"
for _ in $(seq "${RUNS:-5}"); do
  o0=$(cpu $OFF); g0=$(cpu $AGAIN); u0=$(cpu $OUT); a0=$(cpu $ALL)
  four "${SECS:-10}"
  o1=$(cpu $OFF); g1=$(cpu $AGAIN); u1=$(cpu $OUT); a1=$(cpu $ALL)
  echo "$(served off) $(served again) $(served out) $(served all) $((o1 - o0)) $((g1 - g0)) $((u1 - u0)) $((a1 - a0))" >> "$WORK/runs"
  traced=$((traced + $(served all)))
done
# The batch processor exports every 5 s: wait for the last spans.
sleep 7
spans=$(tail -n1 "$WORK/sink.out"); spans=${spans:-0}
LABEL="non-streaming"; [ "${KIND:-chat}" = stream ] && LABEL="streaming (20 chunks)"
python3 - "$WORK/runs" "${SECS:-10}" "$LABEL" "$spans" "$traced" <<'P'
import statistics, sys
runs = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
secs, label, spans, traced = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
cost = lambda i: [1 - r[i] / r[0] for r in runs]
rate = lambda i: ", ".join(f"{r[i] / secs:,.0f}" for r in runs)
pct = lambda cs: ", ".join(f"{c * 100:.1f}" for c in cs) + " %"
med = lambda cs: f"{statistics.median(cs) * 100:.1f} %"
cpu = lambda i: statistics.median(r[i + 4] * 1e4 / r[i] for r in runs)
print("| scenario | runs | off req/s | off again: cost per run (noise) | sampled out: cost per run | 100 %: cost per run | noise (median) | sampled-out cost (median) | 100 % cost (median) | gateway CPU µs/req off / again / out / 100 % |")
print("|---|---:|---|---|---|---|---:|---:|---:|---:|")
print(f"| {label} | {len(runs)} | {rate(0)} | {pct(cost(1))} | {pct(cost(2))} | {pct(cost(3))} "
      f"| {med(cost(1))} | {med(cost(2))} | {med(cost(3))} "
      f"| {cpu(0):.1f} / {cpu(1):.1f} / {cpu(2):.1f} / {cpu(3):.1f} |")
print()
print(f"Spans received by the OTLP sink: {spans:,} for {traced:,} requests the 100 % gateway served "
      f"({spans / max(traced, 1):.2f} per request: server and GenAI, and a share of the batch sends).")
P
