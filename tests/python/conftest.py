"""End-to-end harness: real processes, official SDKs.

Starts the `mock-upstream` binary and `aiprox gateway` on free loopback ports for the
session; each test starts with the mock's behaviour reset and its request log empty.
Binaries come from $AIPROX_BIN_DIR (default: target/debug), built by the test script.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("AIPROX_BIN_DIR", ROOT / "target" / "debug"))
PROVIDER_KEY = "sk-test-provider-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@dataclass
class Mock:
    url: str

    def behave(self, **behavior) -> None:
        httpx.put(f"{self.url}/_mock/behavior", json=behavior).raise_for_status()

    def requests(self) -> list[dict]:
        return httpx.get(f"{self.url}/_mock/requests").json()

    def last_request(self) -> dict:
        return self.requests()[-1]

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_mock/stats").json()["stats"]

    def invalid_reasons(self) -> list[str]:
        return httpx.get(f"{self.url}/_mock/stats").json()["invalid_reasons"]

    def reset(self) -> None:
        self.behave()
        httpx.delete(f"{self.url}/_mock/requests").raise_for_status()


@dataclass
class Gateway:
    url: str
    log: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def gateway_config(mock_url: str) -> str:
    """The session gateway's config: the mock as an OpenAI-compatible chat server
    (`mock`), as an Anthropic one (`claude`) and as a server with the Responses API
    (`mock_native`), and the demo provider."""
    return f"""
providers:
  mock:
    kind: openai
    base_url: {mock_url}/v1
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    models: [gpt-4o]
    timeouts: {{ idle: 2s, first_byte: 5s }}
  mock_native:
    kind: openai
    base_url: {mock_url}/v1
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    responses_api: true
    timeouts: {{ idle: 2s, first_byte: 5s }}
  claude:
    kind: anthropic
    base_url: {mock_url}
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    timeouts: {{ idle: 2s, first_byte: 5s }}
  demo:
    kind: demo
mappings:
  gpt4: {{ provider: mock, model: gpt-4o }}
  native: {{ provider: mock_native, model: gpt-5.2 }}
  claude: {{ provider: claude, model: claude-haiku-4-5 }}
  demo: {{ provider: demo, model: echo }}
"""


def start_gateway(config: Path, log: Path, **env_extra: str) -> tuple[subprocess.Popen, Gateway]:
    """`aiprox gateway` on a free port, open auth, started and ready."""
    port = free_port()
    env = dict(
        os.environ,
        AIPROX_TEST_PROVIDER_KEY=PROVIDER_KEY,
        AIPROX_GATEWAY__AUTH="open",
        AIPROX_GATEWAY__LISTEN=f"127.0.0.1:{port}",
        RUST_LOG="debug",
        **env_extra,
    )
    proc = subprocess.Popen(
        [str(BIN_DIR / "aiprox"), "gateway", "--config", str(config)],
        env=env,
        stderr=log.open("w"),
    )
    gateway = Gateway(url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_ready(f"{gateway.url}/readyz", proc)
    except BaseException:
        stop(proc)
        raise
    return proc, gateway


def start_nats(store_dir: Path, timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """A throw-away `nats-server -js` on a free port; returns it and its URL once it
    accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"nats-server not listening on {port} after {timeout}s")
            time.sleep(0.05)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def stack():
    procs: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="aiprox-e2e-"))
    try:
        mock_proc = subprocess.Popen(
            [str(BIN_DIR / "mock-upstream"), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(mock_proc)
        line = mock_proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        mock = Mock(url="http://" + line.removeprefix("listening on "))

        config = workdir / "aiprox.yaml"
        config.write_text(gateway_config(mock.url))
        gw_proc, gateway = start_gateway(config, workdir / "gateway.log")
        procs.append(gw_proc)
        yield gateway, mock
    finally:
        for p in reversed(procs):
            stop(p)


@pytest.fixture
def gateway(stack) -> Gateway:
    return stack[0]


@pytest.fixture
def mock(stack) -> Mock:
    m = stack[1]
    m.reset()
    return m
