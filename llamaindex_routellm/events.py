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

With more than two models (`RoutedLLM(models={...})`), `side` is the chosen model's key, the events carry every
routed model (`models`, key -> model name) and, when the router decided, the predicted quality and the cost per
call of each model (`qualities`, `costs`) and the policy's knob (`lam` / `margin`); `strong_model` is then the
first model, the reference for "saved versus always the reference model".

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr, model_validator
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent

from routing_core.costs import CostLedger, PriceTable, RoutingSummary, SideTotals
from routing_core.policy import PAYLOAD_KEYS, Decision, Reason, Side

CallStatus = Literal["ok", "error", "cancelled"]

#: Payload entries present only when they apply: after a fallback, and for the calls of an agent or chat turn.
OPTIONAL_KEYS: tuple[str, ...] = ("fallback_from", "fallback_error", "turn_id")
#: Payload entries a multi-model decision of the router adds (`routing_core.cost_policy.CostAwarePolicy`), in order.
MULTI_KEYS: tuple[str, ...] = ("qualities", "costs", "lambda", "margin")

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


def _check_event_side(side: str, models: dict[str, str] | None) -> None:
    """An event's side: "strong"/"weak" for two models, one of `models`' keys for more."""
    if models is None:
        if side not in ("strong", "weak"):
            raise ValueError(f"side must be 'strong' or 'weak' (or a key of models=), got {side!r}")
    elif side not in models:
        raise ValueError(
            f"side must be one of the routed models {', '.join(map(repr, models))}, got {side!r}"
        )


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Which model one call goes to, and why.

    Attributes:
        side: `"strong"` or `"weak"`; with more than two models, the chosen model's key.
        model: Model name of the chosen LLM (its `metadata.model_name`).
        router: Name of the router (e.g. `"random"`, `"mf"`, or a checkpoint path).
        threshold: The threshold the win rate was compared to (strong iff `win_rate >= threshold`); None with
            more than two models.
        win_rate: The router's estimate that the strong model's answer beats the weak one's; `None` when the
            router was not consulted (`reason` is `"forced"` or `"no_text"`), and with more than two models.
        reason: `"router"` (the router decided), `"forced"` (the caller passed `routellm_model=...`) or
            `"no_text"` (nothing to route on, e.g. an image-only message: the configured `no_text_side`).
        source: What the router looked at: `"query_str"` (the template variable of a query engine prompt),
            `"last_user_message"`, `"earlier_user_message"`, `"no_user_text"`, `"prompt"`, `"user_msg"`,
            `"prompt_template"`, `"turn_message"` (the user's message of an agent run or chat-engine turn,
            see `llamaindex_routellm.turns`), or `"caller"` for forced calls.
        strong_model: Model name of the strong LLM (with more than two models: the first one, the reference).
        weak_model: Model name of the weak LLM (empty with more than two models).
        text_hash: sha256 prefix of the routed text (None when the router read none).
        text_preview: The routed text's first characters (None when the router read none).
        decision_id: A unique id per routed call; the `RoutedCallEndEvent` of the call carries the same id.
        fallback_from: The side that failed before this one answered (None when no fallback happened).
        fallback_error: The exception type of that failure (None when no fallback happened).
        turn_id: The id of the agent run or chat-engine turn this call belongs to (None outside a turn); every
            call of one turn carries the same id and the same decision (see `llamaindex_routellm.turns`).
        models: With more than two models: every routed model, key -> model name, in order (else None).
        extra: With more than two models and `reason == "router"`: the policy's `qualities` (predicted quality
            per key), `costs` (USD per call per key), `lambda` and `margin` (else empty).

    The decision itself is made by `routing_core.policy.TwoModelPolicy` (the same policy as the LangChain
    wrapper's), or `routing_core.cost_policy.CostAwarePolicy` for more models; this record adds the LlamaIndex
    bookkeeping (the model names, the id shared by the events).
    """

    side: str
    model: str
    router: str
    threshold: float | None
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
    models: Mapping[str, str] | None = field(default=None, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_policy(
        cls,
        decision: Decision,
        strong_model: str,
        weak_model: str,
        turn_id: str | None = None,
        models: Mapping[str, str] | None = None,
    ) -> RoutingDecision:
        """Wrap a policy decision with the names of the models and a fresh decision id."""
        extra = decision.extra or {}
        return cls(
            side=decision.side,
            model=decision.model_name or "",
            router=decision.router or "",
            threshold=None if decision.threshold is None else float(decision.threshold),
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
            models=None if models is None else dict(models),
            extra={k: v for k, v in extra.items() if k not in OPTIONAL_KEYS},
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

    @property
    def qualities(self) -> dict[str, float] | None:
        """Predicted quality per model key (more than two models, decided by the router; else None)."""
        q = self.extra.get("qualities")
        return dict(q) if isinstance(q, Mapping) else None

    @property
    def costs(self) -> dict[str, float] | None:
        """USD per call per model key, as the policy priced them (more than two models; else None)."""
        c = self.extra.get("costs")
        return dict(c) if isinstance(c, Mapping) else None

    def to_payload(self) -> dict[str, Any]:
        """The JSON-able dict stored under `"routellm"` in responses' `additional_kwargs` (a fresh dict): the
        schema `routing_core.policy.PAYLOAD_KEYS`, identical to the LangChain wrapper's, then the multi-model
        policy's entries (`qualities`, `costs`, `lambda`, `margin`, when the router chose among more than two
        models), then `fallback_from` and `fallback_error` after a fallback and `turn_id` inside a turn (only
        when set)."""
        out = {name: getattr(self, name) for name in PAYLOAD_KEYS}
        for name, value in self.extra.items():
            out[name] = dict(value) if isinstance(value, Mapping) else value
        for name in OPTIONAL_KEYS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class RoutingDecisionEvent(BaseEvent):
    """Dispatched once per routed call, when the model is chosen and before it is called.

    Args:
        router (str): Router name.
        threshold (Optional[float]): Threshold in [0, 1]; strong iff `win_rate >= threshold` (None with more
            than two models).
        win_rate (Optional[float]): Router estimate, `None` when the router was not consulted.
        side (str): `"strong"` or `"weak"`; with more than two models, the chosen model's key.
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
        models (Optional[dict]): With more than two models: every routed model, key -> model name.
        qualities (Optional[dict]): With more than two models, when the router decided: predicted quality per key.
        costs (Optional[dict]): Likewise: the policy's USD per call per key.
        lam (Optional[float]): Likewise: the policy's lambda (quality - lambda * cost; None with `margin`).
        margin (Optional[float]): Likewise: the policy's margin (None with `lam`).
    """

    router: str
    threshold: float | None = None
    win_rate: float | None = None
    side: str
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
    models: dict[str, str] | None = None
    qualities: dict[str, float] | None = None
    costs: dict[str, float] | None = None
    lam: float | None = None
    margin: float | None = None

    @model_validator(mode="after")
    def _valid_side(self) -> RoutingDecisionEvent:
        _check_event_side(self.side, self.models)
        if self.models is None and self.threshold is None:
            raise ValueError("a two-model RoutingDecisionEvent needs its threshold")
        return self

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutingDecisionEvent"

    @classmethod
    def from_decision(cls, decision: RoutingDecision, call: str) -> RoutingDecisionEvent:
        """Build the event for `decision`, made for the `RoutedLLM` method `call`."""
        payload = decision.to_payload()
        multi: dict[str, Any] = {}
        if "qualities" in payload:
            multi = {
                "qualities": payload.pop("qualities"),
                "costs": payload.pop("costs", None),
                "lam": payload.pop("lambda", None),
                "margin": payload.pop("margin", None),
            }
        payload = {k: v for k, v in payload.items() if k in cls.model_fields}
        return cls(
            **payload,
            **multi,
            model=decision.model,
            strong_model=decision.strong_model,
            weak_model=decision.weak_model,
            decision_id=decision.decision_id,
            call=call,
            models=None if decision.models is None else dict(decision.models),
        )

    @property
    def payload(self) -> dict[str, Any]:
        """The decision as stored in responses under `additional_kwargs["routellm"]`."""
        out = {name: getattr(self, name) for name in PAYLOAD_KEYS}
        if self.qualities is not None:
            out.update(
                qualities=dict(self.qualities),
                costs=None if self.costs is None else dict(self.costs),
                margin=self.margin,
            )
            out["lambda"] = self.lam
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
        side (str): `"strong"` or `"weak"`; with more than two models, the key of the model that answered.
        model (str): Model name of the LLM that answered.
        strong_model (str): Model name of the strong LLM (for always-strong cost baselines; with more than two
            models, the first one).
        weak_model (str): Model name of the weak LLM (empty with more than two models).
        status (str): `"ok"`, `"error"` (the model raised) or `"cancelled"` (a stream was closed early).
        error (Optional[str]): `repr` of the exception when `status == "error"`.
        input_tokens (int): Prompt tokens.
        output_tokens (int): Completion tokens.
        usage_source (str): `"provider"` or `"estimate"`.
        fallback_from (Optional[str]): Set when the call was a fallback: the side that failed first.
        fallback_error (Optional[str]): The exception type of that failure.
        turn_id (Optional[str]): The agent run / chat-engine turn the call belongs to (None outside one).
        models (Optional[dict]): With more than two models: every routed model, key -> model name.
    """

    decision_id: str
    call: str
    side: str
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
    models: dict[str, str] | None = None

    @model_validator(mode="after")
    def _valid_side(self) -> RoutedCallEndEvent:
        _check_event_side(self.side, self.models)
        return self

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutedCallEndEvent"


class RoutingEventHandler(BaseEventHandler):
    """Keeps totals of routed calls: calls per side, tokens, cost, and savings versus always-strong.

    Attach it to the root instrumentation dispatcher (or any dispatcher above `llamaindex_routellm`). It is
    thread safe and ignores every event that is not a routing event, so it can share a dispatcher with other
    handlers.

    With more than two models (`RoutedLLM(models={...})`) the totals are per model key: when the first event it
    sees comes from such an LLM, the ledger lists that LLM's keys (in order) instead of strong/weak, and the
    savings are against always calling the first model (or `strong_model`).

    Args:
        price_table (PriceTable): Prices per model name (`routing_core.costs.PriceTable`); the default knows
            common OpenAI/Anthropic/Llama list prices. Pass your own for other or negotiated prices.
        max_decisions (Optional[int]): How many recent `RoutingDecisionEvent`s to keep in `decisions`
            (default 1000; `None` keeps all; 0 keeps none).
        strong_model (Optional[str]): The model name the savings are computed against ("what if every call had
            gone to it"); default: the strong model (with more than two models, the first one).

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
    strong_model: str | None = Field(default=None, description="The model name savings are computed against.")

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _ledger: CostLedger = PrivateAttr()
    _fresh: bool = PrivateAttr(default=True)
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
            self._ledger = CostLedger(self.price_table, strong_model=self.strong_model)
            self._fresh = True
            self._decisions = deque(maxlen=self.max_decisions)

    def _first_event(self, models: dict[str, str] | None) -> None:
        """Before anything is counted: a multi-model LLM's keys replace the strong/weak sides of the ledger."""
        with self._lock:
            if not self._fresh:
                return
            self._fresh = False
            if models:
                self._ledger = CostLedger(
                    self.price_table, strong_model=self.strong_model, sides=tuple(models)
                )

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Update totals from a `RoutingDecisionEvent` or `RoutedCallEndEvent`; ignore other events."""
        if isinstance(event, RoutingDecisionEvent | RoutedCallEndEvent) and self._fresh:
            self._first_event(event.models)
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
