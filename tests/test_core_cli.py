from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from routing_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_route_prints_table_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "--router", "random", "--file", str(ROOT / "examples" / "prompts.txt")]) == 0
    out = capsys.readouterr().out
    assert "win rate" in out and "strong calls:" in out and "always-strong" in out and "threshold" in out
    assert len(out.splitlines()) > 30


def test_route_json_and_threshold(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "route",
                "--router",
                "random",
                "--threshold",
                "0.0",
                "a prompt",
                "another prompt",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["summary"]["strong_share"] == 1.0 and data["summary"]["threshold"] == 0.0
    assert [d["side"] for d in data["decisions"]] == ["strong", "strong"]
    assert [d["index"] for d in data["decisions"]] == [0, 1]
    assert data["summary"]["cost_routed_usd"] == pytest.approx(data["summary"]["cost_always_strong_usd"])
    # by hand: gpt-4-1106-preview $10/$30 per 1M tokens in/out, 300 output tokens per prompt
    tokens = sum(d["input_tokens"] for d in data["decisions"])
    assert data["summary"]["cost_always_strong_usd"] == pytest.approx((tokens * 10 + 2 * 300 * 30) / 1e6)
    assert data["summary"]["cost_always_weak_usd"] == pytest.approx((tokens * 0.6 + 2 * 300 * 0.6) / 1e6)


def test_route_strong_fraction_changes_decisions(capsys: pytest.CaptureFixture[str]) -> None:
    prompts = [f"prompt {i}" for i in range(200)]
    main(["route", "--router", "random", "--strong-fraction", "0.1", "--json", "-", *prompts])
    low = json.loads(capsys.readouterr().out)["summary"]["strong_share"]
    main(["route", "--router", "random", "--strong-fraction", "0.9", "--json", "-", *prompts])
    high = json.loads(capsys.readouterr().out)["summary"]["strong_share"]
    assert low < 0.25 < 0.75 < high


def test_route_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "b.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    cases = [
        (["route", "--router", "random", "--file", str(empty)], "file is empty"),
        (["route", "--router", "random", "--file", str(binary)], "binary"),
        (["route", "--router", "no-such-router", "hello"], "unknown router 'no-such-router'"),
        (["route", "--router", "random", "--threshold", "2", "hello"], "--threshold: '2' is not in [0, 1]"),
        (["route", "--router", "random"], "no prompts"),
        (["route", "--router", "random", "--file", str(tmp_path / "nope.txt")], "no such file"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_route_huge_prompt_is_truncated_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 220_000 + "\n")  # about 1 MB on one line
    assert main(["route", "--router", "random", "--file", str(big)]) == 0
    assert "truncated" in capsys.readouterr().out


def _bench(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "strong", "weak"])
        w.writerows(rows)
    return path


def test_eval_csv_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [[f"question number {i} about something", int(i % 4 != 0), (i // 2) % 2] for i in range(40)]
    b = _bench(tmp_path / "b.csv", rows)
    out, png = tmp_path / "m.json", tmp_path / "m.png"
    rc = main(
        [
            "eval",
            "--router",
            "random",
            "--benchmark",
            "csv",
            "--data",
            str(b),
            "--json",
            str(out),
            "--plot",
            str(png),
            "--n-boot",
            "50",
        ]
    )
    assert rc == 0
    assert "APGR" in capsys.readouterr().out
    data = json.loads(out.read_text())
    for key in (
        "n",
        "strong_score",
        "weak_score",
        "apgr",
        "cpt",
        "hull_cpt",
        "intervals",
        "full",
        "oracle",
        "random",
    ):
        assert key in data
    assert set(data["cpt"]) == {"20", "50", "80"} and data["n"] == 40
    assert png.stat().st_size > 1000


def test_eval_bad_data_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _bench(tmp_path / "bad.csv", [["a prompt of some length", "high", 0]])
    assert main(["eval", "--router", "random", "--benchmark", "csv", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "not numeric" in err
    missing = tmp_path / "m.csv"
    missing.write_text("prompt,strong\nx,1\n")
    assert main(["eval", "--router", "random", "--benchmark", "csv", "--data", str(missing)]) == 2
    assert "missing column" in capsys.readouterr().err
    assert main(["eval", "--router", "random", "--benchmark", "mmlu", "--data", str(tmp_path)]) == 2
    assert "mmlu_" in capsys.readouterr().err


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "--threshold", "0.5", "--strong-fraction", "0.5", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not allowed with argument" in err and len(err.splitlines()) == 1


def length_battles(path: Path, n: int, model_a: str, model_b: str, stem: str, reps: int) -> Path:
    """JSONL battles where the longer prompts go to model_a: a set the length router separates perfectly."""
    rows = []
    for i in range(n):
        long = i % 2 == 0
        prompt = stem * (reps if long else 1) + f"topic {i}"
        rows.append(
            {
                "prompt": prompt,
                "model_a": model_a,
                "model_b": model_b,
                "winner": "model_a" if long else "model_b",
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_train_calibrate_eval_cli_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    battles = length_battles(
        tmp_path / "b.jsonl", 120, "gpt4_1106_preview", "Mixtral-8x7B-Instruct-v0.1",
        "Explain in depth, step by step, with proofs and examples: ", 6,
    )  # fmt: skip
    rows = [json.loads(line) for line in battles.read_text().splitlines()]
    out = tmp_path / "ck"
    assert (
        main(
            [
                "train",
                "--router",
                "length",
                "--data",
                f"battles:{battles}",
                "--out",
                str(out),
                "--cache-dir",
                "",
            ]
        )
        == 0
    )
    card = (out / "README.md").read_text()
    assert (out / "config.json").exists() and "Training data" in card and "## Parameters" in card
    capsys.readouterr()
    assert (
        main(["calibrate", "--router", str(out), "--strong-fraction", "0.5", "--prompts", str(battles)]) == 0
    )
    assert "threshold" in capsys.readouterr().out
    bench = _bench(tmp_path / "bench.csv", [[r["prompt"], 1, int(r["winner"] == "model_b")] for r in rows])
    res = tmp_path / "res.json"
    assert (
        main(
            [
                "eval",
                "--router",
                str(out),
                "--benchmark",
                "csv",
                "--data",
                str(bench),
                "--json",
                str(res),
                "--n-boot",
                "20",
            ]
        )
        == 0
    )
    # length separates this toy set perfectly: PGR reaches 1 at 50% strong calls, so APGR = .25 + .5
    assert json.loads(res.read_text())["apgr"] == pytest.approx(0.75, abs=0.02)


def test_train_with_no_usable_battles_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    battles = tmp_path / "b.jsonl"
    battles.write_text(
        json.dumps(
            {"prompt": "a prompt that is long enough", "model_a": "x", "model_b": "y", "winner": "tie"}
        )
        + "\n"
    )
    assert (
        main(
            [
                "train",
                "--router",
                "logistic",
                "--data",
                f"battles:{battles}",
                "--out",
                str(tmp_path / "o"),
                "--cache-dir",
                "",
            ]
        )
        == 2
    )
    assert "no strong-tier vs weak-tier battles" in capsys.readouterr().err
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    assert main(["train", "--router", "mf", "--data", f"battles:{empty}", "--out", str(tmp_path / "o2")]) == 2
    assert "file is empty" in capsys.readouterr().err


def test_eval_mt_bench_native_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_core_loaders import _mt_bench

    folder = _mt_bench(tmp_path / "mt")
    out = tmp_path / "mt.json"
    assert (
        main(
            [
                "eval",
                "--router",
                "random",
                "--benchmark",
                "mt-bench",
                "--data",
                str(folder),
                "--json",
                str(out),
                "--n-boot",
                "10",
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["n"] == 2 and data["dropped"] == {"contaminated_prompts.jsonl": 1}
    assert data["strong_score"] == pytest.approx((8.5 + 10) / 2)


def test_route_ray_options_are_checked_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.txt"
    f.write_text("a prompt\n")
    cases = [
        (["route", "--ray", "x"], "--ray routes a file"),
        (["route", "--ray", "--file", str(f)], "--ray needs --out"),
        (["route", "--ray", "--file", str(f), "--out", str(tmp_path / "o.csv")], ".parquet"),
        (["route", "--ray", "--file", str(f), "--out", str(tmp_path / "o.parquet"), "--json", "-"], "--json"),
        (["route", "--file", str(f), "--out", str(tmp_path / "o.parquet")], "--out is for --ray"),
        (
            ["route", "--ray", "--file", str(f), "--out", str(tmp_path / "o.parquet"), "--num-cpus", "0"],
            "--num-cpus",
        ),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, (argv, err)


def test_train_own_pair_uses_exact_model_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    battles = length_battles(
        tmp_path / "own.jsonl", 60, "gpt-4o", "gpt-4o-mini", "Explain in depth with proofs: ", 5
    )
    out = tmp_path / "ck"
    argv = [
        "train",
        "--router",
        "length",
        "--data",
        f"battles:{battles}",
        "--out",
        str(out),
        "--cache-dir",
        "",
    ]
    assert main(argv) == 2  # gpt-4o / gpt-4o-mini are not the default GPT-4 / Mixtral tiers
    assert "no strong-tier vs weak-tier battles" in capsys.readouterr().err
    assert main([*argv, "--strong-model", "gpt-4o", "--weak-model", "gpt-4o-mini"]) == 0
    assert "60 strong-vs-weak examples" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["pairs"] == 60
    assert (
        main([*argv, "--strong-model", "gpt-4o", "--weak-model", "gpt-4o-mini"]) == 2
    )  # --out is not empty now
    assert "--overwrite" in capsys.readouterr().err


def test_calibration_skipped_on_too_few_validation_pairs() -> None:
    from routing_core.data.records import Battle
    from routing_core.training import TrainingData, pair_examples, train_router

    battles = [
        Battle(
            f"a prompt long enough number {i}", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "model_a"
        )
        for i in range(40)
    ]
    router = train_router("length", TrainingData(battles, pair_examples(battles)), None)
    assert router.calibrator is None and router.training_info["calibration"].startswith("skipped")
