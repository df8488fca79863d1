"""Orchestration: fit a router on TrainingData, Platt-calibrate it on validation pairs, set reference win rates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from routing_core.errors import DataError
from routing_core.training.data import TrainingData

MIN_CALIBRATION_PAIRS = 20  # fewer validation pairs (or one class only) would make Platt scaling degenerate


def reference_prompts() -> tuple[list[str], str]:
    """The calibration sample: Arena-Hard prompts when ../shared/data is present."""
    from routing_core.data.shared import arena_hard_prompts, shared_data_dir

    if shared_data_dir() is None:
        return [], "none"
    return arena_hard_prompts(), "arena_hard_v0.1 (500 Chatbot Arena prompts)"


def train_router(
    name: str,
    data: TrainingData,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    calibrate: bool = True,
    reference: Sequence[str] | None = None,
    reference_name: str = "training prompts",
    **opts: Any,
) -> Any:
    """Fit router `name` on `data`, Platt-calibrate it on the validation pairs, and set reference win rates."""
    from routing_core.registry import get_router_class
    from routing_core.routers._base import TrainedRouter, split_pairs

    cls = get_router_class(name)
    if not hasattr(cls, "train"):
        raise ValueError(f"router {name!r} cannot be trained")
    if embed is None:
        from routing_core.embedders import resolve_embedder

        embedder = resolve_embedder(opts.get("embedder"))
        embed = embedder.embed
    if not data.pairs and cls.trains_on == "pairs":
        raise DataError(
            "training data", "no strong-tier vs weak-tier battles: classifiers have nothing to learn from"
        )
    router = cls.train(data, embed, **opts)
    _, val = split_pairs(data.pairs)
    uses_emb = router.uses_embeddings
    calibration = "none"
    if calibrate and isinstance(router, TrainedRouter):
        targets = np.array([x.target for x in val])
        if len(val) < MIN_CALIBRATION_PAIRS or np.ptp(targets) == 0:
            calibration = f"skipped: {len(val)} validation pair(s)" + (
                ", all with one outcome" if len(val) and np.ptp(targets) == 0 else ""
            )
        else:
            vp = [x.prompt for x in val]
            router.fit_calibration(vp, targets, embed(vp) if uses_emb else None)
            calibration = f"platt on {len(val)} validation pairs"
    ref = list(reference) if reference else sorted({x.prompt for x in data.pairs})[:2000]
    if ref and isinstance(router, TrainedRouter):
        ref_emb: Any = embed(ref) if uses_emb else None  # None: the router reads the text itself
        router.set_reference(router.win_rate_from_embeddings(ref, ref_emb))
    router.training_info["calibration"] = calibration
    router.training_info.update(
        {
            "data": dict(data.sources),
            "pairs": len(data.pairs),
            "validation_pairs": len(val),
            "reference": reference_name,
        }
    )
    return router
