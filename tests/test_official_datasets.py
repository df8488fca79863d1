"""The paper's training data through `datasets`: local copies in the hub schema -> Battle records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")

from routing_core.data.hub_datasets import arena_table, first_turn, load_hub_battles  # noqa: E402
from routing_core.errors import DataError  # noqa: E402


def arena_55k() -> dict[str, list[object]]:
    """Rows in the lmsys-arena-human-preference-55k schema, with the cases preprocessing must handle."""
    return {
        "id": [10, 11, 12, 13, 14],
        "model_a": [
            "gpt-4-1106-preview",
            "claude-2.1",
            "gpt-4-0613",
            "vicuna-13b",
            "mixtral-8x7b-instruct-v0.1",
        ],
        "model_b": [
            "mixtral-8x7b-instruct-v0.1",
            "llama-2-70b-chat",
            "claude-1",
            "koala-13b",
            "gpt-4-1106-preview",
        ],
        "prompt": [
            json.dumps(["  Explain quantum tunnelling simply.  ", "and now for a child"]),
            json.dumps(["Write a limerick about a cat, please"]),
            json.dumps(["too short"]),  # < 16 characters: dropped
            json.dumps([None, "second"]),  # a null first turn: dropped
            json.dumps(["What is the derivative of x^3 + 2x?"]),
        ],
        "response_a": ["[]"] * 5,
        "response_b": ["[]"] * 5,
        "winner_model_a": [1, 0, 0, 0, 0],
        "winner_model_b": [0, 1, 0, 0, 0],
        "winner_tie": [0, 0, 1, 1, 1],
    }


def test_arena_55k_preprocessing_as_the_original(tmp_path: Path) -> None:
    path = tmp_path / "arena.parquet"
    datasets.Dataset.from_dict(arena_55k()).to_parquet(str(path))
    battles = load_hub_battles(str(path))
    assert [b.id for b in battles] == ["10", "11", "14"]
    assert battles[0].prompt == "Explain quantum tunnelling simply."  # first turn, stripped
    assert [b.winner for b in battles] == ["model_a", "model_b", "tie"]
    assert (battles[0].model_a, battles[0].model_b) == ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")
    assert all(b.source == str(path) for b in battles)


def test_judge_scores_map_to_winners(tmp_path: Path) -> None:
    rows = {
        "prompt": [json.dumps([f"judge prompt number {i} with enough text"]) for i in range(5)],
        "model_a": ["gpt-4-1106-preview"] * 4 + ["mixtral-8x7b-instruct-v0.1"],
        "model_b": ["mixtral-8x7b-instruct-v0.1"] * 4 + ["gpt-4-1106-preview"],
        "mixtral_score": [5, 4, 3, 1, 4],
    }
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "judge"))
    battles = load_hub_battles(str(tmp_path / "judge"))
    # >= 4: the weak (Mixtral) answer is good enough, so Mixtral wins; <= 3: GPT-4 wins (sides as in the row)
    assert [b.winner for b in battles] == ["model_b", "model_b", "model_a", "model_a", "model_a"]


def test_winner_columns_take_precedence_over_the_score() -> None:
    rows = {**arena_55k(), "mixtral_score": [1, 1, 1, 1, 5]}
    t = arena_table(datasets.Dataset.from_dict(rows))
    assert t.winner == ["model_a", "model_b", "tie"]


def test_several_sources_in_order() -> None:
    a = datasets.Dataset.from_dict(arena_55k())
    judge = datasets.Dataset.from_dict(
        {"prompt": [json.dumps(["a judged prompt long enough"])], "mixtral_score": [2]}
    )
    battles = load_hub_battles([a, judge])
    assert (
        len(battles) == 4 and battles[-1].winner == "model_a"
    )  # GPT-4 (the default model_a) wins on score 2
    assert battles[-1].model_b == "mixtral-8x7b-instruct-v0.1"


def test_bad_schema_and_uncached_hub_id_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="winner_model_a"):
        arena_table(datasets.Dataset.from_dict({"prompt": ["[]"], "model_a": ["x"]}))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        load_hub_battles("routellm/gpt4_judge_battles_does_not_exist_here")
    assert "\n" not in str(e.value) and "HF_HUB_OFFLINE" in str(e.value)


def test_first_turn() -> None:
    assert first_turn(json.dumps([" hi there ", "x"])) == "hi there"
    assert first_turn("plain text ") == "plain text"
    assert first_turn(json.dumps([None])) == ""
