"""routing_core: learned LLM routing (RouteLLM) with no framework dependency.

The flow: prompt text -> Embedder -> Router.win_rate -> threshold -> Decision -> chosen model.
"""

from routing_core.calibration import threshold_for_strong_fraction
from routing_core.errors import (
    CheckpointError,
    DataError,
    RoutingError,
    UnknownModelError,
    UnknownRouterError,
)
from routing_core.registry import DEFAULT_ROUTER, available_routers, load_router, register_router
from routing_core.router import Decision, Router, check_strong_fraction, check_threshold, decide
from routing_core.routers.random import RandomRouter

__all__ = [
    "DEFAULT_ROUTER",
    "CheckpointError",
    "DataError",
    "Decision",
    "RandomRouter",
    "Router",
    "RoutingError",
    "UnknownModelError",
    "UnknownRouterError",
    "available_routers",
    "check_strong_fraction",
    "check_threshold",
    "decide",
    "load_router",
    "register_router",
    "threshold_for_strong_fraction",
]

__version__ = "0.1.0"
