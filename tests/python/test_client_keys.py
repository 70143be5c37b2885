"""Client API keys through the official SDKs: `aiprox all` (SQLite, in-process bus)
with the admin API; a key created through the admin API works with the `openai`
and `anthropic` SDKs, a wrong or revoked one raises their AuthenticationError, and
the key id lands in the log."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from conftest import BIN_DIR, PROVIDER_KEY, free_port, wait_ready

ADMIN_TOKEN = "python-admin-token-for-key-tests"


@pytest.fixture()
def aiprox_all(stack):
    _, mock = stack
    mock.reset()
    workdir = Path(tempfile.mkdtemp(prefix="aiprox-keys-"))
    (workdir / "aiprox.yaml").write_text(
        f"""
providers:
  mock: {{ kind: openai, base_url: "{mock.url}/v1", api_key_env: AIPROX_TEST_PROVIDER_KEY }}
mappings:
  gpt4: {{ provider: mock, model: gpt-4o }}
"""
    )
    port, admin_port = free_port(), free_port()
    env = dict(
        os.environ,
        AIPROX_TEST_PROVIDER_KEY=PROVIDER_KEY,
        AIPROX_GATEWAY__LISTEN=f"127.0.0.1:{port}",
        AIPROX_ADMIN__LISTEN=f"127.0.0.1:{admin_port}",
        AIPROX_ADMIN_TOKEN=ADMIN_TOKEN,
        AIPROX_NATS_URL="",
        AIPROX_DATABASE_URL=f"sqlite://{workdir}/aiprox.db",
        AIPROX_MEDIA_ROOT=str(workdir / "media"),
    )
    log = workdir / "all.log"
    proc = subprocess.Popen(
        [str(BIN_DIR / "aiprox"), "all", "--config", str(workdir / "aiprox.yaml")],
        env=env,
        cwd=workdir,
        stderr=log.open("w"),
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        admin = httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port}",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        until(lambda: _up(admin), within=30.0)
        yield f"http://127.0.0.1:{port}", admin, log
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _up(admin: httpx.Client) -> bool:
    try:
        return admin.get("/api/v1/keys").status_code == 200
    except httpx.HTTPError:
        return False


def until(check, within: float = 1.0):
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def test_keys_through_both_sdks(aiprox_all):
    url, admin, log = aiprox_all
    # Open on loopback before the first key.
    assert openai.OpenAI(base_url=f"{url}/v1", api_key="anything").models.list().data

    created = admin.post("/api/v1/keys", json={"name": "python"})
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["secret"], created.json()["key"]["id"]

    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-not-a-key", max_retries=0)

    def refused() -> bool:
        try:
            wrong.models.list()
            return False
        except openai.AuthenticationError:
            return True

    until(refused)
    with pytest.raises(openai.AuthenticationError) as e:
        wrong.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 401
    assert "sk-not-a-key" not in str(e.value.body)

    client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
    reply = client.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content

    claude = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    message = claude.messages.create(
        model="gpt4", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=url, api_key="sk-wrong", max_retries=0).messages.create(
            model="gpt4", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )

    # The key id is in the log rows.
    def logged() -> bool:
        rows = admin.get("/api/v1/logs", params={"key": key_id}).json()["data"]
        return len(rows) >= 2

    until(logged, within=10.0)

    # Revoked: refused within a second.
    assert admin.delete(f"/api/v1/keys/{key_id}").status_code == 200

    def revoked() -> bool:
        try:
            client.models.list()
            return False
        except openai.AuthenticationError:
            return True

    until(revoked)
    assert secret not in log.read_text()


def test_limits_through_both_sdks(aiprox_all):
    """A key's refusals reach the SDKs as their own errors: a model off the key's
    list is PermissionDeniedError, its requests per minute used up
    RateLimitError with OpenAI's x-ratelimit headers and Retry-After; a spent
    budget names the budget."""
    url, admin, _ = aiprox_all
    created = admin.post(
        "/api/v1/keys",
        json={"name": "limited", "limits": {"requests_per_minute": 2, "models": ["gpt4"]}},
    )
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["secret"], created.json()["key"]["id"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
    claude = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    hi = [{"role": "user", "content": "hi"}]

    def known() -> bool:
        try:
            client.models.list()
            return True
        except openai.AuthenticationError:
            return False

    until(known)
    # Waits out a minute nearly over, so the two requests fall in one.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(model="mock/gpt-4o", messages=hi)
    assert e.value.status_code == 403
    assert e.value.body["code"] == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError):
        claude.messages.create(model="mock/gpt-4o", max_tokens=8, messages=hi)

    raw = client.chat.completions.with_raw_response.create(model="gpt4", messages=hi)
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    claude.messages.create(model="gpt4", max_tokens=8, messages=hi)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt4", messages=hi)
    assert e.value.status_code == 429
    assert e.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60
    assert e.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(model="gpt4", max_tokens=8, messages=hi)
    assert e.value.body["error"]["type"] == "rate_limit_error"

    # A budget too small for any request: refused, named.
    limits = {"budget": {"usd": 0.000001, "period": "day"}}
    assert admin.put(f"/api/v1/keys/{key_id}/limits", json=limits).status_code == 200

    def budget_refused() -> bool:
        try:
            client.chat.completions.create(model="gpt4", messages=hi)
            return False
        except openai.RateLimitError as e:
            return e.body["code"] == "budget_exceeded"

    until(budget_refused)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt4", messages=hi)
    assert "daily budget" in e.value.message
