"""k-nearest-neighbour quality: each model's mean score over the k training prompts closest to the prompt.

The multi-model baseline of RouterBench-style studies (issue 13 measured it at k=20 on routerbench): cosine
neighbours among all training prompts, each model's scores averaged over the neighbours where it was scored and
shrunk towards its overall mean by `prior_weight` pseudo-rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from routing_core.embedders import Embedder
from routing_core.routers._quality import QualityRouter, fit_cost_lines, union_models


class KNNQualityRouter(QualityRouter):
    """Mean score of each model over the k nearest training prompts (cosine), shrunk to its prior."""

    name = "quality_knn"

    def __init__(
        self,
        k: int = 20,
        prior_weight: float = 1.0,
        strong_model: str | None = None,
        weak_model: str | None = None,
        embedder: str | Embedder | None = None,
    ) -> None:
        super().__init__(strong_model, weak_model, embedder)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        if (
            isinstance(prior_weight, bool)
            or not isinstance(prior_weight, int | float)
            or not np.isfinite(prior_weight)
            or prior_weight < 0
        ):
            raise ValueError(f"prior_weight must be a finite number >= 0, got {prior_weight!r}")
        self.k = k
        self.prior_weight = float(prior_weight)
        self.keys: np.ndarray | None = None  # (N, D) unit vectors, fp16
        self.scores: np.ndarray | None = None  # (N, n_models), NaN where unscored

    def _quality(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        assert self.scores is not None and embeddings is not None
        keys = self.float32_keys()
        q = np.asarray(embeddings, dtype=np.float32)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        k = min(self.k, len(keys))
        sims = q @ keys.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        neigh = self.scores[idx]  # (n, k, M)
        scored = ~np.isnan(neigh)
        sums = np.where(scored, neigh, 0.0).sum(axis=1)
        counts = scored.sum(axis=1)
        prior = np.nanmean(self.scores, axis=0)
        blended = (sums + self.prior_weight * prior) / np.maximum(counts + self.prior_weight, 1e-12)
        return np.where(counts == 0, prior, blended)  # no scored neighbour: the model's prior

    def fit(self, tables: Sequence[Any], embeddings: Sequence[np.ndarray]) -> KNNQualityRouter:
        """Store every table's prompt embeddings and scores (columns: the union of the tables' models)."""
        if not tables or len(tables) != len(embeddings):
            raise ValueError("fit needs at least one table and one embeddings entry per table")
        models = union_models(tables)
        if len(models) < 2:
            raise ValueError("the training tables score fewer than two models")
        rows = []
        for t in tables:
            block = np.full((len(t), len(models)), np.nan)
            for j, m in enumerate(t.models):
                if m in models:
                    block[:, models.index(m)] = t.quality[:, j]
            rows.append(block)
        keys = np.vstack([np.asarray(e, dtype=np.float32) for e in embeddings])
        keys /= np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
        self.keys = keys.astype(np.float16)
        self.scores = np.vstack(rows)
        self.models = models
        self.cost_lines = fit_cost_lines(tables, models)
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> KNNQualityRouter:
        """Fit on `tables=` (default: `routing_core.data.multi.multi_training_tables()`)."""
        from routing_core.data.multi import multi_training_tables

        tables = opts.get("tables") or multi_training_tables()
        r = cls(**cls.params_from_config(opts))
        r.fit(tables, [embed(t.prompts) for t in tables])
        r.training_info["tables"] = {t.name: len(t) for t in tables}
        return r

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self.check_fitted()
        assert self.keys is not None and self.scores is not None
        params, tensors = self.quality_state()
        scores = np.where(np.isnan(self.scores), -1.0, self.scores).astype(np.float32)  # -1: not scored
        return params, {"keys": self.keys, "scores": scores, **tensors}

    def _restore_tensors(self, tensors: Mapping[str, np.ndarray], folder: Any) -> None:
        from routing_core.checkpoints import require

        keys, scores = require(tensors, folder, "keys", "scores")
        self.keys = keys.astype(np.float16)
        self.scores = np.where(scores < 0, np.nan, scores.astype(np.float64))  # -1: not scored
