#!/usr/bin/env bash
# Memory under large bodies: `aiprox all` (built-in demo set-up, defaults) sent
# CONCURRENCY (default 16) requests at once, each a 30 MiB body (a chat message
# carrying a 30 MiB base64 image), ROUNDS (default 3) times; RSS before, its peak
# during, and after the burst (5 s, then 30 s later). Prints a markdown row.
# Usage: BIN=target/release bash bench/large-bodies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-target/release}")
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
GW=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && exec env AIPROX_GATEWAY__LISTEN=127.0.0.1:$GW RUST_LOG=warn "$BIN/aiprox" all >"$WORK/aiprox.log" 2>&1) &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW/readyz" >/dev/null && break; sleep 0.1; done
python3 - "$PID" "$GW" "${CONCURRENCY:-16}" "${ROUNDS:-3}" <<'P'
import base64, concurrent.futures, json, os, sys, threading, time, urllib.request
pid, port, concurrency, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
image = base64.b64encode(os.urandom(30 * 1024 * 1024 * 3 // 4)).decode()
body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "what is this?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}}]}]}).encode()
def send(_):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError) as e:
        # Refused with 503 before the whole body was sent: the server answered
        # and closed while the client was still writing.
        return "closed early (503)"
before = rss()
peak = [before]
done = threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.05)
threading.Thread(target=watch, daemon=True).start()
statuses = {}
started = time.time()
with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    for _ in range(rounds):
        for status in pool.map(send, range(concurrency)):
            statuses[status] = statuses.get(status, 0) + 1
elapsed = time.time() - started
time.sleep(5)
after5 = rss()
time.sleep(25)
after30 = rss()
done.set()
print("| requests (30 MiB each) | statuses | time | RSS before | RSS peak | RSS 5 s after | RSS 30 s after |")
print("|---|---|---:|---:|---:|---:|---:|")
print(f"| {rounds} × {concurrency} at once | {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items(), key=str))} | {elapsed:.1f} s | {before} MB | {peak[0]} MB | {after5} MB | {after30} MB |")
P
