"""LlamaIndex integration: RoutedLLM routes every call to a strong or a weak LLM, or to one of N LLMs by predicted
quality and cost.

Examples:
    ```python
    from llamaindex_routellm import RoutedLLM

    llm = RoutedLLM(strong=strong_llm, weak=weak_llm, strong_fraction=0.3)
    llm = RoutedLLM(models={"gpt-4o": big_llm, "mini": mid_llm, "local": small_llm}, target_cost=0.002)
    ```
"""

from llama_index.core.llms.loading import RECOGNIZED_LLMS

from llamaindex_routellm.base import FORCE_KWARG, PAYLOAD_KEY, RoutedArgumentError, RoutedLLM
from llamaindex_routellm.events import (
    RoutedCallEndEvent,
    RoutingDecision,
    RoutingDecisionEvent,
    RoutingEventHandler,
    RoutingSummary,
    SideTotals,
)
from llamaindex_routellm.turns import current_turn, routed_turn

# `load_llm` (used by TitleExtractor.from_dict, query engines' from_dict, ...) resolves LLMs by class name here
RECOGNIZED_LLMS.setdefault(RoutedLLM.class_name(), RoutedLLM)

__all__ = [
    "FORCE_KWARG",
    "PAYLOAD_KEY",
    "RoutedArgumentError",
    "RoutedCallEndEvent",
    "RoutedLLM",
    "RoutingDecision",
    "RoutingDecisionEvent",
    "RoutingEventHandler",
    "RoutingSummary",
    "SideTotals",
    "current_turn",
    "routed_turn",
]
