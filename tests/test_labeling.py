"""`routing_core.labeling`: judge-labelled battles from scripted chat models, resumable, errors kept, costs shown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from routing_core.costs import PriceTable
from routing_core.data.loaders import load_battles_jsonl
from routing_core.labeling import (
    JsonlAppender,
    LabelingError,
    Labeller,
    RetryPolicy,
    as_items,
    is_retryable,
    labelled_training_data,
    pairwise_winner,
    parse_grade,
    read_jsonl_rows,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from lc_fakes import FakeOpenAIChat  # noqa: E402

FAST = RetryPolicy(max_attempts=4, base=0.001, cap=0.01)


def prompts(n: int) -> list[str]:
    """n distinct prompts (>= 16 characters, as training keeps); every third one is 'hard'."""
    return [
        f"question number {i}: {'a hard proof' if i % 3 == 0 else 'an easy fact'} please" for i in range(n)
    ]


def _last_human(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


def strong_reply(messages: list[BaseMessage]) -> str:
    return "STRONG careful answer to: " + _last_human(messages)[:40]


def weak_reply(messages: list[BaseMessage]) -> str:
    text = _last_human(messages)
    return ("WEAK-BAD guess" if "hard" in text else "WEAK fine answer") + " to: " + text[:40]


def judge_reply(messages: list[BaseMessage]) -> str:
    """Grades the weak answer 2 when it is bad, else 5, in the paper's [[rating]] format."""
    text = _last_human(messages)
    return "Explanation: compared with the reference. Rating: " + ("[[2]]" if "WEAK-BAD" in text else "[[5]]")


def models(**over: Any) -> dict[str, Any]:
    m = {
        "strong": FakeOpenAIChat(model_name="gpt-4o", reply_fn=strong_reply),
        "weak": FakeOpenAIChat(model_name="gpt-4o-mini", reply_fn=weak_reply),
        "judge": FakeOpenAIChat(model_name="gpt-4.1", reply_fn=judge_reply),
    }
    m.update(over)
    return m


def test_label_200_prompts_gives_200_battles_with_estimate_and_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = models()
    seen: list[Any] = []

    def on_estimate(est: Any) -> None:
        seen.append((est, len(m["strong"]._calls)))  # the estimate comes before any model call

    out = tmp_path / "battles.jsonl"
    report = Labeller(m["strong"], m["weak"], m["judge"], concurrency=8, retry=FAST).label(
        prompts(200), out, on_estimate=on_estimate
    )
    assert report.labelled == 200 and report.failed == 0
    battles = load_battles_jsonl(out)
    assert len(battles) == 200 and len({b.id for b in battles}) == 200
    by_prompt = {b.prompt: b for b in battles}
    for p in prompts(200):
        assert by_prompt[p].winner == ("model_a" if "hard" in p else "model_b")
        assert (by_prompt[p].model_a, by_prompt[p].model_b) == ("gpt-4o", "gpt-4o-mini")
    ((est, calls_before),) = seen
    assert calls_before == 0 and est.prompts == 200
    assert est.total_usd is not None and est.total_usd > 0
    assert report.spent_usd is not None and report.spent_usd > 0
    err = capsys.readouterr().err
    assert f"labelling (est. ${est.total_usd:,.4f})" in err
    assert "200/200" in err and "spent $" in err


def test_labelled_file_trains_a_classifier_for_this_pair(tmp_path: Path) -> None:
    m = models()
    out = tmp_path / "b.jsonl"
    Labeller(m["strong"], m["weak"], m["judge"], retry=FAST).label(prompts(30), out, progress=False)
    data = labelled_training_data(out)
    assert len(data.battles) == 30
    assert len(data.pairs) == 30  # every battle is a strong-vs-weak example under the labelled pair's names
    assert sum(p.target == 1.0 for p in data.pairs) == 10


_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_labeling import models, prompts, FAST
from routing_core.labeling import Labeller
from lc_fakes import FakeOpenAIChat
from test_labeling import weak_reply
m = models(weak=FakeOpenAIChat(model_name="gpt-4o-mini", reply_fn=weak_reply, async_delay=0.03))
Labeller(m["strong"], m["weak"], m["judge"], concurrency=4, retry=FAST).label(prompts(200), {out!r}, progress=False)
"""


def test_killed_halfway_then_rerun_gives_200_battles_none_duplicated(tmp_path: Path) -> None:
    out = tmp_path / "battles.jsonl"
    code = _CHILD.format(tests=str(ROOT / "tests"), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 60:
                break
            time.sleep(0.02)
        assert proc.poll() is None, (
            f"child ended before the kill: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    partial = read_jsonl_rows(out)
    assert 60 <= len(partial) < 200
    m = models()
    report = Labeller(m["strong"], m["weak"], m["judge"], retry=FAST).label(prompts(200), out, progress=False)
    assert report.already_done == len(partial) and report.labelled == 200 - len(partial)
    assert len(m["strong"]._calls) == 200 - len(partial)  # finished prompts are not asked again
    battles = load_battles_jsonl(out)  # the strict loader: every line whole
    assert len(battles) == 200 and len({b.id for b in battles}) == 200
    again = Labeller(m["strong"], m["weak"], m["judge"], retry=FAST).label(prompts(200), out, progress=False)
    assert again.labelled == 0 and len(load_battles_jsonl(out)) == 200


def test_torn_last_line_is_cut_and_the_next_line_starts_clean(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"id": "a", "n": 1}\n{"id": "b", "n"')
    assert [r["id"] for r in read_jsonl_rows(p)] == ["a"]
    with JsonlAppender(p) as f:
        f.write({"id": "c", "n": 3})
    assert p.read_text().splitlines() == ['{"id": "a", "n": 1}', '{"id": "c", "n": 3}']


class Status429(Exception):
    status_code = 429


class Flaky:
    """reply_fn that raises `exc` on the first `times` calls for each prompt containing `key`."""

    def __init__(self, inner: Any, key: str, times: int, exc: type[Exception] | Exception) -> None:
        self.inner, self.key, self.times, self.exc = inner, key, times, exc
        self.count: dict[str, int] = {}

    def __call__(self, messages: list[BaseMessage]) -> str:
        text = _last_human(messages)
        if self.key in text:
            n = self.count[text] = self.count.get(text, 0) + 1
            if n <= self.times:
                raise self.exc if isinstance(self.exc, Exception) else self.exc(f"scripted failure {n}")
        return str(self.inner(messages))


def test_failing_calls_land_in_the_errors_file_with_their_reason(tmp_path: Path) -> None:
    items = prompts(30) + ["boom: this prompt always fails", "mute: the judge gives no grade here"]
    flaky_strong = Flaky(strong_reply, "number 4:", 2, Status429)  # two 429s, then fine: retried
    broken_weak = Flaky(weak_reply, "boom", 99, ValueError("bad request: context too long"))
    mute_judge = Flaky(judge_reply, "mute", 0, ValueError)

    def judge(messages: list[BaseMessage]) -> str:
        return "I cannot decide." if "mute" in _last_human(messages) else mute_judge(messages)

    m = models(
        strong=FakeOpenAIChat(model_name="gpt-4o", reply_fn=flaky_strong),
        weak=FakeOpenAIChat(model_name="gpt-4o-mini", reply_fn=broken_weak),
        judge=FakeOpenAIChat(model_name="gpt-4.1", reply_fn=judge),
    )
    out, errs = tmp_path / "b.jsonl", tmp_path / "e.jsonl"
    report = Labeller(m["strong"], m["weak"], m["judge"], retry=FAST).label(items, out, errs, progress=False)
    assert report.labelled == 30 and report.failed == 2
    assert flaky_strong.count[prompts(30)[4]] == 3
    rows = {r["prompt"][:4]: r for r in read_jsonl_rows(errs)}
    assert set(rows) == {"boom", "mute"}
    assert (
        rows["boom"]["stage"] == "weak"
        and "ValueError: bad request: context too long" in rows["boom"]["reason"]
    )
    assert rows["boom"]["attempts"] == 1  # not retryable: no retry
    assert rows["mute"]["stage"] == "judge" and "no [[1-5]] rating" in rows["mute"]["reason"]
    labelled = {r["id"] for r in read_jsonl_rows(out)}
    assert labelled.isdisjoint(r["id"] for r in rows.values())
    assert len(labelled) + len(rows) == len(items)  # nothing lost
    # a fixed setup on rerun labels the two and empties the errors file
    m = models()
    again = Labeller(m["strong"], m["weak"], m["judge"], retry=FAST).label(items, out, errs, progress=False)
    assert again.labelled == 2 and again.failed == 0 and read_jsonl_rows(errs) == []
    assert len(load_battles_jsonl(out)) == 32


def test_retries_give_up_after_max_attempts() -> None:
    always = Flaky(strong_reply, "", 99, Status429)
    m = models(strong=FakeOpenAIChat(model_name="gpt-4o", reply_fn=always))
    lab = Labeller(m["strong"], m["weak"], m["judge"], retry=RetryPolicy(max_attempts=3, base=0.001))
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        report = lab.label(["a prompt long enough to keep"], Path(d) / "o.jsonl", progress=False)
        (row,) = read_jsonl_rows(Path(d) / "o.errors.jsonl")
    assert report.failed == 1 and row["status"] == 429 and row["attempts"] == 3
    assert "gave up after 3 attempts" in row["reason"]


def test_pairwise_mode_cancels_position_bias(tmp_path: Path) -> None:
    always_a = FakeOpenAIChat(model_name="gpt-4.1", replies=["A looks better. [[A]]"])

    def fair(messages: list[BaseMessage]) -> str:
        text = _last_human(messages)
        a = text.split("[The Start of Assistant A's Answer]")[1].split("[The End")[0]
        return "[[B]]" if "WEAK-BAD" in a else "[[A]]" if "WEAK-BAD" in text else "[[C]]"

    m = models()
    biased = Labeller(m["strong"], m["weak"], always_a, judge_mode="pairwise", retry=FAST)
    biased.label(prompts(9), tmp_path / "biased.jsonl", progress=False)
    assert {b.winner for b in load_battles_jsonl(tmp_path / "biased.jsonl")} == {"tie"}
    m = models(judge=FakeOpenAIChat(model_name="gpt-4.1", reply_fn=fair))
    Labeller(m["strong"], m["weak"], m["judge"], judge_mode="pairwise", retry=FAST).label(
        prompts(9), tmp_path / "fair.jsonl", progress=False
    )
    got = {b.prompt: b.winner for b in load_battles_jsonl(tmp_path / "fair.jsonl")}
    assert got == {p: ("model_a" if "hard" in p else "tie") for p in prompts(9)}
    assert pairwise_winner("A", "B") == "strong" and pairwise_winner("B", "A") == "weak"
    assert pairwise_winner("A", "A") == "tie" and pairwise_winner("C", "B") == "tie"


def test_max_cost_refuses_before_any_call(tmp_path: Path) -> None:
    m = models()
    lab = Labeller(m["strong"], m["weak"], m["judge"], prices=PriceTable())
    with pytest.raises(LabelingError, match="exceeds max_cost"):
        lab.label(prompts(50), tmp_path / "o.jsonl", max_cost=1e-6, progress=False)
    assert m["strong"]._calls == [] and not (tmp_path / "o.jsonl").exists()


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="used by two different prompts"):
        as_items([{"id": "1", "prompt": "first prompt here"}, {"id": "1", "prompt": "second prompt"}])
    with pytest.raises(ValueError, match="empty prompt"):
        as_items(["   "])
    items, dups = as_items(["same prompt twice", "same prompt twice"])
    assert len(items) == 1 and dups == 1
    m = models()
    with pytest.raises(LabelingError, match="same name"):
        Labeller(m["strong"], m["strong"], m["judge"])
    with pytest.raises(LabelingError, match="judge_mode"):
        Labeller(m["strong"], m["weak"], m["judge"], judge_mode="vote")  # type: ignore[arg-type]


def test_grade_parsing_and_retry_classification() -> None:
    assert parse_grade("ok. Rating: [[4]]") == 4 and parse_grade("[[2]] then [[5]]") == 5
    assert parse_grade("Rating: 3") == 3 and parse_grade("no grade") is None and parse_grade("[[7]]") is None
    assert is_retryable(Status429()) and is_retryable(TimeoutError()) and not is_retryable(ValueError())

    class E500(Exception):
        status_code = 503

    class E400(Exception):
        status_code = 400

    assert is_retryable(E500()) and not is_retryable(E400())


def test_rows_keep_answers_and_the_judge_grade(tmp_path: Path) -> None:
    m = models()
    out = tmp_path / "b.jsonl"
    Labeller(m["strong"], m["weak"], m["judge"], retry=FAST).label(prompts(5), out, progress=False)
    for line in out.read_text().splitlines():
        row = json.loads(line)
        assert row["judge"]["mode"] == "grade" and row["judge"]["grade"] in (2, 5)
        assert row["answers"]["model_a"].startswith("STRONG")
