"""The `train` and `calibrate` sub-commands (kept apart so the core CLI stays small)."""

from __future__ import annotations

import argparse
import json
from functools import partial

from routing_core.training import DEFAULT_DATA


def cmd_train(args: argparse.Namespace) -> int:
    from routing_core.embedders import resolve_embedder
    from routing_core.training import (
        build_training_data,
        embed_cached,
        model_card,
        reference_prompts,
        train_router,
    )

    data = build_training_data(args.data or DEFAULT_DATA, pairs_per_prompt=args.pairs_per_prompt, seed=args.seed)
    print(f"training data: {len(data.battles)} battles over {len(data.models)} models, {len(data.pairs)} strong-vs-weak examples")
    for spec, n in data.sources.items():
        print(f"  {spec}: {n} battles")
    embedder = resolve_embedder(args.embedder)
    embed = partial(embed_cached, embedder, cache_dir=args.cache_dir) if args.cache_dir else embedder.embed
    ref, ref_name = reference_prompts()
    opts: dict = {"seed": args.seed}
    if args.embedder:
        opts["embedder"] = args.embedder  # recorded in the checkpoint so it loads with the same encoder
    if args.strong_model:
        opts["strong_model"] = args.strong_model
    if args.weak_model:
        opts["weak_model"] = args.weak_model
    for kv in args.option or []:
        k, _, v = kv.partition("=")
        try:
            opts[k] = json.loads(v)
        except json.JSONDecodeError:
            opts[k] = v
    router = train_router(args.router, data, embed, reference=ref or None, reference_name=ref_name if ref else "training prompts", **opts)
    router.save(args.out, model_card(router, data))
    print(f"saved {args.router} router to {args.out}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from routing_core.calibration import threshold_for_strong_fraction
    from routing_core.cli import _load_router
    from routing_core.data.loaders import load_prompts

    router = _load_router(args)
    if args.prompts:
        prompts, _ = load_prompts(args.prompts)
        rates = router.win_rate(prompts)
        t = threshold_for_strong_fraction(rates, args.strong_fraction)
        source = f"{len(prompts)} prompts from {args.prompts}"
    else:
        t = router.threshold_for_strong_fraction(args.strong_fraction)
        has_ref = getattr(router, "reference_win_rates", None) is not None
        source = "the router's bundled reference sample" if has_ref else f"the {router.name} router's own win-rate distribution"
    print(f"threshold {t:.6f} sends {100 * args.strong_fraction:.1f}% of prompts to the strong model (calibrated on {source})")
    if args.json:
        from routing_core.cli import _write_json

        _write_json(args.json, {"router": router.name, "strong_fraction": args.strong_fraction, "threshold": t, "source": source})
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `train` and `calibrate` on the main parser."""
    from routing_core.cli import _add_router_arg

    p = sub.add_parser("train", help="train a router on any mix of preference data and save a checkpoint folder")
    p.add_argument("--router", required=True, help="router kind: mf, sw_ranking, bert, causal_llm, logistic, knn, length")
    p.add_argument("--data", nargs="+", metavar="SPEC", help=f"data specs (default: {' '.join(DEFAULT_DATA)})")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs-per-prompt", type=int, default=8, help="random extra model pairs per scored prompt")
    p.add_argument("--strong-model", help="strong model name (mf, sw_ranking)")
    p.add_argument("--weak-model", help="weak model name (mf, sw_ranking)")
    p.add_argument("--embedder", default=None, help="local encoder folder (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--cache-dir", default=".cache/embeddings", help="on-disk embedding cache ('' to disable)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="router-specific option, e.g. max_epochs=20")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("calibrate", help="the threshold that sends a given share of prompts to the strong model")
    _add_router_arg(p)
    p.add_argument("--strong-fraction", type=float, required=True)
    p.add_argument("--prompts", help="prompt file to calibrate on (default: the router's bundled reference sample)")
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=cmd_calibrate)
