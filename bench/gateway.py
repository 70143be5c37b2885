#!/usr/bin/env python3
"""Gateway overhead benchmark: the same fixed load on the mock upstream directly and
through aiprox, in one run, on loopback only. Standard library only.

Measures requests/s, p50/p99 latency (wrk), the gateway's added latency, its CPU time
per request (utime+stime from /proc) and its peak RSS (VmHWM). The gateway runs
without a bus (no logging): what publishing costs is measured by
bench/publishing-side-by-side.sh. Run by bench/run.sh, which builds the binaries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release"
CLK_TCK = os.sysconf("SC_CLK_TCK")

BODIES = {
    "chat": {"model": "MODEL", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
    "stream": {
        "model": "MODEL",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def to_ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[unit]


def wrk(url: str, body: dict, connections: int, seconds: int, workdir: Path, pace_ms: int = 0) -> dict:
    """Closed-loop load; with pace_ms, each connection waits that long between
    requests, for latency at a fixed moderate rate instead of at saturation."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{json.dumps(body)}]==]\n"
        + (f"function delay() return {pace_ms} end\n" if pace_ms else "")
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": requests,
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "gateway.md"))
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="aiprox-bench-"))
    procs = []
    try:
        mock = subprocess.Popen(
            [str(BIN / "mock-upstream"), "--no-record", "--chunks", str(args.chunks)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(mock)
        mock_addr = mock.stdout.readline().strip().removeprefix("listening on ")
        mock_url = f"http://{mock_addr}"

        config = workdir / "aiprox.yaml"
        config.write_text(
            f"providers:\n  mock: {{kind: openai, base_url: '{mock_url}/v1'}}\n"
            "mappings:\n  gpt4: {provider: mock, model: gpt-4o}\n"
        )
        port = free_port()
        gw = subprocess.Popen(
            [str(BIN / "aiprox"), "gateway", "--config", str(config)],
            env=dict(os.environ, AIPROX_GATEWAY__AUTH="open", AIPROX_GATEWAY__LISTEN=f"127.0.0.1:{port}", RUST_LOG="warn"),
            stderr=(workdir / "gateway.log").open("w"),
        )
        procs.append(gw)
        gw_url = f"http://127.0.0.1:{port}"
        wait_ready(f"{gw_url}/readyz")

        # (name, body, connections, pause per connection between requests in ms)
        scenarios = [
            ("non-streaming, saturated", "chat", 32, 0),
            ("non-streaming, saturated", "chat", 8, 0),
            ("non-streaming, paced (~1,500 req/s)", "chat", 8, 5),
            (f"streaming ({args.chunks} chunks), saturated", "stream", 32, 0),
            (f"streaming ({args.chunks} chunks), saturated", "stream", 8, 0),
            (f"streaming ({args.chunks} chunks), paced", "stream", 8, 5),
        ]
        rows = []
        for name, kind, conns, pace in scenarios:
            # Warm up connection pools on both paths.
            for url, model in ((mock_url, "gpt-4o"), (gw_url, "gpt4")):
                body = json.loads(json.dumps(BODIES[kind]).replace("MODEL", model))
                wrk(f"{url}/v1/chat/completions", body, conns, 1, workdir)
            direct_body = json.loads(json.dumps(BODIES[kind]).replace("MODEL", "gpt-4o"))
            direct = wrk(f"{mock_url}/v1/chat/completions", direct_body, conns, args.seconds, workdir, pace)
            gw_body = json.loads(json.dumps(BODIES[kind]).replace("MODEL", "gpt4"))
            cpu0 = cpu_seconds(gw.pid)
            via = wrk(f"{gw_url}/v1/chat/completions", gw_body, conns, args.seconds, workdir, pace)
            cpu = cpu_seconds(gw.pid) - cpu0
            via["cpu_us_per_req"] = cpu / max(via["requests"], 1) * 1e6
            rows.append((name, conns, direct, via))
            print(f"{name} c={conns}: direct {direct['rps']:.0f} req/s, via gateway {via['rps']:.0f} req/s", file=sys.stderr)
        rss = peak_rss_mb(gw.pid)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)

    cpu_model = next(
        (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")),
        "unknown",
    )
    lines = [
        "## Gateway overhead",
        "",
        f"`bash bench/run.sh` on {os.cpu_count()} cores ({cpu_model}), {time.strftime('%Y-%m-%d')}.",
        f"wrk (2 threads), the mock upstream and the gateway share the cores; each row runs {args.seconds} s",
        "against the mock directly, then the same load through aiprox, in the same run.",
        "CPU is the gateway process's user+system time divided by the requests it served.",
        "",
        "| scenario | conns | direct req/s | via aiprox req/s | direct p50 / p99 ms | via aiprox p50 / p99 ms | added p50 / p99 ms | gateway CPU µs/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, conns, d, v in rows:
        lines.append(
            f"| {name} | {conns} | {d['rps']:,.0f} | {v['rps']:,.0f} | {d['p50']:.2f} / {d['p99']:.2f} "
            f"| {v['p50']:.2f} / {v['p99']:.2f} | {v['p50'] - d['p50']:.2f} / {v['p99'] - d['p99']:.2f} "
            f"| {v['cpu_us_per_req']:.0f} | {d['non2xx'] + v['non2xx']} {v['socket_errors']} |"
        )
    lines += ["", f"Gateway peak RSS over the whole run: **{rss:.1f} MB**.", ""]
    report = "\n".join(lines)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
