"""What trained routers share: an embedder, probability calibration, reference win rates, checkpoint fields.

Not a router itself; routers import this, `router.py`, `embedders.py` and `checkpoints.py`, never each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.calibration import PlattScaler, calibrator_from_dict, reference_quantiles
from routing_core.checkpoints import write_checkpoint
from routing_core.embedders import DEFAULT_EMBEDDER, Embedder, resolve_embedder
from routing_core.errors import CheckpointError
from routing_core.router import Router

EmbedFn = Callable[[Sequence[str]], np.ndarray]


class TrainedRouter(Router):
    """A router fitted on data: raw scores from `_raw_scores`, then an optional Platt calibration."""

    needs_training = True

    def __init__(self, embedder: str | Embedder | None = None) -> None:
        self.embedder_spec = embedder
        self._embedder: Embedder | None = None
        self.calibrator: PlattScaler | None = None
        self.reference_win_rates: np.ndarray | None = None
        self.training_info: dict[str, Any] = {}

    @property
    def embedder(self) -> Embedder:
        """Resolved lazily, so building a router never loads a model it will not use."""
        if self._embedder is None:
            self._embedder = resolve_embedder(self.embedder_spec)
        return self._embedder

    @property
    def embedder_name(self) -> str:
        spec = self.embedder_spec
        return spec.name if spec is not None and not isinstance(spec, str) else (spec or DEFAULT_EMBEDDER)

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed(list(prompts))

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    uses_embeddings = True

    def raw_scores(self, prompts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated strong-win scores in [0, 1]; pass precomputed embeddings to skip the embedder."""
        items = list(prompts)
        if embeddings is None and self.uses_embeddings:
            embeddings = self.embed(items)
        return np.asarray(self._raw_scores(items, embeddings), dtype=np.float64)

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return self.calibrate_scores(self.raw_scores(prompts))

    def win_rate_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Calibrated win rates when the caller already has the prompts' embeddings (evaluation, training)."""
        return np.clip(self.calibrate_scores(self.raw_scores(prompts, embeddings)), 0.0, 1.0)

    def calibrate_scores(self, scores: np.ndarray) -> np.ndarray:
        return scores if self.calibrator is None else self.calibrator.transform(scores)

    def fit_calibration(self, prompts: Sequence[str], targets: np.ndarray, embeddings: np.ndarray | None = None) -> None:
        """Platt-scale raw scores on held-out examples so that win rates are probabilities (comparable across
        routers); a monotone map, so it changes thresholds but not the ranking (APGR/CPT)."""
        raw = self.raw_scores(prompts, embeddings)
        self.calibrator = PlattScaler().fit(raw, np.asarray(targets, dtype=np.float64))

    def set_reference(self, win_rates: np.ndarray) -> None:
        """Store a summary of win rates on a reference prompt sample for strong_fraction -> threshold."""
        self.reference_win_rates = reference_quantiles(win_rates, 201)

    # --- checkpoints -------------------------------------------------------------------------------------

    def common_params(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder_name,
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "reference_win_rates": None if self.reference_win_rates is None else [round(float(x), 6) for x in self.reference_win_rates],
            "training": self.training_info,
        }

    def restore_common(self, config: dict[str, Any], folder: Path) -> None:
        try:
            self.calibrator = calibrator_from_dict(config.get("calibrator"))
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{folder}: bad calibrator in config ({e})") from e
        ref = config.get("reference_win_rates")
        self.reference_win_rates = None if ref is None else np.asarray(ref, dtype=np.float64)
        self.training_info = dict(config.get("training") or {})

    def float32_keys(self) -> np.ndarray:
        """float32 copy of a router's fp16 `keys` (stored small), converted once rather than on every call."""
        keys = self.keys  # type: ignore[attr-defined]
        cached = getattr(self, "_keys_f32", None)
        if cached is None or cached.shape != keys.shape:
            cached = self._keys_f32 = keys.astype(np.float32)
        return cached

    def save(self, folder: str | Path, card: str | None = None) -> Path:
        """Write this router as a checkpoint folder (JSON config + safetensors + model card)."""
        params, tensors = self.state()
        return write_checkpoint(folder, self.name, {**params, **self.common_params()}, tensors, card)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Router-specific JSON params and tensors."""
        raise NotImplementedError


def resolve_model(name: str, models: Sequence[str], role: str) -> int:
    """Index of `name` (or its canonical spelling) among a router's trained models; else a clear error."""
    from routing_core.data.aliases import canonical_model
    from routing_core.errors import UnknownModelError

    for cand in (name, canonical_model(name)):
        if cand in models:
            return list(models).index(cand)
    raise UnknownModelError(f"{role} model {name!r} is not one this router was trained on; known models: {', '.join(models)}")


def embedder_for(config: dict[str, Any], override: str | Embedder | None) -> str | Embedder | None:
    """The embedder to use when loading: the caller's, else the one named in the checkpoint."""
    return override if override is not None else config.get("embedder")


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray | None = None, iters: int = 50) -> np.ndarray:
    """Weighted L2-regularised logistic regression with soft targets by Newton's method; last column is bias."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))]).astype(np.float64)
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 1e-6
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(Xb @ theta, -30, 30)))
        g = Xb.T @ (w * (p - y)) + reg * theta
        H = (Xb * (w * p * (1 - p))[:, None]).T @ Xb + np.diag(reg)
        step = np.linalg.solve(H, g)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return theta


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def split_pairs(pairs: Sequence[Any], val_fraction: float = 0.1) -> tuple[list[Any], list[Any]]:
    """Train/validation split of PairExamples by prompt text (stable, so reruns agree)."""
    import hashlib

    def is_val(p: str) -> bool:
        return int(hashlib.sha1(p.encode()).hexdigest()[:8], 16) % 1000 < val_fraction * 1000

    tr = [x for x in pairs if not is_val(x.prompt)]
    va = [x for x in pairs if is_val(x.prompt)]
    return tr, va


def fine_tune(
    forward: Callable[[list[int]], Any],
    targets: Any,
    params: Sequence[Any],
    optimizer: Any,
    n: int,
    batch_size: int,
    epochs: int,
    seed: int,
    desc: str,
    progress: bool = True,
    scheduler: Any = None,
    class_weight: Any = None,
) -> None:
    """The fine-tuning loop the transformer routers share: seeded shuffles, cross-entropy on
    `forward(batch indices)` against `targets[batch]`, gradient clipping at 1.0, a progress bar with the loss."""
    import torch
    from tqdm.auto import tqdm

    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weight)
    g = torch.Generator().manual_seed(seed)
    bar = tqdm(total=epochs * ((n + batch_size - 1) // batch_size), desc=desc, disable=not progress)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).tolist()
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(forward(idx), targets[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
