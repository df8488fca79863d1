"""Micro-batching of concurrent routing calls: coalescing, per-caller results and order, error isolation.

Timing-free: the first forward pass of each test blocks on an Event until the other callers are queued
(`pending()`), so what is batched together is deterministic.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable

import numpy as np
import pytest

from routing_core.batching import MicroBatcher
from routing_core.embedders import TransformerEmbedder
from routing_core.routers.matrix_factorization import MFRouter
from routing_core.serving import awin_rate, router_batcher, win_rate_batched


def fake_vector(text: str, dim: int = 384) -> np.ndarray:
    """A deterministic unit vector per text (seeded by its hash), standing in for MiniLM."""
    seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class CountingEmbedder(TransformerEmbedder):
    """The real TransformerEmbedder front end (clipping, micro-batcher) over an instrumented fake forward pass."""

    def __init__(self, gate: threading.Event | None = None, fail_on: str | None = None, **kw: object) -> None:
        super().__init__(num_threads=1, **kw)  # type: ignore[arg-type]
        self.passes: list[list[str]] = []
        self.gate, self.fail_on = gate, fail_on

    def _setup_worker(self) -> None:  # no torch in these tests
        pass

    def _embed_inline(self, items: list[str]) -> np.ndarray:
        return self._embed_batch(items)

    def _embed_batch(self, items: list[str]) -> np.ndarray:
        self.passes.append(list(items))
        if self.gate is not None and len(self.passes) == 1:
            assert self.gate.wait(30), "test gate never opened"
        if self.fail_on is not None and any(self.fail_on in t for t in items):
            raise ValueError(f"cannot embed {self.fail_on!r}")
        return np.stack([fake_vector(t) for t in items])


def toy_mf(embedder: object) -> MFRouter:
    """A fitted-looking MF router (random weights of the right shapes) on the given embedder."""
    rng = np.random.default_rng(0)
    r = MFRouter("strong", "weak", dim=8, embedder=embedder)  # type: ignore[arg-type]
    r.models = ["strong", "weak"]
    r.P = rng.standard_normal((2, 8)).astype(np.float32)
    r.W = rng.standard_normal((8, 384)).astype(np.float32)
    r.w = rng.standard_normal(8).astype(np.float32)
    getattr(r, "_mark_fitted", lambda: None)()  # weights set by hand, as `fit`/`load` would
    return r


def wait_until(cond: Callable[[], bool]) -> None:
    """Spin until `cond()` holds (a condition, not a timing assertion); fail after a generous bound."""
    ev = threading.Event()
    for _ in range(30_000):
        if cond():
            return
        ev.wait(0.001)
    raise AssertionError("condition never became true")


def run_threads(fns: list[Callable[[], object]]) -> list[object]:
    out: list[object] = [None] * len(fns)

    def call(i: int) -> None:
        try:
            out[i] = fns[i]()
        except Exception as e:  # noqa: BLE001 - returned for the test to inspect
            out[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_concurrent_router_calls_share_one_forward_pass() -> None:
    gate = threading.Event()
    emb = CountingEmbedder(gate)
    router = toy_mf(emb)
    prompts = [f"prompt number {i} " + "x" * (i % 7) for i in range(17)]
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(router.win_rate([prompts[0]])))
    first.start()
    wait_until(lambda: len(emb.passes) == 1)  # the first pass is running and blocked on the gate
    others: list[object] = []
    threads = [
        threading.Thread(target=lambda p=p: others.append((p, router.win_rate([p])))) for p in prompts[1:]
    ]
    for t in threads:
        t.start()
    wait_until(lambda: emb.batcher.pending() == len(prompts) - 1)
    gate.set()
    first.join(30)
    for t in threads:
        t.join(30)
    # 17 concurrent one-prompt decisions, two forward passes: the lone first one and the other 16 together
    assert len(emb.passes) == 2
    assert sorted(emb.passes[1]) == sorted(prompts[1:])
    serial = toy_mf(CountingEmbedder())
    for p, got in others:  # type: ignore[misc]
        np.testing.assert_allclose(got, serial.win_rate([p]), rtol=0, atol=1e-6)  # type: ignore[arg-type]


def test_batched_results_equal_serial_and_keep_each_callers_order() -> None:
    gate = threading.Event()
    emb = CountingEmbedder(gate)
    jobs = [[f"caller {c} text {k} " + "y" * ((c * 3 + k) % 11) for k in range(1 + c % 4)] for c in range(12)]
    first = threading.Thread(target=lambda: emb.embed(["opening call"]))
    first.start()
    wait_until(lambda: len(emb.passes) == 1)
    fns: list[Callable[[], object]] = [lambda j=j: emb.embed(j) for j in jobs]
    box: list[list[object]] = []
    runner = threading.Thread(target=lambda: box.append(run_threads(fns)))
    runner.start()
    wait_until(lambda: emb.batcher.pending() == len(jobs))
    gate.set()
    runner.join(30)
    first.join(30)
    assert len(emb.passes) == 2  # every caller's texts went through one pass
    for job, got in zip(jobs, box[0], strict=True):
        expected = np.stack([fake_vector(t) for t in job])
        np.testing.assert_allclose(got, expected, rtol=1e-6)  # rows in the caller's own order


def test_an_exception_in_a_batch_reaches_only_its_callers() -> None:
    gate = threading.Event()
    emb = CountingEmbedder(gate, fail_on="BOOM")
    first = threading.Thread(target=lambda: emb.embed(["opening call"]))
    first.start()
    wait_until(lambda: len(emb.passes) == 1)
    jobs = [["fine one"], ["this one says BOOM"], ["fine two", "fine three"]]
    box: list[list[object]] = []
    runner = threading.Thread(
        target=lambda: box.append(run_threads([lambda j=j: emb.embed(j) for j in jobs]))
    )
    runner.start()
    wait_until(lambda: emb.batcher.pending() == 3)
    gate.set()
    runner.join(30)
    first.join(30)
    ok1, bad, ok2 = box[0]
    assert isinstance(bad, ValueError) and "BOOM" in str(bad)
    np.testing.assert_allclose(ok1, fake_vector("fine one")[None], rtol=1e-6)  # type: ignore[arg-type]
    np.testing.assert_allclose(ok2, np.stack([fake_vector("fine two"), fake_vector("fine three")]), rtol=1e-6)  # type: ignore[arg-type]
    # the worker survives: the next call works
    np.testing.assert_allclose(emb.embed(["after"]), fake_vector("after")[None], rtol=1e-6)


def test_a_lone_failing_call_raises_in_its_caller() -> None:
    b = MicroBatcher(lambda items: (_ for _ in ()).throw(RuntimeError("model exploded")))
    with pytest.raises(RuntimeError, match="model exploded"):
        b.run(["a"])


async def test_awin_rate_batches_concurrent_tasks_without_blocking_the_loop() -> None:
    gate = threading.Event()
    emb = CountingEmbedder(gate)
    router = toy_mf(emb)
    prompts = [f"async prompt {i}" + "!" * (i % 5) for i in range(40)]
    tasks = [asyncio.create_task(awin_rate(router, [p])) for p in prompts]
    ticks = 0
    # the first pass takes whatever was queued when the worker woke; everything else must wait in the queue
    while not emb.passes or router_batcher(router).pending() < len(prompts) - len(emb.passes[0]):
        ticks += 1  # the loop keeps running while the first pass is blocked in the worker
        await asyncio.sleep(0.001)
    gate.set()
    got = await asyncio.gather(*tasks)
    assert ticks > 0
    # 40 concurrent decisions: at most two router calls and two forward passes (the first, then the rest)
    assert router_batcher(router).calls <= 2 and len(emb.passes) <= 2
    assert sum(len(p) for p in emb.passes) == len(prompts)
    serial = toy_mf(CountingEmbedder())
    for p, g in zip(prompts, got, strict=True):
        np.testing.assert_allclose(
            g, serial.win_rate([p]), rtol=0, atol=1e-6
        )  # float rounding of batched BLAS


async def test_awin_rate_validates_in_the_caller() -> None:
    router = toy_mf(CountingEmbedder())
    with pytest.raises(TypeError, match="not a single string"):
        await awin_rate(router, "a bare string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        await awin_rate(router, ["ok", 3])  # type: ignore[list-item]
    assert (await awin_rate(router, [])).shape == (0,)


def test_win_rate_batched_from_threads_equals_win_rate() -> None:
    router = toy_mf(CountingEmbedder())
    prompts = [f"thread prompt {i}" for i in range(10)]
    got = run_threads([lambda p=p: win_rate_batched(router, [p, p + " again"]) for p in prompts])
    for p, g in zip(prompts, got, strict=True):
        np.testing.assert_allclose(g, router.win_rate([p, p + " again"]), rtol=0, atol=1e-6)  # type: ignore[arg-type]


def test_a_large_call_is_split_into_sorted_chunks_and_reassembled() -> None:
    seen: list[int] = []

    def fn(items: list[str]) -> np.ndarray:
        seen.append(len(items))
        return np.array([len(t) for t in items], dtype=np.float64)

    b = MicroBatcher(fn, max_batch=8, sort_key=len)
    texts = ["z" * ((i * 7) % 23 + 1) for i in range(30)]
    np.testing.assert_array_equal(b.run(texts), [len(t) for t in texts])
    assert seen == [8, 8, 8, 6]


def test_bad_batcher_settings_are_named() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda x: np.zeros(len(x)), max_batch=0)
    with pytest.raises(ValueError, match="window_s"):
        MicroBatcher(lambda x: np.zeros(len(x)), window_s=5)
    with pytest.raises(ValueError, match="at least one item"):
        MicroBatcher(lambda x: np.zeros(len(x))).run([])


def test_one_long_text_does_not_pad_a_batch_of_short_ones() -> None:
    from routing_core.batching import map_length_sorted

    seen: list[list[str]] = []

    def fn(batch: list[str]) -> np.ndarray:
        seen.append(batch)
        return np.array([len(t) for t in batch], dtype=np.float64)

    texts = ["short question"] * 10 + ["L" * 4096]
    np.testing.assert_array_equal(
        map_length_sorted(texts, 64, fn, split_padding=True), [len(t) for t in texts]
    )
    assert sorted(len(b) for b in seen) == [1, 10]
    seen.clear()
    similar = [f"prompt {'x' * (i % 40)}" for i in range(64)]
    map_length_sorted(similar, 64, fn, split_padding=True)
    assert len(seen) == 1  # chat-length prompts of similar lengths still share one batch
    seen.clear()
    map_length_sorted(texts, 64, fn)
    assert len(seen) == 1  # without the option: one batch, as before


def test_a_lone_call_runs_in_the_callers_thread_and_concurrent_ones_still_batch() -> None:
    where: list[str] = []

    def fn(items: list[str]) -> np.ndarray:
        where.append(threading.current_thread().name)
        return np.array([len(t) for t in items], dtype=np.float64)

    b = MicroBatcher(fn, name="lone-test", inline_fn=fn)
    np.testing.assert_array_equal(b.run(["abc"]), [3.0])
    assert where == [threading.current_thread().name]  # no hand-off to the worker for an idle batcher
    b.inline_fn = None
    b.run(["abcd"])
    assert where[-1] == "lone-test"  # without it, the worker runs the call
