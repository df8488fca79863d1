"""The bad-input matrix: every row is one input a new user might try, with the outcome they must see.

Through the CLI (`route`, `eval`, `train`, `calibrate`: one line on stderr and exit code 2, or one decision per
input record with its index), the loaders (a DataError naming the file and line, or the exact records), and
the Python API (lengths kept, non-strings rejected by position). Checkpoint rows are in
test_core_checkpoint_safety.py, killed runs in test_core_train_kill.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routing_core.cli import main
from routing_core.data.loaders import (
    load_benchmark_csv,
    load_prompts,
    parse_score,
    read_csv,
    read_prompt_file,
)
from routing_core.errors import DataError
from routing_core.router import Router

LONG = "Explain how a transformer language model works, in detail."


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    lines = [x for x in err.splitlines() if not x.startswith("routing-core: warning:")]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# --- route --file: every record accounted for ---------------------------------------------------------------

# (file name, bytes, expected prompt texts in order, expected `where`, expected ids, expected reasons)
ACCOUNTED = [
    pytest.param(
        "p.txt",
        b"first\n\nsecond\n",
        ["first", "second"],
        ["line 1", "line 3"],
        [None, None],
        None,
        id="txt-blank-line",
    ),
    pytest.param("p.txt", b"a\r\nb\r\n", ["a", "b"], ["line 1", "line 2"], [None, None], None, id="txt-crlf"),
    pytest.param(
        "p.txt",
        "one\u2028still one\nform\x0cfeed\nnel\x85x\x1cy\x1dz\x1e\n".encode(),
        ["one\u2028still one", "form\x0cfeed", "nel\x85x\x1cy\x1dz\x1e"],
        ["line 1", "line 2", "line 3"],
        [None] * 3,
        None,
        id="txt-u2028-formfeed-nel-separators-stay-inside",
    ),
    pytest.param(
        "p.txt",
        b"no final newline",
        ["no final newline"],
        ["line 1"],
        [None],
        None,
        id="txt-no-final-newline",
    ),
    pytest.param(
        "p.jsonl",
        b'{"prompt": "a", "id": "q1"}\n{"prompt": ""}\n{"prompt": "   "}\n{"prompt": "b", "id": 7}\n',
        ["a", "", "   ", "b"],
        ["line 1", "line 2", "line 3", "line 4"],
        ["q1", None, None, "7"],
        ["router", "no_text", "no_text", "router"],
        id="jsonl-empty-and-whitespace-records-kept-with-reason",
    ),
    pytest.param(
        "p.jsonl",
        b'"a bare string record"\n{"prompt": ["first turn", "second turn"]}\n',
        ["a bare string record", "first turn"],
        ["line 1", "line 2"],
        [None, None],
        None,
        id="jsonl-string-record-and-turn-list",
    ),
    pytest.param(
        "p.json",
        b'["a", "", {"prompt": "b", "id": 3}, "[\\"not\\", \\"turns\\"]"]',
        ["a", "", "b", '["not", "turns"]'],
        ["item 1", "item 2", "item 3", "item 4"],
        [None, None, "3", None],
        ["router", "no_text", "router", "router"],
        id="json-list-mixed-records-string-kept-verbatim",
    ),
]


@pytest.mark.parametrize(("name", "content", "texts", "where", "ids", "reasons"), ACCOUNTED)
def test_route_file_returns_one_decision_per_record(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    texts: list[str],
    where: list[str],
    ids: list[Any],
    reasons: list[str] | None,
) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    rc, out, err = run_cli(["route", "--router", "random", "--file", str(f), "--json", "-"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    rows = data["decisions"]
    assert [r["prompt"] for r in rows] == texts
    assert [r["index"] for r in rows] == list(range(len(texts)))
    assert [r["where"] for r in rows] == where
    assert [r["id"] for r in rows] == ids
    assert data["summary"]["n"] == len(texts)
    assert data["summary"]["routed_by_router"] + data["summary"]["no_text"] == len(texts)
    if reasons is not None:
        assert [r["reason"] for r in rows] == reasons
    for r in rows:
        if r["reason"] == "no_text":
            assert r["win_rate"] is None and r["side"] == "strong"
        else:
            assert 0.0 <= r["win_rate"] <= 1.0 and r["side"] in ("strong", "weak")


def test_route_empty_side_is_an_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": ""}\n{"prompt": "hello there"}\n')
    rc, out, _ = run_cli(
        ["route", "--router", "random", "--file", str(f), "--empty-side", "weak", "--json", "-"], capsys
    )
    assert rc == 0
    rows = json.loads(out)["decisions"]
    assert rows[0]["side"] == "weak" and rows[0]["reason"] == "no_text"


def test_route_table_shows_index_and_id_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "x", "id": "alpha"}\n{"prompt": ""}\n\n{"prompt": "y"}\n')
    rc, out, _ = run_cli(["route", "--router", "random", "--file", str(f)], capsys)
    assert rc == 0
    assert "0 [alpha]" in out and "(empty: no text to route on)" in out
    assert "records: 3 from" in out and "1 empty record(s)" in out


# --- route --file: rejected inputs, one line each --------------------------------------------------------------

REJECTED = [
    pytest.param(
        "p.jsonl",
        b'{"prompt": "ok"}\n{"prompt": null}\n',
        ["p.jsonl", "line 2", "'prompt' is null"],
        id="jsonl-null",
    ),
    pytest.param("p.jsonl", b'{"prompt": 123}\n', ["line 1", "'prompt' is a number"], id="jsonl-number"),
    pytest.param("p.jsonl", b'{"prompt": true}\n', ["'prompt' is a boolean"], id="jsonl-bool"),
    pytest.param("p.jsonl", b"123\n", ["record is a number"], id="jsonl-number-record"),
    pytest.param("p.jsonl", b'{"text": "hi"}\n', ["no 'prompt' key"], id="jsonl-missing-key"),
    pytest.param("p.jsonl", b'{"prompt": "a", "id": [1]}\n', ["'id' is a list"], id="jsonl-bad-id"),
    pytest.param("p.jsonl", b'{"prompt": "a"\n', ["line 1", "invalid JSON"], id="jsonl-broken-json"),
    pytest.param("p.jsonl", b'{"prompt": []}\n', ["empty list"], id="jsonl-empty-turns"),
    pytest.param(
        "p.jsonl",
        b"".join(b'{"prompt": null}\n' for _ in range(8)),
        ["8 record(s)", "and 3 more"],
        id="jsonl-many-bad-lines-counted",
    ),
    pytest.param("p.json", b'["a", null]', ["item 2", "null"], id="json-null"),
    pytest.param("p.json", b'{"prompt": "a"}', ["expected a JSON list"], id="json-not-a-list"),
    pytest.param("p.json", b"[]", ["no prompts found"], id="json-empty-list"),
    pytest.param("p.json", b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"], id="json-deep-nesting"),
    pytest.param(
        "p.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", ["nested too deeply"], id="jsonl-deep-nesting"
    ),
    pytest.param("p.txt", b"", ["file is empty"], id="empty-file"),
    pytest.param("p.txt", b"\n \n\t\n", ["file is empty"], id="whitespace-file"),
    pytest.param("p.txt", bytes(range(256)) * 4, ["binary"], id="binary-file"),
    pytest.param("p.txt", b"fine line\n" * 1000 + b"late \x00 nul\n", ["binary", "NUL"], id="nul-after-8k"),
    pytest.param("p.txt", "café\n".encode("latin-1"), ["not valid UTF-8", "line 1"], id="latin-1-file"),
    pytest.param("p.txt", b"ok\n" + "naïve\n".encode("cp1252"), ["line 2"], id="cp1252-second-line"),
]


@pytest.mark.parametrize(("name", "content", "needles"), REJECTED)
def test_route_file_rejects_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, needles: list[str]
) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    rc, out, err = run_cli(["route", "--router", "random", "--file", str(f)], capsys)
    assert_one_line_error(rc, err, *needles)
    assert out == ""


def test_route_file_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(["route", "--router", "random", "--file", str(tmp_path)], capsys)
    assert_one_line_error(rc, err, "is a directory")


def test_route_argument_records_keep_empties(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(["route", "--router", "random", "--json", "-", "a", "", "b\u2028c"], capsys)
    assert rc == 0
    rows = json.loads(out)["decisions"]
    assert [r["prompt"] for r in rows] == ["a", "", "b\u2028c"]
    assert [r["where"] for r in rows] == ["argument 1", "argument 2", "argument 3"]


# --- outputs checked before any work; written atomically --------------------------------------------------------


def test_unwritable_json_fails_before_routing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the router does not exist: if the output were checked after loading it, the error would name the router
    rc, _, err = run_cli(["route", "--router", "no-such-router", "--json", str(tmp_path), "x"], capsys)
    assert_one_line_error(rc, err, "--json", "is a directory")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc, _, err = run_cli(
        ["route", "--router", "no-such-router", "--json", str(blocker / "out.json"), "x"], capsys
    )
    assert_one_line_error(rc, err, "--json")


def test_json_output_is_atomic_and_complete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deep" / "r.json"
    rc, _, _ = run_cli(["route", "--router", "random", "--json", str(out), "a", "b"], capsys)
    assert rc == 0
    assert len(json.loads(out.read_text())["decisions"]) == 2
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temp file left behind


def _bench(path: Path, body: str) -> Path:
    path.write_text("prompt,strong,weak\n" + body)
    return path


GOOD_BENCH = "".join(f"question {i} about something,{int(i % 3 != 0)},{i % 2}\n" for i in range(30))


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        pytest.param(["--plot", "{dir}"], ["--plot", "is a directory"], id="plot-dir"),
        pytest.param(["--plot", "{dir}/m.txt"], ["--plot", ".png"], id="plot-wrong-suffix"),
        pytest.param(["--plot", "{dir}/m"], ["--plot", ".png"], id="plot-no-suffix"),
        pytest.param(["--json", "{dir}"], ["--json", "is a directory"], id="json-dir"),
        pytest.param(["--json", "{file}/x.json"], ["--json"], id="json-under-a-file"),
    ],
)
def test_eval_outputs_checked_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needles: list[str]
) -> None:
    bench = _bench(tmp_path / "b.csv", GOOD_BENCH)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    argv = [a.format(dir=tmp_path, file=blocker) for a in extra]
    rc, out, err = run_cli(
        ["eval", "--router", "random", "--benchmark", "csv", "--data", str(bench), *argv], capsys
    )
    assert_one_line_error(rc, err, *needles)
    assert "APGR" not in out  # nothing was computed


def test_eval_plot_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench(tmp_path / "b.csv", GOOD_BENCH)
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        plot = tmp_path / f"m{suffix}"
        rc, _, err = run_cli(
            [
                "eval",
                "--router",
                "random",
                "--benchmark",
                "csv",
                "--data",
                str(bench),
                "--n-boot",
                "0",
                "--plot",
                str(plot),
            ],
            capsys,
        )
        assert rc == 0, err
        assert plot.read_bytes().startswith(magic)


# --- strict data parsing ----------------------------------------------------------------------------------------

BAD_BENCH = [
    pytest.param("q one is long enough,inf,0\n", ["row 2", "infinite"], id="inf-score"),
    pytest.param("q one is long enough,-inf,0\n", ["infinite"], id="minus-inf-score"),
    pytest.param("q one is long enough,nan,0\n", ["NaN"], id="nan-score"),
    pytest.param("q one is long enough,1e999,0\n", ["infinite"], id="overflow-score"),
    pytest.param(
        '"unterminated quote,1,0\nnext row,1,0\n', ["line 2", "malformed CSV"], id="unbalanced-quote"
    ),
    pytest.param('"quoted" tail,1,0\n', ["line 2", "malformed CSV"], id="stray-quote"),
    pytest.param("a,b,1,0\n", ["line 2", "4 fields"], id="extra-field"),
    pytest.param("only prompt\n", ["line 2", "1 fields"], id="missing-fields"),
    pytest.param('"a\nb",1,0\nc,1\n', ["line 4", "2 fields"], id="short-row-after-multiline"),
]


@pytest.mark.parametrize(("body", "needles"), BAD_BENCH)
def test_eval_rejects_bad_benchmark_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, needles: list[str]
) -> None:
    bench = _bench(tmp_path / "bad.csv", body + GOOD_BENCH)
    rc, out, err = run_cli(["eval", "--router", "random", "--benchmark", "csv", "--data", str(bench)], capsys)
    assert_one_line_error(rc, err, "bad.csv", *needles)
    assert "APGR" not in out
    with pytest.raises(DataError) as e:
        load_benchmark_csv(bench)
    assert all(n in str(e.value) for n in needles)


def test_csv_multiline_quoted_field_is_one_row(tmp_path: Path) -> None:
    p = tmp_path / "ok.csv"
    p.write_text('prompt,strong,weak\n"a prompt\nover two lines, with a comma",1,0\nnext,0,1\n')
    header, rows = read_csv(p)
    assert [r["prompt"] for r in rows] == ["a prompt\nover two lines, with a comma", "next"]


def test_csv_keeps_u2028_inside_a_field(tmp_path: Path) -> None:
    p = tmp_path / "u.csv"
    p.write_text("prompt,strong,weak\none\u2028two,1,0\nthree,0,1\n", encoding="utf-8")
    assert [r["prompt"] for r in read_csv(p)[1]] == ["one\u2028two", "three"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", float("inf"), float("nan"), "1e400"])
def test_parse_score_rejects_non_finite(value: object) -> None:
    with pytest.raises(DataError, match="NaN|infinite"):
        parse_score(value, "f.csv", "row 2")


# --- bad numeric options: one line, exit 2 ---------------------------------------------------------------------

BAD_OPTIONS = [
    pytest.param(["route", "--threshold", "nan", "x"], ["--threshold", "finite"], id="threshold-nan"),
    pytest.param(["route", "--threshold", "inf", "x"], ["--threshold", "finite"], id="threshold-inf"),
    pytest.param(["route", "--threshold", "-0.1", "x"], ["--threshold", "[0, 1]"], id="threshold-negative"),
    pytest.param(["route", "--threshold", "abc", "x"], ["--threshold", "not a number"], id="threshold-text"),
    pytest.param(["route", "--strong-fraction", "1.5", "x"], ["--strong-fraction"], id="fraction-above-one"),
    pytest.param(
        ["route", "--output-tokens", "-5", "x"], ["--output-tokens", ">= 0"], id="negative-output-tokens"
    ),
    pytest.param(
        ["route", "--output-tokens", "2.5", "x"], ["--output-tokens", "not an integer"], id="float-tokens"
    ),
    pytest.param(["route", "--seed", "1" * 25, "x"], ["--seed", "4294967295"], id="25-digit-seed"),
    pytest.param(["route", "--seed", "-1", "x"], ["--seed"], id="negative-seed"),
    pytest.param(
        ["eval", "--benchmark", "csv", "--data", "{b}", "--repeats", "-3"],
        ["--repeats", ">= 1"],
        id="repeats-negative",
    ),
    pytest.param(
        ["eval", "--benchmark", "csv", "--data", "{b}", "--repeats", "0"],
        ["--repeats", ">= 1"],
        id="repeats-zero",
    ),
    pytest.param(
        ["eval", "--benchmark", "csv", "--data", "{b}", "--n-boot", "-1"], ["--n-boot"], id="n-boot-negative"
    ),
    pytest.param(
        ["train", "--router", "length", "--out", "{o}", "--pairs-per-prompt", "-1"],
        ["--pairs-per-prompt"],
        id="pairs-negative",
    ),
    pytest.param(
        ["train", "--router", "length", "--out", "{o}", "--seed", "99999999999"],
        ["--seed"],
        id="train-seed-too-big",
    ),
    pytest.param(
        ["train", "--router", "length", "--out", "{o}", "--option", "novalue"],
        ["--option", "KEY=VALUE"],
        id="option-no-equals",
    ),
    pytest.param(
        ["train", "--router", "length", "--out", "{o}", "--option", "x=NaN"],
        ["--option", "finite"],
        id="option-nan",
    ),
    pytest.param(
        ["train", "--router", "no-such-kind", "--out", "{o}"],
        ["unknown router kind"],
        id="train-unknown-kind",
    ),
    pytest.param(["calibrate", "--strong-fraction", "2"], ["--strong-fraction"], id="calibrate-fraction"),
    pytest.param(["nonsense"], ["invalid choice"], id="unknown-command"),
    pytest.param(["route", "--no-such-flag"], ["unrecognized arguments"], id="unknown-flag"),
]


@pytest.mark.parametrize(("argv", "needles"), BAD_OPTIONS)
def test_bad_numeric_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    bench = _bench(tmp_path / "b.csv", GOOD_BENCH)
    full = [a.format(b=bench, o=tmp_path / "out") for a in argv]
    if full[0] in ("route", "eval", "calibrate"):
        full[1:1] = ["--router", "random"] if full[0] != "calibrate" else ["--router", "length"]
    rc, out, err = run_cli(full, capsys)
    assert_one_line_error(rc, err, *needles)
    assert not (tmp_path / "out").exists()


# --- failures that are not the user's input ----------------------------------------------------------------------


class _Failing(Router):
    """A training-free router that fails the way a bug or a missing package would."""

    needs_training = False
    error: BaseException = RuntimeError()

    def __init__(self, **_: Any) -> None:
        if isinstance(self.error, ImportError):
            raise self.error

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        raise self.error


class _NeedsPackage(_Failing):
    name = "needs_pkg_test"
    error = ImportError("router 'needs_pkg_test' needs the 'foo' package: pip install foo")


class _Buggy(_Failing):
    name = "buggy_test"
    error = RuntimeError("boom\nsecond line")


class _Interrupted(_Failing):
    name = "interrupted_test"
    error = KeyboardInterrupt()


def _register(cls: type[Router]) -> None:
    from routing_core.registry import register_router

    register_router(cls.name, cls)


def test_missing_optional_package_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _register(_NeedsPackage)
    rc, _, err = run_cli(["route", "--router", "needs_pkg_test", "--threshold", "0.5", "x"], capsys)
    assert_one_line_error(rc, err, "not installed", "pip install foo")


def test_internal_error_says_so_and_where_to_report(capsys: pytest.CaptureFixture[str]) -> None:
    _register(_Buggy)
    rc, _, err = run_cli(["route", "--router", "buggy_test", "--threshold", "0.5", "x"], capsys)
    assert_one_line_error(rc, err, "internal error", "RuntimeError: boom second line", "report it")


def test_keyboard_interrupt_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    _register(_Interrupted)
    rc, _, err = run_cli(["route", "--router", "interrupted_test", "--threshold", "0.5", "x"], capsys)
    assert rc == 130 and "interrupted" in err


# --- the Python API: lengths kept, non-strings rejected by position ------------------------------------------------


def test_api_keeps_lengths_and_rejects_non_strings() -> None:
    from routing_core import load_router

    r = load_router("random", seed=0)
    assert r.win_rate(["", "   ", "a\u2028b", "x\x0cy"]).shape == (4,)
    assert len(r.route(["", "b"], 0.5)) == 2
    for bad, where in (([None], "prompts[0]"), (["ok", 123], "prompts[1]"), (["ok", b"bytes"], "prompts[1]")):
        with pytest.raises(TypeError, match=rf"{where.replace('[', '.').replace(']', '.')} must be a str"):
            r.win_rate(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a single string"):
        r.win_rate("one prompt")
    for t in (float("nan"), float("inf"), -0.1, 1.5, True):
        with pytest.raises(ValueError, match="threshold"):
            r.route(["x"], t)  # type: ignore[arg-type]


def test_api_loaders_keep_every_record(tmp_path: Path) -> None:
    j = tmp_path / "p.jsonl"
    j.write_text('{"prompt": "a"}\n{"prompt": ""}\n{"prompt": "c\u2028d"}\n')
    texts, truncated = load_prompts(j)
    assert texts == ["a", "", "c\u2028d"] and truncated == 0
    f = read_prompt_file(j)
    assert [r.index for r in f.records] == [0, 1, 2] and [r.empty for r in f.records] == [False, True, False]
    t = tmp_path / "p.txt"
    t.write_text("x" * 20 + "\n\n" + "y\n")
    f = read_prompt_file(t, max_chars=5)
    assert f.texts == ["xxxxx", "y"] and f.truncated == 1 and f.blank_lines == 1


def test_api_metrics_reject_non_finite() -> None:
    from routing_core.metrics import evaluate_win_rates

    for w, s, k, name in (
        ([0.1, np.nan], [1, 0], [0, 1], "win_rates"),
        ([0.1, 0.2], [1, np.inf], [0, 1], "strong"),
        ([0.1, 0.2], [1, 0], [np.nan, 1], "weak"),
    ):
        with pytest.raises(ValueError, match=f"{name} holds NaN or infinite"):
            evaluate_win_rates(w, s, k, n_boot=0)


@pytest.mark.parametrize("repeats", [0, -3, 2.5, True])
def test_api_evaluate_router_rejects_bad_repeats(repeats: object) -> None:
    from routing_core import load_router
    from routing_core.data.records import Benchmark, BenchmarkItem
    from routing_core.evaluation import evaluate_router

    bench = Benchmark("b", [BenchmarkItem(f"q{i}", i % 2, 0) for i in range(10)])
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        evaluate_router(load_router("random"), bench, n_boot=0, repeats=repeats)  # type: ignore[arg-type]
