"""Concurrency with real clients: 8 threads of sync calls and 500 concurrent async calls through RoutedChatModel
(ChatOpenAI strong, ChatAnthropic weak, stub servers, the strong one failing a share of requests, fallback on):
each call is answered exactly once, with the same routing record as a sequential run."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from provider_stubs import StubAnthropic, StubOpenAI, anthropic_chat, last_user_text, openai_chat

from langchain_routellm import METADATA_KEY, RoutedChatModel, RoutingCallbackHandler
from routing_core import RandomRouter

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")

N = 500
FLAKY = "[flaky]"
PROMPTS = [f"question {i} {FLAKY if i % 5 == 0 else ''}".strip() for i in range(N)]


@pytest.fixture(scope="module")
def stubs() -> Iterator[tuple[StubOpenAI, StubAnthropic]]:
    with StubOpenAI() as o, StubAnthropic() as a:
        yield o, a


def _setup(o: StubOpenAI, a: StubAnthropic) -> tuple[RoutedChatModel, RoutingCallbackHandler]:
    o.reset()
    a.reset()
    o.fail_when(
        lambda body: FLAKY in last_user_text(body), 500
    )  # a share of the strong model's requests fail
    handler = RoutingCallbackHandler()
    model = RoutedChatModel(
        strong=openai_chat(o, model="gpt-4o", timeout=60),
        weak=anthropic_chat(a, timeout=60),
        router=RandomRouter(seed=11),
        threshold=0.5,
        fallback="other",
        callbacks=[handler],
    )
    return model, handler


def _expected(prompts: list[str]) -> tuple[list[str], list[str | None]]:
    """Who answers each prompt (the side) and which side failed first (None: no fallback)."""
    routed = ["strong" if w >= 0.5 else "weak" for w in RandomRouter(seed=11).win_rate(prompts)]
    failed = [
        "strong" if side == "strong" and FLAKY in p else None for p, side in zip(prompts, routed, strict=True)
    ]
    answered = ["weak" if f else side for side, f in zip(routed, failed, strict=True)]
    return answered, failed


def _check(
    results: list[Any],
    sequential: list[dict[str, Any]],
    o: StubOpenAI,
    a: StubAnthropic,
    handler: RoutingCallbackHandler,
) -> None:
    records = [r.response_metadata[METADATA_KEY] for r in results]
    assert records == sequential  # the same decision, fallback included, as one call at a time
    answered, failed = _expected(PROMPTS)
    names = {"strong": "gpt-4o", "weak": "claude-3-5-haiku-latest"}
    assert [r.content for r in results] == [
        f"{names[s]}: {p}" for s, p in zip(answered, PROMPTS, strict=True)
    ]
    # every prompt reached each model at most once: the one that answered, and the one that failed first
    to_strong = Counter(last_user_text(b) for b in o.requests)
    to_weak = Counter(last_user_text(b) for b in a.requests)
    for prompt, side, first in zip(PROMPTS, answered, failed, strict=True):
        assert to_strong[prompt] == int(side == "strong" or first == "strong"), prompt
        assert to_weak[prompt] == int(side == "weak"), prompt
    totals = handler.totals
    n_failed = sum(f is not None for f in failed)
    assert totals["strong"].errors == n_failed and totals["weak"].errors == 0
    assert totals["weak"].calls == answered.count("weak")
    assert totals["strong"].calls == answered.count("strong") + n_failed


@pytest.fixture(scope="module")
def sequential(stubs: tuple[StubOpenAI, StubAnthropic]) -> list[dict[str, Any]]:
    o, a = stubs
    model, handler = _setup(o, a)
    results = [model.invoke(p) for p in PROMPTS]
    _check(results, [r.response_metadata[METADATA_KEY] for r in results], o, a, handler)
    records = [r.response_metadata[METADATA_KEY] for r in results]
    answered, failed = _expected(PROMPTS)
    assert [r["side"] for r in records] == answered
    assert [r.get("fallback_from") for r in records] == failed
    assert 0 < sum(f is not None for f in failed) < answered.count("weak") < N  # both sides and fallbacks
    return records


def test_8_threads_of_sync_calls(
    stubs: tuple[StubOpenAI, StubAnthropic], sequential: list[dict[str, Any]]
) -> None:
    o, a = stubs
    model, handler = _setup(o, a)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(model.invoke, PROMPTS))
    _check(results, sequential, o, a, handler)


def test_8_threads_of_sync_streams(
    stubs: tuple[StubOpenAI, StubAnthropic], sequential: list[dict[str, Any]]
) -> None:
    o, a = stubs
    model, handler = _setup(o, a)

    def stream(prompt: str) -> Any:
        chunks = list(model.stream(prompt))
        return sum(chunks[1:], chunks[0])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(stream, PROMPTS[:200]))
    records = [r.response_metadata[METADATA_KEY] for r in results]
    assert records == sequential[:200]


async def test_500_concurrent_async_calls(
    stubs: tuple[StubOpenAI, StubAnthropic], sequential: list[dict[str, Any]]
) -> None:
    o, a = stubs
    model, handler = _setup(o, a)
    o.delay = a.delay = 0.05  # every request in flight at once
    start = time.perf_counter()
    results = await asyncio.gather(*(model.ainvoke(p) for p in PROMPTS))
    elapsed = time.perf_counter() - start
    _check(list(results), sequential, o, a, handler)
    # concurrent, not one after another: 500 calls of >= 50 ms each would take >= 25 s in sequence
    assert elapsed < 20, elapsed
