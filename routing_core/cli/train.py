"""`routing-core train` and `routing-core calibrate`: a checkpoint from preference data; a threshold from a share."""

from __future__ import annotations

import argparse
import json
import re
from functools import partial
from pathlib import Path
from typing import Any

from routing_core.cli.common import (
    CLIError,
    add_router_arg,
    check_output,
    load_router,
    non_negative_int,
    seed_int,
    unit_float,
    write_json,
)

_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """`--option KEY=VALUE` pairs: VALUE as JSON when it parses (numbers, true, lists), else as a string."""
    opts: dict[str, Any] = {}
    for kv in pairs or []:
        key, eq, value = kv.partition("=")
        key = key.strip()
        if not eq or not _OPTION_KEY.match(key):
            raise CLIError(
                f"--option {kv!r}: expected KEY=VALUE with KEY a Python identifier (e.g. max_epochs=20)"
            )
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            parsed = value
        if isinstance(parsed, float) and parsed != parsed or parsed in (float("inf"), float("-inf")):
            raise CLIError(f"--option {kv!r}: the value must be finite")
        opts[key] = parsed
    return opts


def check_out_folder(out: str, overwrite: bool) -> Path:
    """`train --out` must be a new or empty folder (or `--overwrite`), in a place we can write: checked first."""
    from routing_core.atomic import check_writable_file

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out {out}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise CLIError(f"--out {out}: folder is not empty (pass --overwrite to replace the checkpoint in it)")
    try:
        check_writable_file(path.parent / f".{path.name}.probe", "--out")
    except OSError as e:
        raise CLIError(str(e)) from None
    return path


def cmd_train(args: argparse.Namespace) -> int:
    """Build the training data, fit, calibrate, and write the checkpoint atomically."""
    from routing_core.embedders import resolve_embedder
    from routing_core.registry import get_router_class
    from routing_core.training import (
        DEFAULT_DATA,
        build_training_data,
        embed_cached,
        model_card,
        reference_prompts,
        train_router,
    )

    out = check_out_folder(args.out, args.overwrite)
    get_router_class(args.router)  # an unknown kind fails before any data is read
    opts: dict[str, Any] = {"seed": args.seed}
    if args.embedder:
        opts["embedder"] = args.embedder  # recorded in the checkpoint so it loads with the same encoder
    if args.strong_model:
        opts["strong_model"] = args.strong_model
    if args.weak_model:
        opts["weak_model"] = args.weak_model
    opts.update(parse_options(args.option))
    data = build_training_data(
        args.data or DEFAULT_DATA,
        pairs_per_prompt=args.pairs_per_prompt,
        seed=args.seed,
        strong_model=args.strong_model,
        weak_model=args.weak_model,
    )
    print(
        f"training data: {len(data.battles)} battles over {len(data.models)} models, "
        f"{len(data.pairs)} strong-vs-weak examples"
    )
    for spec, n in data.sources.items():
        print(f"  {spec}: {n} battles")
    embedder = resolve_embedder(args.embedder)
    embed = partial(embed_cached, embedder, cache_dir=args.cache_dir) if args.cache_dir else embedder.embed
    ref, ref_name = reference_prompts()
    router = train_router(
        args.router,
        data,
        embed,
        reference=ref or None,
        reference_name=ref_name if ref else "training prompts",
        **opts,
    )
    router.save(out, model_card(router, data))
    print(f"saved {args.router} router to {out}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """The threshold sending `--strong-fraction` of prompts strong, on a prompt file or the reference sample."""
    from routing_core.calibration import threshold_for_strong_fraction
    from routing_core.data.loaders import read_prompt_file

    check_output(args.json, "--json")
    router = load_router(args)
    if args.prompts:
        prompts = [r.text for r in read_prompt_file(args.prompts).records if not r.empty]
        if not prompts:
            raise CLIError(f"{args.prompts}: every record is empty; nothing to calibrate on")
        t = threshold_for_strong_fraction(router.win_rate(prompts), args.strong_fraction)
        source = f"{len(prompts)} prompts from {args.prompts}"
    else:
        t = router.threshold_for_strong_fraction(args.strong_fraction)
        has_ref = getattr(router, "reference_win_rates", None) is not None
        source = (
            "the router's bundled reference sample"
            if has_ref
            else f"the {router.name} router's own win-rate distribution"
        )
    print(
        f"threshold {t:.6f} sends {100 * args.strong_fraction:.1f}% of prompts to the strong model (calibrated on {source})"
    )
    if args.json:
        write_json(
            args.json,
            {
                "router": router.name,
                "strong_fraction": args.strong_fraction,
                "threshold": t,
                "source": source,
            },
        )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `train` and `calibrate`."""
    from routing_core.training import DEFAULT_DATA

    p = sub.add_parser(
        "train", help="train a router on any mix of preference data and save a checkpoint folder"
    )
    p.add_argument(
        "--router", required=True, help="router kind: mf, sw_ranking, bert, causal_llm, logistic, knn, length"
    )
    p.add_argument(
        "--data", nargs="+", metavar="SPEC", help=f"data specs (default: {' '.join(DEFAULT_DATA)})"
    )
    p.add_argument(
        "--out", required=True, help="checkpoint folder to write (new or empty, unless --overwrite)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the checkpoint in a non-empty --out folder"
    )
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument(
        "--pairs-per-prompt",
        type=non_negative_int,
        default=8,
        help="random extra model pairs per scored prompt",
    )
    p.add_argument(
        "--strong-model",
        help="strong model name: mf/sw_ranking route between it and --weak-model; with both given, classifiers "
        "learn from the battles between exactly these two (your own pair) instead of the GPT-4/Mixtral tiers",
    )
    p.add_argument("--weak-model", help="weak model name (see --strong-model)")
    p.add_argument(
        "--embedder", default=None, help="local encoder folder (default: bundled all-MiniLM-L6-v2)"
    )
    p.add_argument("--cache-dir", default=".cache/embeddings", help="on-disk embedding cache ('' to disable)")
    p.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="router-specific option, e.g. max_epochs=20"
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "calibrate", help="the threshold that sends a given share of prompts to the strong model"
    )
    add_router_arg(p)
    p.add_argument("--strong-fraction", type=unit_float, required=True)
    p.add_argument(
        "--prompts", help="prompt file to calibrate on (default: the router's bundled reference sample)"
    )
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=cmd_calibrate)
