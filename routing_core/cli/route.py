"""`routing-core route`: one decision per input record, in order, each with its index (and the input's `id`)."""

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
    unit_float,
    write_json,
)

NO_TEXT_REASON = "no_text"  # an empty or whitespace-only record: nothing to route on


def _records(args: argparse.Namespace) -> tuple[list[Any], int, str]:
    """The input records (file or arguments), blank lines skipped in a text file, and where they came from."""
    from routing_core.data.loaders import MAX_PROMPT_CHARS, read_prompt_file
    from routing_core.data.records import PromptRecord

    if args.prompts and args.file:
        raise CLIError("give prompts as arguments or with --file, not both")
    if args.file:
        f = read_prompt_file(args.file)
        return f.records, f.blank_lines, args.file
    if not args.prompts:
        raise CLIError("no prompts: give PROMPT arguments or --file FILE")
    recs = [
        PromptRecord(i, p[:MAX_PROMPT_CHARS], f"argument {i + 1}", None, len(p) > MAX_PROMPT_CHARS)
        for i, p in enumerate(args.prompts)
    ]
    return recs, 0, "arguments"


def _threshold(router: Any, args: argparse.Namespace) -> tuple[float, str]:
    from routing_core.router import check_strong_fraction, check_threshold

    if args.threshold is not None:
        return check_threshold(args.threshold), "--threshold"
    fraction = check_strong_fraction(0.5 if args.strong_fraction is None else args.strong_fraction)
    how = f"--strong-fraction {fraction:g} (calibrated on the router's reference prompts)"
    return router.threshold_for_strong_fraction(fraction), how


def decide_records(
    router: Any, records: list[Any], threshold: float, no_text_side: str
) -> list[dict[str, Any]]:
    """One row per record, in input order: index, id, where, side, reason, win rate (None without text)."""
    texts = [r.text for r in records if not r.empty]
    decisions = iter(router.route(texts, threshold) if texts else [])
    rows = []
    for r in records:
        if r.empty:
            side, reason, win_rate = no_text_side, NO_TEXT_REASON, None
        else:
            d = next(decisions)
            side, reason, win_rate = ("strong" if d.strong else "weak"), "router", float(d.win_rate)
        rows.append(
            {
                "index": r.index,
                "id": r.id,
                "where": r.where,
                "prompt": r.text,
                "win_rate": win_rate,
                "side": side,
                "reason": reason,
                "truncated": r.truncated,
            }
        )
    if next(decisions, None) is not None:  # pragma: no cover - the router contract guarantees one per prompt
        raise RuntimeError("the router returned more decisions than prompts")
    return rows


def _costs(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, float | None]:
    """Estimated costs from the package's one cost ledger: the routed run, always-strong, always-weak.

    Input tokens are counted per prompt, output tokens assumed (`--output-tokens`); None when either model has
    no known price (a partial estimate would compare unlike totals).
    """
    from routing_core.costs import CostLedger, count_tokens

    ledger = CostLedger(strong_model=args.strong_model)
    for r in rows:
        r["input_tokens"] = count_tokens(r["prompt"])
        r["model_name"] = args.strong_model if r["side"] == "strong" else args.weak_model
        ledger.record_decision(r["side"], r["reason"])
        ledger.record_usage(r["side"], r["model_name"], r["input_tokens"], args.output_tokens, estimated=True)
    s = ledger.summary()
    unknown = ledger.prices.get(args.strong_model) is None or ledger.prices.get(args.weak_model) is None
    if unknown or s.unpriced_calls:
        return {"cost_routed_usd": None, "cost_always_strong_usd": None, "cost_always_weak_usd": None}
    return {
        "cost_routed_usd": s.cost,
        "cost_always_strong_usd": s.always_strong_cost,
        "cost_always_weak_usd": ledger.cost_if_always(args.weak_model),
    }


def cmd_route_ray(args: argparse.Namespace) -> int:
    """`route --ray --file F --out OUT.parquet`: the same decisions computed on Ray, one Parquet file."""
    from routing_core.distributed import route_file

    if not args.file or args.prompts:
        raise CLIError("--ray routes a file: give --file FILE (and no PROMPT arguments)")
    if args.json:
        raise CLIError("--ray writes Parquet to --out; --json is for in-process runs")
    if not args.out:
        raise CLIError("--ray needs --out PATH.parquet")
    check_output(args.out, "--out", (".parquet",))
    summary = route_file(
        args.file,
        args.out,
        args.router,
        threshold=args.threshold,
        strong_fraction=0.5
        if args.threshold is None and args.strong_fraction is None
        else args.strong_fraction,
        no_text_side=args.empty_side,
        address=args.ray_address,
        num_cpus=args.num_cpus,
    )
    print(f"routed {summary['n']} record(s) from {args.file} -> {summary['out']}")
    if summary.get("blank_lines_skipped"):
        print(
            f"note: {summary['blank_lines_skipped']} blank line(s) skipped (they separate prompts in a text file)"
        )
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    """Route every record and print a table and a summary (or write them as JSON)."""
    from routing_core.data.loaders import MAX_PROMPT_CHARS

    if args.ray:
        return cmd_route_ray(args)
    if args.out:
        raise CLIError("--out is for --ray runs; use --json PATH for an in-process run")
    check_output(args.json, "--json")
    records, blank, source = _records(args)
    router = load_router(args)
    threshold, how = _threshold(router, args)
    rows = decide_records(router, records, threshold, args.empty_side)
    costs = _costs(rows, args)
    n = len(rows)
    n_strong = sum(r["side"] == "strong" for r in rows)
    n_no_text = sum(r["reason"] == NO_TEXT_REASON for r in rows)
    truncated = sum(r["truncated"] for r in rows)
    summary = {
        "router": router.name,
        "threshold": threshold,
        "threshold_from": how,
        "source": source,
        "n": n,
        "routed_by_router": n - n_no_text,
        "no_text": n_no_text,
        "no_text_side": args.empty_side,
        "strong_calls": n_strong,
        "weak_calls": n - n_strong,
        "strong_share": n_strong / n,
        "truncated_prompts": truncated,
        "blank_lines_skipped": blank,
        "strong_model": args.strong_model,
        "weak_model": args.weak_model,
        "assumed_output_tokens": args.output_tokens,
        **costs,
    }
    if args.json:
        write_json(args.json, {"summary": summary, "decisions": rows})
        if args.json == "-":
            return 0
    width = 70
    print(f"{'#':>4}  {'win rate':>8}  {'side':<6}  prompt")
    for r in rows:
        text = " ".join(r["prompt"].split()) or "(empty: no text to route on)"
        text = text if len(text) <= width else text[: width - 1] + "…"
        rate = "-" if r["win_rate"] is None else f"{r['win_rate']:.3f}"
        label = f"{r['index']}" if r["id"] is None else f"{r['index']} [{r['id']}]"
        print(f"{label:>4}  {rate:>8}  {r['side']:<6}  {text}")
    print()
    print(f"router: {router.name}   threshold: {threshold:.4f} (from {how})")
    print(f"records: {n} from {source}; strong calls: {n_strong}/{n} ({100 * n_strong / n:.1f}%)")
    if n_no_text:
        print(
            f"note: {n_no_text} empty record(s) had no text to route on and went to the {args.empty_side} model"
        )
    if blank:
        print(f"note: {blank} blank line(s) skipped (they separate prompts in a text file)")
    if truncated:
        print(f"note: {truncated} prompt(s) longer than {MAX_PROMPT_CHARS} characters were truncated")
    if costs["cost_routed_usd"] is not None:
        c, s, w = costs["cost_routed_usd"], costs["cost_always_strong_usd"], costs["cost_always_weak_usd"]
        assert s is not None and w is not None
        saved = 100 * (1 - c / s) if s else 0.0
        print(
            f"estimated cost ({args.strong_model} vs {args.weak_model}, {args.output_tokens} output tokens/prompt): "
            f"routed ${c:.4f}  always-strong ${s:.4f}  always-weak ${w:.4f}  ({saved:.1f}% saved vs always-strong)"
        )
    else:
        print(f"no price known for {args.strong_model!r} or {args.weak_model!r}: cost estimate skipped")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `route`."""
    from routing_core.data.aliases import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL

    p = sub.add_parser(
        "route", help="route prompts: win rate and strong/weak decision per prompt, plus a cost summary"
    )
    add_router_arg(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=unit_float, help="strong iff win rate >= threshold, in [0, 1]")
    g.add_argument(
        "--strong-fraction", type=unit_float, help="target share of strong calls in [0, 1] (default 0.5)"
    )
    p.add_argument("prompts", nargs="*", metavar="PROMPT")
    p.add_argument(
        "--file",
        help="prompt file: one per line (blank lines separate), .jsonl with a 'prompt' (and 'id') per line, "
        "or a .json list of strings or such objects",
    )
    p.add_argument("--json", help="write machine-readable output to this file ('-' for stdout only)")
    p.add_argument(
        "--empty-side",
        choices=("strong", "weak"),
        default="strong",
        help="where an empty record goes (no text to route on; default strong, as in the wrappers)",
    )
    p.add_argument(
        "--strong-model", default=DEFAULT_STRONG_MODEL, help="strong model name for cost estimates"
    )
    p.add_argument("--weak-model", default=DEFAULT_WEAK_MODEL, help="weak model name for cost estimates")
    p.add_argument(
        "--output-tokens",
        type=non_negative_int,
        default=300,
        help="assumed output tokens per answer (cost estimate)",
    )
    g = p.add_argument_group("big files on Ray (optional extra: pip install 'ray[data]')")
    g.add_argument("--ray", action="store_true", help="route --file on Ray Data and write Parquet to --out")
    g.add_argument(
        "--out", help="Parquet file for --ray (index, id, win_rate, side, reason; sorted by index)"
    )
    g.add_argument("--ray-address", help="Ray cluster address (default: a local Ray)")
    g.add_argument("--num-cpus", type=positive_int, help="CPUs for a local Ray (default: all)")
    p.set_defaults(func=cmd_route)
