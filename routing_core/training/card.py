"""The model card written next to every trained checkpoint: what the router is, its data and licenses, labels."""

from __future__ import annotations

import json
from typing import Any

from routing_core.training.data import TrainingData

LICENSES = {
    "shared:mmlu": "RouteLLM MMLU responses (lm-sys/RouteLLM), Apache-2.0",
    "shared:routerbench": "RouterBench 0-shot via RouterDC (research use; no license stated)",
    "shared:zeroeval": "ZeroEval correctness labels (yuchenlin/ZeroEval), Apache-2.0 (items MIT)",
    "shared:dcrouter": "LLMRouter DC-Router data (ulab-uiuc/LLMRouter), MIT",
    "shared:alpaca": "alpaca_eval judge verdicts (tatsu-lab/alpaca_eval), data CC BY-NC 4.0",
}


def model_card(
    router: Any, data: TrainingData, metrics: dict[str, Any] | None = None, notes: str = ""
) -> str:
    """A markdown model card: what the router is, data and licenses, label mapping, metrics."""
    doc = (type(router).__doc__ or "").strip()
    summary = doc.splitlines()[0] if doc else ""
    lines = [
        f"# `{router.name}` router checkpoint",
        "",
        f"Router kind: `{router.name}` ({summary})",
        f"Embedder: `{router.embedder_name}`" if router.uses_embeddings else "Embedder: none",
        f"Strong model: `{getattr(router, 'strong_model', 'GPT-4 class')}`; weak model: `{getattr(router, 'weak_model', 'Mixtral class')}`",
        "",
        "## Training data",
        "",
        "| source | battles | license |",
        "|---|---|---|",
    ]
    for spec, n in data.sources.items():
        lines.append(f"| `{spec}` | {n} | {LICENSES.get(spec.partition('@')[0], 'see the source')} |")
    lines += [
        "",
        f"Strong-vs-weak classifier examples: {len(data.pairs)} (battles between a strong-tier and a weak-tier model).",
        "",
        "## Label mapping",
        "",
        "- Correctness tables: per prompt and model pair, right beats wrong; both right or both wrong is a tie",
        "  (the paper's golden-label augmentation).",
        "- Judge verdicts (alpaca_eval): preference < 1.5 the first output wins, > 1.5 the second, 1.5 a tie.",
        "- Strong tier: GPT-4-Turbo class (`gpt-4-1106-preview`, `gpt-4-turbo-2024-04-09`); weak tier:",
        "  `mixtral-8x7b-instruct-v0.1`. Classifier target: P(strong wins), a tie counting 0.5.",
        "- Splits: MMLU training split only (sha1 % 10 == 0); GSM8K never; routerbench/dcrouter own train files;",
        "  alpaca_eval and zeroeval by item id (80% train); dcrouter rows that are GSM8K questions are dropped.",
        "",
        "## Calibration",
        "",
        f"Win rates are Platt-calibrated on held-out validation pairs; reference win rates for `strong_fraction` come from {router.training_info.get('reference', 'n/a')}.",
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(router.get_params(), indent=1, default=str, sort_keys=True)[:3000],
        "```",
        "",
        "## Training details",
        "",
        "```json",
        json.dumps({k: v for k, v in router.training_info.items() if k != "tiers"}, indent=1, default=str)[
            :3000
        ],
        "```",
    ]
    if metrics:
        lines += ["", "## Metrics", "", "```json", json.dumps(metrics, indent=1, default=float), "```"]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
