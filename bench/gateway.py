#!/usr/bin/env python3
"""Gateway overhead benchmark: the same fixed load on the mock upstream directly and
through aiprox, in one run, on loopback only. Standard library only.

Measures requests/s, p50/p99 latency (wrk), the gateway's added latency, its CPU time
per request (utime+stime from /proc) and its peak RSS (VmHWM).
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
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
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

        # Publishing on versus off: a second gateway publishing every request's
        # log event to a local nats-server (JetStream, file storage).
        nats_port = free_port()
        nats = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", str(workdir / "nats")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(nats)
        time.sleep(0.5)
        on_port = free_port()
        gw_on = subprocess.Popen(
            [str(BIN / "aiprox"), "gateway", "--config", str(config)],
            env=dict(
                os.environ,
                AIPROX_GATEWAY__AUTH="open", AIPROX_GATEWAY__LISTEN=f"127.0.0.1:{on_port}",
                AIPROX_NATS_URL=f"nats://127.0.0.1:{nats_port}",
                AIPROX_GATEWAY__EVENTS__SPILL_DIR=str(workdir / "spill"),
                RUST_LOG="warn",
            ),
            stderr=(workdir / "gateway-on.log").open("w"),
        )
        procs.append(gw_on)
        on_url = f"http://127.0.0.1:{on_port}"
        wait_ready(f"{on_url}/readyz")
        publishing = []
        # Off and on alternate, three rounds each (off-on, on-off, off-on), and the
        # medians are compared: a single off-then-on pair on this shared VM is as
        # much a measure of drift between two 10 s windows as of publishing.
        for name, kind in (("non-streaming", "chat"), (f"streaming ({args.chunks} chunks)", "stream")):
            body = json.loads(json.dumps(BODIES[kind]).replace("MODEL", "gpt4"))
            sides = {"off": (gw_url, gw), "on": (on_url, gw_on)}
            for url, _ in sides.values():
                wrk(f"{url}/v1/chat/completions", body, 32, 2, workdir)
            runs = {"off": [], "on": []}
            for order in (("off", "on"), ("on", "off"), ("off", "on")):
                for label in order:
                    url, proc = sides[label]
                    cpu0, nats0 = cpu_seconds(proc.pid), cpu_seconds(nats.pid)
                    r = wrk(f"{url}/v1/chat/completions", body, 32, args.seconds, workdir)
                    r["cpu_us_per_req"] = (cpu_seconds(proc.pid) - cpu0) / max(r["requests"], 1) * 1e6
                    r["nats_us_per_req"] = (cpu_seconds(nats.pid) - nats0) / max(r["requests"], 1) * 1e6
                    runs[label].append(r)
            results = {}
            for label, rs in runs.items():
                rs = sorted(rs, key=lambda r: r["rps"])
                median = dict(rs[len(rs) // 2])
                median["all_rps"] = [r["rps"] for r in runs[label]]
                median["cpu_us_per_req"] = sorted(r["cpu_us_per_req"] for r in rs)[len(rs) // 2]
                median["nats_us_per_req"] = sorted(r["nats_us_per_req"] for r in rs)[len(rs) // 2]
                results[label] = median
            publishing.append((name, results))
            print(f"{name}: off {results['off']['all_rps']}, on {results['on']['all_rps']}", file=sys.stderr)
        with urllib.request.urlopen(f"{on_url}/metrics") as m:
            metrics = m.read().decode()
        published = re.search(r"aiprox_events_published_total (\d+)", metrics)
        dropped = re.search(r"aiprox_events_dropped_total (\d+)", metrics)
        spilled = re.search(r"aiprox_events_spilled_total (\d+)", metrics)
        rss_on = peak_rss_mb(gw_on.pid)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)

    cpu_model = next(
        (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")),
        "unknown",
    )
    lines = [
        "# Gateway benchmark",
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
    lines += [
        "## Log publishing on versus off",
        "",
        "The same gateway binary twice, 32 connections each: without a bus (no logging) and publishing",
        "every request's `LogEvent` to a local `nats-server -js` (awaiting JetStream acks), which shares the cores.",
        f"Three {args.seconds} s runs each, alternating off and on (off-on, on-off, off-on); medians compared, every run listed.",
        "",
        "| scenario | off req/s (median) | on req/s (median) | throughput cost | runs off | runs on | gateway CPU µs/req off / on | nats-server CPU µs/req (on) |",
        "|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for name, r in publishing:
        off, on = r["off"], r["on"]
        lines.append(
            f"| {name} | {off['rps']:,.0f} | {on['rps']:,.0f} | {(1 - on['rps'] / off['rps']) * 100:.1f} % "
            f"| {', '.join(f'{x:,.0f}' for x in off['all_rps'])} | {', '.join(f'{x:,.0f}' for x in on['all_rps'])} "
            f"| {off['cpu_us_per_req']:.0f} / {on['cpu_us_per_req']:.0f} | {on['nats_us_per_req']:.0f} |"
        )
    lines += [
        "",
        f"Events published by the publishing gateway: {published.group(1) if published else '?'}, "
        f"spilled to disk: {spilled.group(1) if spilled else '?'}, dropped: {dropped.group(1) if dropped else '?'}; "
        f"its peak RSS: {rss_on:.1f} MB.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
