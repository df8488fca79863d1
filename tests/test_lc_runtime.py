"""RoutedChatModel at runtime: batches keep order, LCEL chains, 200 concurrent calls, a non-blocking event loop."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat, KeywordRouter, make_routed

from langchain_routellm import METADATA_KEY
from routing_core import RandomRouter


def test_batch_with_mixed_decisions_keeps_order() -> None:
    m = make_routed()
    prompts = [("hard" if i % 3 == 0 else "easy") + f" prompt {i}" for i in range(30)]
    results = m.batch(prompts, config={"max_concurrency": 5})
    assert len(results) == len(prompts)
    for prompt, result in zip(prompts, results, strict=True):
        assert result.content.endswith(f"You said: {prompt}")
        side = "strong" if prompt.startswith("hard") else "weak"
        assert result.response_metadata[METADATA_KEY]["side"] == side
        assert result.response_metadata["model_name"] == m.model_names[side]


async def test_abatch_with_mixed_decisions_keeps_order() -> None:
    m = make_routed(
        strong=FakeOpenAIChat(async_delay=0.003), weak=FakeAnthropicChat()
    )  # strong answers later
    prompts = [("hard" if i % 2 == 0 else "easy") + f" prompt {i}" for i in range(20)]
    results = await m.abatch(prompts)
    assert [r.content.rsplit(": ", 1)[-1] for r in results] == prompts
    assert [r.response_metadata[METADATA_KEY]["side"] for r in results] == ["strong", "weak"] * 10


def test_lcel_chain() -> None:
    m = make_routed()
    prompt = ChatPromptTemplate.from_messages([("system", "You answer briefly."), ("human", "{question}")])
    chain = prompt | m | StrOutputParser()
    assert chain.invoke({"question": "a hard one"}) == "fake-gpt says hello. You said: a hard one"
    assert chain.batch([{"question": "easy"}, {"question": "hard"}]) == [
        "fake-claude says hello. You said: easy",
        "fake-gpt says hello. You said: hard",
    ]
    pieces = list(chain.stream({"question": "easy stream"}))
    assert len(pieces) > 1 and "".join(pieces) == "fake-claude says hello. You said: easy stream"
    # the system prompt reached the model, the router only read the question
    assert m.weak.calls[-1]["messages"][0].content == "You answer briefly."
    assert m.router.seen[-1] == "easy stream"


async def test_lcel_chain_async() -> None:
    m = make_routed()
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | m | StrOutputParser()
    assert await chain.ainvoke({"q": "hard"}) == "fake-gpt says hello. You said: hard"
    pieces = [p async for p in chain.astream({"q": "easy"})]
    assert "".join(pieces) == "fake-claude says hello. You said: easy"


async def test_200_concurrent_ainvoke_match_sequential_decisions() -> None:
    m = make_routed(
        router="random",
        threshold=0.5,
        strong=FakeOpenAIChat(async_delay=0.002),
        weak=FakeAnthropicChat(async_delay=0.002),
    )
    prompts = [f"concurrent question {i}" for i in range(200)]
    sequential = [m.invoke(p).response_metadata[METADATA_KEY] for p in prompts]
    results = await asyncio.gather(*(m.ainvoke(p) for p in prompts))
    concurrent = [r.response_metadata[METADATA_KEY] for r in results]
    assert concurrent == sequential
    assert [r.content.rsplit(": ", 1)[-1] for r in results] == prompts
    expected = ["strong" if w >= 0.5 else "weak" for w in RandomRouter().win_rate(prompts)]
    assert [c["side"] for c in concurrent] == expected
    assert 50 < expected.count("strong") < 150


async def test_the_event_loop_is_not_blocked_by_the_router() -> None:
    class SlowRouter(KeywordRouter):
        def _win_rate(self, prompts: list[str]) -> np.ndarray:
            time.sleep(0.3)  # a heavy learned router
            return super()._win_rate(prompts)

    m = make_routed(router=SlowRouter())
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    msg = await m.ainvoke("hard")
    chunks = [c async for c in m.astream("easy")]
    done = True
    await task
    assert msg.response_metadata[METADATA_KEY]["side"] == "strong"
    assert chunks[0].response_metadata[METADATA_KEY]["side"] == "weak"
    assert ticks >= 20  # ~0.6 s of routing: the loop kept ticking (a blocked loop would show ~0-2 ticks)
