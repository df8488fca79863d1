"""Length-sorted batching: similar lengths share a batch, so padding (and time) stays small."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def map_length_sorted(texts: Sequence[str], batch_size: int, fn: Callable[[list[str]], np.ndarray], width: int | None = None) -> np.ndarray:
    """Apply `fn` to batches of texts sorted by length and return its rows in the original order.

    `fn` maps a list of texts to an array with one row (or one value) per text; `width` is the row width
    (None for one value per text).
    """
    shape = (len(texts),) if width is None else (len(texts), width)
    out = np.zeros(shape, dtype=np.float32 if width else np.float64)
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = fn([texts[i] for i in idx])
    return out
