#!/usr/bin/env bash
# The gateway benchmark, one command: builds release binaries, installs wrk when
# missing, and measures the mock upstream directly and through aiprox in the same
# run. Writes the report to bench/RESULTS.md (and prints it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -p aiprox -p mock-upstream
exec python3 bench/gateway.py "$@"
