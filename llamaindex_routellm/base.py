"""RoutedLLM: a LlamaIndex LLM that sends each call to a strong or a weak LLM, as a RouteLLM router decides, or to
one of N LLMs (`models={...}`) by predicted quality and cost.

The LLM only; the decision is the core policy's (routing_core.policy), per-call bookkeeping is in `_calls.py`, text
extraction in `_text.py`.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import re
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SerializeAsAny
from llama_index.core.callbacks import CallbackManager
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.instrumentation.events.llm import LLMPredictEndEvent, LLMPredictStartEvent
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import (
    LLM,
    ToolSelection,
    astream_chat_response_to_tokens,
    astream_completion_response_to_tokens,
    stream_chat_response_to_tokens,
    stream_completion_response_to_tokens,
)
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.types import Model, TokenAsyncGen, TokenGen

from llamaindex_routellm import _calls
from llamaindex_routellm._calls import PAYLOAD_KEY, NextDecision, _Call
from llamaindex_routellm._text import (
    _check_messages,
    _message_text,
    _messages_text,
    _route_text_from_messages,
)
from llamaindex_routellm.events import RoutingDecision
from llamaindex_routellm.turns import TURN_SOURCE, Turn, current_turn, install_turn_tracking
from routing_core import DEFAULT_ROUTER, Router, check_strong_fraction, load_router
from routing_core.cost_policy import EXPECTED_OUTPUT_TOKENS, CostAwarePolicy
from routing_core.costs import DEFAULT_PRICES, Price, PriceTable
from routing_core.errors import CallArgumentError, UnknownRouterError
from routing_core.policy import (
    Decision,
    TwoModelPolicy,
    check_fallback_on,
    is_fallback_error,
    resolve_threshold,
)
from routing_core.registry import DEFAULT_MULTI_ROUTER

if TYPE_CHECKING:
    from llama_index.core.chat_engine.types import AgentChatResponse
    from llama_index.core.tools.types import BaseTool

dispatcher = instrument.get_dispatcher(__name__)
logger = logging.getLogger(__name__)

#: Keyword argument that forces the side of one call: `llm.chat(messages, routellm_model="strong")` (or a model key).
FORCE_KWARG = "routellm_model"
#: Internal keyword argument carrying a decision made ahead of the call (predict, tools, structured output).
DECISION_KWARG = "routellm_decision"
#: Internal keyword argument carrying how to prepare a tool call for another side (used by a fallback).
TOOLS_KWARG = "routellm_tools"
_ROUTING_KWARGS = (FORCE_KWARG, DECISION_KWARG, TOOLS_KWARG)

RoutePer = Literal["turn", "call"]
_ROUTE_PER: tuple[str, ...] = ("turn", "call")


class RoutedArgumentError(CallArgumentError):
    """A call argument the chosen model does not accept (raised instead of the client's own `TypeError`).

    Attributes:
        argument: The argument's name.
        side: The side that refused it (`"strong"`/`"weak"`, or the model key with more than two models).
        model_name: That model's name.
    """

    def __init__(self, message: str, argument: str, side: str, model_name: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.side = side
        self.model_name = model_name


_UNEXPECTED_KWARG = re.compile(r"unexpected keyword argument '([^']+)'")


def _exception_name(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _exception_class(name: str) -> type[BaseException]:
    """The exception class a `fallback_on` entry names (`"module.Class"`, as stored by `to_dict`)."""
    module, _, qualname = name.rpartition(".")
    try:
        obj: Any = importlib.import_module(module or "builtins")
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"fallback_on names {name!r}, which cannot be imported: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise ValueError(f"fallback_on names {name!r}, which is not an exception class")
    return obj


class _ToolsPlan:
    """How a tool call was prepared, so that a fallback side can prepare it again in its own format."""

    __slots__ = ("owner", "side", "args", "kwargs")

    def __init__(self, owner: RoutedLLM, side: str, args: dict[str, Any], kwargs: dict[str, Any]) -> None:
        self.owner = owner
        self.side = side
        self.args = args
        self.kwargs = kwargs

    def prepare(self, side: str) -> dict[str, Any]:
        llm = self.owner._function_calling_llm(side)
        prepared = llm._prepare_chat_with_tools_compat(**self.args, **self.kwargs)
        return {k: v for k, v in prepared.items() if k not in _ROUTING_KWARGS}


_SIDES: tuple[str, str] = ("strong", "weak")


class _Pin:
    """A decision made by `predict_and_call` for the single LLM call it makes next (consumed once)."""

    __slots__ = ("owner", "decision", "used")

    def __init__(self, owner: RoutedLLM, decision: RoutingDecision) -> None:
        self.owner = owner
        self.decision = decision
        self.used = False


_PIN: ContextVar[_Pin | None] = ContextVar("routellm_pin", default=None)


def _no_fallback(failed: RoutingDecision, error: BaseException) -> RoutingDecision | None:
    return None


def _check_side(value: Any) -> str:
    if value not in _SIDES:
        raise ValueError(f"{FORCE_KWARG} must be 'strong' or 'weak', got {value!r}")
    return str(value)


def _min_known(values: Sequence[int | None], default: int) -> int:
    """The smallest size, treating non-positive values as unknown."""
    known = [v for v in values if v is not None and v > 0]
    return min(known) if known else default


#: The two-model form's options, refused with `models=` (and their N-model counterparts, for the message).
_TWO_MODEL_ONLY = {
    "threshold": "lam=, margin=, target_cost= or target_quality=",
    "strong_fraction": "target_cost= or target_quality=",
    "strong_kwargs": "model_kwargs={key: {...}}",
    "weak_kwargs": "model_kwargs={key: {...}}",
}
#: The N-model form's options, refused with `strong=`/`weak=`.
_MULTI_ONLY = (
    "lam",
    "margin",
    "target_cost",
    "target_quality",
    "model_map",
    "costs",
    "prices",
    "expected_output_tokens",
    "model_kwargs",
)


def _given(value: Any) -> bool:
    """Whether an optional argument was given (None and empty containers mean "not given")."""
    if value is None:
        return False
    if isinstance(value, Mapping | list | tuple) and not value:
        return False
    return True


def _check_models(models: Any) -> dict[str, LLM]:
    """Validate `models=`: a mapping of at least two non-empty string keys to llama_index LLMs, in order."""
    if not isinstance(models, Mapping):
        raise TypeError(f"models must be a dict of {{key: LLM}}, got {type(models).__name__}")
    if len(models) < 2:
        raise ValueError(f"models needs at least two LLMs as {{key: LLM}}, got {len(models)}")
    out: dict[str, LLM] = {}
    for key, llm in models.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"models keys must be non-empty strings (the routing keys), got {key!r}")
        if key in ("auto",):
            raise ValueError(f"models key {key!r} is reserved ({FORCE_KWARG}='auto' lets the router decide)")
        if not isinstance(llm, LLM):
            raise TypeError(f"models[{key!r}] must be a llama_index LLM, got {type(llm).__name__}")
        out[key] = llm
    return out


def _check_side_kwargs(name: str, value: Any) -> dict[str, Any]:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of keyword arguments, got {type(value).__name__}")
    bad = [k for k in (value or {}) if k in _ROUTING_KWARGS]
    if bad:
        raise ValueError(f"{name} cannot set the routing argument {bad[0]!r}")
    return dict(value or {})


def _check_model_kwargs(value: Any, models: Mapping[str, LLM]) -> dict[str, dict[str, Any]]:
    """Validate `model_kwargs=`: {model key: {argument: value}} for keys of `models`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"model_kwargs must be a dict of {{model key: {{...}}}}, got {type(value).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for key, kw in value.items():
        if key not in models:
            raise ValueError(
                f"model_kwargs names {key!r}, which is not a routed model key: use {', '.join(map(repr, models))}"
            )
        out[key] = _check_side_kwargs(f"model_kwargs[{key!r}]", kw)
    return out


def _price_entries(table: PriceTable) -> tuple[dict[str, tuple[float, float]], bool]:
    """A price table as (the entries that are not the defaults, whether the defaults are included)."""
    with_defaults = all(k in table.prices for k in DEFAULT_PRICES)
    entries = {
        k: (p.input, p.output)
        for k, p in table.prices.items()
        if not with_defaults or DEFAULT_PRICES.get(k) != p
    }
    return entries, with_defaults


def _price_table(prices: Any, default_prices: bool) -> PriceTable:
    if isinstance(prices, PriceTable):
        return prices
    if prices is not None and not isinstance(prices, Mapping):
        raise TypeError(
            f"prices must be a PriceTable or a dict {{model: (input, output) USD per 1M tokens}}, got "
            f"{type(prices).__name__}"
        )
    table: dict[str, Price | tuple[float, float]] = {}
    for name, value in (prices or {}).items():
        if isinstance(value, Price):
            table[name] = value
            continue
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(f"prices[{name!r}] must be (input, output) USD per 1M tokens, got {value!r}")
        table[name] = (float(value[0]), float(value[1]))
    return PriceTable(table, include_defaults=bool(default_prices))


class RoutedLLM(FunctionCallingLLM):
    """RouteLLM router over two LlamaIndex LLMs: each call goes to the strong or the weak model.

    A router (from `routing_core`) estimates, for the user's question, the probability that the strong
    model's answer beats the weak model's; the call goes to the strong model iff that win rate is at least
    `threshold`. Set the threshold directly, or give `strong_fraction`, the share of calls you want on the
    strong model, and the router's calibration turns it into a threshold.

    What is routed on:

    * `chat`, `stream_chat`, `achat`, `astream_chat` (and agents, chat engines): the last user message
      (without one, the last message that has text).
    * `complete` and its variants: the prompt.
    * `predict`, `stream`, `apredict`, `astream` and the structured-output methods (used by query engines
      and response synthesizers): the `query_str` template variable, i.e. the user's question, not the prompt
      stuffed with retrieved context. Without that variable, the formatted prompt's last user message.
    * Tool calling (`chat_with_tools`, `predict_and_call`, ...): `user_msg`, else the last user message in
      `chat_history`; tool formats, `get_tool_calls_from_response` and response validation are delegated to
      the model that answered.
    * Structured output (`structured_predict` and its async/streaming variants, `as_structured_llm`): routed
      like `predict`, then the chosen model runs its *own* `structured_predict` (for OpenAI: its native
      `response_format` JSON schema, or its function-calling path), not a program over this wrapper.
    * A message with no text (e.g. only an image) goes to `no_text_side` (strong by default).

    One decision per turn (`route_per="turn"`, the default): an agent run (`FunctionAgent`, `ReActAgent`,
    `AgentWorkflow`) or a chat-engine turn (`chat`/`achat`/`stream_chat`/`astream_chat` of any chat engine) is
    routed once, on the user's message, and every LLM call of that turn goes to the same side (ReAct
    observations, condense prompts and tool rounds are never routed on their own). `routed_turn(...)` does the
    same for your own code; `route_per="call"` routes every call on its own text. See `llamaindex_routellm.turns`.

    Pass `routellm_model="strong"` or `"weak"` to any call to bypass the router for that call.

    Fallback (off by default): with `fallback="other"`, a call whose chosen model raises (an HTTP 5xx or 429, a
    timeout, a connection error: any exception of the `fallback_on` types) is sent to the other model; streams
    fall back only before their first chunk. The answer's payload then has `fallback_from` (the side that
    failed) and `fallback_error` (its exception type), and so do the events of the fallback call. With fallback
    off, or when the other model fails too, the chosen model's exception reaches the caller unchanged (same
    type, message and traceback; a failed fallback adds a note to it). Cancellation never falls back, and
    neither does a `RoutedArgumentError` (an argument the chosen model does not accept).

    The wrapper is a transparent proxy: it emits no LLM events of its own, so each call yields exactly one
    set of LLM events (from the model that answered; `TokenCountingHandler` counts it once), plus one
    `RoutingDecisionEvent` and one `RoutedCallEndEvent` (see `llamaindex_routellm.events`) per model call (a
    fallback is a second call). Responses carry the decision under `response.additional_kwargs["routellm"]`.

    Setting `callback_manager` on the wrapper (as `Settings`, query engines and response synthesizers do)
    also sets it on both inner models, since they are the ones that emit the LLM callback events.

    More than two models: `RoutedLLM(models={"gpt-4o": ..., "mini": ..., "local": ...}, lam=...)` routes each
    call to one of N LLMs with `routing_core.cost_policy.CostAwarePolicy`: a multi-model router (default
    `routing_core.registry.DEFAULT_MULTI_ROUTER`) predicts each model's quality for the question, each call is
    priced (`costs=`, else `prices=` x tokens, else the router's learned cost), and the model maximising
    `quality - lam * cost` answers (or, with `margin=`, the cheapest within `margin` of the best; `target_cost=`
    / `target_quality=` calibrate `lam` on the router's reference sample, like `strong_fraction`). The keys are
    the routing keys: `side` in payloads and events, `routellm_model="local"` forces one, `fallback=["mini",
    "local"]` restricts it to some (tried, like `"other"`, best predicted quality first), `model_kwargs={"local": {...}}`
    adds per-model arguments. Everything above works the same over the N models (streaming, async, predict,
    tools and agents, native structured output, one decision per turn, events, pickling and `to_dict`); the
    payload adds `qualities` (predicted quality per key), `costs` (USD per call per key), `lambda` and `margin`
    when the router decided; `threshold` and `win_rate` are None. Metadata holds for every model (the smallest
    context window, function calling only if all support it). The first model is the reference: calls with no
    text go to it unless `no_text_side` says otherwise, and `RoutingEventHandler` reports savings against it.
    The two forms are exclusive: `strong=`/`weak=` with `threshold`/`strong_fraction`/`strong_kwargs`/
    `weak_kwargs`, or `models=` with the options below.

    Args:
        strong (LLM): The strong (expensive, better) model.
        weak (LLM): The weak (cheap) model.
        router (Union[str, Router]): A router name (`routing_core.available_routers()`), a checkpoint
            folder, or a `routing_core.Router`. Defaults to `routing_core.DEFAULT_ROUTER` (with `models=`: a
            multi-model router, default `routing_core.registry.DEFAULT_MULTI_ROUTER`).
        threshold (Optional[float]): Win-rate threshold in [0, 1]. Exactly one of `threshold` and
            `strong_fraction` must be given.
        strong_fraction (Optional[float]): Target share of strong calls in [0, 1], turned into a threshold
            with `router.threshold_for_strong_fraction`.
        router_kwargs (Optional[dict]): Keyword arguments for `routing_core.load_router` (e.g. `seed`).
        route_template_vars (Sequence[str]): Template variables that hold the user's question in
            `predict`-style calls, tried in order. Default `("query_str",)`.
        no_text_side (str): Where calls with nothing to route on go: `"strong"` (default) or `"weak"` (with
            `models=`: a model key, default the first).
        fallback (Union[None, str, Sequence[str]]): `None`/`False`/`"none"` (default: errors propagate),
            `"other"` (the other model answers when the chosen one raises; with `models=`, the others, best
            predicted quality first), or a list of sides/model keys/model names: the models a fallback may use
            (with `models=`, also tried best predicted quality first: the policy's `fallback_order`).
        fallback_on (Union[type, Sequence[type]]): The exception types that fall back (default: `Exception`),
            e.g. `(openai.APIError, TimeoutError)`.
        route_per (str): `"turn"` (default: one decision per agent run / chat-engine turn) or `"call"`.
        strong_kwargs (Optional[dict]): Keyword arguments added to every call sent to the strong model
            (provider-specific ones such as `seed`, `top_k`, `reasoning_effort`); call kwargs win.
        weak_kwargs (Optional[dict]): The same for the weak model.
        callback_manager (Optional[CallbackManager]): Shared with every inner model when given.
        models (Optional[dict]): The N-model form: routing key -> LLM, in order (at least two).
        lam (Optional[float]): With `models=`: choose the model maximising quality - lam x USD per call.
        margin (Optional[float]): With `models=`: the cheapest model within `margin` of the best predicted quality.
        target_cost (Optional[float]): With `models=`: `lam` set so the average cost per call on the router's
            reference sample is at most this (USD). Exactly one of `lam`, `margin`, `target_cost`,
            `target_quality` is given.
        target_quality (Optional[float]): With `models=`: `lam` set so the average predicted quality on the
            reference sample is at least this, at the lowest cost.
        model_map (Optional[dict]): With `models=`: model name (or key) -> the router model to treat it like, for
            models the router does not know (e.g. `{"local": "llama-3.1-8b-instruct"}`).
        costs (Optional[dict]): With `models=`: key or model name -> fixed USD per call (overrides prices).
        prices (Union[PriceTable, dict, None]): With `models=`: `{model name: (input, output) USD per 1M tokens}`
            added to `routing_core.costs.DEFAULT_PRICES`, or a `PriceTable`.
        expected_output_tokens (Optional[int]): With `models=`: answer length assumed when pricing a call from
            prices (default `routing_core.cost_policy.EXPECTED_OUTPUT_TOKENS`).
        model_kwargs (Optional[dict]): With `models=`: {key: {argument: value}} added to every call of that model
            (call kwargs win), the N-model `strong_kwargs`/`weak_kwargs`.
        default_prices (bool): With `models=`: include the default list prices in `prices` (default True).

    Examples:
        `pip install "routellm-plugin[llamaindex]" llama-index-llms-openai`

        ```python
        from llama_index.core.llms import ChatMessage
        from llama_index.llms.openai import OpenAI
        from llamaindex_routellm import RoutedLLM

        llm = RoutedLLM(
            strong=OpenAI(model="gpt-4o"),
            weak=OpenAI(model="gpt-4o-mini"),
            strong_fraction=0.3,  # about 30% of calls go to gpt-4o
        )
        response = llm.chat([ChatMessage(role="user", content="Prove that sqrt(2) is irrational.")])
        print(response.message.content)
        print(response.additional_kwargs["routellm"])  # side, model, win rate, threshold, ...

        # force a side for one call
        llm.complete("Say hi", routellm_model="weak")

        # use it anywhere LlamaIndex takes an LLM
        query_engine = index.as_query_engine(llm=llm)

        # the other model answers when the chosen one fails; provider-only arguments per side
        llm = RoutedLLM(
            strong=OpenAI(model="gpt-4o"),
            weak=OpenAI(model="gpt-4o-mini"),
            strong_fraction=0.3,
            fallback="other",
            strong_kwargs={"seed": 7},
        )

        # more than two models: the best predicted quality per dollar (the bundled multi-model router)
        from llama_index.llms.openai_like import OpenAILike  # pip install llama-index-llms-openai-like

        llm = RoutedLLM(
            models={
                "gpt-4o": OpenAI(model="gpt-4o"),
                "mini": OpenAI(model="gpt-4o-mini"),
                "local": OpenAILike(model="my-llama", api_base="http://localhost:8000/v1", is_chat_model=True),
            },
            target_cost=0.002,  # USD per call on average, on the router's reference sample
            # the router's names for the models (its model card lists the ones it knows)
            model_map={
                "gpt-4o": "gpt-4o-2024-08-06",
                "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
                "local": "llama-3.1-8b-instruct",
            },
            costs={"local": 0.0},  # USD per call; the others are priced from the default price table
            fallback="other",
            model_kwargs={"local": {"temperature": 0.1}},
        )
        response = llm.chat([ChatMessage(role="user", content="Summarise this paragraph ...")])
        payload = response.additional_kwargs["routellm"]
        print(payload["side"], payload["model_name"], payload["qualities"])  # e.g. mini gpt-4o-mini {...}
        llm.complete("Say hi", routellm_model="local")  # force one
        ```
    """

    strong: SerializeAsAny[LLM] | None = Field(default=None, description="The strong (expensive) LLM.")
    weak: SerializeAsAny[LLM] | None = Field(default=None, description="The weak (cheap) LLM.")
    models: dict[str, SerializeAsAny[LLM]] | None = Field(
        default=None, description="The N-model form: routing key -> LLM, in order (None for strong/weak)."
    )
    router: str = Field(
        default=DEFAULT_ROUTER,
        description="Router name or checkpoint path (the router's `name` when a Router object was given).",
    )
    router_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments given to routing_core.load_router."
    )
    threshold: float | None = Field(
        default=None, description="Strong iff win_rate >= threshold (None with models=).", ge=0.0, le=1.0
    )
    strong_fraction: float | None = Field(
        default=None, description="Target share of strong calls the threshold was derived from, if any."
    )
    route_template_vars: tuple[str, ...] = Field(
        default=("query_str",), description="Template variables holding the user's question in predict calls."
    )
    no_text_side: str = Field(default="strong", description="Side (or model key) for calls with no text.")
    fallback: str | list[str] | None = Field(
        default=None, description="None (errors propagate), 'other', or a list of sides / model names."
    )
    fallback_on: list[str] = Field(
        default_factory=lambda: ["builtins.Exception"],
        description="Exception types (module.Class) that fall back to another model.",
    )
    route_per: RoutePer = Field(
        default="turn", description="'turn': one decision per agent run / chat turn; 'call': every call."
    )
    strong_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments added to every call of the strong model."
    )
    weak_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments added to every call of the weak model."
    )
    lam: float | None = Field(
        default=None,
        description="models=: quality - lam * USD per call is maximised (resolved from targets).",
    )
    margin: float | None = Field(
        default=None, description="models=: the cheapest model within margin of the best predicted quality."
    )
    target_cost: float | None = Field(
        default=None, description="models=: the average USD per call lam was calibrated to, if any."
    )
    target_quality: float | None = Field(
        default=None, description="models=: the average predicted quality lam was calibrated to, if any."
    )
    model_map: dict[str, str] = Field(
        default_factory=dict, description="models=: model name or key -> the router model to treat it like."
    )
    costs: dict[str, float] = Field(
        default_factory=dict, description="models=: key or model name -> fixed USD per call."
    )
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="models=: model name -> (input, output) USD per 1M tokens."
    )
    default_prices: bool = Field(default=True, description="models=: the default list prices are included.")
    expected_output_tokens: int | None = Field(
        default=None, description="models=: answer tokens assumed when pricing a call from prices."
    )
    model_kwargs: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="models=: key -> keyword arguments added to every call of it."
    )

    _router: Router = PrivateAttr()
    _router_object: bool = PrivateAttr(default=False)
    _policy_cache: tuple[Any, TwoModelPolicy | CostAwarePolicy] | None = PrivateAttr(default=None)
    _price_table: PriceTable | None = PrivateAttr(default=None)
    _fallback_sides: tuple[str, ...] | None = PrivateAttr(default=None)
    _fallback_types: tuple[type[BaseException], ...] = PrivateAttr(default=(Exception,))
    _ready: bool = PrivateAttr(default=False)

    def __init__(
        self,
        strong: LLM | None = None,
        weak: LLM | None = None,
        router: str | Path | Router | None = None,
        threshold: float | None = None,
        strong_fraction: float | None = None,
        router_kwargs: dict[str, Any] | None = None,
        route_template_vars: Sequence[str] = ("query_str",),
        no_text_side: str | None = None,
        fallback: str | Sequence[str] | bool | None = None,
        fallback_on: type[BaseException] | Sequence[type[BaseException] | str] | None = None,
        route_per: RoutePer = "turn",
        strong_kwargs: dict[str, Any] | None = None,
        weak_kwargs: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        *,
        models: Mapping[str, LLM] | None = None,
        lam: float | None = None,
        margin: float | None = None,
        target_cost: float | None = None,
        target_quality: float | None = None,
        model_map: Mapping[str, str] | None = None,
        costs: Mapping[str, float] | None = None,
        prices: PriceTable | Mapping[str, Price | tuple[float, float]] | None = None,
        expected_output_tokens: int | None = None,
        model_kwargs: Mapping[str, dict[str, Any]] | None = None,
        default_prices: bool = True,
        **kwargs: Any,
    ) -> None:
        if models is not None:
            if strong is not None or weak is not None:
                raise ValueError(
                    "RoutedLLM takes either strong= and weak= (two models, a win-rate threshold) or "
                    "models={key: LLM, ...} (two or more, by predicted quality and cost), not both"
                )
            for name, value in (
                ("threshold", threshold),
                ("strong_fraction", strong_fraction),
                ("strong_kwargs", strong_kwargs),
                ("weak_kwargs", weak_kwargs),
            ):
                if _given(value):
                    raise ValueError(
                        f"RoutedLLM(models=...) routes by predicted quality and cost: {name}= belongs to the "
                        f"two-model form (strong=, weak=); use {_TWO_MODEL_ONLY[name]}"
                    )
        else:
            if strong is None or weak is None:
                raise TypeError(
                    "RoutedLLM needs strong= and weak= (two LLMs), or models={key: LLM, ...} (two or more)"
                )
            multi_given = {
                "lam": lam,
                "margin": margin,
                "target_cost": target_cost,
                "target_quality": target_quality,
                "model_map": model_map,
                "costs": costs,
                "prices": prices,
                "expected_output_tokens": expected_output_tokens,
                "model_kwargs": model_kwargs,
            }
            for name in _MULTI_ONLY:
                if _given(multi_given[name]):
                    raise ValueError(
                        f"{name}= belongs to the N-model form, RoutedLLM(models={{key: LLM, ...}}, ...); with "
                        "strong= and weak= use threshold= or strong_fraction= (and strong_kwargs=/weak_kwargs=)"
                    )
            for side, llm in (("strong", strong), ("weak", weak)):
                if not isinstance(llm, LLM):
                    raise TypeError(f"{side} must be a llama_index LLM, got {type(llm).__name__}")
            _check_side("strong" if no_text_side is None else no_text_side)
        if route_per not in _ROUTE_PER:
            raise ValueError(f"route_per must be 'turn' or 'call', got {route_per!r}")
        side_kwargs = {
            "strong_kwargs": _check_side_kwargs("strong_kwargs", strong_kwargs),
            "weak_kwargs": _check_side_kwargs("weak_kwargs", weak_kwargs),
        }
        fallback_types = check_fallback_on(
            None
            if fallback_on is None
            else [_exception_class(t) if isinstance(t, str) else t for t in fallback_on]
            if isinstance(fallback_on, list | tuple)
            else fallback_on
        )
        if fallback is False:
            fallback = None
        if isinstance(fallback, tuple):
            fallback = list(fallback)
        if isinstance(route_template_vars, str):
            route_template_vars = (route_template_vars,)
        router_kwargs = dict(router_kwargs or {})
        if router is None:
            router = DEFAULT_MULTI_ROUTER if models is not None else DEFAULT_ROUTER
        router_obj = load_router(router, **router_kwargs)
        router_name = str(router) if isinstance(router, str | Path) else router_obj.name
        common: dict[str, Any] = {
            "router": router_name,
            "router_kwargs": router_kwargs,
            "route_template_vars": tuple(route_template_vars),
            "fallback": fallback,
            "fallback_on": [_exception_name(t) for t in fallback_types],
            "route_per": route_per,
            "callback_manager": callback_manager or CallbackManager([]),
        }
        multi_policy: CostAwarePolicy | None = None
        table: PriceTable | None = None
        if models is not None:
            llms = _check_models(models)
            per_model = _check_model_kwargs(model_kwargs, llms)
            table = _price_table(prices, default_prices)
            entries, with_defaults = _price_entries(table)
            names = {k: llm.metadata.model_name for k, llm in llms.items()}
            eot = EXPECTED_OUTPUT_TOKENS if expected_output_tokens is None else expected_output_tokens
            multi_policy = CostAwarePolicy(
                router_obj,
                names,
                lam=lam,
                margin=margin,
                target_cost=target_cost,
                target_quality=target_quality,
                model_map=dict(model_map or {}),
                costs=dict(costs or {}),
                prices=table,
                expected_output_tokens=eot,
                no_text_side=no_text_side,
                router_name=router_name,
                owner="RoutedLLM",
            )
            super().__init__(
                models=llms,
                no_text_side=multi_policy.no_text_side,
                lam=multi_policy.lam,
                margin=multi_policy.margin,
                target_cost=multi_policy.target_cost,
                target_quality=multi_policy.target_quality,
                model_map=dict(multi_policy.model_map),
                costs=dict(costs or {}),
                prices=entries,
                default_prices=with_defaults,
                expected_output_tokens=multi_policy.expected_output_tokens,
                model_kwargs=per_model,
                **common,
                **kwargs,
            )
        else:
            threshold = resolve_threshold(router_obj, threshold, strong_fraction, "RoutedLLM")
            if strong_fraction is not None:
                strong_fraction = check_strong_fraction(strong_fraction)
            super().__init__(
                strong=strong,
                weak=weak,
                threshold=threshold,
                strong_fraction=strong_fraction,
                no_text_side="strong" if no_text_side is None else no_text_side,
                strong_kwargs=side_kwargs["strong_kwargs"],
                weak_kwargs=side_kwargs["weak_kwargs"],
                **common,
                **kwargs,
            )
        self._router = router_obj
        self._router_object = not isinstance(router, str | Path)
        self._price_table = table
        if multi_policy is not None:
            self._policy_cache = (self._multi_policy_key(), multi_policy)
        self._fallback_types = fallback_types
        self._fallback_sides = self.policy.fallback_sides(fallback)  # validated once, here
        if callback_manager is not None:
            self._share_callback_manager()
        if route_per == "turn":
            install_turn_tracking()
        self._ready = True

    # -- pickling: every construction form round-trips ------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What `pickle` stores: the constructor's arguments (a router given by name or folder is loaded again
        on unpickling; a `Router` object is pickled with it, and must be picklable)."""
        if self._router_object:
            try:
                pickle.dumps(self._router)
            except Exception as e:
                raise TypeError(
                    f"cannot pickle this RoutedLLM: its router object ({type(self._router).__name__}) is not "
                    f"picklable ({type(e).__name__}: {e}); give the router by name or checkpoint folder "
                    "(RoutedLLM(router='difficulty' or '/path/to/checkpoint')) or make the router picklable"
                ) from e
        router = self._router if self._router_object else self.router
        if self.models is not None:
            return {
                "routellm_init": {
                    "models": dict(self.models),
                    "router": router,
                    "router_kwargs": dict(self.router_kwargs),
                    "lam": self.lam,
                    "margin": self.margin,
                    "model_map": dict(self.model_map),
                    "costs": dict(self.costs),
                    "prices": self._price_table,
                    "expected_output_tokens": self.expected_output_tokens,
                    "route_template_vars": tuple(self.route_template_vars),
                    "no_text_side": self.no_text_side,
                    "fallback": self.fallback,
                    "fallback_on": self._fallback_types,
                    "route_per": self.route_per,
                    "model_kwargs": {k: dict(v) for k, v in self.model_kwargs.items()},
                    "callback_manager": self.callback_manager,
                },
                "strong_fraction": None,
                "targets": {"target_cost": self.target_cost, "target_quality": self.target_quality},
            }
        return {
            "routellm_init": {
                "strong": self.strong,
                "weak": self.weak,
                "router": router,
                "router_kwargs": dict(self.router_kwargs),
                "threshold": self.threshold,
                "route_template_vars": tuple(self.route_template_vars),
                "no_text_side": self.no_text_side,
                "fallback": self.fallback,
                "fallback_on": self._fallback_types,
                "route_per": self.route_per,
                "strong_kwargs": dict(self.strong_kwargs),
                "weak_kwargs": dict(self.weak_kwargs),
                "callback_manager": self.callback_manager,
            },
            "strong_fraction": self.strong_fraction,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from `__getstate__` (the stored threshold is used as is; the router is loaded again)."""
        if "routellm_init" not in state:  # pickled by an older version: pydantic's own state
            super().__setstate__(state)
            return
        self.__init__(**state["routellm_init"])  # type: ignore[misc]
        # informational: the threshold was derived from it (pydantic validates the assignment)
        self.__dict__["strong_fraction"] = state["strong_fraction"]
        for name, value in (state.get("targets") or {}).items():  # informational: lam was calibrated to them
            self.__dict__[name] = value

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "callback_manager" and getattr(self, "_ready", False):
            self._share_callback_manager()

    def _share_callback_manager(self) -> None:
        for llm in self._llms().values():
            llm.callback_manager = self.callback_manager

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RoutedLLM"

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> RoutedLLM:  # type: ignore[override]
        """Rebuild from `to_dict()` output.

        Inner models stored as dicts are rebuilt with `llama_index.core.llms.loading.load_llm` (which knows
        `MockLLM`, `OpenAI`, `AzureOpenAI`, ...). Pass `strong=`/`weak=` (LLM objects) for the others, and
        `router=` for a custom Router object. In the N-model form, `models={key: LLM}` replaces the stored
        models of those keys (the others are rebuilt from the dict).

        Examples:
            ```python
            data = llm.to_dict()
            same = RoutedLLM.from_dict(data, strong=my_strong_llm, weak=my_weak_llm)
            same_n = RoutedLLM.from_dict(data_n, models={"local": my_local_llm})
            ```
        """
        from llama_index.core.llms.loading import load_llm

        given_models = kwargs.pop("models", None)
        data = dict(data)
        data.update(kwargs)
        data.pop("class_name", None)
        for side in _SIDES:
            value = data.get(side)
            if isinstance(value, dict):
                try:
                    data[side] = load_llm(value)
                except ValueError as e:
                    raise ValueError(
                        f"cannot rebuild the {side} LLM ({value.get('class_name')!r}) from a dict: {e}; "
                        f"pass it again, e.g. RoutedLLM.from_dict(data, {side}=<LLM>)"
                    ) from e
        stored = data.get("models")
        if stored is not None or given_models is not None:
            merged: dict[str, Any] = {}
            for key, value in {**(stored or {}), **(given_models or {})}.items():
                if given_models is not None and key in given_models:
                    merged[key] = given_models[key]
                elif isinstance(value, dict):
                    try:
                        merged[key] = load_llm(value)
                    except ValueError as e:
                        raise ValueError(
                            f"cannot rebuild the model {key!r} ({value.get('class_name')!r}) from a dict: {e}; "
                            f"pass it again, e.g. RoutedLLM.from_dict(data, models={{{key!r}: <LLM>}})"
                        ) from e
                else:
                    merged[key] = value
            data["models"] = merged
        strong_fraction = data.get("strong_fraction")
        if data.get("threshold") is not None:
            data.pop("strong_fraction", None)  # the stored threshold is authoritative
        targets = {k: data.get(k) for k in ("target_cost", "target_quality")}
        if data.get("lam") is not None:  # likewise the stored lambda
            data.pop("target_cost", None)
            data.pop("target_quality", None)
        try:
            out = cls(**data)
        except UnknownRouterError as e:
            if "router" in kwargs:
                raise
            raise ValueError(
                f"cannot rebuild the router {data.get('router')!r} from a dict: {e}; it was probably given as a "
                "Router object: pass it again, e.g. RoutedLLM.from_dict(data, router=<Router>)"
            ) from e
        if strong_fraction is not None and data.get("threshold") is not None:
            out.__dict__["strong_fraction"] = strong_fraction
        if data.get("lam") is not None:
            for name, value in targets.items():
                out.__dict__[name] = value
        return out

    # -- metadata ---------------------------------------------------------------------------------------

    @property
    def metadata(self) -> LLMMetadata:
        """Metadata that holds for whichever model answers.

        The context window and output size are the smallest of the models'; function calling only if every
        model supports it; `is_chat_model` only if all are chat models (prompt templates chosen from this
        flag then fit any model, and `predict`/`stream` format prompts for the model actually chosen).
        """
        llms = self._llms()
        mds = {side: llm.metadata for side, llm in llms.items()}
        function_calling = all(
            md.is_function_calling_model and isinstance(llms[side], FunctionCallingLLM)
            for side, md in mds.items()
        )
        if not function_calling:
            self._check_not_in_function_agent(mds)
        roles = {md.system_role for md in mds.values()}
        first = next(iter(mds.values()))
        return LLMMetadata(
            context_window=_min_known([md.context_window for md in mds.values()], DEFAULT_CONTEXT_WINDOW),
            num_output=_min_known([md.num_output for md in mds.values()], DEFAULT_NUM_OUTPUTS),
            is_chat_model=all(md.is_chat_model for md in mds.values()),
            is_function_calling_model=function_calling,
            model_name=f"routellm[{self.router}]({'|'.join(md.model_name for md in mds.values())})",
            system_role=first.system_role if len(roles) == 1 else MessageRole.SYSTEM,
        )

    def _check_not_in_function_agent(self, mds: Mapping[str, LLMMetadata]) -> None:
        """Inside a `FunctionAgent` run that uses this LLM, a model without function calling is our error.

        `FunctionAgent` reads `metadata.is_function_calling_model` and would fail with "LLM must be a
        FunctionCallingLLM"; say which model lacks it and what to do instead.
        """
        turn = current_turn()
        if turn is None or turn.kind != "agent":
            return
        from llama_index.core.agent.workflow import FunctionAgent

        owner = turn.owner
        agents = (
            list(getattr(owner, "agents", {}).values()) if not isinstance(owner, FunctionAgent) else [owner]
        )
        if not any(isinstance(a, FunctionAgent) and a.llm is self for a in agents):
            return
        llms = self._llms()
        lacking = [
            f"the {side if self.models is None else repr(side)} model ({md.model_name}, {type(llms[side]).__name__})"
            for side, md in mds.items()
            if not (md.is_function_calling_model and isinstance(llms[side], FunctionCallingLLM))
        ]
        if self.models is None:
            raise ValueError(
                f"RoutedLLM in a FunctionAgent: {' and '.join(lacking)} does not support function calling, and "
                "either side may be chosen for a step. Use two function-calling models, or a ReActAgent (it "
                "works with any model), or route only function-calling models."
            )
        raise ValueError(
            f"RoutedLLM in a FunctionAgent: {', '.join(lacking)} {'does' if len(lacking) == 1 else 'do'} not "
            "support function calling, and any routed model may be chosen for a step. Route only "
            "function-calling models, or use a ReActAgent (it works with any model)."
        )

    def get_router(self) -> Router:
        """The `routing_core.Router` in use."""
        return self._router

    def _llms(self) -> dict[str, LLM]:
        """Every routed LLM by side (`{"strong": ..., "weak": ...}`) or model key (`models=`), in order."""
        if self.models is not None:
            return self.models
        assert self.strong is not None and self.weak is not None
        return {"strong": self.strong, "weak": self.weak}

    @property
    def sides(self) -> tuple[str, ...]:
        """The routing keys: `("strong", "weak")`, or the keys of `models`, in order."""
        return tuple(self.models) if self.models is not None else _SIDES

    def llm_for(self, side: str) -> LLM:
        """The inner LLM of `side` (`"strong"` or `"weak"`; with `models=`, a model key)."""
        if self.models is None:
            llm = self.strong if _check_side(side) == "strong" else self.weak
            assert llm is not None
            return llm
        if side not in self.models:
            raise ValueError(
                f"{side!r} is not a routed model: use one of {', '.join(map(repr, self.models))}"
            )
        return self.models[side]

    # -- decisions --------------------------------------------------------------------------------------

    def _multi_policy_key(self) -> tuple[Any, ...]:
        assert self.models is not None
        names = tuple((k, llm.metadata.model_name) for k, llm in self.models.items())
        return (names, self.lam, self.margin, self.no_text_side)

    @property
    def policy(self) -> TwoModelPolicy | CostAwarePolicy:
        """The routing policy (routing_core.policy) making every decision; rebuilt if a model's name changes.

        `TwoModelPolicy` for `strong=`/`weak=`; `routing_core.cost_policy.CostAwarePolicy` for `models=`.
        """
        if self.models is not None:
            key = self._multi_policy_key()
            cached = self._policy_cache
            if cached is None or cached[0] != key:
                table = self._price_table or _price_table(self.prices, self.default_prices)
                policy: TwoModelPolicy | CostAwarePolicy = CostAwarePolicy(
                    self._router,
                    dict(key[0]),
                    lam=self.lam if self.margin is None else None,
                    margin=self.margin,
                    model_map=dict(self.model_map),
                    costs=dict(self.costs),
                    prices=table,
                    expected_output_tokens=(
                        EXPECTED_OUTPUT_TOKENS
                        if self.expected_output_tokens is None
                        else self.expected_output_tokens
                    ),
                    no_text_side=self.no_text_side,
                    router_name=self.router,
                    owner="RoutedLLM",
                )
                cached = self._policy_cache = (key, policy)
            return cached[1]
        # Each model's metadata is read once per call (it is a computed property on most LLMs).
        assert self.strong is not None and self.weak is not None
        names = (self.strong.metadata.model_name, self.weak.metadata.model_name)
        cached = self._policy_cache
        if cached is None or cached[0] != names or cached[1].threshold != self.threshold:
            policy = TwoModelPolicy(
                self._router,
                names[0],
                names[1],
                threshold=self.threshold,
                no_text_side=self.no_text_side,
                router_name=self.router,
                owner="RoutedLLM",
            )
            cached = self._policy_cache = (names, policy)
        return cached[1]

    def _wrap(self, decision: Decision, turn_id: str | None = None) -> RoutingDecision:
        policy = self.policy
        if self.models is not None:
            names = policy.model_names
            return RoutingDecision.from_policy(
                decision, names[policy.sides[0]], "", turn_id=turn_id, models=names
            )
        return RoutingDecision.from_policy(
            decision, policy.model_names["strong"], policy.model_names["weak"], turn_id=turn_id
        )

    def _take_pin(self) -> RoutingDecision | None:
        pin = _PIN.get()
        if pin is not None and pin.owner is self and not pin.used:
            pin.used = True
            return pin.decision
        return None

    def _ready_decision(self, kwargs: dict[str, Any]) -> tuple[RoutingDecision | None, Any]:
        """Pop the routing kwargs; return a decision made ahead (pinned) if any, and the forced side."""
        forced = kwargs.pop(FORCE_KWARG, None)
        pinned = kwargs.pop(DECISION_KWARG, None)
        if pinned is not None:
            if not isinstance(pinned, RoutingDecision):
                raise TypeError(f"{DECISION_KWARG} is internal and must be a RoutingDecision")
            return pinned, None
        if forced is None:
            return self._take_pin(), None
        return None, forced

    def _turn(self, forced: Any) -> Turn | None:
        """The turn this call follows (None: route the call on its own)."""
        if forced is not None or self.route_per != "turn":
            return None
        return current_turn()

    def _resolve(
        self, kwargs: dict[str, Any], text_fn: Callable[[], tuple[str | None, str]]
    ) -> RoutingDecision:
        ready, forced = self._ready_decision(kwargs)
        if ready is not None:
            return ready
        turn = self._turn(forced)
        if turn is None:
            return self._wrap(self.policy.decide_lazy(text_fn, forced=forced))
        made = turn.decision(self)
        if made is None:
            with turn.deciding(self):  # concurrent calls of one turn: one router call
                made = turn.decision(self)
                if made is None:
                    text, source = (turn.text, TURN_SOURCE) if turn.text else text_fn()
                    made = turn.keep(self, self._wrap(self.policy.decide(text, source), turn.turn_id))
        return made.again()

    async def _aresolve(
        self, kwargs: dict[str, Any], text_fn: Callable[[], tuple[str | None, str]]
    ) -> RoutingDecision:
        ready, forced = self._ready_decision(kwargs)
        if ready is not None:
            return ready
        turn = self._turn(forced)
        # router work (embeddings, model inference) runs off the event loop, in the policy
        if turn is None:
            return self._wrap(await self.policy.adecide_lazy(text_fn, forced=forced))
        made = turn.decision(self)
        if made is None:
            async with turn.adeciding(self):
                made = turn.decision(self)
                if made is None:
                    text, source = (turn.text, TURN_SOURCE) if turn.text else text_fn()
                    decided = await self.policy.adecide(text, source)
                    made = turn.keep(self, self._wrap(decided, turn.turn_id))
        return made.again()

    def _next_decision(self, first: RoutingDecision) -> NextDecision:
        """The fallback rule of one request: the policy's order after `first.side`, for qualifying errors."""
        allowed = self._fallback_sides
        if not allowed or first.core is None:
            return _no_fallback
        order = list(self.policy.fallback_order(first.core, allowed))

        def next_decision(failed: RoutingDecision, error: BaseException) -> RoutingDecision | None:
            if not order or failed.core is None or isinstance(error, RoutedArgumentError):
                return None
            if not is_fallback_error(error, self._fallback_types):
                return None
            side = order.pop(0)
            answered = self._wrap(self.policy.fell_back(failed.core, side, error), failed.turn_id)
            turn = current_turn()
            if turn is not None and failed.turn_id == turn.turn_id:
                turn.keep(
                    self, answered, replace=True
                )  # the rest of the turn stays on the side that answered
            return answered

        return next_decision

    def route(self, text: str) -> RoutingDecision:
        """The decision for a question, without calling any model or dispatching events.

        Examples:
            ```python
            decision = llm.route("What is the capital of France?")
            print(decision.side, decision.win_rate)
            ```
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._wrap(self.policy.decide(text, "prompt"))

    async def aroute(self, text: str) -> RoutingDecision:
        """Async `route`: the router runs in a thread executor."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._wrap(await self.policy.adecide(text, "prompt"))

    @staticmethod
    def _chat_text_fn(messages: list[ChatMessage]) -> Callable[[], tuple[str | None, str]]:
        return lambda: _route_text_from_messages(messages)

    @staticmethod
    def _prompt_text_fn(prompt: str) -> Callable[[], tuple[str | None, str]]:
        return lambda: (prompt, "prompt")

    def _template_text_fn(
        self, prompt: BasePromptTemplate, prompt_args: dict[str, Any]
    ) -> Callable[[], tuple[str | None, str]]:
        def fn() -> tuple[str | None, str]:
            partials = getattr(prompt, "kwargs", None) or {}
            for var in self.route_template_vars:
                for source in (prompt_args, partials):
                    if var in source and source[var] is not None:
                        return str(source[var]), var
            text, _ = _route_text_from_messages(prompt.format_messages(**prompt_args))
            return text, "prompt_template"

        return fn

    @staticmethod
    def _tools_text_fn(
        user_msg: str | ChatMessage | None, chat_history: Sequence[ChatMessage] | None
    ) -> Callable[[], tuple[str | None, str]]:
        def fn() -> tuple[str | None, str]:
            if isinstance(user_msg, str):
                return user_msg, "user_msg"
            if isinstance(user_msg, ChatMessage):
                return _message_text(user_msg), "user_msg"
            history = list(chat_history or [])
            if not history:
                raise ValueError("RoutedLLM got no user_msg and no chat_history: nothing to send to a model")
            return _route_text_from_messages(history)

        return fn

    # -- calling the chosen model ------------------------------------------------------------------------

    def _side_kwargs(self, side: str) -> dict[str, Any]:
        if self.models is not None:
            return self.model_kwargs.get(side) or {}
        return self.strong_kwargs if side == "strong" else self.weak_kwargs

    def _call_kwargs(self, side: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The kwargs a call to `side` gets: that side's defaults, then the call's own (which win)."""
        defaults = self._side_kwargs(side)
        return {**defaults, **kwargs} if defaults else kwargs

    def _argument_error(
        self, error: TypeError, side: str, kwargs: dict[str, Any]
    ) -> RoutedArgumentError | None:
        """Our error for a client `TypeError` about one of the call's keyword arguments (None otherwise)."""
        match = _UNEXPECTED_KWARG.search(str(error))
        if match is None or match.group(1) not in kwargs:
            return None
        name = match.group(1)
        llm = self.llm_for(side)
        model = llm.metadata.model_name
        if self.models is not None:
            origin = f"model_kwargs[{side!r}]" if name in self._side_kwargs(side) else "this call"
            return RoutedArgumentError(
                f"the {side!r} model ({model}, {type(llm).__name__}) does not accept the argument {name!r} "
                f"(from {origin}); the router sent this call to it. Pass provider-specific arguments per model: "
                f"RoutedLLM(..., model_kwargs={{{side!r}: {{...}}}}) for that model only. "
                f"({type(error).__name__}: {error})",
                name,
                side,
                model,
            )
        origin = f"{side}_kwargs" if name in self._side_kwargs(side) else "this call"
        return RoutedArgumentError(
            f"the {side} model ({model}, {type(llm).__name__}) does not accept the argument {name!r} "
            f"(from {origin}); the router sent this call to it. Pass provider-specific arguments per side: "
            f"RoutedLLM(..., {side}_kwargs={{...}}) for the {side} model only. ({type(error).__name__}: {error})",
            name,
            side,
            model,
        )

    def _invoke(self, decision: RoutingDecision, method: str, kwargs: dict[str, Any], *args: Any) -> Any:
        """`<chosen model>.<method>(*args, **kwargs)` with the side's defaults; argument errors made clear."""
        kw = self._call_kwargs(decision.side, kwargs)
        try:
            return getattr(self.llm_for(decision.side), method)(*args, **kw)
        except TypeError as e:
            clear = self._argument_error(e, decision.side, kw)
            if clear is None:
                raise
            raise clear from e

    async def _ainvoke(
        self, decision: RoutingDecision, method: str, kwargs: dict[str, Any], *args: Any
    ) -> Any:
        """Async `_invoke`."""
        kw = self._call_kwargs(decision.side, kwargs)
        try:
            return await getattr(self.llm_for(decision.side), method)(*args, **kw)
        except TypeError as e:
            clear = self._argument_error(e, decision.side, kw)
            if clear is None:
                raise
            raise clear from e

    def _chat_args(
        self, decision: RoutingDecision, messages: list[ChatMessage], kwargs: dict[str, Any], tools: Any
    ) -> tuple[list[ChatMessage], dict[str, Any]]:
        """Messages and kwargs for `decision.side`: a tool call prepared for another side is prepared again."""
        if isinstance(tools, _ToolsPlan) and tools.side != decision.side:
            prepared = tools.prepare(decision.side)
            return list(prepared.pop("messages", messages)), prepared
        return messages, kwargs

    # -- chat -------------------------------------------------------------------------------------------

    def _begin(
        self,
        call: str,
        kwargs: dict[str, Any],
        text_fn: Callable[[], tuple[str | None, str]],
        input_text: Callable[[], str],
    ) -> _Call:
        """Decide (popping the routing kwargs) and open the routed call (its decision event goes out now)."""
        return _Call(self._resolve(kwargs, text_fn), call, input_text)

    async def _abegin(
        self,
        call: str,
        kwargs: dict[str, Any],
        text_fn: Callable[[], tuple[str | None, str]],
        input_text: Callable[[], str],
    ) -> _Call:
        """Async `_begin`: the router runs in a thread executor."""
        return _Call(await self._aresolve(kwargs, text_fn), call, input_text)

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Chat with the model the router picks for the last user message.

        Args:
            messages (Sequence[ChatMessage]): The conversation; must not be empty.
            kwargs (Any): Passed to the chosen model; `routellm_model="strong"|"weak"` (or a model key) forces a side.

        Returns:
            ChatResponse: The chosen model's response, with the decision in `additional_kwargs["routellm"]`.

        Examples:
            ```python
            from llama_index.core.llms import ChatMessage

            response = llm.chat([ChatMessage(role="user", content="Hello")])
            print(response.message.content, response.additional_kwargs["routellm"]["side"])
            ```
        """
        messages = _check_messages(messages)
        tools = kwargs.pop(TOOLS_KWARG, None)
        call = self._begin("chat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages))

        def invoke(d: RoutingDecision) -> Any:
            msgs, kw = self._chat_args(d, messages, kwargs, tools)
            return self._invoke(d, "chat", kw, msgs)

        return _calls.run(call, invoke, self._next_decision(call.decision))  # type: ignore[no-any-return]

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`; the router runs in a thread executor, off the event loop.

        Examples:
            ```python
            response = await llm.achat([ChatMessage(role="user", content="Hello")])
            ```
        """
        messages = _check_messages(messages)
        tools = kwargs.pop(TOOLS_KWARG, None)
        call = await self._abegin(
            "achat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages)
        )

        def invoke(d: RoutingDecision) -> Any:
            msgs, kw = self._chat_args(d, messages, kwargs, tools)
            return self._ainvoke(d, "achat", kw, msgs)

        return await _calls.arun(call, invoke, self._next_decision(call.decision))  # type: ignore[no-any-return]

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream a chat from the chosen model; every chunk carries the decision.

        The decision is made (and the decision event dispatched) when this method is called; the end event
        follows when the stream is exhausted, fails or is closed. With `fallback` on, a stream that fails
        before its first chunk is answered by the other model.

        Examples:
            ```python
            for chunk in llm.stream_chat([ChatMessage(role="user", content="Tell me a story")]):
                print(chunk.delta, end="")
            ```
        """
        messages = _check_messages(messages)
        tools = kwargs.pop(TOOLS_KWARG, None)
        call = self._begin(
            "stream_chat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages)
        )

        def open_stream(d: RoutingDecision) -> Any:
            msgs, kw = self._chat_args(d, messages, kwargs, tools)
            return self._invoke(d, "stream_chat", kw, msgs)

        return _calls.stream(call, open_stream, self._next_decision(call.decision))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Async `stream_chat`; the router runs in a thread executor.

        Examples:
            ```python
            async for chunk in await llm.astream_chat([ChatMessage(role="user", content="Hi")]):
                print(chunk.delta, end="")
            ```
        """
        messages = _check_messages(messages)
        tools = kwargs.pop(TOOLS_KWARG, None)
        call = await self._abegin(
            "astream_chat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages)
        )

        def open_stream(d: RoutingDecision) -> Any:
            msgs, kw = self._chat_args(d, messages, kwargs, tools)
            return self._ainvoke(d, "astream_chat", kw, msgs)

        return await _calls.astream(call, open_stream, self._next_decision(call.decision))

    # -- completion -------------------------------------------------------------------------------------

    @staticmethod
    def _check_prompt(prompt: Any) -> str:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        return prompt

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Complete `prompt` with the model the router picks for it.

        Args:
            prompt (str): The prompt; it is also what the router scores (inside an agent or chat-engine
                turn: the turn's user message).
            formatted (bool): Whether the prompt is already formatted for the model.
            kwargs (Any): Passed to the chosen model; `routellm_model="strong"|"weak"` (or a model key) forces a side.

        Examples:
            ```python
            response = llm.complete("Paris is the capital of")
            print(response.text, response.additional_kwargs["routellm"]["model_name"])
            ```
        """
        prompt = self._check_prompt(prompt)
        call = self._begin("complete", kwargs, self._prompt_text_fn(prompt), lambda: prompt)
        kwargs["formatted"] = formatted
        return _calls.run(  # type: ignore[no-any-return]
            call, lambda d: self._invoke(d, "complete", kwargs, prompt), self._next_decision(call.decision)
        )

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Async `complete`; the router runs in a thread executor.

        Examples:
            ```python
            response = await llm.acomplete("Paris is the capital of")
            ```
        """
        prompt = self._check_prompt(prompt)
        call = await self._abegin("acomplete", kwargs, self._prompt_text_fn(prompt), lambda: prompt)
        kwargs["formatted"] = formatted
        return await _calls.arun(  # type: ignore[no-any-return]
            call, lambda d: self._ainvoke(d, "acomplete", kwargs, prompt), self._next_decision(call.decision)
        )

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Stream a completion from the chosen model; every chunk carries the decision.

        Examples:
            ```python
            for chunk in llm.stream_complete("Once upon a time"):
                print(chunk.delta, end="")
            ```
        """
        prompt = self._check_prompt(prompt)
        call = self._begin("stream_complete", kwargs, self._prompt_text_fn(prompt), lambda: prompt)
        kwargs["formatted"] = formatted
        return _calls.stream(
            call,
            lambda d: self._invoke(d, "stream_complete", kwargs, prompt),
            self._next_decision(call.decision),
        )

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async `stream_complete`; the router runs in a thread executor.

        Examples:
            ```python
            async for chunk in await llm.astream_complete("Once upon a time"):
                print(chunk.delta, end="")
            ```
        """
        prompt = self._check_prompt(prompt)
        call = await self._abegin("astream_complete", kwargs, self._prompt_text_fn(prompt), lambda: prompt)
        kwargs["formatted"] = formatted
        return await _calls.astream(
            call,
            lambda d: self._ainvoke(d, "astream_complete", kwargs, prompt),
            self._next_decision(call.decision),
        )

    # -- prompt chaining: route on the question, not on the stuffed prompt ------------------------------

    def _start_predict(
        self,
        decision: RoutingDecision,
        prompt: BasePromptTemplate,
        prompt_args: dict[str, Any],
        *,
        stream: bool,
    ) -> tuple[LLM, list[ChatMessage] | None, str | None]:
        """What `predict`/`stream` do once decided: the start event, the template log, and `prompt` formatted
        for the chosen model the way `llm.predict` would (plus this wrapper's system prompt and output parser).

        Returns (chosen llm, messages, None) for a chat model, else (chosen llm, None, formatted prompt).
        """
        llm = self.llm_for(decision.side)
        # LlamaIndex's own order: predict sends the start event before logging the template, stream after.
        if stream:
            self._check_streamable(llm, prompt)
            self._log_template_data(prompt, **prompt_args)
        dispatcher.event(LLMPredictStartEvent(template=prompt, template_args=prompt_args))
        if not stream:
            self._log_template_data(prompt, **prompt_args)
        if llm.metadata.is_chat_model:
            messages = llm._get_messages(prompt, **prompt_args)
            if self.output_parser is not None:
                messages = self.output_parser.format_messages(messages)
            return llm, self._extend_messages(messages), None
        formatted = llm._get_prompt(prompt, **prompt_args)
        if self.output_parser is not None:
            formatted = self.output_parser.format(formatted)
        return llm, None, self._extend_prompt(formatted)

    def _end_predict(self, llm: LLM, output: str) -> str:
        """Parse `output` with the chosen model's and this wrapper's output parsers; send the end event."""
        parsed = self._parse_output(llm._parse_output(output))
        dispatcher.event(LLMPredictEndEvent(output=parsed))
        return parsed

    def predict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        """Predict, routing on the question (`query_str`) rather than on the formatted prompt.

        The prompt is formatted for the chosen model (its chat/completion mode, prompt-template selection,
        system prompt and output parser), then sent through `chat` or `complete` once.

        Examples:
            ```python
            from llama_index.core.prompts import PromptTemplate

            qa = PromptTemplate("Context: {context_str}\\nQuestion: {query_str}\\nAnswer:")
            answer = llm.predict(qa, context_str=long_context, query_str="Who wrote it?")
            ```
        """
        decision = self._resolve(prompt_args, self._template_text_fn(prompt, prompt_args))
        llm, messages, formatted = self._start_predict(decision, prompt, prompt_args, stream=False)
        if messages is not None:
            output = self.chat(messages, **{DECISION_KWARG: decision}).message.content or ""
        else:
            output = self.complete(formatted, formatted=True, **{DECISION_KWARG: decision}).text  # type: ignore[arg-type]
        return self._end_predict(llm, output)

    async def apredict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        """Async `predict`; the router runs in a thread executor.

        Examples:
            ```python
            answer = await llm.apredict(qa, context_str=long_context, query_str="Who wrote it?")
            ```
        """
        decision = await self._aresolve(prompt_args, self._template_text_fn(prompt, prompt_args))
        llm, messages, formatted = self._start_predict(decision, prompt, prompt_args, stream=False)
        if messages is not None:
            output = (await self.achat(messages, **{DECISION_KWARG: decision})).message.content or ""
        else:
            output = (await self.acomplete(formatted, formatted=True, **{DECISION_KWARG: decision})).text  # type: ignore[arg-type]
        return self._end_predict(llm, output)

    def _check_streamable(self, llm: LLM, prompt: BasePromptTemplate) -> None:
        if (
            prompt.output_parser is not None
            or self.output_parser is not None
            or llm.output_parser is not None
        ):
            raise NotImplementedError("Output parser is not supported for streaming.")

    def stream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenGen:
        """Stream predict, routing on the question (`query_str`).

        Examples:
            ```python
            for token in llm.stream(qa, context_str=long_context, query_str="Who wrote it?"):
                print(token, end="")
            ```
        """
        decision = self._resolve(prompt_args, self._template_text_fn(prompt, prompt_args))
        _, messages, formatted = self._start_predict(decision, prompt, prompt_args, stream=True)
        if messages is not None:
            return stream_chat_response_to_tokens(self.stream_chat(messages, **{DECISION_KWARG: decision}))
        return stream_completion_response_to_tokens(
            self.stream_complete(formatted, formatted=True, **{DECISION_KWARG: decision})  # type: ignore[arg-type]
        )

    async def astream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenAsyncGen:
        """Async stream predict, routing on the question (`query_str`).

        Examples:
            ```python
            async for token in await llm.astream(qa, context_str=ctx, query_str="Who wrote it?"):
                print(token, end="")
            ```
        """
        decision = await self._aresolve(prompt_args, self._template_text_fn(prompt, prompt_args))
        _, messages, formatted = self._start_predict(decision, prompt, prompt_args, stream=True)
        if messages is not None:
            gen = await self.astream_chat(messages, **{DECISION_KWARG: decision})
            return await astream_chat_response_to_tokens(gen)
        cgen = await self.astream_complete(formatted, formatted=True, **{DECISION_KWARG: decision})  # type: ignore[arg-type]
        return await astream_completion_response_to_tokens(cgen)

    # -- structured outputs: routed like predict, then the chosen model's own structured output ------------

    def _structured_args(
        self, prompt: BasePromptTemplate, prompt_args: dict[str, Any], llm_kwargs: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any], Callable[[], tuple[str | None, str]], Callable[[], str]]:
        """Split a structured call: (routing kwargs, the model's llm_kwargs, routing text, input text)."""
        rk: dict[str, Any] = {k: v for k, v in (llm_kwargs or {}).items() if k in _ROUTING_KWARGS}
        if FORCE_KWARG in prompt_args:
            rk[FORCE_KWARG] = prompt_args.pop(FORCE_KWARG)
        clean = {k: v for k, v in (llm_kwargs or {}).items() if k not in _ROUTING_KWARGS}

        def input_text() -> str:
            try:
                return prompt.format(**prompt_args)
            except Exception:  # token estimates only
                return " ".join(str(v) for v in prompt_args.values())

        return rk, clean, self._template_text_fn(prompt, prompt_args), input_text

    def _structured_invoke(
        self,
        method: str,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        clean: dict[str, Any],
        prompt_args: dict[str, Any],
    ) -> Callable[[RoutingDecision], Any]:
        def invoke(d: RoutingDecision) -> Any:
            llm = self.llm_for(d.side)
            kw = self._call_kwargs(d.side, dict(clean))
            return getattr(llm, method)(output_cls, prompt, llm_kwargs=kw, **prompt_args)

        return invoke

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Structured predict: routed on the question (`query_str`), answered by the chosen model's own
        `structured_predict` (OpenAI: its native `response_format` JSON schema).

        One `RoutingDecisionEvent` / `RoutedCallEndEvent` pair is dispatched for the call (the chosen model's
        own LLM events come in between); with `fallback` on, the other model answers if the chosen one raises.

        Examples:
            ```python
            from pydantic import BaseModel

            class Answer(BaseModel):
                text: str

            answer = llm.structured_predict(Answer, qa, context_str=ctx, query_str="Who wrote it?")
            ```
        """
        rk, clean, text_fn, input_text = self._structured_args(prompt, prompt_args, llm_kwargs)
        call = _Call(self._resolve(rk, text_fn), "structured_predict", input_text)
        invoke = self._structured_invoke("structured_predict", output_cls, prompt, clean, prompt_args)
        return _calls.run(call, invoke, self._next_decision(call.decision))  # type: ignore[no-any-return]

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async `structured_predict`; the router runs in a thread executor."""
        rk, clean, text_fn, input_text = self._structured_args(prompt, prompt_args, llm_kwargs)
        call = _Call(await self._aresolve(rk, text_fn), "astructured_predict", input_text)
        invoke = self._structured_invoke("astructured_predict", output_cls, prompt, clean, prompt_args)
        return await _calls.arun(call, invoke, self._next_decision(call.decision))  # type: ignore[no-any-return]

    def stream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Any, None, None]:
        """Stream partial objects from the chosen model's own `stream_structured_predict` (falls back before
        the first one)."""
        rk, clean, text_fn, input_text = self._structured_args(prompt, prompt_args, llm_kwargs)
        call = _Call(self._resolve(rk, text_fn), "stream_structured_predict", input_text)
        invoke = self._structured_invoke("stream_structured_predict", output_cls, prompt, clean, prompt_args)
        return _calls.stream(call, invoke, self._next_decision(call.decision))

    async def astream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Any, None]:
        """Async `stream_structured_predict`; the router runs in a thread executor."""
        rk, clean, text_fn, input_text = self._structured_args(prompt, prompt_args, llm_kwargs)
        call = _Call(await self._aresolve(rk, text_fn), "astream_structured_predict", input_text)
        invoke = self._structured_invoke("astream_structured_predict", output_cls, prompt, clean, prompt_args)
        return await _calls.astream(call, invoke, self._next_decision(call.decision))

    # -- tool calling: decide first, then let the chosen model format, validate and parse ----------------

    def _function_calling_llm(self, side: str) -> FunctionCallingLLM:
        llm = self.llm_for(side)
        if not isinstance(llm, FunctionCallingLLM) or not llm.metadata.is_function_calling_model:
            if self.models is not None:
                raise ValueError(
                    f"the {side!r} model ({llm.metadata.model_name}, {type(llm).__name__}) does not support "
                    "function calling, so RoutedLLM cannot send it tools; route only function-calling models, "
                    f"or force one with {FORCE_KWARG}=..."
                )
            raise ValueError(
                f"the {side} model ({llm.metadata.model_name}, {type(llm).__name__}) does not support "
                "function calling, so RoutedLLM cannot send it tools; use two function-calling models, or "
                "force the other side with routellm_model=..."
            )
        return llm

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Route on `user_msg` (else the last user message), then let the chosen model prepare the call.

        The returned kwargs carry the decision, so the `chat` that follows goes to the same model.
        """
        decision = self._resolve(kwargs, self._tools_text_fn(user_msg, chat_history))
        kwargs.pop(TOOLS_KWARG, None)
        plan = _ToolsPlan(
            self,
            decision.side,
            {
                "tools": tools,
                "user_msg": user_msg,
                "chat_history": chat_history,
                "verbose": verbose,
                "allow_parallel_tool_calls": allow_parallel_tool_calls,
                "tool_required": tool_required,
            },
            dict(kwargs),
        )
        prepared = plan.prepare(decision.side)
        return {**prepared, DECISION_KWARG: decision, TOOLS_KWARG: plan}

    async def achat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Async chat with tools; the router runs in a thread executor, then the chosen model answers."""
        decision = await self._aresolve(kwargs, self._tools_text_fn(user_msg, chat_history))
        return await super().achat_with_tools(
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            tool_required=tool_required,
            **{**kwargs, DECISION_KWARG: decision},
        )

    async def astream_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponseAsyncGen:
        """Async streaming chat with tools (what `FunctionAgent` uses); the router runs in a thread."""
        decision = await self._aresolve(kwargs, self._tools_text_fn(user_msg, chat_history))
        return await super().astream_chat_with_tools(
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            tool_required=tool_required,
            **{**kwargs, DECISION_KWARG: decision},
        )

    def _side_of(self, response: ChatResponse) -> str:
        payload = (response.additional_kwargs or {}).get(PAYLOAD_KEY)
        if payload is None:
            # not produced through this wrapper (e.g. an empty placeholder): the strong (first) model parses it
            return self.sides[0]
        side = payload.get("side") if isinstance(payload, dict) else None
        if side not in self.sides:
            raise ValueError(f"response has a malformed {PAYLOAD_KEY!r} payload: {payload!r}")
        return str(side)

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Delegate validation to the model that produced `response`."""
        decision_payload = (response.additional_kwargs or {}).get(PAYLOAD_KEY)
        llm = self._function_calling_llm(self._side_of(response))
        kwargs = {k: v for k, v in kwargs.items() if k not in _ROUTING_KWARGS}
        validated = llm._validate_chat_with_tools_response(
            response, tools, allow_parallel_tool_calls=allow_parallel_tool_calls, **kwargs
        )
        if decision_payload is not None and PAYLOAD_KEY not in (validated.additional_kwargs or {}):
            validated.additional_kwargs = {
                **(validated.additional_kwargs or {}),
                PAYLOAD_KEY: decision_payload,
            }
        return validated

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """Parse tool calls with the model that produced `response` (read from its routing payload).

        A response without a routing payload (not produced through this wrapper) is parsed by the strong
        model.

        Examples:
            ```python
            response = llm.chat_with_tools([add_tool], user_msg="What is 2 + 3?")
            calls = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
            ```
        """
        llm = self._function_calling_llm(self._side_of(response))
        return llm.get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

    def _react_defaults(self, kwargs: dict[str, Any]) -> None:
        """Fill the ReAct fallback's formatter and parser.

        `LLM.predict_and_call` (llama-index-core 0.14) passes `formatter=None` to `ReActAgent` when the caller
        gives no `react_chat_formatter`, which the agent rejects; supply the agent's own defaults instead.
        """
        if self.metadata.is_function_calling_model:
            return
        from llama_index.core.agent.react.output_parser import ReActOutputParser
        from llama_index.core.agent.workflow.react_agent import default_formatter

        if kwargs.get("react_chat_formatter") is None:
            kwargs["react_chat_formatter"] = default_formatter()
        if kwargs.get("output_parser") is None:
            kwargs["output_parser"] = ReActOutputParser()

    @contextmanager
    def _pinned(self, decision: RoutingDecision, kwargs: dict[str, Any]) -> Iterator[None]:
        """Pin `decision` for the LLM call that `predict_and_call` makes inside the block (ReAct defaults filled)."""
        self._react_defaults(kwargs)
        token = _PIN.set(_Pin(self, decision))
        try:
            yield
        finally:
            _PIN.reset(token)

    def predict_and_call(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        error_on_no_tool_call: bool = True,
        error_on_tool_error: bool = False,
        **kwargs: Any,
    ) -> AgentChatResponse:
        """Route on `user_msg`, let the chosen model pick the tool call, and run it.

        With two function-calling models this is native function calling; otherwise LlamaIndex's ReAct
        fallback runs, its LLM call pinned to the same decision. The decision is also stored in the
        result's `metadata["routellm"]`.

        Examples:
            ```python
            result = llm.predict_and_call([add_tool, multiply_tool], user_msg="What is 3 * 4?")
            print(result.response, result.metadata["routellm"]["side"])
            ```
        """
        decision = self._resolve(kwargs, self._tools_text_fn(user_msg, chat_history))
        with self._pinned(decision, kwargs):
            result = super().predict_and_call(
                tools,
                user_msg=user_msg,
                chat_history=chat_history,
                verbose=verbose,
                allow_parallel_tool_calls=allow_parallel_tool_calls,
                error_on_no_tool_call=error_on_no_tool_call,
                error_on_tool_error=error_on_tool_error,
                **kwargs,
            )
        result.metadata = {**(result.metadata or {}), PAYLOAD_KEY: decision.to_payload()}
        return result

    async def apredict_and_call(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        error_on_no_tool_call: bool = True,
        error_on_tool_error: bool = False,
        **kwargs: Any,
    ) -> AgentChatResponse:
        """Async `predict_and_call`; the router runs in a thread executor."""
        decision = await self._aresolve(kwargs, self._tools_text_fn(user_msg, chat_history))
        with self._pinned(decision, kwargs):
            result = await super().apredict_and_call(
                tools,
                user_msg=user_msg,
                chat_history=chat_history,
                verbose=verbose,
                allow_parallel_tool_calls=allow_parallel_tool_calls,
                error_on_no_tool_call=error_on_no_tool_call,
                error_on_tool_error=error_on_tool_error,
                **kwargs,
            )
        result.metadata = {**(result.metadata or {}), PAYLOAD_KEY: decision.to_payload()}
        return result

    def __repr__(self) -> str:
        if self.models is not None:
            names = {k: llm.metadata.model_name for k, llm in self.models.items()}
            knob = f"lam={self.lam!r}" if self.margin is None else f"margin={self.margin!r}"
            return f"RoutedLLM(models={names!r}, router={self.router!r}, {knob})"
        assert self.strong is not None and self.weak is not None
        return (
            f"RoutedLLM(strong={self.strong.metadata.model_name!r}, weak={self.weak.metadata.model_name!r}, "
            f"router={self.router!r}, threshold={self.threshold:.4f})"
        )
