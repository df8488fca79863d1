"""Pooled-difficulty router: how much a prompt needs a strong model, learned from every model judged on it.

A GPT-4-vs-Mixtral verdict on one prompt is one noisy bit; the shared data grade or judge 9-60 models on the same
prompts. `routing_core.data.pooled` turns each table into a per-prompt *gain* (the probability that a strong-tier
model beats a weak-tier one there, split-half reliability 0.91 on alpaca_eval); this router regresses that gain
on the prompt embedding plus the prompt-size features (the length baseline as a feature), by weighted ridge
regression with one intercept per source (so a source's base rate, e.g. a judge's taste for GPT-4-Turbo, is not
mistaken for prompt difficulty) and each source weighted equally. The score is then Platt-calibrated on
strong-vs-weak validation pairs like every trained router, so win rates are probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from routing_core.embedders import Embedder
from routing_core.router import TrainsOn
from routing_core.routers._base import LinearHeadRouter, features


class DifficultyRouter(LinearHeadRouter):
    """Ridge regression of the pooled strong-over-weak gain on [embedding, size features]; Platt-calibrated."""

    name = "difficulty"
    trains_on: ClassVar[TrainsOn] = "tables"

    def __init__(self, l2: float = 1.0, embedder: str | Embedder | None = None) -> None:
        super().__init__(embedder)
        if not np.isfinite(l2) or l2 < 0:
            raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
        self.l2 = float(l2)
        self.coef: np.ndarray | None = None

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        z = self.linear_scores(prompts, embeddings)
        return 1 / (1 + np.exp(-np.clip(4.0 * z, -30, 30)))

    def fit(
        self,
        embeddings: Sequence[np.ndarray],
        prompts: Sequence[Sequence[str]],
        gains: Sequence[np.ndarray],
        source_weights: Sequence[float] | None = None,
    ) -> DifficultyRouter:
        """Fit on one (embeddings, prompts, gains) triple per source; each source centred on its own mean and
        weighted by `source_weights` (equal by default) regardless of its size."""
        if not (len(embeddings) == len(prompts) == len(gains)) or not gains:
            raise ValueError(
                "fit needs one embeddings, prompts and gains entry per source, at least one source"
            )
        weights = list(source_weights) if source_weights is not None else [1.0] * len(gains)
        Xs, ys, ws = [], [], []
        for e, p, g, sw in zip(embeddings, prompts, gains, weights, strict=True):
            g = np.asarray(g, dtype=np.float64)
            if len(g) == 0 or sw <= 0:
                continue
            if not np.isfinite(g).all():
                raise ValueError("gains must be finite")
            Xs.append(features(list(p), np.asarray(e)).astype(np.float64))
            ys.append(g - g.mean())
            ws.append(np.full(len(g), sw / len(g)))
        if not Xs:
            raise ValueError("no source with rows and a positive weight")
        X, y, w = np.vstack(Xs), np.concatenate(ys), np.concatenate(ws)
        w = w / w.mean()
        Xb = np.hstack([X, np.ones((len(X), 1))])
        A = (Xb * w[:, None]).T @ Xb + self.l2 * np.eye(Xb.shape[1])
        A[-1, -1] -= self.l2  # the intercept is not shrunk
        self.coef = np.linalg.solve(A, (Xb * w[:, None]).T @ y)
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> DifficultyRouter:
        """Fit from pooled score tables (`routing_core.data.pooled.training_tables()` by default; pass
        `tables=` to use others and `source_weights={name: w}` to weigh them)."""
        from routing_core.data import pooled

        tables = opts.get("tables") or pooled.training_tables()
        sw: Mapping[str, float] = opts.get("source_weights") or {}
        r = cls(**cls.params_from_config(opts))
        r.fit(
            [embed(t.prompts) for t in tables],
            [t.prompts for t in tables],
            [t.gain() for t in tables],
            [float(sw.get(t.name, 1.0)) for t in tables],
        )
        r.training_info["tables"] = {t.name: len(t.prompts) for t in tables}
        return r
