"""`RouteStoreCallbackHandler`: record every `RoutedChatModel` decision (and its tokens and cost) in a RouteStore.

Attach it like any callback handler. It reads the `routellm_route` event the wrapper sends inside each chat-model
run and the end (or error) of that run, and queues one row per call on the store's background writer: the
handler never blocks the call and never raises into it (a store error is logged and counted in `store.stats`).

Example:
    ```python
    from langchain_routellm.store import RouteStoreCallbackHandler

    handler = RouteStoreCallbackHandler("routes.db", record_text=True)
    ai_msg = routed.invoke("Prove that ...", config={"callbacks": [handler]})
    handler.feedback(ai_msg, thumbs=False)  # the message's id carries the run id
    # later: routing-core train --data store:routes.db ...
    ```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_routellm._routing import ROUTE_EVENT, default_routing_text, message_text
from routing_core.costs import Price, PriceTable, count_tokens
from routing_core.store import RouteStore, StoreStats, decision_from_payload

__all__ = ["RouteStoreCallbackHandler"]


class RouteStoreCallbackHandler(BaseCallbackHandler):
    """Writes one row per routed LangChain call to a `routing_core.store.RouteStore`.

    Args:
        store: A `RouteStore`, or a SQLite path / SQLAlchemy URL to open one (closed by `close()`).
        record_text: When opening a store from a path: keep prompt and answer text (opt-in; else a hash).
        prices: A `PriceTable` or a mapping `model -> (usd per 1M in, usd per 1M out)` for the cost column.
        strong_model, weak_model: Names written for the two sides when the routing event lacks them (learned
            from the calls otherwise).
    """

    run_inline: bool = True  # the work is a dict update and a non-blocking queue put
    raise_error: bool = False

    def __init__(
        self,
        store: RouteStore | str | Path,
        *,
        record_text: bool = False,
        prices: PriceTable | Mapping[str, Price | tuple[float, float]] | None = None,
        strong_model: str | None = None,
        weak_model: str | None = None,
    ) -> None:
        super().__init__()
        self._owns = not isinstance(store, RouteStore)
        self.store = store if isinstance(store, RouteStore) else RouteStore(store, record_text=record_text)
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self._names: dict[str, str | None] = {"strong": strong_model, "weak": weak_model}
        self._lock = threading.Lock()
        self._messages: dict[UUID, list[BaseMessage]] = {}
        self._decisions: dict[UUID, dict[str, Any]] = {}

    # --- callback hooks (each one guarded: the store must never break a call) ------------------------------

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        if len(messages) == 1:
            with self._lock:
                self._messages[run_id] = messages[0]

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if name != ROUTE_EVENT or not isinstance(data, dict):
            return
        with self._lock:
            self._decisions[run_id] = dict(data)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            payload = self._decisions.pop(run_id, None)
            messages = self._messages.pop(run_id, None)
        if payload is None:
            return
        try:
            self._record(run_id, payload, messages, response, None)
        except Exception as e:  # noqa: BLE001 - counted by the store, never raised into the call
            self.store._count_error(e)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            payload = self._decisions.pop(run_id, None)
            messages = self._messages.pop(run_id, None)
        if payload is None:
            return
        try:
            self._record(run_id, payload, messages, None, error)
        except Exception as e:  # noqa: BLE001
            self.store._count_error(e)

    # --- the row ------------------------------------------------------------------------------------------

    def _record(
        self,
        run_id: UUID,
        payload: dict[str, Any],
        messages: list[BaseMessage] | None,
        response: LLMResult | None,
        error: BaseException | None,
    ) -> None:
        d = decision_from_payload(run_id, payload, framework="langchain")
        message = _first_message(response) if response is not None else None
        if message is not None:
            reported = message.response_metadata.get("model_name")
            if isinstance(reported, str) and reported:
                d.model = reported
            d.message_id = message.id
        if d.side in ("strong", "weak") and d.model:
            with self._lock:
                self._names[d.side] = self._names[d.side] or d.model
        d.strong_model = d.strong_model or self._names["strong"]
        d.weak_model = d.weak_model or self._names["weak"]
        prompt = default_routing_text(messages) if messages else None
        d.prompt = prompt
        if error is not None:
            d.status, d.error = "error", f"{type(error).__name__}: {error}"[:1000]
        elif message is not None:
            usage = message.usage_metadata if isinstance(message, AIMessage) else None
            if usage:
                d.input_tokens, d.output_tokens = int(usage["input_tokens"]), int(usage["output_tokens"])
            else:
                d.input_tokens = sum(count_tokens(message_text(m)) for m in messages or [])
                d.output_tokens = _estimate_output(message)
            d.cost = self.prices.cost(d.model, d.input_tokens, d.output_tokens)
            d.answer = message_text(message)
        self.store.record(d)

    # --- feedback and lifecycle --------------------------------------------------------------------------

    def feedback(
        self, ref: Any, *, thumbs: bool | None = None, score: float | None = None, comment: str | None = None
    ) -> bool:
        """Attach feedback to a call: `ref` is an AI message from the routed model, or its run id."""
        return self.store.feedback(ref, thumbs=thumbs, score=score, comment=comment)

    @property
    def stats(self) -> StoreStats:
        """The store's counters (queued, written, dropped, errors)."""
        return self.store.stats

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued row is written."""
        return self.store.flush(timeout)

    def close(self) -> None:
        """Flush, and close the store if this handler opened it."""
        if self._owns:
            self.store.close()
        else:
            self.store.flush()


def _first_message(response: LLMResult) -> BaseMessage | None:
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                return generation.message
    return None


def _estimate_output(message: BaseMessage) -> int:
    n = count_tokens(message_text(message))
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            n += count_tokens(call["name"]) + count_tokens(json.dumps(call["args"], ensure_ascii=False))
    return n
