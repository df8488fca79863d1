"""Cheap long prompts: clipping before tokenizing, the cache keyed by what the router reads, its byte bound,
and the routing path's thread knob."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from test_core_batching import CountingEmbedder, toy_mf  # noqa: I001  (tests/ is on sys.path)

from routing_core.embedders import ENTRY_OVERHEAD_BYTES, CachedEmbedder, CallableEmbedder
from routing_core.text import CHARS_PER_TOKEN, SEPARATOR, chars_for_tokens, clip_for_tokens, clip_text
from routing_core.threads import ENV_VAR, default_threads, resolve_threads


def test_clip_keeps_head_and_tail_at_exactly_the_bound() -> None:
    text = "HEAD-" + "m" * 10_000 + "-TAIL"
    out = clip_text(text, 400)
    assert len(out) == 400
    assert out.startswith("HEAD-m") and out.endswith("m-TAIL")
    tail = 400 // 4
    assert out == text[: 400 - tail - len(SEPARATOR)] + SEPARATOR + text[-tail:]
    assert clip_text(out, 400) == out  # idempotent
    assert clip_text("short", 400) == "short"
    assert clip_text("x" * 400, 400) == "x" * 400  # at the bound: unchanged


def test_bound_comes_from_the_token_limit() -> None:
    assert chars_for_tokens(256) == 256 * CHARS_PER_TOKEN
    assert len(clip_for_tokens("y" * 10**6, 256)) == 256 * CHARS_PER_TOKEN
    with pytest.raises(ValueError, match="max_tokens"):
        chars_for_tokens(0)
    with pytest.raises(TypeError, match="str"):
        clip_text(b"bytes", 400)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_chars"):
        clip_text("abc", 3)


def test_the_embedder_reads_the_clipped_text_and_a_1mb_prompt_routes_as_its_clipped_form() -> None:
    emb = CountingEmbedder()
    router = toy_mf(emb)
    big = "Please summarise this log.\n" + "".join(f"line {i}: ok\n" for i in range(80_000)) + "What failed?"
    assert len(big) > 10**6
    clipped = clip_text(big, emb.max_chars)
    router.win_rate([big])
    assert emb.passes[-1] == [clipped]  # the forward pass saw the head and tail only
    np.testing.assert_array_equal(router.win_rate([big]), router.win_rate([clipped]))
    assert clipped.endswith("What failed?")


def test_cache_is_keyed_by_what_the_embedder_reads_and_keeps_no_text() -> None:
    calls: list[list[str]] = []

    def fn(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return [[float(len(t)), 1.0] for t in texts]

    cache = CachedEmbedder(CallableEmbedder(fn, dim=2, max_chars=1000))
    head, tail = "h" * 5000, "t" * 5000
    a = head + "one middle" + tail
    b = head + "another middle, same head and tail" + tail
    cache.embed([a])
    cache.embed([b])  # differs only where the embedder does not read: one entry, one inner call
    assert len(calls) == 1 and len(cache) == 1 and cache.hits == 1
    assert all(len(k) == 16 for k in cache._cache)  # digests, not prompt text


def test_cache_never_grows_past_its_byte_bound() -> None:
    dim = 384
    entry = dim * 4 + 16 + ENTRY_OVERHEAD_BYTES
    bound = 50 * entry + 7
    cache = CachedEmbedder(
        CallableEmbedder(lambda t: np.ones((len(t), dim)), dim=dim), maxsize=10**6, max_bytes=bound
    )
    for i in range(40):
        cache.embed([f"prompt {i}-{k}" for k in range(7)])
        assert cache.nbytes <= bound
    assert len(cache) == 50 and cache.nbytes == 50 * entry
    recent = [f"prompt 39-{k}" for k in range(7)]
    before = cache.hits
    cache.embed(recent)  # the most recent entries survived eviction
    assert cache.hits == before + 7


def test_cache_memory_stays_bounded_with_many_long_prompts() -> None:
    bound = 200_000
    cache = CachedEmbedder(
        CallableEmbedder(lambda t: np.ones((len(t), 384)), dim=384, max_chars=4096), max_bytes=bound
    )
    cache.embed(["warm up"])
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(300):  # 300 distinct 100 KB prompts: 30 MB of text through the cache
        cache.embed([f"{i} " + "z" * 100_000])
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert cache.nbytes <= bound
    assert grown < 2 * bound  # the cache holds vectors and digests, not prompts


def test_bad_cache_bounds_are_named() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        CachedEmbedder(CallableEmbedder(lambda t: np.ones((len(t), 2)), dim=2), max_bytes=-1)


def test_thread_default_and_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert 1 <= default_threads() <= 4
    monkeypatch.setenv(ENV_VAR, "3")
    assert default_threads() == 3 and resolve_threads(None) == 3 and resolve_threads(2) == 2
    monkeypatch.setenv(ENV_VAR, "many")
    with pytest.raises(ValueError, match=ENV_VAR):
        default_threads()
    with pytest.raises(ValueError, match="num_threads"):
        resolve_threads(0)


def test_routing_threads_are_set_for_the_worker_thread_only() -> None:
    torch = pytest.importorskip("torch")
    from routing_core.threads import set_torch_threads_for_this_thread

    seen: dict[str, int] = {}
    main_before = torch.get_num_threads()
    target = 3 if main_before != 3 else 2

    def worker() -> None:
        set_torch_threads_for_this_thread(target)
        seen["worker"] = torch.get_num_threads()

    def fresh() -> None:  # a thread that first touches torch afterwards keeps the process default
        seen["fresh"] = torch.get_num_threads()

    for fn in (worker, fresh):
        t = threading.Thread(target=fn)
        t.start()
        t.join()
    assert seen["worker"] == target
    assert torch.get_num_threads() == main_before
    assert seen["fresh"] == main_before


@pytest.mark.slow
def test_default_router_reads_the_same_tokens_and_routes_a_1mb_prompt_as_its_clipped_form() -> None:
    from routing_core import load_router
    from routing_core.embedders import TransformerEmbedder

    router = load_router("difficulty")
    big = "Explain what this service log says about the outage.\n" + "".join(
        f"{i:06d} GET /api/v1/items?page={i % 97} 200 12ms\n" for i in range(30_000)
    )
    assert len(big) > 10**6
    bound = chars_for_tokens(256)
    # the embedding reads only the clipped text; the size features (the length baseline) see the whole prompt
    emb = router.embedder  # type: ignore[attr-defined]
    np.testing.assert_allclose(emb.embed([big]), emb.embed([clip_text(big, bound)]), atol=1e-6)
    assert 0.0 <= float(router.win_rate([big])[0]) <= 1.0
    tok = TransformerEmbedder()._load()[1]
    full = tok(big[:200_000], truncation=True, max_length=256)["input_ids"]
    clipped = tok(clip_text(big, bound), truncation=True, max_length=256)["input_ids"]
    assert full == clipped  # ordinary text: the kept head alone fills the 256-token window
