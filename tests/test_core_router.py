from __future__ import annotations

import json

import numpy as np
import pytest

from routing_core import (
    CheckpointError,
    Decision,
    RandomRouter,
    Router,
    UnknownRouterError,
    available_routers,
    check_threshold,
    load_router,
    threshold_for_strong_fraction,
)
from routing_core.checkpoints import write_checkpoint
from routing_core.registry import load_checkpoint


def test_random_router_is_uniform_deterministic_and_seedable() -> None:
    r = RandomRouter(seed=1)
    prompts = [f"prompt number {i}" for i in range(5000)]
    a = r.win_rate(prompts)
    assert a.dtype == np.float64 and a.shape == (5000,)
    assert ((a >= 0) & (a < 1)).all()
    assert abs(a.mean() - 0.5) < 0.02
    np.testing.assert_array_equal(a, r.win_rate(prompts))  # same prompt, same rate
    np.testing.assert_array_equal(a[:3], np.concatenate([r.win_rate([p]) for p in prompts[:3]]))
    assert not np.array_equal(a, RandomRouter(seed=2).win_rate(prompts))


def test_decision_rule_ties_go_strong() -> None:
    assert Decision(0.5, 0.5).model == "strong"
    assert Decision(0.4999, 0.5).model == "weak"
    assert [d.model for d in Router.route(FixedRouter([0.2, 0.7, 0.5]), ["a", "b", "c"], 0.5)] == ["weak", "strong", "strong"]


class FixedRouter(Router):
    name = "fixed"

    def __init__(self, rates: list[float]) -> None:
        self.rates = rates

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return np.array(self.rates[: len(prompts)])


def test_win_rate_validates_input_and_output() -> None:
    r = RandomRouter()
    with pytest.raises(TypeError, match="single string"):
        r.win_rate("hello")
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        r.win_rate(["ok", 3])  # type: ignore[list-item]
    assert r.win_rate([]).shape == (0,)
    with pytest.raises(RuntimeError, match="NaN"):
        FixedRouter([float("nan")]).win_rate(["x"])
    with pytest.raises(RuntimeError, match="2 win rates for 3"):
        FixedRouter([0.1, 0.2]).win_rate(["a", "b", "c"])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True])
def test_threshold_validation(bad: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        check_threshold(bad)  # type: ignore[arg-type]


def test_strong_fraction_thresholds() -> None:
    r = RandomRouter()
    assert r.threshold_for_strong_fraction(0.3) == pytest.approx(0.7)
    sample = np.linspace(0, 1, 101)
    t = threshold_for_strong_fraction(sample, 0.2)
    assert np.mean(sample >= t) == pytest.approx(0.2, abs=0.011)
    assert threshold_for_strong_fraction(sample, 1.0) == 0.0
    below_one = sample[:-1]  # thresholds live in [0, 1]: a certain win (1.0) always goes strong
    assert np.mean(below_one >= threshold_for_strong_fraction(below_one, 0.0)) == 0.0
    with pytest.raises(ValueError, match="no reference win rates"):
        FixedRouter([0.1]).threshold_for_strong_fraction(0.5)


def test_load_router_names_paths_and_errors(tmp_path) -> None:
    assert isinstance(load_router("random", seed=3), RandomRouter)
    assert "random" in available_routers()
    with pytest.raises(UnknownRouterError, match="unknown router 'nope'"):
        load_router("nope")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted config"):
        load_router(str(tmp_path / "ckpt"))
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a router checkpoint"):
        load_checkpoint(tmp_path / "ckpt")
    write_checkpoint(tmp_path / "c2", "no-such-kind", {})
    with pytest.raises(UnknownRouterError, match="no-such-kind"):
        load_router(tmp_path / "c2")
