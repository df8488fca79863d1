"""Logistic regression on the prompt embedding plus prompt-size features: a strong, cheap baseline.

The embedding is length-normalised, so it cannot say how long or how involved a prompt is; four standardised
size signals (log characters, log words, log lines, digit share) give the model that, which matters on
math and multiple-choice prompts where longer usually means harder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from routing_core.calibration import fit_logistic
from routing_core.embedders import Embedder
from routing_core.routers._base import LinearHeadRouter, features, log_loss


class LogisticRouter(LinearHeadRouter):
    """P(strong wins) = sigmoid(w . [embedding, size features] + b), L2 strength chosen on a validation split."""

    name = "logistic"
    trains_on = "pairs"

    def __init__(self, l2: float | None = None, embedder: str | Embedder | None = None) -> None:
        super().__init__(embedder)
        self.l2 = l2
        self.coef: np.ndarray | None = None

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        z = self.linear_scores(prompts, embeddings)
        return 1 / (1 + np.exp(-np.clip(z, -30, 30)))

    def fit(
        self,
        prompts: list[str],
        targets: np.ndarray,
        embeddings: np.ndarray,
        val: tuple[list[str], np.ndarray, np.ndarray] | None = None,
    ) -> LogisticRouter:
        X = features(prompts, embeddings)
        y = np.asarray(targets, dtype=np.float64)
        grid = [self.l2] if self.l2 is not None or val is None else [0.3, 1.0, 3.0, 10.0, 30.0]
        best = None
        for l2 in grid:
            coef = fit_logistic(X, y, float(l2 if l2 is not None else 3.0))
            self.coef = coef
            self._mark_fitted()
            loss = log_loss(self._raw_scores(val[0], val[2]), val[1]) if val is not None else 0.0
            if best is None or loss < best[0]:
                best = (loss, l2, coef)
        assert best is not None
        _, self.l2, self.coef = best
        self.training_info["l2"] = self.l2
        self._mark_fitted()  # the coefficients kept are the best grid point's
        return self

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> LogisticRouter:
        """Build and fit this router from a TrainingData (see routing_core.training)."""
        from routing_core.routers._base import split_pairs

        tr, va = split_pairs(data.pairs)
        r = cls(**cls.params_from_config(opts))
        pt, pv = [x.prompt for x in tr], [x.prompt for x in va]
        yv = np.array([x.target for x in va])
        return r.fit(pt, np.array([x.target for x in tr]), embed(pt), (pv, yv, embed(pv)) if va else None)
