"""The LlamaIndex cookbook scripts run offline (scripted local models) and exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COOKBOOK = Path(__file__).resolve().parents[1] / "cookbook"


def run_script(name: str) -> str:
    env = {**os.environ, "ROUTELLM_COOKBOOK_OFFLINE": "1"}
    env.pop("ROUTELLM_ROUTER", None)
    proc = subprocess.run(
        [sys.executable, str(COOKBOOK / name)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=COOKBOOK.parent,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_rag_query_engine_cookbook() -> None:
    out = run_script("llamaindex_rag_query_engine.py")
    assert "response_mode=compact" in out and "response_mode=tree_summarize" in out
    assert out.count("on query_str") == 8  # 4 questions x 2 modes, all routed on the question
    assert "Ilse Marquardt" in out
    assert "of 9 call(s)" in out and "saved by routing: $" in out


def test_agent_cookbook() -> None:
    out = run_script("llamaindex_agent.py")
    assert "tool call  city_population({'city': 'Paris'})" in out
    assert "tool result city_area -> 891.1" in out
    assert "2 LLM call(s), all routed to" in out  # both steps of a tool-using run on one model
    assert "of 7 call(s)" in out


def test_events_cookbook() -> None:
    out = run_script("llamaindex_events.py")
    assert out.count("routing-log decision") == 10 and out.count("routing-log done") == 10
    assert "reason=forced" in out
    assert "LLM calls counted: 10 (routed calls: 10)" in out


@pytest.mark.parametrize(
    "name", ["llamaindex_rag_query_engine.py", "llamaindex_agent.py", "llamaindex_events.py"]
)
def test_cookbooks_show_the_hosted_swap(name: str) -> None:
    source = (COOKBOOK / name).read_text()
    assert "OPENAI_API_KEY" in source and "ANTHROPIC_API_KEY" in source
    assert "DEFAULT_ROUTER" in source
