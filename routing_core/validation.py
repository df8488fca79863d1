"""Input validators shared by routers, the policy, calibration and the wrappers (a leaf: imports no package module).

Every check returns the cleaned value or raises a `ValueError`/`TypeError` whose message names the argument and
what was wrong, so bad input fails at the boundary instead of deep inside numpy or torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SIDES: tuple[str, str] = ("strong", "weak")


def _unit_interval(value: Any, what: str) -> float:
    """A finite real number in [0, 1] (bools rejected: `True` is not a threshold)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return float(value)


def check_threshold(threshold: Any) -> float:
    """Validate a threshold: a finite number in [0, 1] (1 sends only certain wins to strong, 0 sends all)."""
    return _unit_interval(threshold, "threshold")


def check_strong_fraction(fraction: Any) -> float:
    """Validate a target share of strong calls: a finite number in [0, 1]."""
    return _unit_interval(fraction, "strong_fraction")


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Accept a sequence of strings (not a bare string); name the first offending item otherwise."""
    if isinstance(prompts, str | bytes):
        raise TypeError("prompts must be a sequence of strings, not a single string; wrap it in a list")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(p).__name__}")
    return out


def check_side(value: Any, what: str = "side", sides: Sequence[str] = SIDES) -> str:
    """Validate a side name (`"strong"` or `"weak"` for two models; the model keys for more)."""
    if not isinstance(value, str) or value not in sides:
        raise ValueError(f"{what} must be one of {', '.join(repr(s) for s in sides)}, got {value!r}")
    return value
