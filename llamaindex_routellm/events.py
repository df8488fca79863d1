"""Routing events for LlamaIndex instrumentation, and an event handler that totals calls, tokens and cost.

Every call that a `RoutedLLM` forwards to one of its models dispatches, through the LlamaIndex
instrumentation dispatcher:

* one `RoutingDecisionEvent` when the model is chosen (before the model is called), and
* one `RoutedCallEndEvent` when the call is over (for streams: when the stream is exhausted, fails or is
  closed), with the token usage of the call.

The LLM events themselves (`LLMChatStartEvent`, `LLMChatEndEvent`, ...) are emitted once, by the model that
answered, exactly as if it had been called directly. A call that falls back to the other model (`fallback=`) is
two model calls: the failed one's pair (its end event has `status="error"`), then the fallback's, whose events
carry `fallback_from` and `fallback_error`. The calls of one agent run or chat-engine turn share a `turn_id`.

Examples:
    ```python
    from llama_index.core.instrumentation import get_dispatcher
    from llamaindex_routellm.events import RoutingEventHandler

    handler = RoutingEventHandler()
    get_dispatcher().add_event_handler(handler)

    # ... run queries / agents with a RoutedLLM ...

    print(handler.summary())
    ```
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent

from routing_core.costs import CostLedger, PriceTable, RoutingSummary, SideTotals
from routing_core.policy import PAYLOAD_KEYS, Decision, Reason, Side

CallStatus = Literal["ok", "error", "cancelled"]

#: Payload entries present only when they apply: after a fallback, and for the calls of an agent or chat turn.
OPTIONAL_KEYS: tuple[str, ...] = ("fallback_from", "fallback_error", "turn_id")

__all__ = [
    "CallStatus",
    "Reason",
    "RoutedCallEndEvent",
    "RoutingDecision",
    "RoutingDecisionEvent",
    "RoutingEventHandler",
    "RoutingSummary",
    "Side",
    "SideTotals",
]


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Which model one call goes to, and why.

    Attributes:
        side: `"strong"` or `"weak"`.
        model: Model name of the chosen LLM (its `metadata.model_name`).
        router: Name of the router (e.g. `"random"`, `"mf"`, or a checkpoint path).
        threshold: The threshold the win rate was compared to (strong iff `win_rate >= threshold`).
        win_rate: The router's estimate that the strong model's answer beats the weak one's; `None` when the
            router was not consulted (`reason` is `"forced"` or `"no_text"`).
        reason: `"router"` (the router decided), `"forced"` (the caller passed `routellm_model=...`) or
            `"no_text"` (nothing to route on, e.g. an image-only message: the configured `no_text_side`).
        source: What the router looked at: `"query_str"` (the template variable of a query engine prompt),
            `"last_user_message"`, `"earlier_user_message"`, `"no_user_text"`, `"prompt"`, `"user_msg"`,
            `"prompt_template"`, `"turn_message"` (the user's message of an agent run or chat-engine turn,
            see `llamaindex_routellm.turns`), or `"caller"` for forced calls.
        strong_model: Model name of the strong LLM.
        weak_model: Model name of the weak LLM.
        text_hash: sha256 prefix of the routed text (None when the router read none).
        text_preview: The routed text's first characters (None when the router read none).
        decision_id: A unique id per routed call; the `RoutedCallEndEvent` of the call carries the same id.
        fallback_from: The side that failed before this one answered (None when no fallback happened).
        fallback_error: The exception type of that failure (None when no fallback happened).
        turn_id: The id of the agent run or chat-engine turn this call belongs to (None outside a turn); every
            call of one turn carries the same id and the same decision (see `llamaindex_routellm.turns`).

    The decision itself is made by `routing_core.policy.TwoModelPolicy` (the same policy as the LangChain
    wrapper's); this record adds the LlamaIndex bookkeeping (both model names, the id shared by the events).
    """

    side: Side
    model: str
    router: str
    threshold: float
    win_rate: float | None
    reason: Reason
    source: str
    strong_model: str
    weak_model: str
    text_hash: str | None = None
    text_preview: str | None = None
    decision_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    fallback_from: str | None = None
    fallback_error: str | None = None
    turn_id: str | None = None
    core: Decision | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_policy(
        cls, decision: Decision, strong_model: str, weak_model: str, turn_id: str | None = None
    ) -> RoutingDecision:
        """Wrap a policy decision with the names of both models and a fresh decision id."""
        extra = decision.extra or {}
        return cls(
            side=decision.side,  # type: ignore[arg-type]
            model=decision.model_name or "",
            router=decision.router or "",
            threshold=float(decision.threshold or 0.0),
            win_rate=decision.win_rate,
            reason=decision.reason,
            source=decision.source,
            strong_model=strong_model,
            weak_model=weak_model,
            text_hash=decision.text_hash,
            text_preview=decision.text_preview,
            fallback_from=extra.get("fallback_from"),
            fallback_error=extra.get("fallback_error"),
            turn_id=turn_id,
            core=decision,
        )

    def again(self, turn_id: str | None = None) -> RoutingDecision:
        """The same decision for another call (a fresh `decision_id`), e.g. the next call of a turn."""
        return dataclasses.replace(self, decision_id=uuid.uuid4().hex, turn_id=turn_id or self.turn_id)

    @property
    def model_name(self) -> str:
        """Model name of the chosen LLM (the payload's `model_name`)."""
        return self.model

    @property
    def strong(self) -> bool:
        """True when the call goes to the strong model."""
        return self.side == "strong"

    def to_payload(self) -> dict[str, Any]:
        """The JSON-able dict stored under `"routellm"` in responses' `additional_kwargs` (a fresh dict): the
        schema `routing_core.policy.PAYLOAD_KEYS`, identical to the LangChain wrapper's, then `fallback_from` and
        `fallback_error` after a fallback and `turn_id` inside a turn (only when set)."""
        out = {name: getattr(self, name) for name in PAYLOAD_KEYS}
        for name in OPTIONAL_KEYS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class RoutingDecisionEvent(BaseEvent):
    """Dispatched once per routed call, when the model is chosen and before it is called.

    Args:
        router (str): Router name.
        threshold (float): Threshold in [0, 1]; strong iff `win_rate >= threshold`.
        win_rate (Optional[float]): Router estimate, `None` when the router was not consulted.
        side (str): `"strong"` or `"weak"`.
        model (str): Model name of the LLM that answers.
        reason (str): `"router"`, `"forced"` or `"no_text"`.
        source (str): What was routed on (see `RoutingDecision.source`).
        strong_model (str): Model name of the strong LLM.
        weak_model (str): Model name of the weak LLM.
        decision_id (str): Id shared with the `RoutedCallEndEvent` of the same call.
        call (str): The `RoutedLLM` method, e.g. `"chat"`, `"astream_chat"`, `"complete"`.
        fallback_from (Optional[str]): Set when this call is a fallback: the side that failed first.
        fallback_error (Optional[str]): The exception type of that failure.
        turn_id (Optional[str]): The agent run / chat-engine turn the call belongs to (None outside one).
    """

    router: str
    threshold: float
    win_rate: float | None = None
    side: Side
    model: str
    model_name: str = ""
    reason: Reason = "router"
    source: str = ""
    text_hash: str | None = None
    text_preview: str | None = None
    strong_model: str = ""
    weak_model: str = ""
    decision_id: str = ""
    call: str = ""
    fallback_from: str | None = None
    fallback_error: str | None = None
    turn_id: str | None = None

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutingDecisionEvent"

    @classmethod
    def from_decision(cls, decision: RoutingDecision, call: str) -> RoutingDecisionEvent:
        """Build the event for `decision`, made for the `RoutedLLM` method `call`."""
        return cls(
            **decision.to_payload(),
            model=decision.model,
            strong_model=decision.strong_model,
            weak_model=decision.weak_model,
            decision_id=decision.decision_id,
            call=call,
        )

    @property
    def payload(self) -> dict[str, Any]:
        """The decision as stored in responses under `additional_kwargs["routellm"]`."""
        out = {name: getattr(self, name) for name in PAYLOAD_KEYS}
        for name in OPTIONAL_KEYS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class RoutedCallEndEvent(BaseEvent):
    """Dispatched once per routed call when it is over, with its token usage.

    Token counts come from the provider's usage report in the response (`raw["usage"]`, as
    `TokenCountingHandler` reads it) when there is one, and are otherwise estimated with tiktoken
    (`routing_core.costs.count_tokens`). Failed calls report zero tokens; a stream closed early reports what
    was received.

    Args:
        decision_id (str): Id of the matching `RoutingDecisionEvent`.
        call (str): The `RoutedLLM` method.
        side (str): `"strong"` or `"weak"`.
        model (str): Model name of the LLM that answered.
        strong_model (str): Model name of the strong LLM (for always-strong cost baselines).
        weak_model (str): Model name of the weak LLM.
        status (str): `"ok"`, `"error"` (the model raised) or `"cancelled"` (a stream was closed early).
        error (Optional[str]): `repr` of the exception when `status == "error"`.
        input_tokens (int): Prompt tokens.
        output_tokens (int): Completion tokens.
        usage_source (str): `"provider"` or `"estimate"`.
        fallback_from (Optional[str]): Set when the call was a fallback: the side that failed first.
        fallback_error (Optional[str]): The exception type of that failure.
        turn_id (Optional[str]): The agent run / chat-engine turn the call belongs to (None outside one).
    """

    decision_id: str
    call: str
    side: Side
    model: str
    strong_model: str = ""
    weak_model: str = ""
    status: CallStatus = "ok"
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    usage_source: Literal["provider", "estimate", "none"] = "estimate"
    fallback_from: str | None = None
    fallback_error: str | None = None
    turn_id: str | None = None

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutedCallEndEvent"


class RoutingEventHandler(BaseEventHandler):
    """Keeps totals of routed calls: calls per side, tokens, cost, and savings versus always-strong.

    Attach it to the root instrumentation dispatcher (or any dispatcher above `llamaindex_routellm`). It is
    thread safe and ignores every event that is not a routing event, so it can share a dispatcher with other
    handlers.

    Args:
        price_table (PriceTable): Prices per model name (`routing_core.costs.PriceTable`); the default knows
            common OpenAI/Anthropic/Llama list prices. Pass your own for other or negotiated prices.
        max_decisions (Optional[int]): How many recent `RoutingDecisionEvent`s to keep in `decisions`
            (default 1000; `None` keeps all; 0 keeps none).

    Examples:
        ```python
        from llama_index.core.instrumentation import get_dispatcher
        from routing_core.costs import PriceTable
        from llamaindex_routellm import RoutingEventHandler

        handler = RoutingEventHandler(price_table=PriceTable({"my-model": (0.2, 0.6)}))
        get_dispatcher().add_event_handler(handler)
        ...
        summary = handler.summary()
        print(summary)               # human-readable report
        print(summary.saved)         # USD saved versus always calling the strong model
        ```
    """

    price_table: PriceTable = Field(default_factory=PriceTable, description="Prices per model name.")
    max_decisions: int | None = Field(default=1000, description="How many recent decisions to keep.")

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _ledger: CostLedger = PrivateAttr()
    _decisions: deque = PrivateAttr(default_factory=deque)

    def model_post_init(self, __context: Any) -> None:
        """Set up the counters."""
        super().model_post_init(__context)
        self.reset()

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutingEventHandler"

    @property
    def ledger(self) -> CostLedger:
        """The `routing_core.costs.CostLedger` holding the totals (shared logic with LangChain and the CLI)."""
        return self._ledger

    def reset(self) -> None:
        """Forget every total and kept decision."""
        with self._lock:
            self._ledger = CostLedger(self.price_table)
            self._decisions = deque(maxlen=self.max_decisions)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Update totals from a `RoutingDecisionEvent` or `RoutedCallEndEvent`; ignore other events."""
        if isinstance(event, RoutingDecisionEvent):
            # a fallback is a second call of the request, counted under reason "fallback" (as in LangChain)
            self._ledger.record_decision(event.side, "fallback" if event.fallback_from else event.reason)
            if self.max_decisions != 0:
                with self._lock:
                    self._decisions.append(event)
        elif isinstance(event, RoutedCallEndEvent):
            if event.status == "error":
                self._ledger.record_error(event.side)
                return
            self._ledger.record_usage(
                event.side,
                event.model,
                event.input_tokens,
                event.output_tokens,
                estimated=event.usage_source != "provider",
                strong_model=event.strong_model or None,
            )

    @property
    def decisions(self) -> list[RoutingDecisionEvent]:
        """The most recent decision events (up to `max_decisions`), oldest first."""
        with self._lock:
            return list(self._decisions)

    def summary(self) -> RoutingSummary:
        """A snapshot of the totals as a `routing_core.costs.RoutingSummary`."""
        return self._ledger.summary()
