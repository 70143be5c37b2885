"""Anthropic's `/v1/messages/count_tokens` with the official `anthropic` SDK (passed
through to an Anthropic upstream, estimated for any other) and OpenAI's legacy
`/v1/completions` with the official `openai` SDK (passed through to an
OpenAI-compatible upstream, refused for others)."""

from __future__ import annotations

import anthropic
import openai
import pytest
from anthropic import Anthropic
from openai import OpenAI

from conftest import PROVIDER_KEY

MESSAGES = [{"role": "user", "content": "The quick brown fox jumps over the lazy dog."}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


@pytest.fixture
def claude_client(gateway, mock) -> Anthropic:
    return Anthropic(base_url=gateway.url, api_key="sk-ant-client", max_retries=0)


@pytest.fixture
def openai_client(gateway, mock) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)


def test_count_tokens_passes_through_to_anthropic(claude_client, mock):
    counted = claude_client.messages.count_tokens(model="claude", system="Be brief.", messages=MESSAGES)
    assert counted.input_tokens == 19
    sent = mock.last_request()
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["headers"]["x-api-key"] == PROVIDER_KEY
    assert sent["body"] == {"model": "claude-haiku-4-5", "system": "Be brief.", "messages": MESSAGES}
    assert mock.stats()["invalid_requests"] == 0, mock.invalid_reasons()

    with_tools = claude_client.messages.count_tokens(model="claude", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert with_tools.input_tokens == 671
    assert mock.last_request()["body"]["tools"] == [WEATHER_TOOL]


def test_count_tokens_is_estimated_for_other_providers(claude_client, mock):
    counted = claude_client.messages.count_tokens(model="gpt4", messages=MESSAGES)
    assert 0 < counted.input_tokens < 100
    more = claude_client.messages.count_tokens(
        model="gpt4", system="You are a meticulous assistant.", messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    assert more.input_tokens > counted.input_tokens, "system and tools count"
    assert mock.requests() == [], "estimated without an upstream call"


def test_count_tokens_errors_in_anthropic_shape(claude_client, mock):
    with pytest.raises(anthropic.NotFoundError):
        claude_client.messages.count_tokens(model="no-such-model", messages=MESSAGES)
    assert mock.requests() == []


def test_legacy_completion(openai_client, mock):
    completion = openai_client.completions.create(model="gpt4", prompt="Say this is a test", max_tokens=7)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "This is a test."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == 10
    sent = mock.last_request()
    assert sent["path"] == "/v1/completions"
    assert sent["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert sent["body"] == {"model": "gpt-4o", "prompt": "Say this is a test", "max_tokens": 7}


def test_legacy_completion_streamed(openai_client, mock):
    chunks = list(
        openai_client.completions.create(
            model="gpt4", prompt="Say this is a test", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "This is a test."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens == 10
    assert mock.last_request()["body"]["stream"] is True


@pytest.mark.parametrize("model", ["claude", "demo"])
def test_legacy_completion_is_refused_without_the_api(openai_client, mock, model):
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.completions.create(model=model, prompt="x")
    assert err.value.status_code == 400
    assert err.value.code == "unsupported_endpoint"
    assert mock.requests() == []
