#!/usr/bin/env bash
# The benchmarks, one command: builds the release binaries, installs wrk,
# nats-server and PostgreSQL when missing, then measures in one run:
# - the gateway's overhead: the mock upstream directly and through aiprox
#   (bench/gateway.py; its options, `--seconds N` and `--chunks N`, pass through);
# - the logger's ingest rate into PostgreSQL against direct inserts
#   (target/release/logger-ingest 100000);
# - log publishing on versus off, both gateways side by side on one core
#   (bench/publishing-side-by-side.sh), non-streaming then streaming;
# - tracing off, sampled out and at 100 %, three gateways side by side on one
#   core (bench/tracing-side-by-side.sh), non-streaming then streaming;
# - the routing layer, a mapping with three weighted targets against one
#   (bench/routing-side-by-side.sh);
# - a client key with limits and a budget against one without
#   (bench/limits-side-by-side.sh).
# Writes the report, headed by the date and commit, to bench/out/run.md (ignored
# by git) and prints it; its tables are what bench/RESULTS.md shows.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nats-server >/dev/null || need+=(nats-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -p aiprox -p mock-upstream -p logger-ingest -p otlp-sink
OUT=bench/out/run.md
mkdir -p bench/out
{
  echo "# bench/run.sh, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo
} > "$OUT"
python3 bench/gateway.py --out bench/out/gateway.md "$@" >/dev/null
cat bench/out/gateway.md >> "$OUT"
{
  echo
  echo "## Logger ingest into PostgreSQL"
  echo
  echo "\`target/release/logger-ingest 100000\`: 100,000 events with 2 KiB of bodies each, a throw-away PostgreSQL"
  echo "with fsync on and a local nats-server, in the same run: the baseline writes straight to Postgres,"
  echo "the logger consumes them from JetStream (pre-published) through its real loop."
  echo
  ./target/release/logger-ingest 100000
  echo
  echo "## Publishing on versus off, side by side on one core"
  echo
  echo "\`bench/publishing-side-by-side.sh\`: both gateways pinned to CPU 1 and loaded at the same time (wrk, the mock and"
  echo "nats-server on CPU 0), so the machine's drift slows both alike; the ratio of the requests they serve in the same"
  echo "seconds is the cost. Five 10 s runs each."
  echo
  bash bench/publishing-side-by-side.sh | sed -n 1,3p
  KIND=stream bash bench/publishing-side-by-side.sh | sed -n 3p
  echo
  echo "## Tracing off, sampled out and at 100 %, side by side on one core"
  echo
  echo "\`bench/tracing-side-by-side.sh\`: three publishing gateways pinned to CPU 1 and loaded at the same time (wrk, the"
  echo "mock, nats-server and the OTLP receiver on CPU 0); the ratio of the requests each serves in the same seconds is"
  echo "its cost. Five 10 s runs each."
  echo
  bash bench/tracing-side-by-side.sh | sed -n 1,3p
  KIND=stream bash bench/tracing-side-by-side.sh | sed -n 3,5p
  echo
  echo "## The routing layer: three targets against one, side by side on one core"
  echo
  bash bench/routing-side-by-side.sh
  echo
  echo "## Client key limits: a key with limits and a budget against one without"
  echo
  bash bench/limits-side-by-side.sh
} >> "$OUT"
cat "$OUT"
