from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from routing_core.data import (
    battles_from_scores,
    load_arena_battles,
    load_battles_jsonl,
    load_benchmark_csv,
    load_correctness_long,
    load_correctness_wide,
    load_judge_verdicts,
    load_mt_bench,
    load_prompts,
)
from routing_core.errors import DataError

LONG = "Explain how a transformer language model works, in detail."


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_arena_csv_keeps_first_turn_and_drops_short(tmp_path: Path) -> None:
    p = _csv(
        tmp_path / "arena.csv",
        [
            "id",
            "model_a",
            "model_b",
            "prompt",
            "response_a",
            "response_b",
            "winner_model_a",
            "winner_model_b",
            "winner_tie",
        ],
        [
            [
                1,
                "gpt-4-1106-preview",
                "mixtral-8x7b-instruct-v0.1",
                json.dumps([LONG, "second turn"]),
                "[]",
                "[]",
                1,
                0,
                0,
            ],
            [2, "a", "b", json.dumps(["hi"]), "[]", "[]", 0, 1, 0],
            [3, "a", "b", json.dumps(["A reasonably long prompt here"]), "[]", "[]", 0, 0, 1],
        ],
    )
    battles = load_arena_battles(p)
    assert [b.winner for b in battles] == ["model_a", "tie"]
    assert battles[0].prompt == LONG
    assert battles[0].outcome_for("gpt-4-1106-preview") == 1.0


def test_jsonl_battles_and_aliases(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    rows = [
        {
            "prompt": LONG,
            "model_a": "gpt4_1106_preview",
            "model_b": "Mixtral-8x7B-Instruct-v0.1",
            "winner": "model_b",
        },
        {"prompt": LONG, "model_a": "x", "model_b": "y", "winner": "tie (bothbad)"},
        {"prompt": "short", "model_a": "x", "model_b": "y", "winner": "tie"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    b = load_battles_jsonl(p)
    assert len(b) == 2
    assert (b[0].model_a, b[0].model_b, b[0].winner) == (
        "gpt-4-1106-preview",
        "mixtral-8x7b-instruct-v0.1",
        "model_b",
    )
    assert b[1].winner == "tie"
    p.write_text(json.dumps({"prompt": LONG, "model_a": "x", "model_b": "y", "winner": "nobody"}) + "\n")
    with pytest.raises(DataError, match="winner 'nobody'"):
        load_battles_jsonl(p)


def test_correctness_tables_to_battles(tmp_path: Path) -> None:
    long = _csv(
        tmp_path / "long.csv",
        ["prompt", "model", "correct"],
        [[LONG, "a", 1], [LONG, "b", 0], [LONG, "c", 1]],
    )
    scored = load_correctness_long(long)
    assert scored[0].scores == {"a": 1.0, "b": 0.0, "c": 1.0}
    battles = list(battles_from_scores(scored))
    assert {(b.model_a, b.model_b, b.winner) for b in battles} == {
        ("a", "b", "model_a"),
        ("a", "c", "tie"),
        ("b", "c", "model_b"),
    }
    assert len(list(battles_from_scores(scored, pairs=[("c", "b")]))) == 1
    wide = _csv(
        tmp_path / "wide.csv",
        ["prompt", "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"],
        [[LONG, "True", "False"]],
    )
    ws = load_correctness_wide(wide)
    assert ws[0].scores == {"gpt-4-1106-preview": 1.0, "mixtral-8x7b-instruct-v0.1": 0.0}


def test_judge_verdicts(tmp_path: Path) -> None:
    inst = _csv(
        tmp_path / "i.csv",
        ["instruction_id", "dataset", "instruction"],
        [[0, "x", LONG], [1, "x", LONG + " again"]],
    )
    prefs = _csv(
        tmp_path / "p.csv",
        ["instruction_id", "generator_1", "generator_2", "annotator", "preference"],
        [
            [0, "gpt4_1106_preview", "m", "fn", 1.2],
            [1, "gpt4_1106_preview", "m", "fn", 1.5],
            [0, "gpt4_1106_preview", "m", "other", 1.9],
        ],
    )
    b = load_judge_verdicts(prefs, inst, annotator="fn")
    assert [x.winner for x in b] == ["model_a", "tie"]
    assert b[0].model_a == "gpt-4-1106-preview"


def _mt_bench(folder: Path, contaminated: bool = True) -> Path:
    folder.mkdir()
    qs = [
        {
            "question_id": 81,
            "category": "writing",
            "turns": ["Compose an engaging travel blog post about Hawaii.", "Rewrite it."],
        },
        {
            "question_id": 82,
            "category": "math",
            "turns": ["What is the sum of the first 100 positive integers?", "And squares?"],
        },
        {
            "question_id": 83,
            "category": "coding",
            "turns": ["Write a function that reverses a linked list.", "In C?"],
        },
    ]
    (folder / "question.jsonl").write_text("\n".join(json.dumps(q) for q in qs) + "\n")
    js = []
    for qid, (s1, s2, w1, w2) in {81: (9, 8, 7, 5), 82: (10, 10, 4, 6), 83: (8, 6, 8, 8)}.items():
        for model, a, b in (("gpt-4-1106-preview", s1, s2), ("mistralai/Mixtral-8x7B-Instruct-v0.1", w1, w2)):
            for turn, score in ((1, a), (2, b)):
                js.append(
                    {
                        "question_id": qid,
                        "model": model,
                        "judge": ["gpt-4", "single-v1"],
                        "user_prompt": "...",
                        "judgment": "Rating: [[x]]",
                        "score": score,
                        "turn": turn,
                        "tstamp": 1.0,
                    }
                )
    js.append(
        {
            "question_id": 81,
            "model": "other",
            "judge": [],
            "user_prompt": "",
            "judgment": "",
            "score": 1,
            "turn": 1,
            "tstamp": 0,
        }
    )
    (folder / "judgements.jsonl").write_text("\n".join(json.dumps(j) for j in js) + "\n")
    if contaminated:
        row = {"train_prompt": "x", "eval_prompt": qs[2]["turns"][0], "train_idx": 1, "eval_idx": 2}
        (folder / "contaminated_prompts.jsonl").write_text(json.dumps(row) + "\n")
    return folder


def test_mt_bench_native_layout(tmp_path: Path) -> None:
    bench = load_mt_bench(_mt_bench(tmp_path / "mt"))
    assert [it.id for it in bench.items] == ["81", "82"]
    assert bench.items[0].prompt.startswith("Compose")
    assert (bench.items[0].strong, bench.items[0].weak) == (8.5, 6.0)
    assert bench.dropped == {"contaminated_prompts.jsonl": 1}


def test_benchmark_csv_and_bad_input(tmp_path: Path) -> None:
    good = _csv(
        tmp_path / "b.csv",
        ["id", "prompt", "strong", "weak"],
        [["q1", LONG, 1, 0], ["q2", LONG + "?", 0.5, 0.7]],
    )
    b = load_benchmark_csv(good)
    assert [(i.id, i.strong, i.weak) for i in b.items] == [("q1", 1.0, 0.0), ("q2", 0.5, 0.7)]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: file is empty"):
        load_benchmark_csv(empty)
    with pytest.raises(DataError, match="missing column.*'weak'"):
        load_benchmark_csv(_csv(tmp_path / "m.csv", ["prompt", "strong"], [[LONG, 1]]))
    with pytest.raises(DataError, match=r"row 2, column 'strong': score 'great' is not numeric"):
        load_benchmark_csv(_csv(tmp_path / "n.csv", ["prompt", "strong", "weak"], [[LONG, "great", 1]]))
    with pytest.raises(DataError, match="no such file"):
        load_benchmark_csv(tmp_path / "missing.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataError, match="binary"):
        load_benchmark_csv(binary)


def test_prompt_files(tmp_path: Path) -> None:
    t = tmp_path / "p.txt"
    t.write_text("first prompt\n\nsecond prompt\n" + "x" * 200_000 + "\n")
    prompts, truncated = load_prompts(t)
    assert prompts[:2] == ["first prompt", "second prompt"] and truncated == 1 and len(prompts[2]) == 100_000
    j = tmp_path / "p.jsonl"
    j.write_text(json.dumps({"prompt": "hello world"}) + "\n")
    assert load_prompts(j)[0] == ["hello world"]
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n  \n")
    with pytest.raises(DataError, match="empty"):
        load_prompts(blank)


def test_spec_share_subsamples_by_prompt(tmp_path: Path) -> None:
    from routing_core.training import load_spec

    p = tmp_path / "b.jsonl"
    rows = [
        {"prompt": f"{LONG} number {i}", "model_a": "a", "model_b": "b", "winner": "tie"} for i in range(400)
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    half = load_spec(f"battles:{p}@0.5")
    assert 150 < len(half) < 250
    assert [b.prompt for b in half] == [
        b.prompt for b in load_spec(f"battles:{p}@0.5")
    ]  # seeded, reproducible
    with pytest.raises(DataError, match="share after '@'"):
        load_spec(f"battles:{p}@1.5")
    with pytest.raises(DataError, match="unknown data kind"):
        load_spec("nope:thing")
