"""Training sets from any mix of loaders: battles for multi-model routers, strong-vs-weak examples for classifiers.

A data spec names one source: `shared:mmlu`, `shared:routerbench`, `shared:zeroeval`, `shared:dcrouter`,
`shared:alpaca` (the ../shared/data sets with their training splits), or a file: `battles:PATH` (Arena CSV or
JSONL battles), `long:PATH` (prompt, model, correct), `wide:PATH` (prompt + one score column per model),
`judge:PREFERENCES.csv,INSTRUCTIONS.csv` (alpaca_eval verdicts). Score tables become battles by the paper's
golden-label augmentation (right beats wrong, equal is a tie). Everything is seeded and reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.data.aliases import STRONG_TIER, WEAK_TIER, canonical_model
from routing_core.data.loaders import (
    battles_from_scores,
    load_battles,
    load_correctness_long,
    load_correctness_wide,
    load_judge_verdicts,
)
from routing_core.data.records import Battle, ScoredPrompt
from routing_core.embedders import Embedder
from routing_core.errors import DataError

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


def tier_of(model: str, strong: re.Pattern[str] = STRONG_TIER, weak: re.Pattern[str] = WEAK_TIER) -> str | None:
    """"strong", "weak" or None for a canonical model name under the given tier patterns."""
    if strong.match(model):
        return "strong"
    if weak.match(model):
        return "weak"
    return None


def pair_examples(battles: Iterable[Battle], strong: re.Pattern[str] = STRONG_TIER, weak: re.Pattern[str] = WEAK_TIER) -> list[PairExample]:
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


def _sample_pairs(sp: ScoredPrompt, k: int, rng: random.Random) -> list[tuple[str, str]]:
    models = sorted(sp.scores)
    strong = [m for m in models if tier_of(m) == "strong"]
    weak = [m for m in models if tier_of(m) == "weak"]
    keep = [(s, w) for s in strong for w in weak]
    others = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :] if (a, b) not in keep and (b, a) not in keep]
    rng.shuffle(others)
    return keep + others[:k]


def scored_to_battles(scored: Sequence[ScoredPrompt], pairs_per_prompt: int, seed: int) -> list[Battle]:
    """Golden-label battles: every strong/weak-tier pair plus `pairs_per_prompt` random other pairs per prompt."""
    rng = random.Random(seed)
    out: list[Battle] = []
    for sp in scored:
        out.extend(battles_from_scores([sp], _sample_pairs(sp, pairs_per_prompt, rng)))
    return out


def load_spec(spec: str, pairs_per_prompt: int = 8, seed: int = 0) -> list[Battle]:
    """Battles from one data spec (see the module docstring). `SPEC@F` keeps a seeded share F of its prompts."""
    base, at, frac = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if at:
        try:
            share = float(frac)
        except ValueError:
            raise DataError(spec, f"share after '@' must be a number in (0, 1], got {frac!r}") from None
        if not 0 < share <= 1:
            raise DataError(spec, f"share after '@' must be in (0, 1], got {share}")
        keep = lambda p: int(hashlib.sha1(f"{seed}:{p}".encode()).hexdigest()[:8], 16) % 10_000 < share * 10_000  # noqa: E731
        return [b for b in load_spec(base, pairs_per_prompt, seed) if keep(b.prompt)]
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
        return scored_to_battles(getters[arg](), pairs_per_prompt, seed)
    if kind == "battles":
        return load_battles(arg)
    if kind in ("long", "wide"):
        loader = load_correctness_long if kind == "long" else load_correctness_wide
        return scored_to_battles(loader(arg), pairs_per_prompt, seed)
    if kind == "judge":
        prefs, _, inst = arg.partition(",")
        if not inst:
            raise DataError(spec, "judge spec needs PREFERENCES.csv,INSTRUCTIONS.csv")
        return load_judge_verdicts(prefs, inst, annotator=None)
    raise DataError(spec, f"unknown data kind {kind!r}; expected shared, battles, long, wide or judge")


def build_training_data(specs: Sequence[str] = DEFAULT_DATA, pairs_per_prompt: int = 8, seed: int = 0) -> TrainingData:
    """Concatenate the battles of every spec; model spellings are unified by the alias table."""
    battles: list[Battle] = []
    sources: dict[str, int] = {}
    for spec in specs:
        got = [
            Battle(b.prompt, canonical_model(b.model_a), canonical_model(b.model_b), b.winner, b.source or spec, b.id)
            for b in load_spec(spec, pairs_per_prompt, seed)
        ]
        sources[spec] = len(got)
        battles.extend(got)
    if not battles:
        raise DataError(", ".join(specs), "no usable battles in the training data")
    return TrainingData(battles, pair_examples(battles), sources)


def is_validation(prompt: str, fraction: float = 0.1) -> bool:
    """A stable validation split by prompt text (so one prompt's battles never straddle the split)."""
    return int(hashlib.sha1(prompt.encode()).hexdigest()[:8], 16) % 1000 < fraction * 1000


# --- embeddings with an on-disk cache (training and evaluation scripts only) ---------------------------------


def embed_cached(embedder: Embedder, texts: Sequence[str], cache_dir: str | Path | None = ".cache/embeddings") -> np.ndarray:
    """Embed texts, reusing vectors saved under `cache_dir` (keyed by embedder name and text hash)."""
    texts = list(texts)
    if cache_dir is None:
        return embedder.embed(texts)
    root = Path(cache_dir) / re.sub(r"[^A-Za-z0-9_.-]", "_", embedder.name)
    root.mkdir(parents=True, exist_ok=True)
    keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
    store_path = root / "store.npz"
    store: dict[str, np.ndarray] = {}
    if store_path.exists():
        with np.load(store_path) as z:
            store = {"keys": z["keys"], "vecs": z["vecs"]}
    known = {k: i for i, k in enumerate(store.get("keys", np.array([], dtype="<U40")).tolist())}
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    vecs = store.get("vecs", np.zeros((0, embedder.dim), dtype=np.float16))
    if missing:
        from tqdm.auto import tqdm

        new = []
        chunk = 512
        for i in tqdm(range(0, len(missing), chunk), desc=f"embedding ({embedder.name})", disable=len(missing) <= chunk):
            new.append(embedder.embed([t for _, t in missing[i : i + chunk]]))
            part = np.concatenate(new)
            all_keys = list(known) + [k for k, _ in missing[: part.shape[0]]]
            np.savez(store_path, keys=np.array(all_keys), vecs=np.concatenate([vecs, part.astype(np.float32)]))
        vecs = np.concatenate([vecs, np.concatenate(new).astype(np.float32)])
        known.update({k: len(known) + j for j, (k, _) in enumerate(missing)})
    return np.asarray(vecs[[known[k] for k in keys]], dtype=np.float32)


# --- train -> calibrate -> reference -> checkpoint ------------------------------------------------------------

LICENSES = {
    "shared:mmlu": "RouteLLM MMLU responses (lm-sys/RouteLLM), Apache-2.0",
    "shared:routerbench": "RouterBench 0-shot via RouterDC (research use; no license stated)",
    "shared:zeroeval": "ZeroEval correctness labels (yuchenlin/ZeroEval), Apache-2.0 (items MIT)",
    "shared:dcrouter": "LLMRouter DC-Router data (ulab-uiuc/LLMRouter), MIT",
    "shared:alpaca": "alpaca_eval judge verdicts (tatsu-lab/alpaca_eval), data CC BY-NC 4.0",
}


def reference_prompts() -> tuple[list[str], str]:
    """The calibration sample: Arena-Hard prompts when ../shared/data is present."""
    from routing_core.data.shared import arena_hard_prompts, shared_data_dir

    if shared_data_dir() is None:
        return [], "none"
    return arena_hard_prompts(), "arena_hard_v0.1 (500 Chatbot Arena prompts)"


def train_router(
    name: str,
    data: TrainingData,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    calibrate: bool = True,
    reference: Sequence[str] | None = None,
    reference_name: str = "training prompts",
    **opts: Any,
) -> Any:
    """Fit router `name` on `data`, Platt-calibrate it on the validation pairs, and set reference win rates."""
    from routing_core.registry import get_router_class
    from routing_core.routers._base import split_pairs

    cls = get_router_class(name)
    if not hasattr(cls, "train"):
        raise ValueError(f"router {name!r} cannot be trained")
    if embed is None:
        from routing_core.embedders import resolve_embedder

        embedder = resolve_embedder(opts.get("embedder"))
        embed = embedder.embed
    if not data.pairs and name not in ("mf", "sw_ranking"):
        raise DataError("training data", "no strong-tier vs weak-tier battles: classifiers have nothing to learn from")
    router = cls.train(data, embed, **opts)
    _, val = split_pairs(data.pairs)
    uses_emb = getattr(router, "uses_embeddings", True)
    if calibrate and val and hasattr(router, "fit_calibration"):
        vp = [x.prompt for x in val]
        router.fit_calibration(vp, np.array([x.target for x in val]), embed(vp) if uses_emb else None)
    ref = list(reference) if reference else sorted({x.prompt for x in data.pairs})[:2000]
    if ref and hasattr(router, "set_reference"):
        router.set_reference(router.win_rate_from_embeddings(ref, embed(ref) if uses_emb else None))
    router.training_info.update(
        {"data": dict(data.sources), "pairs": len(data.pairs), "validation_pairs": len(val), "reference": reference_name}
    )
    return router


def model_card(router: Any, data: TrainingData, metrics: dict[str, Any] | None = None, notes: str = "") -> str:
    """A markdown model card: what the router is, data and licenses, label mapping, metrics."""
    lines = [
        f"# `{router.name}` router checkpoint",
        "",
        f"Router kind: `{router.name}` ({type(router).__doc__.strip().splitlines()[0] if type(router).__doc__ else ''})",
        f"Embedder: `{getattr(router, 'embedder_name', None)}`" if getattr(router, "uses_embeddings", True) else "Embedder: none",
        f"Strong model: `{getattr(router, 'strong_model', 'GPT-4 class')}`; weak model: `{getattr(router, 'weak_model', 'Mixtral class')}`",
        "",
        "## Training data",
        "",
        "| source | battles | license |",
        "|---|---|---|",
    ]
    for spec, n in data.sources.items():
        lines.append(f"| `{spec}` | {n} | {LICENSES.get(spec.partition('@')[0], 'see the source')} |")
    lines += [
        "",
        f"Strong-vs-weak classifier examples: {len(data.pairs)} (battles between a strong-tier and a weak-tier model).",
        "",
        "## Label mapping",
        "",
        "- Correctness tables: per prompt and model pair, right beats wrong; both right or both wrong is a tie",
        "  (the paper's golden-label augmentation).",
        "- Judge verdicts (alpaca_eval): preference < 1.5 the first output wins, > 1.5 the second, 1.5 a tie.",
        "- Strong tier: GPT-4-Turbo class (`gpt-4-1106-preview`, `gpt-4-turbo-2024-04-09`); weak tier:",
        "  `mixtral-8x7b-instruct-v0.1`. Classifier target: P(strong wins), a tie counting 0.5.",
        "- Splits: MMLU training split only (sha1 % 10 == 0); GSM8K never; routerbench/dcrouter own train files;",
        "  alpaca_eval and zeroeval by item id (80% train); dcrouter rows that are GSM8K questions are dropped.",
        "",
        "## Calibration",
        "",
        f"Win rates are Platt-calibrated on held-out validation pairs; reference win rates for `strong_fraction` come from {router.training_info.get('reference', 'n/a')}.",
        "",
        "## Training details",
        "",
        "```json",
        json.dumps({k: v for k, v in router.training_info.items() if k != "tiers"}, indent=1, default=str)[:3000],
        "```",
    ]
    if metrics:
        lines += ["", "## Metrics", "", "```json", json.dumps(metrics, indent=1, default=float), "```"]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
