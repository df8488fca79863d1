"""A scripted multi-model router for wrapper tests: predicted qualities chosen by keywords in the prompt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from routing_core.routers._quality import QualityRouter


class KeywordQualityRouter(QualityRouter):
    """Quality per model from the first keyword found in the prompt (`rules`), else `default`; no embedder.

    `cost_per_call` gives each model a fixed learned cost (USD per call), so the policy needs no price table.
    """

    name = "keyword_quality"
    needs_training = False

    def __init__(
        self,
        models: Sequence[str] = ("big", "mid", "small"),
        rules: Mapping[str, Sequence[float]] | None = None,
        default: Sequence[float] | None = None,
        cost_per_call: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.models = list(models)
        n = len(self.models)
        self.rules = {k: list(v) for k, v in (rules or {}).items()}
        self.default = list(default) if default is not None else [0.9 - 0.2 * i for i in range(n)]
        costs = list(cost_per_call) if cost_per_call is not None else [10.0 ** (-2 - i) for i in range(n)]
        self.cost_per_call = costs
        self.cost_lines = np.array([[c, 0.0] for c in costs], dtype=np.float64)
        self.calls: list[list[str]] = []
        self._mark_fitted()

    def needs_embeddings(self) -> bool:
        return False

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """No fitted tensors: the rules are the state (so describe() and fingerprint() work)."""
        return {}, {}

    def _quality(self, prompts: list[str], embeddings: Any) -> np.ndarray:
        self.calls.append(list(prompts))
        out = []
        for p in prompts:
            row = next((v for k, v in self.rules.items() if k in p), self.default)
            out.append(row)
        return np.asarray(out, dtype=np.float64)
