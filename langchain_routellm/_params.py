"""Which call arguments a chat model understands, so a provider-specific argument only goes where it is supported.

`invoke(..., seed=1)` is an OpenAI request parameter and `top_k=` an Anthropic one; sent to the other provider
each is a `TypeError` from deep inside its SDK (`Messages.create() got an unexpected keyword argument 'seed'`),
so whether a call works would depend on the route. `RoutedChatModel` asks `call_params(model)` for the set of
call arguments of each routed model and sends an argument only to the models that take it.

How "supported" is decided, per model class (first match wins; computed once per class):

1. the class declares it: a `routellm_call_params` class attribute (an iterable of names), e.g. the fakes in
   `langchain_routellm.testing`; or a registration with `register_call_params(cls, names)`;
2. a known provider class (by its place in the class's MRO, so subclasses such as `AzureChatOpenAI` count): the
   parameters of the SDK methods it ends up calling, read from the installed SDK's signatures (so a new SDK
   release is followed without a table to update), plus the arguments the LangChain class handles itself
   (e.g. `stream_usage`, and ChatAnthropic's `top_k`/`top_p`/`temperature`, which it moves into `extra_body`
   when the SDK no longer names them);
3. anything else: unknown (`None`), and every argument is passed on, as without routing.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from routing_core.errors import CallArgumentError

#: Names that are never call arguments of a model: the request plumbing LangChain fills in itself.
_NOT_ARGS = frozenset(
    {"self", "messages", "input", "input_", "model", "stop", "run_manager", "args", "kwargs"}
)


class UnsupportedCallArgumentError(CallArgumentError):
    """A call argument that the routed model(s) it would be sent to do not understand (raised before any call).

    A `TypeError`, like Python's own "unexpected keyword argument", but raised by `RoutedChatModel` up front with
    the argument and the side(s) named, whatever the route.
    """


#: Known provider classes: (module, class name) -> (SDK methods "module:Class.method", arguments the LangChain
#: class consumes itself). Matched against every class of a model's MRO.
_KNOWN: dict[tuple[str, str], tuple[tuple[str, ...], frozenset[str]]] = {
    ("langchain_openai.chat_models.base", "BaseChatOpenAI"): (
        (
            "openai.resources.chat.completions:Completions.create",
            "openai.resources.responses:Responses.create",
        ),
        frozenset({"stream_usage", "strict", "include_response_headers"}),
    ),
    ("langchain_anthropic.chat_models", "ChatAnthropic"): (
        (
            "anthropic.resources.messages:Messages.create",
            "anthropic.resources.beta.messages:Messages.create",
        ),
        frozenset(
            {
                "temperature",
                "top_k",
                "top_p",
                "stream_usage",
                "effort",
                "reasoning_effort",
                "response_format",
                "output_format",
                "cache_control",
                "betas",
            }
        ),
    ),
}

_REGISTERED: dict[type, frozenset[str]] = {}


def register_call_params(cls: type, names: Iterable[str]) -> None:
    """Declare the call arguments of a chat model class (and its subclasses) that is not known here.

    Example: `register_call_params(MyChatModel, ["temperature", "seed", "my_option"])`.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_call_params needs a class, got {type(cls).__name__}")
    _REGISTERED[cls] = frozenset(str(n) for n in names)
    call_params.cache_clear()


def _sdk_params(spec: str) -> frozenset[str] | None:
    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        params = inspect.signature(target).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    return frozenset(
        n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    )


def _named_params(cls: type) -> frozenset[str]:
    """The named keyword parameters of the class's generation methods (e.g. `stream_usage`)."""
    names: set[str] = set()
    for method in ("_generate", "_agenerate", "_stream", "_astream"):
        try:
            params = inspect.signature(getattr(cls, method)).parameters
        except (AttributeError, TypeError, ValueError):
            continue
        names.update(n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    return frozenset(names)


@lru_cache(maxsize=256)
def call_params(cls: type) -> frozenset[str] | None:
    """The call arguments instances of `cls` understand, or None when that is not known (pass everything)."""
    for klass in cls.__mro__:
        if klass in _REGISTERED:
            return _REGISTERED[klass]
    declared = getattr(cls, "routellm_call_params", None)
    if declared is not None:
        return frozenset(declared) - _NOT_ARGS
    for klass in cls.__mro__:
        known = _KNOWN.get((klass.__module__, klass.__qualname__))
        if known is None:
            continue
        methods, own = known
        found = [p for p in (_sdk_params(m) for m in methods) if p is not None]
        if not found:  # the SDK moved its methods: better pass everything than drop what works
            return None
        return (frozenset().union(*found) | own | _named_params(cls)) - _NOT_ARGS
    return None


def model_call_params(model: Any) -> frozenset[str] | None:
    """`call_params` of a model instance's class."""
    return call_params(type(model))  # type: ignore[arg-type]


__all__ = ["UnsupportedCallArgumentError", "call_params", "model_call_params", "register_call_params"]
