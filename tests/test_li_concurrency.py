"""Concurrency (issue 12): 8 threads of sync calls and 500 concurrent `achat` calls through the real LlamaIndex
`OpenAI` client on a stub server, fallback included: each call answered once, with the decision a sequential run
makes."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from li_fakes import HARD, KeywordRouter, events  # noqa: F401
from llama_index.core.base.llms.types import ChatMessage

from llamaindex_routellm import PAYLOAD_KEY, RoutedLLM

pytest.importorskip("llama_index.llms.openai")
from provider_stubs import StubOpenAI, last_user_text, llamaindex_openai  # noqa: E402

FAIL = "[flaky]"  # questions with this tag fail on the strong model: the weak one answers them


def question(i: int) -> str:
    text = f"question {i}: " + (f"prove the {HARD}" if i % 3 == 0 else "name a colour")
    return f"{text} {FAIL}" if i % 5 == 0 else text


def expected(i: int) -> tuple[str, str | None]:
    """(side that answers, fallback_from) for question i, as a sequential run decides it."""
    strong = i % 3 == 0
    if strong and i % 5 == 0:
        return "weak", "strong"
    return ("strong" if strong else "weak"), None


@pytest.fixture
def srv() -> Iterator[StubOpenAI]:
    with StubOpenAI() as server:
        server.fail_when(lambda b: b.get("model") == "gpt-4o" and FAIL in last_user_text(b), 503)
        yield server


def routed(srv: StubOpenAI) -> RoutedLLM:
    return RoutedLLM(
        strong=llamaindex_openai(srv, model="gpt-4o", timeout=60),
        weak=llamaindex_openai(srv, model="gpt-4o-mini", timeout=60),
        router=KeywordRouter(),
        threshold=0.5,
        fallback="other",
    )


MODEL = {"strong": "gpt-4o", "weak": "gpt-4o-mini"}


def check(srv: StubOpenAI, results: dict[int, tuple[str, dict]], n: int) -> None:
    assert sorted(results) == list(range(n))
    for i, (text, payload) in results.items():
        side, fallback_from = expected(i)
        assert (payload["side"], payload.get("fallback_from")) == (side, fallback_from), i
        assert text == f"{MODEL[side]}: {question(i)}", i  # its own answer, not another call's
    # every question reached the server once per model tried: once, or twice when it fell back
    per_question = Counter(last_user_text(r) for r in srv.requests)
    for i in range(n):
        assert per_question[question(i)] == (2 if expected(i)[1] else 1), i
    assert len(srv.requests) == n + sum(1 for i in range(n) if expected(i)[1])


def test_eight_threads_of_sync_calls(srv: StubOpenAI, events) -> None:  # noqa: F811
    llm = routed(srv)
    n = 96
    sequential = {i: llm.route(question(i)).side for i in range(n)}  # the decisions, without any call
    results: dict[int, tuple[str, dict]] = {}
    lock = threading.Lock()

    def work(i: int) -> None:
        kind = i % 3
        if kind == 0:
            r = llm.chat([ChatMessage(role="user", content=question(i))])
            out = (r.message.content, r.additional_kwargs[PAYLOAD_KEY])
        elif kind == 1:
            c = llm.complete(question(i))
            out = (c.text, c.additional_kwargs[PAYLOAD_KEY])
        else:
            last = list(llm.stream_chat([ChatMessage(role="user", content=question(i))]))[-1]
            out = (last.message.content, last.additional_kwargs[PAYLOAD_KEY])
        with lock:
            assert i not in results
            results[i] = out

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(n)))
    check(srv, results, n)
    assert all(
        results[i][1]["side"] == sequential[i] or results[i][1].get("fallback_from") == sequential[i]
        for i in range(n)
    )
    # one decision event per model call, each closed by its end event
    ends = {e.decision_id: e.status for e in events.ends}
    assert len(events.decisions) == len(ends) == len(srv.requests)
    assert Counter(ends.values()) == {"ok": n, "error": sum(1 for i in range(n) if expected(i)[1])}


async def test_five_hundred_concurrent_achat_calls(srv: StubOpenAI, events) -> None:  # noqa: F811
    llm = routed(srv)
    n = 500
    srv.delay = 0.05  # keep many requests in flight at once

    async def one(i: int) -> tuple[int, tuple[str, dict]]:
        r = await llm.achat([ChatMessage(role="user", content=question(i))])
        return i, (r.message.content, r.additional_kwargs[PAYLOAD_KEY])

    done = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout=240)
    results = dict(done)
    assert len(done) == n == len(results)
    check(srv, results, n)
    assert len(events.decisions) == len(events.ends) == len(srv.requests)
    # the decisions are those of a sequential run
    for i in (0, 1, 3, 5, 15, 499):
        decided = llm.route(question(i))
        payload = results[i][1]
        assert (payload["win_rate"], payload["text_hash"]) == (decided.win_rate, decided.text_hash)
