"""Test helpers for the LlamaIndex integration: scripted LLMs, a keyword router, an event collector.

`ScriptedLLM` lives in `llamaindex_routellm.testing` (a documented public utility the cookbooks use too); it is
re-exported here with small factories so tests read the same way everywhere.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)

from llamaindex_routellm import RoutedCallEndEvent, RoutedLLM, RoutingDecisionEvent
from llamaindex_routellm.testing import ScriptedLLM
from routing_core import Router

__all__ = [
    "EventCollector",
    "KeywordRouter",
    "ScriptedLLM",
    "attached",
    "events",
    "make_pair",
    "make_routed",
]

HARD = "theorem"  # the keyword that sends a question to the strong model in KeywordRouter tests


class KeywordRouter(Router):
    """Win rate 0.9 when the text contains a keyword (case-insensitive), else 0.1; records what it scored."""

    name = "keyword"

    def __init__(self, keywords: Iterable[str] = (HARD,)) -> None:
        self.keywords = [k.lower() for k in keywords]
        self.seen: list[str] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        with self._lock:
            self.seen.extend(prompts)
            self.threads.add(threading.get_ident())
        return np.array([0.9 if any(k in p.lower() for k in self.keywords) else 0.1 for p in prompts])


class EventCollector(BaseEventHandler):
    """Records every instrumentation event (thread safe)."""

    events: list[BaseEvent] = []

    def model_post_init(self, __context: Any) -> None:
        super().model_post_init(__context)
        self._lock = threading.Lock()
        self.events = []

    @classmethod
    def class_name(cls) -> str:
        return "EventCollector"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, *types: type) -> list[BaseEvent]:
        with self._lock:
            return [e for e in self.events if isinstance(e, types)]

    def counts(self) -> Counter:
        with self._lock:
            return Counter(type(e).__name__ for e in self.events)

    @property
    def decisions(self) -> list[RoutingDecisionEvent]:
        return self.of(RoutingDecisionEvent)  # type: ignore[return-value]

    @property
    def ends(self) -> list[RoutedCallEndEvent]:
        return self.of(RoutedCallEndEvent)  # type: ignore[return-value]

    def llm_starts(self) -> list[BaseEvent]:
        return self.of(LLMChatStartEvent, LLMCompletionStartEvent)

    def llm_ends(self) -> list[BaseEvent]:
        return self.of(LLMChatEndEvent, LLMCompletionEndEvent)

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


_H = TypeVar("_H", bound=BaseEventHandler)


@contextmanager
def attached(handler: _H) -> Iterator[_H]:
    """`handler` attached to the root instrumentation dispatcher inside the block, detached after."""
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler
    finally:
        root.event_handlers = [h for h in root.event_handlers if h is not handler]


@pytest.fixture
def events() -> Iterator[EventCollector]:
    """An EventCollector attached to the root dispatcher for the duration of a test."""
    with attached(EventCollector()) as collector:
        yield collector


def make_pair(**kwargs: Any) -> tuple[ScriptedLLM, ScriptedLLM]:
    """A strong and a weak ScriptedLLM named "strong-model" and "weak-model" (kwargs go to both)."""
    return ScriptedLLM(model_name="strong-model", **kwargs), ScriptedLLM(model_name="weak-model", **kwargs)


def make_routed(
    router: Router | str | None = None, threshold: float = 0.5, **kwargs: Any
) -> tuple[RoutedLLM, ScriptedLLM, ScriptedLLM, Router]:
    """A RoutedLLM over a fresh scripted pair, with a KeywordRouter unless another router is given."""
    llm_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in ("route_template_vars", "no_text_side")}
    strong, weak = make_pair(**llm_kwargs)
    r = router if router is not None else KeywordRouter()
    routed = RoutedLLM(strong=strong, weak=weak, router=r, threshold=threshold, **kwargs)
    return routed, strong, weak, routed.get_router()
