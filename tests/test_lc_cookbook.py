"""The LangChain cookbook scripts run offline on the scripted fakes and exit 0; the overhead benchmark runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "cookbook/langchain_lcel_chain.py",
            ["[route] strong", "[route] weak", "batch (results keep the input order)"],
        ),
        (
            "cookbook/langchain_tool_agent.py",
            [
                "get_weather({'city': 'Paris'}) -> 18°C and sunny",
                "multiply({'a': 6, 'b': 7}) -> 42",
                "answered by the",
            ],
        ),
        (
            "cookbook/langchain_callbacks.py",
            ["routellm route: router -> ", "saved by routing: $", "on_custom_event routellm_route"],
        ),
    ],
)
def test_cookbook_script_runs_offline(script: str, expected: list[str]) -> None:
    proc = _run(script)
    assert proc.returncode == 0, proc.stderr
    for text in expected:
        assert text in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "script",
    [
        "cookbook/langchain_lcel_chain.py",
        "cookbook/langchain_tool_agent.py",
        "cookbook/langchain_callbacks.py",
    ],
)
def test_openai_flag_needs_a_key(
    script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = importlib.util.spec_from_file_location(f"cookbook_{Path(script).stem}", ROOT / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--openai"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().out


def test_overhead_benchmark_prints_its_table() -> None:
    proc = _run("benchmarks/langchain_overhead.py", "--iterations", "20", "--rounds", "1")
    assert proc.returncode == 0, proc.stderr
    for row in ("invoke", "stream", "ainvoke", "astream", "worst wrapper overhead"):
        assert row in proc.stdout
