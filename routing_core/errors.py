"""Exceptions with messages a user can act on; the CLI turns them into one line and exit code 2."""

from __future__ import annotations


class RoutingError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(RoutingError, ValueError):
    """A data file is missing, unreadable, empty or malformed. The message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointError(RoutingError, ValueError):
    """A router checkpoint folder is missing, truncated, corrupted or of an unknown kind."""


class UnknownRouterError(RoutingError, ValueError):
    """A router name is neither registered, bundled, nor an existing checkpoint folder."""


class UnknownModelError(RoutingError, ValueError):
    """A model name is not among those a router was trained on."""


class NotFittedError(RoutingError, ValueError):
    """A trained router was used before `fit` (or `load`): it has no weights to score prompts with."""


class CallArgumentError(RoutingError, TypeError):
    """A call argument a routed model does not accept, named with its side by the wrapper.

    The caller's mistake, not the provider's: another model would not fix it, so it never triggers a fallback
    (`routing_core.policy.is_fallback_error`). Each wrapper raises its own subclass.
    """
