"""The paper's own routers (RouteLLM 0.2.0 layouts), from a hub id or a local folder with the same files.

`load_official("routellm/bert_gpt4_augmented")` (or a folder) recognises the layout from its files and returns a
`Router` whose win rates are computed exactly as RouteLLM computes them:

- BERT (`routellm/bert_gpt4_augmented`): an XLM-RoBERTa sequence classifier with 3 labels; win rate = 1 - the
  summed softmax of the last two labels (tie, weak wins); tokenised with truncation as the original, batched.
- MF (`routellm/mf_gpt4_augmented`): `config.json` (dim, num_models, text_dim, num_classes, use_proj) and
  `model.safetensors`; win rate = sigmoid(logit(strong) - logit(weak)), logits from L2-normalised model vectors
  times the projected prompt embedding through a linear head. Needs an embedder of width `text_dim` (the paper
  used OpenAI text-embedding-3-small, 1536-d): an OpenAI client, a LangChain `Embeddings`, or any callable.
- Causal LLM (`routellm/causal_llm_gpt4_augmented`): a Llama-3-8B scoring a prompt [[1]]..[[5]] through the
  `system_ft_v5.txt` / `classifier_ft_v5.txt` prompts; win rate = 1 - P(score >= 4). Needs a CUDA GPU unless
  `device=` says otherwise.
- SW ranking (`routellm/arena_battles_embeddings` style): a Bradley-Terry (Elo) fit over model tiers with every
  training battle weighted by 10 * 10**(sim / max_sim), solved per prompt by Newton on aggregated counts.

Weights are read from safetensors only (no pickle, no `trust_remote_code`); hub ids go through
`routing_core.hub.resolve_snapshot` (cached, honouring HF_HUB_OFFLINE, pickles never fetched).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.checkpoints import FORMAT, load_tensors, require
from routing_core.data.aliases import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL, canonical_model
from routing_core.errors import CheckpointError, UnknownModelError
from routing_core.router import Router

# --- the original's tables ----------------------------------------------------------------------------------

#: RouteLLM's MF model ids (routers/matrix_factorization/model.py, MODEL_IDS): the row of P for each model.
MODEL_IDS: dict[str, int] = {
    "RWKV-4-Raven-14B": 0,
    "alpaca-13b": 1,
    "chatglm-6b": 2,
    "chatglm2-6b": 3,
    "chatglm3-6b": 4,
    "claude-1": 5,
    "claude-2.0": 6,
    "claude-2.1": 7,
    "claude-instant-1": 8,
    "codellama-34b-instruct": 9,
    "deepseek-llm-67b-chat": 10,
    "dolly-v2-12b": 11,
    "dolphin-2.2.1-mistral-7b": 12,
    "falcon-180b-chat": 13,
    "fastchat-t5-3b": 14,
    "gemini-pro": 15,
    "gemini-pro-dev-api": 16,
    "gpt-3.5-turbo-0125": 17,
    "gpt-3.5-turbo-0314": 18,
    "gpt-3.5-turbo-0613": 19,
    "gpt-3.5-turbo-1106": 20,
    "gpt-4-0125-preview": 21,
    "gpt-4-0314": 22,
    "gpt-4-0613": 23,
    "gpt-4-1106-preview": 24,
    "gpt4all-13b-snoozy": 25,
    "guanaco-33b": 26,
    "koala-13b": 27,
    "llama-13b": 28,
    "llama-2-13b-chat": 29,
    "llama-2-70b-chat": 30,
    "llama-2-7b-chat": 31,
    "llama2-70b-steerlm-chat": 32,
    "mistral-7b-instruct": 33,
    "mistral-7b-instruct-v0.2": 34,
    "mistral-medium": 35,
    "mixtral-8x7b-instruct-v0.1": 36,
    "mpt-30b-chat": 37,
    "mpt-7b-chat": 38,
    "nous-hermes-2-mixtral-8x7b-dpo": 39,
    "oasst-pythia-12b": 40,
    "openchat-3.5": 41,
    "openchat-3.5-0106": 42,
    "openhermes-2.5-mistral-7b": 43,
    "palm-2": 44,
    "pplx-70b-online": 45,
    "pplx-7b-online": 46,
    "qwen-14b-chat": 47,
    "qwen1.5-4b-chat": 48,
    "qwen1.5-72b-chat": 49,
    "qwen1.5-7b-chat": 50,
    "solar-10.7b-instruct-v1.0": 51,
    "stablelm-tuned-alpha-7b": 52,
    "starling-lm-7b-alpha": 53,
    "stripedhyena-nous-7b": 54,
    "tulu-2-dpo-70b": 55,
    "vicuna-13b": 56,
    "vicuna-33b": 57,
    "vicuna-7b": 58,
    "wizardlm-13b": 59,
    "wizardlm-70b": 60,
    "yi-34b-chat": 61,
    "zephyr-7b-alpha": 62,
    "zephyr-7b-beta": 63,
}

#: RouteLLM's Llama-3 prompt format (routers/causal_llm/configs.py); its `bos` field is unused by PromptFormat.
LLAMA3_FORMAT: dict[str, str] = {
    "system": "<|start_header_id|>system<|end_header_id|>\n\n{instruction}<|eot_id|>",
    "assistant": "<|start_header_id|>assistant<|end_header_id|>\n\n{instruction}<|eot_id|>",
    "user": "<|start_header_id|>user<|end_header_id|>\n\n{instruction}<|eot_id|>",
}
CAUSAL_SPECIAL_TOKENS: tuple[str, ...] = ("[[1]]", "[[2]]", "[[3]]", "[[4]]", "[[5]]")
CAUSAL_PROMPT_FILES: tuple[str, str] = ("system_ft_v5.txt", "classifier_ft_v5.txt")
CAUSAL_BASE_TOKENIZER = "meta-llama/Meta-Llama-3-8B"
OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
#: What is fetched when only a tokenizer is needed from a hub repo (e.g. the gated Llama-3 base).
TOKENIZER_PATTERNS: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "config.json",
)

#: Hub ids of the paper's routers -> layout. The SW ids are datasets (embeddings), paired with their battles.
OFFICIAL_IDS: dict[str, str] = {
    "routellm/bert_gpt4_augmented": "bert",
    "routellm/mf_gpt4_augmented": "mf",
    "routellm/causal_llm_gpt4_augmented": "causal_llm",
    "routellm/arena_battles_embeddings": "sw_ranking",
    "routellm/gpt4_judge_battles_embeddings": "sw_ranking",
}
SW_BATTLES_FOR: dict[str, str] = {
    "routellm/arena_battles_embeddings": "lmsys/lmsys-arena-human-preference-55k",
    "routellm/gpt4_judge_battles_embeddings": "routellm/gpt4_judge_battles",
}
# what from_pretrained may do with a folder: local files only, safetensors only, no code from the folder
_SAFE = {"local_files_only": True, "use_safetensors": True, "trust_remote_code": False}
_PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pkl", "tf_model.h5")


class OfficialRouterError(CheckpointError):
    """An official RouteLLM layout could not be loaded or used (one line naming the folder/id and the fix)."""


# --- layout detection ---------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OfficialRouterError(f"{path}: unreadable JSON ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise OfficialRouterError(f"{path}: must be a JSON object")
    return data


def detect_layout(folder: str | Path) -> str:
    """The official layout a folder holds: "bert", "mf" or "causal_llm" (from config.json and file names)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        if (folder / "model.safetensors").is_file():  # an MFModel pushed without its config: read the tensors
            from routing_core.checkpoints import read_safetensors_header

            if {"P.weight", "classifier.0.weight"} <= set(
                read_safetensors_header(folder / "model.safetensors")
            ):
                return "mf"
        raise OfficialRouterError(f"{folder}: no config.json, so not an official RouteLLM router folder")
    config = _read_json(folder / "config.json")
    if config.get("format") == FORMAT:
        raise OfficialRouterError(
            f"{folder}: a routellm-plugin checkpoint, not an official RouteLLM layout; use load_router"
        )
    if {"num_models", "text_dim"} <= set(config) and ("dim" in config or "hidden_size" in config):
        return "mf"
    archs = [str(a) for a in config.get("architectures") or []]
    if any(a.endswith("ForCausalLM") for a in archs) or all(
        (folder / f).is_file() for f in CAUSAL_PROMPT_FILES
    ):
        return "causal_llm"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "bert"
    raise OfficialRouterError(
        f"{folder}: config.json is not an official RouteLLM layout (expected MF fields dim/num_models/text_dim, "
        f"a *ForSequenceClassification or *ForCausalLM architecture; got architectures={archs or None})"
    )


def is_official_folder(path: str | Path) -> bool:
    """Whether `path` is a folder in one of the official layouts (and not one of our own checkpoints)."""
    try:
        detect_layout(path)
    except CheckpointError:
        return False
    return True


def _check_safetensors(folder: Path, what: str) -> None:
    """Weights must be safetensors; a folder with only pickled weights gets one line saying how to convert."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p for p in _PICKLES if (folder / p).is_file()]
    if pickles:
        raise OfficialRouterError(
            f"{folder}: {what} weights are only in {pickles[0]} (a pickle, which this library never loads); "
            "convert them to safetensors (model.save_pretrained(folder, safe_serialization=True)) or use the hub "
            "repository's safetensors files"
        )
    raise OfficialRouterError(f"{folder}: no *.safetensors weights for the {what} router")


def resolve_folder(name_or_path: str | Path, **hub_kwargs: Any) -> Path:
    """A local folder as is, or a hub id resolved to its cached snapshot (see routing_core.hub)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    from routing_core.hub import looks_like_hub_id, resolve_snapshot

    if isinstance(name_or_path, str) and looks_like_hub_id(name_or_path):
        return resolve_snapshot(name_or_path, **hub_kwargs)
    raise OfficialRouterError(f"{name_or_path}: no such folder, and not a hub id of the form 'org/name'")


def _torch_device(device: str | None, what: str, needs_gpu: bool = False) -> Any:
    import torch

    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if needs_gpu:
            raise OfficialRouterError(
                f"{what} needs a CUDA GPU (an 8B Llama in bfloat16, about 16 GB) and none is available here; "
                "run it on a GPU machine, or pass device='cpu' to force CPU (slow, about 32 GB of RAM)"
            )
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise OfficialRouterError(f"{what}: bad device {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OfficialRouterError(f"{what}: device {device!r} asked for but no CUDA GPU is available here")
    return dev


# --- BERT ---------------------------------------------------------------------------------------------------


class OfficialBertRouter(Router):
    """RouteLLM's BERTRouter: an XLM-RoBERTa classifier over (strong wins, tie, weak wins); batched with padding."""

    name = "routellm_bert"
    needs_training = True
    uses_embeddings = False

    def __init__(
        self, checkpoint: str | Path, batch_size: int = 32, device: str | None = None, num_labels: int = 3
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.checkpoint, self.batch_size, self.device, self.num_labels = (
            str(checkpoint),
            int(batch_size),
            device,
            int(num_labels),
        )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        folder = resolve_folder(checkpoint)
        self.folder = folder
        _check_safetensors(folder, "BERT")
        self._device = _torch_device(device, str(checkpoint))
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                str(folder), num_labels=self.num_labels, **_SAFE
            )
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as e:
            raise OfficialRouterError(
                f"{folder}: cannot load the BERT classifier or its tokenizer ({type(e).__name__}: {str(e).splitlines()[0]})"
            ) from None
        self.model = self.model.eval().to(self._device)
        if int(self.model.config.num_labels) != self.num_labels:
            raise OfficialRouterError(
                f"{folder}: the classifier has {self.model.config.num_labels} labels, expected {self.num_labels}"
            )
        # RouteLLM truncates to the tokenizer's model_max_length; when a tokenizer leaves it unset, cap at what
        # the position embeddings hold (roberta-style models reserve padding_idx + 1 positions).
        self._max_length: int | None = None
        if int(getattr(self.tokenizer, "model_max_length", 0) or 0) > 1_000_000:
            npos = int(getattr(self.model.config, "max_position_embeddings", 512))
            offset = (
                int(getattr(self.model.config, "pad_token_id", 0) or 0) + 1
                if "roberta" in self.model.config.model_type
                else 0
            )
            self._max_length = npos - offset
        self._lock = threading.Lock()

    def _batch(self, texts: list[str]) -> np.ndarray:
        import torch

        kw: dict[str, Any] = {"max_length": self._max_length} if self._max_length else {}
        with self._lock:
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, **kw)
            with torch.no_grad():
                logits = self.model(**{k: v.to(self._device) for k, v in inputs.items()}).logits
        x = logits.float().cpu().numpy().astype(np.float64)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        soft = e / e.sum(axis=1, keepdims=True)
        return 1.0 - soft[:, -2:].sum(axis=1)  # 1 - P(tie) - P(weak wins), as BERTRouter

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        from routing_core.batching import map_length_sorted

        return map_length_sorted(prompts, self.batch_size, self._batch)


# --- embedders for MF and SW --------------------------------------------------------------------------------


class ExternalEmbedder:
    """texts -> (n, d) float64 vectors from a LangChain Embeddings, an OpenAI client, an Embedder or a callable.

    Vectors are used as the source returns them (RouteLLM does not normalise them); their width is checked
    against what the checkpoint expects, with one clear error.
    """

    def __init__(
        self,
        source: Any,
        expected_dim: int,
        what: str,
        model: str = OPENAI_EMBEDDING_MODEL,
        batch_size: int = 256,
    ) -> None:
        self.source, self.expected_dim, self.what, self.model, self.batch_size = (
            source,
            int(expected_dim),
            what,
            model,
            int(batch_size),
        )
        if hasattr(source, "embed_documents"):
            self.kind = "langchain"
        elif hasattr(getattr(source, "embeddings", None), "create"):
            self.kind = "openai"
        elif hasattr(source, "embed") and hasattr(source, "dim"):
            self.kind = "embedder"
            if int(source.dim) != self.expected_dim:
                raise self._width_error(int(source.dim))
        elif callable(source):
            self.kind = "callable"
        else:
            raise OfficialRouterError(
                f"{what}: embedder must be an OpenAI client, a LangChain Embeddings, an Embedder or a callable "
                f"texts -> vectors, got {type(source).__name__}"
            )
        self.name = f"{self.kind}:{getattr(source, 'model', None) or getattr(source, 'name', None) or type(source).__name__}"

    def _width_error(self, width: int) -> OfficialRouterError:
        return OfficialRouterError(
            f"{self.what}: the embedder gives {width}-d vectors but the router expects {self.expected_dim}-d "
            f"(the paper used OpenAI {OPENAI_EMBEDDING_MODEL}, 1536-d)"
        )

    def _call(self, texts: list[str]) -> Any:
        if self.kind == "langchain":
            return self.source.embed_documents(texts)
        if self.kind == "openai":
            resp = self.source.embeddings.create(model=self.model, input=texts)
            data = sorted(resp.data, key=lambda d: getattr(d, "index", 0))
            return [d.embedding for d in data]
        if self.kind == "embedder":
            return self.source.embed(texts)
        return self.source(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, float64, width-checked."""
        items = list(texts)
        parts = []
        for i in range(0, len(items), self.batch_size):
            chunk = items[i : i + self.batch_size]
            try:
                x = np.asarray(self._call(chunk), dtype=np.float64)
            except (ValueError, TypeError) as e:
                raise OfficialRouterError(
                    f"{self.what}: the embedder did not return a table of numbers ({e})"
                ) from None
            if x.ndim != 2 or x.shape[0] != len(chunk):
                raise OfficialRouterError(
                    f"{self.what}: the embedder returned shape {x.shape} for {len(chunk)} texts"
                )
            if x.shape[1] != self.expected_dim:
                raise self._width_error(int(x.shape[1]))
            if not np.isfinite(x).all():
                raise OfficialRouterError(f"{self.what}: the embedder returned non-finite values")
            parts.append(x)
        return np.concatenate(parts) if parts else np.zeros((0, self.expected_dim))


def default_openai_embedder(what: str) -> Any:
    """An OpenAI client when OPENAI_API_KEY is set and `openai` installed (what RouteLLM uses); else a clear error."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            import openai

            return openai.OpenAI()
        except ImportError:
            pass
    raise OfficialRouterError(
        f"{what} needs prompt embeddings from OpenAI {OPENAI_EMBEDDING_MODEL} (1536-d): pass embedder=<an OpenAI "
        "client, a LangChain Embeddings or a callable texts -> vectors>, or set OPENAI_API_KEY with `openai` installed"
    )


def _model_lookup(names: Sequence[str]) -> dict[str, str]:
    """Spellings -> the table's own name: exact names first, then canonical spellings (aliases, case)."""
    out: dict[str, str] = {}
    for n in names:
        out.setdefault(canonical_model(n), n)
    for n in names:
        out[n] = n
    return out


def match_model(name: str, names: Sequence[str], role: str, what: str) -> str:
    """The table's name for `name` (exact, or the same canonical spelling); unknown names list the known ones."""
    lookup = _model_lookup(names)
    for cand in (name, canonical_model(name)):
        if cand in lookup:
            return lookup[cand]
    raise UnknownModelError(
        f"{what}: {role} model {name!r} is not one it knows; known models: {', '.join(sorted(names))}"
    )


def _int_field(config: dict[str, Any], name: str, default: int, folder: Path) -> int:
    """An integer config field (or the default when absent); anything else is one clear error."""
    v = config.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise OfficialRouterError(
            f"{folder}: config.json field {name!r} must be a non-negative integer, got {v!r}"
        )
    return v


# --- MF -----------------------------------------------------------------------------------------------------


class OfficialMFRouter(Router):
    """RouteLLM's MatrixFactorizationRouter (MFModel.pred_win_rate), batched, numpy inference."""

    name = "routellm_mf"
    needs_training = True
    uses_embeddings = False

    def __init__(
        self,
        checkpoint: str | Path,
        embedder: Any = None,
        strong_model: str = DEFAULT_STRONG_MODEL,
        weak_model: str = DEFAULT_WEAK_MODEL,
        model_ids: dict[str, int] | None = None,
        embedding_model: str = OPENAI_EMBEDDING_MODEL,
    ) -> None:
        self.checkpoint, self.strong_model, self.weak_model = str(checkpoint), strong_model, weak_model
        self.model_ids, self.embedding_model, self.embedder = model_ids, embedding_model, embedder
        folder = resolve_folder(checkpoint)
        self.folder = folder
        config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
        _check_safetensors(folder, "MF")
        tensors = load_tensors(folder, "model.safetensors")
        P, head = require(tensors, folder, "P.weight", "classifier.0.weight")
        dim = _int_field(config, "dim", _int_field(config, "hidden_size", int(P.shape[1]), folder), folder)
        num_models = _int_field(config, "num_models", int(P.shape[0]), folder)
        proj = tensors.get("text_proj.0.weight")
        text_dim = _int_field(config, "text_dim", int(proj.shape[1]) if proj is not None else dim, folder)
        num_classes = _int_field(config, "num_classes", 1, folder)
        use_proj = bool(config.get("use_proj", proj is not None))
        if P.shape != (num_models, dim):
            raise OfficialRouterError(
                f"{folder}: P.weight has shape {P.shape}, config says ({num_models}, {dim})"
            )
        if num_classes != 1 or head.shape != (1, dim):
            raise OfficialRouterError(
                f"{folder}: classifier.0.weight must be (1, {dim}) with num_classes 1, got {head.shape}"
            )
        if use_proj:
            (W,) = require(tensors, folder, "text_proj.0.weight")
            if W.shape != (dim, text_dim):
                raise OfficialRouterError(
                    f"{folder}: text_proj.0.weight has shape {W.shape}, expected ({dim}, {text_dim})"
                )
        else:
            if text_dim != dim:
                raise OfficialRouterError(
                    f"{folder}: use_proj is false, so text_dim {text_dim} must equal dim {dim}"
                )
            W = np.eye(dim, dtype=np.float32)
        table = dict(model_ids) if model_ids is not None else dict(MODEL_IDS)
        if model_ids is None and num_models != len(MODEL_IDS):
            raise OfficialRouterError(
                f"{folder}: {num_models} model vectors but RouteLLM's MODEL_IDS has {len(MODEL_IDS)}; pass model_ids=<name -> row>"
            )
        bad = [n for n, i in table.items() if not (isinstance(i, int) and 0 <= i < num_models)]
        if bad:
            raise OfficialRouterError(f"{folder}: model_ids rows out of range for {', '.join(bad[:5])}")
        self.models = sorted(table, key=table.__getitem__)
        self._ids = table
        self.text_dim, self.dim = text_dim, dim
        self.P, self.W = P.astype(np.float64), W.astype(np.float64)
        self.head = head.reshape(-1).astype(np.float64)
        what = str(checkpoint)
        self.strong_name = match_model(strong_model, self.models, "strong", what)
        self.weak_name = match_model(weak_model, self.models, "weak", what)
        v = self.P[[self._ids[self.strong_name], self._ids[self.weak_name]]]
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # F.normalize(p=2, eps=1e-12)
        self._diff = (
            v[0] - v[1]
        ) * self.head  # logit(strong) - logit(weak) is linear in the projected prompt
        self._embedder = ExternalEmbedder(
            embedder if embedder is not None else default_openai_embedder(what),
            text_dim,
            what,
            embedding_model,
        )

    def win_rate_from_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Win rates for prompt embeddings (n, text_dim) as the embedder returns them."""
        z = (np.asarray(vectors, dtype=np.float64) @ self.W.T) @ self._diff
        return 1.0 / (1.0 + np.exp(-z))

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return self.win_rate_from_vectors(self._embedder.embed(prompts))


# --- causal LLM ---------------------------------------------------------------------------------------------


def llama3_prompt(messages: list[dict[str, str]]) -> str:
    """RouteLLM's PromptFormat.generate_prompt for Llama-3 (is_generation=True, no trailing assistant)."""
    msgs = [dict(m) for m in messages]
    system = None
    if msgs and msgs[0]["role"] == "system":
        system = msgs.pop(0)
        if system["content"] is None:
            system["content"] = ""
    if system is not None and system["content"]:
        msgs.insert(0, system)
    out = []
    for m in msgs:
        if m["role"] not in LLAMA3_FORMAT:
            raise ValueError(f"unsupported role {m['role']!r}")
        out.append(LLAMA3_FORMAT[m["role"]].format(instruction=m["content"].strip()))
    return "".join(out)


class OfficialCausalLLMRouter(Router):
    """RouteLLM's CausalLLMRouter: greedy generation, the first [[k]] token's logits, 1 - P(score >= 4)."""

    name = "routellm_causal_llm"
    needs_training = True
    uses_embeddings = False

    def __init__(
        self,
        checkpoint: str | Path,
        device: str | None = None,
        tokenizer: str | Path | None = None,
        dtype: str = "bfloat16",
        score_threshold: int = 4,
        max_new_tokens: int = 6,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.checkpoint, self.device, self.tokenizer_source, self.dtype = (
            str(checkpoint),
            device,
            tokenizer,
            dtype,
        )
        self.score_threshold, self.max_new_tokens = int(score_threshold), int(max_new_tokens)
        n_out = len(CAUSAL_SPECIAL_TOKENS)
        if self.score_threshold != n_out - 1:
            raise OfficialRouterError(
                f"score_threshold must be {n_out - 1} (RouteLLM's only supported value), got {score_threshold!r}"
            )
        what = str(checkpoint)
        self._device = _torch_device(device, what, needs_gpu=True)  # before any download or load
        folder = resolve_folder(checkpoint)
        self.folder = folder
        missing = [f for f in CAUSAL_PROMPT_FILES if not (folder / f).is_file()]
        if missing:
            raise OfficialRouterError(
                f"{folder}: the causal router's prompt file(s) {', '.join(missing)} are missing"
            )
        _check_safetensors(folder, "causal LLM")
        self.system_message = (folder / CAUSAL_PROMPT_FILES[0]).read_text(encoding="utf-8")
        self.classifier_message = (folder / CAUSAL_PROMPT_FILES[1]).read_text(encoding="utf-8")
        tok_src = tokenizer
        if tok_src is None:
            if not any(
                (folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
            ):
                raise OfficialRouterError(
                    f"{folder}: no tokenizer files; pass tokenizer=<folder or hub id of {CAUSAL_BASE_TOKENIZER}> "
                    "(gated: accept its license on huggingface.co and log in)"
                )
            tok_src = folder
        tok_folder = resolve_folder(
            tok_src, allow_patterns=TOKENIZER_PATTERNS
        )  # never a base model's weights
        try:
            dt = getattr(torch, dtype)
        except AttributeError:
            raise OfficialRouterError(f"{what}: unknown dtype {dtype!r}") from None
        try:
            # RouteLLM's get_tokenizer: legacy, left truncation/padding, pad = eos, the five score tokens added
            tok = AutoTokenizer.from_pretrained(
                str(tok_folder),
                legacy=True,
                truncation_side="left",
                padding_side="left",
                local_files_only=True,
                trust_remote_code=False,
            )
            model = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype=dt, use_cache=False, attention_dropout=0.0, **_SAFE
            )
        except (OSError, ValueError, KeyError) as e:
            raise OfficialRouterError(
                f"{folder}: cannot load the causal LLM or its tokenizer ({type(e).__name__}: {str(e).splitlines()[0]})"
            ) from None
        tok.pad_token = tok.eos_token
        tok.add_tokens(list(CAUSAL_SPECIAL_TOKENS), special_tokens=True)
        self.tokenizer = tok
        self.orig_vocab_size = len(tok) - n_out
        ids = [tok.convert_tokens_to_ids(t) for t in CAUSAL_SPECIAL_TOKENS]
        if ids != list(range(self.orig_vocab_size, len(tok))):
            raise OfficialRouterError(
                f"{folder}: the score tokens {', '.join(CAUSAL_SPECIAL_TOKENS)} must be the tokenizer's last {n_out} ids, got {ids}"
            )
        vocab = int(model.get_output_embeddings().weight.shape[0])
        if vocab < len(tok):
            raise OfficialRouterError(
                f"{folder}: the model's vocabulary ({vocab}) is smaller than its tokenizer's ({len(tok)})"
            )
        self.model = model.to(self._device).eval()
        self._lock = threading.Lock()

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given; `tokenizer` is where the tokenizer came from, not the loaded object."""
        params = super().get_params()
        params["tokenizer"] = None if self.tokenizer_source is None else str(self.tokenizer_source)
        return params

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """RouteLLM's to_openai_api_messages(system, classifier, [prompt])."""
        return [
            {"role": "system", "content": self.system_message},
            {"role": "user", "content": self.classifier_message.format(question=prompt)},
        ]

    def score_logits(self, prompt: str) -> np.ndarray | None:
        """The five score logits at the first generated score token (None when none is generated)."""
        import torch

        text = llama3_prompt(self.messages(prompt))
        input_ids = torch.as_tensor(np.array(self.tokenizer.encode(text))).to(self._device).reshape(1, -1)
        with self._lock, torch.no_grad():
            out = self.model.generate(
                input_ids,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
                output_scores=True,
                return_dict_in_generate=True,
            )
        new = out.sequences.squeeze()[input_ids.shape[1] :].cpu()
        idx = next((i for i, x in enumerate(new.reshape(-1).tolist()) if x >= self.orig_vocab_size), None)
        if idx is None:
            return None
        row = out.scores[idx][0].float().cpu().numpy()
        return row[self.orig_vocab_size : self.orig_vocab_size + len(CAUSAL_SPECIAL_TOKENS)].astype(
            np.float64
        )

    def _one(self, prompt: str) -> float:
        logits = self.score_logits(prompt)
        if logits is None:
            return 1.0  # RouteLLM routes to the strong model when no score token comes out
        e = np.exp(logits - logits.max())
        soft = e / e.sum()
        return float(1.0 - soft[self.score_threshold - 1 :].sum())

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return np.array([self._one(p) for p in prompts], dtype=np.float64)


# --- SW ranking ---------------------------------------------------------------------------------------------

LN10 = math.log(10.0)


def bt_design(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """RouteLLM's logistic-regression rows, +1 at a and -1 at b; when a == b the -1 overwrites (a quirk kept)."""
    X = np.zeros((len(a), n))
    X[np.arange(len(a)), a] = 1.0
    X[np.arange(len(a)), b] = -1.0
    return X


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def fit_bt_newton(
    X: np.ndarray, S: np.ndarray, F: np.ndarray, iters: int = 100, tol: float = 1e-11
) -> np.ndarray:
    """Maximum-likelihood theta (Q, p) of sum S log s(X theta) + F log s(-X theta) per row of S, F (Q, G).

    Newton with step halving; the pseudo-inverse takes the minimum-norm step where the fit is only determined
    up to a shift (every comparison's difference is still exact). No penalty, as RouteLLM's penalty=None.
    """
    S = np.atleast_2d(np.asarray(S, dtype=np.float64))
    F = np.atleast_2d(np.asarray(F, dtype=np.float64))
    N = S + F
    theta = np.zeros((S.shape[0], X.shape[1]))

    def loglik(th: np.ndarray) -> np.ndarray:
        z = th @ X.T
        return (S * _log_sigmoid(z) + F * _log_sigmoid(-z)).sum(axis=1)

    cur = loglik(theta)
    for _ in range(iters):
        z = theta @ X.T
        p = 1.0 / (1.0 + np.exp(-z))
        g = (S - N * p) @ X
        h = N * p * (1.0 - p)
        H = np.einsum("qg,gi,gj->qij", h, X, X)
        step = np.einsum("qij,qj->qi", np.linalg.pinv(H, hermitian=True), g)
        t = np.ones(S.shape[0])
        new = theta + step
        val = loglik(new)
        for _ in range(40):
            worse = val < cur - 1e-12 * np.abs(cur)
            if not worse.any():
                break
            t[worse] *= 0.5
            new = theta + t[:, None] * step
            val = loglik(new)
        moved = np.abs(t[:, None] * step).max()
        theta, cur = new, np.maximum(val, cur)
        if moved < tol:
            break
    return theta


def outcome_counts(winner: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RouteLLM's duplicated rows as counts: a win is two wins, a tie one win for each side."""
    w = np.ones(len(winner)) if weights is None else np.asarray(weights, dtype=np.float64)
    a_win, b_win, tie = (winner == 0), (winner == 1), (winner == 2)
    return w * (2.0 * a_win + tie), w * (2.0 * b_win + tie)


def elo_ratings(model_a: Sequence[str], model_b: Sequence[str], winner: Sequence[str]) -> dict[str, float]:
    """RouteLLM's compute_elo_mle_with_tie (SCALE 400, BASE 10, INIT 1000, llama-2-70b-chat at 1082), sorted high to low."""
    names = list(dict.fromkeys([*model_a, *model_b]))  # pd.concat([a, b]).unique() order
    idx = {m: i for i, m in enumerate(names)}
    a = np.array([idx[m] for m in model_a])
    b = np.array([idx[m] for m in model_b])
    code = np.array([{"model_a": 0, "model_b": 1}.get(w, 2) for w in winner])
    S, F = outcome_counts(code)
    pairs, inv = np.unique(np.stack([a, b], 1), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    Sg, Fg = np.bincount(inv, S, len(pairs)), np.bincount(inv, F, len(pairs))
    theta = fit_bt_newton(bt_design(pairs[:, 0], pairs[:, 1], len(names)), Sg[None], Fg[None])[0]
    elo = 400.0 * theta / LN10 + 1000.0
    if "llama-2-70b-chat" in idx:
        elo += 1082.0 - elo[idx["llama-2-70b-chat"]]
    order = np.argsort(-elo, kind="stable")
    return {names[i]: float(elo[i]) for i in order}


def compute_tiers(model_ratings: dict[str, float], num_tiers: int) -> dict[str, int]:
    """RouteLLM's compute_tiers: split the sorted ratings into `num_tiers` runs of least total variance."""
    ratings = list(model_ratings.values())
    names = list(model_ratings)
    n, m = len(ratings), int(num_tiers)
    if m < 1 or n < m:
        raise OfficialRouterError(
            f"SW ranking needs at least num_tiers={num_tiers} models in its battles, got {n}"
        )
    dp = np.zeros((n, n, m))
    dp_split = np.zeros((n, n, m))
    for i in range(n):
        for j in range(i + 1, n):
            dp[i][j][0] = np.var(ratings[i : j + 1])
    for tier in range(1, m):
        for i in range(n):
            for j in range(i + 1, n):
                cand = dp[i, i:j, tier - 1] + dp[i + 1 : j + 1, j, 0]
                k = int(np.argmin(cand))  # the first minimum, as RouteLLM's strict '>' update
                if cand[k] < 1e9:
                    dp_split[i][j][tier] = i + k
                    dp[i][j][tier] = cand[k]
                else:
                    dp[i][j][tier] = 1e9
    cur_n = n
    split_idx = []
    for tier in range(m - 1, 0, -1):
        split = int(dp_split[0][cur_n - 1][tier])
        split_idx.append(split)
        cur_n = split + 1
    split_idx = split_idx[::-1] + [n - 1]
    out: dict[str, int] = {}
    cur = 0
    for t, end in enumerate(split_idx):
        for j in range(cur, end + 1):
            out[names[j]] = t
        cur = end + 1
    return out


class OfficialSWRankingRouter(Router):
    """RouteLLM's SWRankingRouter over the paper's battles and their OpenAI embeddings, solved fast and exactly.

    Per prompt the original refits a logistic regression over every (duplicated) battle; here the battles are
    grouped once by (tier a, tier b, outcome), so a prompt costs one similarity product, one weighted sum per
    group and a Newton solve over `num_tiers` parameters, with the same maximum-likelihood win rate.
    """

    name = "routellm_sw_ranking"
    needs_training = True
    uses_embeddings = False

    def __init__(
        self,
        battle_datasets: Sequence[Any] | None = None,
        embedding_datasets: Sequence[Any] | None = None,
        strong_model: str = DEFAULT_STRONG_MODEL,
        weak_model: str = DEFAULT_WEAK_MODEL,
        num_tiers: int = 10,
        embedder: Any = None,
        embedding_model: str = OPENAI_EMBEDDING_MODEL,
        query_batch: int = 32,
    ) -> None:
        from routing_core.data import hub_datasets as hd

        self.battle_datasets = (
            list(battle_datasets) if battle_datasets is not None else list(hd.PAPER_BATTLES)
        )
        self.embedding_datasets = (
            list(embedding_datasets) if embedding_datasets is not None else list(hd.PAPER_EMBEDDINGS)
        )
        self.strong_model, self.weak_model, self.num_tiers = strong_model, weak_model, int(num_tiers)
        self.embedder, self.embedding_model, self.query_batch = embedder, embedding_model, int(query_batch)
        what = "SW ranking"
        table = hd.concat_tables([hd.arena_table(d) for d in self.battle_datasets])
        keys = np.concatenate([hd.load_embeddings(d) for d in self.embedding_datasets])
        if len(table) != keys.shape[0]:
            raise OfficialRouterError(
                f"{what}: {keys.shape[0]} battle embeddings for {len(table)} preprocessed battles (they must align one to one)"
            )
        self.ratings = elo_ratings(table.model_a, table.model_b, table.winner)
        self.model2tier = compute_tiers(self.ratings, self.num_tiers)
        models = list(self.ratings)
        self.strong_name = match_model(strong_model, models, "strong", what)
        self.weak_name = match_model(weak_model, models, "weak", what)
        ta = np.array([self.model2tier[m] for m in table.model_a])
        tb = np.array([self.model2tier[m] for m in table.model_b])
        code = np.array([{"model_a": 0, "model_b": 1}.get(w, 2) for w in table.winner])
        tiers = int(max(self.model2tier.values())) + 1
        self._tiers = tiers
        group = (ta * tiers + tb) * 3 + code
        self._order = np.argsort(group, kind="stable")
        g_sorted = group[self._order]
        self._starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
        gid = g_sorted[self._starts]
        self._g_pair, self._g_code = gid // 3, gid % 3
        pairs, self._pair_of_group = np.unique(self._g_pair, return_inverse=True)
        self._pair_of_group = self._pair_of_group.reshape(-1)
        self._X = bt_design(pairs // tiers, pairs % tiers, tiers)
        keys = np.ascontiguousarray(keys, dtype=np.float32)
        keys /= np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-30)  # in place: keys can be ~1 GB
        self.keys = keys[self._order]
        self.n_battles = len(table)
        self._embedder = ExternalEmbedder(
            embedder if embedder is not None else default_openai_embedder(what),
            keys.shape[1],
            what,
            embedding_model,
        )

    def get_weightings(self, similarities: np.ndarray) -> np.ndarray:
        """RouteLLM's per-battle weights: 10 * 10 ** (sim / max_sim), per query row."""
        max_sim = similarities.max(axis=1, keepdims=True)
        return 10.0 * 10.0 ** (similarities / max_sim)

    def win_rate_from_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Win rates for prompt embeddings (n, d) (cosine similarity: their scale does not matter)."""
        q = np.asarray(vectors, dtype=np.float64)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        out = np.zeros(len(q))
        s_t, w_t = self.model2tier[self.strong_name], self.model2tier[self.weak_name]
        n_pairs = self._X.shape[0]
        for start in range(0, len(q), self.query_batch):
            qb = q[start : start + self.query_batch]
            sims = (self.keys @ qb.T.astype(np.float32)).T.astype(np.float64)
            w = self.get_weightings(sims)
            sums = np.add.reduceat(w, self._starts, axis=1)  # (Q, groups): weight per (tier pair, outcome)
            S_g = sums * np.where(self._g_code == 0, 2.0, np.where(self._g_code == 2, 1.0, 0.0))
            F_g = sums * np.where(self._g_code == 1, 2.0, np.where(self._g_code == 2, 1.0, 0.0))
            S = np.zeros((len(qb), n_pairs))
            F = np.zeros((len(qb), n_pairs))
            for k in range(n_pairs):  # few pairs (<= tiers**2); sum each pair's outcome groups
                cols = self._pair_of_group == k
                S[:, k] = S_g[:, cols].sum(axis=1)
                F[:, k] = F_g[:, cols].sum(axis=1)
            theta = fit_bt_newton(self._X, S, F)
            out[start : start + len(qb)] = 1.0 / (1.0 + np.exp(-(theta[:, s_t] - theta[:, w_t])))
        return out

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return self.win_rate_from_vectors(self._embedder.embed(prompts))


# --- one entry point ----------------------------------------------------------------------------------------

_LAYOUTS: dict[str, Callable[..., Router]] = {
    "bert": OfficialBertRouter,
    "mf": OfficialMFRouter,
    "causal_llm": OfficialCausalLLMRouter,
}


def load_official(name_or_path: str | Path, **kwargs: Any) -> Router:
    """A router in one of RouteLLM's official layouts, from a hub id or a local folder with the same files.

    Keyword arguments go to the router (`embedder=` for MF/SW, `strong_model=`/`weak_model=`, `device=` ...).
    """
    name = str(name_or_path)
    local = Path(name).expanduser().is_dir()
    layout = None if local else OFFICIAL_IDS.get(name)
    if layout == "sw_ranking":
        kwargs.setdefault("battle_datasets", [SW_BATTLES_FOR[name]])
        kwargs.setdefault("embedding_datasets", [name])
        return OfficialSWRankingRouter(**kwargs)
    if (
        layout is not None
    ):  # a known hub id: the class resolves it once (the causal one checks for a GPU first)
        return _LAYOUTS[layout](name, **kwargs)
    folder = resolve_folder(name_or_path)
    return _LAYOUTS[detect_layout(folder)](folder, **kwargs)


__all__ = [
    "MODEL_IDS",
    "OFFICIAL_IDS",
    "ExternalEmbedder",
    "OfficialBertRouter",
    "OfficialCausalLLMRouter",
    "OfficialMFRouter",
    "OfficialRouterError",
    "OfficialSWRankingRouter",
    "compute_tiers",
    "detect_layout",
    "elo_ratings",
    "fit_bt_newton",
    "is_official_folder",
    "load_official",
]
