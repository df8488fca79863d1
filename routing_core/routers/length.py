"""Prompt-length baseline: longer prompts get higher strong-win rates (a monotone map of log length)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from routing_core.calibration import fit_logistic
from routing_core.checkpoints import validate_config
from routing_core.routers._base import TrainedRouter


def log_length(prompts: list[str]) -> np.ndarray:
    return np.log1p(np.array([len(p) for p in prompts], dtype=np.float64))


class LengthRouter(TrainedRouter):
    """win_rate = sigmoid(a * log(1 + chars) + b). Only the order matters for APGR/CPT; `fit` sets a and b
    by logistic regression on strong-vs-weak labels so the win rates are probabilities. Works unfitted too."""

    name = "length"
    needs_training = False
    uses_embeddings = False
    trains_on = "pairs"

    def __init__(self, a: float = 1.0, b: float = -5.0) -> None:
        super().__init__(embedder=None)
        self.a, self.b = float(a), float(b)
        self._fitted = True  # the defaults are a usable baseline

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.a * log_length(prompts) + self.b)))

    def fit(self, prompts: list[str], targets: np.ndarray) -> LengthRouter:
        a, b = fit_logistic(log_length(prompts)[:, None], np.asarray(targets, dtype=np.float64), l2=1e-3)
        self.a, self.b = float(a), float(b)
        if self.a <= 0:  # keep the baseline what it claims to be: longer is never less likely strong
            self.a = 1e-3
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any = None, **_: Any) -> LengthRouter:
        """Build and fit this router from a TrainingData (see routing_core.training)."""
        from routing_core.routers._base import split_pairs

        tr, _va = split_pairs(data.pairs)
        return cls().fit([x.prompt for x in tr], np.array([x.target for x in tr]))

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """No fitted state beyond the parameters a and b."""
        return {}, {}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], **kwargs: Any) -> LengthRouter:
        """Rebuild from a checkpoint config (a and b)."""
        config = validate_config(folder, config, cls.name)
        r = cls(**cls.params_from_config(config))
        r.restore_common(config, folder)
        return r
