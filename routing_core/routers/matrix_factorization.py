"""Matrix factorization (the paper's best router): learned model vectors x a projection of the prompt embedding.

score(m, q) = w . (normalise(v_m) * W q);  win_rate = sigmoid(score(strong, q) - score(weak, q)).
Trained on every model in the battles (ties dropped), so the strong and weak models are picked by name when
the router is built, from the models it was trained on. Also loads the official RouteLLM MF checkpoint layout
(`config.json` + `model.safetensors`) by delegating to `routing_core.routers.official` (the one reader of it).
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


class MFRouter(TrainedRouter):
    """The paper's matrix-factorization router, numpy inference, torch training."""

    name = "mf"
    trains_on = "battles"

    def __init__(
        self,
        strong_model: str = DEFAULT_STRONG_MODEL,
        weak_model: str = DEFAULT_WEAK_MODEL,
        dim: int = 128,
        embedder: str | Embedder | None = None,
        lr: float = 3e-4,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        noise: float = 0.01,
        max_epochs: int = 40,
        patience: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__(embedder)
        self.strong_model = strong_model
        self.weak_model = weak_model
        self.dim = int(dim)
        self.lr, self.weight_decay, self.noise = float(lr), float(weight_decay), float(noise)
        self.batch_size, self.max_epochs, self.patience, self.seed = (
            int(batch_size),
            int(max_epochs),
            int(patience),
            int(seed),
        )
        self.models: list[str] = []
        self.P: np.ndarray | None = None  # (num_models, dim) model vectors
        self.W: np.ndarray | None = None  # (dim, text_dim) projection
        self.w: np.ndarray | None = None  # (dim,) linear head

    def _pair(self) -> tuple[int, int]:
        return resolve_model(self.strong_model, self.models, "strong"), resolve_model(
            self.weak_model, self.models, "weak"
        )

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        self.check_fitted()
        assert self.P is not None and self.W is not None and self.w is not None and embeddings is not None
        s, k = self._pair()
        v = self.P[[s, k]]
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        diff = (v[0] - v[1]) * self.w  # score(strong) - score(weak) is linear in the projected prompt
        z = (embeddings.astype(np.float32) @ self.W.T) @ diff
        return 1 / (1 + np.exp(-np.clip(z.astype(np.float64), -30, 30)))

    def with_models(self, strong_model: str, weak_model: str) -> MFRouter:
        """The same trained router for another pair of the models it was trained on."""
        import copy

        r = copy.copy(self)
        r.strong_model, r.weak_model = strong_model, weak_model
        r._pair()
        r.calibrator, r.reference_win_rates = None, None  # calibration belonged to the old pair
        r._fingerprint = None
        return r

    def fit(
        self,
        prompt_ids: np.ndarray,
        model_a: Sequence[str],
        model_b: Sequence[str],
        a_wins: np.ndarray,
        embeddings: np.ndarray,
        val_mask: np.ndarray,
        progress: bool = True,
    ) -> MFRouter:
        """Fit on non-tie battles: prompt_ids index `embeddings`; `val_mask` marks validation battles.

        Hyperparameters come from `__init__`; randomness from a generator seeded with `seed` (no global seeding).
        """
        import torch
        from tqdm.auto import tqdm  # type: ignore[import-untyped]

        lr, weight_decay, batch_size, noise = self.lr, self.weight_decay, self.batch_size, self.noise
        g = torch.Generator().manual_seed(self.seed)
        self.models = sorted(set(model_a) | set(model_b))
        mid = {m: i for i, m in enumerate(self.models)}
        self._pair()
        A = torch.tensor([mid[m] for m in model_a])
        B = torch.tensor([mid[m] for m in model_b])
        Y = torch.tensor(np.asarray(a_wins, dtype=np.float32))
        Pi = torch.tensor(np.asarray(prompt_ids))
        E = torch.tensor(embeddings.astype(np.float32))
        tr = torch.tensor(~np.asarray(val_mask)).nonzero().squeeze(1)
        va = torch.tensor(np.asarray(val_mask)).nonzero().squeeze(1)
        P = torch.nn.utils.skip_init(torch.nn.Embedding, len(self.models), self.dim)
        proj = torch.nn.utils.skip_init(torch.nn.Linear, E.shape[1], self.dim, bias=False)
        head = torch.nn.utils.skip_init(torch.nn.Linear, self.dim, 1, bias=False)
        with torch.no_grad():  # torch's default initialisations, drawn from the local generator
            torch.nn.init.normal_(P.weight, generator=g)
            for lin in (proj, head):
                torch.nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=g)
        params = list(P.parameters()) + list(proj.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

        def logits(idx: torch.Tensor, noisy: bool) -> torch.Tensor:
            q = E[Pi[idx]]
            if noisy and noise > 0:
                q = q + noise * torch.randn(q.shape, generator=g)
            q = proj(q)
            va_, vb_ = (
                torch.nn.functional.normalize(P(A[idx]), dim=1),
                torch.nn.functional.normalize(P(B[idx]), dim=1),
            )
            return head(va_ * q).squeeze(1) - head(vb_ * q).squeeze(1)

        loss_fn = torch.nn.BCEWithLogitsLoss()
        best: tuple[float, list[torch.Tensor]] | None = None
        bad = 0
        history = []
        for _epoch in tqdm(range(self.max_epochs), desc="mf epochs", disable=not progress):
            perm = tr[torch.randperm(len(tr), generator=g)]
            for i in range(0, len(perm), batch_size):
                idx = perm[i : i + batch_size]
                opt.zero_grad()
                loss = loss_fn(logits(idx, True), Y[idx])
                loss.backward()
                opt.step()
            with torch.no_grad():
                vl = float(loss_fn(logits(va, False), Y[va])) if len(va) else float(loss)
            history.append(round(vl, 5))
            if best is None or vl < best[0] - 1e-5:
                best = (vl, [p.detach().clone() for p in params])
                bad = 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        assert best is not None
        with torch.no_grad():
            for p, b in zip(params, best[1], strict=True):
                p.copy_(b)
        self.P = P.weight.detach().numpy().copy()
        self.W = proj.weight.detach().numpy().copy()
        self.w = head.weight.detach().numpy()[0].copy()
        self.training_info.update({"epochs": len(history), "val_loss": history, "best_val_loss": best[0]})
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any, **opts: Any) -> MFRouter:
        """Build and fit this router from a TrainingData (see routing_core.training)."""
        from routing_core.splits import in_share

        battles = [b for b in data.battles if b.winner != "tie"]  # the paper drops ties
        if not battles:
            raise ValueError("no non-tie battles to train matrix factorization on")
        uniq, ids = battles_from_prompts([b.prompt for b in battles])
        r = cls(**cls.params_from_config(opts))
        return r.fit(
            ids,
            [b.model_a for b in battles],
            [b.model_b for b in battles],
            np.array([b.winner == "model_a" for b in battles], dtype=np.float32),
            embed(uniq),
            np.array([in_share(b.prompt, 0.1) for b in battles]),
            progress=bool(opts.get("progress", True)),
        )

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self.check_fitted()
        assert self.P is not None and self.W is not None and self.w is not None
        params = {"models": self.models}
        return params, {
            "P": self.P.astype(np.float32),
            "W": self.W.astype(np.float32),
            "w": self.w.astype(np.float32),
        }

    @classmethod
    def load(
        cls,
        folder: Path,
        config: dict[str, Any],
        strong_model: str | None = None,
        weak_model: str | None = None,
        embedder: str | Embedder | None = None,
        models: Sequence[str] | dict[str, int] | None = None,
    ) -> MFRouter:
        if config.get("format") is None:  # RouteLLM's own layout: one reader, routers.official
            from routing_core.routers.official import load_official

            extra: dict[str, Any] = {
                k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v
            }
            if models is not None:  # names in id order, or name -> id
                extra["model_ids"] = (
                    dict(models) if isinstance(models, dict) else {m: i for i, m in enumerate(models)}
                )
            return load_official(folder, embedder=embedder, **extra)  # type: ignore[return-value]
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
        P, W, w = require(load_tensors(folder), folder, "P", "W", "w")
        r.P, r.W, r.w = P.astype(np.float32), W.astype(np.float32), w.astype(np.float32)
        if r.P.shape != (len(r.models), r.dim) or r.W.shape[0] != r.dim or r.w.shape != (r.dim,):
            raise CheckpointError(f"{folder}: tensor shapes do not match the config")
        r._pair()
        same_pair = (strong_model in (None, config["strong_model"])) and (
            weak_model in (None, config["weak_model"])
        )
        if same_pair:
            r.restore_common(config, folder)
        r._mark_fitted()
        return r


def battles_from_prompts(prompts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Unique prompts (first-seen order) and each battle's index into them."""
    index: dict[str, int] = {}
    ids = np.array([index.setdefault(p, len(index)) for p in prompts])
    return list(index), ids
