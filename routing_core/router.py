"""The router contract: prompts -> strong-win rates in [0, 1] -> decisions (strong iff win rate >= threshold)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

Side = Literal["strong", "weak"]


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision: the router's win rate, the threshold it was compared to, and the side chosen."""

    win_rate: float
    threshold: float

    @property
    def strong(self) -> bool:
        """The paper's rule: strong iff win_rate >= threshold (ties go strong)."""
        return self.win_rate >= self.threshold

    @property
    def model(self) -> Side:
        return "strong" if self.strong else "weak"


def decide(win_rate: float, threshold: float) -> Decision:
    """Turn one win rate into a decision; kept as a function so wrappers and the CLI share the rule."""
    return Decision(float(win_rate), float(threshold))


def check_threshold(threshold: float) -> float:
    """Validate a threshold: a finite number in [0, 1] (1 sends only certain wins to strong, 0 sends all)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return float(threshold)


def check_strong_fraction(fraction: float) -> float:
    """Validate a target share of strong calls: a finite number in [0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float | np.floating):
        raise ValueError(f"strong_fraction must be a number in [0, 1], got {fraction!r}")
    if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"strong_fraction must be in [0, 1], got {fraction!r}")
    return float(fraction)


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Accept a sequence of strings (not a bare string); name the first offending item otherwise."""
    if isinstance(prompts, str | bytes):
        raise TypeError("prompts must be a sequence of strings, not a single string; wrap it in a list")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(p).__name__}")
    return out


class Router(ABC):
    """A router estimates, per prompt, the probability that the strong model's answer beats the weak one's.

    Subclasses implement `_win_rate` on a list of strings; `win_rate` validates the input and output so every
    router returns a float64 array in [0, 1] of the same length. `reference_win_rates`, when set, is a sorted
    sample of the router's win rates on a reference prompt set (Arena prompts for the bundled routers): it turns
    a target share of strong calls into a threshold without any data on the user's side.
    """

    name: ClassVar[str] = "router"
    reference_win_rates: np.ndarray | None = None

    @abstractmethod
    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        """Win rates for a validated, non-empty list of prompts."""

    def win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """Strong-win rates in [0, 1], one per prompt, as float64."""
        items = check_prompts(prompts)
        if not items:
            return np.zeros(0, dtype=np.float64)
        rates = np.asarray(self._win_rate(items), dtype=np.float64).reshape(-1)
        if rates.shape[0] != len(items):
            raise RuntimeError(f"{type(self).__name__} returned {rates.shape[0]} win rates for {len(items)} prompts")
        if np.isnan(rates).any():
            raise RuntimeError(f"{type(self).__name__} returned NaN win rates")
        return np.clip(rates, 0.0, 1.0)

    def route(self, prompts: Sequence[str], threshold: float) -> list[Decision]:
        """Decisions for a batch: strong iff win_rate >= threshold."""
        t = check_threshold(threshold)
        return [Decision(float(w), t) for w in self.win_rate(prompts)]

    def threshold_for_strong_fraction(self, fraction: float) -> float:
        """The threshold that sends about `fraction` of reference prompts to the strong model."""
        from routing_core.calibration import threshold_for_strong_fraction

        f = check_strong_fraction(fraction)
        if self.reference_win_rates is None or len(self.reference_win_rates) == 0:
            raise ValueError(
                f"router {self.name!r} has no reference win rates to turn strong_fraction into a threshold; "
                "pass an explicit threshold or calibrate it with `routing-core calibrate --prompts FILE`"
            )
        return threshold_for_strong_fraction(self.reference_win_rates, f)

    def describe(self) -> dict[str, Any]:
        """A small JSON-able description used in metadata, model cards and logs."""
        return {"router": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
