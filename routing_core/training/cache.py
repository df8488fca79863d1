"""An on-disk embedding cache for training and evaluation runs, safe against kills, crashes and full disks.

Vectors live in shards under `cache_dir/<embedder name>/`: each batch of new texts is one `shard-*.npz` file
(keys = sha1 of the text, vecs = float32 rows) written atomically, so a killed run keeps every finished batch
and the next run embeds only what is missing. A shard that cannot be read, or whose arrays have the wrong
shape, dtype or dimension, is reported once (a `CacheWarning`), deleted and its texts embedded again.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routing_core.atomic import atomic_write, remove_stale_temps
from routing_core.embedders import Embedder

CHUNK = 512  # texts per shard: what a kill can lose at most
MAX_SHARDS = 64  # more shards than this are merged into one on the next read


class CacheWarning(UserWarning):
    """A cache file was unreadable or inconsistent; it was removed and will be rebuilt."""


def _cache_root(cache_dir: str | Path, embedder: Embedder) -> Path:
    return Path(cache_dir) / re.sub(r"[^A-Za-z0-9_.-]", "_", embedder.name)


def text_key(text: str) -> str:
    """The cache key of a text: sha1 of its UTF-8 bytes (lone surrogates kept)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _read_shard(path: Path, dim: int) -> tuple[list[str], np.ndarray]:
    """Keys and vectors of one shard; ValueError saying what is wrong when it is not a sound shard."""
    try:
        with (
            open(path, "rb") as f,
            np.load(f, allow_pickle=False) as z,
        ):  # our handle: closed even on a bad zip
            keys, vecs = z["keys"], z["vecs"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    if keys.ndim != 1 or keys.dtype.kind != "U":
        raise ValueError(
            f"keys have dtype {keys.dtype} and {keys.ndim} dimension(s), expected a list of strings"
        )
    if vecs.ndim != 2 or vecs.shape != (keys.shape[0], dim) or vecs.dtype.kind != "f":
        raise ValueError(f"vectors of shape {vecs.shape}, expected ({keys.shape[0]}, {dim})")
    if not np.isfinite(vecs).all():
        raise ValueError("vectors hold NaN or infinite values")
    return keys.tolist(), vecs.astype(np.float32, copy=False)


def _write_shard(path: Path, keys: Sequence[str], vecs: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(list(keys), dtype="<U40"), vecs=np.asarray(vecs, dtype=np.float32))

    atomic_write(path, write)


def _shard_name(keys: Sequence[str]) -> str:
    return "shard-" + hashlib.sha1("".join(keys).encode()).hexdigest()[:16] + ".npz"


def load_cache(root: Path, dim: int) -> dict[str, np.ndarray]:
    """Every sound vector under `root` (key -> row); bad shards are reported, deleted and skipped."""
    store: dict[str, np.ndarray] = {}
    if not root.is_dir():
        return store
    remove_stale_temps(root)
    shards = sorted(p for p in root.glob("*.npz") if not p.name.startswith("."))  # dot-files are temps
    good: list[Path] = []
    for path in shards:
        try:
            keys, vecs = _read_shard(path, dim)
        except ValueError as e:
            warnings.warn(
                f"embedding cache file {path} is corrupt ({e}); removed, its vectors will be recomputed",
                CacheWarning,
                stacklevel=3,
            )
            path.unlink(missing_ok=True)
            continue
        good.append(path)
        store.update(zip(keys, vecs, strict=True))
    if len(good) > MAX_SHARDS:
        keys = list(store)
        merged = root / _shard_name(keys)
        _write_shard(merged, keys, np.stack([store[k] for k in keys]))
        for path in good:
            if path != merged:
                path.unlink(missing_ok=True)
    return store


def embed_cached(
    embedder: Embedder,
    texts: Sequence[str],
    cache_dir: str | Path | None = ".cache/embeddings",
    chunk: int = CHUNK,
) -> np.ndarray:
    """Embed texts, reusing vectors saved under `cache_dir` (keyed by embedder name and text hash).

    New vectors are saved a chunk at a time, each chunk one atomic shard, so an interrupted run resumes.
    """
    texts = list(texts)
    if cache_dir is None or str(cache_dir) == "":
        return embedder.embed(texts)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    root = _cache_root(cache_dir, embedder)
    root.mkdir(parents=True, exist_ok=True)
    keys = [text_key(t) for t in texts]
    store = load_cache(root, embedder.dim)
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in store}.items())
    if missing:
        from tqdm.auto import tqdm

        steps = range(0, len(missing), chunk)
        for i in tqdm(steps, desc=f"embedding ({embedder.name})", disable=len(missing) <= chunk):
            part = missing[i : i + chunk]
            vecs = np.asarray(embedder.embed([t for _, t in part]), dtype=np.float32)
            if vecs.shape != (len(part), embedder.dim):
                raise ValueError(
                    f"embedder {embedder.name!r} returned shape {vecs.shape}, expected {(len(part), embedder.dim)}"
                )
            part_keys = [k for k, _ in part]
            _write_shard(root / _shard_name(part_keys), part_keys, vecs)
            store.update(zip(part_keys, vecs, strict=True))
    if not keys:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack([store[k] for k in keys]).astype(np.float32, copy=False)
