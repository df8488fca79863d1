"""The pooled-difficulty targets and router: gains from many models, per-source centring, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest

from routing_core.data import pooled
from routing_core.data.records import ScoredPrompt
from routing_core.routers.difficulty import DifficultyRouter


def _table(
    kind: str, scores: list[list[float]], models: list[str], strong: list[str], weak: list[str]
) -> pooled.ScoreTable:
    n = len(scores)
    return pooled.ScoreTable(
        "t",
        kind,
        [f"prompt number {i}" for i in range(n)],
        [str(i) for i in range(n)],
        models,
        np.array(scores, dtype=float),
        strong,
        weak,
    )


def test_correctness_gain_is_p_strong_beats_weak_with_ties_as_half() -> None:
    t = _table(
        "correctness", [[1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 1]], ["s", "w1", "w2"], ["s"], ["w1", "w2"]
    )
    np.testing.assert_allclose(t.gain(), [1.0, 0.5, 0.5, 0.0])


def test_judge_gain_is_one_minus_mean_weak_win_probability_ignoring_missing() -> None:
    t = _table("judge", [[0.1, 0.3], [0.9, np.nan], [np.nan, np.nan]], ["a", "b"], [], ["a", "b"])
    np.testing.assert_allclose(t.gain(), [0.8, 0.1, 0.5])


def test_tiers_follow_mean_correctness() -> None:
    rows = [
        ScoredPrompt(
            f"q{i}", {"best": 1.0, "good": float(i % 2), "mid": float(i % 3 == 0), "bad": 0.0, "worst": 0.0}
        )
        for i in range(30)
    ]
    t = pooled.table_from_scored("x", rows)
    assert t.strong_models == ["best"]
    assert "best" not in t.weak_models and t.weak_models[0] == "mid"


def test_folds_match_the_shared_heldout_split() -> None:
    from routing_core.data.shared import is_heldout_id

    for i in range(200):
        assert (pooled.fold_of(str(i)) == 0) == is_heldout_id(str(i), "alpaca")


def _synthetic(
    n: int, rng: np.random.Generator, offset: float
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    emb = rng.normal(size=(n, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    true = emb[:, 0]
    prompts = ["x" * int(rng.integers(20, 60)) for _ in range(n)]
    return emb, prompts, np.clip(0.5 + 0.3 * true + offset, 0, 1), true


def test_router_learns_the_ranking_within_each_source_not_the_source_offsets() -> None:
    rng = np.random.default_rng(0)
    e1, p1, g1, t1 = _synthetic(300, rng, 0.0)
    e2, p2, g2, _ = _synthetic(300, rng, 0.4)  # a judge that favours the strong model everywhere
    e2[:, 1] += 1.0  # ... on prompts of its own kind (another topic)
    r = DifficultyRouter(l2=0.1).fit([e1, e2], [p1, p2], [g1, g2])
    scores = r.raw_scores(p1, e1)
    assert np.corrcoef(scores, t1)[0, 1] > 0.9
    # the offset is the judge's, not the topic's: centred targets give both sources the same mean score
    assert abs(r.raw_scores(p2, e2).mean() - scores.mean()) < 0.05
    with pytest.raises(ValueError, match="finite"):
        DifficultyRouter().fit([e1], [p1], [np.full(300, np.nan)])
    with pytest.raises(ValueError, match="l2"):
        DifficultyRouter(l2=-1.0)


def test_checkpoint_round_trip_gives_identical_win_rates(tmp_path) -> None:  # noqa: ANN001
    from routing_core.embedders import CallableEmbedder
    from routing_core.registry import load_checkpoint

    rng = np.random.default_rng(1)
    table = rng.normal(size=(64, 384)).astype(np.float32)

    def fn(texts: list[str]) -> np.ndarray:
        v = table[[hash(t) % 64 for t in texts]]
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    emb = CallableEmbedder(fn, dim=384, name="fake")
    prompts = [f"question {i} about topic {i % 7}" for i in range(120)]
    gains = rng.random(120)
    r = DifficultyRouter(l2=1.0, embedder=emb).fit([emb.embed(prompts)], [prompts], [gains])
    r.fit_calibration(prompts[:60], (gains[:60] > 0.5).astype(float), emb.embed(prompts[:60]))
    r.set_reference(r.win_rate(prompts))
    r.save(tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt", embedder=emb)
    assert isinstance(loaded, DifficultyRouter)
    np.testing.assert_allclose(loaded.win_rate(prompts), r.win_rate(prompts), atol=1e-6)
    assert loaded.describe() == r.describe()


@pytest.mark.shared_data
def test_alpaca_pooled_target_is_reliable(shared_data) -> None:  # noqa: ANN001
    """Two disjoint halves of the weak tier agree on which instructions GPT-4-Turbo wins (what makes pooling pay)."""
    t = pooled.alpaca_table()
    assert len(t.prompts) == 805 and len(t.weak_models) >= 20
    w = [t.models.index(m) for m in t.weak_models]
    a, b = w[::2], w[1::2]
    ga = 1 - np.nanmean(t.scores[:, a], axis=1)
    gb = 1 - np.nanmean(t.scores[:, b], axis=1)
    assert np.corrcoef(ga, gb)[0, 1] > 0.8


def test_size_features_are_exact_for_short_prompts_and_sampled_for_huge_ones() -> None:
    """What the embedding cannot see, cheaply: exact under the sample size, a scaled head+tail sample above it."""
    from routing_core.routers._base import SIZE_SAMPLE_CHARS, length_features

    short = "Compute 17 * 23 and explain.\nThen 5 + 8."
    words, digits = len(short.split()), sum(c.isdigit() for c in short) / len(short)
    f = length_features([short])[0]
    np.testing.assert_allclose(f[1], (np.log1p(words) - 4.0) / 1.2, rtol=1e-6)
    np.testing.assert_allclose(f[3], digits * 10.0, rtol=1e-6)
    line = "item 12345 costs 67 dollars today\n"
    huge = line * (2_000_000 // len(line))
    assert len(huge) > 100 * SIZE_SAMPLE_CHARS
    exact = np.array(
        [
            (np.log1p(len(huge.split())) - 4.0) / 1.2,
            np.log1p(huge.count("\n")) - 1.0,
            sum(c.isdigit() for c in huge) / len(huge) * 10.0,
        ]
    )
    got = length_features([huge])[0][[1, 2, 3]]
    np.testing.assert_allclose(got, exact, rtol=0.02)
