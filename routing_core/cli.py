"""`routing-core` command line: route | eval | train | calibrate. The only module that prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routing_core.errors import RoutingError

EXIT_USAGE = 2


class CLIError(RoutingError):
    """A usage problem reported as one line with exit code 2."""


def _fail(msg: str) -> int:
    print(f"routing-core: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _add_router_arg(p: argparse.ArgumentParser) -> None:
    from routing_core.registry import DEFAULT_ROUTER

    p.add_argument("--router", default=DEFAULT_ROUTER, help=f"bundled router name or checkpoint folder (default: {DEFAULT_ROUTER})")
    p.add_argument("--seed", type=int, default=None, help="seed for stochastic routers (random)")


def _load_router(args: argparse.Namespace) -> Any:
    from routing_core.registry import load_router

    kwargs = {"seed": args.seed} if getattr(args, "seed", None) is not None else {}
    return load_router(args.router, **kwargs)


def _write_json(path: str, data: Any) -> None:
    text = json.dumps(data, indent=2, default=float) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")


# --- route -----------------------------------------------------------------------------------------------


def cmd_route(args: argparse.Namespace) -> int:
    from routing_core.costs import PriceTable, count_tokens
    from routing_core.data.loaders import MAX_PROMPT_CHARS, load_prompts
    from routing_core.router import check_strong_fraction, check_threshold

    if args.prompts and args.file:
        raise CLIError("give prompts as arguments or with --file, not both")
    truncated = 0
    if args.file:
        prompts, truncated = load_prompts(args.file)
    elif args.prompts:
        prompts = [p[:MAX_PROMPT_CHARS] for p in args.prompts]
        truncated = sum(len(p) > MAX_PROMPT_CHARS for p in args.prompts)
        if not any(p.strip() for p in prompts):
            raise CLIError("all prompts are empty")
    else:
        raise CLIError("no prompts: give PROMPT arguments or --file FILE")
    router = _load_router(args)
    if args.threshold is not None:
        threshold = check_threshold(args.threshold)
        how = "--threshold"
    else:
        fraction = check_strong_fraction(0.5 if args.strong_fraction is None else args.strong_fraction)
        threshold = router.threshold_for_strong_fraction(fraction)
        how = f"--strong-fraction {fraction:g} (calibrated on the router's reference prompts)"
    decisions = router.route(prompts, threshold)
    prices = PriceTable()
    s_price, w_price = prices.get(args.strong_model), prices.get(args.weak_model)
    rows = []
    for p, d in zip(prompts, decisions, strict=True):
        tin = count_tokens(p)
        rows.append({"prompt": p, "win_rate": d.win_rate, "model": d.model, "input_tokens": tin})
    n_strong = sum(r["model"] == "strong" for r in rows)

    def total(kind: str) -> float | None:
        if s_price is None or w_price is None:
            return None
        cost = 0.0
        for r in rows:
            side = kind if kind in ("strong", "weak") else r["model"]
            price = s_price if side == "strong" else w_price
            cost += price.cost(r["input_tokens"], args.output_tokens)
        return cost

    summary = {
        "router": router.name,
        "threshold": threshold,
        "threshold_from": how,
        "n": len(rows),
        "strong_calls": n_strong,
        "strong_share": n_strong / len(rows),
        "truncated_prompts": truncated,
        "strong_model": args.strong_model,
        "weak_model": args.weak_model,
        "assumed_output_tokens": args.output_tokens,
        "cost_routed_usd": total("routed"),
        "cost_always_strong_usd": total("strong"),
        "cost_always_weak_usd": total("weak"),
    }
    if args.json:
        _write_json(args.json, {"summary": summary, "decisions": rows})
        if args.json == "-":
            return 0
    width = 70
    print(f"{'#':>3}  {'win rate':>8}  {'model':<6}  prompt")
    for i, r in enumerate(rows, 1):
        text = " ".join(r["prompt"].split())
        text = text if len(text) <= width else text[: width - 1] + "…"
        print(f"{i:>3}  {r['win_rate']:>8.3f}  {r['model']:<6}  {text}")
    print()
    print(f"router: {router.name}   threshold: {threshold:.4f} (from {how})")
    print(f"strong calls: {n_strong}/{len(rows)} ({100 * n_strong / len(rows):.1f}%)")
    if truncated:
        print(f"note: {truncated} prompt(s) longer than {MAX_PROMPT_CHARS} characters were truncated")
    if summary["cost_routed_usd"] is not None:
        c, s, w = summary["cost_routed_usd"], summary["cost_always_strong_usd"], summary["cost_always_weak_usd"]
        saved = 100 * (1 - c / s) if s else 0.0
        print(
            f"estimated cost ({args.strong_model} vs {args.weak_model}, {args.output_tokens} output tokens/prompt): "
            f"routed ${c:.4f}  always-strong ${s:.4f}  always-weak ${w:.4f}  ({saved:.1f}% saved vs always-strong)"
        )
    else:
        print(f"no price known for {args.strong_model!r} or {args.weak_model!r}: cost estimate skipped")
    return 0


# --- eval ------------------------------------------------------------------------------------------------


def _benchmark(args: argparse.Namespace) -> Any:
    from routing_core.data.loaders import load_benchmark
    from routing_core.data.shared import is_mmlu_train

    bench = load_benchmark(args.benchmark, args.data)
    if args.split == "eval" and args.benchmark == "mmlu":
        bench = bench.subset([not is_mmlu_train(it.prompt) for it in bench.items], "mmlu training split")
    if len(bench) == 0:
        raise CLIError(f"{args.data}: no benchmark items left to evaluate")
    return bench


def cmd_eval(args: argparse.Namespace) -> int:
    from routing_core.evaluation import evaluate_router, format_table, plot_results

    bench = _benchmark(args)
    router = _load_router(args)
    if args.train_prompts:
        from routing_core.data.loaders import load_prompts
        from routing_core.embedders import default_embedder
        from routing_core.evaluation import decontaminate

        train, _ = load_prompts(args.train_prompts)
        bench = decontaminate(bench, train, default_embedder())
    result = evaluate_router(router, bench, n_boot=args.n_boot, repeats=args.repeats, progress=True, seed=args.seed or 0)
    print(format_table([result]))
    if bench.dropped:
        print("dropped before evaluation: " + ", ".join(f"{k}: {v}" for k, v in bench.dropped.items()))
    if args.json:
        _write_json(args.json, result.to_dict())
    if args.plot:
        plot_results([result], args.plot)
    return 0


# --- parser ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from routing_core.data.loaders import BENCHMARKS

    parser = argparse.ArgumentParser(prog="routing-core", description="Learned LLM routing (RouteLLM): route, evaluate, train, calibrate.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("route", help="route prompts: win rate and strong/weak decision per prompt, plus a cost summary")
    _add_router_arg(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, help="strong iff win rate >= threshold, in [0, 1]")
    g.add_argument("--strong-fraction", type=float, help="target share of strong calls in [0, 1] (default 0.5)")
    p.add_argument("prompts", nargs="*", metavar="PROMPT")
    p.add_argument("--file", help="prompt file: one per line, .jsonl with a 'prompt' key, or a .json list")
    p.add_argument("--json", help="write machine-readable output to this file ('-' for stdout only)")
    p.add_argument("--strong-model", default="gpt-4-1106-preview", help="strong model name for cost estimates")
    p.add_argument("--weak-model", default="mixtral-8x7b-instruct", help="weak model name for cost estimates")
    p.add_argument("--output-tokens", type=int, default=300, help="assumed output tokens per answer (cost estimate)")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("eval", help="evaluate a router on a benchmark with the paper's metrics")
    _add_router_arg(p)
    p.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    p.add_argument("--data", required=True, help="benchmark folder or file")
    p.add_argument("--split", choices=("eval", "all"), default="eval", help="MMLU: evaluation split only (default) or all")
    p.add_argument("--json", help="write the metrics as JSON")
    p.add_argument("--plot", help="write a quality / %% strong calls plot (PNG)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for 95%% intervals (0: none)")
    p.add_argument("--repeats", type=int, default=None, help="seeds to average for a stochastic router (default 10)")
    p.add_argument("--train-prompts", help="decontaminate: drop benchmark prompts with cosine >= 0.95 to these")
    p.set_defaults(func=cmd_eval)

    from routing_core import training_cli

    training_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (RoutingError, ValueError, TypeError) as e:
        return _fail(str(e))
    except FileNotFoundError as e:
        return _fail(f"{e.filename}: no such file")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
