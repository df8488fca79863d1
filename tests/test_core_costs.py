from __future__ import annotations

import os
import subprocess
import sys

import pytest

from routing_core.costs import DEFAULT_PRICES, Price, PriceTable, count_tokens


def test_count_tokens_offline() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2


def test_bundled_rank_file_works_without_llama_index() -> None:
    # a fresh interpreter where llama_index cannot be imported and no cache dir is set: our own file serves
    code = (
        "import sys; sys.modules['llama_index'] = None; sys.modules['llama_index.core'] = None\n"
        "from routing_core.costs import count_tokens, _offline_tiktoken_cache\n"
        "assert _offline_tiktoken_cache().endswith('tiktoken_cache'), _offline_tiktoken_cache()\n"
        "print(count_tokens('hello world'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_price_table_lookup_and_override() -> None:
    table = PriceTable({"my-model": (1.0, 2.0)})
    assert table.get("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]  # longest known prefix
    assert table.get("openai/gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.cost("my-model", 1_000_000, 500_000) == pytest.approx(2.0)
    assert table.cost("unknown-model", 10, 10) is None
    assert Price(10, 30).cost(1000, 1000) == pytest.approx(0.04)
    assert PriceTable(include_defaults=False).get("gpt-4o") is None
