from __future__ import annotations

import numpy as np
import pytest

from routing_core.metrics import (
    Curve,
    apgr,
    cpt,
    cpt_hull,
    evaluate_win_rates,
    full_curve,
    oracle_curve,
    paper_curve,
    upper_hull,
)

# four prompts: strong gains +1, 0, -1, +1 over weak, in order of decreasing win rate
W = [0.9, 0.8, 0.7, 0.6]
S = [1, 1, 0, 1]
K = [0, 1, 1, 0]


def test_full_curve_by_hand() -> None:
    c = full_curve(W, S, K)
    np.testing.assert_allclose(c.share, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(c.quality, [0.5, 0.75, 0.75, 0.5, 0.75])
    # PGR = [0, 1, 1, 0, 1]; trapezoid = .125 + .25 + .125 + .125
    assert apgr(c, 0.75, 0.5) == pytest.approx(0.625)
    assert cpt(c, 0.5, 0.75, 0.5) == pytest.approx(0.125)


def test_paper_curve_uses_decile_edges_and_reaches_zero_and_all() -> None:
    rng = np.random.default_rng(0)
    w = rng.random(1000)
    s = rng.integers(0, 2, 1000)
    k = rng.integers(0, 2, 1000)
    c = paper_curve(w, s, k)
    assert len(c.share) == 11
    assert c.share[0] == 0 and c.share[-1] == 1
    np.testing.assert_allclose(c.share, np.linspace(0, 1, 11), atol=0.002)
    assert c.quality[0] == pytest.approx(np.mean(k)) and c.quality[-1] == pytest.approx(np.mean(s))


def test_non_monotone_curve_interpolated_and_hull_cpt_differ() -> None:
    # PGR 0, .6, .3, 1 at shares 0, 1/3, 2/3, 1 (strong=1, weak=0 so quality == PGR)
    c = Curve(np.array([0, 1 / 3, 2 / 3, 1]), np.array([0, 0.6, 0.3, 1.0]), np.zeros(4))
    # interpolated: first reaches .8 between (2/3, .3) and (1, 1)
    assert cpt(c, 0.8, 1.0, 0.0) == pytest.approx(2 / 3 + 0.5 / 0.7 / 3)
    # hull: (0,0) (1/3,.6) (1,1); .8 is reached at 2/3
    assert cpt_hull(c, 0.8, 1.0, 0.0) == pytest.approx(2 / 3)
    hx, hy = upper_hull(c.share, c.quality)
    np.testing.assert_allclose(hx, [0, 1 / 3, 1])
    assert np.all(np.diff(hy) >= 0)
    assert cpt(c, 0.5, 1.0, 0.0) == pytest.approx(0.5 / 0.6 / 3)


def test_many_tied_win_rates() -> None:
    w = [0.5] * 10 + [0.2] * 10
    s = [1] * 10 + [0] * 10
    k = [0] * 20
    pc = paper_curve(w, s, k)  # pandas.qcut would raise on these duplicate edges
    assert pc.share[0] == 0 and pc.share[-1] == 1
    fc = full_curve(w, s, k)
    np.testing.assert_allclose(fc.share, [0, 0.5, 1.0])  # ties move together
    np.testing.assert_allclose(fc.quality, [0, 0.5, 0.5])
    all_tied = evaluate_win_rates([0.3] * 8, [1, 0] * 4, [0] * 8, n_boot=20)
    assert all_tied.apgr == pytest.approx(0.5)  # one step from 0% to 100%: the random line


def test_oracle_and_random_references() -> None:
    m = evaluate_win_rates(W, S, K, n_boot=50)
    assert m.random["apgr"] == pytest.approx(0.5)
    assert m.random["cpt"]["50"] == pytest.approx(0.5)
    oc = oracle_curve(S, K)
    assert oc.quality.max() == pytest.approx(1.0)  # both +1 gains taken, the -1 avoided
    assert m.oracle["apgr"] >= m.full["apgr"]
    lo, hi = m.intervals["apgr"]
    assert lo <= hi


def test_equal_models_and_bad_lengths() -> None:
    with pytest.raises(ValueError, match="PGR is undefined"):
        evaluate_win_rates([0.1, 0.2], [1, 0], [1, 0])
    with pytest.raises(ValueError, match="same length"):
        evaluate_win_rates([0.1], [1, 0], [1, 0])
    with pytest.raises(ValueError, match="empty"):
        evaluate_win_rates([], [], [])


def test_decontamination_drops_near_duplicates_and_counts_them() -> None:
    from routing_core.data.records import Benchmark, BenchmarkItem
    from routing_core.embedders import CallableEmbedder
    from routing_core.evaluation import decontaminate

    vecs = {"train a": [1.0, 0.0], "eval near a": [0.99, 0.05], "eval far": [0.0, 1.0]}
    emb = CallableEmbedder(lambda texts: [vecs[t] for t in texts], dim=2)
    bench = Benchmark("b", [BenchmarkItem("eval near a", 1, 0), BenchmarkItem("eval far", 0, 1)])
    clean = decontaminate(bench, ["train a"], emb)
    assert [it.prompt for it in clean.items] == ["eval far"]
    assert clean.dropped == {"cosine>=0.95 with training": 1}
    assert len(decontaminate(bench, [], emb)) == 2
