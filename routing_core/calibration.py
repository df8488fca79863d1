"""Thresholds from a target share of strong calls, and probability calibration of raw router scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routing_core.router import check_strong_fraction


def threshold_for_strong_fraction(win_rates: Sequence[float] | np.ndarray, fraction: float) -> float:
    """The threshold t such that about `fraction` of `win_rates` satisfy win_rate >= t.

    0 gives a threshold just above the largest win rate (no strong call on the sample), 1 gives 0.0 (all strong).
    """
    f = check_strong_fraction(fraction)
    r = np.sort(np.asarray(win_rates, dtype=np.float64).reshape(-1))
    if r.size == 0:
        raise ValueError("cannot calibrate a threshold on an empty sample of win rates")
    if f >= 1.0:
        return 0.0
    if f <= 0.0:
        return float(min(1.0, np.nextafter(r[-1], np.inf)))
    # the k largest go strong; the threshold is the k-th largest value
    k = max(1, int(round(f * r.size)))
    return float(r[r.size - k])


def reference_quantiles(win_rates: Sequence[float] | np.ndarray, n: int = 1001) -> np.ndarray:
    """A compact, sorted summary of a win-rate sample (what bundled checkpoints store for calibration)."""
    r = np.asarray(win_rates, dtype=np.float64).reshape(-1)
    if r.size <= n:
        return np.sort(r)
    return np.quantile(r, np.linspace(0.0, 1.0, n))


class PlattScaler:
    """Logistic calibration p = sigmoid(a * logit(s) + b), fitted by Newton's method on validation labels.

    The slope is kept positive so calibration never reverses the router's order (it only moves thresholds).
    """

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self.a = float(a)
        self.b = float(b)

    @staticmethod
    def _logit(s: np.ndarray) -> np.ndarray:
        s = np.clip(np.asarray(s, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(s / (1 - s))

    def fit(self, scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> PlattScaler:
        """Fit on raw scores in [0, 1] and targets in [0, 1] (ties may be 0.5), optionally weighted."""
        x = self._logit(scores)
        y = np.asarray(labels, dtype=np.float64)
        w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
        if x.size == 0:
            raise ValueError("cannot fit a calibrator on zero examples")
        X = np.stack([x, np.ones_like(x)], axis=1)
        theta = np.array([1.0, 0.0])
        for _ in range(50):
            p = 1 / (1 + np.exp(-np.clip(X @ theta, -30, 30)))
            g = X.T @ (w * (p - y)) + 1e-3 * theta
            H = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-3 * np.eye(2)
            step = np.linalg.solve(H, g)
            theta -= step
            if np.abs(step).max() < 1e-8:
                break
        if theta[0] < 1e-3:
            # calibration must keep the router's order: refit the intercept with a small positive slope
            theta[0] = 1e-3
            for _ in range(50):
                p = 1 / (1 + np.exp(-np.clip(X @ theta, -30, 30)))
                g = float(np.sum(w * (p - y)))
                h = float(np.sum(w * p * (1 - p))) + 1e-6
                theta[1] -= g / h
                if abs(g / h) < 1e-9:
                    break
        self.a, self.b = float(theta[0]), float(theta[1])
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        z = self.a * self._logit(scores) + self.b
        return 1 / (1 + np.exp(-z))

    def to_dict(self) -> dict[str, float | str]:
        return {"kind": "platt", "a": self.a, "b": self.b}


def calibrator_from_dict(d: dict | None) -> PlattScaler | None:
    """Rebuild a calibrator stored in a checkpoint config (None when the checkpoint has none)."""
    if not d:
        return None
    if d.get("kind") != "platt":
        raise ValueError(f"unknown calibrator kind {d.get('kind')!r}")
    return PlattScaler(float(d["a"]), float(d["b"]))
