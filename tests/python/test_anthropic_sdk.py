"""The official `anthropic` SDK on /v1/messages: natively to an Anthropic upstream
(`claude`) and translated to an OpenAI-compatible one (`gpt4`)."""

from __future__ import annotations

import anthropic
import pytest
from anthropic import Anthropic

from conftest import PROVIDER_KEY

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Lookup the weather for a given city in either celsius or fahrenheit",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
        "required": ["location", "units"],
    },
}
TEMPERATURE_TOOL = {
    "name": "get_temperature",
    "description": "",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def client(gateway, mock) -> Anthropic:
    return Anthropic(base_url=gateway.url, api_key="sk-ant-client", max_retries=0)


@pytest.fixture(autouse=True)
def every_request_was_valid_anthropic(mock):
    yield
    assert mock.stats()["invalid_requests"] == 0, mock.invalid_reasons()


@pytest.mark.parametrize("model", ["claude", "gpt4"])
def test_create(client, mock, model):
    message = client.messages.create(
        model=model,
        max_tokens=256,
        system="You are a helpful assistant.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "The capital of France is Paris."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    sent = mock.last_request()
    if model == "claude":
        assert sent["path"] == "/v1/messages"
        assert sent["headers"]["x-api-key"] == PROVIDER_KEY
        assert sent["body"]["model"] == "claude-haiku-4-5"
    else:
        assert sent["path"] == "/v1/chat/completions"
        assert sent["body"]["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}


@pytest.mark.parametrize("model", ["claude", "gpt4"])
def test_stream_final_message(client, mock, model):
    mock.behave(chunks=5)
    with client.messages.stream(
        model=model, max_tokens=256, messages=[{"role": "user", "content": "What is 1+1?"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


WEATHER_INPUT = {"location": "San Francisco, CA", "units": "f"}


# The mock replays recordings: the OpenAI streamed tool call was recorded with
# another tool (get_capital) than the non-streamed one (get_temperature).
@pytest.mark.parametrize(
    ("model", "tool", "question", "expected_input", "expected_stream"),
    [
        ("claude", WEATHER_TOOL, "What is the weather in SF?", WEATHER_INPUT, ("get_weather", WEATHER_INPUT)),
        ("gpt4", TEMPERATURE_TOOL, "What is the temperature in Tokyo?", {"city": "Tokyo"}, ("get_capital", {"country": "UK"})),
    ],
)
def test_tool_use_round_trip(client, mock, model, tool, question, expected_input, expected_stream):
    messages = [{"role": "user", "content": question}]
    first = client.messages.create(model=model, max_tokens=512, tools=[tool], messages=messages)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == tool["name"] and use.input == expected_input

    with client.messages.stream(model=model, max_tokens=512, tools=[tool], messages=messages) as stream:
        streamed = stream.get_final_message()
    streamed_use = next(b for b in streamed.content if b.type == "tool_use")
    assert (streamed_use.name, streamed_use.input) == expected_stream
    assert streamed.stop_reason == "tool_use"

    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "20.0"}]},
    ]
    final = client.messages.create(model=model, max_tokens=512, tools=[tool], messages=messages)
    assert final.stop_reason == "end_turn"
    assert final.content[0].text


@pytest.mark.parametrize("model", ["claude", "gpt4"])
def test_image(client, mock, model):
    client.messages.create(
        model=model,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this vegetable?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            }
        ],
    )
    body = mock.last_request()["body"]
    part = body["messages"][0]["content"][1]
    if model == "claude":
        assert part["source"]["data"] == PNG
    else:
        assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}


def test_errors_raise_the_sdk_classes(client, mock):
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    for model in ["claude", "gpt4"]:
        for status, error in [
            (429, anthropic.RateLimitError),
            (401, anthropic.AuthenticationError),
            (400, anthropic.BadRequestError),
        ]:
            mock.behave(failure={"kind": "status", "status": status})
            with pytest.raises(error):
                client.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    mock.behave(failure={"kind": "status", "status": 529})
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_bad_request_from_the_gateway_itself(client, mock):
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="gpt4",
            max_tokens=5,
            messages=[{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}],
        )
    assert "document" in str(info.value)
    assert mock.requests() == []


@pytest.mark.parametrize("model", ["claude", "gpt4"])
def test_overload_mid_stream_raises(client, mock, model):
    mock.behave(chunks=5, failure={"kind": "error_event_mid_stream", "after_chunks": 3})
    with pytest.raises(anthropic.APIError):
        with client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "x"}]) as stream:
            for _ in stream:
                pass


def test_a_system_turn_among_the_messages_as_claude_code_sends_it(client, mock):
    """Claude Code (2.1) puts a `role: "system"` turn inside `messages`; Anthropic
    accepts it, and an OpenAI-compatible provider gets it as a system message at the
    same position."""
    message = client.messages.create(
        model="gpt4",
        max_tokens=256,
        system=[{"type": "text", "text": "You are Claude Code."}],
        messages=[
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "system", "content": [{"type": "text", "text": "Answer in one line."}]},
        ],
    )
    assert message.content[0].text == "The capital of France is Paris."
    sent = mock.last_request()["body"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "system"]
    assert sent[2]["content"] == "Answer in one line."


def test_with_its_default_retries_the_sdk_adds_no_upstream_calls_to_the_gateways(gateway, mock):
    """Anthropic's SDK retries twice by default, on 529 too; the gateway's answer
    after its own three attempts says not to."""
    sdk = Anthropic(base_url=gateway.url, api_key="sk-ant-client")  # max_retries=2
    mock.behave(failure={"kind": "status", "status": 529})
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk.messages.create(model="claude", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(mock.requests()) == 3
