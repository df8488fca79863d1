"""N-model routing on quality-cost curves: routerbench test and dcrouter test (docs/results.md, "More than two models").

Every router is swept over the cost-aware policy's λ; costs are predicted with the router's cost lines learned
from the training split's recorded costs (routerbench) or list prices (dcrouter), realised from the benchmark.
Rows: random (uniform predicted qualities), prior (each model's training mean: the single models' hull), the
prompt-length heads, the issue's kNN baseline (k=20, the benchmark's own training split), per-model linear heads
on the same split, and the bundled multi-model router (all many-model sources).

    python benchmarks/multi_model.py [--bundled routing_core/pretrained/multi] [--plots docs/img] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundled", default="multi", help="the bundled multi-model router (name or folder)")
    ap.add_argument(
        "--plots", default=str(ROOT / "docs" / "img"), help="folder for the curve plots ('' skips)"
    )
    ap.add_argument("--json", default="", help="write every result as JSON")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from routing_core import load_router
    from routing_core.cost_policy import CostAwarePolicy
    from routing_core.costs import PriceTable
    from routing_core.data.multi import dcrouter_table, routerbench_table
    from routing_core.embedders import default_embedder
    from routing_core.multi_eval import evaluate_predictions, format_multi_table, plot_multi
    from routing_core.routers.quality_knn import KNNQualityRouter
    from routing_core.routers.quality_linear import LinearQualityRouter
    from routing_core.training import embed_cached

    embed = partial(embed_cached, default_embedder())
    no_prices = PriceTable({}, include_defaults=False)
    try:
        bundled = load_router(args.bundled)
    except Exception as e:  # noqa: BLE001 - reported, the other rows still run
        print(f"bundled router {args.bundled!r} not loaded ({e}); its row is skipped")
        bundled = None
    results, out = [], {}
    for train, test in (
        (routerbench_table("train"), routerbench_table("test")),
        (dcrouter_table("train"), dcrouter_table("test")),
    ):
        test = test.complete()
        e_train, e_test = embed(train.prompts), embed(test.prompts)
        knn = KNNQualityRouter(k=20).fit([train], [e_train])
        linear = LinearQualityRouter().fit([train], [e_train])
        length = LinearQualityRouter(inputs="length").fit([train], [None])
        models = {m: m for m in test.models}

        def scored(
            router: object, emb: np.ndarray | None, models: dict = models, prompts: list = test.prompts
        ) -> tuple[np.ndarray, np.ndarray]:
            return CostAwarePolicy(router, models, lam=0.0, prices=no_prices).score_many(prompts, emb)

        _, cost = scored(knn, e_test)
        rng = np.random.default_rng(args.seed)
        rows = [
            evaluate_predictions("random", test, rng.uniform(size=cost.shape), cost),
            evaluate_predictions(
                "prior (training mean)",
                test,
                np.tile(
                    np.nanmean(train.quality, 0)[[train.models.index(m) for m in test.models]], (len(test), 1)
                ),
                cost,
            ),
            evaluate_predictions("length", test, *scored(length, None)),
            evaluate_predictions("kNN k=20 (issue baseline)", test, *scored(knn, e_test)),
            evaluate_predictions("linear heads (same split)", test, *scored(linear, e_test)),
        ]
        if bundled is not None:
            rows.append(evaluate_predictions(f"bundled `{args.bundled}`", test, *scored(bundled, e_test)))
        for r in rows:
            r.benchmark = test.name
        results += rows
        out[test.name] = [r.to_dict() for r in rows]
        if args.plots:
            Path(args.plots).mkdir(parents=True, exist_ok=True)
            plot_multi(rows, Path(args.plots) / f"multi_{test.name}.png", f"{test.name}: quality vs cost")
    print(format_multi_table(results))
    print()
    for name, rows_ in out.items():
        r0 = rows_[0]
        print(
            f"{name}: oracle {r0['oracle']['quality']:.3f} at ${r0['oracle']['cost'] * 1e3:.3f}e-3; singles:"
        )
        for s in sorted(r0["singles"], key=lambda s: s["cost"]):
            print(f"  {s['model']:40s} {s['quality']:.3f}  ${s['cost'] * 1e3:.3f}e-3")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
