"""What multi-model routers share: per prompt, a predicted quality for each of N named models, and their cost.

A `QualityRouter` scores many models at once (`quality(prompts) -> (n, M)`, the probability of a correct or
winning answer per model); the two-model win rate stays the special case: with `strong_model`/`weak_model`
set, `win_rate = 0.5 + 0.5 * (q_strong - q_weak)`, P(strong beats weak) when ties count a half (the paper's
mapping of correctness labels). Models are matched by name through the alias table (`model_index`), and a
model the router does not know can be placed by a mapping ("treat `my-llama` like `llama-3.1-8b-instruct`").

The fitted state every such router has: `models`, a per-model cost line `cost ≈ a + b * input_tokens` learned
from the training tables' recorded costs (NaN where a source had none), and a reference sample of predicted
qualities and token counts on which `routing_core.cost_policy` calibrates its cost knob (like
`reference_win_rates` for two models).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from routing_core.errors import CheckpointError, UnknownModelError
from routing_core.router import TrainsOn
from routing_core.routers._base import TrainedRouter


def token_counts(prompts: Sequence[str]) -> np.ndarray:
    """Input tokens per prompt (tiktoken cl100k offline, chars/4 without it), as float64."""
    from routing_core.costs import count_tokens

    return np.array([count_tokens(p) for p in prompts], dtype=np.float64)


def fit_cost_lines(tables: Sequence[Any], models: Sequence[str]) -> np.ndarray:
    """Per model, least squares `cost ≈ a + b * tokens` over every table row with a recorded cost (NaN: none)."""
    xs: dict[str, list[np.ndarray]] = {m: [] for m in models}
    ys: dict[str, list[np.ndarray]] = {m: [] for m in models}
    for t in tables:
        if np.isnan(t.cost).all():
            continue
        tokens = token_counts(t.prompts)
        for j, m in enumerate(t.models):
            if m not in xs:
                continue
            ok = ~np.isnan(t.cost[:, j])
            if ok.any():
                xs[m].append(tokens[ok])
                ys[m].append(t.cost[ok, j])
    out = np.full((len(models), 2), np.nan)
    for i, m in enumerate(models):
        if not xs[m]:
            continue
        x, y = np.concatenate(xs[m]), np.concatenate(ys[m])
        if len(x) < 3 or np.ptp(x) == 0:
            out[i] = (float(np.mean(y)), 0.0)
            continue
        b, a = np.polyfit(x, y, 1)
        if b < 0:  # a longer prompt never costs less: fall back to the mean
            a, b = float(np.mean(y)), 0.0
        out[i] = (max(float(a), 0.0), float(b))
    return out


class QualityRouter(TrainedRouter):
    """Base of multi-model routers: `quality()` for N models; `win_rate()` for a named strong/weak pair."""

    trains_on: ClassVar[TrainsOn] = "tables"
    multi_model: ClassVar[bool] = True

    def __init__(
        self,
        strong_model: str | None = None,
        weak_model: str | None = None,
        embedder: Any = None,
    ) -> None:
        super().__init__(embedder)
        self.strong_model = strong_model
        self.weak_model = weak_model
        self.models: list[str] = []
        self.cost_lines: np.ndarray | None = None
        self.reference_quality: np.ndarray | None = None
        self.reference_tokens: np.ndarray | None = None

    # --- what subclasses provide --------------------------------------------------------------------------

    def _quality(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """Predicted quality, (n, len(self.models)), for validated prompts."""
        raise NotImplementedError

    def needs_embeddings(self) -> bool:
        """Whether `_quality` reads embeddings (a length-only head does not)."""
        return True

    # --- the multi-model contract -------------------------------------------------------------------------

    def quality(self, prompts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Predicted quality in [0, 1] per prompt and known model (columns in `self.models` order)."""
        from routing_core.validation import check_prompts

        self.check_fitted()
        items = check_prompts(prompts)
        if not items:
            return np.zeros((0, len(self.models)))
        if embeddings is None and self.needs_embeddings():
            embeddings = self.embed(items)
        if embeddings is not None and self.needs_embeddings() and len(embeddings) != len(items):
            raise ValueError(f"{len(embeddings)} embeddings for {len(items)} prompts")
        q = np.asarray(self._quality(items, embeddings), dtype=np.float64)
        if q.shape != (len(items), len(self.models)):
            raise RuntimeError(f"{type(self).__name__} returned qualities of shape {q.shape}")
        if np.isnan(q).any():
            raise RuntimeError(f"{type(self).__name__} returned NaN qualities")
        return np.clip(q, 0.0, 1.0)

    def model_index(self, name: str, mapping: Mapping[str, str] | None = None) -> int:
        """Column of `name` in `quality()`: the name itself, its alias-table spelling, or what `mapping` says
        it should be treated as; otherwise an `UnknownModelError` naming the known models."""
        from routing_core.data.aliases import canonical_model

        target = (mapping or {}).get(name, name)
        if target.endswith("-latest") and target not in self.models:
            target = target[: -len("-latest")]  # an API alias: resolved like the undated name
        for cand in (target, canonical_model(target)):
            if cand in self.models:
                return self.models.index(cand)
        dated = self._dated_versions(canonical_model(target))
        if dated:
            return self.models.index(dated[-1])  # the latest dated snapshot of an undated name
        how = f" (mapped from {name!r})" if target != name else ""
        raise UnknownModelError(
            f"model {target!r}{how} is not one this router knows; known models: {', '.join(self.models)}. "
            "Pass a mapping, e.g. model_map={'my-model': '<a known model>'}, to treat it like one of them"
        )

    def _dated_versions(self, name: str) -> list[str]:
        """Known models that are `name` plus a date or `-latest` suffix (`gpt-4o` -> `gpt-4o-2024-08-06`), sorted."""
        import re

        suffix = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")
        base = name.rsplit("/", 1)[-1]
        out = []
        for m in self.models:
            short = m.rsplit("/", 1)[-1]
            hit = suffix.search(short)
            if hit and short[: hit.start()] == base:
                out.append(m)
        # full dates (2024-08-06, 20240620) sort by date; a 4-digit MMDD suffix has no year and sorts after none
        return sorted(out, key=lambda m: (len(suffix.search(m.rsplit("/", 1)[-1]).group(1)) > 4, m))  # type: ignore[union-attr]

    def learned_cost(self, index: int, tokens: np.ndarray) -> np.ndarray | None:
        """USD per call for known model `index` from the training costs (None when no source priced it)."""
        if self.cost_lines is None or np.isnan(self.cost_lines[index]).any():
            return None
        a, b = self.cost_lines[index]
        return a + b * np.asarray(tokens, dtype=np.float64)

    # --- the two-model special case -----------------------------------------------------------------------

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if not self.strong_model or not self.weak_model:
            raise ValueError(
                f"{type(self).__name__} scores {len(self.models)} models; a two-model win rate needs "
                "strong_model= and weak_model= (load_router(..., strong_model=..., weak_model=...)), "
                "or use routing_core.cost_policy.CostAwarePolicy for N models"
            )
        s, w = self.model_index(self.strong_model), self.model_index(self.weak_model)
        if s == w:
            raise ValueError(
                f"strong_model {self.strong_model!r} and weak_model {self.weak_model!r} are the same model "
                f"({self.models[s]!r}) for this router"
            )
        q = self.quality(prompts, embeddings)
        return 0.5 + 0.5 * (q[:, s] - q[:, w])

    # --- shared fitted state ------------------------------------------------------------------------------

    def set_quality_reference(self, prompts: Sequence[str], embeddings: np.ndarray | None = None) -> None:
        """Store predicted qualities and token counts on a reference sample (the cost knob's calibration)."""
        self.reference_quality = self.quality(prompts, embeddings).astype(np.float32)
        self.reference_tokens = token_counts(prompts).astype(np.float32)
        self._fingerprint = None

    def quality_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        tensors: dict[str, np.ndarray] = {}
        if self.cost_lines is not None:  # stored finite: -1 marks a model without a learned cost
            tensors["cost_lines"] = np.where(np.isnan(self.cost_lines), -1.0, self.cost_lines).astype(
                np.float64
            )
        if self.reference_quality is not None and self.reference_tokens is not None:
            tensors["reference_quality"] = self.reference_quality.astype(np.float32)
            tensors["reference_tokens"] = self.reference_tokens.astype(np.float32)
        return {"models": list(self.models)}, tensors

    def _restore_tensors(self, tensors: Mapping[str, np.ndarray], folder: Any) -> None:
        """Set the router's own fitted tensors from a checkpoint (subclasses)."""
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Any, config: dict[str, Any], embedder: Any = None, **overrides: Any) -> Any:
        """Rebuild from a checkpoint folder: hyperparameters from the config (the caller's overrides, e.g.
        `strong_model=`, winning), the router's tensors, the shared quality state and the common fields."""
        from routing_core.checkpoints import load_tensors, validate_config
        from routing_core.routers._base import embedder_for

        config = validate_config(folder, config, cls.name)
        r = cls(**cls.params_from_config({**config, **overrides}, embedder=embedder_for(config, embedder)))
        tensors = load_tensors(folder)
        r._restore_tensors(tensors, folder)
        r.restore_quality(config, tensors, folder)
        r.restore_common(config, folder)
        pair = ("strong_model", "weak_model")
        if any(overrides.get(k) not in (None, config.get(k)) for k in pair):
            r.calibrator = None  # both were fitted for the stored pair: redo the reference for the new one
            r.reference_win_rates = None
            if r.reference_quality is not None and r.strong_model and r.weak_model:
                from routing_core.calibration import reference_quantiles

                rq = np.asarray(r.reference_quality, dtype=np.float64)
                s, w = r.model_index(r.strong_model), r.model_index(r.weak_model)
                r.reference_win_rates = reference_quantiles(0.5 + 0.5 * (rq[:, s] - rq[:, w]), 201)
        return r

    def restore_quality(self, config: dict[str, Any], tensors: Mapping[str, np.ndarray], folder: Any) -> None:
        models = config.get("models")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models) or len(models) < 2:
            raise CheckpointError(f"{folder}: 'models' must list at least two model names")
        self.models = list(models)
        lines = tensors.get("cost_lines")
        self.cost_lines = None if lines is None else np.where(lines < 0, np.nan, lines.astype(np.float64))
        rq, rt = tensors.get("reference_quality"), tensors.get("reference_tokens")
        if (rq is None) != (rt is None):
            raise CheckpointError(f"{folder}: reference_quality and reference_tokens come together")
        if rq is not None and rt is not None and (rq.shape[1] != len(models) or rq.shape[0] != rt.shape[0]):
            raise CheckpointError(f"{folder}: reference tensors do not match {len(models)} models")
        if self.cost_lines is not None and self.cost_lines.shape != (len(models), 2):
            raise CheckpointError(f"{folder}: cost_lines must have shape [{len(models)}, 2]")
        self.reference_quality, self.reference_tokens = rq, rt


def union_models(tables: Sequence[Any]) -> list[str]:
    """Every model scored in any table, sorted."""
    return sorted({m for t in tables for j, m in enumerate(t.models) if not np.isnan(t.quality[:, j]).all()})


__all__ = ["QualityRouter", "fit_cost_lines", "token_counts", "union_models"]
