"""Router x benchmark -> metrics: decontamination, (averaged) win rates, the paper's table, and plots."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.data.records import Benchmark
from routing_core.embedders import Embedder
from routing_core.metrics import RoutingMetrics, evaluate_win_rates
from routing_core.router import Router

DECONTAMINATION_COSINE = 0.95


def max_cosine(queries: np.ndarray, keys: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """For each row of `queries`, the largest cosine with any row of `keys` (both L2-normalised)."""
    if keys.shape[0] == 0:
        return np.full(queries.shape[0], -1.0, dtype=np.float32)
    out = np.empty(queries.shape[0], dtype=np.float32)
    for i in range(0, queries.shape[0], chunk):
        out[i : i + chunk] = (queries[i : i + chunk] @ keys.T).max(axis=1)
    return out


def decontaminate(
    bench: Benchmark,
    train_prompts: Sequence[str],
    embedder: Embedder,
    threshold: float = DECONTAMINATION_COSINE,
) -> Benchmark:
    """Drop benchmark prompts whose embedding has cosine >= `threshold` with any training prompt (paper rule)."""
    reason = f"cosine>={threshold:g} with training"
    if not train_prompts:
        return bench.subset([True] * len(bench), reason)
    sims = max_cosine(embedder.embed(bench.prompts), embedder.embed(list(train_prompts)))
    return bench.subset((sims < threshold).tolist(), reason)


@dataclass
class EvalResult:
    """One router on one benchmark: metrics plus what was dropped before evaluation."""

    router: str
    benchmark: str
    metrics: RoutingMetrics
    dropped: dict[str, int] = field(default_factory=dict)
    repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        d = self.metrics.to_dict()
        return {
            "router": self.router,
            "benchmark": self.benchmark,
            "dropped": self.dropped,
            "repeats": self.repeats,
            **d,
        }


def router_win_rates(
    router: Router,
    prompts: Sequence[str],
    batch_size: int = 256,
    progress: bool = False,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """Win rates over many prompts in batches, with an optional progress bar. With `embed` (e.g. an on-disk
    embedding cache), embedding routers reuse those vectors instead of embedding again."""
    from tqdm.auto import tqdm

    if (
        embed is not None
        and getattr(router, "uses_embeddings", False)
        and hasattr(router, "win_rate_from_embeddings")
    ):
        return router.win_rate_from_embeddings(list(prompts), embed(list(prompts)))

    out = []
    steps = range(0, len(prompts), batch_size)
    for i in tqdm(
        steps,
        desc=f"routing ({router.name})",
        disable=not progress or len(prompts) <= batch_size,
        leave=False,
    ):
        out.append(router.win_rate(list(prompts[i : i + batch_size])))
    return np.concatenate(out) if out else np.zeros(0)


def evaluate_router(
    router: Router,
    bench: Benchmark,
    n_boot: int = 1000,
    repeats: int | None = None,
    progress: bool = False,
    seed: int = 0,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> EvalResult:
    """Evaluate on a benchmark. A stochastic router (e.g. random) is scored as the mean over `repeats` seeds,
    its expected performance, rather than one draw (default 10 repeats for such routers)."""
    strong = [it.strong for it in bench.items]
    weak = [it.weak for it in bench.items]
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1):
        raise ValueError(f"repeats must be an integer >= 1 (or None for the default of 10), got {repeats!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    stochastic = getattr(router, "stochastic", False)
    reps = (10 if repeats is None else repeats) if stochastic else 1
    runs: list[RoutingMetrics] = []
    for r in range(reps):
        rt = router.reseeded(seed + r) if stochastic else router  # type: ignore[attr-defined]
        wr = router_win_rates(rt, bench.prompts, progress=progress and r == 0 and not stochastic, embed=embed)
        runs.append(evaluate_win_rates(wr, strong, weak, n_boot=n_boot if r == 0 else 0, seed=seed))
    metrics = runs[0]
    if reps > 1:
        metrics.apgr = float(np.mean([m.apgr for m in runs]))
        metrics.cpt = {k: float(np.mean([m.cpt[k] for m in runs])) for k in metrics.cpt}
        metrics.hull_cpt = {k: float(np.mean([m.hull_cpt[k] for m in runs])) for k in metrics.hull_cpt}
        metrics.full = {
            "apgr": float(np.mean([m.full["apgr"] for m in runs])),
            "cpt": {k: float(np.mean([m.full["cpt"][k] for m in runs])) for k in metrics.full["cpt"]},
        }
    return EvalResult(router.name, bench.name, metrics, dict(bench.dropped), reps)


def format_table(results: Sequence[EvalResult]) -> str:
    """The paper's table: APGR and CPT at 20/50/80% with 95% intervals, plus the hull CPT(50%)."""
    head = f"{'router':<16} {'benchmark':<12} {'n':>6} {'APGR':>7} {'95% CI':>15} {'CPT(20%)':>9} {'CPT(50%)':>9} {'CPT(80%)':>9} {'hull50':>7} {'fullAPGR':>9}"
    lines = [head, "-" * len(head)]

    def pct(x: float) -> str:
        return "   n/a" if x != x else f"{100 * x:6.1f}%"

    for r in results:
        m = r.metrics
        ci = m.intervals.get("apgr")
        ci_s = f"[{ci[0]:.3f},{ci[1]:.3f}]" if ci else "-"
        lines.append(
            f"{r.router:<16} {r.benchmark:<12} {m.n:>6} {m.apgr:>7.3f} {ci_s:>15} {pct(m.cpt['20']):>9} {pct(m.cpt['50']):>9} "
            f"{pct(m.cpt['80']):>9} {pct(m.hull_cpt['50']):>7} {m.full['apgr']:>9.3f}"
        )
    if results:
        m = results[0].metrics
        lines.append(
            f"strong={m.strong_score * 100:.2f}  weak={m.weak_score * 100:.2f}  oracle APGR={m.oracle['apgr']:.3f}  "
            f"random APGR={m.random['apgr']:.3f}"
        )
    return "\n".join(lines)


def plot_results(results: Sequence[EvalResult], out_path: str | Path, title: str | None = None) -> None:
    """Quality against % strong calls for each router, with the random line and the oracle.

    The format follows the file suffix (png, pdf, svg; png without one); written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    m0 = results[0].metrics
    for name, style in (("random", "k--"), ("oracle", "k:")):
        c = m0.curves[name]
        ax.plot(100 * c.share, 100 * c.quality, style, label=name, linewidth=1)
    for r in results:
        c = r.metrics.curves["full"]
        ax.plot(
            100 * c.share, 100 * c.quality, label=f"{r.router} (APGR {r.metrics.apgr:.3f})", linewidth=1.3
        )
    ax.axhline(100 * m0.strong_score, color="grey", linewidth=0.6)
    ax.axhline(100 * m0.weak_score, color="grey", linewidth=0.6)
    ax.set_xlabel("% calls to the strong model")
    ax.set_ylabel("quality (%)")
    ax.set_title(title or results[0].benchmark)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from routing_core.atomic import atomic_write

    fmt = Path(out_path).suffix.lower().lstrip(".") or "png"
    try:
        atomic_write(out_path, lambda tmp: fig.savefig(tmp, dpi=110, format=fmt))
    finally:
        plt.close(fig)
