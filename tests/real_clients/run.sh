#!/usr/bin/env bash
# Runs the real coding agents through aiprox, offline, against the mock upstream:
# Codex CLI (Responses API, over HTTP and over its WebSocket transport) on a
# chat-completions upstream, an Anthropic upstream and a native Responses upstream,
# and Claude Code (Anthropic Messages) on a chat-completions upstream.
# Prints a summary table; exits non-zero if any run failed. See README.md here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${AIPROX_CLIENTS_CACHE:-$HOME/.cache/aiprox-clients}
BIN_DIR=${AIPROX_BIN_DIR:-$ROOT/target/debug}
TIMEOUT=${AIPROX_CLIENT_TIMEOUT:-180}
CODEX_PKG=${AIPROX_CODEX_PKG:-@openai/codex}
CLAUDE_PKG=${AIPROX_CLAUDE_PKG:-@anthropic-ai/claude-code}
HELPERS="python3 $HERE/helpers.py"
CODEX=$CACHE/node_modules/.bin/codex
CLAUDE=$CACHE/node_modules/.bin/claude

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Outside the network namespace: build, install the clients, then re-run this
# script in a namespace whose only network is its own loopback.
# ---------------------------------------------------------------------------
if [[ "${1:-}" != --inner* ]]; then
  wait_for_bench() {
    # Benchmarks on this machine hold this lock: no builds or test runs meanwhile.
    while [ -e /tmp/aiprox-bench.lock ]; do
      log "waiting for /tmp/aiprox-bench.lock"
      sleep 20
    done
  }
  if [ -z "${AIPROX_BIN_DIR:-}" ] && [ "${AIPROX_SKIP_BUILD:-0}" != 1 ]; then
    wait_for_bench
    log "cargo build -p aiprox -p mock-upstream --bins"
    (cd "$ROOT" && cargo build -q -p aiprox -p mock-upstream --bins)
  fi
  for bin in aiprox mock-upstream; do
    [ -x "$BIN_DIR/$bin" ] || { echo "missing $BIN_DIR/$bin" >&2; exit 1; }
  done

  if [ ! -x "$CODEX" ] || [ ! -x "$CLAUDE" ]; then
    log "installing $CODEX_PKG and $CLAUDE_PKG into $CACHE"
    mkdir -p "$CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error "$CODEX_PKG" "$CLAUDE_PKG" >&2
  fi
  # npm 11 skips install scripts: Claude Code's postinstall puts its native binary
  # over a small placeholder; run it once by hand.
  claude_pkg_dir=$CACHE/node_modules/@anthropic-ai/claude-code
  if [ -f "$claude_pkg_dir/bin/claude.exe" ] && [ "$(stat -c %s "$claude_pkg_dir/bin/claude.exe")" -lt 4096 ]; then
    log "node install.cjs (Claude Code's native binary)"
    (cd "$claude_pkg_dir" && node install.cjs >&2)
  fi
  log "clients: codex $("$CODEX" --version 2>/dev/null | awk '{print $NF}'), claude $("$CLAUDE" --version 2>/dev/null | awk '{print $1}')"

  wait_for_bench
  if [ "${AIPROX_CLIENTS_NETNS:-1}" = 1 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
    if unshare -n true 2>/dev/null; then
      exec unshare -n -- bash "$0" --inner-netns
    elif unshare -rn true 2>/dev/null; then
      exec unshare -rn -- bash "$0" --inner-netns
    fi
  fi
  log "no private network namespace (unshare): running on the host's network"
  exec bash "$0" --inner
fi

# ---------------------------------------------------------------------------
# Inside: mock upstream, gateway, the client runs.
# ---------------------------------------------------------------------------
if [ "$1" = --inner-netns ]; then
  ip link set lo up
  NETWORK="private network namespace (loopback only)"
else
  NETWORK="host network (clients configured for loopback only)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aiprox-real-clients.XXXXXX")
RESULTS=$WORK/results.tsv
NOTES=$WORK/notes.txt
: >"$RESULTS"
: >"$NOTES"
MOCK_PID=
GW_PID=
FAILED=0

cleanup() {
  local status=$?
  for pid in $GW_PID $MOCK_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $GW_PID $MOCK_PID; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -eq 0 ] && [ "$FAILED" -eq 0 ] && [ "${AIPROX_KEEP_WORKDIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "logs kept in $WORK" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { printf '%s\n' "$*" | tee -a "$NOTES" >&2; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The mock upstream, on a free port it picks.
"$BIN_DIR/mock-upstream" --listen 127.0.0.1:0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$WORK/mock.out" 2>/dev/null && break
  sleep 0.1
done
MOCK_ADDR=$(sed -n 's/^listening on //p' "$WORK/mock.out")
[ -n "$MOCK_ADDR" ] || { echo "mock-upstream did not start" >&2; cat "$WORK/mock.err" >&2; exit 1; }
MOCK=http://$MOCK_ADDR
log "mock upstream at $MOCK; $NETWORK"

# A client's environment: nothing from ours but PATH (the coding client running
# this script may have ANTHROPIC_* or OPENAI_* variables of its own).
client_env() { # DIR, then NAME=VALUE…
  local dir=$1
  shift
  mkdir -p "$dir/home" "$dir/work"
  env -i PATH="$PATH" LANG=C.UTF-8 TERM=dumb NO_COLOR=1 HOME="$dir/home" "$@"
}

claude_env=(
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1
  DISABLE_AUTOUPDATER=1 ANTHROPIC_API_KEY=sk-aiprox-real-clients
)

# Claude Code's default model: asked straight of the mock once (the mock records
# the request, whatever it answers), so the gateway maps the name this version sends.
probe=$WORK/claude-probe
mkdir -p "$probe/config"
(cd "$probe" && client_env "$probe" CLAUDE_CONFIG_DIR="$probe/config" ANTHROPIC_BASE_URL="$MOCK" "${claude_env[@]}" \
  timeout -k 5 60 "$CLAUDE" -p "Say hi." --output-format json </dev/null >"$probe/out.json" 2>"$probe/err.txt") || true
INVALID_BEFORE=$($HELPERS mock-snapshot "$MOCK" "$probe/mock.json" | cut -f2)
mapfile -t CLAUDE_MODELS < <($HELPERS claude-models "$probe/mock.json")
CLAUDE_MODEL_ENV=()
if [ ${#CLAUDE_MODELS[@]} -eq 0 ]; then
  CLAUDE_MODELS=(claude-sonnet-4-5)
  CLAUDE_MODEL_ENV=(ANTHROPIC_MODEL=claude-sonnet-4-5)
  note "note: could not learn Claude Code's default model from the mock; set ANTHROPIC_MODEL=claude-sonnet-4-5"
else
  log "Claude Code asks for: ${CLAUDE_MODELS[*]}"
fi

# The gateway: the mock as an OpenAI-compatible chat provider, as an Anthropic
# provider and as a native Responses provider; the clients' model names mapped.
GW_PORT=$($HELPERS free-port)
GW=http://127.0.0.1:$GW_PORT
{
  cat <<EOF
providers:
  mock-chat:
    kind: openai
    base_url: $MOCK/v1
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    timeouts: { first_byte: 30s, idle: 30s }
  mock-anthropic:
    kind: anthropic
    base_url: $MOCK
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    timeouts: { first_byte: 30s, idle: 30s }
  mock-responses:
    kind: openai
    base_url: $MOCK/v1
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    responses_api: true
    timeouts: { first_byte: 30s, idle: 30s }
mappings:
  gpt-5.2: { provider: mock-chat, model: gpt-4o }
  gpt-5.2-via-anthropic: { provider: mock-anthropic, model: claude-haiku-4-5 }
  gpt-5.2-native: { provider: mock-responses, model: gpt-5.2 }
EOF
  for m in "${CLAUDE_MODELS[@]}"; do
    printf '  "%s": { provider: mock-chat, model: gpt-4o }\n' "$m"
  done
} >"$WORK/aiprox.yaml"

# Debug level: every line logged inside a request's span names its method and path
# (each upstream call logs its connection), which tells HTTP turns from WebSocket ones.
env -i PATH="$PATH" HOME="$WORK" \
  AIPROX_TEST_PROVIDER_KEY=sk-test-provider-key-0123456789 \
  AIPROX_GATEWAY__AUTH=open AIPROX_GATEWAY__LISTEN="127.0.0.1:$GW_PORT" \
  RUST_LOG="info,gateway=debug,reqwest=debug,hyper_util=debug" \
  "$BIN_DIR/aiprox" gateway --config "$WORK/aiprox.yaml" >"$WORK/gateway.out" 2>"$WORK/gateway.log" &
GW_PID=$!
ready=0
for _ in $(seq 300); do
  if python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('$GW/readyz', timeout=1).status != 200)" 2>/dev/null; then
    ready=1
    break
  fi
  kill -0 "$GW_PID" 2>/dev/null || break
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "gateway not ready" >&2; tail -20 "$WORK/gateway.log" >&2; exit 1; }
log "gateway at $GW"

# After a run: the mock's requests since the last one, the gateway log lines
# written meanwhile. Sets SEEN_N, SEEN_PATHS, INVALID_NEW.
collect() { # RUN_DIR GW_LOG_LINE_BEFORE
  local dir=$1 before=$2 line invalid
  sleep 0.3 # let the gateway finish logging the last stream
  tail -n +"$((before + 1))" "$WORK/gateway.log" >"$dir/gateway.log"
  line=$($HELPERS mock-snapshot "$MOCK" "$dir/mock.json")
  SEEN_N=$(cut -f1 <<<"$line")
  invalid=$(cut -f2 <<<"$line")
  SEEN_PATHS=$(cut -f3 <<<"$line")
  INVALID_NEW=$((invalid - INVALID_BEFORE))
  INVALID_BEFORE=$invalid
}

record() { # CLIENT UPSTREAM TRANSPORT OK SECONDS SEEN, then reasons
  local client=$1 upstream=$2 transport=$3 ok=$4 secs=$5 seen=$6
  shift 6
  local result=ok
  if [ "$ok" != 1 ]; then
    result=failed
    FAILED=1
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$upstream" "$transport" "$result" "$secs" "$seen" >>"$RESULTS"
  local r
  for r in "$@"; do note "  [$client/$upstream/$transport] $r"; done
}

TASK="Reply with one short sentence: what is 2 + 2?"

exit_reason() { # RC: true when 0, else EXIT_REASON says why
  case $1 in
    0) return 0 ;;
    124 | 137) EXIT_REASON="timed out after ${TIMEOUT}s" ;;
    *) EXIT_REASON="exit code $1" ;;
  esac
  return 1
}

run_codex() { # UPSTREAM-LABEL MODEL EXPECTED-MOCK-PATH http|websocket
  local upstream=$1 model=$2 want_path=$3 transport=$4
  local dir=$WORK/codex-$upstream-$transport
  local ws=false
  [ "$transport" = websocket ] && ws=true
  mkdir -p "$dir/codex-home"
  cat >"$dir/codex-home/config.toml" <<EOF
model = "$model"
model_provider = "aiprox"
check_for_update_on_startup = false

[analytics]
enabled = false

# No plugin, app or remote-plugin sync: it would try GitHub.
[features]
plugins = false
remote_plugin = false
apps = false

[model_providers.aiprox]
name = "aiprox"
base_url = "$GW/v1"
env_key = "AIPROX_CLIENT_KEY"
wire_api = "responses"
supports_websockets = $ws
EOF
  log "codex exec: $upstream over $transport (model $model)"
  local before start rc=0 end
  before=$(wc -l <"$WORK/gateway.log")
  start=$(now)
  mkdir -p "$dir/work"
  (cd "$dir/work" && client_env "$dir" CODEX_HOME="$dir/codex-home" AIPROX_CLIENT_KEY=sk-aiprox-real-clients \
    RUST_LOG="warn,codex_api::endpoint::responses_websocket=info" \
    timeout -k 10 "$TIMEOUT" "$CODEX" exec --skip-git-repo-check --json -s read-only "$TASK" \
    </dev/null >"$dir/events.jsonl" 2>"$dir/stderr.txt") || rc=$?
  end=$(now)
  collect "$dir" "$before"
  local posts ok=1 reasons=() msg
  posts=$($HELPERS gateway-requests "$dir/gateway.log" POST /v1/responses)
  exit_reason "$rc" || { ok=0; reasons+=("$EXIT_REASON"); }
  if msg=$($HELPERS codex-check "$dir/events.jsonl"); then
    reasons+=("$msg")
  else
    ok=0
    reasons+=("$msg")
  fi
  [ "$SEEN_N" -gt 0 ] || { ok=0; reasons+=("no request reached the mock"); }
  [ "$SEEN_N" -eq 0 ] || grep -qF "POST $want_path" <<<"$SEEN_PATHS" ||
    { ok=0; reasons+=("the mock saw no POST $want_path: $SEEN_PATHS"); }
  [ "$INVALID_NEW" -eq 0 ] || { ok=0; reasons+=("the mock refused $INVALID_NEW request(s) as invalid"); }
  if [ "$transport" = websocket ]; then
    grep -q "successfully connected to Responses WebSocket" "$dir/stderr.txt" ||
      { ok=0; reasons+=("codex logged no WebSocket connection"); }
    [ "$posts" -eq 0 ] || { ok=0; reasons+=("codex fell back to HTTP: $posts POST /v1/responses at the gateway"); }
    local warm
    warm=$(grep -o 'prewarm setup failed: .*' "$dir/stderr.txt" | head -1 | cut -c1-300 || true)
    [ -z "$warm" ] || reasons+=("warning: codex $warm")
    while IFS= read -r l; do reasons+=("warning: $l"); done < <($HELPERS mock-warnings "$dir/mock.json")
  else
    [ "$posts" -gt 0 ] || { ok=0; reasons+=("no POST /v1/responses seen at the gateway"); }
    ! grep -q "connecting to Responses WebSocket" "$dir/stderr.txt" ||
      { ok=0; reasons+=("codex opened a WebSocket with supports_websockets = false"); }
  fi
  if [ "$ok" != 1 ]; then
    reasons+=("codex stderr (last lines):")
    while IFS= read -r l; do reasons+=("    $l"); done < <(grep -v '^WARNING: proceeding\|^Reading additional input' "$dir/stderr.txt" | tail -8 | cut -c1-400)
  fi
  local seen="mock $SEEN_N ($SEEN_PATHS); gateway POST /v1/responses: $posts"
  record codex "$upstream" "$transport" "$ok" "$(elapsed "$start" "$end")" "$seen" "${reasons[@]}"
}

run_claude() {
  local dir=$WORK/claude-openai-chat
  mkdir -p "$dir/config" "$dir/work"
  log "claude -p: OpenAI-compatible chat upstream (model ${CLAUDE_MODELS[0]})"
  local before start rc=0 end
  before=$(wc -l <"$WORK/gateway.log")
  start=$(now)
  (cd "$dir/work" && client_env "$dir" CLAUDE_CONFIG_DIR="$dir/config" ANTHROPIC_BASE_URL="$GW" \
    "${claude_env[@]}" "${CLAUDE_MODEL_ENV[@]}" \
    timeout -k 10 "$TIMEOUT" "$CLAUDE" -p "$TASK" --output-format json --debug \
    </dev/null >"$dir/result.json" 2>"$dir/stderr.txt") || rc=$?
  end=$(now)
  collect "$dir" "$before"
  local ok=1 reasons=() msg posts counts api_counts
  posts=$($HELPERS gateway-requests "$dir/gateway.log" POST /v1/messages)
  exit_reason "$rc" || { ok=0; reasons+=("$EXIT_REASON"); }
  if msg=$($HELPERS claude-check "$dir/result.json"); then
    reasons+=("$msg")
  else
    ok=0
    reasons+=("$msg")
  fi
  [ "$SEEN_N" -gt 0 ] || { ok=0; reasons+=("no request reached the mock"); }
  [ "$SEEN_N" -eq 0 ] || grep -qF "POST /v1/chat/completions" <<<"$SEEN_PATHS" ||
    { ok=0; reasons+=("the mock saw no POST /v1/chat/completions: $SEEN_PATHS"); }
  [ "$posts" -gt 0 ] || { ok=0; reasons+=("no POST /v1/messages seen at the gateway"); }
  # count_tokens: answered by the gateway itself for an OpenAI-compatible upstream
  # (nothing reaches the mock), so read Claude Code's own debug log of its API calls.
  counts=$(cat "$dir"/config/debug/*.txt 2>/dev/null | grep -c 'API REQUEST\] /v1/messages/count_tokens' || true)
  api_counts=$(cat "$dir"/config/debug/*.txt 2>/dev/null | grep -o 'API REQUEST\] [^ ]*' | sort | uniq -c | awk '{printf "%s%s x%s", sep, $4, $1; sep=", "}' || true)
  if [ "${counts:-0}" -gt 0 ]; then
    reasons+=("called /v1/messages/count_tokens $counts time(s)")
  else
    reasons+=("did not call /v1/messages/count_tokens in -p mode (its API calls: ${api_counts:-none logged})")
  fi
  if [ "$ok" != 1 ]; then
    reasons+=("claude stderr (last lines):")
    while IFS= read -r l; do reasons+=("    $l"); done < <(tail -8 "$dir/stderr.txt" | cut -c1-400)
  fi
  local seen="mock $SEEN_N ($SEEN_PATHS); gateway POST /v1/messages: $posts, count_tokens: ${counts:-0}"
  record claude "openai-chat" http "$ok" "$(elapsed "$start" "$end")" "$seen" "${reasons[@]}"
}

note "details:"
run_codex openai-chat gpt-5.2 /v1/chat/completions http
run_codex openai-chat gpt-5.2 /v1/chat/completions websocket
run_codex anthropic gpt-5.2-via-anthropic /v1/messages http
run_codex anthropic gpt-5.2-via-anthropic /v1/messages websocket
run_codex openai-responses gpt-5.2-native /v1/responses http
run_codex openai-responses gpt-5.2-native /v1/responses websocket
run_claude

echo
$HELPERS table "$RESULTS"
total=$(wc -l <"$RESULTS")
failed=$(grep -c $'\tfailed\t' "$RESULTS" || true)
echo "$((total - failed)) passed, $failed failed"
[ "$FAILED" -eq 0 ]
