"""The paper's random baseline, made reproducible: each prompt's win rate is a seeded hash of its text."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from routing_core.router import Router, check_strong_fraction


class RandomRouter(Router):
    """Win rates uniform on [0, 1), independent of the prompt's content.

    The same prompt always gets the same win rate for a given seed, so concurrent and sequential calls agree
    and evaluations are reproducible. Being uniform, a target strong share f is threshold 1 - f.
    """

    name = "random"
    needs_training = False
    stochastic = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        key = self.seed.to_bytes(8, "little", signed=True)
        out = np.empty(len(prompts), dtype=np.float64)
        for i, p in enumerate(prompts):
            h = hashlib.blake2b(p.encode("utf-8", "surrogatepass"), digest_size=8, key=key).digest()
            out[i] = int.from_bytes(h, "little") / 2.0**64
        return out

    def reseeded(self, seed: int) -> RandomRouter:
        """The same router with another seed (evaluation averages a stochastic router over seeds)."""
        return RandomRouter(seed)

    def threshold_for_strong_fraction(self, fraction: float) -> float:
        return 1.0 - check_strong_fraction(fraction)

    def describe(self) -> dict[str, Any]:
        return {"router": self.name, "seed": self.seed}

    def __repr__(self) -> str:
        return f"RandomRouter(seed={self.seed})"
