"""Train the bundled multi-model router (`routing_core/pretrained/multi`) from ../shared/data.

Per-model linear quality heads (`quality_linear`) on every many-model source's training split: routerbench
train (11 models, recorded costs), dcrouter train (9 models, list prices; GSM8K questions dropped), ZeroEval crux
and math-l5 (by item id, GSM8K never) and alpaca_eval (instruction folds 1-4). Reference sample for the cost
knob: the 500 Arena-Hard prompts. Resumable: an existing checkpoint is kept unless --overwrite. Embeddings are
cached under .cache/embeddings.

    python scripts/train_multi.py [--router quality_linear|quality_knn] [--out DIR] [--overwrite]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from routing_core.checkpoints import PRETRAINED_DIR
from routing_core.embedders import default_embedder
from routing_core.training import embed_cached

LICENSES = {
    "routerbench_train": "RouterBench via shuhao02/RouterDC: research use (none stated)",
    "dcrouter_train": "ulab-uiuc/LLMRouter: MIT",
    "zeroeval_train": "yuchenlin/ZeroEval: Apache-2.0 (items MIT)",
    "alpaca_eval": "tatsu-lab/alpaca_eval: Apache-2.0 (outputs under their models' terms)",
}


def card(router: object, tables: list, seconds: float) -> str:
    """The model card: models known (with their training rows and mean score), data, licenses, costs."""
    r = router  # a QualityRouter
    rows = {m: 0 for m in r.models}  # type: ignore[attr-defined]
    means: dict[str, list[float]] = {m: [] for m in r.models}  # type: ignore[attr-defined]
    for t in tables:
        for j, m in enumerate(t.models):
            if m in rows:
                ok = ~np.isnan(t.quality[:, j])
                rows[m] += int(ok.sum())
                means[m].append(float(np.mean(t.quality[ok, j])) if ok.any() else float("nan"))
    lines = [
        "# `multi`: the bundled multi-model router",
        "",
        f"Router kind: `{r.name}` ({(type(r).__doc__ or '').strip().splitlines()[0]})",  # type: ignore[attr-defined]
        f"Embedder: `{r.embedder_name}`; {len(r.models)} models; trained in {seconds:.0f} s.",  # type: ignore[attr-defined]
        "",
        "Use it through `routing_core.cost_policy.CostAwarePolicy` or the wrappers' `models={...}` form; a model it",
        "does not know raises an error naming the known ones, or is placed with `model_map={'mine': '<known>'}`.",
        "",
        "## Training data (training splits only)",
        "",
        "| source | prompts | models | license |",
        "|---|---|---|---|",
    ]
    for t in tables:
        lines.append(
            f"| `{t.name}` | {len(t)} | {len(t.models)} | {LICENSES.get(t.name, 'see the source')} |"
        )
    lines += [
        "",
        "## Label mapping",
        "",
        "Targets: correctness 0/1 (routerbench, dcrouter scores, ZeroEval) and P(model beats GPT-4-Turbo) by the",
        "alpaca_eval judges; one logistic head per model on every row where it was scored (L2 by 3-fold CV), each source",
        "in proportion to its rows. Costs: a line `a + b * input tokens` per model fitted on routerbench's recorded",
        "costs and dcrouter's list prices (256 output tokens assumed); models from ZeroEval and alpaca_eval have no",
        "learned cost, so a policy needs `prices=` or `costs=` for them.",
        "Splits: routerbench/dcrouter own train files (dcrouter rows that are GSM8K test questions dropped); ZeroEval",
        "crux/math-l5 and alpaca_eval by item id (the held-out fold never used); GSM8K never.",
        "Reference sample (for `target_cost=` / `target_quality=`, and `strong_fraction` of the two-model special",
        "case: `win_rate` = P(gpt-4-1106-preview beats mixtral-8x7b-instruct-v0.1)): the 500 Arena-Hard prompts.",
        "",
        "## Models known",
        "",
        "| model | training rows | mean score per source | learned cost line (USD: a + b * tokens) |",
        "|---|---|---|---|",
    ]
    for i, m in enumerate(r.models):  # type: ignore[attr-defined]
        cl = r.cost_lines[i]  # type: ignore[attr-defined]
        cost = "-" if np.isnan(cl).any() else f"{cl[0]:.2e} + {cl[1]:.2e} x tokens"
        ms = ", ".join(f"{x:.2f}" for x in means[m] if np.isfinite(x))
        lines.append(f"| `{m}` | {rows[m]} | {ms} | {cost} |")
    lines += [
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(r.get_params(), indent=1, default=str),
        "```",
        "",
    ]  # type: ignore[attr-defined]
    lines += ['Results: docs/results.md, section "More than two models" (benchmarks/multi_model.py).', ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router", default="quality_linear", choices=("quality_linear", "quality_knn"))
    ap.add_argument("--out", default=str(PRETRAINED_DIR / "multi"))
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument(
        "--card-only", action="store_true", help="rewrite the model card of an existing checkpoint"
    )
    args = ap.parse_args()
    from routing_core.data.multi import multi_training_tables
    from routing_core.data.shared import arena_hard_prompts, shared_data_dir
    from routing_core.registry import get_router_class

    out = Path(args.out)
    if args.card_only:
        from routing_core import load_router

        router = load_router(out)
        secs = float(router.training_info.get("train_seconds", 0.0))
        (out / "README.md").write_text(card(router, multi_training_tables(), secs), encoding="utf-8")
        print(f"{out / 'README.md'} rewritten")
        return 0
    if (out / "config.json").exists() and not args.overwrite:
        print(f"{out} exists; pass --overwrite to retrain")
        return 0
    if shared_data_dir() is None:
        print("../shared/data is needed to train the bundled multi-model router", file=sys.stderr)
        return 2
    embed = partial(embed_cached, default_embedder())
    t0 = time.time()
    tables = multi_training_tables()
    # rows-weighted pooling: on the development benchmarks (routerbench test, dcrouter test) it matched equal source
    # weights on routerbench (AIQ 0.844 vs 0.845) and beat them on dcrouter (0.507 vs 0.494), see docs/results.md
    opts = {"source_weighting": "rows"} if args.router == "quality_linear" else {}
    router = get_router_class(args.router).train(None, embed, tables=tables, **opts)
    ref = arena_hard_prompts()
    ref_emb = embed(ref)
    router.set_quality_reference(ref, ref_emb)
    # the paper's pair as its two-model special case, so load_router("multi").win_rate(...) and strong_fraction work
    router.strong_model, router.weak_model = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
    router.set_reference(router.win_rate_from_embeddings(ref, ref_emb))
    router.training_info.update(
        reference="arena_hard_v0.1 (500 Chatbot Arena prompts)", train_seconds=round(time.time() - t0, 1)
    )
    router.save(out, card(router, tables, time.time() - t0))  # atomic: built aside, renamed into place
    print(f"{args.router}: {len(router.models)} models, trained in {time.time() - t0:.0f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
