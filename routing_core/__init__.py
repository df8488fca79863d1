"""routing_core: learned LLM routing (RouteLLM) with no framework dependency.

The flow: prompt text -> Embedder -> Router.win_rate -> RoutingPolicy (threshold) -> Decision -> chosen model.
"""

from routing_core.calibration import threshold_for_strong_fraction
from routing_core.costs import CostLedger, RoutingSummary, SideTotals
from routing_core.errors import (
    CheckpointError,
    DataError,
    NotFittedError,
    RoutingError,
    UnknownModelError,
    UnknownRouterError,
)
from routing_core.policy import (
    PAYLOAD_KEYS,
    Decision,
    RoutingPolicy,
    TwoModelPolicy,
    decide,
    pick_routing_text,
)
from routing_core.registry import DEFAULT_ROUTER, available_routers, load_router, register_router
from routing_core.router import Router
from routing_core.routers.random import RandomRouter
from routing_core.validation import check_prompts, check_side, check_strong_fraction, check_threshold

__all__ = [
    "DEFAULT_ROUTER",
    "PAYLOAD_KEYS",
    "CheckpointError",
    "CostLedger",
    "DataError",
    "Decision",
    "NotFittedError",
    "RandomRouter",
    "Router",
    "RoutingError",
    "RoutingPolicy",
    "RoutingSummary",
    "SideTotals",
    "TwoModelPolicy",
    "UnknownModelError",
    "UnknownRouterError",
    "available_routers",
    "check_prompts",
    "check_side",
    "check_strong_fraction",
    "check_threshold",
    "decide",
    "load_router",
    "pick_routing_text",
    "register_router",
    "threshold_for_strong_fraction",
]

__version__ = "0.1.0"
