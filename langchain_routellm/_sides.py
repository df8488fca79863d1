"""The models behind each side of `RoutedChatModel`, and the order a call tries them in (fallback).

A side ("strong"/"weak" for two models, a routing key such as "gpt-4o" or "llama" for more) is a chat model, or
a chat model with fallbacks (`ChatOpenAI(...).with_fallbacks([ChatAnthropic(...)])`): its models ("members")
are tried in order, the next one on the errors of its `exceptions_to_handle`, as LangChain's
`RunnableWithFallbacks` does. Across sides, `fallback=` (the routing policy's
`routing_core.policy.RoutingPolicy.fallback_sides` / `fallback_order` / `fell_back`) sends a call whose side
failed to another side (for N models: the next best predicted quality first). `Attempts` walks both levels for
one call; the wrapper only makes the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableWithFallbacks

from langchain_routellm._params import model_call_params
from langchain_routellm._routing import Route
from routing_core.policy import RoutingPolicy, is_fallback_error

_ACCEPTED = (
    "a chat model (a langchain_core BaseChatModel such as ChatOpenAI(...)) or a chat model with fallbacks "
    "(ChatOpenAI(...).with_fallbacks([ChatAnthropic(...)])) whose models are all chat models"
)


def _describe(value: Any) -> str:
    if isinstance(value, RunnableWithFallbacks):
        kinds = [type(r).__name__ for r in (value.runnable, *value.fallbacks)]
        return f"RunnableWithFallbacks over {', '.join(kinds)}"
    return type(value).__name__


def check_side_value(side: str, value: Any, label: str | None = None) -> Any:
    """Validate a `strong=`/`weak=` value (or one of `models=`), with an error naming it and what is accepted;
    `label` is how the error names it (default "<side> model", e.g. "models['llama']")."""
    if isinstance(value, BaseChatModel):
        return value
    hint = ""
    if isinstance(value, RunnableWithFallbacks):
        members = (value.runnable, *value.fallbacks)
        if value.exception_key is not None:
            hint = (
                " (exception_key is not supported: a chat model's input is a list of messages, not a dict to "
                "add the error to)"
            )
        elif all(isinstance(m, BaseChatModel) for m in members):
            return value
        else:
            hint = (
                " (a model with bound arguments, e.g. bind_tools, is not a chat model: bind tools on the "
                "RoutedChatModel, and set per-side call arguments with "
                + ("strong_kwargs=/weak_kwargs=)" if label is None else "model_kwargs=)")
            )
    what = label or f"{side} model"
    raise ValueError(f"RoutedChatModel's {what} must be {_ACCEPTED}; got {_describe(value)}{hint}")


@dataclass(frozen=True, slots=True)
class SideModels:
    """The chat models of one side, in the order they are tried, and which errors move on to the next one."""

    side: str
    members: tuple[BaseChatModel, ...]
    handles: tuple[type[BaseException], ...]
    params: tuple[frozenset[str] | None, ...]

    @classmethod
    def of(cls, side: str, value: Any, label: str | None = None) -> SideModels:
        value = check_side_value(side, value, label)
        if isinstance(value, RunnableWithFallbacks):
            members = (value.runnable, *value.fallbacks)
            handles = tuple(value.exceptions_to_handle)
        else:
            members, handles = (value,), ()
        return cls(side, members, handles, tuple(model_call_params(m) for m in members))  # type: ignore[arg-type]

    @property
    def primary(self) -> BaseChatModel:
        return self.members[0]


def member_label(side: str, model: BaseChatModel, index: int = 0) -> str:
    """ "the strong model ChatOpenAI" / "the strong side's fallback 1 ChatAnthropic" (for N models the key:
    "the llama model ChatOllama"), for error messages."""
    where = f"the {side} model" if index == 0 else f"the {side} side's fallback {index}"
    return f"{where} {type(model).__name__}"


class Attempts:
    """The models one call tries, in order: the chosen side's members, then (with `fallback=`) the other sides'.

    Drive it with `current`/`side`/`model`; after a failure call `fail(error)`: True when there is another
    model to try (then `switched` says whether the side changed, i.e. a new routing record must be sent), False
    when the call has failed (`error()` is what to raise).
    """

    __slots__ = ("_first", "_m", "_s", "allowed", "current", "fallback_on", "policy", "route", "sides",
                 "side_errors", "switched", "models")  # fmt: skip

    def __init__(
        self,
        route: Route,
        policy: RoutingPolicy,
        models: Mapping[str, SideModels],
        allowed: tuple[str, ...] | None,
        fallback_on: tuple[type[BaseException], ...],
    ) -> None:
        assert route.side is not None
        self.route = route
        self.policy = policy
        self.models = models
        self.fallback_on = fallback_on
        later = policy.fallback_order(route.decision, allowed) if route.decision is not None else ()
        self.sides: tuple[str, ...] = (route.side, *later)
        self.side_errors: list[tuple[str, BaseException]] = []
        self.current = route
        self.switched = False
        self._s = 0
        self._m = 0
        self._first: BaseException | None = None

    @property
    def side(self) -> str:
        return self.sides[self._s]

    @property
    def index(self) -> int:
        return self._m

    @property
    def model(self) -> BaseChatModel:
        return self.models[self.side].members[self._m]

    def fail(self, error: BaseException) -> bool:
        """Record that the current model raised `error`; advance to the next model to try, if any."""
        self.switched = False
        group = self.models[self.side]
        if self._first is None:
            self._first = error
        handled = isinstance(error, group.handles)
        if handled and self._m + 1 < len(group.members):
            self._m += 1  # the side's own fallback (RunnableWithFallbacks semantics)
            return True
        side_error = self._first if handled else error
        self.side_errors.append((self.side, side_error))
        self._first, self._m = None, 0
        if not is_fallback_error(side_error, self.fallback_on) or self._s + 1 >= len(self.sides):
            return False
        self._s += 1
        assert self.route.decision is not None
        decision = self.policy.fell_back(self.route.decision, self.side, side_error)
        self.current = Route.of(decision)
        self.current.target = self.route.target
        self.switched = True
        return True

    def error(self) -> BaseException:
        """The error to raise when no model answered: the chosen side's, unchanged; when fallbacks were tried
        too, a note on it names each of their errors."""
        side, first = self.side_errors[0]
        for other, error in self.side_errors[1:]:
            note = f"routellm fallback: the {other} model also failed: {type(error).__name__}: {error}"
            if note not in getattr(first, "__notes__", ()):
                first.add_note(note)
        return first


__all__ = ["Attempts", "SideModels", "check_side_value", "member_label"]
