"""Which training sources help? Train cheap routers on data mixes and score them on development data only:
the 10% validation split of each source's strong-vs-weak examples (disjoint from every evaluation benchmark).

Prints APGR per source's validation split and their mean. Used to choose the bundled data mix without looking
at the evaluation benchmarks (MMLU evaluation split, GSM8K, routerbench test, alpaca_eval held-out).

    python benchmarks/data_ablation.py
"""

from __future__ import annotations

import sys
from functools import partial

import numpy as np

MIXES = {
    "no alpaca": ("shared:mmlu", "shared:routerbench", "shared:zeroeval", "shared:dcrouter"),
    "alpaca@0.25": (
        "shared:mmlu",
        "shared:routerbench",
        "shared:zeroeval",
        "shared:dcrouter",
        "shared:alpaca@0.25",
    ),
    "alpaca@0.5": (
        "shared:mmlu",
        "shared:routerbench",
        "shared:zeroeval",
        "shared:dcrouter",
        "shared:alpaca@0.5",
    ),
    "all": ("shared:mmlu", "shared:routerbench", "shared:zeroeval", "shared:dcrouter", "shared:alpaca"),
}
SOURCES = ("mmlu", "routerbench", "zeroeval", "alpaca_eval")


def main() -> int:
    from routing_core.embedders import default_embedder
    from routing_core.metrics import evaluate_win_rates
    from routing_core.routers._base import split_pairs
    from routing_core.training import build_training_data, embed_cached, train_router

    embed = partial(embed_cached, default_embedder())
    full = build_training_data(MIXES["all"])
    _, dev = split_pairs(full.pairs)  # the same validation split every mix holds out
    by_source = {s: [x for x in dev if x.source == s] for s in SOURCES}
    print("dev examples per source:", {s: len(v) for s, v in by_source.items()})
    print(f"{'mix':<14} {'router':<10} " + " ".join(f"{s:>12}" for s in SOURCES) + f" {'mean':>8}")
    for mix, specs in MIXES.items():
        data = build_training_data(specs)
        for name in ("logistic", "knn", "mf"):
            router = train_router(name, data, embed, calibrate=False, reference=["x"], progress=False)
            scores = []
            for s in SOURCES:
                ex = by_source[s]
                p = [x.prompt for x in ex]
                t = np.array([x.target for x in ex])
                w = router.win_rate_from_embeddings(p, embed(p))
                scores.append(evaluate_win_rates(w, t, 1 - t, n_boot=0).apgr)
            print(
                f"{mix:<14} {name:<10} "
                + " ".join(f"{a:>12.3f}" for a in scores)
                + f" {np.mean(scores):>8.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
