"""Private helpers of the LangChain wrapper: routing text, per-call route records, tool sets, event targets."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
    Callbacks,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableBinding
from langchain_core.utils.function_calling import convert_to_openai_tool

from routing_core.policy import Decision, Side, pick_routing_text

SIDES: tuple[Side, Side] = ("strong", "weak")

#: Name of the custom callback event sent once per routed call (see `RoutedChatModel`).
ROUTE_EVENT = "routellm_route"
#: Key of the routing record in `AIMessage.response_metadata`.
METADATA_KEY = "routellm"
#: Private call keyword carrying a routing decision made before the chat-model run starts.
ROUTE_KWARG = "_routellm_route"
#: Call keyword forcing the side of one call (same name as in the LlamaIndex wrapper); `model=` also works.
FORCE_KWARG = "routellm_model"


def pop_forced(kwargs: dict[str, Any]) -> Any:
    """Pop the forced-side call keyword: `routellm_model=` (both wrappers), else `model=` (this wrapper's first
    name for it, kept working)."""
    forced = kwargs.pop(FORCE_KWARG, None)
    legacy = kwargs.pop("model", None)
    return forced if forced is not None else legacy


# --------------------------------------------------------------------------------------------------------------
# Routing text
# --------------------------------------------------------------------------------------------------------------


def message_text(message: BaseMessage) -> str:
    """The text of one message: a string content as is, else its plain-string items and `text` blocks joined by
    newlines. Images, audio, files, tool results and reasoning blocks carry no routing text."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(p for p in parts if p)


def is_user_message(message: BaseMessage) -> bool:
    """A human turn: `HumanMessage` (and its chunk) or a `ChatMessage` with role "user"."""
    return message.type == "human" or (isinstance(message, ChatMessage) and message.role == "user")


def routing_text_and_source(messages: Sequence[BaseMessage]) -> tuple[str, str]:
    """The routing text of a conversation and where it came from, by the policy's rule
    (`routing_core.policy.pick_routing_text`): the last human message with text, else an earlier one."""
    return pick_routing_text((is_user_message(m), message_text(m)) for m in messages)


def default_routing_text(messages: Sequence[BaseMessage]) -> str:
    """The text the router sees by default: the last human message that has any text.

    Only text is used (string content, or the `text` blocks of list content). When the last human message has no
    text at all (e.g. only an image), the previous human message with text is used, and so on. Without any human
    text (only system/AI/tool messages, or images only) the result is the empty string, which `RoutedChatModel`
    sends to its `no_text_model` side without consulting the router.
    """
    return routing_text_and_source(messages)[0]


# --------------------------------------------------------------------------------------------------------------
# Per-call route record
# --------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class EventTarget:
    """Where to send the routing event when the chat-model run manager is not handed to `_stream`/`_astream`.

    langchain-core's `stream()`/`astream()` (and the streaming branch of `invoke()`) call `_stream` without the
    run manager. The wrapper fixes the run id before the run starts and keeps the caller's callbacks, so the
    event is still attributed to the chat-model run and reaches the same handlers.
    """

    run_id: UUID
    callbacks: Callbacks = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None

    def _configure_args(self, model: BaseChatModel) -> tuple[Any, ...]:
        """`(Async)CallbackManager.configure` arguments: this call's callbacks, tags and metadata, then the model's."""
        return (
            self.callbacks,
            model.callbacks,
            model.verbose,
            self.tags,
            model.tags,
            self.metadata,
            model.metadata,
        )

    def dispatch(self, model: BaseChatModel, name: str, data: dict[str, Any]) -> None:
        manager = CallbackManager.configure(*self._configure_args(model))
        manager.on_custom_event(name, data, run_id=self.run_id)

    async def adispatch(self, model: BaseChatModel, name: str, data: dict[str, Any]) -> None:
        manager = AsyncCallbackManager.configure(*self._configure_args(model))
        await manager.on_custom_event(name, data, run_id=self.run_id)


@dataclass(slots=True)
class Route:
    """One routing decision (or the error that prevented it), made once per call and carried through the run."""

    side: str | None
    """"strong"/"weak" for two models, the chosen model's routing key for more (None when routing failed)."""
    payload: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    target: EventTarget | None = None
    decision: Decision | None = None

    @classmethod
    def of(cls, decision: Decision) -> Route:
        """The route of a policy decision (its payload computed once, shared by the event and the metadata)."""
        return cls(decision.side, decision.payload(), decision=decision)

    def __repr__(self) -> str:
        # Stable and run-independent: langchain-core puts call kwargs into the LLM cache key.
        return f"Route({self.side or 'error'})"

    def raise_if_failed(self) -> str:
        if self.error is not None:
            raise self.error
        assert self.side is not None
        return self.side


def _run_manager_args(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun,
) -> dict[str, Any]:
    """The handlers, tags and metadata of a chat-model run, as `(Async)CallbackManager` arguments."""
    return {
        "handlers": run_manager.handlers,
        "inheritable_handlers": run_manager.inheritable_handlers,
        "parent_run_id": run_manager.parent_run_id,
        "tags": run_manager.tags,
        "inheritable_tags": run_manager.inheritable_tags,
        "metadata": run_manager.metadata,
        "inheritable_metadata": run_manager.inheritable_metadata,
    }


def dispatch_route_event(
    model: BaseChatModel, route: Route, run_manager: CallbackManagerForLLMRun | None
) -> None:
    """Send the `routellm_route` event to every handler of the chat-model run."""
    data = dict(route.payload)
    if run_manager is not None:
        if run_manager.handlers:
            CallbackManager(**_run_manager_args(run_manager)).on_custom_event(
                ROUTE_EVENT, data, run_id=run_manager.run_id
            )
    elif route.target is not None:
        route.target.dispatch(model, ROUTE_EVENT, data)


async def adispatch_route_event(
    model: BaseChatModel, route: Route, run_manager: AsyncCallbackManagerForLLMRun | None
) -> None:
    """Async counterpart of `dispatch_route_event`."""
    data = dict(route.payload)
    if run_manager is not None:
        if run_manager.handlers:
            await AsyncCallbackManager(**_run_manager_args(run_manager)).on_custom_event(
                ROUTE_EVENT, data, run_id=run_manager.run_id
            )
    elif route.target is not None:
        await route.target.adispatch(model, ROUTE_EVENT, data)


# --------------------------------------------------------------------------------------------------------------
# Tools, bound once in a neutral form and translated per provider on first use
# --------------------------------------------------------------------------------------------------------------


def _binding_kwargs(bound: Any, model: BaseChatModel, side: str, what: str) -> dict[str, Any]:
    """The call kwargs a provider's `bind_tools` produced (e.g. OpenAI- or Anthropic-format `tools`)."""
    if isinstance(bound, RunnableBinding) and bound.bound is model:
        return dict(bound.kwargs)
    raise TypeError(
        f"{side} model {type(model).__name__}.{what} returned {type(bound).__name__}, not a binding of the model "
        "itself; RoutedChatModel can only forward tools to models whose bind_tools returns model.bind(...)"
    )


class ToolSet:
    """Tools bound on the router: the caller's original tool objects, converted for each side's provider lazily
    (with that provider's own `bind_tools`) and cached, so a binding costs the conversion once, not per call."""

    __slots__ = ("_cache", "_openai", "extra", "tool_choice", "tools")

    def __init__(
        self, tools: Sequence[Any], tool_choice: Any = None, extra: dict[str, Any] | None = None
    ) -> None:
        self.tools = list(tools)
        self.tool_choice = tool_choice
        self.extra = dict(extra or {})
        self._cache: dict[tuple[str, int], tuple[BaseChatModel, dict[str, Any]]] = {}
        self._openai: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.tools)

    def kwargs_for(self, side: str, model: BaseChatModel, index: int = 0) -> dict[str, Any]:
        """Provider-native call kwargs for `model` (the result of its own `bind_tools`); `index` is the model's
        place among its side's models (a side given with fallbacks has several)."""
        hit = self._cache.get((side, index))
        if hit is not None and hit[0] is model:
            return hit[1]
        options = dict(self.extra)
        if self.tool_choice is not None:
            options["tool_choice"] = self.tool_choice
        try:
            bound = model.bind_tools(self.tools, **options)
        except NotImplementedError as e:
            every = "both routed models" if side in SIDES else "every routed model"
            raise NotImplementedError(
                f"the {side} model {type(model).__name__} does not support tool calling (bind_tools is not "
                f"implemented); {every} must support tools to bind them on RoutedChatModel"
            ) from e
        kwargs = _binding_kwargs(bound, model, side, "bind_tools")
        self._cache[(side, index)] = (model, kwargs)
        return kwargs

    def openai_tools(self) -> list[dict[str, Any]]:
        """A JSON form of the tools for tracing and cache keys (computed once)."""
        if self._openai is None:
            self._openai = [convert_to_openai_tool(t) for t in self.tools]
        return self._openai

    def __repr__(self) -> str:
        # Stable across processes (no object addresses): used in LLM cache keys.
        return json.dumps(
            {"tools": self.openai_tools(), "tool_choice": self.tool_choice}, sort_keys=True, default=str
        )


# --------------------------------------------------------------------------------------------------------------
# Inner-model plumbing
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _accepts_run_manager(cls: type, method: str) -> bool:
    try:
        return "run_manager" in inspect.signature(getattr(cls, method)).parameters
    except (TypeError, ValueError):
        return True


def run_manager_kwargs(model: BaseChatModel, method: str, run_manager: Any) -> dict[str, Any]:
    """`{"run_manager": rm}` when the inner model's method takes one (as langchain-core checks for `_generate`)."""
    if run_manager is None or not _accepts_run_manager(type(model), method):
        return {}
    return {"run_manager": run_manager}


def can_stream(model: BaseChatModel, *, async_api: bool, kwargs: dict[str, Any]) -> bool:
    """Whether the inner model implements streaming and has not disabled it for this call."""
    cls = type(model)
    has_sync = cls._stream is not BaseChatModel._stream
    has_async = cls._astream is not BaseChatModel._astream
    if not (has_sync or (async_api and has_async)):
        return False
    disabled = model.disable_streaming
    if disabled is True or (disabled == "tool_calling" and kwargs.get("tools")):
        return False
    return True


def message_to_chunk(message: BaseMessage) -> AIMessageChunk:
    """One final chunk carrying a whole message (used when the chosen model cannot stream)."""
    if isinstance(message, AIMessageChunk):
        return message
    tool_calls = message.tool_calls if isinstance(message, AIMessage) else []
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    return AIMessageChunk(
        content=message.content,
        additional_kwargs=dict(message.additional_kwargs),
        response_metadata=dict(message.response_metadata),
        usage_metadata=usage,
        id=message.id,
        name=message.name,
        tool_call_chunks=[
            tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"]), id=tc.get("id"), index=i)
            for i, tc in enumerate(tool_calls)
        ],
        chunk_position="last",
    )


def result_to_chunk(result: ChatResult) -> ChatGenerationChunk:
    generation = result.generations[0]
    message = generation.message
    if result.llm_output:
        message = message.model_copy(
            update={"response_metadata": {**result.llm_output, **message.response_metadata}}
        )
    return ChatGenerationChunk(message=message_to_chunk(message), generation_info=generation.generation_info)


def with_route_metadata(message: BaseMessage, payload: dict[str, Any]) -> BaseMessage:
    """A shallow copy of `message` whose response_metadata carries the routing record."""
    return message.model_copy(
        update={"response_metadata": {**message.response_metadata, METADATA_KEY: dict(payload)}}
    )


RoutingTextFn = Callable[[Sequence[BaseMessage]], str]
