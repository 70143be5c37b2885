#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers a client can reach (crates/llm), for a
# bounded time per target. See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to every target in
# fuzz/fuzz_targets. Exits non-zero when a target crashed (a panic, an
# AddressSanitizer report, a timeout or running out of memory), after printing
# the path of each input that did it (fuzz/artifacts/<target>/).
#
# Environment:
#   CARGO_TARGET_DIR  build directory (default: fuzz/target)
#   FUZZ_SANITIZER    address (default) or none
#   FUZZ_TIMEOUT      seconds one input may take before it counts as a hang (10)
#   FUZZ_MAX_LEN      the longest input tried, in bytes (20000: the longest
#                     recorded stream fits)
#
# One fuzzing process at a time (-jobs=1 -workers=1), one build: it runs on
# shared machines.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in "$fuzz"/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi
sanitizer=${FUZZ_SANITIZER:-address}
timeout=${FUZZ_TIMEOUT:-10}
max_len=${FUZZ_MAX_LEN:-20000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$fuzz/target}
# cargo-fuzz passes -Z flags (-Zsanitizer, sanitizer coverage) to rustc, which a
# stable compiler accepts only with RUSTC_BOOTSTRAP=1. With it, the stable
# toolchain builds the targets with AddressSanitizer: no nightly needed.
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Seeds: the recorded vendor payloads, copied afresh on every run. The
# repository's own fixtures/ always; ../shared/fixtures/ too where it exists.
seed() {
    local target=$1
    shift
    local dir="$fuzz/seeds/$target"
    rm -rf "$dir"
    mkdir -p "$dir"
    local origin src pattern f
    for origin in repo shared; do
        src="$root/fixtures"
        [ "$origin" = shared ] && src="$root/../shared/fixtures"
        [ -d "$src" ] || continue
        for pattern in "$@"; do
            for f in "$src"/$pattern; do
                [ -f "$f" ] || continue
                cp "$f" "$dir/$origin-$(basename "$(dirname "$f")")-$(basename "$f")"
            done
        done
    done
}
seed openai_request 'openai/chat_request*.json' 'openai/embeddings_request*.json'
seed anthropic_request 'anthropic/messages_request*.json' 'anthropic/count_tokens_request*.json'
# The streams the translators read (the Responses API's are not this crate's).
seed sse_frames 'openai/*.sse' 'anthropic/*.sse'

cd "$fuzz"
echo "== building the fuzz targets (sanitizer: $sanitizer, target dir: $CARGO_TARGET_DIR)"
cargo fuzz build --sanitizer "$sanitizer"

crashed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz/corpus/$target"
    artifacts="$fuzz/artifacts/$target"
    logs="$fuzz/artifacts/logs/$target"
    mkdir -p "$corpus" "$artifacts" "$logs"
    marker=$(mktemp)
    echo "== $target: ${seconds}s, corpus $corpus, seeds $(find "$fuzz/seeds/$target" -type f | wc -l)"
    status=0
    # -jobs=1 -workers=1: one fuzzing process, its output in fuzz-0.log (the
    # working directory's); cargo fuzz sets -artifact_prefix to $artifacts/.
    (cd "$logs" && rm -f fuzz-*.log && cargo fuzz run --sanitizer "$sanitizer" "$target" \
        "$corpus" "$fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout="$timeout" -max_len="$max_len" -dict="$fuzz/dicts/llm.dict" \
        -print_final_stats=1 -jobs=1 -workers=1) \
        || status=$?
    log="$logs/fuzz-0.log"
    if [ -f "$log" ]; then
        last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
        summary+=("$target: ${execs:-?} executions, ${rate:-?} exec/s; last: ${last:-none}")
    fi
    found=$(find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    rm -f "$marker"
    if [ "$status" -ne 0 ] || [ -n "$found" ]; then
        [ -f "$log" ] && grep -E -A 30 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY' "$log" | head -n 60
        crashed+=("$target (exit $status): ${found:-no artifact, see $log}")
    fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#crashed[@]} -gt 0 ]; then
    echo "== CRASHES (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer <target> <artifact>)"
    printf '%s\n' "${crashed[@]}"
    exit 1
fi
echo "== no crash"
