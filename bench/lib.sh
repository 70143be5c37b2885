# The publishing benchmarks' shared set-up, sourced by bench/publishing-*.sh and
# bench/tracing-*.sh: a work
# directory removed on exit (with every process started here), the mock upstream
# (20-chunk streams) and a throw-away `nats-server -js` on free ports, the gateway
# configuration, and the wrk request scripts chat.lua and stream.lua.
# UPSTREAM_CPU, when set, pins the mock and nats-server to that CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(port); NATS_PORT=$(port)
PIN=()
if [ -n "${UPSTREAM_CPU:-}" ]; then PIN=(taskset -c "$UPSTREAM_CPU"); fi
"${PIN[@]}" $BIN/mock-upstream --listen 127.0.0.1:$MOCK_PORT --no-record --chunks 20 >/dev/null 2>&1 &
"${PIN[@]}" nats-server -js -a 127.0.0.1 -p $NATS_PORT -sd "$WORK/nats" >/dev/null 2>&1 &
NATS=$!
cat > "$WORK/aiprox.yaml" <<Y
providers:
  mock: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1"}
mappings:
  gpt4: {provider: mock, model: gpt-4o}
Y
for kind in chat stream; do
  if [ $kind = stream ]; then extra='"stream":true,"stream_options":{"include_usage":true},'; else extra=''; fi
  cat > "$WORK/$kind.lua" <<L
wrk.method = "POST"
wrk.body = '{"model":"gpt4",$extra"messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
wrk.headers["Content-Type"] = "application/json"
L
done

# gateway off|on PORT [COMMAND PREFIX…]: starts a gateway in the background ($! is
# its pid), without a bus (off) or publishing to the nats-server above (on).
gateway() {
  local side=$1 gw_port=$2
  shift 2
  local env=(AIPROX_GATEWAY__AUTH=open AIPROX_GATEWAY__LISTEN=127.0.0.1:$gw_port RUST_LOG=warn)
  if [ "$side" = on ]; then
    env+=(AIPROX_NATS_URL=nats://127.0.0.1:$NATS_PORT AIPROX_GATEWAY__EVENTS__SPILL_DIR="$WORK/spill-$gw_port")
  fi
  env "${env[@]}" "$@" $BIN/aiprox gateway --config "$WORK/aiprox.yaml" >/dev/null 2>&1 &
}

# counted NAME off|on SCRIPT SETTLE [VAR=value…]: runs one gateway (without a bus
# or publishing, with the variables given) under `valgrind --tool=callgrind`;
# after a warm-up zeroes the counters, loads it with wrk (SCRIPT.lua) for
# SECONDS_RUN (default 15) seconds, waits SETTLE seconds for its background work,
# and prints "instructions requests": every thread's instructions, and the
# requests it answered. KEEP=dir keeps the dump there as callgrind.NAME.SCRIPT.
counted() {
  local name=$1 side=$2 script=$3 settle=$4 gw_port
  shift 4
  gw_port=$(port)
  gateway "$side" "$gw_port" env "$@" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$name.%p"
  local gw=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$gw_port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  wrk -t2 -c32 -d5s -s "$WORK/$script.lua" "http://127.0.0.1:$gw_port/v1/chat/completions" >/dev/null
  sleep 1
  callgrind_control -z $gw >/dev/null 2>&1
  local out
  out=$(wrk -t2 -c32 -d"${SECONDS_RUN:-15}"s -s "$WORK/$script.lua" "http://127.0.0.1:$gw_port/v1/chat/completions")
  sleep "$settle"
  callgrind_control -d $gw >/dev/null 2>&1
  kill -INT $gw; wait $gw 2>/dev/null || true
  local file
  file=$(ls -t "$WORK"/cg.$name.$gw.* 2>/dev/null | head -1)
  echo "$(awk '/^summary:/{print $2}' "$file" | head -1) $(echo "$out" | awk '/requests in/{print $1}')"
  if [ -n "${KEEP:-}" ]; then cp "$file" "$KEEP/callgrind.$name.$script"; fi
  rm -f "$WORK"/cg.$name.*
}
