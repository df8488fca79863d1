"""The paper's routing metrics (PGR, APGR, CPT) computed as its code does, plus sturdier variants.

Paper: thresholds at the 11 decile edges of the router's win rates on the benchmark (strong iff win_rate >=
edge, the top edge with `>` so 0% strong is reached), PGR = (quality - weak) / (strong - weak), APGR the
trapezoid area under PGR against the share of strong calls, CPT(x%) the share of strong calls at which PGR
first reaches x, by linear interpolation. Better versions: the full curve over every distinct threshold, CPT
from the monotone upper hull (what mixing two thresholds can reach), bootstrap 95% intervals, and the random
and oracle references. Tied win rates work everywhere (the paper's pandas.qcut raises on them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from routing_core.policy import prefers_strong

CPT_TARGETS: tuple[float, ...] = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class Curve:
    """Quality against the share of strong calls (both arrays sorted by share, share in [0, 1])."""

    share: np.ndarray
    quality: np.ndarray
    thresholds: np.ndarray


def _arrays(win_rates: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> tuple[np.ndarray, ...]:
    w = np.asarray(win_rates, dtype=np.float64).reshape(-1)
    s = np.asarray(strong, dtype=np.float64).reshape(-1)
    k = np.asarray(weak, dtype=np.float64).reshape(-1)
    if not (w.size == s.size == k.size):
        raise ValueError(
            f"win_rates, strong and weak must have the same length ({w.size}, {s.size}, {k.size})"
        )
    if w.size == 0:
        raise ValueError("cannot evaluate a router on an empty benchmark")
    for name, a in (("win_rates", w), ("strong", s), ("weak", k)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(
                f"{name} holds NaN or infinite values (first at item {int(bad[0])}): metrics would be NaN"
            )
    return w, s, k


def _sorted_curve(share: np.ndarray, quality: np.ndarray, thresholds: np.ndarray) -> Curve:
    order = np.lexsort((quality, share))
    return Curve(share[order], quality[order], thresholds[order])


def paper_curve(win_rates: ArrayLike, strong: ArrayLike, weak: ArrayLike, bins: int = 10) -> Curve:
    """The paper's 11-point curve: thresholds at the decile edges of the win rates (linear quantiles)."""
    w, s, k = _arrays(win_rates, strong, weak)
    edges = np.quantile(w, np.linspace(0.0, 1.0, bins + 1))
    shares, quals = [], []
    rates: Any = w  # prefers_strong is written for floats and works elementwise on arrays
    for i, t in enumerate(edges):
        # the routing rule (strong iff win_rate >= t); the top edge is strict so 0% strong is reached
        sel: np.ndarray = w > t if i == len(edges) - 1 else np.asarray(prefers_strong(rates, float(t)))
        shares.append(sel.mean())
        quals.append(np.where(sel, s, k).mean())
    return _sorted_curve(np.array(shares), np.array(quals), edges)


def full_curve(win_rates: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> Curve:
    """One point per distinct threshold (plus 0% strong): the exact trade-off the router offers."""
    w, s, k = _arrays(win_rates, strong, weak)
    n = w.size
    order = np.argsort(-w, kind="stable")
    ws, gain = w[order], (s - k)[order]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    # cut after the last item of each run of equal win rates: all ties go the same way
    ends = np.flatnonzero(np.diff(ws) != 0) + 1
    cuts = np.concatenate([[0], ends, [n]])
    share = cuts / n
    quality = (k.sum() + cum[cuts]) / n
    thresholds = np.concatenate([[np.nextafter(ws[0], np.inf)], ws[cuts[1:] - 1]])
    return Curve(share, quality, thresholds)


def oracle_curve(strong: ArrayLike, weak: ArrayLike) -> Curve:
    """The best possible router: strong calls go first where the strong model gains the most."""
    s = np.asarray(strong, dtype=np.float64)
    k = np.asarray(weak, dtype=np.float64)
    return full_curve(s - k, s, k)


def pgr(quality: np.ndarray | float, strong_score: float, weak_score: float) -> np.ndarray:
    """Performance gap recovered: 0 at the weak model's quality, 1 at the strong model's."""
    gap = strong_score - weak_score
    if gap == 0:
        return np.full_like(np.asarray(quality, dtype=np.float64), np.nan)
    return (np.asarray(quality, dtype=np.float64) - weak_score) / gap


def apgr(curve: Curve, strong_score: float, weak_score: float) -> float:
    """Average PGR: trapezoid area under PGR over the share of strong calls."""
    y = pgr(curve.quality, strong_score, weak_score)
    return float(np.sum((curve.share[1:] - curve.share[:-1]) * (y[1:] + y[:-1]) / 2.0))


def cpt(curve: Curve, target: float, strong_score: float, weak_score: float) -> float:
    """Share of strong calls where PGR first reaches `target`, interpolating linearly (the paper's CPT)."""
    y = pgr(curve.quality, strong_score, weak_score)
    x = curve.share
    hit = np.flatnonzero(y >= target - 1e-12)
    if hit.size == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x1 if y1 == y0 else x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def upper_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The monotone upper hull: concave envelope of the points (reachable by mixing two thresholds), made
    non-decreasing (more strong calls never has to cost quality)."""
    pts = sorted(zip(x.tolist(), y.tolist(), strict=True))
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] is on or below the chord
                hull.pop()
            else:
                break
        if hull and hull[-1][0] == p[0]:
            hull[-1] = (p[0], max(hull[-1][1], p[1]))
        else:
            hull.append(p)
    hx = np.array([h[0] for h in hull])
    hy = np.maximum.accumulate(np.array([h[1] for h in hull]))
    return hx, hy


def cpt_hull(curve: Curve, target: float, strong_score: float, weak_score: float) -> float:
    """CPT on the monotone upper hull of the curve: never above the interpolated CPT."""
    hx, hy = upper_hull(curve.share, curve.quality)
    return cpt(Curve(hx, hy, np.zeros_like(hx)), target, strong_score, weak_score)


def _summary(curve: Curve, s_score: float, w_score: float, hull: bool) -> dict[str, Any]:
    f = cpt_hull if hull else cpt
    return {
        "apgr": apgr(curve, s_score, w_score),
        "cpt": {str(int(t * 100)): f(curve, t, s_score, w_score) for t in CPT_TARGETS},
    }


@dataclass
class RoutingMetrics:
    """Everything `routing-core eval` reports for one router on one benchmark."""

    n: int
    strong_score: float
    weak_score: float
    apgr: float
    cpt: dict[str, float]
    full: dict[str, Any]
    hull_cpt: dict[str, float]
    oracle: dict[str, Any]
    random: dict[str, Any]
    intervals: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "curves"}
        d["curves"] = {
            name: {"share": c.share.tolist(), "quality": c.quality.tolist()}
            for name, c in self.curves.items()
        }
        return d


def _bootstrap(w: np.ndarray, s: np.ndarray, k: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    keys = (
        ["apgr", "full_apgr"]
        + [f"cpt_{int(t * 100)}" for t in CPT_TARGETS]
        + [f"hull_cpt_{int(t * 100)}" for t in CPT_TARGETS]
    )
    samples: dict[str, list[float]] = {key: [] for key in keys}
    n = w.size
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        ws, ss, ks = w[idx], s[idx], k[idx]
        s_score, w_score = ss.mean(), ks.mean()
        if s_score == w_score:
            continue
        pc = paper_curve(ws, ss, ks)
        fc = full_curve(ws, ss, ks)
        samples["apgr"].append(apgr(pc, s_score, w_score))
        samples["full_apgr"].append(apgr(fc, s_score, w_score))
        for t in CPT_TARGETS:
            samples[f"cpt_{int(t * 100)}"].append(cpt(pc, t, s_score, w_score))
            samples[f"hull_cpt_{int(t * 100)}"].append(cpt_hull(fc, t, s_score, w_score))
    out: dict[str, Any] = {"n_boot": n_boot, "level": 0.95}
    for key, vals in samples.items():
        v = np.array(vals, dtype=np.float64)
        v = v[~np.isnan(v)]
        out[key] = (
            [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))] if v.size else [float("nan")] * 2
        )
    return out


def evaluate_win_rates(
    win_rates: ArrayLike,
    strong: ArrayLike,
    weak: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
) -> RoutingMetrics:
    """Paper metrics, full-curve and hull variants, references, and bootstrap 95% intervals."""
    w, s, k = _arrays(win_rates, strong, weak)
    s_score, w_score = float(s.mean()), float(k.mean())
    if s_score == w_score:
        raise ValueError("the strong and weak models score the same on this benchmark: PGR is undefined")
    pc, fc, oc = paper_curve(w, s, k), full_curve(w, s, k), oracle_curve(s, k)
    paper = _summary(pc, s_score, w_score, hull=False)
    full = _summary(fc, s_score, w_score, hull=False)
    rand = Curve(np.array([0.0, 1.0]), np.array([w_score, s_score]), np.array([1.0, 0.0]))
    return RoutingMetrics(
        n=int(w.size),
        strong_score=s_score,
        weak_score=w_score,
        apgr=paper["apgr"],
        cpt=paper["cpt"],
        full=full,
        hull_cpt=_summary(fc, s_score, w_score, hull=True)["cpt"],
        oracle=_summary(oc, s_score, w_score, hull=True),
        random=_summary(rand, s_score, w_score, hull=False),
        intervals=_bootstrap(w, s, k, n_boot, seed) if n_boot > 0 else {},
        curves={"paper": pc, "full": fc, "oracle": oc, "random": rand},
    )
