"""Routing events and RoutingEventHandler: payloads, totals, tokens, costs and savings versus always-strong."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, attached, events  # noqa: F401
from llama_index.core.base.llms.types import ChatMessage, ImageBlock

from llamaindex_routellm import (
    PAYLOAD_KEY,
    RoutedCallEndEvent,
    RoutedLLM,
    RoutingDecisionEvent,
    RoutingEventHandler,
    RoutingSummary,
)
from routing_core.costs import DEFAULT_PRICES, PriceTable

EASY = "What is the capital of France?"
HARD_Q = f"Prove the {HARD} about primes."


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


@pytest.fixture
def handler() -> Iterator[RoutingEventHandler]:
    with attached(RoutingEventHandler()) as h:
        yield h


def priced_llm(**kwargs) -> tuple[RoutedLLM, ScriptedLLM, ScriptedLLM]:
    strong = ScriptedLLM(model_name="gpt-4o", **kwargs)
    weak = ScriptedLLM(model_name="gpt-4o-mini", **kwargs)
    return RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5), strong, weak


def test_event_payload_matches_response_payload(events) -> None:  # noqa: F811
    llm, *_ = priced_llm()
    response = llm.chat(user(HARD_Q))
    (decision,) = events.decisions
    assert decision.payload == response.additional_kwargs[PAYLOAD_KEY]
    assert decision.class_name() == "RoutingDecisionEvent"
    dumped = decision.model_dump()
    assert dumped["class_name"] == "RoutingDecisionEvent"
    assert dumped["router"] == "keyword" and dumped["win_rate"] == 0.9 and dumped["model"] == "gpt-4o"
    (end,) = events.ends
    assert isinstance(end, RoutedCallEndEvent) and end.model_dump()["class_name"] == "RoutedCallEndEvent"
    assert end.decision_id == decision.decision_id and end.strong_model == "gpt-4o"


def test_events_share_the_wrapper_span(events) -> None:  # noqa: F811
    llm, *_ = priced_llm()
    llm.chat(user(EASY))
    decision, end = events.decisions[0], events.ends[0]
    assert decision.span_id is not None and decision.span_id == end.span_id
    assert decision.span_id.startswith("RoutedLLM.chat")


def test_handler_totals_tokens_and_savings(handler, events) -> None:  # noqa: F811
    llm, strong, weak = priced_llm()
    llm.chat(user(HARD_Q))
    llm.chat(user(EASY))
    llm.complete(EASY)
    list(llm.stream_chat(user(EASY)))
    s = handler.summary()
    assert isinstance(s, RoutingSummary)
    assert (s.calls, s.strong.calls, s.weak.calls) == (4, 1, 3)
    assert s.strong_share == 0.25
    # tokens are those reported in the end events
    ends = events.ends
    for side, totals in (("strong", s.strong), ("weak", s.weak)):
        assert totals.input_tokens == sum(e.input_tokens for e in ends if e.side == side) > 0
        assert totals.output_tokens == sum(e.output_tokens for e in ends if e.side == side) > 0
    big, small = DEFAULT_PRICES["gpt-4o"], DEFAULT_PRICES["gpt-4o-mini"]
    assert s.strong.cost == pytest.approx(big.cost(s.strong.input_tokens, s.strong.output_tokens))
    assert s.weak.cost == pytest.approx(small.cost(s.weak.input_tokens, s.weak.output_tokens))
    assert s.cost == pytest.approx(s.strong.cost + s.weak.cost)
    all_in = s.strong.input_tokens + s.weak.input_tokens
    all_out = s.strong.output_tokens + s.weak.output_tokens
    assert s.always_strong_cost == pytest.approx(big.cost(all_in, all_out))
    assert s.saved == pytest.approx(s.always_strong_cost - s.cost) and s.saved > 0
    assert s.saved_fraction == pytest.approx(s.saved / s.always_strong_cost)
    assert s.unpriced_calls == 0
    text = str(s)
    assert "strong share: 25.0% of 4 call(s)" in text and "saved by routing: $" in text
    d = s.to_dict()
    assert d["strong_share"] == 0.25 and d["strong"]["calls"] == 1


def test_handler_counts_forced_no_text_and_errors(handler) -> None:
    llm, strong, weak = priced_llm()
    llm.chat(user(HARD_Q), routellm_model="weak")
    llm.chat([ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/a.png")])])
    weak.error = RuntimeError("boom")
    with pytest.raises(RuntimeError):
        llm.complete(EASY)
    s = handler.summary()
    assert s.calls == 3 and s.forced_calls == 1 and s.no_text_calls == 1
    assert s.weak.errors == 1 and s.strong.errors == 0
    assert [d.reason for d in handler.decisions] == ["forced", "no_text", "router"]


def test_handler_with_unknown_prices(handler) -> None:
    strong, weak = ScriptedLLM(model_name="house-large"), ScriptedLLM(model_name="house-small")
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    llm.chat(user(EASY))
    s = handler.summary()
    assert s.cost is None and s.always_strong_cost is None and s.saved is None
    assert s.unpriced_calls == 1 and s.weak.input_tokens > 0
    assert "price unknown" in str(s)


def test_handler_with_custom_price_table() -> None:
    table = PriceTable({"house-large": (10.0, 30.0), "house-small": (1.0, 2.0)}, include_defaults=False)
    h = RoutingEventHandler(price_table=table, max_decisions=1)
    strong, weak = ScriptedLLM(model_name="house-large"), ScriptedLLM(model_name="house-small")
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    with attached(h):
        llm.chat(user(EASY))
        llm.chat(user(HARD_Q))
    s = h.summary()
    assert s.cost is not None and s.saved is not None and 0 < s.saved < s.always_strong_cost
    assert len(h.decisions) == 1 and h.decisions[0].side == "strong"  # only the latest is kept
    h.reset()
    assert h.summary().calls == 0 and h.summary().cost is None and h.decisions == []


def test_handler_ignores_other_events(handler) -> None:
    from llama_index.core.instrumentation.events.llm import LLMPredictStartEvent
    from llama_index.core.prompts import PromptTemplate

    handler.handle(LLMPredictStartEvent(template=PromptTemplate("x"), template_args={}))
    assert handler.summary().calls == 0


async def test_handler_under_concurrency(handler) -> None:
    llm, strong, weak = priced_llm()
    questions = [f"{HARD if i % 4 == 0 else 'easy'} question {i}" for i in range(200)]
    await asyncio.gather(*(llm.achat(user(q)) for q in questions))
    s = handler.summary()
    assert s.calls == 200 and s.strong.calls == 50 and s.weak.calls == 150
    assert s.strong.calls == len(strong.calls) and s.weak.calls == len(weak.calls)


def test_decision_event_can_be_built_by_hand() -> None:
    e = RoutingDecisionEvent(router="mf", threshold=0.3, win_rate=0.7, side="strong", model="gpt-4o")
    assert e.payload["side"] == "strong" and e.payload["reason"] == "router"
    with pytest.raises(ValueError):
        RoutingDecisionEvent(router="mf", threshold=0.3, side="middle", model="x")
