"""The data sets in `../shared/data`, each with the split rule its README gives.

Nothing here is copied into the project: files are read where they lie. `shared_data_dir()` finds the folder
from $ROUTELLM_SHARED_DATA, or `../shared/data` next to the current directory or the source checkout.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from routing_core.data.aliases import canonical_model
from routing_core.data.loaders import (
    load_correctness_long,
    load_gsm8k,
    load_judge_verdicts,
    load_mmlu,
    read_csv,
    read_jsonl,
)
from routing_core.data.records import Battle, Benchmark, BenchmarkItem, ScoredPrompt
from routing_core.errors import DataError

Split = Literal["train", "test", "all"]


def shared_data_dir() -> Path | None:
    """The shared data folder, or None when this machine has none."""
    env = os.environ.get("ROUTELLM_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd() / ".." / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    for c in candidates:
        if (c / "README.md").is_file():
            return c.resolve()
    return None


def require_shared() -> Path:
    d = shared_data_dir()
    if d is None:
        raise DataError("../shared/data", "shared data folder not found (set ROUTELLM_SHARED_DATA)")
    return d


def _h(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16)


def is_mmlu_train(prompt: str) -> bool:
    """The README's MMLU rule: sha1(prompt) % 10 == 0 is training (~10%), everything else evaluation only."""
    return _h(prompt) % 10 == 0


def is_heldout_id(item_id: str, salt: str) -> bool:
    """A stable 20% test split by item or instruction id (never by row)."""
    return _h(f"{salt}:{item_id}") % 5 == 0


def _in_split(is_test: bool, split: Split) -> bool:
    return split == "all" or (split == "test") == is_test


def normalise(text: str) -> str:
    """Lower-case, collapse whitespace: for matching questions across data sets."""
    return re.sub(r"\s+", " ", text).strip().lower()


def final_question(prompt: str, min_chars: int = 16) -> str:
    """The last block of a few-shot prompt (routerbench ARC/Winogrande share a long prefix)."""
    blocks = [b for b in prompt.split("\n\n") if b.strip()]
    if not blocks:
        return prompt
    q = blocks[-1]
    i = len(blocks) - 1
    while len(q.strip()) < min_chars and i > 0:
        i -= 1
        q = blocks[i] + "\n\n" + q
    return q.strip()


# --- benchmarks with their evaluation splits --------------------------------------------------------------


def mmlu_benchmark(split: Split = "test") -> Benchmark:
    """RouteLLM MMLU; split="test" keeps the evaluation prompts only (the README rule)."""
    bench = load_mmlu(require_shared() / "routellm_evals" / "mmlu")
    if split == "all":
        return bench
    keep = [is_mmlu_train(it.prompt) == (split == "train") for it in bench.items]
    return bench.subset(keep, "mmlu training split" if split == "test" else "mmlu evaluation split")


def gsm8k_benchmark() -> Benchmark:
    """RouteLLM GSM8K: evaluation only."""
    return load_gsm8k(require_shared() / "routellm_evals" / "gsm8k")


ROUTERBENCH_STRONG = "gpt-4-1106-preview"
ROUTERBENCH_WEAK = "mixtral-8x7b-instruct-v0.1"
ROUTERBENCH_TASKS = ("arc_challenge", "mbpp", "winograde")


def routerbench_scored(split: Literal["train", "test"]) -> list[ScoredPrompt]:
    """RouterBench 0-shot (ARC, MBPP, Winogrande), the files' own split; prompts cut to the final question."""
    root = require_shared() / "routerbench"
    out = []
    for task in ROUTERBENCH_TASKS:
        path = root / f"{task}_{split}.csv"
        header, rows = read_csv(path, ["sample_id", "prompt"])
        models = [
            c
            for c in header
            if c
            and "|" not in c
            and c not in ("sample_id", "prompt", "eval_name", "oracle_model_to_route_to")
        ]
        for r in rows:
            try:
                parsed = ast.literal_eval(r["prompt"])
            except (ValueError, SyntaxError) as e:
                raise DataError(
                    path, f"sample {r['sample_id']}: prompt is not a Python list literal ({e})"
                ) from e
            text = parsed[0] if isinstance(parsed, list) and parsed else str(parsed)
            scores = {canonical_model(m): float(r[m]) for m in models if r[m] != ""}
            out.append(ScoredPrompt(final_question(text), scores, r["sample_id"], "routerbench", task))
    return out


def routerbench_benchmark() -> Benchmark:
    """The routerbench test split as a GPT-4 vs Mixtral benchmark."""
    items = [
        BenchmarkItem(sp.prompt, sp.scores[ROUTERBENCH_STRONG], sp.scores[ROUTERBENCH_WEAK], sp.id, sp.group)
        for sp in routerbench_scored("test")
        if ROUTERBENCH_STRONG in sp.scores and ROUTERBENCH_WEAK in sp.scores
    ]
    return Benchmark("routerbench", items, ROUTERBENCH_STRONG, ROUTERBENCH_WEAK)


def mmlu_scored(split: Split = "train") -> list[ScoredPrompt]:
    """MMLU golden labels (the paper's augmentation) in the given split."""
    bench = mmlu_benchmark(split)
    return [
        ScoredPrompt(
            it.prompt,
            {canonical_model(bench.strong_model): it.strong, canonical_model(bench.weak_model): it.weak},
            it.id,
            "mmlu",
            it.group,
        )
        for it in bench.items
    ]


def zeroeval_scored(split: Split = "train") -> list[ScoredPrompt]:
    """ZeroEval crux and math-l5 correctness (split by item id); task "gsm" is GSM8K test and never returned."""
    root = require_shared() / "zeroeval"
    _, items = read_csv(root / "items.csv", ["task", "item_id", "question"])
    question = {(r["task"], r["item_id"]): r["question"] for r in items if r["task"] != "gsm"}
    scored = load_correctness_long(
        root / "correctness_long.csv", "item_id", "model", "correct", source="zeroeval"
    )
    # load_correctness_long keyed rows by prompt column; here the "prompt" column is item_id, so map to text
    tasks = {r["item_id"]: r["task"] for r in items}
    out = []
    for sp in scored:
        task = tasks.get(sp.prompt)
        if task is None or task == "gsm" or (task, sp.prompt) not in question:
            continue
        if _in_split(is_heldout_id(sp.prompt, "zeroeval"), split):
            out.append(
                ScoredPrompt(question[(task, sp.prompt)], dict(sp.scores), sp.prompt, "zeroeval", task)
            )
    return out


class BannedPrompts:
    """Matches texts that equal or start with one of the banned prompts after normalisation (dcrouter appends an
    instruction such as "put your final answer in \\boxed{}" to verbatim GSM8K questions)."""

    KEY = 48

    def __init__(self, prompts: Iterable[str]) -> None:
        self.by_prefix: dict[str, list[str]] = {}
        for p in prompts:
            n = normalise(p)
            self.by_prefix.setdefault(n[: self.KEY], []).append(n)

    def matches(self, text: str) -> bool:
        n = normalise(text)
        return any(n.startswith(b) for b in self.by_prefix.get(n[: self.KEY], ()))


def dcrouter_scored(
    split: Literal["train", "test"], exclude: Iterable[str] | None = None
) -> list[ScoredPrompt]:
    """LLMRouter/DC-Router scores for 9 open models; rows whose question is a GSM8K test prompt are dropped."""
    root = require_shared() / "llmrouter_dcrouter"
    path = root / f"{split}.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(path, f"unreadable JSON ({e})") from e
    banned = BannedPrompts(exclude if exclude is not None else gsm8k_benchmark().prompts)
    out = []
    for i, r in enumerate(rows):
        q = r["question"]
        if banned.matches(q):
            continue
        scores = {canonical_model(m): float(v) for m, v in r["scores"].items()}
        out.append(ScoredPrompt(q, scores, f"{split}-{i}", "dcrouter", str(r.get("cluster_id", ""))))
    return out


def alpaca_battles(split: Split = "train", annotator: str = "alpaca_eval_gpt4_turbo_fn") -> list[Battle]:
    """alpaca_eval judge verdicts vs gpt4_1106_preview, split by instruction id."""
    root = require_shared() / "alpaca_eval"
    battles = load_judge_verdicts(
        root / "preferences_vs_gpt4_1106_preview.csv", root / "instructions.csv", annotator
    )
    return [b for b in battles if _in_split(is_heldout_id(b.id, "alpaca"), split)]


def alpaca_benchmark() -> Benchmark:
    """Held-out alpaca_eval instructions as a GPT-4-Turbo vs Mixtral benchmark (judge win = 1, loss = 0)."""
    items = []
    for b in alpaca_battles("test"):
        if {b.model_a, b.model_b} == {ROUTERBENCH_STRONG, ROUTERBENCH_WEAK}:
            s = b.outcome_for(ROUTERBENCH_STRONG)
            assert s is not None
            items.append(BenchmarkItem(b.prompt, s, 1.0 - s, b.id))
    return Benchmark("alpaca_eval", items, ROUTERBENCH_STRONG, ROUTERBENCH_WEAK)


def arena_hard_prompts() -> list[str]:
    """The 500 Arena-Hard prompts (no labels): the reference sample for threshold calibration."""
    return [
        str(r["prompt"])
        for r in read_jsonl(require_shared() / "arena_hard_v0.1" / "question.jsonl", ["prompt"])
    ]
