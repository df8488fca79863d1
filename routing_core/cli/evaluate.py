"""`routing-core eval`: a router on a benchmark with the paper's metrics, optionally as JSON and a plot."""

from __future__ import annotations

import argparse
from typing import Any

from routing_core.cli.common import (
    CLIError,
    add_router_arg,
    check_output,
    load_router,
    non_negative_int,
    positive_int,
    write_json,
)

PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _benchmark(args: argparse.Namespace) -> Any:
    from routing_core.data.loaders import load_benchmark
    from routing_core.data.shared import is_mmlu_train

    bench = load_benchmark(args.benchmark, args.data)
    if args.split == "eval" and args.benchmark == "mmlu":
        bench = bench.subset([not is_mmlu_train(it.prompt) for it in bench.items], "mmlu training split")
    if len(bench) == 0:
        raise CLIError(f"{args.data}: no benchmark items left to evaluate")
    return bench


def cmd_eval_multi(args: argparse.Namespace) -> int:
    """`--benchmark multi`: a multi-model router's quality-cost curve on a CSV with `prompt`, `M`, `M|cost`."""
    from routing_core.data.multi import load_multi_csv
    from routing_core.multi_eval import evaluate_multi, format_multi_table, plot_multi

    table = load_multi_csv(args.data).complete()
    if len(table) == 0:
        raise CLIError(f"{args.data}: no row has a score and a cost for every model")
    router = load_router(args)
    if not callable(getattr(router, "quality", None)):
        raise CLIError(
            f"--router {args.router}: a two-model router; --benchmark multi needs a multi-model router "
            "(quality per model), e.g. the bundled 'multi'"
        )
    if args.train_prompts:
        raise CLIError("--train-prompts (decontamination) is not supported with --benchmark multi")
    mapping = {}
    for item in args.model_map or []:
        name, sep, known = item.partition("=")
        if not sep or not name or not known:
            raise CLIError(f"--model-map {item!r}: expected NAME=KNOWN_MODEL")
        mapping[name] = known
    try:
        result = evaluate_multi(router, table, name=str(args.router), model_map=mapping or None)
    except ValueError as e:  # an unknown model (the message lists the known ones), a missing price
        raise CLIError(f"{args.data}: {e}") from e
    print(format_multi_table([result]))
    print(f"oracle: quality {result.oracle['quality']:.4f} at {result.oracle['cost']:.6g} per query")
    if args.json:
        write_json(args.json, result.to_dict())
    if args.plot:
        plot_multi([result], args.plot)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate, print the table, then write the JSON and the plot (paths checked before any work)."""
    from routing_core.evaluation import evaluate_router, format_table, plot_results
    from routing_core.registry import DEFAULT_MULTI_ROUTER, DEFAULT_ROUTER

    check_output(args.json, "--json")
    check_output(args.plot, "--plot", PLOT_SUFFIXES)
    if args.router is None:
        args.router = DEFAULT_MULTI_ROUTER if args.benchmark == "multi" else DEFAULT_ROUTER
    if args.benchmark == "multi":
        return cmd_eval_multi(args)
    bench = _benchmark(args)
    router = load_router(args)
    if args.train_prompts:
        from routing_core.data.loaders import read_prompt_file
        from routing_core.embedders import default_embedder
        from routing_core.evaluation import decontaminate

        train = [r.text for r in read_prompt_file(args.train_prompts).records if not r.empty]
        bench = decontaminate(bench, train, default_embedder())
        if len(bench) == 0:
            raise CLIError(
                f"{args.data}: every benchmark item is within the decontamination cosine of {args.train_prompts}"
            )
    result = evaluate_router(
        router, bench, n_boot=args.n_boot, repeats=args.repeats, progress=True, seed=args.seed or 0
    )
    print(format_table([result]))
    if bench.dropped:
        print("dropped before evaluation: " + ", ".join(f"{k}: {v}" for k, v in bench.dropped.items()))
    if args.json:
        write_json(args.json, result.to_dict())
    if args.plot:
        plot_results([result], args.plot)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `eval`."""
    from routing_core.data.loaders import BENCHMARKS

    p = sub.add_parser("eval", help="evaluate a router on a benchmark with the paper's metrics")
    add_router_arg(p, default_help="difficulty; multi for --benchmark multi")
    p.add_argument(
        "--benchmark",
        required=True,
        choices=(*BENCHMARKS, "multi"),
        help="multi: a CSV with prompt, one score column M and one cost column M|cost per model",
    )
    p.add_argument("--data", required=True, help="benchmark folder or file")
    p.add_argument(
        "--split",
        choices=("eval", "all"),
        default="eval",
        help="MMLU: evaluation split only (default) or all",
    )
    p.add_argument("--json", help="write the metrics as JSON")
    p.add_argument("--plot", help="write a quality / %% strong calls plot (.png, .pdf or .svg)")
    p.add_argument(
        "--n-boot",
        type=non_negative_int,
        default=1000,
        help="bootstrap resamples for 95%% intervals (0: none)",
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help="seeds to average for a stochastic router (default 10)",
    )
    p.add_argument(
        "--train-prompts", help="decontaminate: drop benchmark prompts with cosine >= 0.95 to these"
    )
    p.add_argument(
        "--model-map",
        action="append",
        metavar="NAME=KNOWN",
        help="multi: score column NAME as the router's model KNOWN (repeatable)",
    )
    p.set_defaults(func=cmd_eval)
