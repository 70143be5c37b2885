"""The official `openai` SDK against aiprox, as a user switching base_url would use it."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

from conftest import PROVIDER_KEY


@pytest.fixture
def client(gateway, mock) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="sk-client-not-forwarded", max_retries=0)


def test_plain_completion(client, mock):
    completion = client.chat.completions.create(
        model="gpt4",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )
    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == 32
    assert completion.system_fingerprint == "fp_898ac29719"
    sent = mock.last_request()
    assert sent["body"]["model"] == "gpt-4o"
    assert sent["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_streamed_completion_with_usage(client, mock):
    stream = client.chat.completions.create(
        model="gpt4",
        messages=[{"role": "user", "content": "What is the capital of Mexico?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The capital of Mexico is Mexico City."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 22


def test_streamed_completion_without_usage(client, mock):
    mock.behave(chunks=30)
    chunks = list(
        client.chat.completions.create(
            model="gpt4", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert len(chunks) == 32  # role, 30 words, finish


def test_tools(client, mock):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_temperature",
                "description": "",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
                "strict": True,
            },
        }
    ]
    messages = [{"role": "user", "content": "What is the temperature in Tokyo?"}]
    completion = client.chat.completions.create(
        model="gpt4", messages=messages, tools=tools, tool_choice="auto"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_temperature"
    assert json.loads(call.function.arguments) == {"city": "Tokyo"}
    assert mock.last_request()["body"]["tools"] == tools

    # The round trip: answer the call, get the final text.
    messages += [
        completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "20.0"},
    ]
    final = client.chat.completions.create(model="gpt4", messages=messages, tools=tools)
    assert final.choices[0].message.content == "The temperature in Tokyo is currently 20.0 degrees Celsius."
    assert mock.last_request()["body"]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "20.0",
    }


def test_streamed_tool_calls_accumulate(client, mock):
    stream = client.chat.completions.create(
        model="gpt4",
        messages=[{"role": "user", "content": "What is the capital of the UK? Use the tool."}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_capital",
                    "parameters": {"type": "object", "properties": {"country": {"type": "string"}}},
                },
            }
        ],
        stream=True,
    )
    arguments, name = "", None
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = name or call.function.name
            arguments += call.function.arguments or ""
    assert name == "get_capital"
    assert json.loads(arguments) == {"country": "UK"}


def test_response_format_and_vendor_fields_reach_the_upstream(client, mock):
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    client.chat.completions.create(
        model="gpt4",
        messages=[{"role": "user", "content": "capital?"}],
        response_format=schema,
        seed=7,
        extra_body={"vendor_option": {"beam": 3}},
    )
    body = mock.last_request()["body"]
    assert body["response_format"] == schema
    assert body["seed"] == 7
    assert body["vendor_option"] == {"beam": 3}


def test_embeddings(client, mock):
    result = client.embeddings.create(model="mock/text-embedding-3-small", input=["Hello, world!"], dimensions=128)
    assert len(result.data) == 1
    assert len(result.data[0].embedding) == 128  # the SDK asked for base64 and decoded it
    assert all(isinstance(x, float) for x in result.data[0].embedding)
    assert mock.last_request()["body"]["encoding_format"] == "base64"
    assert result.usage.prompt_tokens == 4


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["claude", "demo", "gpt4", "mock/gpt-4o", "native"]
    assert client.models.retrieve("gpt4").owned_by == "mock"


def test_demo_provider_needs_no_upstream(client, mock):
    reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "echo this"}])
    assert reply.choices[0].message.content == "echo this"
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "and this too"}], stream=True
        )
        if c.choices
    )
    assert streamed == "and this too"
    assert mock.requests() == []


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9000", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"
    assert info.value.response.headers["x-request-id"]


def test_bad_request_raises_bad_request(client, mock):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt4", messages="not a list")
    assert info.value.param == "messages"
    assert mock.requests() == []


def test_upstream_errors_raise_the_sdk_classes(client, mock):
    mock.behave(failure={"kind": "status", "status": 429})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "rate_limit_exceeded"

    mock.behave(failure={"kind": "status", "status": 503})
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503

    mock.behave(failure={"kind": "status", "status": 401})
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "x"}])


def test_a_mid_stream_failure_raises_instead_of_hanging(client, mock):
    mock.behave(chunks=10, failure={"kind": "truncate_mid_stream", "after_chunks": 4})
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model="gpt4", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk)
    assert len(received) == 4
    assert "end marker" in str(info.value)


def test_secrets_never_reach_the_log(client, gateway, mock):
    client.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "x"}])
    log = gateway.log.read_text()
    assert PROVIDER_KEY not in log
    assert "sk-client-not-forwarded" not in log


def test_with_its_default_retries_the_sdk_adds_no_upstream_calls_to_the_gateways(gateway, mock):
    """The SDK's own two retries on top of the gateway's three attempts would be
    nine upstream calls; `x-should-retry: false` keeps them to the gateway's."""
    sdk = OpenAI(base_url=gateway.base_url, api_key="sk-client-not-forwarded")  # max_retries=2
    mock.behave(failure={"kind": "status", "status": 503})
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="gpt4", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(mock.requests()) == 3
