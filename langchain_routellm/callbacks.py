"""`RoutingCallbackHandler`: log routing decisions and keep running totals of calls, tokens and cost per side
("strong"/"weak", or each model's routing key for `RoutedChatModel(models=...)`).

A thin adapter: LangChain callbacks in, `routing_core.costs.CostLedger` records out (the same ledger, summary and
savings arithmetic as the LlamaIndex event handler and the CLI).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_routellm._routing import ROUTE_EVENT, SIDES, message_text
from routing_core.costs import CostLedger, Price, PriceTable, RoutingSummary, SideTotals, count_tokens

_log = logging.getLogger("langchain_routellm")


@dataclass
class _Pending:
    decision: dict[str, Any] | None = None
    messages: list[BaseMessage] | None = None


class RoutingCallbackHandler(BaseCallbackHandler):
    """Logs every routing decision and keeps thread-safe running totals per side (per model for N models).

    Attach it like any callback handler (to the model, or per call via `config={"callbacks": [handler]}`). It
    listens to the `routellm_route` event of `RoutedChatModel` and to the end (or error) of the same chat-model
    run. A fallback (`RoutedChatModel(fallback="other")`) sends a second event in the run: the failed side gets
    an error, the side that answered a call (reason "fallback") and the tokens, so `calls` counts the calls each
    side received. Token counts come from the answer's `usage_metadata`; when a provider reports none, they are estimated
    offline with tiktoken (counted in `estimated_calls`). Costs use `routing_core.costs.PriceTable`.

    Args:
        prices: A `PriceTable`, or a mapping `model name -> (usd per 1M input, usd per 1M output)` added to the
            default table. Matching is exact, then by longest prefix (dated names resolve).
        strong_model: The strong model's name for the always-strong comparison; learned from the first strong
            call when omitted. For N models, the model to compare against ("what if every call had gone to
            gpt-4o"); without it the savings are n/a.
        sides: The side keys reported before any call: ("strong", "weak") by default; `routed.sides` for a
            `RoutedChatModel(models=...)`. When omitted and the first decision names a routing key of N models,
            the ledger reports those keys only (no empty strong/weak rows).
        logger: Where decisions are logged (default: the "langchain_routellm" logger).
        log_level: Level of the per-decision log line (default INFO).

    Example:
        ```python
        handler = RoutingCallbackHandler(prices={"my-weak-model": (0.1, 0.4)})
        model.invoke("hi", config={"callbacks": [handler]})
        print(handler.summary())

        # N models (RoutedChatModel(models={"gpt-4o": ..., "mini": ..., "haiku": ...})): totals per routing key
        handler = RoutingCallbackHandler(strong_model="gpt-4o")  # savings against always calling gpt-4o
        routed.invoke("hi", config={"callbacks": [handler]})
        handler.summary().sides["mini"].calls
        ```
    """

    run_inline: bool = True  # cheap and thread-safe: no executor hop on async runs

    def __init__(
        self,
        prices: PriceTable | Mapping[str, Price | tuple[float, float]] | None = None,
        *,
        strong_model: str | None = None,
        sides: Sequence[str] | None = None,
        logger: logging.Logger | None = None,
        log_level: int = logging.INFO,
    ) -> None:
        super().__init__()
        if isinstance(sides, str):
            raise TypeError(f"sides must be a sequence of side keys, not a string: got {sides!r}")
        self._strong_model = strong_model
        self._default_sides = sides is None
        self.ledger = CostLedger(
            prices, strong_model=strong_model, sides=SIDES if sides is None else tuple(sides)
        )
        self.prices = self.ledger.prices
        self.logger = logger or _log
        self.log_level = log_level
        self._lock = threading.Lock()
        self._pending: dict[UUID, _Pending] = {}

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
        side = data.get("side")
        with self._lock:
            self._pending.setdefault(run_id, _Pending()).decision = dict(data)
            if isinstance(side, str):
                self._adopt(side)
        failed = data.get("fallback_from")
        if failed is not None:  # a second event of the run: the chosen side failed, another one answers
            if isinstance(failed, str):
                self.ledger.record_error(failed)
            if isinstance(side, str):
                self.ledger.record_decision(side, "fallback")
            self.logger.warning(
                "routellm fallback: the %s model failed (%s), the %s model (%s) answers",
                failed,
                data.get("fallback_error"),
                data.get("side"),
                data.get("model_name"),
            )
            return
        if isinstance(side, str):
            self.ledger.record_decision(side, data.get("reason", "router"))
        qualities = data.get("qualities")
        if isinstance(qualities, dict):  # N models: the predicted quality of each
            shown = ", ".join(
                f"{k}={v:.3f}" if isinstance(v, int | float) else f"{k}={v}" for k, v in qualities.items()
            )
            self.logger.log(
                self.log_level,
                "routellm route: %s -> %s (%s; router=%s qualities={%s} lambda=%s margin=%s)",
                data.get("reason", "router"),
                side,
                data.get("model_name"),
                data.get("router"),
                shown,
                data.get("lambda"),
                data.get("margin"),
            )
            return
        win_rate = data.get("win_rate")
        self.logger.log(
            self.log_level,
            "routellm route: %s -> %s (%s; router=%s win_rate=%s threshold=%s)",
            data.get("reason", "router"),
            data.get("side"),
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
        side = decision.get("side")
        if not isinstance(side, str):
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
        cost = self.ledger.record_usage(side, name, tokens_in, tokens_out, estimated=estimated)
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
        side = pending.decision.get("side") if pending and pending.decision else None
        if isinstance(side, str):
            self.ledger.record_error(side)
            self.logger.warning(
                "routellm call on the %s model failed: %s: %s", side, type(error).__name__, error
            )

    def _adopt(self, side: str) -> None:
        """With the default sides, the first decision of an N-model router (a routing key that is not "strong" or
        "weak") replaces the still-empty ledger by one keyed by the routing keys only (called under the lock)."""
        if not self._default_sides:
            return
        if side not in SIDES:
            if self.ledger.summary().calls == 0:
                self.ledger = CostLedger(self.prices, strong_model=self._strong_model, sides=())
            self._default_sides = False

    # --- results ------------------------------------------------------------------------------------------

    @property
    def totals(self) -> dict[str, SideTotals]:
        """A snapshot of the per-side totals."""
        return self.ledger.totals()

    def summary(self) -> RoutingSummary:
        """Calls, tokens and cost per side, and the savings against always calling the strong model."""
        return self.ledger.summary()

    def reset(self) -> None:
        """Forget all totals (pending runs are kept); the side keys the ledger reports stay as they are."""
        self.ledger.reset()


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
