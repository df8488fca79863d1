"""Data specs -> training sets: battles for multi-model routers, strong-vs-weak examples for classifiers.

A data spec names one source: `shared:mmlu`, `shared:routerbench`, `shared:zeroeval`, `shared:dcrouter`,
`shared:alpaca` (the ../shared/data sets with their training splits), or a file: `battles:PATH` (Arena CSV or
JSONL battles), `long:PATH` (prompt, model, correct), `wide:PATH` (prompt + one score column per model),
`judge:PREFERENCES.csv,INSTRUCTIONS.csv` (alpaca_eval verdicts), `store:PATH` (feedback and judged battles of a
RouteStore: a SQLite file or a database URL). Score tables become battles by the paper's
golden-label augmentation (right beats wrong, equal is a tie). Everything is seeded and reproducible.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from routing_core.data.aliases import STRONG_TIER, WEAK_TIER, canonical_model
from routing_core.data.loaders import (
    battles_from_scores,
    load_battles,
    load_correctness_long,
    load_correctness_wide,
    load_judge_verdicts,
)
from routing_core.data.records import Battle, ScoredPrompt
from routing_core.errors import DataError
from routing_core.splits import in_share

SHARED_SOURCES = ("mmlu", "routerbench", "zeroeval", "dcrouter", "alpaca")
# alpaca_eval's judge verdicts are left out by default: mixing them in lowered every router's scores on the
# correctness benchmarks (see docs/results.md, "data ablation"); add `shared:alpaca` to use them.
DEFAULT_DATA = ("shared:mmlu", "shared:routerbench", "shared:zeroeval", "shared:dcrouter")
LABELS = ("strong", "tie", "weak")  # classifier label ids 0, 1, 2


@dataclass(frozen=True, slots=True)
class PairExample:
    """A prompt labelled with the strong-vs-weak outcome: target = P(strong wins) (1, 0.5 tie, 0)."""

    prompt: str
    target: float
    source: str

    @property
    def label(self) -> int:
        return 0 if self.target > 0.5 else 2 if self.target < 0.5 else 1


@dataclass
class TrainingData:
    """Battles (every model pair kept) and the strong-vs-weak examples derived from them."""

    battles: list[Battle]
    pairs: list[PairExample]
    sources: dict[str, int] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return sorted({b.model_a for b in self.battles} | {b.model_b for b in self.battles})


def tier_of(
    model: str, strong: re.Pattern[str] = STRONG_TIER, weak: re.Pattern[str] = WEAK_TIER
) -> str | None:
    """ "strong", "weak" or None for a canonical model name under the given tier patterns."""
    if strong.match(model):
        return "strong"
    if weak.match(model):
        return "weak"
    return None


def pair_examples(
    battles: Iterable[Battle], strong: re.Pattern[str] = STRONG_TIER, weak: re.Pattern[str] = WEAK_TIER
) -> list[PairExample]:
    """Strong-tier vs weak-tier battles as classifier examples (other battles are skipped)."""
    out = []
    for b in battles:
        ta, tb = tier_of(b.model_a, strong, weak), tier_of(b.model_b, strong, weak)
        if {ta, tb} != {"strong", "weak"}:
            continue
        s_model = b.model_a if ta == "strong" else b.model_b
        t = b.outcome_for(s_model)
        assert t is not None
        out.append(PairExample(b.prompt, t, b.source))
    return out


def exact_tiers(strong_model: str, weak_model: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Tier patterns matching exactly one strong and one weak model (canonical names)."""
    return (
        re.compile("^" + re.escape(canonical_model(strong_model)) + "$"),
        re.compile("^" + re.escape(canonical_model(weak_model)) + "$"),
    )


Pair = tuple[str, str]


def _sample_pairs(sp: ScoredPrompt, k: int, rng: random.Random, pair: Pair | None = None) -> list[Pair]:
    models = sorted(sp.scores)
    tiers = exact_tiers(*pair) if pair else (STRONG_TIER, WEAK_TIER)
    strong = [m for m in models if tier_of(m, *tiers) == "strong"]
    weak = [m for m in models if tier_of(m, *tiers) == "weak"]
    keep = [(s, w) for s in strong for w in weak]
    others = [
        (a, b)
        for i, a in enumerate(models)
        for b in models[i + 1 :]
        if (a, b) not in keep and (b, a) not in keep
    ]
    rng.shuffle(others)
    return keep + others[:k]


def scored_to_battles(
    scored: Sequence[ScoredPrompt], pairs_per_prompt: int, seed: int, pair: Pair | None = None
) -> list[Battle]:
    """Golden-label battles: every strong/weak-tier pair (or exactly `pair`) plus `pairs_per_prompt` random other
    pairs per prompt."""
    rng = random.Random(seed)
    out: list[Battle] = []
    for sp in scored:
        out.extend(battles_from_scores([sp], _sample_pairs(sp, pairs_per_prompt, rng, pair)))
    return out


def load_spec(spec: str, pairs_per_prompt: int = 8, seed: int = 0, pair: Pair | None = None) -> list[Battle]:
    """Battles from one data spec (see the module docstring). `SPEC@F` keeps a seeded share F of its prompts.

    `pair` (strong, weak) makes score tables keep exactly that model pair instead of the strong/weak tiers.
    """
    base, at, frac = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if at:
        try:
            share = float(frac)
        except ValueError:
            raise DataError(spec, f"share after '@' must be a number in (0, 1], got {frac!r}") from None
        if not 0 < share <= 1:
            raise DataError(spec, f"share after '@' must be in (0, 1], got {share}")
        return [
            b
            for b in load_spec(base, pairs_per_prompt, seed, pair)
            if in_share(b.prompt, share, 10_000, f"{seed}:")
        ]
    kind, _, arg = spec.partition(":")
    if not arg:
        raise DataError(spec, "data spec must look like KIND:ARG (e.g. shared:mmlu or battles:path.jsonl)")
    if kind == "shared":
        from routing_core.data import shared

        if arg == "alpaca":
            return shared.alpaca_battles("train")
        getters = {
            "mmlu": lambda: shared.mmlu_scored("train"),
            "routerbench": lambda: shared.routerbench_scored("train"),
            "zeroeval": lambda: shared.zeroeval_scored("train"),
            "dcrouter": lambda: shared.dcrouter_scored("train"),
        }
        if arg not in getters:
            raise DataError(spec, f"unknown shared data set; expected one of {', '.join(SHARED_SOURCES)}")
        return scored_to_battles(getters[arg](), pairs_per_prompt, seed, pair)
    if kind == "battles":
        return load_battles(arg)
    if kind in ("long", "wide"):
        loader = load_correctness_long if kind == "long" else load_correctness_wide
        return scored_to_battles(loader(arg), pairs_per_prompt, seed, pair)
    if kind == "judge":
        prefs, _, inst = arg.partition(",")
        if not inst:
            raise DataError(spec, "judge spec needs PREFERENCES.csv,INSTRUCTIONS.csv")
        return load_judge_verdicts(prefs, inst, annotator=None)
    if kind == "store":
        from routing_core.store import battles_from_store

        return battles_from_store(arg)
    raise DataError(spec, f"unknown data kind {kind!r}; expected shared, battles, long, wide, judge or store")


def build_training_data(
    specs: Sequence[str] = DEFAULT_DATA,
    pairs_per_prompt: int = 8,
    seed: int = 0,
    strong_model: str | None = None,
    weak_model: str | None = None,
) -> TrainingData:
    """Concatenate the battles of every spec; model spellings are unified by the alias table.

    With both `strong_model` and `weak_model`, the strong-vs-weak examples are the battles between exactly those
    two models (your own pair), not the default GPT-4 / Mixtral tiers.
    """
    pair = (strong_model, weak_model) if strong_model and weak_model else None
    battles: list[Battle] = []
    sources: dict[str, int] = {}
    for spec in specs:
        got = [
            Battle(
                b.prompt,
                canonical_model(b.model_a),
                canonical_model(b.model_b),
                b.winner,
                b.source or spec,
                b.id,
            )
            for b in load_spec(spec, pairs_per_prompt, seed, pair)
        ]
        sources[spec] = len(got)
        battles.extend(got)
    if not battles:
        raise DataError(", ".join(specs), "no usable battles in the training data")
    return TrainingData(
        battles, pair_examples(battles, *exact_tiers(*pair)) if pair else pair_examples(battles), sources
    )


def is_validation(prompt: str, fraction: float = 0.1) -> bool:
    """A stable validation split by prompt text (so one prompt's battles never straddle the split)."""
    return in_share(prompt, fraction)
