"""Both wrappers record into a RouteStore: 1,000 threaded + 500 async routed calls, a failing store never fails a
call, and a router trained from the store's feedback loads in both wrappers."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import lc_fakes  # noqa: E402
import li_fakes  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage  # noqa: E402

from langchain_routellm import RoutedChatModel  # noqa: E402
from langchain_routellm.store import RouteStoreCallbackHandler  # noqa: E402
from llamaindex_routellm import RoutedLLM  # noqa: E402
from llamaindex_routellm.store import RouteStoreEventHandler  # noqa: E402
from routing_core.labeling import training_data  # noqa: E402
from routing_core.store import RouteStore  # noqa: E402

PRICES = {"fake-gpt": (10.0, 30.0), "fake-claude": (1.0, 3.0)}


def lc_prompt(i: int) -> str:
    return f"call {i}: " + ("a hard question about proofs" if i % 4 == 0 else "an easy question about facts")


def run_load(invoke: Any, ainvoke: Any, threads: int = 8, per_thread: int = 125, n_async: int = 500) -> None:
    """`threads` threads each calling `invoke(i)` `per_thread` times, then `n_async` concurrent `ainvoke(i)`."""
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for k in range(per_thread):
                invoke(t * per_thread + k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert not errors, errors[:3]

    async def many() -> None:
        await asyncio.gather(*[ainvoke(threads * per_thread + i) for i in range(n_async)])

    asyncio.run(many())


def test_langchain_1000_threaded_and_500_async_calls_recorded(tmp_path: Path) -> None:
    handler = RouteStoreCallbackHandler(tmp_path / "lc.db", record_text=True, prices=PRICES)
    model = lc_fakes.make_routed()
    cfg = {"callbacks": [handler]}
    run_load(
        lambda i: model.invoke(lc_prompt(i), config=cfg), lambda i: model.ainvoke(lc_prompt(i), config=cfg)
    )
    assert handler.flush(60)
    rows = handler.store.decisions()
    assert len(rows) == 1500 and len({r["run_id"] for r in rows}) == 1500
    assert {r["prompt"] for r in rows} == {lc_prompt(i) for i in range(1500)}
    for r in rows:
        hard = "hard" in r["prompt"]
        assert r["side"] == ("strong" if hard else "weak")
        assert r["model"] == ("fake-gpt" if hard else "fake-claude")
        assert r["win_rate"] == (0.9 if hard else 0.1) and r["router"] == "keyword" and r["threshold"] == 0.5
        assert r["input_tokens"] > 0 and r["output_tokens"] > 0 and r["cost"] > 0 and r["status"] == "ok"
        assert r["strong_model"] == "fake-gpt" or r["side"] == "weak"  # learned from the first strong call
    assert handler.stats.dropped == handler.stats.errors == 0
    handler.close()


def test_langchain_feedback_by_message(tmp_path: Path) -> None:
    handler = RouteStoreCallbackHandler(tmp_path / "fb.db", record_text=True)
    model = lc_fakes.make_routed()
    msg = model.invoke("an easy question about the capital of France", config={"callbacks": [handler]})
    assert handler.feedback(msg, thumbs=True)
    handler.flush()
    (battle,) = handler.store.battles()
    assert battle.winner == "model_b" and battle.model_b == "fake-claude"
    handler.close()


def li_question(i: int) -> str:
    return f"question {i}: " + (
        f"prove the {li_fakes.HARD} please" if i % 4 == 0 else "what is the capital of France"
    )


def test_llamaindex_1000_threaded_and_500_async_calls_recorded_with_their_own_text(tmp_path: Path) -> None:
    handler = RouteStoreEventHandler.from_url(tmp_path / "li.db", record_text=True)
    llm, *_ = li_fakes.make_routed()
    with li_fakes.attached(handler):
        run_load(
            lambda i: llm.chat([ChatMessage(role="user", content=li_question(i))]),
            lambda i: llm.achat([ChatMessage(role="user", content=li_question(i))]),
        )
    assert handler.store.flush(60)
    rows = handler.store.decisions()
    assert len(rows) == 1500 and len({r["run_id"] for r in rows}) == 1500
    # each row carries its own call's question and answer, even with 8 threads and 500 tasks interleaved
    assert sorted(r["prompt"] for r in rows) == sorted(li_question(i) for i in range(1500))
    for r in rows:
        hard = li_fakes.HARD in r["prompt"]
        assert r["side"] == ("strong" if hard else "weak")
        assert r["model"] == ("strong-model" if hard else "weak-model") and r["weak_model"] == "weak-model"
        assert r["prompt"][:12] in r["answer"] and r["input_tokens"] > 0 and r["status"] == "ok"
    handler.store.close()


class _Broken(RouteStore):
    """A store whose every record raises (the worst case: the failure is in the caller's thread)."""

    def record(self, decision: Any) -> bool:
        raise RuntimeError("store exploded")


def test_a_store_that_raises_fails_no_call(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lc_handler = RouteStoreCallbackHandler(_Broken(tmp_path / "a.db"))
    model = lc_fakes.make_routed()
    outs = [model.invoke(lc_prompt(i), config={"callbacks": [lc_handler]}) for i in range(20)]
    assert all(o.content for o in outs)
    assert lc_handler.stats.errors == 20
    # a database that fails every write: calls succeed, rows are counted as errors
    lc_db = RouteStoreCallbackHandler(tmp_path / "b.db")

    def boom(rows: Any) -> None:
        raise OSError("database is gone")

    lc_db.store._backend.write = boom  # type: ignore[method-assign]
    outs = asyncio.run(
        _gather([model.ainvoke(lc_prompt(i), config={"callbacks": [lc_db]}) for i in range(20)])
    )
    assert all(o.content for o in outs)
    assert lc_db.flush() and lc_db.stats.errors == 20 and lc_db.stats.written == 0
    li_handler = RouteStoreEventHandler(store=_Broken(tmp_path / "c.db"))
    llm, *_ = li_fakes.make_routed()
    with li_fakes.attached(li_handler):
        answers = [llm.chat([ChatMessage(role="user", content=li_question(i))]) for i in range(20)]
    assert all(a.message.content for a in answers)
    assert li_handler.stats.errors == 20
    assert "store exploded" in caplog.text


async def _gather(coros: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*coros))


@pytest.mark.slow
def test_training_from_the_store_gives_a_router_both_wrappers_load(tmp_path: Path) -> None:
    from routing_core.routers.logistic import LogisticRouter  # noqa: F401 - registers the router
    from routing_core.store import battles_from_store
    from routing_core.training import train_router

    handler = RouteStoreCallbackHandler(tmp_path / "loop.db", record_text=True)
    model = lc_fakes.make_routed()
    topics = ["integrals", "group theory", "compilers", "quantum spin", "measure theory", "type systems"]
    easy = ["the weather", "a greeting", "lunch ideas", "a colour", "the time", "a joke"]
    for i in range(60):
        # every call forced to the weak model: users like its easy answers and not its hard ones
        hard = i % 2 == 0
        text = (
            f"please explain {topics[i % 6]} in depth, part {i}"
            if hard
            else f"tell me about {easy[i % 6]} quickly, item {i}"
        )
        msg = model.invoke(text, model="weak", config={"callbacks": [handler]})
        handler.feedback(msg, thumbs=not hard)
    handler.close()
    battles = battles_from_store(tmp_path / "loop.db")
    assert len(battles) == 60 and {b.winner for b in battles} == {"model_a", "model_b"}
    assert {(b.model_a, b.model_b) for b in battles} == {("strong", "fake-claude")}  # no strong call seen
    data = training_data(battles, "strong", "fake-claude", "store:loop.db")
    router = train_router("logistic", data, reference=[b.prompt for b in battles])
    folder = router.save(tmp_path / "own_router")
    rates = router.win_rate(["please explain integrals in depth", "tell me about the weather quickly"])
    assert rates[0] > rates[1]
    lc = RoutedChatModel(  # a checkpoint path is accepted (the field's annotation says Router)
        strong=lc_fakes.FakeOpenAIChat(),
        weak=lc_fakes.FakeAnthropicChat(),
        router=str(folder),  # type: ignore[arg-type]
        threshold=0.5,
    )
    li = RoutedLLM(
        strong=li_fakes.ScriptedLLM(model_name="s"),
        weak=li_fakes.ScriptedLLM(model_name="w"),
        router=str(folder),
        threshold=0.5,
    )
    # calibrated win rates: hard prompts near 1, easy ones near 0
    for hard_q, easy_q in [("please explain compilers in depth", "tell me about lunch ideas quickly")]:
        assert lc.invoke(hard_q).response_metadata["routellm"]["model_name"] == "fake-gpt"
        assert lc.invoke(easy_q).response_metadata["routellm"]["model_name"] == "fake-claude"
        assert (
            li.chat([ChatMessage(role="user", content=hard_q)]).additional_kwargs["routellm"]["side"]
            == "strong"
        )
        assert (
            li.chat([ChatMessage(role="user", content=easy_q)]).additional_kwargs["routellm"]["side"]
            == "weak"
        )
