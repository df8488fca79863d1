"""The `label` sub-command: judge-labelled battles from a prompt file (see routing_core.labeling)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXAMPLE = (
    "example: routing-core label --prompts prompts.jsonl --strong openai:gpt-4o --weak openai:gpt-4o-mini "
    "--judge openai:gpt-4o --out battles.jsonl"
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register `label` on the main parser's sub-commands and return its parser."""
    p = subparsers.add_parser(
        "label",
        help="answer prompts with a strong and a weak model, judge them, write battles for `train`",
        description="Label your own prompts: strong answer, weak answer, judge verdict -> JSONL battles "
        "(`train --data battles:OUT`). Resumable: rerun the same command to finish or retry. " + EXAMPLE,
    )
    p.add_argument(
        "--prompts",
        required=True,
        help="prompt file: .jsonl with 'prompt' (and 'id'), .json list, or one per line",
    )
    p.add_argument(
        "--strong",
        required=True,
        help="strong model, a LangChain 'provider:model' string (e.g. openai:gpt-4o)",
    )
    p.add_argument("--weak", required=True, help="weak model, 'provider:model'")
    p.add_argument("--judge", required=True, help="judge model, 'provider:model'")
    p.add_argument("--out", required=True, help="battles file to append to (JSONL)")
    p.add_argument("--errors", help="errors file (default: OUT with .errors.jsonl)")
    p.add_argument("--judge-mode", choices=("grade", "pairwise"), default="grade",
                   help="grade: 1-5 grade of the weak answer against the strong one (paper, default); "
                   "pairwise: A/B verdict asked in both orders")  # fmt: skip
    p.add_argument(
        "--weak-wins-at", type=int, default=4, help="grade mode: lowest grade at which the weak model wins"
    )
    p.add_argument("--concurrency", type=int, default=8, help="model calls in flight at once")
    p.add_argument(
        "--max-rps", type=float, default=None, help="most call starts per second (default: no limit)"
    )
    p.add_argument("--max-attempts", type=int, default=6, help="attempts per call on 429/5xx/timeouts")
    p.add_argument(
        "--backoff", type=float, default=1.0, help="base backoff in seconds (doubles per attempt, jittered)"
    )
    p.add_argument(
        "--max-cost", type=float, default=None, help="refuse to start when the estimate exceeds this (USD)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the cost estimate and exit")
    p.add_argument("--no-retry-errors", action="store_true", help="skip prompts already in the errors file")
    p.add_argument(
        "--answer-tokens", type=int, default=300, help="assumed output tokens per answer (estimate)"
    )
    p.add_argument("--price", action="append", metavar="MODEL=IN,OUT", help="USD per 1M input,output tokens")
    p.add_argument("--no-answers", action="store_true", help="do not keep the answers and judge text in OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", help="write the run report as JSON to this file")
    p.set_defaults(func=run)
    return p


def _prices(specs: list[str] | None) -> Any:
    from routing_core.costs import PriceTable
    from routing_core.labeling import LabelingError

    extra: dict[str, tuple[float, float]] = {}
    for spec in specs or []:
        name, _, pair = spec.partition("=")
        try:
            i, o = (float(x) for x in pair.split(","))
        except ValueError:
            raise LabelingError(f"--price {spec!r}: expected MODEL=IN,OUT (USD per 1M tokens)") from None
        extra[name] = (i, o)
    return PriceTable(extra)


def run(args: argparse.Namespace) -> int:
    """Run `label` from parsed arguments; prints the estimate, a progress bar and a summary; returns the exit code.

    Exit codes: 0 every prompt labelled, 1 some prompts are in the errors file (rerun to retry), 2 usage error.
    """
    from routing_core.cli.common import check_output
    from routing_core.labeling import Labeller, RetryPolicy, read_prompt_items

    check_output(args.json, "--json")  # before any paid call, so a long run never ends in a failed write
    items, dups = read_prompt_items(args.prompts)
    labeller = Labeller(
        args.strong,
        args.weak,
        args.judge,
        judge_mode=args.judge_mode,
        weak_wins_at=args.weak_wins_at,
        concurrency=args.concurrency,
        max_rps=args.max_rps,
        retry=RetryPolicy(max_attempts=args.max_attempts, base=args.backoff),
        prices=_prices(args.price),
        keep_answers=not args.no_answers,
    )
    print(f"{len(items)} prompt(s) from {args.prompts}" + (f" ({dups} duplicate(s) dropped)" if dups else ""))
    if args.dry_run:
        print(labeller.estimate(items, args.out, answer_tokens=args.answer_tokens))
        return 0
    report = labeller.label(
        items,
        args.out,
        args.errors,
        retry_errors=not args.no_retry_errors,
        max_cost=args.max_cost,
        progress=not args.no_progress,
        on_estimate=lambda est: print(est, flush=True),
        answer_tokens=args.answer_tokens,
    )
    spent = "unknown (unpriced models)" if report.spent_usd is None else f"${report.spent_usd:,.4f}"
    print(
        f"labelled {report.labelled} now, {report.already_done} earlier; {report.failed} failed; "
        f"spent {spent}; winners {report.winners}; {report.seconds:.1f}s"
    )
    print(f"battles: {report.out}")
    if report.failed:
        print(f"errors: {report.errors_path} ({report.failures}); rerun the same command to retry them")
    if args.json:
        from routing_core.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    sys.stdout.flush()
    return 1 if report.failed else 0
