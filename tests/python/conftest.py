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
        config.write_text(
            f"""
providers:
  mock:
    kind: openai
    base_url: {mock.url}/v1
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    models: [gpt-4o]
    timeouts: {{ idle: 2s, first_byte: 5s }}
  claude:
    kind: anthropic
    base_url: {mock.url}
    api_key_env: AIPROX_TEST_PROVIDER_KEY
    timeouts: {{ idle: 2s, first_byte: 5s }}
  demo:
    kind: demo
mappings:
  gpt4: {{ provider: mock, model: gpt-4o }}
  claude: {{ provider: claude, model: claude-haiku-4-5 }}
  demo: {{ provider: demo, model: echo }}
"""
        )
        port = free_port()
        log = workdir / "gateway.log"
        env = dict(
            os.environ,
            AIPROX_TEST_PROVIDER_KEY=PROVIDER_KEY,
            AIPROX_GATEWAY__AUTH="open",
            AIPROX_GATEWAY__LISTEN=f"127.0.0.1:{port}",
            RUST_LOG="debug",
        )
        gw_proc = subprocess.Popen(
            [str(BIN_DIR / "aiprox"), "gateway", "--config", str(config)],
            env=env,
            stderr=log.open("w"),
        )
        procs.append(gw_proc)
        gateway = Gateway(url=f"http://127.0.0.1:{port}", log=log)
        wait_ready(f"{gateway.url}/readyz", gw_proc)
        yield gateway, mock
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def gateway(stack) -> Gateway:
    return stack[0]


@pytest.fixture
def mock(stack) -> Mock:
    m = stack[1]
    m.reset()
    return m
