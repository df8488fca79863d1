"""k-nearest-neighbours over prompt embeddings: the mean outcome of the k most similar training prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from routing_core.checkpoints import load_tensors, require, validate_config
from routing_core.embedders import Embedder
from routing_core.routers._base import TrainedRouter, embedder_for, log_loss


class KNNRouter(TrainedRouter):
    """Win rate = similarity-weighted mean of the strong-win targets of the k nearest training prompts,
    shrunk towards the global mean by `prior_weight` pseudo-neighbours. k is chosen on validation data."""

    name = "knn"
    trains_on = "pairs"

    def __init__(
        self, k: int | None = None, prior_weight: float = 2.0, embedder: str | Embedder | None = None
    ) -> None:
        super().__init__(embedder)
        self.k = k
        self.prior_weight = float(prior_weight)
        self.keys: np.ndarray | None = None
        self.targets: np.ndarray | None = None

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        self.check_fitted()
        assert self.keys is not None and self.targets is not None and embeddings is not None
        k = min(int(self.k or 32), self.keys.shape[0])
        prior = float(self.targets.mean())
        out = np.empty(embeddings.shape[0])
        keys = self.float32_keys()
        for i in range(0, embeddings.shape[0], 1024):
            sims = embeddings[i : i + 1024].astype(np.float32) @ keys.T
            idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            s = np.take_along_axis(sims, idx, axis=1)
            w = np.maximum(s, 0.0) + 1e-3
            t = self.targets[idx]
            out[i : i + 1024] = ((w * t).sum(1) + self.prior_weight * prior) / (w.sum(1) + self.prior_weight)
        return out

    def fit(
        self,
        targets: np.ndarray,
        embeddings: np.ndarray,
        val: tuple[list[str], np.ndarray, np.ndarray] | None = None,
    ) -> KNNRouter:
        self.keys = embeddings.astype(np.float16)
        self.targets = np.asarray(targets, dtype=np.float32)
        self._mark_fitted()
        if self.k is None and val is not None:
            losses = {}
            for k in (8, 16, 32, 64, 128):
                self.k = k
                losses[k] = log_loss(self._raw_scores(val[0], val[2]), val[1])
            self.k = min(losses, key=losses.__getitem__)
        self.k = int(self.k or 32)
        self.training_info["k"] = self.k
        return self

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> KNNRouter:
        """Build and fit this router from a TrainingData (see routing_core.training)."""
        from routing_core.routers._base import split_pairs

        tr, va = split_pairs(data.pairs)
        r = cls(**cls.params_from_config(opts))
        pt, pv = [x.prompt for x in tr], [x.prompt for x in va]
        r.fit(
            np.array([x.target for x in tr]),
            embed(pt),
            (pv, np.array([x.target for x in va]), embed(pv)) if va else None,
        )
        # keep the validation examples as neighbours too once k is chosen
        all_p = pt + pv
        r.keys = embed(all_p).astype(np.float16)
        r.targets = np.array([x.target for x in tr + va], dtype=np.float32)
        r._mark_fitted()
        return r

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The neighbours: fp16 keys and their targets."""
        self.check_fitted()
        assert self.keys is not None and self.targets is not None
        return {}, {"keys": self.keys, "targets": self.targets}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], embedder: str | Embedder | None = None) -> KNNRouter:
        config = validate_config(folder, config, cls.name)
        r = cls(**cls.params_from_config(config, embedder=embedder_for(config, embedder)))
        r.keys, r.targets = require(load_tensors(folder), folder, "keys", "targets")
        r.restore_common(config, folder)
        return r
