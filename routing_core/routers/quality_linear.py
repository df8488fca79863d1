"""Per-model quality heads: one L2-regularised logistic regression per model on [embedding, size features].

Each known model gets its own head, fitted on every training row where that model was scored (correctness 0/1,
graded scores and judge win probabilities as soft targets), each source weighted equally for that model so one
large table does not drown the others (`source_weighting="equal"`), or by its rows (`"rows"`: plain pooling,
the bundled `multi` router's choice). `inputs="length"` keeps only the size features: the prompt-length
baseline of the multi-model tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from routing_core.calibration import fit_logistic
from routing_core.embedders import Embedder
from routing_core.routers._base import features, length_features
from routing_core.routers._quality import QualityRouter, fit_cost_lines, union_models

INPUTS = ("embedding+length", "length")
#: The L2 strengths `l2="auto"` chooses among, per head, by 3-fold cross-validated log loss on its rows.
L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
CV_FOLDS = 3


def _log_loss(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(np.sum(w * -(y * np.log(p) + (1 - y) * np.log(1 - p))) / np.sum(w))


def cv_l2(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, folds: np.ndarray, grid: tuple[float, ...] = L2_GRID
) -> float:
    """The L2 strength of `grid` with the lowest cross-validated (weighted) log loss; folds by prompt hash."""
    losses = []
    for l2 in grid:
        total = 0.0
        for f in range(CV_FOLDS):
            tr, va = folds != f, folds == f
            if not va.any() or not tr.any():
                continue
            theta = fit_logistic(X[tr], y[tr], l2, w[tr] / w[tr].mean(), iters=30)
            z = X[va] @ theta[:-1] + theta[-1]
            total += _log_loss(1 / (1 + np.exp(-np.clip(z, -30, 30))), y[va], w[va])
        losses.append(total)
    return float(grid[int(np.argmin(losses))])


class LinearQualityRouter(QualityRouter):
    """P(model answers well | prompt) for every known model, one logistic head each (see the module doc)."""

    name = "quality_linear"

    def __init__(
        self,
        l2: float | str = "auto",
        inputs: str = "embedding+length",
        min_rows: int = 50,
        source_weighting: str = "equal",
        strong_model: str | None = None,
        weak_model: str | None = None,
        embedder: str | Embedder | None = None,
    ) -> None:
        super().__init__(strong_model, weak_model, embedder)
        if l2 != "auto" and (
            isinstance(l2, bool) or not isinstance(l2, int | float) or not np.isfinite(l2) or l2 < 0
        ):
            raise ValueError(
                f"l2 must be 'auto' (cross-validated per model) or a finite number >= 0, got {l2!r}"
            )
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(map(repr, INPUTS))}, got {inputs!r}")
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
            raise ValueError(f"min_rows must be an integer >= 1, got {min_rows!r}")
        self.l2: float | str = l2 if l2 == "auto" else float(l2)
        self.inputs = inputs
        self.min_rows = min_rows
        if source_weighting not in ("equal", "rows"):
            raise ValueError(f"source_weighting must be 'equal' or 'rows', got {source_weighting!r}")
        self.source_weighting = source_weighting
        self.coef: np.ndarray | None = None  # (n_models, n_features + 1), bias last
        self.head_l2: list[float] = []  # the L2 strength each head was fitted with

    def needs_embeddings(self) -> bool:
        return self.inputs != "length"

    def _design(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if self.inputs == "length":
            return length_features(prompts).astype(np.float64)
        assert embeddings is not None
        return features(prompts, np.asarray(embeddings)).astype(np.float64)

    def _quality(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        assert self.coef is not None
        X = self._design(prompts, embeddings)
        z = X @ self.coef[:, :-1].T + self.coef[:, -1]
        return 1 / (1 + np.exp(-np.clip(z, -30, 30)))

    def fit(self, tables: Sequence[Any], embeddings: Sequence[np.ndarray | None]) -> LinearQualityRouter:
        """Fit one head per model scored in `tables` (`routing_core.data.multi.MultiTable`s) on at least
        `min_rows` rows; `embeddings[i]` are table i's prompt embeddings (None with `inputs="length"`)."""
        if not tables or len(tables) != len(embeddings):
            raise ValueError("fit needs at least one table and one embeddings entry per table")
        designs = [self._design(list(t.prompts), e) for t, e in zip(tables, embeddings, strict=True)]
        models = [
            m
            for m in union_models(tables)
            if sum(int((~np.isnan(t.quality[:, t.models.index(m)])).sum()) for t in tables if m in t.models)
            >= self.min_rows
        ]
        if len(models) < 2:
            raise ValueError(f"fewer than two models have {self.min_rows} scored rows in the training tables")
        from routing_core.splits import hash_bucket

        coef = np.zeros((len(models), designs[0].shape[1] + 1))
        folds_of = [np.array([hash_bucket(p, CV_FOLDS, "cv") for p in t.prompts]) for t in tables]
        self.head_l2 = []
        for i, m in enumerate(models):
            Xs, ys, ws, fs = [], [], [], []
            for ti, (t, X) in enumerate(zip(tables, designs, strict=True)):
                if m not in t.models:
                    continue
                y = t.quality[:, t.models.index(m)]
                ok = ~np.isnan(y)
                if ok.any():
                    Xs.append(X[ok])
                    ys.append(np.clip(y[ok], 0.0, 1.0))
                    share = 1.0 / ok.sum() if self.source_weighting == "equal" else 1.0
                    ws.append(np.full(int(ok.sum()), share))
                    fs.append(folds_of[ti][ok])
            X, y, w = np.vstack(Xs), np.concatenate(ys), np.concatenate(ws)
            w = w / w.mean()
            l2 = cv_l2(X, y, w, np.concatenate(fs)) if self.l2 == "auto" else float(self.l2)
            self.head_l2.append(l2)
            coef[i] = fit_logistic(X, y, l2, w, iters=30)
        self.coef = coef
        self.models = models
        self.cost_lines = fit_cost_lines(tables, models)
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> LinearQualityRouter:
        """Fit on `tables=` (default: `routing_core.data.multi.multi_training_tables()`)."""
        from routing_core.data.multi import multi_training_tables

        tables = opts.get("tables") or multi_training_tables()
        r = cls(**cls.params_from_config(opts))
        embs = [embed(t.prompts) if r.needs_embeddings() else None for t in tables]
        r.fit(tables, embs)
        r.training_info["tables"] = {t.name: len(t) for t in tables}
        return r

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self.check_fitted()
        assert self.coef is not None
        params, tensors = self.quality_state()
        return {**params, "head_l2": list(self.head_l2)}, {"coef": self.coef.astype(np.float32), **tensors}

    def _restore_tensors(self, tensors: Mapping[str, np.ndarray], folder: Any) -> None:
        from routing_core.checkpoints import require

        (coef,) = require(tensors, folder, "coef")
        self.coef = coef.astype(np.float64)

    def restore_quality(self, config: dict[str, Any], tensors: Mapping[str, np.ndarray], folder: Any) -> None:
        super().restore_quality(config, tensors, folder)
        self.head_l2 = [float(x) for x in config.get("head_l2") or []]
