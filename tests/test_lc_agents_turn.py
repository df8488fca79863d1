"""One decision per turn in LangChain agent loops: LangGraph's `create_react_agent` and LangChain's `create_agent`
re-invoke the model at every step; each step is routed on the last human message, so one side answers every step
of a turn (tool results never move it). `routing_text=` routes per step instead. Real ChatOpenAI / ChatAnthropic
against stub servers."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from lc_fakes import KeywordRouter
from provider_stubs import Recorded, StubAnthropic, StubOpenAI, anthropic_chat, openai_chat

from langchain_routellm import METADATA_KEY, ROUTE_EVENT, RoutedChatModel, message_text

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def lookup(topic: str) -> str:
    """Look a topic up in the encyclopedia."""
    return "This is a hard, deep and difficult topic."  # the router's keyword, in a tool result


def _tool_results(body: Recorded) -> int:
    """Tool results in a request (OpenAI role "tool" messages, Anthropic tool_result blocks)."""
    n = 0
    for m in body.get("messages") or []:
        if m.get("role") == "tool":
            n += 1
        content = m.get("content")
        if isinstance(content, list):
            n += sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    return n


class Events(BaseCallbackHandler):
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.records.append(dict(data))


@pytest.fixture
def stubs() -> Iterator[tuple[StubOpenAI, StubAnthropic]]:
    with StubOpenAI() as o, StubAnthropic() as a:
        for s in (o, a):
            s.use_tool = lambda body: _tool_results(body) < 2  # two tool steps, then the answer
        yield o, a


def _model(o: StubOpenAI, a: StubAnthropic, **kw: Any) -> RoutedChatModel:
    opts: dict[str, Any] = {"router": KeywordRouter(), "threshold": 0.5, **kw}
    return RoutedChatModel(strong=openai_chat(o, model="gpt-4o"), weak=anthropic_chat(a), **opts)


def _react(model: RoutedChatModel, tools: list[Any]) -> Any:
    prebuilt = pytest.importorskip("langgraph.prebuilt")
    with (
        warnings.catch_warnings()
    ):  # deprecated in favour of langchain.agents.create_agent, still widely used
        warnings.simplefilter("ignore")
        return prebuilt.create_react_agent(model, tools)


def _create_agent(model: RoutedChatModel, tools: list[Any]) -> Any:
    agents = pytest.importorskip("langchain.agents")
    return agents.create_agent(model, tools)


BUILDERS: dict[str, Callable[[RoutedChatModel, list[Any]], Any]] = {
    "langgraph.create_react_agent": _react,
    "langchain.create_agent": _create_agent,
}


def _ai_sides(messages: list[BaseMessage]) -> list[str]:
    return [m.response_metadata[METADATA_KEY]["side"] for m in messages if isinstance(m, AIMessage)]


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize(
    ("question", "side"), [("a hard question: 6 times 7?", "strong"), ("easy: 6 times 7?", "weak")]
)
def test_every_step_of_an_agent_run_goes_to_one_side(
    stubs: tuple[StubOpenAI, StubAnthropic], builder: str, question: str, side: str
) -> None:
    o, a = stubs
    events = Events()
    agent = BUILDERS[builder](_model(o, a), [multiply])
    out = agent.invoke({"messages": [("human", question)]}, config={"callbacks": [events]})
    assert _ai_sides(out["messages"]) == [side] * 3  # two tool steps and the answer
    assert len(out["messages"]) == 6  # human, (ai + tool) x 2, ai
    # one decision: every step routed on the question, with the same record
    assert len(events.records) == 3
    assert all(r == events.records[0] for r in events.records)
    assert (
        events.records[0]["text_preview"] == question and events.records[0]["source"] == "last_user_message"
    )
    used, unused = (o, a) if side == "strong" else (a, o)
    assert len(used.requests) == 3 and not unused.requests


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_async_agent_run_goes_to_one_side(stubs: tuple[StubOpenAI, StubAnthropic], builder: str) -> None:
    o, a = stubs
    agent = BUILDERS[builder](_model(o, a), [multiply])
    out = asyncio.run(agent.ainvoke({"messages": [("human", "easy: 6 times 7?")]}))
    assert _ai_sides(out["messages"]) == ["weak"] * 3
    assert not o.requests


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_tool_results_never_move_the_turn_but_routing_text_can(
    stubs: tuple[StubOpenAI, StubAnthropic], builder: str
) -> None:
    """A tool result full of the router's keyword: ignored by default; routed on with a per-step routing_text."""
    o, a = stubs
    for s in (o, a):
        s.use_tool = lambda body: _tool_results(body) < 1
    agent = BUILDERS[builder](_model(o, a), [lookup])
    out = agent.invoke({"messages": [("human", "tell me about tides")]})
    assert _ai_sides(out["messages"]) == ["weak", "weak"]

    def per_step(messages: Any) -> str:  # the knob: route every step on its last message
        return message_text(messages[-1])

    agent = BUILDERS[builder](_model(o, a, routing_text=per_step), [lookup])
    out = agent.invoke({"messages": [("human", "tell me about tides")]})
    assert _ai_sides(out["messages"]) == [
        "weak",
        "strong",
    ]  # the step after the "hard" tool result went strong


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_each_new_human_message_is_a_new_decision(
    stubs: tuple[StubOpenAI, StubAnthropic], builder: str
) -> None:
    o, a = stubs
    agent = BUILDERS[builder](_model(o, a), [multiply])
    first = agent.invoke({"messages": [("human", "a hard question: 6 times 7?")]})
    history = first["messages"]
    for s in (o, a):
        s.use_tool = lambda body: _tool_results(body) < 4  # two more tool steps in the second turn
    second = agent.invoke({"messages": [*history, HumanMessage("thanks, and 2 times 3?")]})
    new = second["messages"][len(history) :]
    assert _ai_sides(history) == ["strong"] * 3
    assert _ai_sides(new) == ["weak"] * 3  # the second turn is routed on its own question


def test_a_step_that_falls_back_keeps_the_turns_decision(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    """With fallback on, a step whose model fails is answered by the other; the decision stays the turn's."""
    o, a = stubs
    o.fail_when(lambda body: _tool_results(body) == 1, 500)  # the strong model fails at the second step only
    events = Events()
    agent = _create_agent(_model(o, a, fallback="other"), [multiply])
    out = agent.invoke(
        {"messages": [("human", "a hard question: 6 times 7?")]}, config={"callbacks": [events]}
    )
    records = [m.response_metadata[METADATA_KEY] for m in out["messages"] if isinstance(m, AIMessage)]
    assert [r["side"] for r in records] == ["strong", "weak", "strong"]
    assert records[1]["fallback_from"] == "strong" and "fallback_from" not in records[2]
    assert {(r["win_rate"], r["text_hash"], r["reason"]) for r in records} == {
        (records[0]["win_rate"], records[0]["text_hash"], "router")
    }
    assert [r["side"] for r in events.records] == ["strong", "strong", "weak", "strong"]
