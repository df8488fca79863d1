"""Acceptance numbers on the real data in ../shared/data (skipped where it is absent)."""

from __future__ import annotations

import pytest

from routing_core import RandomRouter
from routing_core.data.shared import (
    alpaca_battles,
    dcrouter_scored,
    gsm8k_benchmark,
    is_mmlu_train,
    mmlu_benchmark,
    routerbench_scored,
    zeroeval_scored,
)
from routing_core.evaluation import evaluate_router


@pytest.mark.usefixtures("shared_data")
def test_benchmark_sizes_and_scores() -> None:
    mmlu = mmlu_benchmark("all")
    assert len(mmlu) == 14037 and mmlu.dropped["contaminated_prompts.jsonl"] == 5
    m = evaluate_router(RandomRouter(), mmlu, n_boot=0, repeats=10)
    assert round(100 * m.metrics.strong_score, 2) == 80.59 and round(100 * m.metrics.weak_score, 2) == 68.09
    assert m.metrics.apgr == pytest.approx(0.50, abs=0.02)
    assert m.metrics.cpt["50"] == pytest.approx(0.50, abs=0.03)
    gsm = gsm8k_benchmark()
    assert len(gsm) == 1307
    g = evaluate_router(RandomRouter(), gsm, n_boot=0, repeats=10)
    assert round(100 * g.metrics.strong_score, 2) == 85.77 and round(100 * g.metrics.weak_score, 2) == 63.73
    assert g.metrics.apgr == pytest.approx(0.50, abs=0.02)
    assert g.metrics.cpt["50"] == pytest.approx(0.50, abs=0.03)


@pytest.mark.usefixtures("shared_data")
def test_split_rules() -> None:
    test = mmlu_benchmark("test")
    assert not any(is_mmlu_train(it.prompt) for it in test.items)
    assert 1200 < test.dropped["mmlu training split"] < 1600
    gsm = {p.strip().lower() for p in gsm8k_benchmark().prompts}
    train_prompts = [s.prompt for s in dcrouter_scored("train")]
    assert len(train_prompts) < 5608 - 150  # ~200 verbatim GSM8K questions dropped
    assert not any(p.strip().lower() in gsm for p in train_prompts)
    assert all(s.group != "gsm" for s in zeroeval_scored("all"))
    tr, te = {s.id for s in zeroeval_scored("train")}, {s.id for s in zeroeval_scored("test")}
    assert tr and te and not tr & te
    a_tr, a_te = {b.id for b in alpaca_battles("train")}, {b.id for b in alpaca_battles("test")}
    assert a_tr and a_te and not a_tr & a_te
    rb = routerbench_scored("train")
    assert len(rb) == 2225 and all(len(s.prompt) < 2000 for s in rb if s.group == "arc_challenge")
