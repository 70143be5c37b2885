#!/usr/bin/env bash
# A client key with limits and a budget (requests and tokens per minute, a
# monthly budget: all leased from the bus) against a key without, each through a
# gateway of its own over one nats-server, published by one `aiprox admin`. Both
# gateways pinned to CPU 1 in sessions of their own and loaded together by two wrk
# instances on CPU 0 (with the mock and NATS), as in routing-side-by-side.sh. A
# third gateway serves the key without limits again, loaded at the same time:
# how far two identical gateways differ is the noise a cost must exceed.
# LIMITS (JSON) replaces the limited key's limits (add "max_concurrent" to
# measure the slot it takes on the bus each way). Target: at most 5 µs per
# request. RUNS (default 5) runs of SECS (default 10) seconds. Prints a markdown
# table.
UPSTREAM_CPU=0 source "$(dirname "$0")/lib.sh"
ADMIN_PORT=$(port); PLAIN_PORT=$(port); LIMITED_PORT=$(port); AGAIN_PORT=$(port)
TOKEN=bench-admin-token
common=(AIPROX_NATS_URL=nats://127.0.0.1:$NATS_PORT AIPROX_ADMIN_TOKEN=$TOKEN RUST_LOG=warn
  AIPROX_GATEWAY__AUTH=required AIPROX_DATABASE_URL=sqlite://$WORK/admin.db?mode=rwc)
env "${common[@]}" AIPROX_ADMIN__LISTEN=127.0.0.1:$ADMIN_PORT \
  taskset -c 0 $BIN/aiprox admin --config "$WORK/aiprox.yaml" >"$WORK/admin.log" 2>&1 &
for _ in $(seq 100); do
  curl -sf -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$ADMIN_PORT/api/v1/keys >/dev/null && break
  sleep 0.1
done
key() {
  curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "$1" http://127.0.0.1:$ADMIN_PORT/api/v1/keys | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'
}
PLAIN=$(key '{"name": "plain"}')
DEFAULT_LIMITS='{"requests_per_minute": 100000000, "tokens_per_minute": 1000000000000, "budget": {"usd": 1000000000, "period": "month"}}'
LIMITED=$(key "{\"name\": \"limited\", \"limits\": ${LIMITS:-$DEFAULT_LIMITS}}")
for side in plain limited again; do
  secret=PLAIN; [ $side = limited ] && secret=LIMITED
  sed "s|^wrk.headers\[\"Content-Type\"\].*|&\nwrk.headers[\"Authorization\"] = \"Bearer ${!secret}\"|" "$WORK/chat.lua" > "$WORK/$side.lua"
done
for side in plain limited again; do
  p=PLAIN_PORT; [ $side = limited ] && p=LIMITED_PORT; [ $side = again ] && p=AGAIN_PORT
  env "${common[@]}" AIPROX_GATEWAY__LISTEN=127.0.0.1:${!p} AIPROX_GATEWAY__EVENTS__SPILL_DIR="$WORK/spill-$side" \
    setsid taskset -c 1 $BIN/aiprox gateway --config "$WORK/aiprox.yaml" >"$WORK/$side.log" 2>&1 &
  eval "${side^^}_PID=$!"
done
sleep 2
for p in $PLAIN_PID $LIMITED_PID $AGAIN_PID; do
  [ "$(cat /proc/$p/comm)" = aiprox ] || { echo "gateways not started" >&2; exit 1; }
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
load() { taskset -c 0 wrk -t1 -c32 -d"$1"s -s "$WORK/$3.lua" "http://127.0.0.1:$2/v1/chat/completions"; }
both() {
  load "$1" $PLAIN_PORT plain > "$WORK/plain.out" &
  local a=$!
  load "$1" $AGAIN_PORT again > "$WORK/again.out" &
  local b=$!
  load "$1" $LIMITED_PORT limited > "$WORK/limited.out"
  wait $a $b
}
served() { awk '/requests in/{print $1}' "$WORK/$1.out"; }
non2xx() { awk '/Non-2xx/{print $NF}' "$WORK/$1.out"; }
both 2
[ -z "$(non2xx limited)" ] || { echo "the limited key was refused: $(non2xx limited) answers" >&2; exit 1; }
: > "$WORK/runs"
for _ in $(seq "${RUNS:-5}"); do
  p0=$(cpu $PLAIN_PID); l0=$(cpu $LIMITED_PID); g0=$(cpu $AGAIN_PID)
  both "${SECS:-10}"
  p1=$(cpu $PLAIN_PID); l1=$(cpu $LIMITED_PID); g1=$(cpu $AGAIN_PID)
  echo "$(served plain) $(served limited) $((p1 - p0)) $((l1 - l0)) $(served again) $((g1 - g0))" >> "$WORK/runs"
done
python3 - "$WORK/runs" "${SECS:-10}" <<'P'
import statistics, sys
runs = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
secs = int(sys.argv[2])
us = lambda r, i: r[i + 2] * 1e4 / r[i]
again = lambda r: r[5] * 1e4 / r[4]
print("| runs | no limits req/s (each run) | limits and budget req/s (each run) | gateway CPU µs/req without / again / with (median) | noise: again − without (median) | difference (median of runs) |")
print("|---:|---|---|---:|---:|---:|")
print(f"| {len(runs)} | {', '.join(f'{r[0] / secs:,.0f}' for r in runs)} | {', '.join(f'{r[1] / secs:,.0f}' for r in runs)} "
      f"| {statistics.median(us(r, 0) for r in runs):.1f} / {statistics.median(again(r) for r in runs):.1f} / {statistics.median(us(r, 1) for r in runs):.1f} "
      f"| {statistics.median(again(r) - us(r, 0) for r in runs):+.1f} µs "
      f"| {statistics.median(us(r, 1) - us(r, 0) for r in runs):+.1f} µs |")
P
