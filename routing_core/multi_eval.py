"""Quality-cost evaluation of N-model routing on a `MultiTable`: curve, singles, oracle, hull, AIQ.

The router's curve sweeps the cost-aware policy's λ (`routing_core.cost_policy`) from "best predicted quality"
to "cheapest"; each point is the realised mean quality and mean recorded cost on the benchmark. Reported beside
it: each single model's point, the oracle (per prompt, the cheapest model with the best realised score), the
non-decreasing upper convex hull of the curve (mixing two λ settings reaches any point on a chord), its area
normalised by the cost range of the single models (RouterBench's AIQ), and the cheapest cost at which the hull
reaches the best single model's quality (None when it never does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.cost_policy import _LAMBDA_GRID, choose_by_lambda, choose_cheapest
from routing_core.data.multi import MultiTable
from routing_core.metrics import upper_hull


def hull_quality_at(hx: np.ndarray, hy: np.ndarray, cost: float) -> float:
    """Quality of the hull at `cost`: flat right of its last point (spending more never has to lose quality),
    NaN left of its first (the router cannot spend less than its cheapest point)."""
    if cost <= hx[0]:
        return float(hy[0]) if cost == hx[0] else float("nan")
    return float(np.interp(cost, hx, hy))


def aiq(hx: np.ndarray, hy: np.ndarray, lo: float, hi: float) -> float:
    """Area under the hull over [lo, hi] divided by (hi - lo); the hull is flat beyond its ends."""
    if hi <= lo:
        return float(hy[-1])
    xs = np.concatenate([[lo], hx[(hx > lo) & (hx < hi)], [hi]])
    ys = np.interp(xs, hx, hy)  # np.interp is flat outside [hx[0], hx[-1]]
    return float(np.trapezoid(ys, xs) / (hi - lo))


def cost_to_reach(hx: np.ndarray, hy: np.ndarray, quality: float) -> float | None:
    """The least cost at which the hull reaches `quality` (linear between hull points), None if never."""
    if hy[-1] < quality - 1e-12:
        return None
    i = int(np.argmax(hy >= quality - 1e-12))
    if i == 0:
        return float(hx[0])
    x0, x1, y0, y1 = hx[i - 1], hx[i], hy[i - 1], hy[i]
    return float(x0 + (quality - y0) * (x1 - x0) / (y1 - y0)) if y1 > y0 else float(x1)


@dataclass
class MultiResult:
    """One router on one multi-model benchmark."""

    router: str
    benchmark: str
    n: int
    curve: list[dict[str, Any]]
    singles: list[dict[str, Any]]
    oracle: dict[str, float]
    hull: list[dict[str, float]]
    aiq: float
    cost_at_best_single_quality: float | None
    best_single: dict[str, Any]
    beats_single_at_equal_cost: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "benchmark": self.benchmark,
            "n": self.n,
            "curve": self.curve,
            "singles": self.singles,
            "oracle": self.oracle,
            "hull": self.hull,
            "aiq": self.aiq,
            "cost_at_best_single_quality": self.cost_at_best_single_quality,
            "best_single": self.best_single,
            "beats_single_at_equal_cost": self.beats_single_at_equal_cost,
        }


def evaluate_predictions(
    name: str,
    table: MultiTable,
    predicted_quality: np.ndarray,
    predicted_cost: np.ndarray,
    lambdas: Sequence[float] | None = None,
) -> MultiResult:
    """The curve and its summaries for given predictions (columns in `table.models` order)."""
    q_true, c_true = table.quality, table.cost
    if np.isnan(q_true).any() or np.isnan(c_true).any():
        raise ValueError(
            f"{table.name}: every model needs a score and a cost on every row (use table.complete())"
        )
    rows = np.arange(len(table))
    grid = np.asarray(lambdas if lambdas is not None else _LAMBDA_GRID, dtype=np.float64)
    curve: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for lam in [*grid.tolist(), float("inf")]:
        if np.isinf(lam):
            pick = choose_cheapest(predicted_quality, predicted_cost)
        else:
            pick = choose_by_lambda(predicted_quality, predicted_cost, lam)
        key = pick.tobytes()
        if key in seen:
            continue
        seen.add(key)
        curve.append(
            {
                "lambda": lam if np.isfinite(lam) else None,
                "cost": float(c_true[rows, pick].mean()),
                "quality": float(q_true[rows, pick].mean()),
            }
        )
    singles: list[dict[str, Any]] = [
        {"model": m, "quality": float(q_true[:, j].mean()), "cost": float(c_true[:, j].mean())}
        for j, m in enumerate(table.models)
    ]
    best_q = q_true.max(axis=1, keepdims=True)
    oracle_pick = np.argmin(np.where(q_true >= best_q, c_true, np.inf), axis=1)
    oracle = {"quality": float(best_q.mean()), "cost": float(c_true[rows, oracle_pick].mean())}
    hx, hy = upper_hull(np.array([p["cost"] for p in curve]), np.array([p["quality"] for p in curve]))
    lo, hi = min(s["cost"] for s in singles), max(s["cost"] for s in singles)
    best = max(singles, key=lambda s: (s["quality"], -s["cost"]))
    beats: dict[str, float] = {}
    for s in singles:
        at = hull_quality_at(hx, hy, s["cost"])
        if np.isfinite(at):
            beats[s["model"]] = round(at - s["quality"], 6)
    return MultiResult(
        router=name,
        benchmark=table.name,
        n=len(table),
        curve=sorted(curve, key=lambda p: p["cost"]),
        singles=singles,
        oracle=oracle,
        hull=[{"cost": float(x), "quality": float(y)} for x, y in zip(hx, hy, strict=True)],
        aiq=aiq(hx, hy, lo, hi),
        cost_at_best_single_quality=cost_to_reach(hx, hy, best["quality"]),
        best_single=best,
        beats_single_at_equal_cost=beats,
    )


def evaluate_multi(
    router: Any,
    table: MultiTable,
    name: str | None = None,
    embeddings: np.ndarray | None = None,
    costs: Mapping[str, float] | None = None,
    prices: Any = None,
    model_map: Mapping[str, str] | None = None,
) -> MultiResult:
    """A multi-model router on a benchmark: predictions through `CostAwarePolicy` (so the choice is made the way
    the wrappers make it), realised quality and cost from the table. The policy prices calls with `costs`/`prices`
    when given, else the router's cost lines learned from the training split's recorded costs, else (a model the
    router has no cost for) the model's mean recorded cost in the table, a flat price per call. No default list
    prices: they would mix two cost models on one curve."""
    from routing_core.cost_policy import CostAwarePolicy
    from routing_core.costs import PriceTable

    if prices is None:
        prices = PriceTable({}, include_defaults=False)
    ok = ~np.isnan(table.quality).any(axis=1) & ~np.isnan(table.cost).any(axis=1)
    table = table.subset(ok)
    if embeddings is not None:
        embeddings = np.asarray(embeddings)[ok]
    costs = dict(costs or {})
    for j, m in enumerate(table.models):  # a model with no price anywhere: its mean recorded cost in the file
        if m in costs:
            continue
        try:
            learned = router.learned_cost(router.model_index(m, model_map), np.array([100.0]))
        except Exception:  # noqa: BLE001 - an unknown model is reported by the policy below
            learned = None
        if learned is None and prices.get(m) is None:
            costs[m] = float(table.cost[:, j].mean())
    policy = CostAwarePolicy(
        router, {m: m for m in table.models}, lam=0.0, costs=costs, prices=prices, model_map=model_map
    )
    q, c = policy.score_many(table.prompts, embeddings)
    return evaluate_predictions(name or router.name, table, q, c)


def format_multi_table(results: Sequence[MultiResult]) -> str:
    """A markdown table: AIQ, cost to reach the best single model, quality at that model's cost, best point."""
    lines = [
        "| router | benchmark | AIQ | cost to reach best single (x its cost) | quality at best single's cost | "
        "max quality (cost) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        bs = r.best_single
        reach = r.cost_at_best_single_quality
        ratio = f" ({reach / bs['cost']:.2f}x)" if reach is not None and bs["cost"] > 0 else ""
        reach_s = "never" if reach is None else f"${reach * 1e3:.3f}e-3{ratio}"
        top = max(r.curve, key=lambda p: (p["quality"], -p["cost"]))
        at = r.beats_single_at_equal_cost.get(bs["model"])
        at_s = "-" if at is None else f"{bs['quality'] + at:.3f} ({at:+.3f})"
        lines.append(
            f"| {r.router} | {r.benchmark} | {r.aiq:.4f} | {reach_s} | {at_s} | "
            f"{top['quality']:.3f} (${top['cost'] * 1e3:.3f}e-3) |"
        )
    return "\n".join(lines)


def plot_multi(results: Sequence[MultiResult], out_path: str | Path, title: str | None = None) -> None:
    """Quality vs cost: each router's hull, the single models and the oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for r in results:
        ax.plot(
            [p["cost"] for p in r.hull],
            [p["quality"] for p in r.hull],
            marker=".",
            label=f"{r.router} (AIQ {r.aiq:.3f})",
        )
    if results:
        r0 = results[0]
        for s in r0.singles:
            ax.scatter([s["cost"]], [s["quality"]], marker="x", color="grey")
            ax.annotate(s["model"].split("/")[-1][:18], (s["cost"], s["quality"]), fontsize=6)
        ax.scatter([r0.oracle["cost"]], [r0.oracle["quality"]], marker="*", color="black", label="oracle")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title(title or (results[0].benchmark if results else ""))
    ax.legend(fontsize=7)
    fig.tight_layout()
    from routing_core.atomic import atomic_write

    atomic_write(out_path, lambda p: fig.savefig(p, format=Path(out_path).suffix.lstrip(".") or "png"))
    plt.close(fig)


__all__ = [
    "MultiResult",
    "aiq",
    "cost_to_reach",
    "evaluate_multi",
    "evaluate_predictions",
    "format_multi_table",
    "plot_multi",
]
