"""Token counts with tiktoken (offline) and a small, overridable price table for cost estimates."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

_lock = threading.Lock()


_BUNDLED_CACHE = Path(__file__).parent / "_static" / "tiktoken_cache"  # cl100k_base only
_warned = False


def _offline_tiktoken_cache() -> str | None:
    """A folder of tiktoken rank files on disk: llama-index-core's (cl100k and o200k) or our own (cl100k)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_index.core")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "_static" / "tiktoken_cache"
        if p.is_dir():
            return str(p)
    return str(_BUNDLED_CACHE) if _BUNDLED_CACHE.is_dir() else None


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken encoding from rank files on disk (unless the user set TIKTOKEN_CACHE_DIR): no network."""
    import tiktoken

    with _lock:
        if "TIKTOKEN_CACHE_DIR" not in os.environ:
            cache = _offline_tiktoken_cache()
            if cache:
                os.environ["TIKTOKEN_CACHE_DIR"] = cache
        return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Number of tokens in `text` (cl100k_base by default: a good estimate for most chat models).

    If the encoding cannot be loaded (no rank file on disk and no network), falls back to the usual estimate of
    one token per 4 characters, with one warning, rather than failing the call it is counting for.
    """
    global _warned
    if not text:
        return 0
    try:
        enc = get_encoding(encoding)
    except Exception as e:  # tiktoken raises network and file errors of several kinds
        if not _warned:
            _warned = True
            warnings.warn(
                f"tiktoken encoding {encoding!r} unavailable offline ({type(e).__name__}); estimating tokens as chars/4",
                stacklevel=2,
            )
        return max(1, round(len(text) / 4))
    return len(enc.encode(text, disallowed_special=()))


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M input tokens and per 1M output tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


# List prices in USD per 1M tokens (input, output), as published by the providers; override per app.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4-1106-preview": Price(10.0, 30.0),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-4": Price(30.0, 60.0),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-3.5-turbo": Price(0.5, 1.5),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-3-opus": Price(15.0, 75.0),
    "claude-3-haiku": Price(0.25, 1.25),
    "mixtral-8x7b-instruct": Price(0.6, 0.6),
    "llama-3.1-8b-instruct": Price(0.2, 0.2),
    "llama-3.1-70b-instruct": Price(0.9, 0.9),
}


class PriceTable:
    """Prices by model name, matched exactly, then by the longest known prefix (so dated names resolve)."""

    def __init__(
        self, prices: Mapping[str, Price | tuple[float, float]] | None = None, include_defaults: bool = True
    ):
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES) if include_defaults else {}
        for k, v in (prices or {}).items():
            self.prices[k.lower()] = v if isinstance(v, Price) else Price(float(v[0]), float(v[1]))

    def get(self, model: str | None) -> Price | None:
        if not model:
            return None
        m = model.lower().rsplit("/", 1)[-1]
        if m in self.prices:
            return self.prices[m]
        best = max((k for k in self.prices if m.startswith(k)), key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Cost in USD, or None when the model has no known price."""
        p = self.get(model)
        return None if p is None else p.cost(input_tokens, output_tokens)


# --- the cost ledger: calls, tokens and cost per routed side, and the savings against always-strong ------------


@dataclass(frozen=True, slots=True)
class SideTotals:
    """Totals for one side (`"strong"`, `"weak"`, or a model key) over the calls a ledger has seen."""

    calls: int = 0
    """Routed calls (decisions), including the ones that then failed."""
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_calls: int = 0
    """Finished calls whose token counts were estimated (the provider reported no usage)."""
    cost: float | None = None
    """USD over the priced calls; None when no call of this side had a known price."""
    model_names: dict[str, int] = field(default_factory=dict)
    """Model name (as reported by the provider, else the configured one) -> finished calls."""


@dataclass(frozen=True, slots=True)
class RoutingSummary:
    """What routing did, and what it saved compared with sending every call to the strong model.

    The always-strong baseline prices every priced call's tokens at the strong model's price (it assumes the
    strong model would have read and written as many tokens as the model that answered). Calls whose model has
    no known price are counted in `unpriced_calls` and left out of every cost figure.
    """

    sides: dict[str, SideTotals]
    calls: int
    forced_calls: int
    no_text_calls: int
    cost: float | None
    always_strong_cost: float | None
    saved: float | None
    saved_fraction: float | None
    unpriced_calls: int
    strong_model: str | None

    @property
    def strong(self) -> SideTotals:
        """Totals of the strong side."""
        return self.sides.get("strong", SideTotals())

    @property
    def weak(self) -> SideTotals:
        """Totals of the weak side."""
        return self.sides.get("weak", SideTotals())

    @property
    def strong_share(self) -> float | None:
        """Share of routed calls that went to the strong model (None before any call, or with N model keys)."""
        if not self.calls or not self.is_two_model:
            return None
        return self.strong.calls / self.calls

    @property
    def is_two_model(self) -> bool:
        """Whether the sides are the two-model `strong`/`weak` (else the routing keys of an N-model policy)."""
        return set(self.sides) <= {"strong", "weak"}

    def shares(self) -> dict[str, float]:
        """Share of calls per side (per model key for N models)."""
        return {k: (t.calls / self.calls if self.calls else 0.0) for k, t in self.sides.items()}

    @property
    def total_calls(self) -> int:
        """Alias of `calls`."""
        return self.calls

    @property
    def total_cost(self) -> float | None:
        """Alias of `cost`."""
        return self.cost

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (sides as dicts, plus `strong`, `weak` and `strong_share`)."""
        from dataclasses import asdict

        d = asdict(self)
        d.update(
            strong=asdict(self.strong),
            weak=asdict(self.weak),
            strong_share=self.strong_share,
            shares=self.shares(),
        )
        return d

    def __str__(self) -> str:
        def money(x: float | None) -> str:
            return "n/a" if x is None else f"${x:,.6f}"

        width = max([8, *(len(k) + 2 for k in self.sides)])
        lines = [
            f"{'side':<{width}}{'calls':>7}{'errors':>8}{'in tok':>10}{'out tok':>10}{'cost':>14}  models"
        ]
        for side, t in self.sides.items():
            names = ", ".join(sorted(t.model_names)) or "-"
            lines.append(
                f"{side:<{width}}{t.calls:>7}{t.errors:>8}{t.input_tokens:>10}{t.output_tokens:>10}{money(t.cost):>14}"
                f"  {names}"
            )
        if self.is_two_model:
            share = "n/a" if self.strong_share is None else f"{self.strong_share:.1%}"
            head = f"strong share: {share}"
        else:
            head = "shares: " + ", ".join(f"{k} {v:.1%}" for k, v in self.shares().items())
        lines.append(
            f"{head} of {self.calls} call(s); forced {self.forced_calls}; no text {self.no_text_calls}"
        )
        baseline = (
            "always-strong" if self.is_two_model else f"always {self.strong_model or 'the first model'}"
        )
        lines.append(f"cost: {money(self.cost)}  vs {baseline}: {money(self.always_strong_cost)}")
        if self.saved is not None:
            frac = "" if self.saved_fraction is None else f" ({self.saved_fraction:.1%})"
            lines.append(f"saved by routing: {money(self.saved)}{frac}")
        else:
            lines.append("saved by routing: n/a (price unknown: pass prices for these models)")
        if self.unpriced_calls:
            lines.append(f"unpriced calls (left out of costs): {self.unpriced_calls}")
        return "\n".join(lines)


class _Acc:
    """Mutable per-side running totals (the ledger's private state)."""

    __slots__ = ("calls", "errors", "input_tokens", "output_tokens", "estimated", "cost", "priced", "names")

    def __init__(self) -> None:
        self.calls = self.errors = self.input_tokens = self.output_tokens = self.estimated = self.priced = 0
        self.cost = 0.0
        self.names: dict[str, int] = {}

    def freeze(self) -> SideTotals:
        return SideTotals(
            self.calls,
            self.errors,
            self.input_tokens,
            self.output_tokens,
            self.estimated,
            self.cost if self.priced else None,
            dict(self.names),
        )


class CostLedger:
    """Thread-safe running totals of routed calls: decisions, usage, errors, cost, savings vs always-strong.

    The framework adapters (LangChain's `RoutingCallbackHandler`, LlamaIndex's `RoutingEventHandler`, the CLI's
    `route` summary) only translate their events into three calls: `record_decision` when a model is chosen,
    then `record_usage` when the call finished (tokens) or `record_error` when it failed.

    Args:
        prices: A `PriceTable`, or a mapping `model name -> Price | (usd per 1M input, usd per 1M output)` added
            to the default table.
        strong_model: The strong model's name for the always-strong baseline; when omitted, the `strong_model`
            given with the usage records, else the name of the first strong call.
        sides: The side keys reported even before any call (`("strong", "weak")`; model keys for more models).
    """

    def __init__(
        self,
        prices: PriceTable | Mapping[str, Price | tuple[float, float]] | None = None,
        *,
        strong_model: str | None = None,
        sides: Sequence[str] = ("strong", "weak"),
    ) -> None:
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self._initial_sides = tuple(sides)
        self._given_strong = strong_model
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every total."""
        with self._lock:
            self._sides: dict[str, _Acc] = {s: _Acc() for s in self._initial_sides}
            self._reasons: dict[str, int] = {}
            self._strong_model = self._given_strong
            self._priced_tokens = [0, 0]  # tokens of priced calls, priced at the strong price at summary time
            self._unpriced = 0

    def _acc(self, side: str) -> _Acc:
        acc = self._sides.get(side)
        if acc is None:
            acc = self._sides[side] = _Acc()
        return acc

    def record_decision(self, side: str, reason: str = "router") -> None:
        """One routed call went to `side` (`reason`: "router", "forced" or "no_text")."""
        with self._lock:
            self._acc(side).calls += 1
            self._reasons[reason] = self._reasons.get(reason, 0) + 1

    def record_usage(
        self,
        side: str,
        model_name: str | None,
        input_tokens: int,
        output_tokens: int,
        *,
        estimated: bool = False,
        strong_model: str | None = None,
    ) -> float | None:
        """A finished call's tokens; returns its cost in USD (None when `model_name` has no known price)."""
        cost = self.prices.cost(model_name, input_tokens, output_tokens)
        with self._lock:
            acc = self._acc(side)
            acc.input_tokens += int(input_tokens)
            acc.output_tokens += int(output_tokens)
            acc.estimated += int(estimated)
            if model_name:
                acc.names[model_name] = acc.names.get(model_name, 0) + 1
            if self._strong_model is None:
                self._strong_model = strong_model or (model_name if side == "strong" else None)
            if cost is None:
                self._unpriced += 1
            else:
                acc.cost += cost
                acc.priced += 1
                self._priced_tokens[0] += int(input_tokens)
                self._priced_tokens[1] += int(output_tokens)
        return cost

    def record_error(self, side: str) -> None:
        """A routed call on `side` failed."""
        with self._lock:
            self._acc(side).errors += 1

    def totals(self) -> dict[str, SideTotals]:
        """A snapshot of the per-side totals."""
        with self._lock:
            return {s: a.freeze() for s, a in self._sides.items()}

    def cost_if_always(self, model_name: str | None) -> float | None:
        """What the priced calls would have cost on `model_name` alone (None without a price or priced calls)."""
        with self._lock:
            tokens_in, tokens_out = self._priced_tokens
            priced = sum(a.priced for a in self._sides.values())
        return self.prices.cost(model_name, tokens_in, tokens_out) if priced else None

    def summary(self) -> RoutingSummary:
        """Calls, tokens and cost per side, and the savings against always calling the strong model."""
        with self._lock:
            sides = {s: a.freeze() for s, a in self._sides.items()}
            priced = sum(a.priced for a in self._sides.values())
            cost = sum(a.cost for a in self._sides.values()) if priced else None
            reasons = dict(self._reasons)
            unpriced = self._unpriced
            strong_model = self._strong_model
        always = self.cost_if_always(strong_model)
        saved = None if always is None or cost is None else always - cost
        return RoutingSummary(
            sides=sides,
            calls=sum(t.calls for t in sides.values()),
            forced_calls=reasons.get("forced", 0),
            no_text_calls=reasons.get("no_text", 0),
            cost=cost,
            always_strong_cost=always,
            saved=saved,
            saved_fraction=saved / always if saved is not None and always else None,
            unpriced_calls=unpriced,
            strong_model=strong_model,
        )
