"""The scripted provider stubs speak the wire formats the real clients expect (ChatOpenAI, ChatAnthropic,
LlamaIndex OpenAI): text, SSE streams, tool calls, structured output, scripted errors, delays, recorded kwargs."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")

import anthropic  # noqa: E402
import openai  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk  # noqa: E402
from provider_stubs import (  # noqa: E402
    StubAnthropic,
    StubOpenAI,
    anthropic_chat,
    fill_schema,
    llamaindex_openai,
    openai_chat,
    running,
)
from pydantic import BaseModel, Field  # noqa: E402


class Weather(BaseModel):
    """Weather for a city."""

    city: str = Field(description="the city")
    degrees: int


def get_weather(city: str, unit: str = "c") -> str:
    """Look up the weather for a city."""
    return f"sunny in {city}"


@pytest.fixture
def oai() -> Iterator[StubOpenAI]:
    with StubOpenAI() as srv:
        yield srv


@pytest.fixture
def ant() -> Iterator[StubAnthropic]:
    with StubAnthropic() as srv:
        yield srv


# ----------------------------------------------------------------------------------------------- OpenAI / LangChain


def test_chatopenai_invoke_echoes_model_and_records_kwargs(oai: StubOpenAI) -> None:
    msg = openai_chat(oai, model="gpt-4o", seed=7, temperature=0.2).invoke("hello there")
    assert isinstance(msg, AIMessage)
    assert msg.content == "gpt-4o: hello there"
    assert msg.response_metadata["model_name"] == "gpt-4o"
    assert msg.usage_metadata is not None and msg.usage_metadata["total_tokens"] > 0
    (req,) = oai.requests
    assert req.path == "/v1/chat/completions" and req["seed"] == 7 and req["temperature"] == 0.2
    assert req.headers["authorization"] == "Bearer sk-test"
    assert oai.models == ["gpt-4o"]


def test_chatopenai_stream_joins_to_the_reply_and_reports_usage(oai: StubOpenAI) -> None:
    oai.reply = lambda body: "one two three four"
    chunks = list(openai_chat(oai, stream_usage=True).stream("hi"))
    assert len([c for c in chunks if c.content]) == 4
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert isinstance(total, AIMessageChunk) and total.content == "one two three four"
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 4
    assert oai.last["stream"] is True and oai.last["stream_options"] == {"include_usage": True}


async def test_chatopenai_ainvoke_and_astream(oai: StubOpenAI) -> None:
    llm = openai_chat(oai, model="gpt-4o-mini")
    msg = await llm.ainvoke("async hi")
    assert msg.content == "gpt-4o-mini: async hi"
    parts = [c.content async for c in llm.astream("stream me")]
    assert "".join(str(p) for p in parts) == "gpt-4o-mini: stream me"


async def test_many_concurrent_async_calls(oai: StubOpenAI) -> None:
    oai.delay = 0.05
    llm = openai_chat(oai)
    out = await asyncio.gather(*(llm.ainvoke(f"q{i}") for i in range(120)))
    assert [m.content for m in out] == [f"gpt-4o-mini: q{i}" for i in range(120)]
    assert len(oai.requests) == 120


def test_chatopenai_tool_calls(oai: StubOpenAI) -> None:
    llm = openai_chat(oai)
    # auto tool choice: a text answer unless scripted
    assert openai_chat(oai).bind_tools([get_weather]).invoke("weather?").tool_calls == []
    forced = llm.bind_tools([get_weather], tool_choice="required").invoke("weather?")
    assert forced.tool_calls[0]["name"] == "get_weather"
    assert forced.tool_calls[0]["args"] == {"city": "x"}  # required fields filled from the schema
    oai.tool_args = lambda body: {"city": "Paris", "unit": "f"}
    oai.use_tool = True
    msg = llm.bind_tools([get_weather]).invoke("weather in Paris?")
    assert msg.tool_calls[0]["args"] == {"city": "Paris", "unit": "f"}
    assert oai.last["tools"][0]["function"]["name"] == "get_weather"
    streamed = list(llm.bind_tools([get_weather]).stream("again"))
    total = streamed[0]
    for c in streamed[1:]:
        total = total + c
    assert total.tool_calls[0]["args"] == {"city": "Paris", "unit": "f"}


def test_chatopenai_structured_output_json_schema(oai: StubOpenAI) -> None:
    llm = openai_chat(oai)
    got = llm.with_structured_output(Weather, method="json_schema").invoke("weather?")
    assert got == Weather(city="x", degrees=1)
    assert oai.last["response_format"]["type"] == "json_schema"
    oai.json_reply = lambda body: {"city": "Oslo", "degrees": -3}
    assert llm.with_structured_output(Weather, method="json_schema").invoke("w").city == "Oslo"
    # function calling structured output goes through the forced tool call
    oai.tool_args = {"city": "Rome", "degrees": 30}
    assert llm.with_structured_output(Weather, method="function_calling").invoke("w").degrees == 30


def test_openai_errors_are_the_clients_own(oai: StubOpenAI) -> None:
    llm = openai_chat(oai)
    oai.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        llm.invoke("x")
    oai.fail_next(429, retry_after=0)
    with pytest.raises(openai.RateLimitError) as info:
        llm.invoke("x")
    assert info.value.response.headers["retry-after"] == "0"
    assert llm.invoke("x").content == "gpt-4o-mini: x"  # the script is spent
    oai.fail_when(lambda body: body.get("model") == "gpt-4o", 503)
    with pytest.raises(openai.InternalServerError):
        openai_chat(oai, model="gpt-4o").invoke("x")
    assert llm.invoke("y").content == "gpt-4o-mini: y"
    oai.fail_next(0)  # a dropped connection
    with pytest.raises(openai.APIConnectionError):
        llm.invoke("x")
    assert len(oai.requests) == 6
    oai.reset()
    assert oai.requests == [] and openai_chat(oai, model="gpt-4o").invoke("z").content == "gpt-4o: z"


def test_delay_trips_the_client_timeout(oai: StubOpenAI) -> None:
    oai.delay = 2.0
    with pytest.raises(openai.APITimeoutError):
        openai_chat(oai, timeout=0.2).invoke("slow")
    oai.delay = lambda body: 0.0 if body.get("model") == "fast" else 2.0
    assert openai_chat(oai, model="fast", timeout=1).invoke("q").content == "fast: q"


def test_legacy_completions_and_unknown_route(oai: StubOpenAI) -> None:
    client = openai.OpenAI(base_url=oai.base_url, api_key="sk-test", max_retries=0, timeout=5)
    out = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi", max_tokens=5)
    assert out.choices[0].text == "gpt-3.5-turbo-instruct: say hi"
    text = "".join(
        c.choices[0].text
        for c in client.completions.create(model="m", prompt="a b", stream=True)
        if c.choices
    )
    assert text == "m: a b"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="e", input="x")


# ----------------------------------------------------------------------------------------------- Anthropic


def test_chatanthropic_invoke_stream_and_kwargs(ant: StubAnthropic) -> None:
    llm = anthropic_chat(ant, model="claude-3-5-haiku-latest", top_k=5)
    msg = llm.invoke("hello claude")
    assert msg.content == "claude-3-5-haiku-latest: hello claude"
    assert msg.usage_metadata is not None and msg.usage_metadata["output_tokens"] == 3
    req = ant.last
    assert req.path == "/v1/messages" and req["top_k"] == 5 and "anthropic-version" in req.headers
    ant.reply = lambda body: "alpha beta gamma"
    chunks = list(llm.stream("s"))
    assert "".join(str(c.content) for c in chunks) == "alpha beta gamma"
    assert len([c for c in chunks if c.content]) == 3
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 3


async def test_chatanthropic_async(ant: StubAnthropic) -> None:
    llm = anthropic_chat(ant)
    assert (await llm.ainvoke("a")).content == "claude-3-5-haiku-latest: a"
    assert "".join([str(c.content) async for c in llm.astream("b")]) == "claude-3-5-haiku-latest: b"


def test_chatanthropic_tools_and_structured_output(ant: StubAnthropic) -> None:
    llm = anthropic_chat(ant)
    assert llm.bind_tools([get_weather]).invoke("w").tool_calls == []
    forced = llm.bind_tools([get_weather], tool_choice="any").invoke("w")
    assert forced.tool_calls[0]["name"] == "get_weather" and forced.tool_calls[0]["args"] == {"city": "x"}
    ant.tool_args = {"city": "Lima"}
    ant.use_tool = "get_weather"
    streamed = list(llm.bind_tools([get_weather]).stream("w"))
    total = streamed[0]
    for c in streamed[1:]:
        total = total + c
    assert total.tool_calls[0]["args"] == {"city": "Lima"}
    ant.reset()
    assert llm.with_structured_output(Weather).invoke("w") == Weather(city="x", degrees=1)
    assert ant.last["tool_choice"]["type"] == "tool"


def test_anthropic_errors_and_timeout(ant: StubAnthropic) -> None:
    llm = anthropic_chat(ant)
    ant.fail_next(500, body="boom")
    with pytest.raises(anthropic.InternalServerError, match="boom"):
        llm.invoke("x")
    ant.fail_next(429)
    with pytest.raises(anthropic.RateLimitError):
        llm.invoke("x")
    ant.fail_next(529)
    with pytest.raises(anthropic.APIStatusError) as info:
        llm.invoke("x")
    assert info.value.status_code == 529
    ant.delay = 2.0
    with pytest.raises(anthropic.APITimeoutError):
        anthropic_chat(ant, default_request_timeout=0.2).invoke("slow")


# ----------------------------------------------------------------------------------------------- LlamaIndex


def test_llamaindex_openai_chat_stream_complete_structured(oai: StubOpenAI) -> None:
    pytest.importorskip("llama_index.llms.openai")
    from llama_index.core.llms import ChatMessage
    from llama_index.core.prompts import PromptTemplate

    # an unknown constructor kwarg (seed=3) is silently dropped by llama_index; additional_kwargs reaches the wire
    llm = llamaindex_openai(oai, model="gpt-4o", additional_kwargs={"seed": 3})
    resp = llm.chat([ChatMessage(role="user", content="li hello")])
    assert resp.message.content == "gpt-4o: li hello"
    assert oai.last["seed"] == 3
    deltas = [r.delta for r in llm.stream_chat([ChatMessage(role="user", content="s t")])]
    assert "".join(d or "" for d in deltas) == "gpt-4o: s t"
    assert llm.complete("done?").text == "gpt-4o: done?"
    got = llm.structured_predict(Weather, PromptTemplate("weather in {city}"), city="Bern")
    assert got == Weather(city="x", degrees=1)
    oai.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        llm.chat([ChatMessage(role="user", content="x")])


async def test_llamaindex_openai_async(oai: StubOpenAI) -> None:
    pytest.importorskip("llama_index.llms.openai")
    from llama_index.core.llms import ChatMessage

    llm = llamaindex_openai(oai)
    resp = await llm.achat([ChatMessage(role="user", content="async li")])
    assert resp.message.content == "gpt-4o-mini: async li"
    gen = await llm.astream_chat([ChatMessage(role="user", content="a b")])
    assert "".join([r.delta or "" async for r in gen]) == "gpt-4o-mini: a b"


# ----------------------------------------------------------------------------------------------- lifetime


def test_running_closes_the_socket_and_wakes_sleepers() -> None:
    with running(StubOpenAI) as srv:
        port = srv.port
        srv.delay = 30.0
        t = threading.Thread(target=lambda: _swallow(openai_chat(srv, timeout=60).invoke, "x"), daemon=True)
        t.start()
        while not srv.requests:
            threading.Event().wait(0.01)
    t.join(timeout=5)
    assert not t.is_alive()  # the sleeping request was dropped, the client saw the connection close
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5)


def _swallow(fn, *a) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(*a)
    except Exception:
        pass


def test_fill_schema() -> None:
    schema = Weather.model_json_schema()
    assert fill_schema(schema) == {"city": "x", "degrees": 1}
    nested = {
        "type": "object",
        "required": ["w", "tags", "kind", "opt"],
        "properties": {
            "w": {"$ref": "#/$defs/W"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "kind": {"enum": ["a", "b"]},
            "opt": {"anyOf": [{"type": "null"}, {"type": "number"}]},
            "skip": {"type": "string"},
        },
        "$defs": {"W": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}},
    }
    assert fill_schema(nested) == {"w": {"ok": True}, "tags": ["x"], "kind": "a", "opt": 1}
    assert json.loads(json.dumps(fill_schema({"type": "object"}))) == {}
