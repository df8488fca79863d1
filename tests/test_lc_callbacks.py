"""RoutingCallbackHandler: decision logs, running totals per side, costs, savings, errors, thread safety."""

from __future__ import annotations

import asyncio
import logging
import threading
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat, make_routed

from langchain_routellm import ROUTE_EVENT, RoutingCallbackHandler, message_text
from routing_core.costs import PriceTable, count_tokens

PRICES = {"fake-gpt": (10.0, 30.0), "fake-claude": (1.0, 2.0)}


def test_totals_per_side_from_usage_metadata() -> None:
    handler = RoutingCallbackHandler()
    m = make_routed()
    cfg = {"callbacks": [handler]}
    outs = [m.invoke("hard 1", config=cfg), m.invoke("easy 2", config=cfg), m.invoke("easy 3", config=cfg)]
    chunks = list(m.stream("hard 4", config=cfg))
    outs.append(sum(chunks[1:], chunks[0]))
    totals = handler.totals
    assert (totals["strong"].calls, totals["weak"].calls) == (2, 2)
    for side, idx in (("strong", [0, 3]), ("weak", [1, 2])):
        assert totals[side].input_tokens == sum(outs[i].usage_metadata["input_tokens"] for i in idx)
        assert totals[side].output_tokens == sum(outs[i].usage_metadata["output_tokens"] for i in idx)
        assert totals[side].estimated_calls == 0 and totals[side].cost is None
    assert totals["strong"].model_names == {"fake-gpt": 2} and totals["weak"].model_names == {
        "fake-claude": 2
    }
    summary = handler.summary()
    assert summary.total_calls == 4 and summary.strong_share == 0.5
    assert summary.saved is None and "price unknown: pass prices" in str(summary)


def test_costs_and_savings_versus_always_strong() -> None:
    handler = RoutingCallbackHandler(prices=PRICES)
    m = make_routed(callbacks=[handler])  # a handler on the model itself works too
    outs = [m.invoke(p) for p in ("hard a", "easy b", "easy c", "easy d")]
    usage = [o.usage_metadata for o in outs]
    strong_cost = (usage[0]["input_tokens"] * 10 + usage[0]["output_tokens"] * 30) / 1e6
    weak_cost = sum(u["input_tokens"] * 1 + u["output_tokens"] * 2 for u in usage[1:]) / 1e6
    always = sum(u["input_tokens"] * 10 + u["output_tokens"] * 30 for u in usage) / 1e6
    s = handler.summary()
    assert s.strong.cost == pytest.approx(strong_cost) and s.weak.cost == pytest.approx(weak_cost)
    assert s.total_cost == pytest.approx(strong_cost + weak_cost)
    assert s.always_strong_cost == pytest.approx(always)
    assert s.saved == pytest.approx(always - strong_cost - weak_cost) and s.saved > 0
    assert s.saved_fraction == pytest.approx(s.saved / always)
    assert s.strong_model == "fake-gpt"
    text = str(s)
    assert "saved by routing: $" in text and "strong share: 25.0% of 4 call(s)" in text
    assert s.to_dict()["weak"]["calls"] == 3


def test_always_strong_needs_the_strong_price() -> None:
    all_weak = RoutingCallbackHandler(prices=PRICES)
    m = make_routed(callbacks=[all_weak])
    m.invoke("easy")
    assert all_weak.summary().always_strong_cost is None  # never saw the strong model's name
    named = RoutingCallbackHandler(prices=PriceTable(PRICES), strong_model="fake-gpt")
    m.invoke("easy", config={"callbacks": [named]})
    s = named.summary()
    assert s.always_strong_cost is not None and s.saved is not None and s.saved > 0


def test_token_estimates_without_usage_metadata() -> None:
    handler = RoutingCallbackHandler()
    m = make_routed(strong=FakeOpenAIChat(report_usage=False), weak=FakeAnthropicChat(report_usage=False))
    out = m.invoke([HumanMessage("a hard question, please")], config={"callbacks": [handler]})
    assert out.usage_metadata is None
    t = handler.totals["strong"]
    assert t.estimated_calls == 1
    assert t.input_tokens == count_tokens("a hard question, please")
    assert t.output_tokens == count_tokens(message_text(out))
    tools = m.bind_tools(
        [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "f",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ]
    )
    tool_msg = tools.invoke("easy", config={"callbacks": [handler]})
    assert tool_msg.tool_calls and handler.totals["weak"].output_tokens > 0


def test_decisions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    handler = RoutingCallbackHandler()
    m = make_routed()
    with caplog.at_level(logging.INFO, logger="langchain_routellm"):
        m.invoke("hard", config={"callbacks": [handler]})
        m.invoke("easy", model="strong", config={"callbacks": [handler]})
    lines = [r.getMessage() for r in caplog.records if r.name == "langchain_routellm"]
    assert (
        lines[0]
        == "routellm route: router -> strong (fake-gpt; router=keyword win_rate=0.9000 threshold=0.5)"
    )
    assert (
        lines[1] == "routellm route: forced -> strong (fake-gpt; router=keyword win_rate=n/a threshold=0.5)"
    )


def test_custom_logger_and_level(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("my.app.routing")
    handler = RoutingCallbackHandler(logger=log, log_level=logging.WARNING)
    with caplog.at_level(logging.WARNING, logger="my.app.routing"):
        make_routed().invoke("easy", config={"callbacks": [handler]})
    assert [r.levelno for r in caplog.records if r.name == "my.app.routing"] == [logging.WARNING]


def test_errors_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    handler = RoutingCallbackHandler()
    m = make_routed(weak=FakeAnthropicChat(error=RuntimeError("quota")))
    with (
        caplog.at_level(logging.INFO, logger="langchain_routellm"),
        pytest.raises(RuntimeError, match="quota"),
    ):
        m.invoke("easy", config={"callbacks": [handler]})
    m.invoke("hard", config={"callbacks": [handler]})
    totals = handler.totals
    assert totals["weak"].errors == 1 and totals["weak"].calls == 1 and totals["strong"].calls == 1
    assert any("failed: RuntimeError: quota" in r.getMessage() for r in caplog.records)
    assert handler._pending == {}  # nothing left behind


def test_other_runs_and_events_are_ignored() -> None:
    handler = RoutingCallbackHandler()
    run_id = uuid4()
    handler.on_chat_model_start({}, [[HumanMessage("x")]], run_id=run_id)
    handler.on_custom_event("something_else", {"model": "strong"}, run_id=run_id)
    handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=AIMessage("y"))]]), run_id=run_id)
    assert handler.summary().total_calls == 0 and handler._pending == {}


def test_reset() -> None:
    handler = RoutingCallbackHandler(prices=PRICES)
    make_routed().invoke("hard", config={"callbacks": [handler]})
    handler.reset()
    s = handler.summary()
    assert s.total_calls == 0 and s.strong.calls == 0 and s.total_cost is None


def test_thread_safe_totals() -> None:
    handler = RoutingCallbackHandler(prices=PRICES)
    m = make_routed(callbacks=[handler])
    prompts = [("hard " if i % 3 == 0 else "easy ") + str(i) for i in range(90)]
    outs = m.batch(prompts, config={"max_concurrency": 8})

    # direct hammering from many threads, bypassing the model
    def worker(n: int) -> None:
        for _ in range(n):
            rid = uuid4()
            handler.on_custom_event(ROUTE_EVENT, {"side": "weak", "model_name": "fake-claude"}, run_id=rid)
            msg = AIMessage("z", usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
            handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=msg)]]), run_id=rid)

    threads = [threading.Thread(target=worker, args=(200,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals = handler.totals
    assert totals["strong"].calls == 30 and totals["weak"].calls == 60 + 1600
    assert (
        totals["weak"].input_tokens
        == sum(o.usage_metadata["input_tokens"] for o in outs[1::3])
        + sum(o.usage_metadata["input_tokens"] for o in outs[2::3])
        + 1600
    )


async def test_async_runs() -> None:
    handler = RoutingCallbackHandler(prices=PRICES)
    m = make_routed(strong=FakeOpenAIChat(async_delay=0.001), weak=FakeAnthropicChat(async_delay=0.001))
    prompts = [("hard " if i % 2 else "easy ") + str(i) for i in range(40)]
    await asyncio.gather(*(m.ainvoke(p, config={"callbacks": [handler]}) for p in prompts))
    async for _ in m.astream("hard streamed", config={"callbacks": [handler]}):
        pass
    s = handler.summary()
    assert (s.strong.calls, s.weak.calls) == (21, 20) and s.saved is not None and s.saved > 0
