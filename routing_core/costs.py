"""Token counts with tiktoken (offline) and a small, overridable price table for cost estimates."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_lock = threading.Lock()


_BUNDLED_CACHE = Path(__file__).parent / "_static" / "tiktoken_cache"  # cl100k_base only
_warned = False


def _offline_tiktoken_cache() -> str | None:
    """A folder of tiktoken rank files on disk: llama-index-core's (cl100k and o200k) or our own (cl100k)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_index.core")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "_static" / "tiktoken_cache"
        if p.is_dir():
            return str(p)
    return str(_BUNDLED_CACHE) if _BUNDLED_CACHE.is_dir() else None


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken encoding from rank files on disk (unless the user set TIKTOKEN_CACHE_DIR): no network."""
    import tiktoken

    with _lock:
        if "TIKTOKEN_CACHE_DIR" not in os.environ:
            cache = _offline_tiktoken_cache()
            if cache:
                os.environ["TIKTOKEN_CACHE_DIR"] = cache
        return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Number of tokens in `text` (cl100k_base by default: a good estimate for most chat models).

    If the encoding cannot be loaded (no rank file on disk and no network), falls back to the usual estimate of
    one token per 4 characters, with one warning, rather than failing the call it is counting for.
    """
    global _warned
    if not text:
        return 0
    try:
        enc = get_encoding(encoding)
    except Exception as e:  # tiktoken raises network and file errors of several kinds
        if not _warned:
            _warned = True
            warnings.warn(f"tiktoken encoding {encoding!r} unavailable offline ({type(e).__name__}); estimating tokens as chars/4", stacklevel=2)
        return max(1, round(len(text) / 4))
    return len(enc.encode(text, disallowed_special=()))


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M input tokens and per 1M output tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


# List prices in USD per 1M tokens (input, output), as published by the providers; override per app.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4-1106-preview": Price(10.0, 30.0),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-4": Price(30.0, 60.0),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-3.5-turbo": Price(0.5, 1.5),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-3-opus": Price(15.0, 75.0),
    "claude-3-haiku": Price(0.25, 1.25),
    "mixtral-8x7b-instruct": Price(0.6, 0.6),
    "llama-3.1-8b-instruct": Price(0.2, 0.2),
    "llama-3.1-70b-instruct": Price(0.9, 0.9),
}


class PriceTable:
    """Prices by model name, matched exactly, then by the longest known prefix (so dated names resolve)."""

    def __init__(self, prices: Mapping[str, Price | tuple[float, float]] | None = None, include_defaults: bool = True):
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES) if include_defaults else {}
        for k, v in (prices or {}).items():
            self.prices[k.lower()] = v if isinstance(v, Price) else Price(float(v[0]), float(v[1]))

    def get(self, model: str | None) -> Price | None:
        if not model:
            return None
        m = model.lower().rsplit("/", 1)[-1]
        if m in self.prices:
            return self.prices[m]
        best = max((k for k in self.prices if m.startswith(k)), key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Cost in USD, or None when the model has no known price."""
        p = self.get(model)
        return None if p is None else p.cost(input_tokens, output_tokens)
