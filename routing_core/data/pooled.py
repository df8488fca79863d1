"""Pooled per-prompt targets: what every judged or graded model says about how much a prompt needs a strong model.

A pairwise GPT-4-vs-Mixtral verdict on one prompt is one noisy bit. The shared data judge or grade many models on
the same prompts (alpaca_eval: ~60 models against GPT-4-Turbo; ZeroEval: 40-48; routerbench: 11; dcrouter: 9), so
the *gain* of a strong tier over a weak tier on a prompt can be estimated from all of them at once:

- judge tables (alpaca_eval): ``gain = 1 - mean over weak-tier models of P(model beats GPT-4-Turbo)``, i.e. the
  probability that GPT-4-Turbo beats a typical weak-tier model on that prompt;
- correctness tables: ``gain = 0.5 + 0.5 * (mean strong-tier correctness - mean weak-tier correctness)``, i.e.
  P(strong beats weak) with a tie (both right or both wrong) counted as a half, the paper's label mapping.

Tiers are chosen per table by each model's mean score on the table (documented constants below), never by looking
at an evaluation benchmark. `dev_benchmarks()` builds the development benchmarks the routing protocol ranks routers
on, including `alpaca_chat`: all 805 alpaca_eval instructions, GPT-4-Turbo against the pooled weak tier, with
five instruction-level folds for cross-validation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from routing_core.data import shared
from routing_core.data.aliases import canonical_model
from routing_core.data.loaders import parse_score, read_csv
from routing_core.data.records import Benchmark, BenchmarkItem, ScoredPrompt

N_FOLDS = 5
ALPACA_REFERENCE = canonical_model("gpt4_1106_preview")
# alpaca_eval weak tier: models that beat GPT-4-Turbo in 5%-35% of instructions on average (Mixtral-8x7B is at
# 14%-23% depending on the annotator); weaker ones lose nearly everywhere and carry no per-prompt signal.
ALPACA_WEAK_BAND = (0.05, 0.35)
# Correctness tables: the strong tier is the top fifth of models by mean correctness, the weak tier the models
# ranked between the 40th and 80th percentile from the top (a Mixtral-like middle).
STRONG_TOP = 0.2
WEAK_BAND = (0.4, 0.8)


def fold_of(item_id: str, salt: str = "alpaca") -> int:
    """The instruction-level fold (0..4); fold 0 is exactly `shared.is_heldout_id`'s held-out split."""
    return int(hashlib.sha1(f"{salt}:{item_id}".encode()).hexdigest(), 16) % N_FOLDS


@dataclass
class ScoreTable:
    """Prompts x models scores (NaN where a model was not scored) and the per-prompt strong-over-weak gain."""

    name: str
    kind: str  # "judge" (scores = P(model beats the reference)) or "correctness" (higher is better)
    prompts: list[str]
    ids: list[str]
    models: list[str]
    scores: np.ndarray
    strong_models: list[str] = field(default_factory=list)
    weak_models: list[str] = field(default_factory=list)

    def column_means(self) -> np.ndarray:
        return np.nanmean(self.scores, axis=0)

    def gain(self) -> np.ndarray:
        """P(strong tier beats weak tier) per prompt, in [0, 1] (see the module docstring)."""
        w = [self.models.index(m) for m in self.weak_models]
        weak = _row_nanmean(self.scores[:, w])
        if self.kind == "judge":
            return np.clip(1.0 - weak, 0.0, 1.0)
        s = [self.models.index(m) for m in self.strong_models]
        strong = _row_nanmean(self.scores[:, s])
        return np.clip(0.5 + 0.5 * (strong - weak), 0.0, 1.0)

    def subset(self, keep: np.ndarray) -> ScoreTable:
        idx = np.flatnonzero(keep)
        return ScoreTable(
            self.name,
            self.kind,
            [self.prompts[i] for i in idx],
            [self.ids[i] for i in idx],
            self.models,
            self.scores[idx],
            self.strong_models,
            self.weak_models,
        )


def _row_nanmean(a: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(a), axis=1)
    sums = np.nansum(a, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.5)


def table_from_scored(name: str, scored: Sequence[ScoredPrompt], min_models: int = 2) -> ScoreTable:
    """A correctness table from scored prompts, with tiers by mean correctness (rows with too few models dropped)."""
    models = sorted({m for sp in scored for m in sp.scores})
    col = {m: j for j, m in enumerate(models)}
    rows = [sp for sp in scored if len(sp.scores) >= min_models]
    mat = np.full((len(rows), len(models)), np.nan)
    for i, sp in enumerate(rows):
        for m, v in sp.scores.items():
            mat[i, col[m]] = v
    table = ScoreTable(name, "correctness", [sp.prompt for sp in rows], [sp.id for sp in rows], models, mat)
    table.strong_models, table.weak_models = correctness_tiers(table)
    return table


def correctness_tiers(table: ScoreTable) -> tuple[list[str], list[str]]:
    """Top fifth by mean correctness vs the 40-80% band; with two models, the better one vs the other."""
    means = table.column_means()
    order = [table.models[j] for j in np.argsort(-means, kind="stable")]
    n = len(order)
    if n == 2:
        return order[:1], order[1:]
    n_strong = max(1, round(STRONG_TOP * n))
    lo, hi = max(n_strong, int(WEAK_BAND[0] * n)), max(n_strong + 1, int(round(WEAK_BAND[1] * n)))
    return order[:n_strong], order[lo:hi]


def alpaca_table() -> ScoreTable:
    """alpaca_eval: P(model beats GPT-4-Turbo) per instruction and model, averaged over the annotators present."""
    root = shared.require_shared() / "alpaca_eval"
    _, inst = read_csv(root / "instructions.csv", ["instruction_id", "instruction"])
    _, rows = read_csv(
        root / "preferences_vs_gpt4_1106_preview.csv",
        ["instruction_id", "generator_1", "generator_2", "preference"],
    )
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    prefs = root / "preferences_vs_gpt4_1106_preview.csv"
    for i, r in enumerate(rows, 2):
        if r["preference"].strip() and canonical_model(r["generator_1"]) == ALPACA_REFERENCE:
            pref = parse_score(r["preference"], prefs, f"row {i}, column 'preference'")
            acc[(r["instruction_id"], canonical_model(r["generator_2"]))].append(pref - 1.0)
    ids = [r["instruction_id"] for r in inst]
    models = sorted({m for _, m in acc})
    row, col = {i: k for k, i in enumerate(ids)}, {m: j for j, m in enumerate(models)}
    mat = np.full((len(ids), len(models)), np.nan)
    for (iid, m), vals in acc.items():
        if iid in row:
            mat[row[iid], col[m]] = float(np.clip(np.mean(vals), 0.0, 1.0))
    table = ScoreTable("alpaca_eval", "judge", [r["instruction"] for r in inst], ids, models, mat)
    means = table.column_means()
    table.strong_models = [ALPACA_REFERENCE]
    table.weak_models = [
        m for m, v in zip(models, means, strict=True) if ALPACA_WEAK_BAND[0] <= v <= ALPACA_WEAK_BAND[1]
    ]
    return table


def training_tables(alpaca_folds: Sequence[int] = (1, 2, 3, 4)) -> list[ScoreTable]:
    """Every source's training split as a pooled table; alpaca_eval restricted to the given folds."""
    alp = alpaca_table()
    folds = np.array([fold_of(i) for i in alp.ids])
    return [
        alp.subset(np.isin(folds, list(alpaca_folds))),
        table_from_scored("mmlu", shared.mmlu_scored("train")),
        table_from_scored("routerbench", shared.routerbench_scored("train")),
        table_from_scored("zeroeval", shared.zeroeval_scored("train")),
        table_from_scored("dcrouter", shared.dcrouter_scored("train")),
    ]


def pooled_benchmark(table: ScoreTable, name: str) -> Benchmark:
    """A table as a two-model benchmark: strong = the gain, weak = 1 - gain (soft P(strong beats weak))."""
    gain = table.gain()
    items = [
        BenchmarkItem(p, float(g), float(1.0 - g), i)
        for p, g, i in zip(table.prompts, gain, table.ids, strict=True)
    ]
    return Benchmark(name, items, "strong tier", "weak tier")


def alpaca_chat_benchmark() -> Benchmark:
    """All 805 alpaca_eval instructions: GPT-4-Turbo vs the pooled weak tier (ids carry the CV fold)."""
    return pooled_benchmark(alpaca_table(), "alpaca_chat")


def alpaca_mixtral_benchmark() -> Benchmark:
    """All 805 alpaca_eval instructions, GPT-4-Turbo vs Mixtral-8x7B only (soft verdicts, annotators averaged)."""
    t = alpaca_table()
    j = t.models.index(canonical_model("Mixtral-8x7B-Instruct-v0.1"))
    items = [
        BenchmarkItem(p, float(1.0 - v), float(v), i)
        for p, v, i in zip(t.prompts, t.scores[:, j], t.ids, strict=True)
        if not np.isnan(v)
    ]
    return Benchmark("alpaca_mixtral", items, shared.ROUTERBENCH_STRONG, shared.ROUTERBENCH_WEAK)


def dev_benchmarks() -> list[Benchmark]:
    """The development benchmarks of the routing protocol (docs/results.md): chat, knowledge, math, code, reasoning."""
    return [
        alpaca_chat_benchmark(),
        alpaca_mixtral_benchmark(),
        shared.mmlu_benchmark("test"),
        shared.gsm8k_benchmark(),
        shared.routerbench_benchmark(),
        pooled_benchmark(table_from_scored("zeroeval", shared.zeroeval_scored("test")), "zeroeval_test"),
        pooled_benchmark(table_from_scored("dcrouter", shared.dcrouter_scored("test")), "dcrouter_test"),
    ]
