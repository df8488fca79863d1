"""Plain records: a pairwise battle, a prompt scored for several models, a two-model benchmark, prompt-file records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Winner = Literal["model_a", "model_b", "tie"]
WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie")
MIN_PROMPT_CHARS = 16  # the paper drops shorter prompts from training battles


@dataclass(frozen=True, slots=True)
class Battle:
    """One pairwise comparison on one prompt: which of two models answered better (or a tie)."""

    prompt: str
    model_a: str
    model_b: str
    winner: Winner
    source: str = ""
    id: str = ""

    def outcome_for(self, model: str) -> float | None:
        """1 if `model` won, 0 if it lost, 0.5 for a tie, None if it did not play."""
        if model == self.model_a:
            return {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[self.winner]
        if model == self.model_b:
            return {"model_a": 0.0, "model_b": 1.0, "tie": 0.5}[self.winner]
        return None


@dataclass(frozen=True, slots=True)
class ScoredPrompt:
    """A prompt with a quality score per model (correctness 0/1 or a graded score; higher is better)."""

    prompt: str
    scores: Mapping[str, float]
    id: str = ""
    source: str = ""
    group: str = ""  # e.g. MMLU subject or task, for per-group analyses


@dataclass(frozen=True, slots=True)
class BenchmarkItem:
    """One evaluation prompt with the strong and the weak model's quality on it."""

    prompt: str
    strong: float
    weak: float
    id: str = ""
    group: str = ""


@dataclass(slots=True)
class Benchmark:
    """A two-model benchmark: items plus what was dropped on loading and why."""

    name: str
    items: list[BenchmarkItem]
    strong_model: str = "strong"
    weak_model: str = "weak"
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def prompts(self) -> list[str]:
        return [it.prompt for it in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, keep: list[bool], reason: str) -> Benchmark:
        """A copy without the items where `keep` is False, counting them under `reason`."""
        items = [it for it, k in zip(self.items, keep, strict=True) if k]
        dropped = dict(self.dropped)
        dropped[reason] = dropped.get(reason, 0) + len(self.items) - len(items)
        return Benchmark(self.name, items, self.strong_model, self.weak_model, dropped)


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """One record of a prompt file: its 0-based position, where it is in the file, its text and its `id`."""

    index: int
    text: str
    where: str  # "line 3" (text and JSONL files) or "item 3" (a JSON list), 1-based
    id: str | None = None
    truncated: bool = False

    @property
    def empty(self) -> bool:
        """True when there is no text to route on (empty or whitespace only)."""
        return not self.text.strip()


@dataclass(slots=True)
class PromptFile:
    """Every record of a prompt file, in order, plus what was skipped (blank lines of a text file) and why."""

    path: str
    records: list[PromptRecord]
    blank_lines: int = 0

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.records]

    @property
    def truncated(self) -> int:
        return sum(r.truncated for r in self.records)

    def __len__(self) -> int:
        return len(self.records)
