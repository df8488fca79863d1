"""Stable hash splits by text: the one place that turns a prompt into a reproducible train/validation bucket."""

from __future__ import annotations

import hashlib


def hash_bucket(text: str, buckets: int = 1000, salt: str = "") -> int:
    """The bucket in [0, buckets) of `text` (sha1 of `salt + text`; stable across runs, processes and machines)."""
    key = f"{salt}{text}".encode("utf-8", "surrogatepass")
    return int(hashlib.sha1(key).hexdigest()[:8], 16) % buckets


def in_share(text: str, fraction: float, buckets: int = 1000, salt: str = "") -> bool:
    """Whether `text` falls in the first `fraction` of buckets (validation split, seeded subsample, ...)."""
    return hash_bucket(text, buckets, salt) < fraction * buckets
