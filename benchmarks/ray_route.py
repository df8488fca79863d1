"""Route N prompts in process (one batched `router.route`) and on a local Ray (`route_dataset`), same CPUs.

    python benchmarks/ray_route.py [--n 100000] [--router difficulty] [--cpus 2] [--batch-size 512]

Prints one table row per path (seconds, prompts/s, ratio to in-process) and checks that both paths give the same
decisions for every prompt (by index). The in-process path uses `--cpus` torch threads; Ray gets `--cpus` CPUs
and one single-threaded actor per CPU, each loading the router once. Ray's start-up (the cluster and the actors)
is counted in its time: it is what a user waits for.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """n synthetic prompts of varied length and topic (deterministic)."""
    rng = random.Random(seed)
    topics = ["a sorting algorithm", "the French revolution", "a tax question", "a poem about rain", "TCP",
              "integrals", "a recipe", "a SQL query", "quantum spin", "a travel plan", "a job interview"]  # fmt: skip
    verbs = ["Explain", "Summarise", "Write", "Prove", "Compare", "List the steps of", "Translate", "Debug"]
    return [
        f"{rng.choice(verbs)} {rng.choice(topics)}" + " with more detail" * rng.randrange(0, 12) + f" (#{i})"
        for i in range(n)
    ]


def main() -> int:
    """Run both paths and print the table; exit 1 when a decision differs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--router", default="difficulty")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=512)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from routing_core import distributed
    from routing_core.registry import load_router

    prompts = make_prompts(args.n)
    torch.set_num_threads(args.cpus)
    t0 = time.perf_counter()
    router = load_router(args.router)
    threshold = router.threshold_for_strong_fraction(0.5)
    local = router.route(prompts, threshold)
    t_local = time.perf_counter() - t0

    t0 = time.perf_counter()
    distributed.init_ray(num_cpus=args.cpus)
    ds = distributed.route_dataset(prompts, args.router, threshold=threshold, batch_size=args.batch_size,
                                   concurrency=args.cpus)  # fmt: skip
    rows = distributed.collect_decisions(ds)
    t_ray = time.perf_counter() - t0

    assert [r["index"] for r in rows] == list(range(args.n)), "rows lost or reordered"
    rates_l = np.array([d.win_rate for d in local])
    rates_r = np.array([r["win_rate"] for r in rows])
    side_diff = sum((d.strong) != (r["side"] == "strong") for d, r in zip(local, rows, strict=True))
    print(f"router {args.router}, {args.n} prompts, {args.cpus} CPUs, threshold {threshold:.4f}")
    print(f"{'path':<24}{'seconds':>10}{'prompts/s':>12}{'ratio':>8}")
    print(f"{'in process (batched)':<24}{t_local:>10.1f}{args.n / t_local:>12.0f}{1.0:>8.2f}")
    print(f"{'Ray Data (local)':<24}{t_ray:>10.1f}{args.n / t_ray:>12.0f}{t_local / t_ray:>8.2f}")
    print(f"max |win rate difference| {np.max(np.abs(rates_l - rates_r)):.2e}; side differences: {side_diff}")
    return 0 if side_diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
