"""The routing event and token accounting on every path: invoke, batch, stream, async, astream_events, v3 streams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import (
    BaseCallbackHandler,
    UsageMetadataCallbackHandler,
    get_usage_metadata_callback,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from lc_fakes import HARD_RECORD, make_routed

from langchain_routellm import METADATA_KEY, ROUTE_EVENT, RoutedChatModel


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[UUID] = []
        self.events: list[tuple[str, Any, UUID]] = []
        self.tokens: list[tuple[str, UUID]] = []
        self.ends: list[UUID] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts.append(run_id)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.tokens.append((token, run_id))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends.append(run_id)


def _merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return sum(chunks[1:], chunks[0])


def _stream(m: RoutedChatModel, text: str, cfg: dict[str, Any]) -> list[BaseMessage]:
    return [_merge(list(m.stream(text, config=cfg)))]


def _stream_v3(m: RoutedChatModel, text: str, cfg: dict[str, Any]) -> list[BaseMessage]:
    stream = m.stream_events(text, version="v3", config=cfg)
    list(stream)
    return [stream.output]


SYNC_PATHS: dict[str, Callable[[RoutedChatModel, str, dict[str, Any]], list[BaseMessage]]] = {
    "invoke": lambda m, t, cfg: [m.invoke(t, config=cfg)],
    "batch": lambda m, t, cfg: m.batch([t, t.replace("hard", "soft")], config=cfg),
    "stream": _stream,
    "streaming-invoke": lambda m, t, cfg: [m.model_copy(update={"streaming": True}).invoke(t, config=cfg)],
    "generate": lambda m, t, cfg: [
        m.generate([[HumanMessage(t)]], callbacks=cfg.get("callbacks")).generations[0][0].message
    ],
    "stream_events-v3": _stream_v3,
}


@pytest.mark.parametrize("local", [False, True], ids=["config-callbacks", "model-callbacks"])
@pytest.mark.parametrize("path", list(SYNC_PATHS))
def test_routing_event_on_sync_paths(path: str, local: bool) -> None:
    rec = Recorder()
    m = make_routed(callbacks=[rec]) if local else make_routed()
    outputs = SYNC_PATHS[path](m, "a hard one", {} if local else {"callbacks": [rec]})
    _check(rec, outputs)


async def _astream(m: RoutedChatModel, text: str, cfg: dict[str, Any]) -> list[BaseMessage]:
    return [_merge([c async for c in m.astream(text, config=cfg)])]


async def _astream_v3(m: RoutedChatModel, text: str, cfg: dict[str, Any]) -> list[BaseMessage]:
    stream = await m.astream_events(text, version="v3", config=cfg)
    [e async for e in stream]
    return [await stream.output]


async def _astream_events_v2(m: RoutedChatModel, text: str, cfg: dict[str, Any]) -> list[BaseMessage]:
    out = [e async for e in m.astream_events(text, version="v2", config=cfg)]
    return [e["data"]["output"] for e in out if e["event"] == "on_chat_model_end"]


ASYNC_PATHS: dict[str, Callable[..., Any]] = {
    "ainvoke": lambda m, t, cfg: _one(m.ainvoke(t, config=cfg)),
    "abatch": lambda m, t, cfg: m.abatch([t, t.replace("hard", "soft")], config=cfg),
    "astream": _astream,
    "streaming-ainvoke": lambda m, t, cfg: _one(
        m.model_copy(update={"streaming": True}).ainvoke(t, config=cfg)
    ),
    "astream_events-v2": _astream_events_v2,
    "astream_events-v3": _astream_v3,
}


async def _one(coro: Any) -> list[BaseMessage]:
    return [await coro]


@pytest.mark.parametrize("local", [False, True], ids=["config-callbacks", "model-callbacks"])
@pytest.mark.parametrize("path", list(ASYNC_PATHS))
async def test_routing_event_on_async_paths(path: str, local: bool) -> None:
    rec = Recorder()
    m = make_routed(callbacks=[rec]) if local else make_routed()
    outputs = await ASYNC_PATHS[path](m, "a hard one", {} if local else {"callbacks": [rec]})
    for _ in range(200):  # the v3 stream resolves its output before its producer task reports on_llm_end
        if len(rec.ends) >= len(outputs):
            break
        await asyncio.sleep(0.005)
    _check(rec, outputs)


def _check(rec: Recorder, outputs: list[BaseMessage]) -> None:
    """One event per call, attributed to that call's chat-model run, equal to the message's record."""
    route_events = [e for e in rec.events if e[0] == ROUTE_EVENT]
    assert len(rec.starts) == len(outputs) == len(route_events) == len(rec.ends)
    assert [e[2] for e in route_events] == rec.starts
    for (_, data, _), message in zip(route_events, outputs, strict=True):
        assert message.response_metadata[METADATA_KEY] == data
    assert route_events[0][1]["side"] == "strong"
    if len(outputs) == 2:
        assert route_events[1][1]["side"] == "weak"


async def test_astream_events_shows_the_route_and_each_token_once() -> None:
    m = make_routed()
    events = [e async for e in m.astream_events("a hard question", version="v2")]
    kinds = [e["event"] for e in events]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert len(custom) == 1 and custom[0]["name"] == ROUTE_EVENT
    start = next(e for e in events if e["event"] == "on_chat_model_start")
    assert custom[0]["run_id"] == start["run_id"]
    assert kinds.index("on_custom_event") < kinds.index("on_chat_model_stream")
    assert custom[0]["data"] == HARD_RECORD
    streamed = [e["data"]["chunk"] for e in events if e["event"] == "on_chat_model_stream"]
    final = next(e for e in events if e["event"] == "on_chat_model_end")["data"]["output"]
    expected = list(
        m.strong._chunks(AIMessage(content=final.content))
    )  # what the fake yields for this answer
    assert (
        "".join(c.text for c in streamed) == final.content == "fake-gpt says hello. You said: a hard question"
    )
    assert len([c for c in streamed if c.text]) == len([c for c in expected if c.text])  # no duplicates
    assert [c for c in streamed if METADATA_KEY in c.response_metadata] == [streamed[0]]


@pytest.mark.parametrize("mode", ["astream", "ainvoke"])
async def test_astream_events_in_an_lcel_chain(mode: str) -> None:
    m = make_routed()
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    chain = prompt | m | StrOutputParser()
    if (
        mode == "ainvoke"
    ):  # the model is reached through invoke inside a lambda: the streaming branch of invoke
        chain = prompt | RunnableLambda(lambda x: m.invoke(x)) | StrOutputParser()  # noqa: PLW0108
    events = [e async for e in chain.astream_events({"question": "easy one"}, version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert len(custom) == 1 and custom[0]["data"]["side"] == "weak"
    start = next(e for e in events if e["event"] == "on_chat_model_start")
    assert custom[0]["run_id"] == start["run_id"]  # attributed to the chat-model run...
    assert (
        custom[0]["parent_ids"] == start["parent_ids"] and len(start["parent_ids"]) >= 1
    )  # ...inside the chain
    tokens = [e["data"]["chunk"].text for e in events if e["event"] == "on_chat_model_stream"]
    out = next(e for e in reversed(events) if e["event"] == "on_chain_end")["data"]["output"]
    assert "".join(tokens) == out == "fake-claude says hello. You said: easy one"


def test_usage_is_counted_once_per_call() -> None:
    m = make_routed()
    handler = UsageMetadataCallbackHandler()
    cfg = {"callbacks": [handler]}
    outputs = [
        m.invoke("hard a", config=cfg),
        m.invoke("easy b", config=cfg),
        _merge(list(m.stream("hard c", config=cfg))),
        _merge(list(m.stream("easy d", config=cfg))),
    ]
    outputs += m.batch(["hard e", "easy f"], config=cfg)
    expected: dict[str, dict[str, int]] = {}
    for out in outputs:
        usage = out.usage_metadata
        name = out.response_metadata["model_name"]
        slot = expected.setdefault(name, {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
        for k in slot:
            slot[k] += usage[k]
    got = {
        name: {k: u[k] for k in ("input_tokens", "output_tokens", "total_tokens")}
        for name, u in handler.usage_metadata.items()
    }
    assert got == expected
    assert set(got) == {"fake-gpt", "fake-claude"}
    # the inner models ran exactly once per call: no hidden second run that could report usage again
    assert len(m.strong.calls) + len(m.weak.calls) == len(outputs)


async def test_usage_is_counted_once_async() -> None:
    m = make_routed()
    with get_usage_metadata_callback() as cb:
        a = await m.ainvoke("hard a")
        b = _merge([c async for c in m.astream("easy b")])
    assert cb.usage_metadata["fake-gpt"]["total_tokens"] == a.usage_metadata["total_tokens"]
    assert cb.usage_metadata["fake-claude"]["total_tokens"] == b.usage_metadata["total_tokens"]


def test_tokens_reach_callbacks_once_on_every_streaming_path() -> None:
    for call in (
        lambda m, cfg: list(m.stream("hard words here", config=cfg)),
        lambda m, cfg: m.model_copy(update={"streaming": True}).invoke("hard words here", config=cfg),
        lambda m, cfg: list(m.stream_events("hard words here", version="v3", config=cfg)),
    ):
        m = make_routed()
        rec = Recorder()
        call(m, {"callbacks": [rec]})
        text = "".join(t for t, _ in rec.tokens)
        assert text == "fake-gpt says hello. You said: hard words here"
