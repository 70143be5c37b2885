"""The official `openai` SDK on /v1/chat/completions, served by an Anthropic upstream."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Lookup the weather for a given city",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
                "required": ["location", "units"],
            },
        },
    }
]


@pytest.fixture
def client(gateway, mock) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)


@pytest.fixture(autouse=True)
def every_request_was_valid_anthropic(mock):
    yield
    assert mock.stats()["invalid_requests"] == 0, mock.invalid_reasons()


def test_plain(client, mock):
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Capital of France?"}],
    )
    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 20 and completion.usage.completion_tokens == 10
    sent = mock.last_request()
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["system"] == "You are a helpful assistant."
    assert sent["body"]["max_tokens"] > 0


def test_streamed_with_usage(client, mock):
    mock.behave(chunks=6)
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "What is 1+1?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "One plus one is two."
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_accumulator_matches_the_non_streamed_tool_call(client):
    messages = [{"role": "user", "content": "What is the weather in SF?"}]
    plain = client.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    with client.chat.completions.stream(model="claude", messages=messages, tools=TOOLS) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion()
    for completion in (plain, streamed):
        assert completion.choices[0].finish_reason == "tool_calls"
    a, b = plain.choices[0].message, streamed.choices[0].message
    assert a.content == b.content is None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in a.tool_calls] == [
        (c.function.name, json.loads(c.function.arguments)) for c in b.tool_calls
    ] == [("get_weather", {"location": "San Francisco, CA", "units": "f"})]


def test_tool_round_trip(client, mock):
    messages = [{"role": "user", "content": "What is the weather in SF?"}]
    first = client.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": "68°F", "condition": "Sunny"})},
    ]
    final = client.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    assert "Sunny" in final.choices[0].message.content
    sent = mock.last_request()["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": json.dumps({"temperature": "68°F", "condition": "Sunny"}),
    }


def test_image_input(client, mock):
    client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What fruit is in the image?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    block = mock.last_request()["body"]["messages"][0]["content"][1]
    assert block == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}


def test_errors_raise_the_sdk_classes(client, mock):
    for status, error in [
        (429, openai.RateLimitError),
        (401, openai.AuthenticationError),
        (400, openai.BadRequestError),
        (529, openai.InternalServerError),
    ]:
        mock.behave(failure={"kind": "status", "status": status})
        with pytest.raises(error):
            client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])


def test_overload_mid_stream_raises(client, mock):
    mock.behave(chunks=5, failure={"kind": "error_event_mid_stream", "after_chunks": 4})
    with pytest.raises(openai.APIError) as info:
        for _ in client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass
    assert "Overloaded" in str(info.value)
