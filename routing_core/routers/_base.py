"""What trained routers share: an embedder, probability calibration, reference win rates, checkpoint fields.

Not a router itself; routers import this, `router.py`, `embedders.py` and `checkpoints.py`, never each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from routing_core.calibration import PlattScaler, calibrator_from_dict, reference_quantiles
from routing_core.checkpoints import write_checkpoint
from routing_core.embedders import DEFAULT_EMBEDDER, Embedder, resolve_embedder
from routing_core.errors import CheckpointError, NotFittedError, UnknownModelError
from routing_core.router import Router, TrainsOn
from routing_core.splits import in_share
from routing_core.text import chars_for_tokens, clip_text

EmbedFn = Callable[[Sequence[str]], np.ndarray]


class TrainedRouter(Router):
    """A router fitted on data: raw scores from `_raw_scores`, then an optional Platt calibration.

    Subclasses take every hyperparameter in `__init__` (stored under the same name), implement `_raw_scores`,
    `fit`, `train` (from a TrainingData), `state()` (fitted JSON fields and tensors) and `load`, and call
    `self._mark_fitted()` at the end of `fit`/`load`. `get_params()` then drives `describe()`, `__repr__` and the
    checkpoint config, and `fingerprint()` hashes the fitted state so two trained routers of one kind differ.
    """

    needs_training: ClassVar[bool] = True
    uses_embeddings: ClassVar[bool] = True
    trains_on: ClassVar[TrainsOn] = "pairs"

    def __init__(self, embedder: str | Embedder | None = None) -> None:
        self.embedder_spec = embedder
        self._embedder: Embedder | None = None
        self.calibrator: PlattScaler | None = None
        self.reference_win_rates: np.ndarray | None = None
        self.training_info: dict[str, Any] = {}
        self._fitted = False
        self._fingerprint: str | None = None

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to `__init__`; the embedder by name (an object is not a parameter value)."""
        return {n: (self.embedder_name if n == "embedder" else getattr(self, n)) for n in self.param_names()}

    @classmethod
    def params_from_config(cls, config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        """`__init__` keyword arguments from a checkpoint config, the caller's non-None overrides winning."""
        out = {n: config[n] for n in cls.param_names() if n in config}
        out.update({k: v for k, v in overrides.items() if v is not None})
        return out

    @property
    def is_fitted(self) -> bool:
        """Whether the router has weights (fitted in this process, or loaded from a checkpoint)."""
        return self._fitted

    def _mark_fitted(self) -> None:
        """Record that the fitted state changed (end of `fit`, `load`, calibration): the fingerprint is redone."""
        self._fitted = True
        self._fingerprint = None

    def check_fitted(self) -> None:
        """Raise `NotFittedError` unless fitted; routers call it before scoring."""
        if not self._fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit()/train_router() first or load a checkpoint "
                f"(routing_core.load_router)"
            )

    def fingerprint(self) -> str | None:
        """sha256 (16 hex digits) over the checkpoint config and tensors; None while unfitted. Cached."""
        if not self._fitted:
            return None
        if self._fingerprint is None:
            params, tensors = self.state()
            config = {**self.get_params(), **params, **self.common_params()}
            config.pop("training", None)  # provenance, not behaviour
            h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
            for name in sorted(tensors):
                t = np.ascontiguousarray(tensors[name])
                h.update(f"{name}:{t.dtype}:{t.shape}".encode())
                h.update(t.tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    @property
    def embedder(self) -> Embedder:
        """Resolved lazily, so building a router never loads a model it will not use."""
        if self._embedder is None:
            self._embedder = resolve_embedder(self.embedder_spec)
        return self._embedder

    @property
    def embedder_name(self) -> str | None:
        """The embedder's name (the default embedder's when none was given); None for routers without one."""
        if not self.uses_embeddings:
            return None
        spec = self.embedder_spec
        return spec.name if spec is not None and not isinstance(spec, str) else (spec or DEFAULT_EMBEDDER)

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """Embed prompts with this router's embedder."""
        return self.embedder.embed(list(prompts))

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def raw_scores(self, prompts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated strong-win scores in [0, 1]; pass precomputed embeddings to skip the embedder."""
        items = list(prompts)
        if embeddings is None and self.uses_embeddings:
            embeddings = self.embed(items)
        return np.asarray(self._raw_scores(items, embeddings), dtype=np.float64)

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return self.calibrate_scores(self.raw_scores(prompts))

    def win_rate_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray:
        """Calibrated win rates when the caller already has the prompts' embeddings (evaluation, training)."""
        return np.clip(self.calibrate_scores(self.raw_scores(prompts, embeddings)), 0.0, 1.0)

    def calibrate_scores(self, scores: np.ndarray) -> np.ndarray:
        return scores if self.calibrator is None else self.calibrator.transform(scores)

    def fit_calibration(
        self, prompts: Sequence[str], targets: np.ndarray, embeddings: np.ndarray | None = None
    ) -> None:
        """Platt-scale raw scores on held-out examples so that win rates are probabilities (comparable across
        routers); a monotone map, so it changes thresholds but not the ranking (APGR/CPT)."""
        raw = self.raw_scores(prompts, embeddings)
        self.calibrator = PlattScaler().fit(raw, np.asarray(targets, dtype=np.float64))
        self._fingerprint = None

    def set_reference(self, win_rates: np.ndarray) -> None:
        """Store a summary of win rates on a reference prompt sample for strong_fraction -> threshold."""
        self.reference_win_rates = reference_quantiles(win_rates, 201)
        self._fingerprint = None

    # --- checkpoints -------------------------------------------------------------------------------------

    def common_params(self) -> dict[str, Any]:
        """Checkpoint fields every trained router has: embedder, calibrator, reference win rates, provenance."""
        return {
            "embedder": self.embedder_name,
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "reference_win_rates": None
            if self.reference_win_rates is None
            else [round(float(x), 6) for x in self.reference_win_rates],
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
        self._mark_fitted()

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
        config = {**self.get_params(), **params, **self.common_params()}
        return write_checkpoint(folder, self.name, config, tensors, card)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted, router-specific JSON fields (hyperparameters come from `get_params`) and tensors."""
        raise NotImplementedError


def resolve_model(name: str, models: Sequence[str], role: str) -> int:
    """Index of `name` (or its canonical spelling) among a router's trained models; else a clear error."""
    from routing_core.data.aliases import canonical_model

    for cand in (name, canonical_model(name)):
        if cand in models:
            return list(models).index(cand)
    raise UnknownModelError(
        f"{role} model {name!r} is not one this router was trained on; known models: {', '.join(models)}"
    )


def embedder_for(config: dict[str, Any], override: str | Embedder | None) -> str | Embedder | None:
    """The embedder to use when loading: the caller's, else the one named in the checkpoint."""
    return override if override is not None else config.get("embedder")


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def split_pairs(pairs: Sequence[Any], val_fraction: float = 0.1) -> tuple[list[Any], list[Any]]:
    """Train/validation split of PairExamples by prompt text (stable, so reruns agree)."""
    tr = [x for x in pairs if not in_share(x.prompt, val_fraction)]
    va = [x for x in pairs if in_share(x.prompt, val_fraction)]
    return tr, va


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch inside a forked RNG: initialisation and dropout are reproducible, the global state untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


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
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

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


# --- what the linear routers (logistic, difficulty) share ----------------------------------------------


SIZE_SAMPLE_CHARS = chars_for_tokens(256)  # the sample the default embedder reads (routing_core.text)


def length_features(prompts: list[str]) -> np.ndarray:
    """Standardised prompt-size signals the (length-normalised) embedding cannot carry.

    Characters and lines are counted on the whole prompt (C-level `len`/`count`); words and the digit share are
    read on the head+tail sample `clip_text` keeps and scaled to the whole length, so a 1 MB prompt costs what a
    4 KB one does. Prompts within the sample size get exactly the counts of the whole text.
    """
    n_chars, n_words, n_lines, digit_share = [], [], [], []
    for p in prompts:
        sample = clip_text(p, SIZE_SAMPLE_CHARS)
        scale = len(p) / max(1, len(sample))
        n_chars.append(len(p))
        n_words.append(len(sample.split()) * scale)
        n_lines.append(p.count("\n"))
        digit_share.append(sum(c.isdigit() for c in sample) / max(1, len(sample)))
    chars = np.log1p(np.array(n_chars, dtype=np.float32))
    words = np.log1p(np.array(n_words, dtype=np.float32))
    lines = np.log1p(np.array(n_lines, dtype=np.float32))
    digits = np.array(digit_share, dtype=np.float32)
    return np.stack([(chars - 5.5) / 1.2, (words - 4.0) / 1.2, lines - 1.0, digits * 10.0], axis=1)


def features(prompts: list[str], embeddings: np.ndarray) -> np.ndarray:
    return np.hstack([embeddings.astype(np.float32), length_features(prompts)])


class LinearHeadRouter(TrainedRouter):
    """A linear head `coef` over [embedding, size features] (+ bias): its checkpoint state and loading."""

    coef: np.ndarray | None

    def linear_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """`features @ coef[:-1] + coef[-1]` for fitted coefficients and given embeddings."""
        self.check_fitted()
        if self.coef is None or embeddings is None:
            raise RuntimeError(f"{type(self).__name__} needs embeddings and fitted coefficients")
        return features(prompts, embeddings).astype(np.float64) @ self.coef[:-1] + self.coef[-1]

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The coefficients (embedding dims, size features, bias)."""
        self.check_fitted()
        assert self.coef is not None
        return {}, {"coef": self.coef.astype(np.float32)}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], embedder: str | Embedder | None = None) -> Any:
        """Rebuild from a checkpoint folder: hyperparameters from the config, `coef` from the safetensors."""
        from routing_core.checkpoints import load_tensors, require, validate_config

        config = validate_config(folder, config, cls.name)
        r = cls(**cls.params_from_config(config, embedder=embedder_for(config, embedder)))
        (coef,) = require(load_tensors(folder), folder, "coef")
        r.coef = coef.astype(np.float64)
        r.restore_common(config, folder)
        return r
