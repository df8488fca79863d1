"""Preference data and benchmarks as plain typed records, plus loaders for every format a router trains on."""

from routing_core.data.aliases import canonical_model
from routing_core.data.loaders import (
    battles_from_scores,
    load_arena_battles,
    load_battles,
    load_battles_jsonl,
    load_benchmark,
    load_benchmark_csv,
    load_correctness_long,
    load_correctness_wide,
    load_gsm8k,
    load_judge_verdicts,
    load_mmlu,
    load_mt_bench,
    load_prompts,
)
from routing_core.data.records import Battle, Benchmark, BenchmarkItem, ScoredPrompt

__all__ = [
    "Battle",
    "Benchmark",
    "BenchmarkItem",
    "ScoredPrompt",
    "battles_from_scores",
    "canonical_model",
    "load_arena_battles",
    "load_battles",
    "load_battles_jsonl",
    "load_benchmark",
    "load_benchmark_csv",
    "load_correctness_long",
    "load_correctness_wide",
    "load_gsm8k",
    "load_judge_verdicts",
    "load_mmlu",
    "load_mt_bench",
    "load_prompts",
]
