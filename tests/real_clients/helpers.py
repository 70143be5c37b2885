"""JSON chores for run.sh: free ports, the mock's request log, the clients' output,
the gateway log and the summary table. Standard library only.

    helpers.py free-port
    helpers.py mock-snapshot MOCK_URL OUT.json   # the mock's log and stats, then clears the log
    helpers.py claude-models SNAPSHOT.json       # the model names Claude Code asked for
    helpers.py mock-warnings SNAPSHOT.json       # Responses bodies a real upstream may refuse
    helpers.py codex-check EVENTS.jsonl          # exit 1 unless a final agent message came
    helpers.py claude-check RESULT.json          # exit 1 unless a successful result came
    helpers.py gateway-requests LOG METHOD PATH  # distinct gateway requests in a log slice
    helpers.py table RESULTS.tsv                 # the summary
"""

from __future__ import annotations

import json
import re
import socket
import sys
import urllib.request


def free_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def mock_snapshot(url: str, out: str) -> None:
    with urllib.request.urlopen(f"{url}/_mock/requests", timeout=10) as r:
        requests = json.load(r)
    with urllib.request.urlopen(f"{url}/_mock/stats", timeout=10) as r:
        stats = json.load(r)
    req = urllib.request.Request(f"{url}/_mock/requests", method="DELETE")
    urllib.request.urlopen(req, timeout=10).close()
    with open(out, "w") as f:
        json.dump({"requests": requests, **stats}, f, indent=1)
    paths: dict[str, int] = {}
    for r in requests:
        key = f"{r['method']} {r['path']}"
        paths[key] = paths.get(key, 0) + 1
    # One line for the shell: count, invalid count, then "METHOD PATH xN" parts.
    parts = ", ".join(f"{k} x{n}" for k, n in sorted(paths.items()))
    print(len(requests), stats["stats"]["invalid_requests"], parts, sep="\t")


def claude_models(snapshot: str) -> None:
    with open(snapshot) as f:
        requests = json.load(f)["requests"]
    names = []
    for r in requests:
        body = r.get("body")
        if r["path"].startswith("/v1/messages") and isinstance(body, dict):
            model = body.get("model")
            if isinstance(model, str) and model not in names:
                names.append(model)
    print("\n".join(names))


def mock_warnings(snapshot: str) -> None:
    """Requests the mock answered but OpenAI's HTTP Responses API would likely not:
    `generate` (a WebSocket-only warm-up flag) and a `previous_response_id` sent
    with `store: false` (such responses are not kept server-side over HTTP)."""
    with open(snapshot) as f:
        requests = json.load(f)["requests"]
    for i, r in enumerate(requests):
        body = r.get("body")
        if r["path"] != "/v1/responses" or not isinstance(body, dict):
            continue
        if "generate" in body:
            print(
                f"upstream request {i + 1} carried generate={json.dumps(body['generate'])}"
                f" with {len(body.get('input') or [])} input item(s): the warm-up went upstream"
            )
        if body.get("previous_response_id") and body.get("store") is False:
            print(
                f"upstream request {i + 1} named previous_response_id="
                f"{body['previous_response_id']} with store=false"
            )


def read_jsonl(path: str) -> list[dict]:
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def codex_check(path: str) -> None:
    events = read_jsonl(path)
    failures = [e for e in events if e.get("type") in ("error", "turn.failed")]
    messages = [
        e["item"].get("text", "")
        for e in events
        if e.get("type") == "item.completed"
        and isinstance(e.get("item"), dict)
        and e["item"].get("type") == "agent_message"
    ]
    completed = any(e.get("type") == "turn.completed" for e in events)
    if failures:
        print("codex reported: " + json.dumps(failures[0])[:400])
        sys.exit(1)
    if not completed or not messages or not messages[-1].strip():
        print("no turn.completed with a final agent message in the JSON events")
        sys.exit(1)
    print("final agent message: " + messages[-1].replace("\n", " ")[:160])


def claude_check(path: str) -> None:
    try:
        with open(path) as f:
            result = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"no JSON result: {e}")
        sys.exit(1)
    if result.get("type") != "result" or result.get("is_error") or not str(
        result.get("result", "")
    ).strip():
        print("claude reported: " + json.dumps(result)[:400])
        sys.exit(1)
    print(
        f"result ({result.get('num_turns')} turns, stop {result.get('stop_reason')}): "
        + str(result["result"]).replace("\n", " ")[:160]
    )


def gateway_requests(log: str, method: str, path: str) -> None:
    """Distinct request ids of METHOD PATH in the gateway log (debug level: each
    request's span names its method and path on every line logged inside it)."""
    pattern = re.compile(
        r'request\{request_id=(\S+) method=' + re.escape(method) + r' path="' + re.escape(path) + r'"\}'
    )
    ids = set()
    with open(log, errors="replace") as f:
        for line in f:
            m = pattern.search(line)
            if m:
                ids.add(m.group(1))
    print(len(ids))


def table(path: str) -> None:
    header = ["client", "upstream", "transport", "result", "seconds", "requests seen"]
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(line.rstrip("\n").split("\t")[: len(header)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    print(line)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print(line)
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    print(line)


def main() -> None:
    cmd, *args = sys.argv[1:]
    {
        "free-port": free_port,
        "mock-snapshot": mock_snapshot,
        "claude-models": claude_models,
        "mock-warnings": mock_warnings,
        "codex-check": codex_check,
        "claude-check": claude_check,
        "gateway-requests": gateway_requests,
        "table": table,
    }[cmd](*args)


if __name__ == "__main__":
    main()
