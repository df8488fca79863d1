"""Similarity-weighted (SW) ranking: a Bradley-Terry fit over model tiers, re-weighted per prompt.

Models are grouped into tiers by a global Bradley-Terry (Elo) fit on all battles. For a query, each training
battle gets weight gamma^(1 + S), S its prompt's cosine similarity to the query divided by the largest one;
ties count half. The win rate is the BT probability that the strong model's tier beats the weak model's.

Fast by construction: battles are aggregated per (training prompt, tier pair) once, so a batch of queries
costs one similarity matmul, one weight matmul, and a few batched Newton steps over the tier parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.checkpoints import load_tensors, require, validate_config
from routing_core.data.aliases import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
from routing_core.embedders import Embedder
from routing_core.errors import CheckpointError
from routing_core.routers._base import TrainedRouter, embedder_for, resolve_model

DEFAULT_STRONG = DEFAULT_STRONG_MODEL  # kept for imports of the old names
DEFAULT_WEAK = DEFAULT_WEAK_MODEL


def bradley_terry(
    i: np.ndarray,
    j: np.ndarray,
    wins_i: np.ndarray,
    n: np.ndarray,
    num: int,
    l2: float = 1e-2,
    iters: int = 50,
) -> np.ndarray:
    """Global BT strengths (natural-log scale) from aggregated counts: item i beat j `wins_i` times out of n."""
    theta = np.zeros(num)
    for _ in range(iters):
        d = theta[i] - theta[j]
        p = 1 / (1 + np.exp(-d))
        r = wins_i - n * p
        g = np.zeros(num)
        np.add.at(g, i, r)
        np.add.at(g, j, -r)
        g -= l2 * theta
        h = n * p * (1 - p)
        H = np.zeros((num, num))
        np.add.at(H, (i, i), h)
        np.add.at(H, (j, j), h)
        np.add.at(H, (i, j), -h)
        np.add.at(H, (j, i), -h)
        H += l2 * np.eye(num)
        step = np.linalg.solve(H, g)
        theta += step
        if np.abs(step).max() < 1e-8:
            break
    return theta - theta.mean()


class SWRankingRouter(TrainedRouter):
    """The paper's SW ranking router (gamma = 10, tiers from a global BT fit)."""

    name = "sw_ranking"
    trains_on = "battles"

    def __init__(
        self,
        strong_model: str = DEFAULT_STRONG_MODEL,
        weak_model: str = DEFAULT_WEAK_MODEL,
        num_tiers: int = 10,
        gamma: float = 10.0,
        l2: float = 1.0,
        newton_steps: int = 6,
        embedder: str | Embedder | None = None,
    ) -> None:
        super().__init__(embedder)
        self.strong_model, self.weak_model = strong_model, weak_model
        self.num_tiers, self.gamma, self.l2, self.newton_steps = (
            int(num_tiers),
            float(gamma),
            float(l2),
            int(newton_steps),
        )
        self.models: list[str] = []
        self.model_tier: np.ndarray | None = None  # (num_models,) tier index per model
        self.keys: np.ndarray | None = None  # (U, d) unique training-prompt embeddings
        self.wins: np.ndarray | None = None  # (U, P) wins of the first tier of pair p (ties half)
        self.counts: np.ndarray | None = None  # (U, P) battles per tier pair
        self.pairs: np.ndarray | None = None  # (P, 2) tier pairs (i < j)
        self.prior: np.ndarray | None = None  # (T,) global tier strengths, the Newton start and prior mean

    def _tiers(self) -> tuple[int, int]:
        assert self.model_tier is not None
        s = resolve_model(self.strong_model, self.models, "strong")
        w = resolve_model(self.weak_model, self.models, "weak")
        return int(self.model_tier[s]), int(self.model_tier[w])

    def fit(
        self,
        prompts: Sequence[str],
        model_a: Sequence[str],
        model_b: Sequence[str],
        outcome_a: np.ndarray,
        embeddings: dict[str, np.ndarray] | np.ndarray,
    ) -> SWRankingRouter:
        """Fit tiers and aggregate battles. `outcome_a` is 1 / 0.5 / 0 for model_a winning / tie / losing;
        `embeddings` maps prompt -> vector, or is a matrix aligned with the unique prompts in first-seen order."""
        self.models = sorted(set(model_a) | set(model_b))
        mid = {m: k for k, m in enumerate(self.models)}
        a = np.array([mid[m] for m in model_a])
        b = np.array([mid[m] for m in model_b])
        y = np.asarray(outcome_a, dtype=np.float64)
        theta = bradley_terry(a, b, y, np.ones_like(y), len(self.models))
        # tiers: equal-count bins of the global BT ranking (0 = weakest)
        order = np.argsort(theta)
        T = min(self.num_tiers, len(self.models))
        self.model_tier = np.empty(len(self.models), dtype=np.int64)
        for rank, m in enumerate(order):
            self.model_tier[m] = min(T - 1, rank * T // len(self.models))
        self.num_tiers = T
        s_tier, w_tier = self._tiers()
        if s_tier == w_tier:
            raise ValueError(
                f"{self.strong_model!r} and {self.weak_model!r} fall in the same tier; use more tiers"
            )
        ta, tb = self.model_tier[a], self.model_tier[b]
        keep = ta != tb  # same-tier battles say nothing about tier strengths
        lo, hi = np.minimum(ta, tb), np.maximum(ta, tb)
        y_lo = np.where(ta < tb, y, 1 - y)  # outcome for the lower-index tier
        pairs = sorted({(int(i), int(j)) for i, j in zip(lo[keep], hi[keep], strict=True)})
        pid = {p: k for k, p in enumerate(pairs)}
        index: dict[str, int] = {}
        u = np.array([index.setdefault(p, len(index)) for p in prompts])
        U = len(index)
        wins = np.zeros((U, len(pairs)), dtype=np.float32)
        counts = np.zeros((U, len(pairs)), dtype=np.float32)
        pk = np.array([pid.get((int(i), int(j)), -1) for i, j in zip(lo, hi, strict=True)])
        np.add.at(wins, (u[keep], pk[keep]), y_lo[keep])
        np.add.at(counts, (u[keep], pk[keep]), 1.0)
        uniq = list(index)
        if isinstance(embeddings, dict):
            keys = np.stack([embeddings[p] for p in uniq])
        else:
            keys = np.asarray(embeddings)
            if keys.shape[0] != U:
                raise ValueError(f"embeddings has {keys.shape[0]} rows for {U} unique prompts")
        used = counts.sum(1) > 0
        self.keys = keys[used].astype(np.float16)
        # stored as fp16: counts are small integers and wins multiples of 0.5, so the round trip is exact
        self.wins, self.counts = (
            wins[used].astype(np.float16).astype(np.float32),
            counts[used].astype(np.float16).astype(np.float32),
        )
        self.pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        tier_theta = np.zeros(T)
        P = self.pairs
        tier_theta = bradley_terry(
            P[:, 0],
            P[:, 1],
            self.wins.sum(0).astype(np.float64),
            self.counts.sum(0).astype(np.float64),
            T,
            l2=1e-3,
        )
        self.prior = tier_theta
        self._mark_fitted()
        self.training_info.update(
            {
                "battles": int(len(y)),
                "cross_tier_battles": int(keep.sum()),
                "prompts": int(used.sum()),
                "tiers": {m: int(t) for m, t in zip(self.models, self.model_tier, strict=True)},
            }
        )
        return self

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        self.check_fitted()
        assert (
            self.keys is not None
            and self.wins is not None
            and self.counts is not None
            and self.pairs is not None
        )
        assert self.prior is not None and embeddings is not None
        s_tier, w_tier = self._tiers()
        out = np.empty(embeddings.shape[0])
        keys = self.float32_keys()
        log_g = math.log(self.gamma)
        for i in range(0, embeddings.shape[0], 256):
            sims = embeddings[i : i + 256].astype(np.float32) @ keys.T  # (B, U)
            top = np.maximum(sims.max(axis=1, keepdims=True), 1e-6)
            w = np.exp(log_g * (1.0 + sims / top))
            w /= w.mean(
                axis=1, keepdims=True
            )  # scale-free: only relative weights matter, l2 stays comparable
            theta = self._fit_batch(w @ self.wins, w @ self.counts)
            out[i : i + 256] = 1 / (1 + np.exp(-(theta[:, s_tier] - theta[:, w_tier])))
        return out

    def _fit_batch(self, wins: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Batched Newton steps for per-query BT tier strengths, L2-anchored at the global fit."""
        assert self.pairs is not None and self.prior is not None
        B, T = wins.shape[0], self.num_tiers
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        D = np.zeros((len(self.pairs), T))
        D[np.arange(len(i)), i] = 1.0
        D[np.arange(len(j)), j] = -1.0
        prior = np.broadcast_to(self.prior, (B, T))
        theta = prior.copy()
        reg = self.l2 * np.eye(T)
        for _ in range(self.newton_steps):
            p = 1 / (1 + np.exp(-(theta @ D.T)))  # (B, P)
            g = (wins - counts * p) @ D - self.l2 * (theta - prior)  # (B, T)
            h = counts * p * (1 - p)  # (B, P)
            H = np.einsum("bp,pt,ps->bts", h, D, D) + reg
            theta = theta + np.linalg.solve(H, g[..., None])[..., 0]
        return theta

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> SWRankingRouter:
        """Build and fit this router from a TrainingData (see routing_core.training)."""
        battles = data.battles
        index: dict[str, int] = {}
        for b in battles:
            index.setdefault(b.prompt, len(index))
        r = cls(**cls.params_from_config(opts))
        outcome = np.array([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[b.winner] for b in battles])
        return r.fit(
            [b.prompt for b in battles],
            [b.model_a for b in battles],
            [b.model_b for b in battles],
            outcome,
            embed(list(index)),
        )

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self.check_fitted()
        assert (
            self.keys is not None
            and self.model_tier is not None
            and self.wins is not None
            and self.counts is not None
        )
        assert self.pairs is not None and self.prior is not None
        params = {"models": self.models}
        tensors = {
            "keys": self.keys,
            "wins": self.wins.astype(np.float16),
            "counts": self.counts.astype(np.float16),
            "pairs": self.pairs,
            "model_tier": self.model_tier,
            "prior": self.prior.astype(np.float32),
        }
        return params, tensors

    @classmethod
    def load(
        cls,
        folder: Path,
        config: dict[str, Any],
        strong_model: str | None = None,
        weak_model: str | None = None,
        embedder: str | Embedder | None = None,
    ) -> SWRankingRouter:
        config = validate_config(folder, config, cls.name)
        r = cls(
            **cls.params_from_config(
                config,
                strong_model=strong_model,
                weak_model=weak_model,
                embedder=embedder_for(config, embedder),
            )
        )
        r.models = list(config["models"])
        t = load_tensors(folder)
        keys, wins, counts, pairs, tiers, prior = require(
            t, folder, "keys", "wins", "counts", "pairs", "model_tier", "prior"
        )
        if (
            not (keys.shape[0] == wins.shape[0] == counts.shape[0])
            or wins.shape[1] != pairs.shape[0]
            or len(tiers) != len(r.models)
        ):
            raise CheckpointError(f"{folder}: tensor shapes do not match")
        r.keys, r.wins, r.counts = keys, wins.astype(np.float32), counts.astype(np.float32)
        r.pairs, r.model_tier, r.prior = (
            pairs.astype(np.int64),
            tiers.astype(np.int64),
            prior.astype(np.float64),
        )
        r._tiers()
        if strong_model in (None, config["strong_model"]) and weak_model in (None, config["weak_model"]):
            r.restore_common(config, folder)
        r._mark_fitted()
        return r
