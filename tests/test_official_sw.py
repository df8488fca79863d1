"""RouteLLM's SW ranking router from arena_battles_embeddings-style datasets, built locally in the hub schema.

The reference is RouteLLM 0.2.0's SWRankingRouter with preprocess_battles, compute_elo_mle_with_tie (sklearn
LogisticRegression, penalty=None) and compute_tiers, verbatim; skipped cleanly without pandas/sklearn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

from routing_core.errors import UnknownModelError  # noqa: E402
from routing_core.routers.official import (  # noqa: E402
    OfficialRouterError,
    OfficialSWRankingRouter,
    compute_tiers,
    elo_ratings,
    load_official,
)

D = 8
MODELS = [f"model-{i:02d}" for i in range(10)] + [
    "gpt-4-1106-preview",
    "mixtral-8x7b-instruct-v0.1",
    "llama-2-70b-chat",
]
QUERIES = [
    "how do I sort a list in python quickly?",
    "write a sonnet about the sea and the moon",
    "what is 17 * 23, exactly?",
]


def qvec(text: str) -> list[float]:
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(text))
    return (np.random.default_rng(seed).normal(size=D) * 2.0).tolist()


def build_arena(n: int = 600, seed: int = 0) -> tuple[Any, Any]:
    """(battles, embeddings) datasets in the 55k / arena_battles_embeddings schema; skill-driven outcomes."""
    rng = np.random.default_rng(seed)
    skill = {m: rng.normal() for m in MODELS}
    skill["gpt-4-1106-preview"], skill["mixtral-8x7b-instruct-v0.1"] = 1.5, 0.0
    topic = rng.normal(size=(4, D))
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "id",
            "model_a",
            "model_b",
            "prompt",
            "response_a",
            "response_b",
            "winner_model_a",
            "winner_model_b",
            "winner_tie",
        )
    }
    embs = []
    for i in range(n):
        a, b = rng.choice(len(MODELS), 2, replace=False)
        t = rng.integers(4)
        short = rng.random() < 0.1
        text = "hi" if short else f"question {i} about topic {t} " + "x" * int(rng.integers(0, 20))
        gap = skill[MODELS[a]] - skill[MODELS[b]] + (0.8 if t == 0 else -0.3) * (a > b)
        u = rng.random()
        p_a = 1 / (1 + math.exp(-gap))
        w = [0, 0, 1] if abs(u - 0.5) < 0.12 else ([1, 0, 0] if u < p_a else [0, 1, 0])
        rows["id"].append(i)
        rows["model_a"].append(MODELS[a])
        rows["model_b"].append(MODELS[b])
        rows["prompt"].append(json.dumps([text, "follow-up turn"]))
        rows["response_a"].append(json.dumps(["..."]))
        rows["response_b"].append(json.dumps(["..."]))
        for k, v in zip(("winner_model_a", "winner_model_b", "winner_tie"), w, strict=True):
            rows[k].append(v)
        if len(text.strip()) >= 16:
            embs.append((topic[t] + 0.7 * rng.normal(size=D)).tolist())
    return datasets.Dataset.from_dict(rows), datasets.Dataset.from_dict({"embeddings": embs})


class FakeOpenAI:
    def __init__(self) -> None:
        self.embeddings = SimpleNamespace(
            create=lambda input, model: SimpleNamespace(
                data=[SimpleNamespace(index=i, embedding=qvec(t)) for i, t in enumerate(input)]
            )
        )  # noqa: A006


# --- RouteLLM 0.2.0 similarity_weighted/utils.py + SWRankingRouter, verbatim --------------------------------
# One knob added: LR_SOLVER, sklearn's stopping rule. With its defaults (tol=1e-4) the original stops ~1e-4 short
# of the maximum-likelihood fit; tightened, the same formula is solved to convergence.
TIGHT = {"tol": 1e-12, "max_iter": 10000}
LR_SOLVER: dict[str, Any] = dict(TIGHT)


def compute_elo_mle_with_tie(
    df: Any, SCALE: int = 400, BASE: int = 10, INIT_RATING: int = 1000, sample_weight: Any = None
) -> Any:  # noqa: N803
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)

    # duplicate battles
    df = pd.concat([df, df], ignore_index=True)
    p = len(models.index)
    n = df.shape[0]

    X = np.zeros([n, p])
    X[np.arange(n), models[df["model_a"]]] = +math.log(BASE)
    X[np.arange(n), models[df["model_b"]]] = -math.log(BASE)

    # one A win => two A win
    Y = np.zeros(n)
    Y[df["winner"] == "model_a"] = 1.0

    # one tie => one A win + one B win
    # find tie + tie (both bad) index
    tie_idx = (df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")
    tie_idx[len(tie_idx) // 2 :] = False
    Y[tie_idx] = 1.0

    lr = LogisticRegression(fit_intercept=False, penalty=None, **LR_SOLVER)
    if sample_weight is not None:
        sample_weight = np.concatenate([sample_weight, sample_weight])
        lr.fit(X, Y, sample_weight=sample_weight)
    else:
        lr.fit(X, Y)

    elo_scores = SCALE * lr.coef_[0] + INIT_RATING
    # calibrate llama-2-70b-chat to 1082 if applicable
    if "llama-2-70b-chat" in models.index:
        elo_scores += 1082 - elo_scores[models["llama-2-70b-chat"]]
    return pd.Series(elo_scores, index=models.index).sort_values(ascending=False)


def ref_compute_tiers(model_ratings: Any, num_tiers: int) -> dict[str, int]:
    n = len(model_ratings)
    m = num_tiers
    model_ratings_list = list(model_ratings.values)
    dp = np.zeros((n, n, m))
    dp_split = np.zeros((n, n, m))
    for i in range(n):
        for j in range(i + 1, n):
            dp[i][j][0] = np.var(model_ratings_list[i : j + 1])
    for tier in range(1, m):
        for i in range(n):
            for j in range(i + 1, n):
                dp[i][j][tier] = 1000000000
                for l in range(i, j):  # noqa: E741
                    if dp[i][j][tier] > dp[i][l][tier - 1] + dp[l + 1][j][0]:
                        dp_split[i][j][tier] = l
                        dp[i][j][tier] = dp[i][l][tier - 1] + dp[l + 1][j][0]
    cur_n = n
    split_idx = []
    for tier in range(m - 1, 0, -1):
        split = int(dp_split[0][cur_n - 1][tier])
        split_idx.append(split)
        cur_n = split + 1
    split_idx = split_idx[::-1] + [n - 1]
    model2tier = {}
    cur_idx = 0
    for i in range(len(split_idx)):
        for j in range(cur_idx, split_idx[i] + 1):
            model_name = list(model_ratings.keys())[j]
            model2tier[model_name] = i
        cur_idx = split_idx[i] + 1
    return model2tier


def preprocess_battles(battles_df: Any) -> Any:
    MIN_LEN = 16  # noqa: N806

    def get_first_turn(prompt_str: str) -> str:
        return json.loads(prompt_str)[0].strip()

    def get_winner(row: Any) -> str:
        if row["winner_model_a"] == 1:
            return "model_a"
        elif row["winner_model_b"] == 1:
            return "model_b"
        else:
            return "tie"

    battles_df["first_turn"] = battles_df["prompt"].apply(get_first_turn)
    battles_df["winner"] = battles_df.apply(get_winner, axis=1)
    battles_df = battles_df.loc[battles_df["first_turn"].apply(len) >= MIN_LEN]
    battles_df = battles_df[["model_a", "model_b", "winner"]]
    return battles_df


class ReferenceSW:
    def __init__(
        self, battles: Any, embeddings: Any, strong_model: str, weak_model: str, num_tiers: int
    ) -> None:
        self.strong_model, self.weak_model = strong_model, weak_model
        self.arena_df = preprocess_battles(datasets.concatenate_datasets([battles]).to_pandas())
        self.arena_conv_embedding = np.concatenate([np.array(embeddings.to_dict()["embeddings"])])
        assert len(self.arena_df) == len(self.arena_conv_embedding)
        model_ratings = compute_elo_mle_with_tie(self.arena_df)
        self.model_ratings = model_ratings
        self.model2tier = ref_compute_tiers(model_ratings, num_tiers=num_tiers)
        self.arena_df["model_a"] = self.arena_df["model_a"].apply(lambda x: self.model2tier[x])
        self.arena_df["model_b"] = self.arena_df["model_b"].apply(lambda x: self.model2tier[x])

    def get_weightings(self, similarities: np.ndarray) -> np.ndarray:
        max_sim = np.max(similarities)
        return 10 * 10 ** (similarities / max_sim)

    def calculate_strong_win_rate(self, prompt: str) -> float:
        prompt_emb = qvec(prompt)
        similarities = np.dot(self.arena_conv_embedding, prompt_emb) / (
            np.linalg.norm(self.arena_conv_embedding, axis=1) * np.linalg.norm(prompt_emb)
        )
        weightings = self.get_weightings(similarities)
        res = compute_elo_mle_with_tie(self.arena_df, sample_weight=weightings)
        weak_score, strong_score = (
            res[self.model2tier[self.weak_model]],
            res[self.model2tier[self.strong_model]],
        )
        weak_winrate = 1 / (1 + 10 ** ((strong_score - weak_score) / 400))
        return 1 - weak_winrate


@pytest.fixture(scope="module")
def arena() -> tuple[Any, Any]:
    return build_arena()


def _reference(arena: tuple[Any, Any], num_tiers: int, solver: dict[str, Any] = TIGHT) -> ReferenceSW:
    pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    LR_SOLVER.clear()
    LR_SOLVER.update(solver)
    return ReferenceSW(arena[0], arena[1], "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", num_tiers)


@pytest.mark.parametrize("num_tiers", [10, 4])
def test_tiers_and_win_rates_equal_the_original(arena: tuple[Any, Any], num_tiers: int) -> None:
    ref = _reference(arena, num_tiers)
    router = OfficialSWRankingRouter([arena[0]], [arena[1]], num_tiers=num_tiers, embedder=FakeOpenAI())
    assert router.model2tier == ref.model2tier
    assert list(router.ratings) == list(ref.model_ratings.index)  # the same order of models by rating
    expected = np.array([ref.calculate_strong_win_rate(q) for q in QUERIES])
    np.testing.assert_allclose(router.win_rate(QUERIES), expected, atol=1e-5, rtol=0)
    assert np.ptp(expected) > 1e-3  # the similarity weighting really changes the answer per prompt


def test_original_with_sklearn_defaults_is_within_its_own_solver_tolerance(arena: tuple[Any, Any]) -> None:
    ref = _reference(arena, 4, solver={})
    try:
        expected = np.array([ref.calculate_strong_win_rate(q) for q in QUERIES])
    finally:
        LR_SOLVER.update(TIGHT)
    router = OfficialSWRankingRouter([arena[0]], [arena[1]], num_tiers=4, embedder=FakeOpenAI())
    assert router.model2tier == ref.model2tier
    np.testing.assert_allclose(router.win_rate(QUERIES), expected, atol=2e-4, rtol=0)


def test_global_elo_matches_sklearn(arena: tuple[Any, Any]) -> None:
    ref = _reference(arena, 10)
    ours = elo_ratings(_raw(arena, "model_a"), _raw(arena, "model_b"), _raw(arena, "winner"))
    np.testing.assert_allclose(
        [ours[m] for m in ref.model_ratings.index], ref.model_ratings.values, atol=0.05
    )


def _raw(arena: tuple[Any, Any], col: str) -> list[str]:
    from routing_core.data.hub_datasets import arena_table

    t = arena_table(arena[0])
    return {"model_a": t.model_a, "model_b": t.model_b, "winner": t.winner}[col]


def test_compute_tiers_matches_the_original_loop() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    vals = np.sort(rng.normal(1000, 80, size=25))[::-1]
    ratings = {f"m{i}": float(v) for i, v in enumerate(vals)}
    assert compute_tiers(ratings, 10) == ref_compute_tiers(pd.Series(ratings), 10)
    # equal ratings make equal candidate splits: the original keeps the first one
    flat = {f"f{i}": v for i, v in enumerate([1100.0] * 4 + [1000.0] * 5 + [900.0] * 4 + [850.0] * 3)}
    assert compute_tiers(flat, 6) == ref_compute_tiers(pd.Series(flat), 6)


def test_hub_style_ids_and_local_copies(arena: tuple[Any, Any], tmp_path: Path) -> None:
    battles, embeddings = arena
    battles.to_parquet(str(tmp_path / "battles.parquet"))
    embeddings.save_to_disk(str(tmp_path / "emb"))
    router = load_official(
        "routellm/arena_battles_embeddings",
        battle_datasets=[str(tmp_path / "battles.parquet")],
        embedding_datasets=[str(tmp_path / "emb")],
        embedder=FakeOpenAI(),
    )
    direct = OfficialSWRankingRouter([battles], [embeddings], embedder=FakeOpenAI())
    np.testing.assert_allclose(router.win_rate(QUERIES), direct.win_rate(QUERIES), atol=1e-12)


def test_misaligned_embeddings_and_unknown_models_are_clear(arena: tuple[Any, Any]) -> None:
    battles, embeddings = arena
    with pytest.raises(OfficialRouterError, match="battle embeddings for"):
        OfficialSWRankingRouter([battles], [embeddings.select(range(10))], embedder=FakeOpenAI())
    with pytest.raises(UnknownModelError, match="known models"):
        OfficialSWRankingRouter([battles], [embeddings], strong_model="gpt-9", embedder=FakeOpenAI())
