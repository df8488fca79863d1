"""`RoutingCallbackHandler`: log routing decisions and keep running totals of calls, tokens and cost per side."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_routellm._routing import ROUTE_EVENT, SIDES, message_text
from routing_core.costs import Price, PriceTable, count_tokens

_log = logging.getLogger("langchain_routellm")


@dataclass
class SideTotals:
    """Running totals for one side."""

    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_calls: int = 0
    """Calls whose token counts were estimated with tiktoken (no usage metadata from the provider)."""
    cost: float | None = None
    """USD; None when no call of this side had a known price."""
    model_names: dict[str, int] = field(default_factory=dict)
    """Model name (as reported by the provider, else the configured one) -> number of calls."""

    def _add_cost(self, cost: float | None) -> None:
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


@dataclass
class RoutingSummary:
    """What routing did: calls, tokens and cost per side, and what always calling the strong model would cost.

    `always_strong_cost` prices every call's tokens (including the weak ones) at the strong model's price; it is
    None when that price, or the price of some answered call, is unknown. `saved` and `saved_fraction` compare it
    with `total_cost`.
    """

    strong: SideTotals
    weak: SideTotals
    strong_model: str | None
    total_calls: int
    strong_share: float | None
    total_cost: float | None
    always_strong_cost: float | None
    saved: float | None
    saved_fraction: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        def money(x: float | None) -> str:
            return "n/a" if x is None else f"${x:,.6f}"

        lines = [f"{'side':<8}{'calls':>7}{'errors':>8}{'in tok':>10}{'out tok':>10}{'cost':>14}  models"]
        for side, t in (("strong", self.strong), ("weak", self.weak)):
            names = ", ".join(sorted(t.model_names)) or "-"
            lines.append(
                f"{side:<8}{t.calls:>7}{t.errors:>8}{t.input_tokens:>10}{t.output_tokens:>10}{money(t.cost):>14}"
                f"  {names}"
            )
        share = "n/a" if self.strong_share is None else f"{self.strong_share:.1%}"
        lines.append(f"strong share: {share} of {self.total_calls} call(s)")
        lines.append(f"cost: {money(self.total_cost)}  vs always-strong: {money(self.always_strong_cost)}")
        if self.saved is not None:
            frac = "" if self.saved_fraction is None else f" ({self.saved_fraction:.1%})"
            lines.append(f"saved by routing: {money(self.saved)}{frac}")
        else:
            lines.append("saved by routing: n/a (price unknown: pass prices= to RoutingCallbackHandler)")
        return "\n".join(lines)


@dataclass
class _Pending:
    decision: dict[str, Any] | None = None
    messages: list[BaseMessage] | None = None


class RoutingCallbackHandler(BaseCallbackHandler):
    """Logs every routing decision and keeps thread-safe running totals per side.

    Attach it like any callback handler (to the model, or per call via `config={"callbacks": [handler]}`). It
    listens to the `routellm_route` event of `RoutedChatModel` and to the end (or error) of the same chat-model
    run. Token counts come from the answer's `usage_metadata`; when a provider reports none, they are estimated
    offline with tiktoken (counted in `estimated_calls`). Costs use `routing_core.costs.PriceTable`.

    Args:
        prices: A `PriceTable`, or a mapping `model name -> (usd per 1M input, usd per 1M output)` added to the
            default table. Matching is exact, then by longest prefix (dated names resolve).
        strong_model: The strong model's name for the always-strong comparison; learned from the first strong
            call when omitted.
        logger: Where decisions are logged (default: the "langchain_routellm" logger).
        log_level: Level of the per-decision log line (default INFO).

    Example:
        ```python
        handler = RoutingCallbackHandler(prices={"my-weak-model": (0.1, 0.4)})
        model.invoke("hi", config={"callbacks": [handler]})
        print(handler.summary())
        ```
    """

    run_inline: bool = True  # cheap and thread-safe: no executor hop on async runs

    def __init__(
        self,
        prices: PriceTable | Mapping[str, Price | tuple[float, float]] | None = None,
        *,
        strong_model: str | None = None,
        logger: logging.Logger | None = None,
        log_level: int = logging.INFO,
    ) -> None:
        super().__init__()
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self.logger = logger or _log
        self.log_level = log_level
        self._strong_model = strong_model
        self._lock = threading.Lock()
        self._pending: dict[UUID, _Pending] = {}
        self._totals = {side: SideTotals() for side in SIDES}
        # always-strong estimate: the strong price applied to every call's tokens
        self._tokens_all = [0, 0]
        self._unpriced_calls = 0

    # --- callback hooks -----------------------------------------------------------------------------------

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        if len(messages) == 1:  # kept only to estimate input tokens when the provider reports no usage
            with self._lock:
                self._pending.setdefault(run_id, _Pending()).messages = messages[0]

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if name != ROUTE_EVENT or not isinstance(data, dict):
            return
        with self._lock:
            self._pending.setdefault(run_id, _Pending()).decision = dict(data)
        win_rate = data.get("win_rate")
        self.logger.log(
            self.log_level,
            "routellm route: %s -> %s (%s; router=%s win_rate=%s threshold=%s)",
            data.get("reason", "router"),
            data.get("model"),
            data.get("model_name"),
            data.get("router"),
            "n/a" if win_rate is None else f"{win_rate:.4f}",
            data.get("threshold"),
        )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None or pending.decision is None:
            return
        decision = pending.decision
        side = decision.get("model")
        if side not in SIDES:
            return
        message = _first_message(response)
        name = _reported_name(message, response) or decision.get("model_name")
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        if usage:
            tokens_in, tokens_out, estimated = int(usage["input_tokens"]), int(usage["output_tokens"]), False
        else:
            tokens_in = sum(count_tokens(message_text(m)) for m in pending.messages or [])
            tokens_out = _estimate_output(message)
            estimated = True
        cost = self.prices.cost(name, tokens_in, tokens_out)
        with self._lock:
            totals = self._totals[side]
            totals.calls += 1
            totals.input_tokens += tokens_in
            totals.output_tokens += tokens_out
            totals.estimated_calls += int(estimated)
            totals._add_cost(cost)
            if name:
                totals.model_names[name] = totals.model_names.get(name, 0) + 1
            if side == "strong" and self._strong_model is None:
                self._strong_model = name
            self._tokens_all[0] += tokens_in
            self._tokens_all[1] += tokens_out
            self._unpriced_calls += int(cost is None)
        self.logger.debug(
            "routellm usage: %s %s in=%d out=%d%s cost=%s",
            side,
            name,
            tokens_in,
            tokens_out,
            " (estimated)" if estimated else "",
            cost,
        )

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
            side = pending.decision.get("model") if pending and pending.decision else None
            if side in SIDES:
                self._totals[side].errors += 1
        if side in SIDES:
            self.logger.warning(
                "routellm call on the %s model failed: %s: %s", side, type(error).__name__, error
            )

    # --- results ------------------------------------------------------------------------------------------

    @property
    def totals(self) -> dict[str, SideTotals]:
        """A snapshot of the per-side totals."""
        with self._lock:
            return {side: _copy(t) for side, t in self._totals.items()}

    def summary(self) -> RoutingSummary:
        """Calls, tokens and cost per side, and the savings against always calling the strong model."""
        with self._lock:
            strong, weak = _copy(self._totals["strong"]), _copy(self._totals["weak"])
            tokens_in, tokens_out = self._tokens_all
            unpriced = self._unpriced_calls
            strong_model = self._strong_model
        total = strong.calls + weak.calls
        total_cost = None
        if total and not unpriced:
            total_cost = (strong.cost or 0.0) + (weak.cost or 0.0)
        always = self.prices.cost(strong_model, tokens_in, tokens_out) if total else None
        saved = None if always is None or total_cost is None else always - total_cost
        return RoutingSummary(
            strong=strong,
            weak=weak,
            strong_model=strong_model,
            total_calls=total,
            strong_share=strong.calls / total if total else None,
            total_cost=total_cost,
            always_strong_cost=always,
            saved=saved,
            saved_fraction=None if saved is None or not always else saved / always,
        )

    def reset(self) -> None:
        """Forget all totals (pending runs are kept)."""
        with self._lock:
            self._totals = {side: SideTotals() for side in SIDES}
            self._tokens_all = [0, 0]
            self._unpriced_calls = 0


def _copy(t: SideTotals) -> SideTotals:
    return SideTotals(
        t.calls, t.errors, t.input_tokens, t.output_tokens, t.estimated_calls, t.cost, dict(t.model_names)
    )


def _first_message(response: LLMResult) -> BaseMessage | None:
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                return generation.message
    return None


def _reported_name(message: BaseMessage | None, response: LLMResult) -> str | None:
    name = message.response_metadata.get("model_name") if message is not None else None
    if not name and response.llm_output:
        name = response.llm_output.get("model_name")
    return name if isinstance(name, str) and name else None


def _estimate_output(message: BaseMessage | None) -> int:
    if message is None:
        return 0
    n = count_tokens(message_text(message))
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            n += count_tokens(call["name"]) + count_tokens(json.dumps(call["args"], ensure_ascii=False))
    return n


__all__: Sequence[str] = ["RoutingCallbackHandler", "RoutingSummary", "SideTotals"]
