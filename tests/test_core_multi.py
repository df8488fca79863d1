"""N-model routing in the core: the benchmark CSV, quality routers, the cost-aware policy, the curve metrics, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from multi_fakes import KeywordQualityRouter

from routing_core import load_router
from routing_core.cost_policy import CostAwarePolicy, choose_by_lambda, lambda_for_target
from routing_core.data.multi import MultiTable, load_multi_csv, write_multi_csv
from routing_core.errors import DataError, RoutingError, UnknownModelError
from routing_core.multi_eval import aiq, cost_to_reach, evaluate_predictions
from routing_core.routers.quality_knn import KNNQualityRouter
from routing_core.routers.quality_linear import LinearQualityRouter

MODELS = {"big": "big", "mid": "mid", "small": "small"}


def _table(n: int = 60, seed: int = 0) -> MultiTable:
    """Short prompts: every model right; long prompts: only "big" right. Costs 10 / 1 / 0.1 (x 1e-3)."""
    rng = np.random.default_rng(seed)
    prompts, q = [], []
    for i in range(n):
        hard = i % 2 == 0
        words = int(rng.integers(80, 120)) if hard else int(rng.integers(2, 6))
        prompts.append(" ".join(["word"] * words) + f" {i}")
        q.append([1.0, 0.0, 0.0] if hard else [1.0, 1.0, 1.0])
    cost = np.tile([10e-3, 1e-3, 0.1e-3], (n, 1))
    return MultiTable("toy", prompts, ["big", "mid", "small"], np.array(q), cost)


# --- the benchmark format -------------------------------------------------------------------------------


def test_multi_csv_round_trip(tmp_path: Path) -> None:
    t = _table(10)
    path = write_multi_csv(t, tmp_path / "b.csv")
    back = load_multi_csv(path)
    assert back.models == t.models and back.prompts == t.prompts
    np.testing.assert_allclose(back.quality, t.quality)
    np.testing.assert_allclose(back.cost, t.cost)


@pytest.mark.parametrize(
    ("csv_text", "needle"),
    [
        ("prompt,a,b,a|cost\nhi,1,0,0.1\n", "'b|cost'"),
        ("prompt,a,b,a|cost,b|cost\nhi,1,x,0.1,0.2\n", "column 'b'"),
        ("prompt,a,b,a|cost,b|cost\nhi,1,0,-0.1,0.2\n", "negative cost"),
        ("prompt,a,b,a|cost,b|cost\n,1,0,0.1,0.2\n", "empty prompt"),
        ("text,a,b,a|cost,b|cost\nhi,1,0,0.1,0.2\n", "no 'prompt' column"),
        ("prompt,a,a|cost\nhi,1,0.1\n", "at least two models"),
    ],
)
def test_multi_csv_errors_name_the_problem(tmp_path: Path, csv_text: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(csv_text)
    with pytest.raises(DataError, match="bad.csv") as e:
        load_multi_csv(path)
    assert needle in str(e.value)


def test_routerbench_total_cost_spelling_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rb.csv"
    path.write_text("sample_id,prompt,a,b,a|total_cost,b|total_cost\n1,hi,1,0,0.5,0.1\n2,yo,,1,0.5,0.1\n")
    t = load_multi_csv(path)
    assert t.ids == ["1", "2"] and np.isnan(t.quality[1, 0])
    assert len(t.complete()) == 1


# --- the cost-aware policy ------------------------------------------------------------------------------


def test_lambda_trades_quality_for_cost() -> None:
    r = KeywordQualityRouter(rules={"hard": [0.9, 0.5, 0.2], "easy": [0.9, 0.88, 0.87]})
    best = CostAwarePolicy(r, MODELS, lam=0.0)
    cheap = CostAwarePolicy(r, MODELS, lam=1e6)
    mid = CostAwarePolicy(r, MODELS, lam=10.0)
    assert best.decide("easy").side == "big" and cheap.decide("hard").side == "small"
    assert mid.decide("hard").side == "big" and mid.decide("easy").side == "mid"
    d = mid.decide("easy")
    assert d.payload()["qualities"] == {"big": 0.9, "mid": 0.88, "small": 0.87}
    assert d.payload()["costs"]["big"] == pytest.approx(1e-2) and d.win_rate is None


def test_margin_picks_the_cheapest_within_the_margin() -> None:
    r = KeywordQualityRouter(rules={"easy": [0.9, 0.88, 0.80]})
    p = CostAwarePolicy(r, MODELS, margin=0.05)
    assert p.decide("easy").side == "mid"
    assert CostAwarePolicy(r, MODELS, margin=0.2).decide("easy").side == "small"


def test_exactly_one_knob() -> None:
    r = KeywordQualityRouter()
    with pytest.raises(ValueError, match="exactly one of lam"):
        CostAwarePolicy(r, MODELS)
    with pytest.raises(ValueError, match="exactly one of lam"):
        CostAwarePolicy(r, MODELS, lam=1.0, margin=0.1)
    with pytest.raises(ValueError, match="lam must be a finite number"):
        CostAwarePolicy(r, MODELS, lam=-1.0)


def test_unknown_model_named_or_mapped() -> None:
    r = KeywordQualityRouter(rules={"hard": [0.9, 0.5, 0.2]})
    with pytest.raises(UnknownModelError, match=r"'gpt-9'.*known models: big, mid, small"):
        CostAwarePolicy(r, {"a": "gpt-9", "b": "big"}, lam=1.0)
    p = CostAwarePolicy(r, {"a": "gpt-9", "b": "small"}, lam=0.0, model_map={"gpt-9": "mid"})
    assert p.decide("hard").side == "a"  # gpt-9 is treated like mid (0.5 > 0.2)


def test_a_model_without_any_price_is_a_clear_error() -> None:
    r = KeywordQualityRouter()
    r.cost_lines = np.full((3, 2), np.nan)
    with pytest.raises(RoutingError, match="no price for model 'big'"):
        CostAwarePolicy(r, MODELS, lam=1.0)
    p = CostAwarePolicy(r, MODELS, lam=1.0, costs={"big": 0.01, "mid": 0.001, "small": 0.0})
    assert p.cost_of_tokens(np.array([10.0]))[0].tolist() == [0.01, 0.001, 0.0]


def test_price_table_prices_by_tokens() -> None:
    r = KeywordQualityRouter(models=("gpt-4o", "gpt-4o-mini"), default=[0.9, 0.8])
    p = CostAwarePolicy(r, {"a": "gpt-4o", "b": "gpt-4o-mini"}, lam=0.0, expected_output_tokens=100)
    c = p.cost_of_tokens(np.array([1000.0]))[0]
    assert c[0] == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    assert c[1] == pytest.approx((1000 * 0.15 + 100 * 0.6) / 1e6)


def test_target_cost_is_met_on_the_reference_sample() -> None:
    rng = np.random.default_rng(0)
    q = rng.uniform(size=(400, 3))
    cost = np.tile([10e-3, 1e-3, 0.1e-3], (400, 1))
    for target in (0.5e-3, 2e-3, 5e-3):
        lam = lambda_for_target(q, cost, target_cost=target)
        pick = choose_by_lambda(q, cost, lam)
        assert cost[np.arange(400), pick].mean() <= target + 1e-12
    r = KeywordQualityRouter()
    r.reference_quality, r.reference_tokens = q, np.full(400, 50.0)
    p = CostAwarePolicy(r, MODELS, target_cost=2e-3)
    assert p.lam is not None and p.lam > 0


def test_fallback_order_is_best_predicted_quality_first() -> None:
    r = KeywordQualityRouter(rules={"x": [0.2, 0.5, 0.9]})
    p = CostAwarePolicy(r, {"big": "big", "mid": "mid", "small": "small"}, lam=1e9)
    d = p.decide("x")
    assert d.side == "small"
    assert p.fallback_order(p.decide("x", forced="big"), p.fallback_sides("other")) == ("mid", "small")
    d_big = p.make(
        "big", "router", "prompt", "x", None, {"qualities": {"big": 0.2, "mid": 0.5, "small": 0.9}}
    )
    assert p.fallback_order(d_big, p.fallback_sides("other")) == ("small", "mid")


def test_forced_and_no_text() -> None:
    r = KeywordQualityRouter()
    p = CostAwarePolicy(r, MODELS, lam=0.0)
    assert p.decide("anything", forced="small").side == "small"
    assert p.decide("").side == "big" and p.decide("").reason == "no_text"
    assert r.calls == []  # neither consulted the router


def test_two_model_router_is_rejected() -> None:
    with pytest.raises(TypeError, match="multi-model router"):
        CostAwarePolicy(load_router("random"), MODELS, lam=1.0)


# --- routers --------------------------------------------------------------------------------------------


def test_length_heads_learn_and_round_trip(tmp_path: Path) -> None:
    t = _table()
    r = LinearQualityRouter(inputs="length", l2=1.0).fit([t], [None])
    q = r.quality(["word " * 100, "hi there"])
    assert q[0, 1] < 0.3 < 0.7 < q[1, 1]  # mid fails long prompts only
    r.save(tmp_path / "ck")
    back = load_router(tmp_path / "ck")
    np.testing.assert_allclose(back.quality(["word " * 100]), r.quality(["word " * 100]), atol=1e-5)
    assert back.fingerprint() == r.fingerprint() and back.models == ["big", "mid", "small"]
    np.testing.assert_allclose(back.cost_lines, r.cost_lines)


def test_auto_l2_is_chosen_per_head() -> None:
    r = LinearQualityRouter(inputs="length").fit([_table()], [None])
    assert len(r.head_l2) == 3 and all(x > 0 for x in r.head_l2)


def test_two_model_win_rate_is_the_special_case(tmp_path: Path) -> None:
    t = _table()
    r = LinearQualityRouter(inputs="length", l2=1.0, strong_model="big", weak_model="mid").fit([t], [None])
    w = r.win_rate(["word " * 100, "hi"])
    q = r.quality(["word " * 100, "hi"])
    np.testing.assert_allclose(w, 0.5 + 0.5 * (q[:, 0] - q[:, 1]))
    assert w[0] > w[1]
    plain = LinearQualityRouter(inputs="length", l2=1.0).fit([t], [None])
    with pytest.raises(ValueError, match="strong_model= and weak_model="):
        plain.win_rate(["x"])


def test_knn_quality_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = _table()
    emb = rng.normal(size=(len(t), 384)).astype(np.float32)
    t.quality[3, 2] = np.nan  # unscored cells are stored and restored
    r = KNNQualityRouter(k=5).fit([t], [emb])
    q = r.quality(t.prompts[:4], emb[:4])
    assert q.shape == (4, 3) and np.all((q >= 0) & (q <= 1))
    r.save(tmp_path / "knn")
    from routing_core.registry import load_checkpoint

    back = load_checkpoint(tmp_path / "knn", embedder="all-MiniLM-L6-v2")
    np.testing.assert_allclose(back.quality(t.prompts[:4], emb[:4]), q, atol=2e-3)
    assert np.isnan(back.scores[3, 2])


def test_bundled_multi_router_knows_the_benchmarks_models() -> None:
    r = load_router("multi")
    for m in (
        "gpt-4-1106-preview",
        "mixtral-8x7b-instruct-v0.1",
        "llama-3.1-8b-instruct",
        "gpt-3.5-turbo-1106",
    ):
        r.model_index(m)
    q = r.quality(["What is 2 + 2?", "Write a sonnet about entropy."])
    assert q.shape == (2, len(r.models)) and len(r.models) >= 100
    card = (
        Path(__import__("routing_core").__file__).parent / "pretrained" / "multi" / "README.md"
    ).read_text()
    assert "gpt-4-1106-preview" in card and "Models known" in card
    p = CostAwarePolicy(
        r, {"gpt4": "gpt-4-1106-preview", "mix": "mixtral-8x7b-instruct-v0.1"}, target_cost=2e-3
    )
    assert p.decide("hello there, how are you?").side in ("gpt4", "mix")


# --- curve metrics --------------------------------------------------------------------------------------


def test_perfect_predictions_reach_the_oracle() -> None:
    t = _table()
    res = evaluate_predictions("perfect", t, t.quality, t.cost)
    top = max(res.curve, key=lambda p: p["quality"])
    assert top["quality"] == pytest.approx(1.0) and res.oracle["quality"] == pytest.approx(1.0)
    cheapest_perfect = min(p["cost"] for p in res.curve if p["quality"] == pytest.approx(1.0))
    assert cheapest_perfect == pytest.approx(res.oracle["cost"])  # big on hard, small on easy
    assert res.cost_at_best_single_quality == pytest.approx(res.oracle["cost"])
    d = res.to_dict()
    for key in ("curve", "singles", "oracle", "aiq", "cost_at_best_single_quality"):
        assert key in d
    assert {s["model"] for s in d["singles"]} == {"big", "mid", "small"}


def test_uninformed_predictions_never_beat_the_best_single() -> None:
    t = _table()
    flat = np.tile([0.5, 0.6, 0.7], (len(t), 1))  # always the same model whatever the lambda
    res = evaluate_predictions("flat", t, flat, t.cost)
    assert res.cost_at_best_single_quality is None or res.cost_at_best_single_quality >= 10e-3 - 1e-12


def test_aiq_and_cost_to_reach_on_a_known_hull() -> None:
    hx, hy = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0])
    assert aiq(hx, hy, 0.0, 2.0) == pytest.approx(0.75)
    assert cost_to_reach(hx, hy, 0.5) == pytest.approx(0.5)
    assert cost_to_reach(hx, hy, 1.5) is None


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_eval_multi_writes_curve_json_and_plot(tmp_path: Path) -> None:
    t = _table()
    data = write_multi_csv(t, tmp_path / "bench.csv")
    LinearQualityRouter(inputs="length", l2=1.0).fit([t], [None]).save(tmp_path / "r")
    out, plot = tmp_path / "res.json", tmp_path / "curve.png"
    cmd = [sys.executable, "-m", "routing_core", "eval", "--benchmark", "multi", "--data", str(data)]
    proc = subprocess.run(
        [*cmd, "--router", str(tmp_path / "r"), "--json", str(out), "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(out.read_text())
    assert {"curve", "singles", "oracle", "aiq", "cost_at_best_single_quality"} <= set(d)
    assert plot.stat().st_size > 1000 and "AIQ" in proc.stdout
    bad = subprocess.run([*cmd, "--router", "random"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "multi-model router" in bad.stderr


def test_undated_names_resolve_to_the_latest_dated_snapshot() -> None:
    r = KeywordQualityRouter(models=("gpt-4o-2024-05-13", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "x"))
    assert r.models[r.model_index("gpt-4o")] == "gpt-4o-2024-08-06"
    assert r.models[r.model_index("gpt-4o-mini")] == "gpt-4o-mini-2024-07-18"
    with pytest.raises(UnknownModelError):
        r.model_index("gpt-4")


def test_a_fallback_list_keeps_its_order() -> None:
    r = KeywordQualityRouter(rules={"x": [0.2, 0.5, 0.9]})
    p = CostAwarePolicy(r, MODELS, lam=0.0)
    d = p.decide("x", forced="big")
    assert p.fallback_order(d, p.fallback_sides(["small", "mid"])) == ("small", "mid")
    assert p.fallback_order(d, p.fallback_sides(["mid", "small"])) == ("mid", "small")


def test_margin_ties_on_cost_go_to_the_better_model() -> None:
    from routing_core.cost_policy import choose_by_margin

    q, c = np.array([[0.85, 0.9, 0.5]]), np.array([[1.0, 1.0, 5.0]])
    assert choose_by_margin(q, c, 0.1)[0] == 1


def test_unreachable_targets_are_clear_errors() -> None:
    q = np.tile([0.9, 0.5], (50, 1))
    cost = np.tile([1e-2, 1e-3], (50, 1))
    with pytest.raises(ValueError, match="below what these models can reach"):
        lambda_for_target(q, cost, target_cost=1e-4)
    with pytest.raises(ValueError, match="above the best predicted quality"):
        lambda_for_target(q, cost, target_quality=0.95)


def test_table_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"quality has shape \(3, 2\), expected \(2 prompts, 3 models\)"):
        MultiTable("t", ["a", "b"], ["x", "y", "z"], np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one entry per prompt"):
        MultiTable("t", ["a", "b"], ["x", "y"], np.zeros((2, 2)), np.zeros((2, 2)), ids=["1"])


def test_knn_without_scored_neighbours_falls_back_to_the_prior() -> None:
    t = MultiTable("t", ["a", "b", "c"], ["x", "y"], np.array([[1.0, np.nan], [0.0, np.nan], [1.0, 0.2]]),
                   np.ones((3, 2)))  # fmt: skip
    emb = np.eye(3, 384, dtype=np.float32)
    r = KNNQualityRouter(k=1, prior_weight=0.0).fit([t], [emb])
    q = r.quality(["a"], emb[:1])
    assert q[0, 0] == pytest.approx(1.0) and q[0, 1] == pytest.approx(0.2)  # y unscored near "a": its prior


def test_loading_with_another_pair_redoes_the_reference(tmp_path: Path) -> None:
    t = _table()
    t.quality[1::4, 2] = 0.0  # small also fails some easy prompts: big-vs-small differs from big-vs-mid
    r = LinearQualityRouter(inputs="length", l2=1.0, strong_model="big", weak_model="mid").fit([t], [None])
    r.set_quality_reference(t.prompts)
    r.set_reference(r.win_rate(t.prompts))
    r.save(tmp_path / "ck")
    same = load_router(tmp_path / "ck")
    np.testing.assert_allclose(same.reference_win_rates, r.reference_win_rates, atol=1e-6)
    other = load_router(tmp_path / "ck", weak_model="small")
    expected = other.win_rate(t.prompts)
    assert abs(np.mean(expected >= other.threshold_for_strong_fraction(0.5)) - 0.5) <= 0.1
    assert not np.allclose(other.reference_win_rates, r.reference_win_rates)
    with pytest.raises(ValueError, match="are the same model"):
        load_router(tmp_path / "ck", weak_model="big").win_rate(["x"])


def test_evaluate_multi_masks_embeddings_and_prices_unknown_models(tmp_path: Path) -> None:
    from routing_core.multi_eval import evaluate_multi

    t = _table()
    t.quality[0, 1] = np.nan  # dropped by complete(); embeddings must follow
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(len(t), 384)).astype(np.float32)
    r = KNNQualityRouter(k=3).fit([t], [emb])
    r.cost_lines = np.full((3, 2), np.nan)  # no learned cost: the table's mean recorded cost is used
    res = evaluate_multi(r, t, embeddings=emb)
    assert res.n == len(t) - 1 and res.curve


def test_token_estimate_is_exact_for_normal_prompts_and_cheap_for_huge_ones() -> None:
    from routing_core.cost_policy import estimate_tokens
    from routing_core.costs import count_tokens

    short = "Explain the difference between TCP and UDP. " * 20
    assert estimate_tokens(short) == count_tokens(short)
    huge = "word " * 200_000
    assert abs(estimate_tokens(huge) - count_tokens(huge)) / count_tokens(huge) < 0.05
