"""RoutedLLM fallback (issue 12): the other model answers when the chosen one raises; off by default.

Scripted models cover every call path; the real LlamaIndex `OpenAI` client against a stub server covers the
provider errors users meet (500, 429, timeouts, dropped connections) and per-side arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, attached, events  # noqa: F401
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llamaindex_routellm import PAYLOAD_KEY, RoutedArgumentError, RoutedLLM, RoutingEventHandler

openai = pytest.importorskip("openai")
pytest.importorskip("llama_index.llms.openai")
from provider_stubs import StubOpenAI, llamaindex_openai  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

EASY = "What is the capital of France?"
HARD_Q = f"Prove the {HARD} about primes."


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


class ProviderDown(RuntimeError):
    """What a failing provider raises in the scripted tests."""


def pair(strong_error: BaseException | None = None, weak_error: BaseException | None = None, **kw: Any):
    strong = ScriptedLLM(model_name="strong-model", error=strong_error, **kw)
    weak = ScriptedLLM(model_name="weak-model", error=weak_error, **kw)
    return strong, weak


def routed(strong: ScriptedLLM, weak: ScriptedLLM, **kw: Any) -> RoutedLLM:
    return RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5, **kw)


# -- every endpoint, scripted -------------------------------------------------------------------------------


def _sync(llm: RoutedLLM, method: str, question: str) -> Any:
    if method == "chat":
        return llm.chat(user(question))
    if method == "complete":
        return llm.complete(question)
    if method == "stream_chat":
        return list(llm.stream_chat(user(question)))[-1]
    if method == "stream_complete":
        return list(llm.stream_complete(question))[-1]
    raise AssertionError(method)


async def _async(llm: RoutedLLM, method: str, question: str) -> Any:
    if method == "achat":
        return await llm.achat(user(question))
    if method == "acomplete":
        return await llm.acomplete(question)
    if method == "astream_chat":
        return [c async for c in await llm.astream_chat(user(question))][-1]
    if method == "astream_complete":
        return [c async for c in await llm.astream_complete(question)][-1]
    raise AssertionError(method)


SYNC = ["chat", "complete", "stream_chat", "stream_complete"]
ASYNC = ["achat", "acomplete", "astream_chat", "astream_complete"]


def _text(response: Any) -> str:
    return response.message.content if hasattr(response, "message") else response.text


def _check_fell_back(events, response: Any, method: str) -> None:  # noqa: F811
    assert _text(response).startswith("[weak-model]")
    payload = response.additional_kwargs[PAYLOAD_KEY]
    assert (payload["side"], payload["model_name"]) == ("weak", "weak-model")
    assert (payload["fallback_from"], payload["fallback_error"]) == ("strong", "ProviderDown")
    assert payload["reason"] == "router" and payload["win_rate"] == 0.9  # the original decision is kept
    # one decision event per model call: the chosen one, then the fallback (marked), each with its end event
    first, second = events.decisions
    assert (first.side, first.fallback_from, second.side, second.fallback_from) == (
        "strong",
        None,
        "weak",
        "strong",
    )
    assert second.fallback_error == "ProviderDown" and second.payload == payload
    assert {first.call, second.call} == {method}
    ends = {e.decision_id: e for e in events.ends}
    assert ends[first.decision_id].status == "error" and "ProviderDown" in ends[first.decision_id].error
    assert ends[second.decision_id].status == "ok" and ends[second.decision_id].fallback_from == "strong"


@pytest.mark.parametrize("method", SYNC)
def test_sync_calls_fall_back_to_the_other_model(events, method: str) -> None:  # noqa: F811
    strong, weak = pair(strong_error=ProviderDown("strong is down"))
    llm = routed(strong, weak, fallback="other")
    response = _sync(llm, method, HARD_Q)
    _check_fell_back(events, response, method)
    assert len(weak.calls) == 1 and weak.calls[0]["method"] == method


@pytest.mark.parametrize("method", ASYNC)
async def test_async_calls_fall_back_to_the_other_model(events, method: str) -> None:  # noqa: F811
    strong, weak = pair(strong_error=ProviderDown("strong is down"))
    llm = routed(strong, weak, fallback="other")
    response = await _async(llm, method, HARD_Q)
    _check_fell_back(events, response, method)
    assert len(weak.calls) == 1 and weak.calls[0]["method"] == method


@pytest.mark.parametrize("method", SYNC + ASYNC)
async def test_off_by_default_the_original_error_reaches_the_caller(events, method: str) -> None:  # noqa: F811
    error = ProviderDown("strong is down: 503 from upstream")
    strong, weak = pair(strong_error=error)
    llm = routed(strong, weak)
    with pytest.raises(ProviderDown) as raised:
        if method in SYNC:
            _sync(llm, method, HARD_Q)
        else:
            await _async(llm, method, HARD_Q)
    assert raised.value is error and str(raised.value) == "strong is down: 503 from upstream"
    assert not getattr(raised.value, "__notes__", None)
    assert not weak.calls
    assert len(events.decisions) == len(events.ends) == 1 and events.ends[0].status == "error"


@pytest.mark.parametrize("option", [None, False, "none"])
def test_every_off_value_keeps_errors(option: Any) -> None:
    strong, weak = pair(strong_error=ProviderDown("x"))
    with pytest.raises(ProviderDown):
        routed(strong, weak, fallback=option).chat(user(HARD_Q))
    assert not weak.calls


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fallback": "bogus"}, "fallback must be None"),
        ({"fallback": ["medium"]}, "not a routed model"),
        ({"fallback": []}, "fallback must be None"),
        ({"fallback_on": "ValueError"}, "fallback_on"),
        ({"fallback_on": [int]}, "fallback_on must be an exception class"),
        ({"route_per": "step"}, "route_per must be"),
        ({"strong_kwargs": ["seed"]}, "strong_kwargs must be a dict"),
        ({"weak_kwargs": {"routellm_model": "strong"}}, "routing argument"),
    ],
)
def test_bad_options_fail_at_construction(kwargs: dict, match: str) -> None:
    strong, weak = pair()
    with pytest.raises((ValueError, TypeError), match=match):
        routed(strong, weak, **kwargs)


def test_fallback_by_model_name_list() -> None:
    strong, weak = pair(strong_error=ProviderDown("x"))
    llm = routed(strong, weak, fallback=["weak-model", "strong"])
    assert llm.chat(user(HARD_Q)).additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    # a list that leaves the failing side no alternative: the error propagates
    strong2, weak2 = pair(strong_error=ProviderDown("x"))
    with pytest.raises(ProviderDown):
        routed(strong2, weak2, fallback=["strong"]).chat(user(HARD_Q))
    assert not weak2.calls


def test_the_event_handler_counts_the_failed_call_and_the_fallback() -> None:
    strong, weak = pair(strong_error=ProviderDown("x"))
    llm = routed(strong, weak, fallback="other")
    with attached(RoutingEventHandler()) as handler:
        llm.chat(user(HARD_Q))
        llm.chat(user(EASY))
    summary = handler.summary()
    assert (summary.strong.calls, summary.strong.errors) == (1, 1)
    assert (summary.weak.calls, summary.weak.errors) == (2, 0)
    assert summary.weak.input_tokens > 0 and summary.strong.input_tokens == 0
    assert handler.ledger._reasons == {"router": 2, "fallback": 1}


def test_weak_failing_falls_back_to_strong() -> None:
    strong, weak = pair(weak_error=ProviderDown("weak down"))
    response = routed(strong, weak, fallback="other").chat(user(EASY))
    payload = response.additional_kwargs[PAYLOAD_KEY]
    assert (payload["side"], payload["fallback_from"]) == ("strong", "weak")


def test_fallback_on_restricts_which_errors_fall_back() -> None:
    strong, weak = pair(strong_error=ProviderDown("not a connection error"))
    llm = routed(strong, weak, fallback="other", fallback_on=(ConnectionError, TimeoutError))
    with pytest.raises(ProviderDown):
        llm.chat(user(HARD_Q))
    assert not weak.calls
    strong.error = ConnectionResetError("reset")
    assert llm.chat(user(HARD_Q)).additional_kwargs[PAYLOAD_KEY]["fallback_error"] == "ConnectionResetError"


def test_both_failing_raises_the_chosen_models_error_with_a_note(events) -> None:  # noqa: F811
    first = ProviderDown("strong: 500")
    strong, weak = pair(strong_error=first, weak_error=TimeoutError("weak: timed out"))
    with pytest.raises(ProviderDown) as raised:
        routed(strong, weak, fallback="other").chat(user(HARD_Q))
    assert raised.value is first and str(raised.value) == "strong: 500"
    assert any("TimeoutError: weak: timed out" in n for n in raised.value.__notes__)
    assert [e.status for e in events.ends] == ["error", "error"]


async def test_cancellation_never_falls_back() -> None:
    strong, weak = pair(strong_error=asyncio.CancelledError())
    llm = routed(strong, weak, fallback="other")
    with pytest.raises(asyncio.CancelledError):
        await llm.achat(user(HARD_Q))
    assert not weak.calls
    strong.error = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        llm.chat(user(HARD_Q))
    assert not weak.calls


def test_a_stream_falls_back_before_its_first_chunk_only(events) -> None:  # noqa: F811
    # fails before the first chunk (while iterating, like an HTTP error on the first read): falls back
    strong, weak = pair(strong_error=ProviderDown("x"), error_after_chunks=0)
    llm = routed(strong, weak, fallback="other")
    gen = llm.stream_chat(user(HARD_Q))
    assert not weak.calls  # nothing is read before the caller iterates
    chunks = list(gen)
    assert chunks and all(c.additional_kwargs[PAYLOAD_KEY]["fallback_from"] == "strong" for c in chunks)
    # fails after a chunk was yielded: the partial answer is not continued by another model
    strong.error_after_chunks = 2
    weak.reset_calls()
    got = []
    with pytest.raises(ProviderDown):
        for c in llm.stream_chat(user(HARD_Q)):
            got.append(c)
    assert len(got) == 2 and {c.additional_kwargs[PAYLOAD_KEY]["side"] for c in got} == {"strong"}
    assert not weak.calls


async def test_an_async_stream_falls_back_before_its_first_chunk_only() -> None:
    strong, weak = pair(strong_error=ProviderDown("x"), error_after_chunks=0)
    llm = routed(strong, weak, fallback="other")
    chunks = [c async for c in await llm.astream_complete(HARD_Q)]
    assert chunks[-1].text.startswith("[weak-model]")
    strong.error_after_chunks = 1
    with pytest.raises(ProviderDown):
        async for _ in await llm.astream_complete(HARD_Q):
            pass


def test_forced_calls_follow_the_policy_too() -> None:
    strong, weak = pair(strong_error=ProviderDown("x"))
    payload = routed(strong, weak, fallback="other").chat(user(EASY), routellm_model="strong")
    payload = payload.additional_kwargs[PAYLOAD_KEY]
    assert (payload["reason"], payload["side"], payload["fallback_from"]) == ("forced", "weak", "strong")


# -- predict, structured output, tools ------------------------------------------------------------------------


class Capital(BaseModel):
    city: str


def test_predict_and_structured_predict_fall_back(events) -> None:  # noqa: F811
    strong, weak = pair(strong_error=ProviderDown("x"))
    weak.responder = lambda q: '{"city": "Paris"}'
    weak.is_function_calling_model = False  # text-completion program on the weak side
    llm = routed(strong, weak, fallback="other")
    qa = PromptTemplate("Context: {context_str}\nQuestion: {query_str}\nAnswer:")
    assert llm.predict(qa, context_str="ctx", query_str=HARD_Q) == '{"city": "Paris"}'
    events.clear()
    out = llm.structured_predict(Capital, qa, context_str="ctx", query_str=HARD_Q)
    assert out == Capital(city="Paris")
    assert [(d.side, d.fallback_from, d.call) for d in events.decisions] == [
        ("strong", None, "structured_predict"),
        ("weak", "strong", "structured_predict"),
    ]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [FunctionTool.from_defaults(add)]


def plan(question: str, tools) -> list:
    return [("add", {"a": 2, "b": 3})] if "add" in question.lower() else []


def test_chat_with_tools_fallback_prepares_the_call_for_the_other_model() -> None:
    strong, weak = pair(strong_error=ProviderDown("x"), tool_caller=plan)
    llm = routed(strong, weak, fallback="other")
    response = llm.chat_with_tools(TOOLS, user_msg=f"Add 2 and 3, then the {HARD}.")
    assert response.additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    # the weak model prepared its own tool call (its own format) and parses its own answer
    assert [c["method"] for c in weak.calls] == ["prepare_chat_with_tools", "chat"]
    assert [c.tool_name for c in llm.get_tool_calls_from_response(response)] == ["add"]


async def test_function_agent_run_falls_back_once_and_stays_on_the_side_that_answered(events) -> None:  # noqa: F811
    strong, weak = pair(strong_error=ProviderDown("x"), tool_caller=plan)
    llm = routed(strong, weak, fallback="other")
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=False)
    result = await agent.run(user_msg=f"Add 2 and 3; it is a {HARD}.")
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5]
    assert str(result.response.content).startswith("[weak-model]")
    # the strong model failed once; the second step went straight to the weak one (one side per turn)
    assert [c["method"] for c in strong.calls if c["method"] != "prepare_chat_with_tools"] == []
    sides = [(d.side, d.fallback_from) for d in events.decisions]
    assert sides == [("strong", None), ("weak", "strong"), ("weak", "strong")]
    assert len({d.turn_id for d in events.decisions}) == 1


# -- the real OpenAI client against a stub server ----------------------------------------------------------


@pytest.fixture
def srv() -> Iterator[StubOpenAI]:
    with StubOpenAI() as server:
        yield server


def real(srv: StubOpenAI, fallback: Any = "other", timeout: float = 5, **kw: Any) -> RoutedLLM:
    return RoutedLLM(
        strong=llamaindex_openai(srv, model="gpt-4o", timeout=timeout),
        weak=llamaindex_openai(srv, model="gpt-4o-mini", timeout=timeout),
        router=KeywordRouter(),
        threshold=0.5,
        fallback=fallback,
        **kw,
    )


def _strong_only(body: dict) -> bool:
    return body.get("model") == "gpt-4o"


FAILURES = [
    pytest.param(500, "InternalServerError", id="500"),
    pytest.param(429, "RateLimitError", id="429"),
    pytest.param(0, "APIConnectionError", id="dropped-connection"),
]


@pytest.mark.parametrize(("status", "error_name"), FAILURES)
@pytest.mark.parametrize("method", ["chat", "stream_chat", "complete", "stream_complete"])
def test_openai_provider_errors_fall_back(srv: StubOpenAI, method: str, status: int, error_name: str) -> None:
    srv.fail_when(_strong_only, status)
    response = _sync(real(srv), method, HARD_Q)
    payload = response.additional_kwargs[PAYLOAD_KEY]
    assert (payload["side"], payload["fallback_from"], payload["fallback_error"]) == (
        "weak",
        "strong",
        error_name,
    )
    assert _text(response) == f"gpt-4o-mini: {HARD_Q}"
    assert srv.models == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize(("status", "error_name"), FAILURES)
@pytest.mark.parametrize("method", ["achat", "astream_chat", "acomplete", "astream_complete"])
async def test_openai_provider_errors_fall_back_async(
    srv: StubOpenAI, method: str, status: int, error_name: str
) -> None:
    srv.fail_when(_strong_only, status)
    response = await _async(real(srv), method, HARD_Q)
    payload = response.additional_kwargs[PAYLOAD_KEY]
    assert (payload["side"], payload["fallback_error"]) == ("weak", error_name)
    assert srv.models == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize("method", ["chat", "astream_chat"])
async def test_openai_timeout_falls_back(srv: StubOpenAI, method: str) -> None:
    srv.delay = lambda body: 3.0 if _strong_only(body) else 0.0
    llm = real(srv, timeout=0.3)
    response = _sync(llm, method, HARD_Q) if method == "chat" else await _async(llm, method, HARD_Q)
    assert response.additional_kwargs[PAYLOAD_KEY]["fallback_error"] == "APITimeoutError"


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (500, "InternalServerError", "scripted 500"),
        (429, "RateLimitError", "scripted 429"),
        (0, "APIConnectionError", "Connection error"),
    ],
)
async def test_openai_errors_unchanged_when_off(
    srv: StubOpenAI, status: int, error_type: str, message: str
) -> None:
    llm = real(srv, fallback=None)
    for attempt in ("chat", "achat", "stream_chat"):
        srv.reset()
        srv.fail_when(_strong_only, status)
        with pytest.raises(getattr(openai, error_type), match=message) as raised:
            if attempt == "chat":
                llm.chat(user(HARD_Q))
            elif attempt == "achat":
                await llm.achat(user(HARD_Q))
            else:
                list(llm.stream_chat(user(HARD_Q)))
        assert type(raised.value) is getattr(openai, error_type)
        assert srv.models == ["gpt-4o"]  # the weak model was never asked


async def test_openai_timeout_unchanged_when_off(srv: StubOpenAI) -> None:
    srv.delay = 3.0
    with pytest.raises(openai.APITimeoutError, match="timed out"):
        await real(srv, fallback=None, timeout=0.3).achat(user(HARD_Q))


def test_openai_structured_output_falls_back(srv: StubOpenAI) -> None:
    srv.fail_when(_strong_only, 500)
    out = real(srv).structured_predict(Capital, PromptTemplate("{query_str}"), query_str=HARD_Q)
    assert isinstance(out, Capital)
    assert srv.models == ["gpt-4o", "gpt-4o-mini"]
    assert srv.last["response_format"]["type"] == "json_schema"  # the weak model's own native format


# -- per-side arguments -------------------------------------------------------------------------------------


def test_side_kwargs_reach_only_their_side(srv: StubOpenAI) -> None:
    llm = real(srv, strong_kwargs={"seed": 7, "temperature": 0.1}, weak_kwargs={"temperature": 0.9})
    llm.chat(user(HARD_Q))
    llm.chat(user(EASY))
    llm.chat(user(EASY), temperature=0.5)  # the call's own argument wins
    strong_req, weak_req, weak_req2 = srv.requests
    assert (strong_req["model"], strong_req["seed"], strong_req["temperature"]) == ("gpt-4o", 7, 0.1)
    assert weak_req["model"] == "gpt-4o-mini" and "seed" not in weak_req and weak_req["temperature"] == 0.9
    assert weak_req2["temperature"] == 0.5


def test_side_kwargs_follow_a_fallback(srv: StubOpenAI) -> None:
    srv.fail_when(_strong_only, 500)
    real(srv, strong_kwargs={"seed": 7}, weak_kwargs={"seed": 11}).chat(user(HARD_Q))
    assert [r.get("seed") for r in srv.requests] == [7, 11]


@pytest.mark.parametrize("fallback", [None, "other"])
def test_an_argument_the_chosen_model_refuses_is_our_clear_error(srv: StubOpenAI, fallback: Any) -> None:
    llm = real(srv, fallback=fallback)
    with pytest.raises(RoutedArgumentError, match=r"weak model \(gpt-4o-mini, OpenAI\).*'top_k'") as raised:
        llm.chat(user(EASY), top_k=3)
    assert isinstance(raised.value, TypeError)  # still a TypeError for code that catches one
    assert (raised.value.argument, raised.value.side) == ("top_k", "weak")
    assert "unexpected keyword argument 'top_k'" in str(raised.value.__cause__)
    assert srv.requests == []  # refused before any request; never sent to the other model either
    with pytest.raises(RoutedArgumentError, match="from weak_kwargs"):
        real(srv, weak_kwargs={"top_k": 3}).complete(EASY)
