"""Thresholds from a target share of strong calls, and probability calibration of raw router scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routing_core.validation import check_strong_fraction


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


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    w: np.ndarray | None = None,
    iters: int = 50,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted L2-regularised logistic regression with soft targets, by Newton's method.

    Returns the coefficients with the bias last (the bias is barely regularised); `offset` is a fixed term added
    to the logit (e.g. a slope held constant). The one Newton solver of the package: Platt scaling and the
    linear routers both use it.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=np.float64)
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, float(l2))
    reg[-1] = 1e-6
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(Xb @ theta + off, -30, 30)))
        g = Xb.T @ (w * (p - y)) + reg * theta
        H = (Xb * (w * p * (1 - p))[:, None]).T @ Xb + np.diag(reg)
        step = np.linalg.solve(H, g)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta


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
        if x.size == 0:
            raise ValueError("cannot fit a calibrator on zero examples")
        a, b = fit_logistic(x[:, None], y, l2=1e-3, w=weights)
        if a < 1e-3:
            # calibration must keep the router's order: refit the intercept with a small positive slope
            a = 1e-3
            (b,) = fit_logistic(np.zeros((x.size, 0)), y, l2=1e-3, w=weights, offset=a * x)
        self.a, self.b = float(a), float(b)
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
