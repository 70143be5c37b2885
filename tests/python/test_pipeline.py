"""The official `openai` SDK through the whole microservice split: `aiprox gateway`,
`aiprox logger` and `aiprox media` as separate processes, on a throw-away PostgreSQL
and `nats-server -js`; the log rows and media files checked in the database and on
disk."""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from openai import OpenAI

import otlp_receiver
from conftest import BIN_DIR, free_port, start_nats, wait_ready


def pg_bin(tool: str) -> str:
    return sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1] + "/" + tool


def as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


ADMIN_TOKEN = "split-admin-token-0123456789"


@pytest.fixture(scope="module")
def split(mock_url):
    work = Path(tempfile.mkdtemp(prefix="aiprox-split-"))
    procs: list[subprocess.Popen] = []
    # Its own top-level directory: initdb runs as `postgres`, which cannot enter ours.
    pgdir = Path(tempfile.mkdtemp(prefix="aiprox-split-pg-"))
    if os.geteuid() == 0:
        shutil.chown(pgdir, "postgres", "postgres")
    pg_port = free_port()
    subprocess.run(as_postgres([pg_bin("initdb"), "-D", str(pgdir / "data"), "-U", "postgres", "--auth=trust", "--no-sync"]), check=True, capture_output=True)
    subprocess.run(
        as_postgres([pg_bin("pg_ctl"), "-D", str(pgdir / "data"), "-l", str(pgdir / "log"), "-w", "start",
                     "-o", f"-p {pg_port} -c listen_addresses=127.0.0.1 -k {pgdir} -c fsync=off"]),
        check=True,
        capture_output=True,
    )
    nats, nats_url = start_nats(work / "nats")
    procs.append(nats)
    # Every component exports its spans to a real OTLP/gRPC receiver.
    otlp, otlp_server = otlp_receiver.start()
    gw_port = free_port()
    config = work / "aiprox.yaml"
    config.write_text(
        f"providers:\n  mock: {{kind: openai, base_url: '{mock_url}/v1'}}\nmappings:\n  gpt4: {{provider: mock, model: gpt-4o}}\n"
        "gateway:\n  prices: {prom-a: {input: 2.5, output: 10.0}}\n"
    )
    env = dict(
        os.environ,
        AIPROX_DATABASE_URL=f"postgres://postgres@127.0.0.1:{pg_port}/postgres",
        AIPROX_NATS_URL=nats_url,
        AIPROX_MEDIA_ROOT=str(work / "media"),
        AIPROX_GATEWAY__AUTH="open",
        AIPROX_GATEWAY__LISTEN=f"127.0.0.1:{gw_port}",
        AIPROX_GATEWAY__EVENTS__SPILL_DIR=str(work / "spill"),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp.port}",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    time.sleep(0.3)
    # Every component with its health and metrics on a port of its own.
    ops = {c: free_port() for c in ["logger", "media", "admin", "gateway"]}
    admin_port = free_port()
    for component, port in ops.items():
        own = dict(env, AIPROX_OPS__LISTEN=f"127.0.0.1:{port}")
        if component == "admin":
            own.update(AIPROX_ADMIN_TOKEN=ADMIN_TOKEN, AIPROX_ADMIN__LISTEN=f"127.0.0.1:{admin_port}")
        procs.append(subprocess.Popen([str(BIN_DIR / "aiprox"), component, "--config", str(config)], env=own,
                                      stderr=(work / f"{component}.log").open("w")))
        wait_ready(f"http://127.0.0.1:{port}/readyz", procs[-1])
    wait_ready(f"http://127.0.0.1:{gw_port}/readyz", procs[-1])

    def sql(query: str) -> list[list[str]]:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-At", "-F", "\t", "-c", query],
                             check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    try:
        yield {"url": f"http://127.0.0.1:{gw_port}/v1", "sql": sql, "media": work / "media", "ops": ops, "work": work,
               "admin": f"http://127.0.0.1:{admin_port}", "otlp": otlp}
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", str(pgdir / "data"), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pgdir, ignore_errors=True)
        otlp_server.stop(0)


@pytest.fixture(scope="module")
def mock_url(stack):
    return stack[1].url


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_requests_are_logged_with_tokens_times_bodies_and_media(split, mock):
    client = OpenAI(base_url=split["url"], api_key="sk-client", max_retries=0)
    plain = client.chat.completions.with_raw_response.create(
        model="gpt4", messages=[{"role": "user", "content": "What is the capital of France?"}]
    )
    plain_id = plain.headers["x-request-id"]
    assert plain.parse().choices[0].message.content == "The capital of France is Paris."

    stream = client.chat.completions.with_raw_response.create(
        model="gpt4", messages=[{"role": "user", "content": "What is the capital of Mexico?"}], stream=True
    )
    stream_id = stream.headers["x-request-id"]
    chunks = list(stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The capital of Mexico is Mexico City."
    assert all(c.usage is None for c in chunks), "usage was not asked for: the gateway hides its chunk"

    image = bytes((i * 2654435761 >> 13) & 0xFF for i in range(5 * 1024 * 1024))
    sha = hashlib.sha256(image).hexdigest()
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    image_ids = []
    for _ in range(2):
        r = client.chat.completions.with_raw_response.create(
            model="gpt4",
            messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}]}],
        )
        image_ids.append(r.headers["x-request-id"])

    sql = split["sql"]
    wait_for(lambda: int(sql("SELECT count(*) FROM request_logs")[0][0]) == 4)
    # Bodies hold newlines: fetch them as JSON-escaped text, one row a line.
    rows = {r[0]: r for r in sql(
        "SELECT l.request_id, l.input_tokens, l.output_tokens, l.latency_us, l.ttft_us, l.stream, "
        "to_json(c.response_body)::text, to_json(c.request_body)::text "
        "FROM request_logs l JOIN request_contents c USING (request_id, received_at)")}
    rows = {k: v[:6] + [json.loads(v[6]), json.loads(v[7])] for k, v in rows.items()}
    p = rows[plain_id]
    assert (p[1], p[2], p[5]) == ("24", "8", "f")
    assert int(p[3]) > 0 and p[4] == "0"
    s = rows[stream_id]
    assert (s[1], s[2], s[5]) == ("14", "8", "t")
    assert 0 < int(s[4]) <= int(s[3])
    assert json.loads(s[6])["choices"][0]["message"]["content"] == "The capital of Mexico is Mexico City."
    for image_id in image_ids:
        assert f"aiprox-media://{sha}" in rows[image_id][7]
    assert sql(f"SELECT count(*) FROM request_media WHERE sha256 = '{sha}'")[0][0] == "2"
    assert sql("SELECT sum(requests), sum(input_tokens) FROM usage_rollups")[0] == ["4", str(24 + 14 + 24 + 24)]

    path = split["media"] / sha[:2] / f"{sha}.png"
    wait_for(path.exists)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert [p for p in split["media"].rglob("*") if p.is_file()] == [path]


def test_prometheus_scrapes_all_four_services_and_counts_the_requests_by_model(split):
    """A real Prometheus scrapes the ops listener of gateway, logger, media and
    admin; PromQL returns the requests sent, by model."""
    import httpx

    summary = httpx.get(f"{split['admin']}/api/v1/stats/summary?from=0&to={int(time.time() * 1000)}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert summary.status_code == 200, summary.text
    for component, port in split["ops"].items():
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        expected = {
            "gateway": "aiprox_gateway_requests_total",
            "logger": "aiprox_logger_rows_written_total",
            "media": "aiprox_media_written_bytes_total",
            "admin": "aiprox_admin_request_duration_seconds",
        }[component]
        assert f"# TYPE {expected.removesuffix('_total')}" in text, (component, text[:500])
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200

    client = OpenAI(base_url=split["url"], api_key="sk-client", max_retries=0)
    sent = {"mock/prom-a": 3, "mock/prom-b": 2}
    for model, n in sent.items():
        for _ in range(n):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is the capital of France?"}])

    work = split["work"]
    prom_port = free_port()
    targets = "\n".join(
        f"  - job_name: {c}\n    static_configs: [{{targets: ['127.0.0.1:{p}']}}]" for c, p in split["ops"].items()
    )
    (work / "prometheus.yml").write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n{targets}\n")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("w"),
    )
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        def up() -> bool:
            try:
                active = httpx.get(f"{api}/targets").json()["data"]["activeTargets"]
            except (httpx.HTTPError, ValueError):
                return False
            return sorted(t["labels"]["job"] for t in active if t["health"] == "up") == sorted(split["ops"])
        wait_for(up, timeout=60)

        def by_model() -> dict[str, int] | None:
            query = 'sum by (model) (aiprox_gateway_requests_total{model=~"mock/prom-.*"})'
            result = httpx.get(f"{api}/query", params={"query": query}).json()["data"]["result"]
            got = {r["metric"]["model"]: int(float(r["value"][1])) for r in result}
            return got if got == sent else None
        assert wait_for(by_model, timeout=60) == sent
        dashboards_use_only_exported_metrics(split["ops"])
    finally:
        prom.terminate()
        prom.wait(timeout=15)


def dashboards_use_only_exported_metrics(ops: dict[str, int]) -> None:
    """Every metric a Grafana dashboard of deploy/grafana queries is one the live
    services export (a histogram's `_bucket`, `_sum` and `_count` included)."""
    import re

    import httpx

    exported: set[str] = set()
    for port in ops.values():
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
            if line and not line.startswith("#"):
                exported.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    grafana = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
    for board in sorted(grafana.glob("*.json")):
        data = json.loads(board.read_text())
        assert data["templating"]["list"][0]["type"] == "datasource"
        # Metric names only: label names (in `by (…)` and `{…}`) left out.
        exprs = [re.sub(r"by \([^)]*\)|\{[^}]*\}", "", t["expr"]) for p in data["panels"] for t in p["targets"]]
        used = {m for e in exprs for m in re.findall(r"\b((?:aiprox|gen_ai)_[a-z_]+)", e)}
        assert used, board.name
        assert used <= exported, f"{board.name} queries metrics no service exports: {sorted(used - exported)}"


def test_one_request_is_one_trace_from_the_gateway_through_nats_to_the_logger_and_media(split):
    """Every component exports to a real OTLP/gRPC receiver: the gateway's server
    span and its GenAI client span with the conventions' attributes make one trace;
    the log batch's `send` span and the logger's and the media writer's batch spans
    link to it through the traceparent the messages carry; the admin API has spans
    too. No prompt text and no key in any span."""
    import httpx

    otlp = split["otlp"]
    client = OpenAI(base_url=split["url"], api_key="sk-client", max_retries=0)
    image = bytes((i * 40503 >> 7) & 0xFF for i in range(64 * 1024))
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt4",
        max_tokens=40,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "a private prompt about an image"},
            {"type": "image_url", "image_url": {"url": url}},
        ]}],
    )
    request_id = raw.headers["x-request-id"]
    answer = raw.parse()

    # The request's server span carries its log id; the GenAI call is its child.
    def gateway_server(spans):
        return [s for s in spans if s.service == "aiprox-gateway" and s.name == "POST /v1/chat/completions"
                and s.attributes().get("aiprox.request_id") == request_id]

    otlp.wait_for(gateway_server)
    server = gateway_server(otlp.spans)[0]
    trace_id = server.trace_id

    def gateway_call(spans):
        return [s for s in spans if s.trace_id == trace_id and s.name.startswith("chat ")]

    otlp.wait_for(gateway_call)
    call = gateway_call(otlp.spans)[0]
    assert call.name == "chat gpt-4o"
    attrs = call.attributes()
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == answer.model
    assert attrs["gen_ai.request.max_tokens"] == 40
    assert attrs["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attrs["gen_ai.response.finish_reasons"] == [answer.choices[0].finish_reason]
    assert attrs["server.address"] == "127.0.0.1"

    assert call.parent_span_id == server.span_id
    assert server.attributes()["http.response.status_code"] == 200
    assert server.attributes()["aiprox.request_id"] == request_id

    # The logger's and the media writer's batch spans link to the request.
    def linked(service, name):
        def find(spans):
            return [s for s in spans if s.service == service and s.name == name and (trace_id, server.span_id) in s.links()]
        return find

    logger = linked("aiprox-logger", "process aiprox.log.v1")
    batch = logger(otlp.wait_for(logger))[0]
    assert batch.attributes()["messaging.system"] == "nats"
    assert batch.attributes()["messaging.batch.message_count"] >= 1
    media = linked("aiprox-media", "process aiprox.media.v1")
    otlp.wait_for(media)
    publish = linked("aiprox-gateway", "send aiprox.log.v1")
    otlp.wait_for(publish)

    # The admin API: a server span per call, named by its route.
    httpx.get(f"{split['admin']}/api/v1/logs/{request_id}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    otlp.wait_for(lambda spans: any(s.service == "aiprox-admin" and s.name == "GET /api/v1/logs/{id}" for s in spans))

    for span in otlp.spans:
        for value in span.attributes().values():
            assert "private prompt" not in str(value), span.name
            assert "sk-client" not in str(value), span.name
