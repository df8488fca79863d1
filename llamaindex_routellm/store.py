"""`RouteStoreEventHandler`: record every `RoutedLLM` decision (tokens, cost, status) in a RouteStore.

Attach it to the instrumentation dispatcher. It pairs each `RoutingDecisionEvent` with the `RoutedCallEndEvent`
of the same call (by `decision_id`, which is also the run id that feedback attaches to) and queues one row on
the store's background writer; it never blocks a call and never raises into it.

The prompt text (kept only when the store records text) is what the router read: the `query_str` of a predict
call, else the last user message of the chat, else the completion prompt. The routing events carry no text, so
it is taken from the LLM start events that follow the decision in the same thread or asyncio task.

Example:
    ```python
    from llama_index.core.instrumentation import get_dispatcher
    from llamaindex_routellm.store import RouteStoreEventHandler

    handler = RouteStoreEventHandler.from_url("routes.db", record_text=True)
    get_dispatcher().add_event_handler(handler)
    response = routed_llm.chat(messages)
    handler.feedback(response, thumbs=True)  # the response's routellm payload carries the decision id
    ```
"""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import MessageRole
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
    LLMPredictStartEvent,
)

from llamaindex_routellm.events import RoutedCallEndEvent, RoutingDecisionEvent
from routing_core.costs import PriceTable
from routing_core.store import RouteStore, StoreStats, decision_from_payload

__all__ = ["RouteStoreEventHandler"]

#: The decision whose call is running in this thread / asyncio task (set when its decision event is handled).
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("routellm_store_decision", default=None)


class RouteStoreEventHandler(BaseEventHandler):
    """Writes one row per routed LlamaIndex call to a `routing_core.store.RouteStore`.

    Args:
        store (RouteStore): Where rows go (`from_url` opens one from a path or SQLAlchemy URL).
        price_table (PriceTable): Prices for the cost column.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    store: Any = Field(description="The RouteStore rows are written to.")
    price_table: PriceTable = Field(default_factory=PriceTable, description="Prices per model name.")

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _pending: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RouteStoreEventHandler"

    @classmethod
    def from_url(cls, url: str | Path, *, record_text: bool = False, **kwargs: Any) -> RouteStoreEventHandler:
        """A handler over a new `RouteStore(url, record_text=...)`."""
        return cls(store=RouteStore(url, record_text=record_text), **kwargs)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Track decisions, their prompt and answer text, and record each call when it ends."""
        try:
            self._handle(event)
        except Exception as e:  # noqa: BLE001 - counted by the store, never raised into the call
            self.store._count_error(e)

    def _handle(self, event: BaseEvent) -> None:
        if isinstance(event, RoutingDecisionEvent):
            with self._lock:
                self._pending[event.decision_id] = {"payload": _payload(event), "text": None, "answer": None}
            _current.set(event.decision_id)
            return
        if isinstance(event, RoutedCallEndEvent):
            with self._lock:
                entry = self._pending.pop(event.decision_id, None)
            if _current.get() == event.decision_id:
                _current.set(None)
            self._record(event, entry)
            return
        did = _current.get()
        if did is None:
            return
        with self._lock:
            entry = self._pending.get(did)
        if entry is None:
            return
        if entry["text"] is None:
            if isinstance(event, LLMPredictStartEvent):
                q = (event.template_args or {}).get("query_str")
                if isinstance(q, str):
                    entry["text"] = q
            elif isinstance(event, LLMChatStartEvent):
                users = [m for m in event.messages if m.role == MessageRole.USER] or list(event.messages)
                if users:
                    entry["text"] = users[-1].content or ""
            elif isinstance(event, LLMCompletionStartEvent):
                entry["text"] = event.prompt
        if isinstance(event, LLMChatEndEvent) and event.response is not None:
            entry["answer"] = event.response.message.content
        elif isinstance(event, LLMCompletionEndEvent):
            entry["answer"] = event.response.text

    def _record(self, event: RoutedCallEndEvent, entry: dict[str, Any] | None) -> None:
        name = getattr(event, "model_name", None) or getattr(event, "model", None)
        payload = entry["payload"] if entry else {"side": event.side, "model_name": name}
        d = decision_from_payload(event.decision_id, payload, framework="llamaindex")
        d.model = name or d.model
        d.strong_model = event.strong_model or d.strong_model
        d.weak_model = event.weak_model or d.weak_model
        d.status = event.status
        d.error = event.error
        d.input_tokens, d.output_tokens = event.input_tokens, event.output_tokens
        if event.status != "error":
            d.cost = self.price_table.cost(d.model, event.input_tokens, event.output_tokens)
        if entry:
            d.prompt, d.answer = entry["text"], entry["answer"]
        self.store.record(d)

    def feedback(
        self, ref: Any, *, thumbs: bool | None = None, score: float | None = None, comment: str | None = None
    ) -> bool:
        """Attach feedback to a call: `ref` is a response from the routed LLM, or its decision id."""
        return bool(self.store.feedback(ref, thumbs=thumbs, score=score, comment=comment))

    @property
    def stats(self) -> StoreStats:
        """The store's counters (queued, written, dropped, errors)."""
        return self.store.stats  # type: ignore[no-any-return]


def _payload(event: RoutingDecisionEvent) -> dict[str, Any]:
    """The decision's fields, whichever payload schema the wrapper emits (old `model`, new `model_name`)."""
    payload = getattr(event, "payload", None)
    if isinstance(payload, dict):
        return dict(payload)
    return {
        k: v
        for k, v in event.model_dump().items()
        if k not in ("timestamp", "id_", "span_id", "tags", "class_name")
    }
