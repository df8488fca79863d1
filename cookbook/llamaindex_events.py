"""Logging routing decisions with a LlamaIndex instrumentation event handler.

A RoutedLLM dispatches, for every call, one `RoutingDecisionEvent` (which model, why, the router's win rate)
and one `RoutedCallEndEvent` (status and token usage), next to the usual LLM events emitted once by the model
that answered. This script attaches:

* a small custom `BaseEventHandler` that logs each decision with the `logging` module,
* `RoutingEventHandler`, which totals calls, tokens and cost and reports the savings versus always-strong,
* a `TokenCountingHandler` (callback manager) to show each call is counted once.

Runs offline by default with two scripted local models. To use hosted models instead, install the
integration and set the key; nothing else changes:

    pip install llama-index-llms-openai && export OPENAI_API_KEY=...
    pip install llama-index-llms-anthropic && export ANTHROPIC_API_KEY=...

Set ROUTELLM_COOKBOOK_OFFLINE=1 to keep the local models even when a key is set, and ROUTELLM_ROUTER to pick
another router (default: routing_core.DEFAULT_ROUTER).

    python cookbook/llamaindex_events.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from typing import Any

from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.llms import LLM, ChatMessage

from llamaindex_routellm import RoutedCallEndEvent, RoutedLLM, RoutingDecisionEvent, RoutingEventHandler
from llamaindex_routellm.testing import ScriptedLLM
from routing_core import DEFAULT_ROUTER
from routing_core.costs import PriceTable

logger = logging.getLogger("routing-log")


class RoutingLogHandler(BaseEventHandler):
    """Logs every routing decision, the end of every routed call, and the LLM end events."""

    @classmethod
    def class_name(cls) -> str:
        return "RoutingLogHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, RoutingDecisionEvent):
            rate = "n/a" if event.win_rate is None else f"{event.win_rate:.3f}"
            logger.info(
                "decision %s: %s -> %s (%s) reason=%s source=%s win_rate=%s threshold=%.3f",
                event.decision_id[:8],
                event.call,
                event.side,
                event.model,
                event.reason,
                event.source,
                rate,
                event.threshold,
            )
        elif isinstance(event, RoutedCallEndEvent):
            logger.info(
                "done     %s: %s tokens in=%d out=%d (%s)%s",
                event.decision_id[:8],
                event.status,
                event.input_tokens,
                event.output_tokens,
                event.usage_source,
                f" error={event.error}" if event.error else "",
            )
        elif isinstance(event, LLMChatEndEvent | LLMCompletionEndEvent):
            logger.debug("llm end event (span %s)", event.span_id)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _offline() -> bool:
    return os.environ.get("ROUTELLM_COOKBOOK_OFFLINE", "") not in ("", "0")


def pick_models() -> tuple[LLM, LLM]:
    """Hosted models when a key and the integration are there, else local scripted ones."""
    if not _offline() and os.environ.get("OPENAI_API_KEY") and _has("llama_index.llms.openai"):
        from llama_index.llms.openai import OpenAI

        return OpenAI(model="gpt-4o"), OpenAI(model="gpt-4o-mini")
    if not _offline() and os.environ.get("ANTHROPIC_API_KEY") and _has("llama_index.llms.anthropic"):
        from llama_index.llms.anthropic import Anthropic

        return Anthropic(model="claude-3-5-sonnet-latest"), Anthropic(model="claude-3-5-haiku-latest")
    return ScriptedLLM(model_name="gpt-4o"), ScriptedLLM(model_name="gpt-4o-mini")


QUESTIONS = [
    "Summarise the causes of the French Revolution in three sentences.",
    "What is 12 times 12?",
    "Write a haiku about routers.",
    "Explain the difference between a mutex and a semaphore, with an example.",
    "Translate 'good morning' into Spanish.",
]


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")

    # instrumentation handlers go on the root dispatcher: they see every event
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(RoutingLogHandler())
    totals = RoutingEventHandler(price_table=PriceTable())  # pass your own prices here
    dispatcher.add_event_handler(totals)

    # callback handlers go on the callback manager, which RoutedLLM shares with both inner models
    token_counter = TokenCountingHandler()
    strong, weak = pick_models()
    llm = RoutedLLM(
        strong=strong,
        weak=weak,
        router=os.environ.get("ROUTELLM_ROUTER", DEFAULT_ROUTER),
        strong_fraction=0.4,
        callback_manager=CallbackManager([token_counter]),
    )

    print("-- chat and complete")
    for q in QUESTIONS[:2]:
        response = llm.chat([ChatMessage(role="user", content=q)])
        print(f"{response.additional_kwargs['routellm']['side']:>6}: {response.message.content}")
    completion = llm.complete(QUESTIONS[2])
    print(f"{completion.additional_kwargs['routellm']['side']:>6}: {completion.text}")

    print("-- streaming")
    for chunk in llm.stream_chat([ChatMessage(role="user", content=QUESTIONS[3])]):
        print(chunk.delta, end="", flush=True)
    print()

    print("-- concurrent async calls (the router runs in a thread pool, off the event loop)")
    replies = await asyncio.gather(*(llm.achat([ChatMessage(role="user", content=q)]) for q in QUESTIONS))
    print([r.additional_kwargs["routellm"]["side"] for r in replies])

    print("-- forcing a side for one call")
    forced = llm.complete(QUESTIONS[4], routellm_model="strong")
    print(forced.additional_kwargs["routellm"]["side"], forced.additional_kwargs["routellm"]["reason"])

    summary = totals.summary()
    print("\n== RoutingEventHandler summary")
    print(summary)
    print("\n== TokenCountingHandler (one count per call)")
    print(f"LLM calls counted: {len(token_counter.llm_token_counts)} (routed calls: {summary.calls})")
    print(
        f"prompt tokens {token_counter.prompt_llm_token_count}, completion tokens {token_counter.completion_llm_token_count}"
    )
    if len(token_counter.llm_token_counts) != summary.calls:
        raise SystemExit("token counter and routing totals disagree")


if __name__ == "__main__":
    asyncio.run(main())
