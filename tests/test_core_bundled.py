"""The bundled checkpoints: load offline by name, agree batch vs single, calibrate, stay small, carry cards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routing_core import DEFAULT_ROUTER, available_routers, load_router
from routing_core.checkpoints import PRETRAINED_DIR, bundled_names

PROMPTS = [
    "Hi! How are you?",
    "Prove that there are infinitely many primes.",
    "Write a Python function to merge two sorted lists.",
]
FAST = [n for n in bundled_names() if n not in ("causal_llm",)]


def test_default_router_is_bundled_and_everything_is_small() -> None:
    assert DEFAULT_ROUTER == "difficulty" and DEFAULT_ROUTER in bundled_names()
    # the routing protocol (docs/results.md) keeps only routers that do no harm; baselines are training-free
    assert {"difficulty", "random", "length"} <= set(available_routers())
    total = sum(f.stat().st_size for f in PRETRAINED_DIR.rglob("*") if f.is_file())
    assert total < 40 * 2**20, f"bundled weights are {total / 2**20:.1f} MB"
    for name in bundled_names():
        folder = PRETRAINED_DIR / name
        card = (folder / "README.md").read_text()
        assert "Training data" in card and "license" in card.lower() and "Label mapping" in card
        assert not [f for f in folder.iterdir() if f.suffix in (".pkl", ".pt", ".bin", ".pickle")]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST)
def test_bundled_router_loads_offline_and_is_consistent(name: str) -> None:
    router = load_router(name)
    batch = router.win_rate(PROMPTS)
    assert batch.shape == (3,) and ((batch >= 0) & (batch <= 1)).all()
    single = np.concatenate([router.win_rate([p]) for p in PROMPTS])
    np.testing.assert_allclose(single, batch, atol=1e-5)
    t = router.threshold_for_strong_fraction(0.5)
    ref = np.asarray(router.reference_win_rates)
    assert abs(np.mean(ref >= t) - 0.5) < 0.05
    cfg = json.loads((PRETRAINED_DIR / name / "config.json").read_text())
    assert cfg["router"] == (name if name != "multi" else "quality_linear") and cfg["reference_win_rates"]


def test_length_baseline_loads_without_a_checkpoint() -> None:
    router = load_router("length")
    w = router.win_rate(["short", "a much longer prompt " * 20])
    assert w[1] > w[0]
