"""How much does RoutedChatModel add to a call, beyond the router's own win-rate time?

Measured side by side in one run, against a zero-latency fake chat model (a constant answer, streamed as one chunk:
`ZeroLatencyStreamingChat` in langchain_routellm/testing.py), so the numbers are LangChain plumbing and nothing else:

    direct   the fake model called on its own (BaseChatModel.invoke/stream/ainvoke)
    router   router.win_rate([prompt]) alone
    routed   RoutedChatModel(strong=fake, weak=fake) called the same way
    overhead routed - direct - router   (what the wrapper itself costs; target: under 1 ms)

Each variant is timed in interleaved rounds (so drift hits all of them alike); the table shows medians of the
per-round means, in microseconds per call.

    python benchmarks/langchain_overhead.py [--iterations 2000] [--rounds 7] [--router random]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel

from langchain_routellm import RoutedChatModel
from langchain_routellm.testing import ZeroLatencyStreamingChat  # answers "ok" at once; streams one chunk
from routing_core import load_router


def _time_sync(fn: Callable[[str], Any], prompts: list[str], n: int) -> float:
    """Mean seconds per call over n calls."""
    gc.collect()
    start = time.perf_counter()
    for i in range(n):
        fn(prompts[i % len(prompts)])
    return (time.perf_counter() - start) / n


async def _time_async(fn: Callable[[str], Any], prompts: list[str], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for i in range(n):
        await fn(prompts[i % len(prompts)])
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000, help="calls per variant per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median is reported)")
    parser.add_argument("--router", default="random", help="router name or checkpoint folder")
    args = parser.parse_args(argv)

    router = load_router(args.router)
    fake = ZeroLatencyStreamingChat()
    routed = RoutedChatModel(
        strong=ZeroLatencyStreamingChat(), weak=ZeroLatencyStreamingChat(), router=router, threshold=0.5
    )
    prompts = [f"benchmark prompt number {i}: how do I sort a list in Python?" for i in range(97)]

    def stream_all(model: BaseChatModel) -> Callable[[str], Any]:
        return lambda p: list(model.stream(p))

    sync_variants: dict[str, dict[str, Callable[[str], Any]]] = {
        "invoke": {"direct": fake.invoke, "routed": routed.invoke},
        "stream": {"direct": stream_all(fake), "routed": stream_all(routed)},
    }
    win_rate = lambda p: router.win_rate([p])  # noqa: E731

    async def astream_all(model: BaseChatModel, p: str) -> list[Any]:
        return [c async for c in model.astream(p)]

    async_variants: dict[str, dict[str, Callable[[str], Any]]] = {
        "ainvoke": {"direct": fake.ainvoke, "routed": routed.ainvoke},
        "astream": {"direct": lambda p: astream_all(fake, p), "routed": lambda p: astream_all(routed, p)},
    }

    samples: dict[tuple[str, str], list[float]] = {}
    warm = max(50, args.iterations // 20)
    for fns in sync_variants.values():  # warm-up: imports, caches, tiktoken-free paths
        for fn in fns.values():
            _time_sync(fn, prompts, warm)
    _time_sync(win_rate, prompts, warm)

    async def run_async_round(n: int) -> None:
        for kind, fns in async_variants.items():
            for name, fn in fns.items():
                samples.setdefault((kind, name), []).append(await _time_async(fn, prompts, n))

    asyncio.run(run_async_round(warm))
    samples.clear()
    for _ in range(args.rounds):
        samples.setdefault(("-", "router"), []).append(_time_sync(win_rate, prompts, args.iterations))
        for kind, fns in sync_variants.items():
            for name, fn in fns.items():
                samples.setdefault((kind, name), []).append(_time_sync(fn, prompts, args.iterations))
        asyncio.run(run_async_round(args.iterations))

    us = {key: statistics.median(vals) * 1e6 for key, vals in samples.items()}
    router_us = us[("-", "router")]
    print(
        f"RoutedChatModel overhead vs a zero-latency fake (router={router.name}, {args.rounds} rounds x "
        f"{args.iterations} calls, python {sys.version.split()[0]})"
    )
    print(f"router.win_rate alone: {router_us:8.1f} us/call\n")
    header = (
        f"{'call':<9}{'direct us':>11}{'routed us':>11}{'router us':>11}{'overhead us':>13}  target <1000 us"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for kind in [*sync_variants, *async_variants]:
        direct, routed_us = us[(kind, "direct")], us[(kind, "routed")]
        overhead = routed_us - direct - router_us
        worst = max(worst, overhead)
        print(
            f"{kind:<9}{direct:>11.1f}{routed_us:>11.1f}{router_us:>11.1f}{overhead:>13.1f}  "
            f"{'ok' if overhead < 1000 else 'OVER'}"
        )
    print(
        f"\nworst wrapper overhead: {worst:.1f} us/call ({'under' if worst < 1000 else 'over'} the 1 ms target)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
