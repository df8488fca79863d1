"""Labelling through real `ChatOpenAI` clients against a scripted OpenAI-compatible server on 127.0.0.1.

The server answers chat completions, returns 429 (with Retry-After) and 500 on cue, and counts requests per
prompt, so the tests see the labeller's own retries (the clients get max_retries=0) and the errors file.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_openai")

from langchain_openai import ChatOpenAI  # noqa: E402

from routing_core import labeling_cli  # noqa: E402
from routing_core.data.loaders import load_battles_jsonl  # noqa: E402
from routing_core.labeling import Labeller, RetryPolicy, read_jsonl_rows  # noqa: E402


class StubOpenAI(ThreadingHTTPServer):
    """Scripted /v1/chat/completions: `script[prompt_key]` is a list of statuses to return before a 200."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.script: dict[str, list[int]] = {}
        self.requests: dict[str, int] = {}
        self.models_seen: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: StubOpenAI

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        messages = body["messages"]
        user = str(messages[-1]["content"])
        is_judge = any("impartial judge" in str(m.get("content")) for m in messages)
        key = ("judge:" if is_judge else f"{body['model']}:") + user.split("\n")[0][:60]
        srv = self.server
        with srv.lock:
            srv.models_seen.add(body["model"])
            n = srv.requests[key] = srv.requests.get(key, 0) + 1
            plan = next((v for k, v in srv.script.items() if k in key), [])
        if n <= len(plan) or (plan and plan[-1] == -500):
            status = abs(plan[min(n, len(plan)) - 1])
            headers = {"Retry-After": "0"} if status == 429 else {}
            self._send(status, {"error": {"message": f"scripted {status}", "type": "server_error"}}, headers)
            return
        if is_judge:
            text = "The answer matches the reference. Rating: [[" + ("2" if "tricky" in user else "4") + "]]"
        else:
            text = f"{body['model']} says: an answer to {user[:30]}"
        self._send(
            200,
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
            },
        )


@pytest.fixture
def stub() -> Iterator[StubOpenAI]:
    srv = StubOpenAI()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


PROMPTS = [f"stub prompt {i}: explain item {i} in detail" for i in range(12)] + [
    "tricky prompt: prove it please"
]


def _client(stub: StubOpenAI, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=stub.url, api_key="sk-test", max_retries=0, timeout=10)  # type: ignore[arg-type]


def test_chatopenai_429_and_500_are_retried_and_a_dead_prompt_lands_in_errors(
    stub: StubOpenAI, tmp_path: Path
) -> None:
    stub.script = {
        "gpt-4o:stub prompt 3:": [429, 500],  # strong: two failures, then fine
        "gpt-4o-mini:stub prompt 5:": [-500],  # weak: always 500
    }
    lab = Labeller(
        _client(stub, "gpt-4o"),
        _client(stub, "gpt-4o-mini"),
        _client(stub, "gpt-4.1"),
        concurrency=4,
        retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.05),
    )
    out = tmp_path / "b.jsonl"
    report = lab.label(PROMPTS, out, progress=False)
    assert report.labelled == len(PROMPTS) - 1 and report.failed == 1
    assert stub.requests["gpt-4o:stub prompt 3: explain item 3 in detail"] == 3
    assert stub.requests["gpt-4o-mini:stub prompt 5: explain item 5 in detail"] == 3
    (err,) = read_jsonl_rows(out.with_name("b.errors.jsonl"))
    assert err["prompt"] == PROMPTS[5] and err["stage"] == "weak" and err["status"] == 500
    assert err["reason"].startswith("gave up after 3 attempts: ") and "Error code: 500" in err["reason"]
    battles = {b.prompt: b for b in load_battles_jsonl(out)}
    assert battles["tricky prompt: prove it please"].winner == "model_a"  # grade 2 < 4: strong wins
    assert battles[PROMPTS[0]].winner == "model_b"  # grade 4: the weak answer was good enough
    # usage comes from the server (20 in / 10 out per call) and is priced from the table
    assert report.spent_usd is not None and report.spent_usd > 0


def test_label_cli_run_with_model_strings(
    stub: StubOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    stub.script = {"gpt-4o-mini:stub prompt 2:": [429]}
    src = tmp_path / "prompts.jsonl"
    src.write_text("".join(json.dumps({"id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    labeling_cli.add_parser(sub)
    out = tmp_path / "battles.jsonl"
    argv = ["label", "--prompts", str(src), "--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini"]
    argv += [
        "--judge",
        "openai:gpt-4.1",
        "--out",
        str(out),
        "--backoff",
        "0.01",
        "--json",
        str(tmp_path / "r.json"),
    ]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert f"estimated cost for {len(PROMPTS)} prompt(s): $" in captured.out
    assert "labelling (est. $" in captured.err and f"{len(PROMPTS)}/{len(PROMPTS)}" in captured.err
    assert stub.models_seen == {"gpt-4o", "gpt-4o-mini", "gpt-4.1"}
    assert stub.requests["gpt-4o-mini:stub prompt 2: explain item 2 in detail"] == 2  # one 429, then fine
    battles = load_battles_jsonl(out)
    assert sorted(b.id for b in battles) == sorted(f"p{i}" for i in range(len(PROMPTS)))
    assert json.loads((tmp_path / "r.json").read_text())["labelled"] == len(PROMPTS)
    # a rerun has nothing left to do; --dry-run prints an estimate for zero prompts
    args = parser.parse_args([*argv, "--dry-run"])
    assert args.func(args) == 0
    assert "estimated cost for 0 prompt(s)" in capsys.readouterr().out
