#!/usr/bin/env bash
# The gateway benchmark, one command: builds release binaries, installs wrk when
# missing, and measures the mock upstream directly and through aiprox in the same
# run. Writes the report to bench/RESULTS.md (and prints it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if ! command -v wrk >/dev/null; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
command -v nats-server >/dev/null || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server postgresql >/dev/null; }
cargo build --release --locked -p aiprox -p mock-upstream -p logger-ingest
python3 bench/gateway.py "$@"
{
  echo "## Logger ingest into PostgreSQL"
  echo
  echo "\`target/release/logger-ingest 100000\`: 100,000 events with 2 KiB of bodies each, a throw-away PostgreSQL"
  echo "with fsync on and a local nats-server, in the same run: the baseline writes straight to Postgres,"
  echo "the logger consumes them from JetStream (pre-published) through its real loop."
  echo
  ./target/release/logger-ingest 100000
} >> bench/RESULTS.md
{
  echo
  echo "## Publishing on versus off, side by side on one core"
  echo
  echo "\`bench/publishing-side-by-side.sh\`: both gateways pinned to CPU 1 and loaded at the same time (wrk, the mock and"
  echo "nats-server on CPU 0), so the machine's drift slows both alike; the ratio of the requests they serve in the same"
  echo "seconds is the cost. Five 10 s runs each."
  echo
  bash bench/publishing-side-by-side.sh | sed -n 1,3p
  KIND=stream bash bench/publishing-side-by-side.sh | sed -n 3p
} >> bench/RESULTS.md
tail -n 8 bench/RESULTS.md
