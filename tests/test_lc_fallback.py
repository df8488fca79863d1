"""RoutedChatModel fallback: the other model answers when the chosen one raises (fallback="other"), on every
call path, recorded in the metadata and a second routing event; off by default, when the error is unchanged.
Also sides given as chat models with fallbacks. Real ChatOpenAI / ChatAnthropic against stub servers, and fakes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat, KeywordRouter, make_routed
from provider_stubs import StubAnthropic, StubOpenAI, anthropic_chat, openai_chat
from pydantic import BaseModel, ValidationError

from langchain_routellm import METADATA_KEY, ROUTE_EVENT, RoutedChatModel, RoutingCallbackHandler

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")
import openai  # noqa: E402


class Events(BaseCallbackHandler):
    """Every routellm_route event, with its run id."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], UUID]] = []
        self.errors: list[BaseException] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.events.append((dict(data), run_id))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append(error)

    @property
    def sides(self) -> list[str]:
        return [e["side"] for e, _ in self.events]


@pytest.fixture
def stubs() -> Iterator[tuple[StubOpenAI, StubAnthropic]]:
    with StubOpenAI() as o, StubAnthropic() as a:
        yield o, a


def _real(o: StubOpenAI, a: StubAnthropic, **kw: Any) -> RoutedChatModel:
    """ChatOpenAI strong, ChatAnthropic weak; "hard" prompts go strong."""
    opts: dict[str, Any] = {"router": KeywordRouter(), "threshold": 0.5, **kw}
    return RoutedChatModel(strong=openai_chat(o, model="gpt-4o"), weak=anthropic_chat(a), **opts)


def _merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return sum(chunks[1:], chunks[0])


def _direct_error(o: StubOpenAI, status: int) -> BaseException:
    o.fail_next(status)
    with pytest.raises(Exception) as info:
        openai_chat(o, model="gpt-4o").invoke("a hard question")
    return info.value


# --- real clients: every call path falls back --------------------------------------------------------------


async def _call(m: RoutedChatModel, path: str, text: str, config: dict[str, Any]) -> Any:
    if path == "invoke":
        return m.invoke(text, config=config)
    if path == "ainvoke":
        return await m.ainvoke(text, config=config)
    if path == "stream":
        return _merge(list(m.stream(text, config=config)))
    if path == "astream":
        return _merge([c async for c in m.astream(text, config=config)])
    if path == "batch":
        return m.batch([text], config=config)[0]
    if path == "abatch":
        return (await m.abatch([text], config=config))[0]
    raise AssertionError(path)


PATHS = ["invoke", "ainvoke", "stream", "astream", "batch", "abatch"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("status", [500, 429, 0])  # 0: the connection is dropped
async def test_strong_openai_fails_weak_anthropic_answers(
    stubs: tuple[StubOpenAI, StubAnthropic], path: str, status: int
) -> None:
    o, a = stubs
    error = type(_direct_error(o, status)).__name__  # what ChatOpenAI itself raises for this failure
    o.reset()
    m = _real(o, a, fallback="other")
    o.fail_next(status)
    events = Events()
    answer = await _call(m, path, "a hard question", {"callbacks": [events]})
    assert answer.content == "claude-3-5-haiku-latest: a hard question"
    record = answer.response_metadata[METADATA_KEY]
    assert record["side"] == "weak" and record["model_name"] == "claude-3-5-haiku-latest"
    assert record["fallback_from"] == "strong"
    assert record["fallback_error"] == error
    assert record["win_rate"] == 0.9 and record["reason"] == "router"  # the original decision is kept
    # two events in the one run: the decision, then the fallback record (the one on the answer)
    assert events.sides == ["strong", "weak"]
    assert "fallback_from" not in events.events[0][0]
    assert events.events[1][0] == record
    assert len({run for _, run in events.events}) == 1
    assert len(o.requests) == 1 and len(a.requests) == 1  # each model asked once


@pytest.mark.parametrize("path", PATHS)
async def test_weak_anthropic_fails_strong_openai_answers(
    stubs: tuple[StubOpenAI, StubAnthropic], path: str
) -> None:
    o, a = stubs
    m = _real(o, a, fallback="other")
    a.fail_next(529)  # Anthropic "overloaded"
    answer = await _call(m, path, "an easy one", {})
    assert answer.content == "gpt-4o: an easy one"
    record = answer.response_metadata[METADATA_KEY]
    assert (record["side"], record["fallback_from"]) == ("strong", "weak")
    assert record["fallback_error"]


def test_timeout_falls_back(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    m = RoutedChatModel(
        strong=openai_chat(o, model="gpt-4o", timeout=0.3),
        weak=anthropic_chat(a),
        router=KeywordRouter(),
        threshold=0.5,
        fallback="other",
    )
    o.delay = 2.0
    answer = m.invoke("a hard question")
    assert answer.content == "claude-3-5-haiku-latest: a hard question"
    assert "Timeout" in answer.response_metadata[METADATA_KEY]["fallback_error"]


# --- off by default: the original error, unchanged ----------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("status", [500, 429])
async def test_fallback_off_reraises_the_provider_error_unchanged(
    stubs: tuple[StubOpenAI, StubAnthropic], path: str, status: int
) -> None:
    o, a = stubs
    direct = _direct_error(o, status)
    assert isinstance(direct, openai.APIError)
    for m in (
        _real(o, a),
        _real(o, a, fallback=None),
        _real(o, a, fallback=False),
        _real(o, a, fallback="none"),
    ):
        o.fail_next(status)
        events = Events()
        with pytest.raises(type(direct)) as info:
            await _call(m, path, "a hard question", {"callbacks": [events]})
        assert type(info.value) is type(direct)
        assert str(info.value) == str(direct)
        assert not getattr(info.value, "__notes__", None)
        assert events.sides == ["strong"] and len(events.errors) == 1
    assert not a.requests  # never sent to the other model


def test_both_fail_raises_the_chosen_models_error_with_a_note(
    stubs: tuple[StubOpenAI, StubAnthropic],
) -> None:
    o, a = stubs
    m = _real(o, a, fallback="other")
    o.fail_next(500)
    a.fail_next(529)
    with pytest.raises(openai.APIError) as info:
        m.invoke("a hard question")
    assert "scripted 500" in str(info.value)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and notes[0].startswith("routellm fallback: the weak model also failed")


def test_fallback_on_limits_the_errors(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    m = _real(o, a, fallback="other", fallback_on=(openai.RateLimitError, openai.APIConnectionError))
    o.fail_next(0)  # a connection error: falls back
    assert m.invoke("hard").response_metadata[METADATA_KEY]["fallback_from"] == "strong"
    o.fail_next(400)  # a bad request is not in fallback_on: raised as it is
    with pytest.raises(openai.APIError, match="400"):
        m.invoke("hard")
    assert len(a.requests) == 1


def test_handler_counts_a_fallback(stubs: tuple[StubOpenAI, StubAnthropic], caplog: Any) -> None:
    o, a = stubs
    handler = RoutingCallbackHandler()
    m = _real(o, a, fallback="other", callbacks=[handler])
    o.fail_next(500)
    with caplog.at_level(logging.WARNING, logger="langchain_routellm"):
        m.invoke("a hard question")
    m.invoke("easy")
    totals = handler.totals
    assert (totals["strong"].calls, totals["strong"].errors) == (1, 1)
    assert (totals["weak"].calls, totals["weak"].errors) == (2, 0)
    assert totals["weak"].input_tokens > 0
    assert "routellm fallback: the strong model failed" in caplog.text


# --- fakes: streaming before/after the first chunk, cancellation, options ----------------------------------


BROKEN = RuntimeError("provider down")


def test_stream_error_after_the_first_chunk_propagates() -> None:
    m = make_routed(
        strong=FakeOpenAIChat(error=RuntimeError("mid-stream"), error_after_chunks=2), fallback="other"
    )
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="mid-stream"):
        for chunk in m.stream("a hard question"):
            seen.append(chunk.text)
    assert len(seen) == 2
    assert not m.weak.calls  # no fallback once chunks reached the caller


async def test_astream_error_after_the_first_chunk_propagates() -> None:
    m = make_routed(
        strong=FakeOpenAIChat(error=RuntimeError("mid-stream"), error_after_chunks=1), fallback="other"
    )
    seen = []
    with pytest.raises(RuntimeError, match="mid-stream"):
        async for chunk in m.astream("a hard question"):
            seen.append(chunk)
    assert len(seen) == 1 and not m.weak.calls


def test_stream_error_before_the_first_chunk_falls_back_with_one_record() -> None:
    m = make_routed(strong=FakeOpenAIChat(error=RuntimeError("x"), error_after_chunks=0), fallback="other")
    chunks = list(m.stream("a hard question"))
    with_record = [c for c in chunks if METADATA_KEY in c.response_metadata]
    assert len(with_record) == 1 and with_record[0].response_metadata[METADATA_KEY]["side"] == "weak"
    assert _merge(chunks).content.startswith("fake-claude says hello")


async def test_cancellation_and_keyboard_interrupt_never_fall_back() -> None:
    m = make_routed(strong=FakeOpenAIChat(error_fn=lambda _: KeyboardInterrupt()), fallback="other")
    with pytest.raises(KeyboardInterrupt):
        m.invoke("a hard question")
    m = make_routed(strong=FakeOpenAIChat(async_delay=5.0), fallback="other")
    task = asyncio.ensure_future(m.ainvoke("a hard question"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not m.weak.calls


def test_forced_side_falls_back_too_and_says_so() -> None:
    m = make_routed(weak=FakeAnthropicChat(error=BROKEN), fallback="other")
    record = m.invoke("easy", routellm_model="weak").response_metadata[METADATA_KEY]
    assert (record["reason"], record["side"], record["fallback_from"]) == ("forced", "strong", "weak")
    assert record["fallback_error"] == "RuntimeError"


@pytest.mark.parametrize("option", ["other", ["weak"], ["fake-claude"], ("strong", "weak")])
def test_fallback_forms(option: Any) -> None:
    m = make_routed(strong=FakeOpenAIChat(error=BROKEN), fallback=option)
    assert m.invoke("a hard question").response_metadata[METADATA_KEY]["fallback_from"] == "strong"


def test_fallback_to_itself_only_is_no_fallback() -> None:
    m = make_routed(strong=FakeOpenAIChat(error=BROKEN), fallback=["strong"])
    with pytest.raises(RuntimeError) as info:
        m.invoke("a hard question")
    assert info.value is BROKEN and not m.weak.calls


@pytest.mark.parametrize("option", ["sideways", ["gpt-5"], [], 3])
def test_bad_fallback_option_is_rejected_at_construction(option: Any) -> None:
    with pytest.raises(ValidationError, match="fallback"):
        make_routed(fallback=option)


@pytest.mark.parametrize("option", ["oops", [1], (ValueError, "x")])
def test_bad_fallback_on_is_rejected(option: Any) -> None:
    with pytest.raises(ValidationError, match="fallback_on"):
        make_routed(fallback="other", fallback_on=option)


def test_error_is_the_very_same_object_when_off() -> None:
    m = make_routed(strong=FakeOpenAIChat(error=BROKEN))
    with pytest.raises(RuntimeError) as info:
        m.invoke("a hard question")
    assert info.value is BROKEN and not getattr(BROKEN, "__notes__", None)


def test_tools_and_structured_output_follow_the_fallback() -> None:
    """The fallback model gets the tools in its own dialect (Anthropic input_schema), not the failed one's."""

    class GetWeather(BaseModel):
        """Get the weather in a city."""

        city: str

    m = make_routed(strong=FakeOpenAIChat(error=BROKEN), fallback="other")
    answer = m.bind_tools([GetWeather], tool_choice="any").invoke(
        "a hard question about the weather in Paris"
    )
    assert answer.tool_calls[0]["name"] == "GetWeather"
    assert "input_schema" in m.weak.calls[-1]["kwargs"]["tools"][0]
    parsed = m.with_structured_output(GetWeather, method="json_schema").invoke("a hard one")
    assert isinstance(parsed, GetWeather)  # parsed by the parser of the side that answered
    assert "output_format" in m.weak.calls[-1]["kwargs"]


# --- sides given as chat models with fallbacks --------------------------------------------------------------


def test_side_with_fallbacks_real_clients(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    strong = openai_chat(o, model="gpt-4o").with_fallbacks([anthropic_chat(a, model="claude-sonnet-4-5")])
    m = RoutedChatModel(
        strong=strong, weak=openai_chat(o, model="gpt-4o-mini"), router=KeywordRouter(), threshold=0.5
    )
    assert m.strong is strong and m.model_names["strong"] == "gpt-4o"
    o.fail_next(500)
    answer = m.invoke("a hard question")
    assert answer.content == "claude-sonnet-4-5: a hard question"  # the side's own fallback answered
    record = answer.response_metadata[METADATA_KEY]
    assert record["side"] == "strong" and "fallback_from" not in record  # still the strong side
    assert answer.response_metadata["model_name"] == "claude-sonnet-4-5"
    # streaming and async too
    o.fail_next(500)
    assert _merge(list(m.stream("hard"))).content == "claude-sonnet-4-5: hard"
    o.fail_next(500)
    assert asyncio.run(m.ainvoke("hard")).content == "claude-sonnet-4-5: hard"
    assert m.invoke("easy").content == "gpt-4o-mini: easy"


def test_side_with_fallbacks_honours_exceptions_to_handle() -> None:
    strong = FakeOpenAIChat(error=ValueError("bad")).with_fallbacks(
        [FakeAnthropicChat(model_name="claude-big")], exceptions_to_handle=(ConnectionError,)
    )
    m = make_routed(strong=strong)
    with pytest.raises(ValueError, match="bad"):  # not handled by the side: propagates
        m.invoke("a hard question")
    assert not strong.fallbacks[0].calls
    m = make_routed(strong=strong, fallback="other")  # but the routing-level fallback still applies
    assert m.invoke("a hard question").response_metadata[METADATA_KEY]["side"] == "weak"


def test_side_with_fallbacks_binds_tools_per_model() -> None:
    class Add(BaseModel):
        """Add two numbers."""

        a: int
        b: int

    member = FakeAnthropicChat(model_name="claude-big")
    m = make_routed(strong=FakeOpenAIChat(error=ConnectionError("down")).with_fallbacks([member]))
    answer = m.bind_tools([Add], tool_choice="any").invoke("hard: add 2 and 3")
    assert answer.tool_calls[0]["args"] == {"a": 2, "b": 3}
    assert "input_schema" in member.calls[-1]["kwargs"]["tools"][0]  # the member's own dialect
    with pytest.raises(NotImplementedError, match="need different json_schema requests"):
        m.with_structured_output(Add, method="json_schema")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("gpt-4o", "strong model must be a chat model"),
        (FakeOpenAIChat().bind(temperature=0), r"got \w*Binding"),
        (
            FakeOpenAIChat().bind(temperature=0).with_fallbacks([FakeAnthropicChat()]),
            "bind tools on the Routed",
        ),
        (FakeOpenAIChat().with_fallbacks([FakeAnthropicChat()], exception_key="e"), "exception_key"),
    ],
)
def test_bad_side_names_the_side_and_what_is_accepted(value: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        make_routed(strong=value)
    assert "with_fallbacks" in str(info.value)


async def test_astream_events_show_the_decision_then_the_fallback() -> None:
    m = make_routed(strong=FakeOpenAIChat(error=BROKEN), fallback="other")
    events = [e async for e in m.astream_events("a hard question", version="v2")]
    routes = [e["data"] for e in events if e["event"] == "on_custom_event" and e["name"] == ROUTE_EVENT]
    assert [r["side"] for r in routes] == ["strong", "weak"] and routes[1]["fallback_from"] == "strong"
    (end,) = [e for e in events if e["event"] == "on_chat_model_end"]
    assert end["data"]["output"].response_metadata[METADATA_KEY] == routes[1]


@pytest.mark.parametrize("streaming", [True, False])
def test_stream_events_v3_and_streaming_invoke_fall_back(streaming: bool) -> None:
    m = make_routed(strong=FakeOpenAIChat(error=BROKEN), fallback="other", streaming=streaming)
    assert m.invoke("a hard question").response_metadata[METADATA_KEY]["side"] == "weak"
    stream = m.stream_events("a hard question", version="v3")
    list(stream)
    assert stream.output.response_metadata[METADATA_KEY]["fallback_from"] == "strong"
