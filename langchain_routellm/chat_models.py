"""`RoutedChatModel`: a LangChain chat model that routes each call to a strong or a weak chat model (RouteLLM), or
to one of N chat models by predicted quality and cost."""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
    Callbacks,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
    RunnableWithFallbacks,
    ensure_config,
)
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from langchain_routellm._params import UnsupportedCallArgumentError, model_call_params
from langchain_routellm._routing import (
    FORCE_KWARG,
    METADATA_KEY,
    ROUTE_EVENT,
    ROUTE_KWARG,
    SIDES,
    EventTarget,
    Route,
    RoutingTextFn,
    ToolSet,
    adispatch_route_event,
    can_stream,
    dispatch_route_event,
    pop_forced,
    result_to_chunk,
    routing_text_and_source,
    run_manager_kwargs,
    with_route_metadata,
)
from langchain_routellm._sides import Attempts, SideModels, check_side_value, member_label
from langchain_routellm._structured import STRUCTURED_KWARG, StructuredSpec
from routing_core import DEFAULT_ROUTER, Router, check_strong_fraction, check_threshold, load_router
from routing_core.cost_policy import EXPECTED_OUTPUT_TOKENS, CostAwarePolicy
from routing_core.costs import count_tokens, get_encoding
from routing_core.errors import UnknownModelError
from routing_core.policy import RoutingPolicy, TwoModelPolicy, check_fallback_on
from routing_core.registry import DEFAULT_MULTI_ROUTER

try:  # langchain-core >= 1.1 uses time-ordered run ids
    from langchain_core.utils.uuid import uuid7 as _new_run_id
except ImportError:  # pragma: no cover - older langchain-core
    from uuid import uuid4 as _new_run_id  # type: ignore[assignment]

logger = logging.getLogger("langchain_routellm")

_G = TypeVar("_G", bound=ChatGeneration)
# Standard constructor arguments of provider chat models that describe a client connection; a router has none.
_CLIENT_ARGS = ("api_key", "base_url", "timeout", "max_retries", "organization", "default_headers")
# Options of the N-model form (models=) and of the two-model form (strong=/weak=), for the mutual-exclusion errors.
_MULTI_ONLY = ("lam", "margin", "target_cost", "target_quality", "model_map", "costs", "prices")
_TWO_ONLY = ("threshold", "strong_fraction", "strong_kwargs", "weak_kwargs")
# Call keywords RoutedChatModel handles itself; never per-side defaults.
_RESERVED_ARGS = frozenset(
    {"tools", "tool_choice", "stop", "model", FORCE_KWARG, ROUTE_KWARG, STRUCTURED_KWARG}
)


@dataclass(slots=True)
class _CallArgs:
    """One call's arguments: the caller's own (checked against the routed models) and the neutral bindings."""

    args: dict[str, Any]
    tools: ToolSet | None
    spec: StructuredSpec | None


def _params_hint(key: str, models: Sequence[BaseChatModel]) -> str:
    """ "did you mean 'seed'?" from the call arguments of `models` (empty when nothing is close)."""
    known = sorted(set().union(*(model_call_params(m) or () for m in models)))
    close = difflib.get_close_matches(key, known, n=3)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class RoutedChatModel(BaseChatModel):
    """Learned LLM routing (RouteLLM): every call goes to a strong or a weak chat model, or to one of N models.

    A router estimates, per prompt, the probability that the strong model's answer beats the weak one's
    (its *win rate*). The call goes to the strong model iff `win_rate >= threshold`; pick the threshold directly
    or ask for a share of strong calls with `strong_fraction`. The two models may come from different providers.

    With `models={key: chat model, ...}` instead of `strong=`/`weak=`, a multi-model router predicts each model's
    quality per prompt and the call goes to the model with the best quality for its cost (see "N models" below).

    Setup:
        Install the plugin with its LangChain extra, plus the provider packages of your two models.

        ```bash
        pip install -U "routellm-plugin[langchain]" langchain-openai langchain-anthropic
        export OPENAI_API_KEY="..."  # whatever the inner models need
        ```

    Key init args — routing:
        strong: BaseChatModel | RunnableWithFallbacks
            The capable, expensive model; or a chat model with fallbacks
            (`ChatOpenAI(...).with_fallbacks([ChatAnthropic(...)])`), whose models are tried in order on the errors
            of its `exceptions_to_handle` (the side's name, tools and tracing come from its first model).
        weak: BaseChatModel | RunnableWithFallbacks
            The cheap model (same forms).
        router: str | Path | Router
            A bundled router name, a checkpoint folder, or a `routing_core.Router`; defaults to
            `routing_core.DEFAULT_ROUTER` (`routing_core.registry.DEFAULT_MULTI_ROUTER` with `models=`). Loaded
            once, at construction. Use `router_kwargs` to configure it.
        threshold: float | None
            Strong iff win_rate >= threshold, in [0, 1].
        strong_fraction: float | None
            Instead of `threshold`: the target share of strong calls, in [0, 1], turned into a threshold with
            `router.threshold_for_strong_fraction`. Give exactly one of `threshold` and `strong_fraction`.
        routing_text: Callable[[Sequence[BaseMessage]], str] | None
            What the router reads. Default: the last human message's text (see "Routing text" below).
        no_text_model: "strong" | "weak"
            Where calls with no routing text go (default "strong"; with `models=`, a key, default the first).

    Key init args — N models (instead of strong/weak and threshold/strong_fraction):
        models: dict[str, BaseChatModel | RunnableWithFallbacks]
            Routing key -> chat model (or chat model with fallbacks), e.g. `{"gpt-4o": ChatOpenAI(model="gpt-4o"),
            "mini": ChatOpenAI(model="gpt-4o-mini"), "haiku": ChatAnthropic(...)}`; any number >= 2, any mix of
            providers. A list of chat models is keyed by their model names. The router defaults to
            `routing_core.registry.DEFAULT_MULTI_ROUTER`; it must know every model by name (through the alias
            table; an undated name such as "gpt-4o" resolves to the latest dated snapshot it knows) or be told
            what to treat it as with `model_map`; otherwise construction raises `routing_core.errors.UnknownModelError`
            naming the models it knows.
        lam: float | None
            Choose the model maximising `predicted quality - lam * cost` (cost in USD per call). `0`: best quality.
        margin: float | None
            Instead of `lam`: the cheapest model whose predicted quality is within `margin` of the best one.
        target_cost: float | None
            Instead of `lam`: the λ whose average cost per call on the router's reference sample is at most this.
        target_quality: float | None
            Instead of `lam`: the λ whose average predicted quality is at least this, at the lowest cost.
            Give exactly one of `lam`, `margin`, `target_cost` and `target_quality`.
        model_map: dict[str, str]
            Key or model name -> the router's model to treat it as (`{"my-llama": "llama-3.1-8b-instruct"}`).
        costs: dict[str, float]
            Key or model name -> a fixed USD per call; otherwise `prices` (a `PriceTable` or `{name: (in, out)}`
            USD per 1M tokens, added to the defaults) x (input tokens + `expected_output_tokens`); otherwise the
            router's cost line learned from its training data; otherwise construction fails naming the model.
        model_kwargs: dict[str, dict[str, Any]]
            Call arguments per model, by key: `{"gpt-4o": {"seed": 7}, "haiku": {"top_k": 40}}`.

    Key init args — reliability:
        fallback: None | "other" | list[str]
            Off by default: a failing model's error reaches the caller unchanged. `"other"`: a call whose chosen
            model raised is sent to the other model (see "Fallback" below). A list of sides or model names: those.
        fallback_on: type[Exception] | tuple[type[Exception], ...]
            The errors that fall back (default `(Exception,)`: HTTP 5xx/429, timeouts, connection errors, ...);
            cancellation, `KeyboardInterrupt` and `SystemExit` never do.

    Key init args — call params (forwarded to the chosen model when set):
        temperature: float | None
        max_tokens: int | None
        stop: list[str] | None
        strong_kwargs: dict[str, Any]
            Call arguments for every call the strong model answers, e.g. `{"seed": 7}` for an OpenAI model.
        weak_kwargs: dict[str, Any]
            The same for the weak model, e.g. `{"top_k": 40}` for an Anthropic model.
        unsupported_call_args: "drop" | "raise"
            What to do with a call argument that only some routed models take (see "Call arguments").

        Precedence: a call's own arguments, then `strong_kwargs`/`weak_kwargs`, then `temperature`/`max_tokens`.
        Client settings (`api_key`, `timeout`, `max_retries`, ...) belong to the inner models; passing them here
        warns and ignores them.

    Instantiate:
        ```python
        from langchain_anthropic import ChatAnthropic
        from langchain_openai import ChatOpenAI
        from langchain_routellm import RoutedChatModel

        model = RoutedChatModel(
            strong=ChatOpenAI(model="gpt-4o"),
            weak=ChatAnthropic(model="claude-3-5-haiku-latest"),
            strong_fraction=0.3,  # or threshold=0.5
            # router="random",    # defaults to routing_core.DEFAULT_ROUTER
        )
        ```

    Invoke:
        ```python
        messages = [
            ("system", "You are a helpful translator. Translate the user sentence to French."),
            ("human", "I love programming."),
        ]
        model.invoke(messages)
        ```

        ```python
        AIMessage(
            content="J'adore la programmation.",
            response_metadata={
                "model_name": "claude-3-5-haiku-20241022",
                "routellm": {
                    "router": "random", "threshold": 0.7, "win_rate": 0.41,
                    "side": "weak", "model_name": "claude-3-5-haiku-latest", "reason": "router",
                    "source": "last_user_message", "text_hash": "9f2c...", "text_preview": "I love programming.",
                },
                ...
            },
            usage_metadata={"input_tokens": 28, "output_tokens": 9, "total_tokens": 37},
        )
        ```

        Force a side for one call with `model="strong"` / `model="weak"` (or the name of one of the two models):
        `model.invoke(messages, model="strong")`.

    Stream:
        ```python
        for chunk in model.stream(messages):
            print(chunk.text, end="")
        ```

        The chosen model streams natively; exactly one chunk (the first) carries
        `response_metadata["routellm"]`, so `sum(chunks)` has it once.

    Async:
        ```python
        await model.ainvoke(messages)

        async for chunk in model.astream(messages):
            print(chunk.text, end="")

        await model.abatch([messages, messages])
        ```

        The router's win rate is computed in a thread executor: the event loop never waits on it.

    Tool calling:
        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location'''

            location: str = Field(..., description="The city and state, e.g. San Francisco, CA")


        model_with_tools = model.bind_tools([GetWeather], tool_choice="any")
        ai_msg = model_with_tools.invoke("What is the weather like in LA?")
        ai_msg.tool_calls
        ```

        ```python
        [{"name": "GetWeather", "args": {"location": "Los Angeles, CA"}, "id": "call_1", "type": "tool_call"}]
        ```

        Tools are kept as given and bound, with each provider's own `bind_tools`, on the model that is chosen at
        call time (converted once per side and cached), so strong and weak may use different tool formats.
        Both models must support tool calling; `bind_tools` checks that up front.

    Structured output:
        ```python
        class Joke(BaseModel):
            '''Joke to tell user.'''

            setup: str = Field(description="The setup of the joke")
            punchline: str = Field(description="The punchline to the joke")


        structured_model = model.with_structured_output(Joke)
        structured_model.invoke("Tell me a joke about cats")
        ```

        ```python
        Joke(setup="Why was the cat sitting on the computer?", punchline="To keep an eye on the mouse!")
        ```

        `method="function_calling"` (default) is portable across providers. `method="json_schema"` and
        `method="json_mode"` use each side's own implementation: the chosen side's request options are sent and
        its own parser reads the answer.

    Token usage:
        ```python
        ai_msg = model.invoke(messages)
        ai_msg.usage_metadata
        ```

        ```python
        {"input_tokens": 28, "output_tokens": 9, "total_tokens": 37}
        ```

        Usage comes from the model that answered, once per call (there is a single chat-model run; the inner
        model's generation methods run inside it). `get_num_tokens` counts offline with tiktoken.

    Response metadata:
        ```python
        ai_msg = model.invoke(messages)
        ai_msg.response_metadata["routellm"]
        ```

        ```python
        {
            "router": "random",  # router name
            "threshold": 0.7,  # threshold in use
            "win_rate": 0.41,  # router's strong-win rate; None when not consulted
            "side": "weak",  # side that answered
            "model_name": "claude-3-5-haiku-latest",
            "reason": "router",  # or "forced" (routellm_model= / model= kwarg) or "no_text"
            "source": "last_user_message",  # what was routed on ("earlier_user_message", "routing_text", ...)
            "text_hash": "9f2c1e...",  # sha256 prefix of the routed text, to audit decisions
            "text_preview": "I love programming.",  # its first 48 characters
        }

        The schema is `routing_core.policy.PAYLOAD_KEYS`, identical in the LlamaIndex wrapper (one policy,
        `routing_core.policy.TwoModelPolicy`, makes every decision of both).
        ```

        The same record is sent as a custom callback event named `routellm_route` (see `ROUTE_EVENT`) inside
        the chat-model run: it shows up in `astream_events` and reaches every callback handler, e.g.
        `langchain_routellm.RoutingCallbackHandler`, which logs decisions and sums calls, tokens and costs per
        side. Tracing (`_get_ls_params`) names the provider and model that actually answered.

    Routing text:
        By default the router reads the text of the last human message: a string content, or the `text` blocks
        of list content joined by newlines (images, audio, files and tool results are ignored). If that message
        has no text (e.g. an image only), the previous human message with text is used. Tool results never
        count, so every step of a tool-calling loop is routed on the user's request. When there is no human text
        at all (only system/AI/tool messages, or images only) — or your `routing_text` callable returns an empty
        string — the router is not consulted: the call goes to `no_text_model` ("strong" by default) with
        `win_rate=None` and `reason="no_text"`. An empty message list raises `ValueError`.

        To see a decision without calling a model: `model.route(messages).payload` (or `await model.aroute(...)`).

    Agents (one decision per turn):
        A LangGraph agent loop (`langgraph.prebuilt.create_react_agent`, `langchain.agents.create_agent`)
        calls the model once per step, with the tool results appended. Each step is routed on the last human
        message, which is the same for every step of a turn, so one side answers the whole turn (the routers are
        deterministic functions of the text) and every step's record has the same `win_rate` and `text_hash`.
        A new human message starts a new turn with its own decision. To route every step on what it ends with
        instead (e.g. a tool result), pass a `routing_text` callable:

        ```python
        from langchain_routellm import message_text

        model = RoutedChatModel(..., routing_text=lambda messages: message_text(messages[-1]))
        ```

    Fallback:
        ```python
        model = RoutedChatModel(strong=..., weak=..., threshold=0.5, fallback="other")
        ai_msg = model.invoke(messages)  # the strong model returned 500: the weak one answered
        ai_msg.response_metadata["routellm"]
        ```

        ```python
        {..., "side": "weak", "model_name": "claude-3-5-haiku-latest", "reason": "router", "win_rate": 0.9,
         "fallback_from": "strong", "fallback_error": "OpenAIAPIError"}
        ```

        Works in `invoke`/`ainvoke`/`batch`/`abatch`/`stream`/`astream`; a stream falls back only while the
        failed model has not yielded a chunk (after the first chunk, its error reaches the caller). The record
        keeps the router's decision (`win_rate`, `reason`, ...) and says which side failed (`fallback_from`) and
        how (`fallback_error`, the exception type's name). The run sends two `routellm_route` events: the
        decision, then the fallback record, which is also the one on the answer. When the other model fails too,
        the chosen model's error is raised, with a note naming the other's. Tools and structured output are sent
        to the fallback model in its own dialect, and it gets its own call arguments. Forced calls
        (`routellm_model=`) fall back too. In an agent, each step falls back on its own; the turn's decision stays.

    N models:
        ```python
        from langchain_anthropic import ChatAnthropic
        from langchain_openai import ChatOpenAI
        from langchain_routellm import RoutedChatModel, RoutingCallbackHandler

        model = RoutedChatModel(
            models={
                "gpt-4o": ChatOpenAI(model="gpt-4o"),
                "gpt-4o-mini": ChatOpenAI(model="gpt-4o-mini"),
                "haiku": ChatAnthropic(model="claude-3-5-haiku-latest"),
            },
            lam=50.0,  # or margin=0.05, target_cost=0.002 (USD per call), target_quality=0.8
            # router="multi",  # defaults to routing_core.registry.DEFAULT_MULTI_ROUTER
        )
        ai_msg = model.invoke("Prove that there are infinitely many primes.")
        ai_msg.response_metadata["routellm"]
        ```

        ```python
        {
            "router": "multi", "threshold": None, "win_rate": None,  # no threshold or win rate for N models
            "side": "gpt-4o",  # the routing key of the model that answered
            "model_name": "gpt-4o", "reason": "router", "source": "last_user_message",
            "text_hash": "5d1c...", "text_preview": "Prove that there are infinitely many primes.",
            "qualities": {"gpt-4o": 0.91, "gpt-4o-mini": 0.62, "haiku": 0.58},  # predicted, per model
            "costs": {"gpt-4o": 0.00259, "gpt-4o-mini": 0.000155, "haiku": 0.00103},  # USD per call, per model
            "lambda": 50.0, "margin": None,  # the knob in use (lambda also when calibrated from a target)
        }
        ```

        Everything above works the same over N models: `invoke`/`ainvoke`/`batch`/`stream`/`astream`, tools
        (bound on every model, each in its own provider's dialect), structured output (`function_calling`, or
        each model's own `json_schema`/`json_mode`), forcing a model per call (`model="haiku"` or
        `routellm_model="haiku"`, a key or a model name), `fallback="other"` (the other models, best predicted
        quality first) or a list of keys (tried in the list's order), per-model call arguments (`model_kwargs=`, and a call argument goes only
        to the models that take it), the `routellm_route` event, tracing naming the model that answered, and one
        decision per agent turn. `model.sides` lists the keys, `model.model_names` their names, and
        `model.policy` is the `routing_core.cost_policy.CostAwarePolicy` (`policy.lam` is the λ in use).
        `RoutingCallbackHandler()` keeps its totals per key (`handler.summary().sides["haiku"]`); give it
        `strong_model="gpt-4o"` to see the savings against always calling that model. `strong=`/`weak=` and
        `models=` cannot be mixed, nor the two forms' options (`threshold`/`strong_fraction`/`strong_kwargs`
        vs `lam`/`margin`/`target_*`/`model_map`/`costs`/`prices`).

    Call arguments:
        A call argument only one provider understands (`invoke(..., seed=1)`: OpenAI; `top_k=3`: Anthropic) is
        sent only to the models that take it and left out for the others, so a call does not fail depending on
        the route. `unsupported_call_args="raise"` makes such a call raise `UnsupportedCallArgumentError` (a
        `TypeError`) naming the argument and the side, on every route; an argument that no routed model takes
        (e.g. a typo) always raises it, before any request. Which arguments a model takes is read from the
        installed provider SDK's request signature for ChatOpenAI/AzureChatOpenAI and ChatAnthropic (plus the
        options those classes handle themselves, such as `stream_usage`), from a `routellm_call_params` class
        attribute, or from `langchain_routellm.register_call_params`; for any other model it is not
        known, and every argument is passed on. `model.call_params("strong")` shows the set.

    Errors:
        Routing errors (empty input, a bad `model=` value, a failing router), call-argument errors and
        inner-model errors are raised inside the chat-model run, so callbacks and tracers see the run end with
        `on_llm_error` before the exception propagates to the caller. Without `fallback`, an inner model's error
        propagates unchanged (same object, type and message). See docs/reliability.md for every failure mode.

    Inner models:
        The chosen model's `_generate`/`_agenerate`/`_stream`/`_astream` run inside the router's own run, with
        its run manager, so tokens and usage are reported once. Consequently the inner models' own `callbacks`,
        `tags`, `metadata` and `cache` are not used (set them on the `RoutedChatModel`); their `rate_limiter` and
        `disable_streaming` are honored. The router must be thread-safe (the bundled ones are).
    """

    strong: BaseChatModel | RunnableWithFallbacks | None = None
    """The strong (capable, expensive) chat model, or a chat model with fallbacks (`a.with_fallbacks([b])`). Two-model
    form only (None with `models=`)."""
    weak: BaseChatModel | RunnableWithFallbacks | None = None
    """The weak (cheap) chat model, or a chat model with fallbacks. Two-model form only."""
    models: dict[str, BaseChatModel | RunnableWithFallbacks] | None = None
    """N-model form: routing key -> chat model (or chat model with fallbacks), e.g. `{"gpt-4o": ChatOpenAI(...),
    "llama": ChatOllama(...)}`; a list of chat models is keyed by their model names. Routed by predicted quality
    and cost (`lam`, `margin`, `target_cost` or `target_quality`). Exclusive with `strong`/`weak`."""
    router: Router = Field(default=None, exclude=True, validate_default=False)  # type: ignore[assignment]
    """The router, loaded once at construction from a name, a checkpoint folder or a `Router` instance. Excluded
    from serialization (it is a live Python object, possibly user-defined); `_identifying_params` carries its
    `describe()` for tracing and cache keys."""
    router_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for `routing_core.load_router` (e.g. `{"seed": 1}` for the random router)."""
    threshold: float | None = None
    """Strong iff win_rate >= threshold. After construction it holds the threshold in use, also when it was
    derived from `strong_fraction`. Two-model form only."""
    strong_fraction: float | None = None
    """Target share of strong calls, turned into a threshold by the router's reference win rates. Two-model form
    only."""
    lam: float | None = None
    """N models: choose the model maximising `predicted quality - lam * cost` (cost in USD per call; 0: the best
    predicted quality whatever it costs). The λ in use (also when calibrated from a target) is `policy.lam`."""
    margin: float | None = None
    """N models: instead of `lam`, the cheapest model whose predicted quality is within `margin` of the best."""
    target_cost: float | None = None
    """N models: instead of `lam`, the λ whose average cost per call on the router's reference sample is at most
    this (USD)."""
    target_quality: float | None = None
    """N models: instead of `lam`, the λ whose average predicted quality on the reference sample is at least this,
    at the lowest cost."""
    model_map: dict[str, str] = Field(default_factory=dict)
    """N models: routing key or model name -> the router's model to treat it as, for models the router was not
    trained on (e.g. `{"llama": "llama-3.1-8b-instruct"}`)."""
    costs: dict[str, float] = Field(default_factory=dict)
    """N models: routing key or model name -> a fixed cost per call in USD (overrides `prices`)."""
    prices: Any = Field(default=None, exclude=True)
    """N models: a `routing_core.costs.PriceTable` or `{model name: (USD per 1M input, USD per 1M output)}` added to
    the default table, to price each call (input tokens + `expected_output_tokens`)."""
    expected_output_tokens: int = EXPECTED_OUTPUT_TOKENS
    """N models: the answer length (tokens) assumed when pricing a call from a price table."""
    routing_text: RoutingTextFn | None = Field(default=None, exclude=True)
    """Messages -> the text to route on. Default: `default_routing_text` (the last human message's text)."""
    no_text_model: str | None = None
    """The side used when there is no routing text (no human text at all): "strong" (default) or "weak"; with
    `models=`, a routing key or model name (default: the first model). Holds the side in use after construction."""
    temperature: float | None = None
    """Forwarded to the chosen model as a call argument when set."""
    max_tokens: int | None = None
    """Forwarded to the chosen model as a call argument when set."""
    stop: list[str] | None = None
    """Default stop sequences for the chosen model (a call's own `stop` wins)."""
    streaming: bool = False
    """Use the streaming path of the chosen model for `invoke` too (tokens reach callbacks as they arrive)."""
    tiktoken_encoding: str = "cl100k_base"
    """The tiktoken encoding used by `get_num_tokens` (offline)."""
    fallback: Any = None
    """Off (None, the default; also False or "none"): a failing model's error reaches the caller unchanged.
    "other": a call whose chosen model raised (an error of `fallback_on`) is sent to the other model, before
    the first streamed chunk only. A list of sides or model names: those, in order."""
    fallback_on: Any = (Exception,)
    """The errors that send a call to the other model (an exception class or a tuple of them); cancellation,
    KeyboardInterrupt and SystemExit never do."""
    strong_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Call arguments for every call the strong model answers (under the call's own arguments)."""
    weak_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Call arguments for every call the weak model answers (under the call's own arguments)."""
    model_kwargs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Call arguments per routed model, by routing key or model name: `{"gpt-4o": {"seed": 7}, "claude":
    {"top_k": 40}}` (`strong_kwargs`/`weak_kwargs` generalised; in the two-model form its keys are "strong"/"weak")."""
    unsupported_call_args: Literal["drop", "raise"] = "drop"
    """A call argument that only some routed models understand: "drop" (default) sends it to those and leaves it
    out for the others; "raise" raises `UnsupportedCallArgumentError` on every call that passes it, whatever the
    route. An argument no routed model understands always raises it."""

    _names: dict[str, str] = PrivateAttr(default_factory=dict)
    _policy: RoutingPolicy = PrivateAttr()
    _sides: dict[str, SideModels] = PrivateAttr(default_factory=dict)
    _side_kwargs: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)
    _fallback: tuple[str, ...] | None = PrivateAttr(default=None)
    _fallback_on: tuple[type[BaseException], ...] = PrivateAttr(default=(Exception,))

    # ------------------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the routed model (see the class doc); a model the router does not know raises
        `routing_core.errors.UnknownModelError` itself (a `ValueError` naming the known models), not pydantic's
        wrapper around it."""
        try:
            super().__init__(*args, **kwargs)
        except ValidationError as e:
            causes = [err.get("ctx", {}).get("error") for err in e.errors()]
            if len(causes) == 1 and isinstance(causes[0], UnknownModelError):
                raise causes[0] from None
            raise

    @model_validator(mode="before")
    @classmethod
    def _load_router(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        multi = data.get("models") is not None
        allowed = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = sorted(k for k in data if k not in allowed)
        if unknown:
            client = [k for k in unknown if k in _CLIENT_ARGS]
            hint = (
                (
                    "client settings such as timeouts, retries and API keys belong to the routed models"
                    if multi
                    else "client settings such as timeouts, retries and API keys belong to the strong and weak models"
                )
                if client
                else "see RoutedChatModel's fields"
            )
            warnings.warn(
                f"RoutedChatModel ignores unknown argument(s) {', '.join(unknown)}: {hint}",
                UserWarning,
                stacklevel=4,
            )
            for k in unknown:
                data.pop(k)
        spec = data.get("router")
        if spec is None:
            spec = DEFAULT_MULTI_ROUTER if multi else DEFAULT_ROUTER
        if not isinstance(spec, Router | str | Path):
            raise TypeError(
                f"router must be a router name, a checkpoint folder or a routing_core.Router, got "
                f"{type(spec).__name__}"
            )
        router_kwargs = data.get("router_kwargs") or {}
        data["router"] = load_router(spec, **router_kwargs) if router_kwargs else load_router(spec)
        return data

    @field_validator("strong", "weak", mode="before")
    @classmethod
    def _check_side(cls, value: Any, info: ValidationInfo) -> Any:
        return check_side_value(str(info.field_name), value)

    @field_validator("models", mode="before")
    @classmethod
    def _check_models(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list | tuple):  # keyed by model name
            keyed: dict[str, Any] = {}
            for i, item in enumerate(value):
                name = _model_name(SideModels.of(str(i), item, f"models[{i}]").primary)
                if name in keyed:
                    raise ValueError(
                        f"RoutedChatModel's models list has two models named {name!r}: pass a dict "
                        "{routing key: chat model} to give them distinct keys"
                    )
                keyed[name] = item
            value = keyed
        if not isinstance(value, Mapping):
            raise ValueError(
                "RoutedChatModel's models must be a dict {routing key: chat model} (or a list of chat models, "
                f"keyed by their model names), got {type(value).__name__}"
            )
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"RoutedChatModel's model keys must be non-empty strings, got {key!r}")
            out[key] = check_side_value(key, item, f"models[{key!r}]")
        if len(out) < 2:
            raise ValueError(
                f"RoutedChatModel needs at least two models to route among, got {len(out)}: "
                "models={'gpt-4o': ChatOpenAI(...), 'gpt-4o-mini': ChatOpenAI(...), ...}"
            )
        return out

    @field_validator("threshold", mode="before")
    @classmethod
    def _check_threshold(cls, value: Any) -> Any:
        return None if value is None else check_threshold(value)

    @field_validator("strong_fraction", mode="before")
    @classmethod
    def _check_strong_fraction(cls, value: Any) -> Any:
        return None if value is None else check_strong_fraction(value)

    def _check_form(self) -> dict[str, Any]:
        """Which form this is (strong=/weak= or models=), with a clear error for a mix; the models by side."""
        if self.models is not None:
            if self.strong is not None or self.weak is not None:
                raise ValueError(
                    "RoutedChatModel takes either models={key: chat model, ...} (N models, routed by predicted "
                    "quality and cost) or strong=/weak= (two models, routed by win rate and threshold), not both"
                )
            mixed = [k for k in _TWO_ONLY if getattr(self, k) not in (None, {})]
            if mixed:
                raise ValueError(
                    f"RoutedChatModel(models=...) does not take {', '.join(mixed)} (two-model options): choose the "
                    "model by lam=, margin=, target_cost= or target_quality=, and give per-model call arguments "
                    "with model_kwargs={key: {...}}"
                )
            return dict(self.models)
        if self.strong is None or self.weak is None:
            missing = " and ".join(s for s in SIDES if getattr(self, s) is None)
            raise ValueError(
                f"RoutedChatModel needs a strong and a weak chat model (missing: {missing}), or models={{key: chat "
                "model, ...}} to route among more than two"
            )
        mixed = [k for k in _MULTI_ONLY if getattr(self, k) not in (None, {})]
        if mixed:
            raise ValueError(
                f"RoutedChatModel(strong=..., weak=...) does not take {', '.join(mixed)}: those are options of "
                "the N-model form, models={key: chat model, ...}; two models are routed by threshold= or "
                "strong_fraction="
            )
        return {"strong": self.strong, "weak": self.weak}

    @model_validator(mode="after")
    def _resolve_threshold(self) -> Self:
        groups = self._check_form()
        multi = self.models is not None
        self._sides = {
            side: SideModels.of(side, value, f"models[{side!r}]" if multi else None)
            for side, value in groups.items()
        }
        self._names = {side: _model_name(group.primary) for side, group in self._sides.items()}
        if not multi:
            if self.no_text_model is None:
                self.no_text_model = "strong"
            if self.no_text_model not in SIDES:
                raise ValueError(f"no_text_model must be 'strong' or 'weak', got {self.no_text_model!r}")
            self._policy = TwoModelPolicy(
                self.router,
                self._names["strong"],
                self._names["weak"],
                threshold=self.threshold,
                strong_fraction=self.strong_fraction,
                no_text_side=self.no_text_model,
                owner="RoutedChatModel",
            )
            self.threshold = self._policy.threshold
        else:
            self._policy = CostAwarePolicy(
                self.router,
                self._names,
                lam=self.lam,
                margin=self.margin,
                target_cost=self.target_cost,
                target_quality=self.target_quality,
                model_map=self.model_map,
                costs=self.costs,
                prices=self.prices,
                expected_output_tokens=self.expected_output_tokens,
                no_text_side=self._key_of(self.no_text_model, "no_text_model"),
                owner="RoutedChatModel",
            )
            self.no_text_model = self._policy.no_text_side
        self._fallback = self._policy.fallback_sides(self.fallback)
        self._fallback_on = check_fallback_on(self.fallback_on)
        self._side_kwargs = self._resolve_side_kwargs()
        return self

    def _key_of(self, value: str | None, what: str) -> str | None:
        """A routing key from a key or a (unique) model name (None stays None)."""
        if value is None or value in self._names:
            return value
        keys = [k for k, n in self._names.items() if n == value]
        if len(keys) == 1:
            return keys[0]
        choices = ", ".join(repr(k) for k in self._names)
        raise ValueError(
            f"{what} must be one of the routed models ({choices}) or one model's name, got {value!r}"
        )

    def _resolve_side_kwargs(self) -> dict[str, dict[str, Any]]:
        """Per-side call arguments: `model_kwargs` by key (or model name), and `strong_kwargs`/`weak_kwargs`."""
        if not isinstance(self.model_kwargs, dict):
            raise ValueError(
                f"model_kwargs must be a dict {{model key: {{call arguments}}}}, got {self.model_kwargs!r}"
            )
        out: dict[str, dict[str, Any]] = {side: {} for side in self._sides}
        labels: dict[str, str] = {side: f"model_kwargs[{side!r}]" for side in self._sides}
        for key, given in self.model_kwargs.items():
            side = self._key_of(key, "model_kwargs keys")
            assert side is not None
            self._check_side_kwargs(side, given, f"model_kwargs[{key!r}]")
            out[side] = dict(given)
        if self.models is None:
            for side in SIDES:
                given = self.strong_kwargs if side == "strong" else self.weak_kwargs
                self._check_side_kwargs(side, given, f"{side}_kwargs")
                if given and out[side]:
                    raise ValueError(
                        f"the {side} model's call arguments are given twice ({side}_kwargs and "
                        f"{labels[side]}): pass them once"
                    )
                if given:
                    out[side] = dict(given)
        return out

    def _check_side_kwargs(self, side: str, given: Any, what: str) -> None:
        """Per-side call arguments must name arguments of (at least one of) that side's models."""
        if not isinstance(given, dict) or not all(isinstance(k, str) for k in given):
            raise ValueError(f"{what} must be a dict of call arguments, got {given!r}")
        reserved = sorted(k for k in given if k in _RESERVED_ARGS)
        if reserved:
            raise ValueError(
                f"{what} cannot set {', '.join(reserved)}: those are RoutedChatModel's own call options "
                "(tools via bind_tools, the side via routellm_model=, stop via stop=)"
            )
        group = self._sides[side]
        for key in given:
            if all(p is not None and key not in p for p in group.params):
                raise UnsupportedCallArgumentError(
                    f"{what} sets {key!r}, which {member_label(side, group.primary)} does not take as a "
                    f"call argument{_params_hint(key, group.members)}"
                )

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (routing_core.policy) making every decision of this model: a `TwoModelPolicy` for
        strong=/weak=, a `routing_core.cost_policy.CostAwarePolicy` for models=."""
        return self._policy

    @property
    def sides(self) -> tuple[str, ...]:
        """The routing keys: ("strong", "weak"), or the keys of `models=` in order."""
        return tuple(self._sides)

    def _primaries(self) -> list[BaseChatModel]:
        """The first chat model of every side (built from the fields when our validator has not run yet)."""
        if self._sides:
            return [group.primary for group in self._sides.values()]
        values = list(self.models.values()) if self.models else [self.strong, self.weak]
        return [SideModels.of("routed", v).primary for v in values]

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What every routed model supports: booleans and-ed, limits min-ed, other keys kept when equal."""
        profiles = [m.profile for m in self._primaries()]
        if not profiles or not all(profiles):
            return None
        merged: dict[str, Any] = {}
        keys = set(profiles[0].keys()).intersection(*(p.keys() for p in profiles[1:]))  # type: ignore[union-attr]
        for key in keys:
            values = [p[key] for p in profiles]  # type: ignore[index, literal-required]
            if all(isinstance(v, bool) for v in values):
                merged[key] = all(values)
            elif all(isinstance(v, int) for v in values):
                merged[key] = min(values)
            elif all(v == values[0] for v in values):
                merged[key] = values[0]
        return merged  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------------------
    # identity and tracing
    # ------------------------------------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "routellm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        if self.models is not None:
            return self._multi_identifying_params()
        params: dict[str, Any] = {}
        for side in SIDES:
            described = [{"_type": m._llm_type, **m._identifying_params} for m in self.side_models(side)]
            params[side] = described[0]
            if len(described) > 1:
                params[f"{side}_fallbacks"] = described[1:]
        params.update(
            router=self.router.describe(), threshold=self.threshold, no_text_model=self.no_text_model
        )
        if self._fallback:
            params["fallback"] = list(self._fallback)
        for side in SIDES:
            given = self._side_kwargs.get(side)
            if given:
                params[f"{side}_kwargs"] = dict(given)
        return params

    def _multi_identifying_params(self) -> dict[str, Any]:
        """N models: every model by key, the router, and the policy's knob (the λ in use, or the margin)."""
        models: dict[str, Any] = {}
        fallbacks: dict[str, Any] = {}
        for side in self.sides:
            described = [{"_type": m._llm_type, **m._identifying_params} for m in self.side_models(side)]
            models[side] = described[0]
            if len(described) > 1:
                fallbacks[side] = described[1:]
        policy = self._policy
        params: dict[str, Any] = {"models": models}
        if fallbacks:
            params["model_fallbacks"] = fallbacks
        params.update(
            router=self.router.describe(),
            policy={
                "lam": getattr(policy, "lam", None),
                "margin": getattr(policy, "margin", None),
                "target_cost": self.target_cost,
                "target_quality": self.target_quality,
                "model_map": dict(self.model_map),
                "costs": dict(getattr(policy, "fixed_costs", {})),
                "expected_output_tokens": self.expected_output_tokens,
            },
            no_text_model=self.no_text_model,
        )
        if self._fallback:
            params["fallback"] = list(self._fallback)
        given = {side: dict(kw) for side, kw in self._side_kwargs.items() if kw}
        if given:
            params["model_kwargs"] = given
        return params

    @property
    def model_names(self) -> dict[str, str]:
        """{"strong": name, "weak": name} (or {key: name} for models=): the names used in routing records,
        tracing and cost tables."""
        return dict(self._names)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The provider and model of the side that answers (known once routed), so tracing and cost tracking see
        the real model; before a decision exists, provider "routellm" and "<strong>|<weak>" (every routed model's
        name, joined by "|") as the model."""
        route = kwargs.get(ROUTE_KWARG)
        side: str | None = route.side if isinstance(route, Route) else None
        requested = kwargs.get(FORCE_KWARG, kwargs.get("model"))
        if side is None and isinstance(requested, str):
            side = self._match_side(requested)
        stop = stop if stop is not None else self.stop
        if side is not None:
            inner_kwargs = {
                k: v
                for k, v in kwargs.items()
                if k not in (ROUTE_KWARG, STRUCTURED_KWARG, FORCE_KWARG, "model", "tools")
            }
            params = self._model(side)._get_ls_params(stop=stop, **inner_kwargs)
        else:
            params = LangSmithParams(
                ls_provider="routellm",
                ls_model_name=requested
                if isinstance(requested, str) and requested not in ("auto",)
                else "|".join(self._names[s] for s in self._sides),
                ls_model_type="chat",
            )
            if stop:
                params["ls_stop"] = stop
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, int | float) and not isinstance(temperature, bool):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            params["ls_max_tokens"] = max_tokens
        return params

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        kwargs.pop(ROUTE_KWARG, None)
        tools = kwargs.get("tools")
        if isinstance(tools, ToolSet):
            kwargs["tools"] = tools.openai_tools()
            if tools.tool_choice is not None:
                kwargs["tool_choice"] = tools.tool_choice
            kwargs.update(tools.extra)
        spec = kwargs.pop(STRUCTURED_KWARG, None)
        if isinstance(spec, StructuredSpec):
            kwargs["structured_output_method"] = spec.method
        return super()._get_invocation_params(stop=stop if stop is not None else self.stop, **kwargs)

    # ------------------------------------------------------------------------------------------------------
    # routing
    # ------------------------------------------------------------------------------------------------------

    def _model(self, side: str) -> BaseChatModel:
        """The side's chat model (its first one, when it was given with fallbacks)."""
        group = self._sides.get(side)
        if group is None:  # langchain-core's own validators run before ours (e.g. the model profile)
            value = self.models[side] if self.models is not None else getattr(self, side)
            group = SideModels.of(side, value)
        return group.primary

    def side_models(self, side: str) -> tuple[BaseChatModel, ...]:
        """The chat models of a side in the order a call tries them (one, unless given with fallbacks)."""
        return self._sides[side].members

    def call_params(self, side: str) -> frozenset[str] | None:
        """The call arguments the side's (first) model understands; None when that is not known (all are passed).
        See `langchain_routellm._params` for how it is decided."""
        return self._sides[side].params[0]

    def _match_side(self, requested: str) -> str | None:
        try:
            return self._policy.forced_side(requested)
        except ValueError:
            return None

    def _text(self, messages: Sequence[BaseMessage]) -> tuple[str, str]:
        if self.routing_text is None:
            return routing_text_and_source(messages)
        text = self.routing_text(messages)
        if not isinstance(text, str):
            raise TypeError(f"routing_text must return a str, got {type(text).__name__}")
        return text, "routing_text"

    def _text_fn(self, messages: Sequence[BaseMessage]) -> Callable[[], tuple[str | None, str]]:
        if not messages:
            raise ValueError(
                "RoutedChatModel received an empty message list: there is nothing to route or answer"
            )
        return lambda: self._text(messages)

    def route(self, messages: Sequence[BaseMessage], *, model: str | None = None) -> Route:
        """Decide without calling a model (what `invoke` would do). Errors are returned in `Route.error`."""
        try:
            return Route.of(self._policy.decide_lazy(self._text_fn(messages), forced=model))
        except Exception as e:  # raised later, inside the chat-model run, so callbacks see it
            return Route(None, error=e)

    async def aroute(self, messages: Sequence[BaseMessage], *, model: str | None = None) -> Route:
        """Async `route`: the router runs in a worker thread so the event loop is never blocked."""
        try:
            return Route.of(await self._policy.adecide_lazy(self._text_fn(messages), forced=model))
        except Exception as e:
            return Route(None, error=e)

    def _take_route(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Route:
        route = kwargs.pop(ROUTE_KWARG, None)
        requested = pop_forced(kwargs)
        return route if isinstance(route, Route) else self.route(messages, model=requested)

    async def _atake_route(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Route:
        route = kwargs.pop(ROUTE_KWARG, None)
        requested = pop_forced(kwargs)
        return route if isinstance(route, Route) else await self.aroute(messages, model=requested)

    # ------------------------------------------------------------------------------------------------------
    # public entry points: decide before the run starts, so tracing names the model that answers
    # ------------------------------------------------------------------------------------------------------

    def generate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Callbacks = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: Any = None,
        **kwargs: Any,
    ) -> LLMResult:
        if len(messages) == 1 and ROUTE_KWARG not in kwargs:
            run_id = run_id or _new_run_id()
            route = self.route(messages[0], model=pop_forced(kwargs))
            self._carry(route, EventTarget(run_id, callbacks, tags, metadata), kwargs)
        return super().generate(
            messages,
            stop,
            callbacks,
            tags=tags,
            metadata=metadata,
            run_name=run_name,
            run_id=run_id,
            **kwargs,
        )

    async def agenerate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Callbacks = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: Any = None,
        **kwargs: Any,
    ) -> LLMResult:
        if len(messages) == 1 and ROUTE_KWARG not in kwargs:
            run_id = run_id or _new_run_id()
            route = await self.aroute(messages[0], model=pop_forced(kwargs))
            self._carry(route, EventTarget(run_id, callbacks, tags, metadata), kwargs)
        return await super().agenerate(
            messages,
            stop,
            callbacks,
            tags=tags,
            metadata=metadata,
            run_name=run_name,
            run_id=run_id,
            **kwargs,
        )

    @staticmethod
    def _carry(route: Route, target: EventTarget, kwargs: dict[str, Any]) -> None:
        """Hand a decision made before the run starts to `_generate`/`_stream`, with where its event goes."""
        route.target = target
        kwargs[ROUTE_KWARG] = route

    def _stream_config(self, config: RunnableConfig | None) -> tuple[RunnableConfig, EventTarget]:
        config = ensure_config(config)
        run_id = config.get("run_id") or _new_run_id()
        config["run_id"] = run_id
        return config, EventTarget(
            run_id, config.get("callbacks"), config.get("tags"), config.get("metadata")
        )

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        # langchain-core's stream() calls _stream without the run manager: fix the run id up front and hand the
        # caller's callbacks to _stream, so the routing event still belongs to this run.
        if ROUTE_KWARG not in kwargs:
            config, target = self._stream_config(config)
            input = self._convert_input(input)  # once: langchain-core takes a PromptValue as it is
            route = self.route(input.to_messages(), model=pop_forced(kwargs))
            self._carry(route, target, kwargs)
        yield from super().stream(input, config, stop=stop, **kwargs)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        if ROUTE_KWARG not in kwargs:
            config, target = self._stream_config(config)
            input = self._convert_input(input)
            route = await self.aroute(input.to_messages(), model=pop_forced(kwargs))
            self._carry(route, target, kwargs)
        async for chunk in super().astream(input, config, stop=stop, **kwargs):
            yield chunk

    def _chat_model_stream_v3(  # type: ignore[override]
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        # stream_events(version="v3") hands the run manager to _stream; only the decision is made up front.
        if ROUTE_KWARG not in kwargs:
            input = self._convert_input(input)
            kwargs[ROUTE_KWARG] = self.route(input.to_messages(), model=pop_forced(kwargs))
        return super()._chat_model_stream_v3(input, config, stop=stop, **kwargs)

    async def _achat_model_stream_v3(  # type: ignore[override]
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        if ROUTE_KWARG not in kwargs:
            input = self._convert_input(input)
            kwargs[ROUTE_KWARG] = await self.aroute(input.to_messages(), model=pop_forced(kwargs))
        return await super()._achat_model_stream_v3(input, config, stop=stop, **kwargs)

    # ------------------------------------------------------------------------------------------------------
    # generation: one chat-model run; the chosen model's own methods run inside it
    # ------------------------------------------------------------------------------------------------------

    def _call_args(self, kwargs: dict[str, Any]) -> _CallArgs:
        """Split one call's kwargs into the caller's arguments and the neutral tool/structured-output bindings,
        and check the arguments against every routed model (the same outcome on every route)."""
        args = dict(kwargs)
        tools = args.pop("tools", None)
        if tools is not None and not isinstance(tools, ToolSet):
            tools = ToolSet(tools, args.pop("tool_choice", None))
        spec = args.pop(STRUCTURED_KWARG, None)
        for key in args:
            self._check_call_arg(key)
        return _CallArgs(args, tools, spec if isinstance(spec, StructuredSpec) else None)

    def _check_call_arg(self, key: str) -> None:
        lacking: list[str] = []
        takes = False
        for side in self._sides:
            group = self._sides[side]
            for i, (model, params) in enumerate(zip(group.members, group.params, strict=True)):
                if params is None or key in params:
                    takes = True
                else:
                    lacking.append(member_label(side, model, i))
        if not takes:
            every = [m for side in self._sides for m in self.side_models(side)]
            raise UnsupportedCallArgumentError(
                f"call argument {key!r} is not understood by any routed model ({'; '.join(lacking)}): check its "
                f"spelling, or set it on the inner model{_params_hint(key, every)}"
            )
        if lacking and self.unsupported_call_args == "raise":
            how = (
                "pass it to one side only with strong_kwargs=/weak_kwargs="
                if self.models is None
                else "pass it to some models only with model_kwargs={key: {...}}"
            )
            raise UnsupportedCallArgumentError(
                f"call argument {key!r} is not understood by {' and '.join(lacking)} "
                f"(unsupported_call_args='raise'); {how}, or set unsupported_call_args='drop' to send it only to "
                "the models that take it"
            )

    def _member_kwargs(self, side: str, index: int, model: BaseChatModel, call: _CallArgs) -> dict[str, Any]:
        """The kwargs one model gets: the router's defaults, then the side's own (`strong_kwargs`/`weak_kwargs`,
        `model_kwargs[key]`), then the call's own, less
        what the model does not understand; then the tools/structured-output bindings in its own dialect."""
        args: dict[str, Any] = {}
        if self.temperature is not None:
            args["temperature"] = self.temperature
        if self.max_tokens is not None:
            args["max_tokens"] = self.max_tokens
        args.update(self._side_kwargs.get(side, {}))
        args.update(call.args)
        params = self._sides[side].params[index]
        if params is not None:
            dropped = [k for k in args if k not in params]
            if dropped:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "not sent to %s (not its call arguments): %s",
                        member_label(side, model, index),
                        ", ".join(dropped),
                    )
                args = {k: v for k, v in args.items() if k in params}
        if call.tools is not None:
            args = {**call.tools.kwargs_for(side, model, index), **args}
        if call.spec is not None:
            args = {**call.spec.kwargs[side], **args}
        return args

    @staticmethod
    def _with_route(generation: _G, route: Route) -> _G:
        """A copy of a generation (or chunk) whose message carries the routing record."""
        return generation.model_copy(
            update={"message": with_route_metadata(generation.message, route.payload)}
        )

    @classmethod
    def _annotate(cls, result: ChatResult, route: Route) -> ChatResult:
        generations = [cls._with_route(g, route) for g in result.generations]
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def _attempts(self, route: Route) -> Attempts:
        return Attempts(route, self._policy, self._sides, self._fallback, self._fallback_on)

    def _start(
        self, messages: list[BaseMessage], kwargs: dict[str, Any], stop: list[str] | None
    ) -> tuple[Route, _CallArgs, list[str] | None]:
        route = self._take_route(messages, kwargs)
        route.raise_if_failed()
        return route, self._call_args(kwargs), stop if stop is not None else self.stop

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route, call, stop = self._start(messages, kwargs, stop)
        dispatch_route_event(self, route, run_manager)
        attempts = self._attempts(route)
        while True:
            try:
                return self._generate_once(attempts, messages, stop, run_manager, call)
            except Exception as e:
                if not attempts.fail(e):
                    break
            if attempts.switched:
                dispatch_route_event(self, attempts.current, run_manager)
        raise attempts.error()

    def _generate_once(
        self,
        attempts: Attempts,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        call: _CallArgs,
    ) -> ChatResult:
        model, side, index = attempts.model, attempts.side, attempts.index
        call_kwargs = self._member_kwargs(side, index, model, call)
        if model.rate_limiter:
            model.rate_limiter.acquire(blocking=True)
        result = model._generate(
            messages, stop=stop, **run_manager_kwargs(model, "_generate", run_manager), **call_kwargs
        )
        return self._annotate(result, attempts.current)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route = await self._atake_route(messages, kwargs)
        route.raise_if_failed()
        call, stop = self._call_args(kwargs), stop if stop is not None else self.stop
        await adispatch_route_event(self, route, run_manager)
        attempts = self._attempts(route)
        while True:
            try:
                return await self._agenerate_once(attempts, messages, stop, run_manager, call)
            except Exception as e:
                if not attempts.fail(e):
                    break
            if attempts.switched:
                await adispatch_route_event(self, attempts.current, run_manager)
        raise attempts.error()

    async def _agenerate_once(
        self,
        attempts: Attempts,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        call: _CallArgs,
    ) -> ChatResult:
        model, side, index = attempts.model, attempts.side, attempts.index
        call_kwargs = self._member_kwargs(side, index, model, call)
        if model.rate_limiter:
            await model.rate_limiter.aacquire(blocking=True)
        result = await model._agenerate(
            messages, stop=stop, **run_manager_kwargs(model, "_agenerate", run_manager), **call_kwargs
        )
        return self._annotate(result, attempts.current)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        route, call, stop = self._start(messages, kwargs, stop)
        dispatch_route_event(self, route, run_manager)
        attempts = self._attempts(route)
        while True:
            chunks = self._stream_once(attempts, messages, stop, run_manager, call)
            try:
                first = next(chunks)  # a model that fails before its first chunk may be replaced
            except StopIteration:
                return
            except Exception as e:
                if not attempts.fail(e):
                    break
                if attempts.switched:
                    dispatch_route_event(self, attempts.current, run_manager)
                continue
            yield first
            yield from chunks  # after the first chunk, an error reaches the caller
            return
        raise attempts.error()

    def _stream_once(
        self,
        attempts: Attempts,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        call: _CallArgs,
    ) -> Iterator[ChatGenerationChunk]:
        model, side, index, route = attempts.model, attempts.side, attempts.index, attempts.current
        call_kwargs = self._member_kwargs(side, index, model, call)
        if model.rate_limiter:
            model.rate_limiter.acquire(blocking=True)
        # The run manager is passed on exactly as received: langchain-core reports tokens itself when it calls
        # _stream without one, and providers report them when they get one, so each token is reported once.
        if not can_stream(model, async_api=False, kwargs=call_kwargs):
            result = model._generate(
                messages, stop=stop, **run_manager_kwargs(model, "_generate", run_manager), **call_kwargs
            )
            chunk = result_to_chunk(self._annotate(result, route))
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            return
        first = True  # only the first chunk carries the record, so merged chunks have it once
        for chunk in model._stream(
            messages, stop=stop, **run_manager_kwargs(model, "_stream", run_manager), **call_kwargs
        ):
            yield self._with_route(chunk, route) if first else chunk
            first = False

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        route = await self._atake_route(messages, kwargs)
        route.raise_if_failed()
        call, stop = self._call_args(kwargs), stop if stop is not None else self.stop
        await adispatch_route_event(self, route, run_manager)
        attempts = self._attempts(route)
        while True:
            chunks = self._astream_once(attempts, messages, stop, run_manager, call)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                return
            except Exception as e:
                await chunks.aclose()
                if not attempts.fail(e):
                    break
                if attempts.switched:
                    await adispatch_route_event(self, attempts.current, run_manager)
                continue
            yield first
            async for chunk in chunks:
                yield chunk
            return
        raise attempts.error()

    async def _astream_once(
        self,
        attempts: Attempts,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        call: _CallArgs,
    ) -> AsyncGenerator[ChatGenerationChunk, None]:
        model, side, index, route = attempts.model, attempts.side, attempts.index, attempts.current
        call_kwargs = self._member_kwargs(side, index, model, call)
        if model.rate_limiter:
            await model.rate_limiter.aacquire(blocking=True)
        if not can_stream(model, async_api=True, kwargs=call_kwargs):
            result = await model._agenerate(
                messages, stop=stop, **run_manager_kwargs(model, "_agenerate", run_manager), **call_kwargs
            )
            chunk = result_to_chunk(self._annotate(result, route))
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            return
        first = True  # only the first chunk carries the record, so merged chunks have it once
        async for chunk in model._astream(
            messages, stop=stop, **run_manager_kwargs(model, "_astream", run_manager), **call_kwargs
        ):
            yield self._with_route(chunk, route) if first else chunk
            first = False

    # ------------------------------------------------------------------------------------------------------
    # tools and structured output
    # ------------------------------------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; they are translated by the chosen model's own `bind_tools` at call time.

        Args:
            tools: Tools in any form LangChain accepts (BaseTool, function, pydantic class, TypedDict, OpenAI or
                provider-specific dict). Kept as given; each side converts them once, with its own `bind_tools`.
            tool_choice: Passed to each side's `bind_tools` ("auto", "any", "none", a tool name, ...), which maps
                it to its provider's dialect.
            **kwargs: Further `bind_tools` options (e.g. `parallel_tool_calls`, `strict`) for both sides.

        Raises:
            NotImplementedError: If either model does not support tool calling.
        """
        ls_format = kwargs.pop("ls_structured_output_format", None)
        toolset = ToolSet(tools, tool_choice, kwargs)
        for side in self._sides:  # fail now, not at the first call, and convert once per model
            for index, member in enumerate(self.side_models(side)):
                toolset.kwargs_for(side, member, index)
        toolset.openai_tools()
        bound: dict[str, Any] = {"tools": toolset}
        if ls_format is not None:
            bound["ls_structured_output_format"] = ls_format
        return self.bind(**bound)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output from whichever model answers.

        Args:
            schema: A pydantic class, TypedDict, JSON schema or OpenAI tool schema.
            include_raw: Return `{"raw", "parsed", "parsing_error"}` instead of the parsed value.
            method: "function_calling" (default): a forced tool call, portable across providers.
                "json_schema" / "json_mode": each side's own implementation of that method (both models must
                support it); the answer is parsed by the parser of the side that produced it.
            strict: Passed on to the models when not None.
        """
        if kwargs:
            raise ValueError(f"Received unsupported arguments {kwargs}")
        options = {} if strict is None else {"strict": strict}
        ls_format = {"kwargs": {"method": method, **options}, "schema": schema}
        parser: Runnable
        if method == "function_calling":
            llm = self.bind_tools(
                [schema], tool_choice="any", ls_structured_output_format=ls_format, **options
            )
            if isinstance(schema, type) and is_basemodel_subclass(schema):
                parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
            else:
                key_name = convert_to_openai_tool(schema)["function"]["name"]
                parser = JsonOutputKeyToolsParser(key_name=key_name, first_tool_only=True)
        elif method in ("json_schema", "json_mode"):
            spec = StructuredSpec(schema, method, {s: self.side_models(s) for s in self._sides}, options)
            llm = self.bind(**{STRUCTURED_KWARG: spec, "ls_structured_output_format": ls_format})
            parser = RunnableLambda(spec.parse, afunc=spec.aparse, name="RoutedStructuredOutputParser")
        else:
            raise ValueError(
                f"unknown method {method!r}: use 'function_calling' (portable), 'json_schema' or 'json_mode'"
            )
        if include_raw:
            parser_assign = RunnablePassthrough.assign(
                parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
            )
            parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
            parser_with_fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
            return RunnableMap(raw=llm) | parser_with_fallback
        return llm | parser

    # ------------------------------------------------------------------------------------------------------
    # tokens
    # ------------------------------------------------------------------------------------------------------

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids with tiktoken (`tiktoken_encoding`), offline."""
        return list(get_encoding(self.tiktoken_encoding).encode(text, disallowed_special=()))

    def get_num_tokens(self, text: str) -> int:
        """Number of tokens with tiktoken (`tiktoken_encoding`), offline."""
        return count_tokens(text, self.tiktoken_encoding)


def _model_name(model: BaseChatModel) -> str:
    """A model's name for records and tracing: its ls_model_name, else model/model_name, else its type."""
    try:
        name = model._get_ls_params().get("ls_model_name")
    except Exception:  # a provider bug here must not break construction
        name = None
    if not isinstance(name, str) or not name:
        for attr in ("model_name", "model", "model_id"):
            value = getattr(model, attr, None)
            if isinstance(value, str) and value:
                name = value
                break
        else:
            name = model._llm_type
    return name


__all__ = ["METADATA_KEY", "ROUTE_EVENT", "RoutedChatModel"]
