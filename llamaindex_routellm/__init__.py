"""LlamaIndex integration: RoutedLLM routes every call to a strong or a weak LLM.

Examples:
    ```python
    from llamaindex_routellm import RoutedLLM

    llm = RoutedLLM(strong=strong_llm, weak=weak_llm, strong_fraction=0.3)
    ```
"""

from llamaindex_routellm.base import FORCE_KWARG, PAYLOAD_KEY, RoutedLLM
from llamaindex_routellm.events import (
    RoutedCallEndEvent,
    RoutingDecision,
    RoutingDecisionEvent,
    RoutingEventHandler,
    RoutingSummary,
    SideTotals,
)

__all__ = [
    "FORCE_KWARG",
    "PAYLOAD_KEY",
    "RoutedCallEndEvent",
    "RoutedLLM",
    "RoutingDecision",
    "RoutingDecisionEvent",
    "RoutingEventHandler",
    "RoutingSummary",
    "SideTotals",
]
