"""RoutedLLM: a LlamaIndex LLM that sends each call to a strong or a weak LLM, as a RouteLLM router decides.

The LLM only; the decision is the core policy's (routing_core.policy), per-call bookkeeping is in `_calls.py`, text
extraction in `_text.py`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from llamaindex_routellm._calls import PAYLOAD_KEY, _Call
from llamaindex_routellm._text import (
    _check_messages,
    _message_text,
    _messages_text,
    _route_text_from_messages,
)
from llamaindex_routellm.events import RoutingDecision, Side
from routing_core import DEFAULT_ROUTER, Router, check_strong_fraction, load_router
from routing_core.policy import Decision, TwoModelPolicy, resolve_threshold

if TYPE_CHECKING:
    from llama_index.core.chat_engine.types import AgentChatResponse
    from llama_index.core.tools.types import BaseTool

dispatcher = instrument.get_dispatcher(__name__)
logger = logging.getLogger(__name__)

#: Keyword argument that forces the side of one call: `llm.chat(messages, routellm_model="strong")`.
FORCE_KWARG = "routellm_model"
#: Internal keyword argument carrying a decision made ahead of the call (predict, tools, structured output).
DECISION_KWARG = "routellm_decision"

_SIDES: tuple[Side, Side] = ("strong", "weak")


class _Pin:
    """A decision made by `predict_and_call` for the single LLM call it makes next (consumed once)."""

    __slots__ = ("owner", "decision", "used")

    def __init__(self, owner: RoutedLLM, decision: RoutingDecision) -> None:
        self.owner = owner
        self.decision = decision
        self.used = False


_PIN: ContextVar[_Pin | None] = ContextVar("routellm_pin", default=None)


def _check_side(value: Any) -> Side:
    if value not in _SIDES:
        raise ValueError(f"{FORCE_KWARG} must be 'strong' or 'weak', got {value!r}")
    return value


def _min_known(a: int, b: int, default: int) -> int:
    """The smaller of two sizes, treating non-positive values as unknown."""
    known = [v for v in (a, b) if v is not None and v > 0]
    return min(known) if known else default


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
      `chat_history`. Every step of an agent run therefore goes to the same model, and tool formats,
      `get_tool_calls_from_response` and response validation are delegated to the model that answered.
    * A message with no text (e.g. only an image) goes to `no_text_side` (strong by default).

    Pass `routellm_model="strong"` or `"weak"` to any call to bypass the router for that call.

    The wrapper is a transparent proxy: it emits no LLM events of its own, so each call yields exactly one
    set of LLM events (from the model that answered; `TokenCountingHandler` counts it once), plus one
    `RoutingDecisionEvent` and one `RoutedCallEndEvent` (see `llamaindex_routellm.events`). Responses carry
    the decision under `response.additional_kwargs["routellm"]`. Errors of the chosen model propagate
    unchanged; there is no silent fallback to the other model.

    Setting `callback_manager` on the wrapper (as `Settings`, query engines and response synthesizers do)
    also sets it on both inner models, since they are the ones that emit the LLM callback events.

    Args:
        strong (LLM): The strong (expensive, better) model.
        weak (LLM): The weak (cheap) model.
        router (Union[str, Router]): A router name (`routing_core.available_routers()`), a checkpoint
            folder, or a `routing_core.Router`. Defaults to `routing_core.DEFAULT_ROUTER`.
        threshold (Optional[float]): Win-rate threshold in [0, 1]. Exactly one of `threshold` and
            `strong_fraction` must be given.
        strong_fraction (Optional[float]): Target share of strong calls in [0, 1], turned into a threshold
            with `router.threshold_for_strong_fraction`.
        router_kwargs (Optional[dict]): Keyword arguments for `routing_core.load_router` (e.g. `seed`).
        route_template_vars (Sequence[str]): Template variables that hold the user's question in
            `predict`-style calls, tried in order. Default `("query_str",)`.
        no_text_side (str): Where calls with nothing to route on go: `"strong"` (default) or `"weak"`.
        callback_manager (Optional[CallbackManager]): Shared with both inner models when given.

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
        ```
    """

    strong: SerializeAsAny[LLM] = Field(description="The strong (expensive) LLM.")
    weak: SerializeAsAny[LLM] = Field(description="The weak (cheap) LLM.")
    router: str = Field(
        default=DEFAULT_ROUTER,
        description="Router name or checkpoint path (the router's `name` when a Router object was given).",
    )
    router_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments given to routing_core.load_router."
    )
    threshold: float = Field(description="Strong iff win_rate >= threshold.", ge=0.0, le=1.0)
    strong_fraction: float | None = Field(
        default=None, description="Target share of strong calls the threshold was derived from, if any."
    )
    route_template_vars: tuple[str, ...] = Field(
        default=("query_str",), description="Template variables holding the user's question in predict calls."
    )
    no_text_side: Side = Field(default="strong", description="Side for calls with no text to route on.")

    _router: Router = PrivateAttr()
    _policy_cache: tuple[tuple[str, str], TwoModelPolicy] | None = PrivateAttr(default=None)
    _ready: bool = PrivateAttr(default=False)

    def __init__(
        self,
        strong: LLM,
        weak: LLM,
        router: str | Path | Router = DEFAULT_ROUTER,
        threshold: float | None = None,
        strong_fraction: float | None = None,
        router_kwargs: dict[str, Any] | None = None,
        route_template_vars: Sequence[str] = ("query_str",),
        no_text_side: Side = "strong",
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        for side, llm in (("strong", strong), ("weak", weak)):
            if not isinstance(llm, LLM):
                raise TypeError(f"{side} must be a llama_index LLM, got {type(llm).__name__}")
        _check_side(no_text_side)
        if isinstance(route_template_vars, str):
            route_template_vars = (route_template_vars,)
        router_kwargs = dict(router_kwargs or {})
        router_obj = load_router(router, **router_kwargs)
        threshold = resolve_threshold(router_obj, threshold, strong_fraction, "RoutedLLM")
        if strong_fraction is not None:
            strong_fraction = check_strong_fraction(strong_fraction)
        router_name = str(router) if isinstance(router, str | Path) else router_obj.name
        super().__init__(
            strong=strong,
            weak=weak,
            router=router_name,
            router_kwargs=router_kwargs,
            threshold=threshold,
            strong_fraction=strong_fraction,
            route_template_vars=tuple(route_template_vars),
            no_text_side=no_text_side,
            callback_manager=callback_manager or CallbackManager([]),
            **kwargs,
        )
        self._router = router_obj
        if callback_manager is not None:
            self._share_callback_manager()
        self._ready = True

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "callback_manager" and getattr(self, "_ready", False):
            self._share_callback_manager()

    def _share_callback_manager(self) -> None:
        for llm in (self.strong, self.weak):
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
        `router=` for a custom Router object.

        Examples:
            ```python
            data = llm.to_dict()
            same = RoutedLLM.from_dict(data, strong=my_strong_llm, weak=my_weak_llm)
            ```
        """
        from llama_index.core.llms.loading import load_llm

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
        if data.get("threshold") is not None:
            data.pop("strong_fraction", None)  # the stored threshold is authoritative
        return cls(**data)

    # -- metadata ---------------------------------------------------------------------------------------

    @property
    def metadata(self) -> LLMMetadata:
        """Metadata that holds for whichever model answers.

        The context window and output size are the smaller of the two; function calling only if both
        models support it; `is_chat_model` only if both are chat models (prompt templates chosen from this
        flag then fit either model, and `predict`/`stream` format prompts for the model actually chosen).
        """
        s, w = self.strong.metadata, self.weak.metadata
        return LLMMetadata(
            context_window=_min_known(s.context_window, w.context_window, DEFAULT_CONTEXT_WINDOW),
            num_output=_min_known(s.num_output, w.num_output, DEFAULT_NUM_OUTPUTS),
            is_chat_model=bool(s.is_chat_model and w.is_chat_model),
            is_function_calling_model=bool(
                s.is_function_calling_model
                and w.is_function_calling_model
                and isinstance(self.strong, FunctionCallingLLM)
                and isinstance(self.weak, FunctionCallingLLM)
            ),
            model_name=f"routellm[{self.router}]({s.model_name}|{w.model_name})",
            system_role=s.system_role if s.system_role == w.system_role else MessageRole.SYSTEM,
        )

    def get_router(self) -> Router:
        """The `routing_core.Router` in use."""
        return self._router

    def llm_for(self, side: Side) -> LLM:
        """The inner LLM of `side` (`"strong"` or `"weak"`)."""
        return self.strong if _check_side(side) == "strong" else self.weak

    # -- decisions --------------------------------------------------------------------------------------

    @property
    def policy(self) -> TwoModelPolicy:
        """The routing policy (routing_core.policy) making every decision; rebuilt if a model's name changes."""
        # Each model's metadata is read once per call (it is a computed property on most LLMs).
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

    def _wrap(self, decision: Decision) -> RoutingDecision:
        policy = self.policy
        return RoutingDecision.from_policy(decision, policy.model_names["strong"], policy.model_names["weak"])

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

    def _resolve(
        self, kwargs: dict[str, Any], text_fn: Callable[[], tuple[str | None, str]]
    ) -> RoutingDecision:
        ready, forced = self._ready_decision(kwargs)
        if ready is not None:
            return ready
        return self._wrap(self.policy.decide_lazy(text_fn, forced=forced))

    async def _aresolve(
        self, kwargs: dict[str, Any], text_fn: Callable[[], tuple[str | None, str]]
    ) -> RoutingDecision:
        ready, forced = self._ready_decision(kwargs)
        if ready is not None:
            return ready
        # router work (embeddings, model inference) runs off the event loop, in the policy
        return self._wrap(await self.policy.adecide_lazy(text_fn, forced=forced))

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
        return self._resolve({}, lambda: (text, "prompt"))

    async def aroute(self, text: str) -> RoutingDecision:
        """Async `route`: the router runs in a thread executor."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return await self._aresolve({}, lambda: (text, "prompt"))

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
            kwargs (Any): Passed to the chosen model; `routellm_model="strong"|"weak"` forces a side.

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
        call = self._begin("chat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages))
        with call:
            response = self.llm_for(call.decision.side).chat(messages, **kwargs)
        return call.finish(response)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`; the router runs in a thread executor, off the event loop.

        Examples:
            ```python
            response = await llm.achat([ChatMessage(role="user", content="Hello")])
            ```
        """
        messages = _check_messages(messages)
        call = await self._abegin(
            "achat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages)
        )
        with call:
            response = await self.llm_for(call.decision.side).achat(messages, **kwargs)
        return call.finish(response)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream a chat from the chosen model; every chunk carries the decision.

        The decision is made (and the decision event dispatched) when this method is called; the end event
        follows when the stream is exhausted, fails or is closed.

        Examples:
            ```python
            for chunk in llm.stream_chat([ChatMessage(role="user", content="Tell me a story")]):
                print(chunk.delta, end="")
            ```
        """
        messages = _check_messages(messages)
        call = self._begin(
            "stream_chat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages)
        )
        with call:
            gen = self.llm_for(call.decision.side).stream_chat(messages, **kwargs)
        return call.wrap_stream(gen)

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Async `stream_chat`; the router runs in a thread executor.

        Examples:
            ```python
            async for chunk in await llm.astream_chat([ChatMessage(role="user", content="Hi")]):
                print(chunk.delta, end="")
            ```
        """
        messages = _check_messages(messages)
        call = await self._abegin(
            "astream_chat", kwargs, self._chat_text_fn(messages), lambda: _messages_text(messages)
        )
        with call:
            gen = await self.llm_for(call.decision.side).astream_chat(messages, **kwargs)
        return call.wrap_astream(gen)

    # -- completion -------------------------------------------------------------------------------------

    @staticmethod
    def _check_prompt(prompt: Any) -> str:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        return prompt

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Complete `prompt` with the model the router picks for it.

        Args:
            prompt (str): The prompt; it is also what the router scores.
            formatted (bool): Whether the prompt is already formatted for the model.
            kwargs (Any): Passed to the chosen model; `routellm_model="strong"|"weak"` forces a side.

        Examples:
            ```python
            response = llm.complete("Paris is the capital of")
            print(response.text, response.additional_kwargs["routellm"]["model"])
            ```
        """
        prompt = self._check_prompt(prompt)
        call = self._begin("complete", kwargs, self._prompt_text_fn(prompt), lambda: prompt)
        with call:
            response = self.llm_for(call.decision.side).complete(prompt, formatted=formatted, **kwargs)
        return call.finish(response)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Async `complete`; the router runs in a thread executor.

        Examples:
            ```python
            response = await llm.acomplete("Paris is the capital of")
            ```
        """
        prompt = self._check_prompt(prompt)
        call = await self._abegin("acomplete", kwargs, self._prompt_text_fn(prompt), lambda: prompt)
        with call:
            response = await self.llm_for(call.decision.side).acomplete(prompt, formatted=formatted, **kwargs)
        return call.finish(response)

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
        with call:
            gen = self.llm_for(call.decision.side).stream_complete(prompt, formatted=formatted, **kwargs)
        return call.wrap_stream(gen)

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
        with call:
            gen = await self.llm_for(call.decision.side).astream_complete(
                prompt, formatted=formatted, **kwargs
            )
        return call.wrap_astream(gen)

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

    # -- structured outputs: same question-based routing, carried to the LLM call through llm_kwargs ----

    def _structured_routing(
        self, prompt: BasePromptTemplate, prompt_args: dict[str, Any], llm_kwargs: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Callable[[], tuple[str | None, str]]]:
        """Routing kwargs of a structured call (popped from `prompt_args`, read from `llm_kwargs`).

        Returns the routing kwargs when the call must be decided up front (a question variable, a forced
        side or a pinned decision), else None: the program's own LLM call is then routed as usual.
        """
        rk: dict[str, Any] = {
            k: v for k, v in (llm_kwargs or {}).items() if k in (FORCE_KWARG, DECISION_KWARG)
        }
        if FORCE_KWARG in prompt_args:
            rk[FORCE_KWARG] = prompt_args.pop(FORCE_KWARG)
        partials = getattr(prompt, "kwargs", None) or {}
        has_var = any(v in prompt_args or v in partials for v in self.route_template_vars)
        clean = (
            {k: v for k, v in (llm_kwargs or {}).items() if k not in rk} if llm_kwargs is not None else None
        )
        return (rk if (rk or has_var) else None), clean, self._template_text_fn(prompt, prompt_args)

    @staticmethod
    def _with_decision(
        decision: RoutingDecision | None, llm_kwargs: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if decision is None:
            return llm_kwargs
        return {**(llm_kwargs or {}), DECISION_KWARG: decision}

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Structured predict, routed on the question (`query_str`) when the prompt has one.

        Examples:
            ```python
            from pydantic import BaseModel

            class Answer(BaseModel):
                text: str

            answer = llm.structured_predict(Answer, qa, context_str=ctx, query_str="Who wrote it?")
            ```
        """
        rk, clean, text_fn = self._structured_routing(prompt, prompt_args, llm_kwargs)
        kw = self._with_decision(None if rk is None else self._resolve(rk, text_fn), clean)
        return super().structured_predict(output_cls, prompt, llm_kwargs=kw, **prompt_args)  # type: ignore[arg-type]

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async `structured_predict`; the router runs in a thread executor."""
        rk, clean, text_fn = self._structured_routing(prompt, prompt_args, llm_kwargs)
        kw = self._with_decision(None if rk is None else await self._aresolve(rk, text_fn), clean)
        return await super().astructured_predict(output_cls, prompt, llm_kwargs=kw, **prompt_args)  # type: ignore[arg-type]

    def stream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Any, None, None]:
        """Stream structured predict, routed on the question (`query_str`) when the prompt has one."""
        rk, clean, text_fn = self._structured_routing(prompt, prompt_args, llm_kwargs)
        kw = self._with_decision(None if rk is None else self._resolve(rk, text_fn), clean)
        return super().stream_structured_predict(output_cls, prompt, llm_kwargs=kw, **prompt_args)  # type: ignore[arg-type]

    async def astream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Any, None]:
        """Async `stream_structured_predict`; the router runs in a thread executor."""
        rk, clean, text_fn = self._structured_routing(prompt, prompt_args, llm_kwargs)
        kw = self._with_decision(None if rk is None else await self._aresolve(rk, text_fn), clean)
        return await super().astream_structured_predict(output_cls, prompt, llm_kwargs=kw, **prompt_args)  # type: ignore[arg-type]

    # -- tool calling: decide first, then let the chosen model format, validate and parse ----------------

    def _function_calling_llm(self, side: Side) -> FunctionCallingLLM:
        llm = self.llm_for(side)
        if not isinstance(llm, FunctionCallingLLM) or not llm.metadata.is_function_calling_model:
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
        llm = self._function_calling_llm(decision.side)
        prepared = llm._prepare_chat_with_tools_compat(
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            tool_required=tool_required,
            **kwargs,
        )
        return {**prepared, DECISION_KWARG: decision}

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

    def _side_of(self, response: ChatResponse) -> Side:
        payload = (response.additional_kwargs or {}).get(PAYLOAD_KEY)
        if payload is None:
            # not produced through this wrapper (e.g. an empty placeholder): the strong model parses it
            return "strong"
        side = payload.get("side") if isinstance(payload, dict) else None
        if side not in _SIDES:
            raise ValueError(f"response has a malformed {PAYLOAD_KEY!r} payload: {payload!r}")
        return side  # type: ignore[return-value]

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
        kwargs = {k: v for k, v in kwargs.items() if k not in (FORCE_KWARG, DECISION_KWARG)}
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
        return (
            f"RoutedLLM(strong={self.strong.metadata.model_name!r}, weak={self.weak.metadata.model_name!r}, "
            f"router={self.router!r}, threshold={self.threshold:.4f})"
        )
