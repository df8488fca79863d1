from __future__ import annotations

import os
import subprocess
import sys

import pytest

from routing_core.costs import DEFAULT_PRICES, CostLedger, Price, PriceTable, count_tokens


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


# --- the cost ledger ------------------------------------------------------------------------------------------


def _ledger() -> CostLedger:
    return CostLedger(PriceTable({"big": (10.0, 30.0), "small": (1.0, 3.0)}, include_defaults=False))


def test_ledger_totals_and_savings_against_always_strong() -> None:
    ledger = _ledger()
    ledger.record_decision("weak")  # the first call is weak: the strong price is learned later
    assert ledger.record_usage("weak", "small", 1000, 100) == pytest.approx(0.0013)
    ledger.record_decision("strong")
    ledger.record_usage("strong", "big", 1000, 100)
    ledger.record_decision("weak", "forced")
    ledger.record_error("weak")
    s = ledger.summary()
    assert (s.calls, s.strong.calls, s.weak.calls, s.weak.errors, s.forced_calls) == (3, 1, 2, 1, 1)
    assert s.strong_share == pytest.approx(1 / 3)
    assert s.cost == pytest.approx(0.013 + 0.0013)
    assert s.always_strong_cost == pytest.approx(2 * 0.013)  # every priced call's tokens at the strong price
    assert s.saved == pytest.approx(0.026 - 0.0143) and s.saved_fraction == pytest.approx(0.45)
    assert s.strong_model == "big" and s.weak.model_names == {"small": 1}
    assert ledger.cost_if_always("small") == pytest.approx(2 * 0.0013)
    assert "saved by routing" in str(s) and s.to_dict()["strong"]["calls"] == 1


def test_ledger_leaves_unpriced_calls_out_and_counts_them() -> None:
    ledger = _ledger()
    ledger.record_decision("weak")
    assert ledger.record_usage("weak", "mystery", 500, 50) is None
    s = ledger.summary()
    assert s.unpriced_calls == 1 and s.cost is None and s.always_strong_cost is None and s.saved is None
    ledger.record_decision("strong")
    ledger.record_usage("strong", "big", 1000, 0)
    s = ledger.summary()
    assert s.cost == pytest.approx(0.01) and s.always_strong_cost == pytest.approx(0.01) and s.saved == 0.0
    assert s.weak.input_tokens == 500 and s.weak.cost is None  # tokens kept, cost unknown


def test_ledger_strong_model_given_or_carried_with_usage() -> None:
    ledger = CostLedger(PriceTable({"big": (10.0, 30.0), "small": (1.0, 3.0)}), strong_model="big")
    ledger.record_decision("weak")
    ledger.record_usage("weak", "small", 1_000_000, 0)
    assert ledger.summary().always_strong_cost == pytest.approx(10.0)
    carried = _ledger()
    carried.record_decision("weak")
    carried.record_usage("weak", "small", 1_000_000, 0, strong_model="big")
    assert carried.summary().always_strong_cost == pytest.approx(10.0)
    carried.reset()
    assert carried.summary().calls == 0 and carried.summary().strong_share is None


def test_ledger_tracks_any_side_key_for_more_models() -> None:
    ledger = CostLedger(PriceTable({"big": (10.0, 30.0), "mid": (3.0, 9.0)}), sides=("big", "mid", "small"))
    ledger.record_decision("mid")
    ledger.record_usage("mid", "mid", 1000, 0, strong_model="big")
    s = ledger.summary()
    assert list(s.sides) == ["big", "mid", "small"] and s.sides["mid"].cost == pytest.approx(0.003)
    assert s.always_strong_cost == pytest.approx(0.01)


def test_summary_of_n_model_keys_reports_per_model_shares() -> None:
    from routing_core.costs import CostLedger

    ledger = CostLedger(sides=("big", "mid", "small"))
    for side in ("big", "small", "small", "mid"):
        ledger.record_decision(side)
    s = ledger.summary()
    assert s.strong_share is None and not s.is_two_model
    assert s.shares() == {"big": 0.25, "mid": 0.25, "small": 0.5}
    assert "shares: big 25.0%, mid 25.0%, small 50.0%" in str(s) and "strong share" not in str(s)
    assert s.to_dict()["shares"]["small"] == 0.5
