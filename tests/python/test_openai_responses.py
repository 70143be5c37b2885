"""The official `openai` SDK on the Responses API (`/v1/responses`): translated over
chat completions (`gpt4`), over Anthropic's Messages (`claude`) and passed through to
a server that has the API (`native`); streams, function calls across turns, stored
conversations shared by two gateways through NATS, images, structured output, errors
and the WebSocket transport."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import openai
import pydantic
import pytest
from openai import OpenAI

from conftest import PROVIDER_KEY, gateway_config, start_gateway, start_nats, stop

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PARIS = "The capital of France is Paris."
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
# What the mock answers a function tool with, per upstream: the chat recording's call
# to `get_temperature`, Anthropic's to `get_weather` and the Responses recording's to
# `get_weather`; then the output sent back and the answer after it.
CALLS = {
    "gpt4": ("get_temperature", {"city": "Tokyo"}, "20.0", "The temperature in Tokyo is currently 20.0 degrees Celsius."),
    "claude": (
        "get_weather",
        {"location": "San Francisco, CA", "units": "f"},
        "sunny, 68F",
        "The weather in San Francisco, CA is currently **Sunny** with a temperature of **68\u00b0F**.",
    ),
    "native": ("get_weather", {"city": "New York"}, "sunny, 72F", "The weather in New York is sunny and 72\u00b0F."),
}


def function_tool(name: str, *properties: str) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": f"{name} for a place",
        "parameters": {
            "type": "object",
            "properties": {p: {"type": "string"} for p in properties},
            "required": list(properties),
            "additionalProperties": False,
        },
        "strict": True,
    }


@pytest.fixture
def client(gateway, mock) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="sk-client-not-forwarded", max_retries=0)


@pytest.fixture(autouse=True)
def every_upstream_request_was_valid(mock):
    yield
    assert mock.stats()["invalid_requests"] == 0, mock.invalid_reasons()


def distinct(events: list) -> list[str]:
    """Event types in order, repeats of one type collapsed."""
    out: list[str] = []
    for e in events:
        if not out or out[-1] != e.type:
            out.append(e.type)
    return out


def check_text_stream(events: list) -> str:
    """The checks every streamed text answer passes; returns the joined deltas."""
    assert distinct(events) == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    created, completed = events[0].response, events[-1].response
    assert created.status == "in_progress" and created.output == [] and created.usage is None
    assert completed.id == created.id
    assert completed.status == "completed"
    assert completed.output_text == text
    assert completed.usage.output_tokens > 0
    assert completed.usage.total_tokens == completed.usage.input_tokens + completed.usage.output_tokens
    return text


# --- create ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt4", "claude", "native"])
def test_create(client, mock, model):
    response = client.responses.create(
        model=model,
        instructions="Answer directly.",
        input="What is the capital of France?",
        max_output_tokens=50,
        metadata={"team": "a"},
    )
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.error is None
    assert response.output_text == PARIS
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    sent = mock.last_request()
    assert sent["headers"].get("authorization", sent["headers"].get("x-api-key", "")).endswith(PROVIDER_KEY)
    if model == "gpt4":
        assert (usage.input_tokens, usage.output_tokens) == (24, 8)
        assert sent["path"] == "/v1/chat/completions"
        assert sent["body"]["model"] == "gpt-4o"
        assert sent["body"]["max_completion_tokens"] == 50
        assert sent["body"]["messages"] == [
            {"role": "system", "content": "Answer directly."},
            {"role": "user", "content": "What is the capital of France?"},
        ]
    elif model == "claude":
        assert (usage.input_tokens, usage.output_tokens) == (20, 10)
        assert sent["path"] == "/v1/messages"
        assert sent["body"]["model"] == "claude-haiku-4-5"
        assert sent["body"]["max_tokens"] == 50
        assert "Answer directly." in json.dumps(sent["body"]["system"])
        assert sent["body"]["messages"][-1]["role"] == "user"
    else:
        assert (usage.input_tokens, usage.output_tokens) == (14, 8)
        assert response.id.startswith("resp_mock"), "the upstream's own id"
        assert sent["path"] == "/v1/responses"
        assert sent["body"] == {
            "model": "gpt-5.2",
            "instructions": "Answer directly.",
            "input": "What is the capital of France?",
            "max_output_tokens": 50,
            "metadata": {"team": "a"},
        }


# --- streams -----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt4", "claude", "native"])
def test_stream_helper_and_its_final_response(client, mock, model):
    with client.responses.stream(model=model, input="What is the capital of France?") as stream:
        events = list(stream)
        final = stream.get_final_response()
    text = check_text_stream(events)
    assert final.output_text == text
    assert final.id == events[-1].response.id
    assert final.usage.output_tokens == events[-1].response.usage.output_tokens
    sent = mock.last_request()
    assert sent["body"]["stream"] is True
    if model == "gpt4":
        assert sent["body"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", ["gpt4", "claude", "native"])
def test_create_stream_true_yields_the_event_sequence(client, mock, model):
    events = list(client.responses.create(model=model, input="What is the capital of Mexico?", stream=True))
    text = check_text_stream(events)
    item = next(e for e in events if e.type == "response.output_item.added").item
    assert all(e.item_id == item.id for e in events if e.type == "response.output_text.delta")
    if model == "gpt4":
        assert text == "The capital of Mexico is Mexico City."


def test_streamed_function_call_arguments(client, mock):
    tool = function_tool("get_capital", "country")
    with client.responses.stream(model="gpt4", input="What is the capital of the UK? Use the tool.", tools=[tool]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == arguments
    assert json.loads(arguments) == {"country": "UK"}
    call = next(i for i in final.output if i.type == "function_call")
    assert call.name == "get_capital" and call.arguments == arguments
    assert call.call_id.startswith("call_")


# --- function calls across turns ---------------------------------------------------


@pytest.mark.parametrize("model", ["gpt4", "claude", "native"])
def test_function_call_then_its_output_with_previous_response_id(client, mock, model):
    name, arguments, output, answer = CALLS[model]
    tools = [function_tool(name, *arguments)]
    question = f"{name} for {next(iter(arguments.values()))}?"
    first = client.responses.create(model=model, input=question, tools=tools)
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1, first.output
    call = calls[0]
    assert call.name == name
    assert json.loads(call.arguments) == arguments
    assert call.call_id
    assert first.output_text == ""

    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": output}],
        tools=tools,
    )
    assert second.status == "completed"
    assert second.output_text == answer
    sent = mock.last_request()["body"]
    if model == "gpt4":
        assert second.previous_response_id == first.id
        messages = sent["messages"]
        assert messages[0] == {"role": "user", "content": question}
        assistant = messages[1]
        assert assistant["role"] == "assistant"
        assert [(c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in assistant["tool_calls"]] == [(call.call_id, "function", name, arguments)]
        assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": output}
        assert len(messages) == 3
        assert sent["tools"][0]["function"]["name"] == name
    elif model == "claude":
        messages = sent["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        uses = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
        assert [(b["id"], b["name"], b["input"]) for b in uses] == [(call.call_id, name, arguments)]
        results = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
        assert [b["tool_use_id"] for b in results] == [call.call_id]
        assert output in json.dumps(results[0]["content"])
        assert sent["tools"][0]["name"] == name
    else:
        # The upstream holds the first turn: only the new item goes.
        assert sent["previous_response_id"] == first.id
        assert sent["input"] == [{"type": "function_call_output", "call_id": call.call_id, "output": output}]


# --- stored conversations over two gateways sharing NATS ---------------------------


@pytest.fixture(scope="module")
def replicas(stack):
    """Two `aiprox gateway` processes with the session's config, sharing one
    throw-away `nats-server -js` (their conversations in the `aiprox-responses`
    bucket)."""
    mock = stack[1]
    work = Path(tempfile.mkdtemp(prefix="aiprox-replicas-"))
    procs: list[subprocess.Popen] = []
    try:
        nats, nats_url = start_nats(work / "nats")
        procs.append(nats)
        config = work / "aiprox.yaml"
        config.write_text(gateway_config(mock.url))
        gateways = []
        for name in ["a", "b"]:
            proc, gw = start_gateway(
                config,
                work / f"gateway-{name}.log",
                AIPROX_NATS_URL=nats_url,
                AIPROX_GATEWAY__EVENTS__SPILL_DIR=str(work / f"spill-{name}"),
            )
            procs.append(proc)
            gateways.append(gw)
        yield gateways
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


def test_previous_response_id_across_two_gateways(replicas, mock):
    a, b = (OpenAI(base_url=g.base_url, api_key="sk-client", max_retries=0) for g in replicas)
    first = a.responses.create(model="gpt4", input="Hello")
    assert first.output_text == PARIS

    second = b.responses.create(model="gpt4", input="And again?", previous_response_id=first.id)
    assert second.status == "completed"
    assert mock.last_request()["body"]["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": PARIS},
        {"role": "user", "content": "And again?"},
    ]

    # B reads what A stored, as A answered it.
    got = b.responses.retrieve(first.id)
    assert got.model_dump() == first.model_dump()
    items = b.responses.input_items.list(first.id)
    assert [(i.type, i.role) for i in items.data] == [("message", "user")]
    assert items.data[0].id.startswith("msg_")
    assert items.has_more is False
    assert items.first_id == items.last_id == items.data[0].id
    assert "Hello" in json.dumps(items.data[0].model_dump())
    assert "And again?" in json.dumps(a.responses.input_items.list(second.id).data[0].model_dump())

    # Continued on a server with the Responses API through B: the history inlined.
    third = b.responses.create(model="native", input="Once more", previous_response_id=second.id)
    assert third.status == "completed"
    sent = mock.last_request()
    assert sent["path"] == "/v1/responses"
    assert "previous_response_id" not in sent["body"]
    assert len(sent["body"]["input"]) == 5
    assert json.dumps(sent["body"]["input"][0]).count("Hello") == 1
    assert sent["body"]["input"][-1]["content"] == "Once more"

    # Deleted on B: gone on A too.
    deleted = b.responses.with_raw_response.delete(first.id)
    assert deleted.http_response.json() == {"id": first.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(first.id)
    requests_before = len(mock.requests())
    with pytest.raises(openai.BadRequestError) as err:
        a.responses.create(model="gpt4", input="Still there?", previous_response_id=first.id)
    assert err.value.status_code == 400
    assert err.value.param == "previous_response_id"
    assert err.value.code == "previous_response_not_found"
    assert err.value.body["message"] == f"Previous response with id '{first.id}' not found."
    assert len(mock.requests()) == requests_before, "refused before any upstream call"
    # The rest of the conversation was not deleted with it.
    assert b.responses.retrieve(second.id).id == second.id


def test_input_items_are_message_items_with_input_text_parts(client, mock):
    """What OpenAI answers (fixtures/openai-responses/responses_input_items_response_2025-03.json)
    and the SDK's `ResponseInputMessageItem` types: each input message as
    `{type: message, id, status, role, content: [{type: input_text, text}]}`, a
    string input and the `{role, content: "..."}` shorthand included; newest first
    (`order` defaults to `desc`)."""
    first = client.responses.create(model="gpt4", input="Hello")
    items = client.responses.input_items.list(first.id)
    assert len(items.data) == 1
    item = items.data[0]
    assert isinstance(item.content, list), (
        f"gateway bug: GET /v1/responses/{{id}}/input_items answers a string input as "
        f"content {item.content!r}; OpenAI answers [{{'type': 'input_text', 'text': 'Hello'}}]"
    )
    assert [(p.type, p.text) for p in item.content] == [("input_text", "Hello")]
    assert item.status == "completed"

    second = client.responses.create(
        model="gpt4",
        input=[{"role": "user", "content": "Hi"}, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hey"}]}],
    )
    data = client.responses.input_items.list(second.id).data
    assert [[(p.type, p.text) for p in i.content] for i in data] == [[("input_text", "Hey")], [("input_text", "Hi")]]
    ascending = client.responses.input_items.list(second.id, order="asc").data
    assert [i.id for i in ascending] == [i.id for i in reversed(data)]


def test_the_raw_delete_answer(gateway, mock):
    """The SDK's `delete` returns None; the body is the documented one."""
    client = OpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)
    created = client.responses.create(model="gpt4", input="Hello")
    raw = client.responses.with_raw_response.delete(created.id)
    assert raw.status_code == 200
    assert raw.http_response.json() == {"id": created.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)
    unstored = client.responses.create(model="gpt4", input="Hello", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


# --- images ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt4", "claude"])
def test_input_images_by_data_uri_and_by_url(client, mock, model):
    data_uri = f"data:image/png;base64,{PNG}"
    url = "https://upload.wikimedia.org/wikipedia/commons/4/47/PNG_transparency_demonstration_1.png"
    response = client.responses.create(
        model=model,
        input=[{
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in these images?"},
                {"type": "input_image", "image_url": data_uri, "detail": "low"},
                {"type": "input_image", "image_url": url, "detail": "auto"},
            ],
        }],
    )
    assert response.status == "completed"
    content = mock.last_request()["body"]["messages"][-1]["content"]
    if model == "gpt4":
        assert content == [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": data_uri, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": url, "detail": "auto"}},
        ]
    else:
        assert content[0] == {"type": "text", "text": "What is in these images?"}
        assert content[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        assert content[2] == {"type": "image", "source": {"type": "url", "url": url}}


# --- structured output -------------------------------------------------------------

PAYMENT_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number"}},
    "required": ["amount"],
    "additionalProperties": False,
}


class Payment(pydantic.BaseModel):
    amount: float


def test_json_schema_reaches_a_chat_upstream_as_response_format(client, mock):
    client.responses.create(
        model="gpt4",
        input="Pay 12.34",
        text={"format": {"type": "json_schema", "name": "Payment", "schema": PAYMENT_SCHEMA, "strict": True}},
    )
    sent = mock.last_request()["body"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Payment", "schema": PAYMENT_SCHEMA, "strict": True},
    }
    assert "text" not in sent


def test_json_schema_natively_and_parse(client, mock):
    text = {"format": {"type": "json_schema", "name": "Payment", "schema": PAYMENT_SCHEMA, "strict": True}}
    response = client.responses.create(model="native", input="Pay 12.34", text=text)
    assert json.loads(response.output_text) == {"amount": 12.34}
    assert mock.last_request()["body"]["text"] == text

    parsed = client.responses.parse(model="native", input="Pay 12.34", text_format=Payment)
    assert parsed.output_parsed == Payment(amount=12.34)
    sent = mock.last_request()["body"]["text"]["format"]
    assert (sent["type"], sent["name"], sent["strict"]) == ("json_schema", "Payment", True)


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_model_is_a_400_naming_model(client, mock, stream):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="no-such-model", input="x", stream=stream)
    assert err.value.status_code == 400
    assert err.value.param == "model"
    assert mock.requests() == []


def test_an_unknown_previous_response_is_a_400_and_retrieve_a_404(client, mock):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt4", input="x", previous_response_id="resp_does_not_exist")
    assert err.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_does_not_exist")
    assert mock.requests() == []


def test_an_upstream_error_reaches_the_client_as_its_status(client, mock):
    mock.behave(failure={"kind": "status", "status": 429})
    for model in ["gpt4", "native"]:
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model=model, input="x")


# --- WebSocket transport -----------------------------------------------------------


def ws_turn(connection) -> list:
    """The events of one turn, up to the terminal one."""
    events = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "error"):
            return events
    raise AssertionError(f"connection closed after {[e.type for e in events]}")


@pytest.mark.parametrize("model", ["gpt4", "native"])
def test_websocket_two_turns_store_false(client, mock, model):
    with client.responses.connect() as connection:
        connection.response.create(
            model=model,
            store=False,
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
        )
        first = ws_turn(connection)
        check_text_stream(first)
        first_id = first[-1].response.id

        connection.response.create(
            model=model,
            store=False,
            previous_response_id=first_id,
            input=[{"role": "user", "content": [{"type": "input_text", "text": "And again?"}]}],
        )
        second = ws_turn(connection)
        assert second[-1].type == "response.completed", [e.type for e in second]
        assert second[0].sequence_number == 0

    sent = mock.last_request()
    if model == "gpt4":
        assert second[-1].response.previous_response_id == first_id
        messages = sent["body"]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        # One input_text part goes to a chat upstream as plain text.
        assert messages[0]["content"] == "Hello"
        assert messages[2]["content"] == "And again?"
    else:
        # With store:false the upstream kept nothing (OpenAI answers a continuation
        # of it over HTTP with 400 "Previous response ... not found"): the gateway
        # must send the turn it remembers for the connection, inline.
        assert sent["path"] == "/v1/responses"
        assert "previous_response_id" not in sent["body"], (
            "gateway bug: a WebSocket continuation (store:false) of a response made natively "
            f"names previous_response_id={sent['body']['previous_response_id']!r} upstream, "
            "which never stored it; expected the remembered turn inlined as input"
        )
        assert [i.get("role") for i in sent["body"]["input"]] == ["user", "assistant", "user"]
    # Remembered for the connection only.
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first_id)


def test_websocket_a_bad_frame_is_an_error_event_and_the_connection_stays(client, mock):
    with client.responses.connect() as connection:
        connection.send_raw(json.dumps({"type": "nonsense"}))
        bad = ws_turn(connection)
        assert bad[0].type == "error"
        connection.response.create(model="gpt4", input="Hi")
        assert ws_turn(connection)[-1].type == "response.completed"


def test_a_plain_get_is_426(gateway):
    response = httpx.get(f"{gateway.base_url}/responses")
    assert response.status_code == 426
