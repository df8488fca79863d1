"""BERT-style classifier: a transformer encoder + a 3-way head (strong wins, tie, weak wins).

win_rate = P(strong wins). The default backbone is the bundled all-MiniLM-L6-v2; any local Hugging Face encoder
folder works. Training modes: "full" (every weight), "top" (the top `train_layers` encoder layers + head: the
bundled checkpoint stores only those, so it stays small), "frozen" (head only: a linear probe).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.batching import map_length_sorted
from routing_core.checkpoints import PRETRAINED_KWARGS, TOKENIZER_KWARGS, load_tensors, validate_config
from routing_core.embedders import minilm_path
from routing_core.errors import CheckpointError
from routing_core.routers._base import TrainedRouter, fine_tune, seeded_torch, split_pairs
from routing_core.text import chars_for_tokens, clip_all

MODES = ("full", "top", "frozen")
DEFAULT_BACKBONE = "all-MiniLM-L6-v2"


def _backbone_path(backbone: str) -> str:
    if backbone == DEFAULT_BACKBONE:
        return str(minilm_path())
    if not Path(backbone).is_dir():
        raise ValueError(f"backbone {backbone!r} is not a local model folder (nothing is downloaded)")
    return backbone


class BertRouter(TrainedRouter):
    """Sequence classifier over mean-pooled encoder states; P(strong wins) from a 3-way softmax."""

    name = "bert"
    uses_embeddings = False
    trains_on = "pairs"

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        mode: str = "top",
        train_layers: int = 2,
        max_length: int = 256,
        batch_size: int = 32,
        epochs: int = 2,
        lr: float = 5e-5,
        seed: int = 0,
    ) -> None:
        super().__init__(embedder=None)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.backbone, self.mode, self.train_layers = backbone, mode, int(train_layers)
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.epochs, self.lr, self.seed = int(epochs), float(lr), int(seed)
        self._model: Any = None
        self._tok: Any = None
        self._head: Any = None
        self._lock = threading.Lock()

    @property
    def embedder_name(self) -> str:
        return self.backbone

    def _build(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self._model is None:
            path = _backbone_path(self.backbone)
            self._tok = AutoTokenizer.from_pretrained(path, **TOKENIZER_KWARGS)
            self._model = AutoModel.from_pretrained(path, **PRETRAINED_KWARGS).eval()
            self._head = torch.nn.Linear(self._model.config.hidden_size, 3)

    def trainable_names(self) -> list[str]:
        """Names of the backbone parameters this mode trains (and the checkpoint stores)."""
        self._build()
        names = [n for n, _ in self._model.named_parameters()]
        if self.mode == "full":
            return names
        if self.mode == "frozen":
            return []
        n_layers = int(self._model.config.num_hidden_layers)
        top = {f"encoder.layer.{i}." for i in range(max(0, n_layers - self.train_layers), n_layers)}
        return [n for n in names if any(n.startswith(t) for t in top)]

    def _logits(self, prompts: Sequence[str], grad: bool = False) -> Any:
        import torch

        enc = self._tok(
            clip_all(list(prompts), chars_for_tokens(self.max_length)),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        with torch.set_grad_enabled(grad):
            hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self._head(pooled)

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        import torch

        def strong_wins(batch: list[str]) -> np.ndarray:
            return torch.softmax(self._logits(batch), dim=-1)[:, 0].double().numpy()

        self.check_fitted()
        with self._lock, torch.inference_mode():
            self._build()
            return map_length_sorted(prompts, self.batch_size, strong_wins)

    def fit(self, prompts: list[str], labels: np.ndarray, progress: bool = True) -> BertRouter:
        """Cross-entropy on labels 0 (strong wins), 1 (tie), 2 (weak wins); AdamW, linear decay.

        Seeded with `seed` in a forked RNG (head initialisation, dropout): the global torch state is untouched.
        """
        with seeded_torch(self.seed):
            return self._fit(prompts, labels, progress)

    def _fit(self, prompts: list[str], labels: np.ndarray, progress: bool) -> BertRouter:
        import torch

        epochs, lr, seed = self.epochs, self.lr, self.seed
        self._build()
        trainable = set(self.trainable_names())
        for n, p in self._model.named_parameters():
            p.requires_grad_(n in trainable)
        params = [p for p in self._model.parameters() if p.requires_grad] + list(self._head.parameters())
        head_lr = max(lr, 1e-3) if self.mode == "frozen" else lr * 10
        opt = torch.optim.AdamW(
            [
                {"params": [p for p in self._model.parameters() if p.requires_grad], "lr": lr},
                {"params": list(self._head.parameters()), "lr": head_lr},
            ],
            weight_decay=0.01,
        )
        y = torch.tensor(np.asarray(labels), dtype=torch.long)
        counts = torch.bincount(y, minlength=3).float().clamp(min=1)
        steps = epochs * ((len(prompts) + self.batch_size - 1) // self.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / max(1, steps)))
        self._model.train()
        fine_tune(
            lambda idx: self._logits([prompts[j] for j in idx], grad=True),
            y,
            params,
            opt,
            len(prompts),
            self.batch_size,
            epochs,
            seed,
            "bert fine-tuning",
            progress,
            sched,
            class_weight=counts.sum() / (3 * counts),
        )
        self._model.eval()
        with torch.no_grad():
            for n, p in self._model.named_parameters():
                p.requires_grad_(False)
                if n in trainable:  # run what is saved: trained layers are stored in fp16
                    p.copy_(p.half().float())
        self.training_info.update({"examples": len(prompts)})
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any = None, **opts: Any) -> BertRouter:
        """Build and fit from TrainingData's strong-vs-weak examples."""
        tr, _ = split_pairs(data.pairs)
        r = cls(**cls.params_from_config(opts))
        return r.fit(
            [x.prompt for x in tr], np.array([x.label for x in tr]), progress=bool(opts.get("progress", True))
        )

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._build()
        sd = self._model.state_dict()
        tensors = {f"backbone.{n}": sd[n].detach().numpy().astype(np.float16) for n in self.trainable_names()}
        tensors["head.weight"] = self._head.weight.detach().numpy().astype(np.float32)
        tensors["head.bias"] = self._head.bias.detach().numpy().astype(np.float32)
        return {}, tensors

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], backbone: str | None = None, **_: Any) -> BertRouter:
        config = validate_config(folder, config, cls.name)
        import torch

        r = cls(**cls.params_from_config(config, backbone=backbone))
        tensors = load_tensors(folder)
        r._build()
        expected = set(r.trainable_names())
        got = {k.removeprefix("backbone.") for k in tensors if k.startswith("backbone.")}
        if got != expected or "head.weight" not in tensors or "head.bias" not in tensors:
            raise CheckpointError(
                f"{folder}: weights do not match the {r.mode!r} mode of backbone {r.backbone!r}"
            )
        sd = r._model.state_dict()
        try:
            for n in expected:
                sd[n].copy_(torch.from_numpy(tensors[f"backbone.{n}"].astype(np.float32)))
            r._head.weight.data.copy_(torch.from_numpy(tensors["head.weight"]))
            r._head.bias.data.copy_(torch.from_numpy(tensors["head.bias"]))
        except RuntimeError as e:
            raise CheckpointError(f"{folder}: tensor shapes do not match the backbone ({e})") from e
        r.restore_common(config, folder)
        return r
