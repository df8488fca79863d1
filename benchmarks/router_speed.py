"""Router overhead on this machine: throughput (batched) and single-prompt latency, embedding included.

Prints a table. Targets (issue #3): SW ranking >= 100 prompts/s batched, embedding included, on 2 cores; an MF
decision for one prompt, embedding included, p50 <= 20 ms. Ratios are against the embedding alone, measured side
by side in this run; the original RouteLLM is measured beside ours in benchmarks/overhead.py (no published
figure is quoted here).

    python benchmarks/router_speed.py [--n 512] [--routers sw_ranking,mf,logistic,knn,bert]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sample_prompts(n: int, kind: str) -> list[str]:
    """ "arena": Arena-Hard prompts (real chat traffic, ~72 tokens on average, many long) when ../shared/data is
    present; "short": the shipped example prompts (~25 tokens). Each made unique so no cache can help."""
    from routing_core.data.shared import arena_hard_prompts, shared_data_dir

    if kind == "arena" and shared_data_dir():
        base = arena_hard_prompts()
    else:
        base = (ROOT / "examples" / "prompts.txt").read_text().splitlines()
    base = [b for b in base if b.strip()]
    return [f"{base[i % len(base)]} (#{i})" for i in range(n)]


def fresh(router):  # noqa: ANN001, ANN201
    """Give an embedding router a new, empty embedding cache so timings include embedding."""
    from routing_core.embedders import CachedEmbedder, TransformerEmbedder

    if getattr(router, "uses_embeddings", False):
        shared = router.embedder
        inner = shared.inner if isinstance(shared, CachedEmbedder) else shared
        if isinstance(inner, TransformerEmbedder):
            inner._load()
        router._embedder = CachedEmbedder(inner)
    return router


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--single", type=int, default=100)
    ap.add_argument("--routers", default="sw_ranking,mf,logistic,knn,length,bert")
    args = ap.parse_args()

    from routing_core import load_router
    from routing_core.checkpoints import bundled_names
    from routing_core.embedders import TransformerEmbedder

    emb = TransformerEmbedder()
    emb.embed(["warm up"])
    print(f"{args.n} prompts batched; {args.single} single-prompt calls; embedding included, no cache hits.")
    print("'math only' is the router on precomputed embeddings (what it adds on top of the embedder).\n")
    for kind in ("short", "arena"):
        prompts = sample_prompts(args.n, kind)
        singles = sample_prompts(args.n + args.single, kind)[args.n :]
        t = time.perf_counter()
        vectors = emb.embed(prompts)
        emb_rate = len(prompts) / (time.perf_counter() - t)
        rows = [("embedding only (MiniLM-L6)", emb_rate, float("nan"), float("nan"))]
        for name in args.routers.split(","):
            if name not in bundled_names():
                print(f"{name}: no bundled checkpoint, skipped", file=sys.stderr)
                continue
            router = fresh(load_router(name))
            router.win_rate(["warm up the model and caches"])
            math_rate = float("nan")
            if getattr(router, "uses_embeddings", False):
                t = time.perf_counter()
                router.win_rate_from_embeddings(prompts, vectors)
                math_rate = len(prompts) / (time.perf_counter() - t)
            t = time.perf_counter()
            router.win_rate(prompts)
            rate = len(prompts) / (time.perf_counter() - t)
            lat = []
            for p in singles:
                t = time.perf_counter()
                router.win_rate([p])
                lat.append(1000 * (time.perf_counter() - t))
            rows.append((name, rate, statistics.median(lat), math_rate))
        label = (
            "Arena-Hard prompts (~72 tokens, up to 256)"
            if kind == "arena"
            else "short chat prompts (~25 tokens)"
        )
        print(f"## {label}")
        print(
            f"{'router':<28} {'prompts/s':>10} {'p50 ms (1 prompt)':>18} {'math only /s':>13} {'x embedding':>12}"
        )
        for name, rate, p50, math_rate in rows:
            p50_s = "-" if p50 != p50 else f"{p50:.1f}"
            m_s = "-" if math_rate != math_rate else f"{math_rate:.0f}"
            print(f"{name:<28} {rate:>10.1f} {p50_s:>18} {m_s:>13} {rate / emb_rate:>12.2f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
