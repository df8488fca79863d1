"""Routing events for LlamaIndex instrumentation, and an event handler that totals calls, tokens and cost.

Every call that a `RoutedLLM` forwards to one of its models dispatches, through the LlamaIndex
instrumentation dispatcher:

* one `RoutingDecisionEvent` when the model is chosen (before the model is called), and
* one `RoutedCallEndEvent` when the call is over (for streams: when the stream is exhausted, fails or is
  closed), with the token usage of the call.

The LLM events themselves (`LLMChatStartEvent`, `LLMChatEndEvent`, ...) are emitted once, by the model that
answered, exactly as if it had been called directly.

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

import threading
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent

from routing_core.costs import PriceTable

Side = Literal["strong", "weak"]
Reason = Literal["router", "forced", "no_text"]
CallStatus = Literal["ok", "error", "cancelled"]

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
            `"last_user_message"`, `"last_message"`, `"prompt"`, `"user_msg"`, `"prompt_template"`, or
            `"routellm_model"` for forced calls.
        strong_model: Model name of the strong LLM.
        weak_model: Model name of the weak LLM.
        decision_id: A unique id; the `RoutedCallEndEvent` of the call carries the same id.
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
    decision_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def strong(self) -> bool:
        """True when the call goes to the strong model."""
        return self.side == "strong"

    def to_payload(self) -> dict[str, Any]:
        """The JSON-able dict stored under `"routellm"` in responses' `additional_kwargs` (a fresh dict)."""
        # Every field is a str, float or None, so this equals `asdict(self)` at a fraction of its cost (it runs
        # on every routed call).
        return {name: getattr(self, name) for name in _DECISION_FIELDS}


_DECISION_FIELDS: tuple[str, ...] = tuple(RoutingDecision.__dataclass_fields__)


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
    """

    router: str
    threshold: float
    win_rate: float | None = None
    side: Side
    model: str
    reason: Reason = "router"
    source: str = ""
    strong_model: str = ""
    weak_model: str = ""
    decision_id: str = ""
    call: str = ""

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutingDecisionEvent"

    @classmethod
    def from_decision(cls, decision: RoutingDecision, call: str) -> RoutingDecisionEvent:
        """Build the event for `decision`, made for the `RoutedLLM` method `call`."""
        return cls(**decision.to_payload(), call=call)

    @property
    def payload(self) -> dict[str, Any]:
        """The decision as stored in responses under `additional_kwargs["routellm"]`."""
        return {name: getattr(self, name) for name in _DECISION_FIELDS}


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

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutedCallEndEvent"


@dataclass(frozen=True, slots=True)
class SideTotals:
    """Totals for one side (strong or weak) over the calls a `RoutingEventHandler` has seen."""

    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class RoutingSummary:
    """What routing did, and what it saved compared with sending every call to the strong model.

    The always-strong baseline prices each finished call's tokens at the strong model's price: it assumes the
    strong model would have read and written as many tokens as the model that answered. Calls whose models
    have no known price are counted in `unpriced_calls` and left out of every cost figure.
    """

    calls: int
    strong: SideTotals
    weak: SideTotals
    forced_calls: int
    no_text_calls: int
    cost: float | None
    always_strong_cost: float | None
    saved: float | None
    saved_fraction: float | None
    unpriced_calls: int

    @property
    def strong_share(self) -> float:
        """Share of calls that went to the strong model (0.0 when there were none)."""
        return self.strong.calls / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (includes `strong_share`)."""
        d = asdict(self)
        d["strong_share"] = self.strong_share
        return d

    def __str__(self) -> str:
        lines = [
            f"routed calls: {self.calls} (strong {self.strong.calls}, weak {self.weak.calls}; "
            f"strong share {self.strong_share:.1%}; forced {self.forced_calls}; no text {self.no_text_calls})",
            f"tokens in/out: strong {self.strong.input_tokens}/{self.strong.output_tokens}, "
            f"weak {self.weak.input_tokens}/{self.weak.output_tokens}",
            f"errors: strong {self.strong.errors}, weak {self.weak.errors}",
        ]
        if self.cost is None or self.always_strong_cost is None:
            lines.append("cost: unknown (no price for these models; pass a PriceTable)")
        else:
            frac = f" ({self.saved_fraction:.1%})" if self.saved_fraction is not None else ""
            lines.append(
                f"cost: ${self.cost:.6f} vs ${self.always_strong_cost:.6f} always-strong; "
                f"saved ${self.saved:.6f}{frac}"
            )
        if self.unpriced_calls:
            lines.append(f"unpriced calls (left out of costs): {self.unpriced_calls}")
        return "\n".join(lines)


class _SideAcc:
    __slots__ = ("calls", "errors", "input_tokens", "output_tokens", "cost", "priced")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.priced = 0

    def freeze(self) -> SideTotals:
        return SideTotals(
            calls=self.calls,
            errors=self.errors,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=self.cost if self.priced else None,
        )


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
    _sides: dict[str, _SideAcc] = PrivateAttr(default_factory=dict)
    _reasons: dict[str, int] = PrivateAttr(default_factory=dict)
    _always_strong: float = PrivateAttr(default=0.0)
    _unpriced: int = PrivateAttr(default=0)
    _decisions: deque = PrivateAttr(default_factory=deque)

    def model_post_init(self, __context: Any) -> None:
        """Set up the counters."""
        super().model_post_init(__context)
        self.reset()

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutingEventHandler"

    def reset(self) -> None:
        """Forget every total and kept decision."""
        with self._lock:
            self._sides = {"strong": _SideAcc(), "weak": _SideAcc()}
            self._reasons = {"router": 0, "forced": 0, "no_text": 0}
            self._always_strong = 0.0
            self._unpriced = 0
            self._decisions = deque(maxlen=self.max_decisions)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Update totals from a `RoutingDecisionEvent` or `RoutedCallEndEvent`; ignore other events."""
        if isinstance(event, RoutingDecisionEvent):
            with self._lock:
                self._sides[event.side].calls += 1
                self._reasons[event.reason] = self._reasons.get(event.reason, 0) + 1
                if self.max_decisions != 0:
                    self._decisions.append(event)
        elif isinstance(event, RoutedCallEndEvent):
            actual = baseline = None
            if event.status != "error":
                actual = self.price_table.cost(event.model, event.input_tokens, event.output_tokens)
                baseline = self.price_table.cost(event.strong_model, event.input_tokens, event.output_tokens)
            with self._lock:
                acc = self._sides[event.side]
                if event.status == "error":
                    acc.errors += 1
                    return
                acc.input_tokens += event.input_tokens
                acc.output_tokens += event.output_tokens
                if actual is None or baseline is None:
                    self._unpriced += 1
                else:
                    acc.cost += actual
                    acc.priced += 1
                    self._always_strong += baseline

    @property
    def decisions(self) -> list[RoutingDecisionEvent]:
        """The most recent decision events (up to `max_decisions`), oldest first."""
        with self._lock:
            return list(self._decisions)

    def summary(self) -> RoutingSummary:
        """A snapshot of the totals as a `RoutingSummary`."""
        with self._lock:
            strong, weak = self._sides["strong"].freeze(), self._sides["weak"].freeze()
            priced = self._sides["strong"].priced + self._sides["weak"].priced
            cost = (self._sides["strong"].cost + self._sides["weak"].cost) if priced else None
            baseline = self._always_strong if priced else None
            saved = None if cost is None or baseline is None else baseline - cost
            frac = saved / baseline if saved is not None and baseline else None
            return RoutingSummary(
                calls=strong.calls + weak.calls,
                strong=strong,
                weak=weak,
                forced_calls=self._reasons.get("forced", 0),
                no_text_calls=self._reasons.get("no_text", 0),
                cost=cost,
                always_strong_cost=baseline,
                saved=saved,
                saved_fraction=frac,
                unpriced_calls=self._unpriced,
            )
