"""Scripted fake chat models and a keyword router for tests, cookbooks and benchmarks (offline, deterministic).

A documented public utility, like `llamaindex_routellm.testing`: `from langchain_routellm.testing import
FakeOpenAIChat, FakeAnthropicChat, KeywordRouter, make_routed`.

Two fake "providers" speak different request dialects, so routing between them proves that tools and structured
output are bound natively on whichever side answers:

- `FakeOpenAIChat`: OpenAI-style `tools=[{"type": "function", ...}]`, `tool_choice="required"`, JSON via
  `response_format=...`;
- `FakeAnthropicChat`: Anthropic-style `tools=[{"name", "input_schema"}]`, `tool_choice={"type": "any"}`, JSON via
  `output_format=...`.

Each rejects the other's dialect, and each has one provider-only call argument, as the real ones: `seed=` for
FakeOpenAIChat, `top_k=` for FakeAnthropicChat (declared in `routellm_call_params`; any other argument is a
`TypeError`, as from a provider SDK). Both support sync/async generation and streaming (text chunks by word, tool
calls as `tool_call_chunks`, usage and `model_name` on the last chunk only), usage metadata counted with tiktoken,
stop sequences, scripted replies, injected errors (every call, `error_fn` per call, or mid-stream), an async delay,
and a thread-safe log of their calls.

Their behaviour is a small deterministic "agent": with tools bound and a fresh user request (or a forced
`tool_choice`) they call the most relevant tool that has not answered yet, filling arguments from the JSON schema
and the request (the k-th integer field gets the k-th number of the text, strings get quoted text or a place
name); once the tools answered they reply with the tool results.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, ClassVar

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import Field, PrivateAttr

from langchain_routellm import message_text
from routing_core import Router
from routing_core.costs import count_tokens

__all__ = [
    "FakeAnthropicChat",
    "FakeOpenAIChat",
    "KeywordRouter",
    "ScriptedChatModel",
    "ZeroLatencyChat",
    "ZeroLatencyStreamingChat",
    "make_routed",
]


# --------------------------------------------------------------------------------------------------------------
# argument synthesis from a JSON schema and the request text
# --------------------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"(?<!\w)'([^']+)'(?!\w)|\"([^\"]+)\"|“([^”]+)”")
_PLACE = re.compile(r"\bin ([A-Z][\w.]*(?:,? [A-Z][\w.]*)*)")


class _Filler:
    """Hands out values for schema fields in order: numbers and quoted strings taken from the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.numbers = [float(n) for n in _NUMBER.findall(text)]
        self.quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
        place = _PLACE.search(text)
        self.place = place.group(1) if place else None
        self._n = 0
        self._s = 0

    def number(self) -> float:
        value = (
            self.numbers[self._n] if self._n < len(self.numbers) else (self.numbers[0] if self.numbers else 0)
        )
        self._n += 1
        return value

    def string(self, name: str) -> str:
        if self.quoted:
            value = self.quoted[min(self._s, len(self.quoted) - 1)]
            self._s += 1
            return value
        if self.place and any(k in name for k in ("location", "city", "place", "where")):
            return self.place
        snippet = self.text.strip()[:60] or "something"
        return f"{name.replace('_', ' ')} about {snippet}"


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _resolve(options[0] if options else {"type": "null"}, defs)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0], defs)
    return schema


def _value(schema: dict[str, Any], name: str, fill: _Filler, defs: dict[str, Any]) -> Any:
    schema = _resolve(schema, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "integer":
        return int(fill.number())
    if kind == "number":
        return fill.number()
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value(schema.get("items", {}), name, fill, defs)]
    if kind == "object" or "properties" in schema:
        return _object(schema, fill, defs)
    if kind == "null":
        return None
    return fill.string(name)


def _object(schema: dict[str, Any], fill: _Filler, defs: dict[str, Any]) -> dict[str, Any]:
    defs = {**defs, **schema.get("$defs", {}), **schema.get("definitions", {})}
    return {k: _value(v, k, fill, defs) for k, v in (schema.get("properties") or {}).items()}


def synthesize(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments for a JSON-schema object, filled from `text`."""
    return _object(schema, _Filler(text), {})


# --------------------------------------------------------------------------------------------------------------
# the scripted model
# --------------------------------------------------------------------------------------------------------------


class _Tool:
    __slots__ = ("description", "name", "parameters")

    def __init__(self, name: str, description: str, parameters: dict[str, Any]) -> None:
        self.name, self.description, self.parameters = name, description, parameters


def _words(text: str) -> set[str]:
    """Crude stems (first five letters) of the words of `text`, so "multiplied" matches "multiply"."""
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


class ScriptedChatModel(BaseChatModel):
    """Base of the fake providers: deterministic replies, tools, JSON output, usage, streaming, errors."""

    provider: ClassVar[str] = "fake"
    routellm_call_params: ClassVar[frozenset[str]] = frozenset(
        {"tools", "tool_choice", "strict", "temperature", "max_tokens", "parallel_tool_calls"}
    )
    """The call arguments this fake takes (any other raises TypeError, as a provider SDK does); how
    `RoutedChatModel` knows which arguments to send to it (see `langchain_routellm._params`)."""
    model_name: str = "fake-model"
    replies: list[str] | None = None
    """Scripted text replies, used in turn (cycled); default: an echo naming the model."""
    reply_fn: Callable[[list[BaseMessage]], str] | None = Field(default=None, exclude=True)
    report_usage: bool = True
    error: Exception | None = None
    """Raised by every call (after the call is logged)."""
    error_fn: Callable[[list[BaseMessage]], BaseException | None] | None = Field(default=None, exclude=True)
    """Called with every call's messages (after the call is logged): an exception it returns is raised, so a
    share of calls can fail deterministically (e.g. every prompt containing "fail")."""
    error_after_chunks: int | None = None
    """When set, streaming raises `error` (or RuntimeError) after this many chunks instead of at the start."""
    async_delay: float = 0.0
    temperature: float | None = None
    max_tokens: int | None = None

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _counter: Iterator[int] = PrivateAttr(default_factory=itertools.count)

    # --- dialect hooks (overridden by the providers) -----------------------------------------------------

    def _format_tool(self, tool: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _format_tool_choice(self, choice: Any, tools: list[dict[str, Any]]) -> Any:
        raise NotImplementedError

    def _read_tools(self, kwargs: dict[str, Any]) -> tuple[list[_Tool], str | None]:
        """(tools, choice) where choice is None/"auto", "none", "any" or a tool name."""
        raise NotImplementedError

    def _json_kwargs(self, schema: dict[str, Any] | None, strict: bool | None) -> dict[str, Any]:
        raise NotImplementedError

    def _read_json(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        raise NotImplementedError

    # --- LangChain surface --------------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return f"{self.provider}-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=self.provider,
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
        )
        if stop:
            params["ls_stop"] = stop
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        return params

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [self._format_tool(t) for t in tools]
        bound: dict[str, Any] = {"tools": formatted, **kwargs}
        if tool_choice is not None:
            bound["tool_choice"] = self._format_tool_choice(tool_choice, formatted)
        if strict is not None:
            bound["strict"] = strict
        return self.bind(**bound)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: str = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        json_schema = convert_to_json_schema(schema) if method == "json_schema" else None
        llm = self.bind(
            **self._json_kwargs(json_schema, strict),
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        parser: Runnable = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()  # type: ignore[arg-type]
        if include_raw:
            assign = RunnablePassthrough.assign(
                parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
            )
            none = RunnablePassthrough.assign(parsed=lambda _: None)
            return RunnableMap(raw=llm) | assign.with_fallbacks([none], exception_key="parsing_error")
        return llm | parser

    # --- call log -----------------------------------------------------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # --- behaviour ----------------------------------------------------------------------------------------

    def _reply_text(self, messages: list[BaseMessage]) -> str:
        if self.reply_fn is not None:
            return self.reply_fn(messages)
        if self.replies:
            with self._lock:
                i = next(self._counter)
            return self.replies[i % len(self.replies)]
        last = next(
            (message_text(m) for m in reversed(messages) if m.type == "human" and message_text(m)), ""
        )
        return f"{self.model_name} says hello. You said: {last[:80] or '(no text)'}"

    def _respond(
        self,
        method: str,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        run_manager: Any,
    ) -> AIMessage:
        with self._lock:
            self._calls.append(
                {
                    "method": method,
                    "messages": list(messages),
                    "stop": stop,
                    "kwargs": dict(kwargs),
                    "run_manager": run_manager is not None,
                }
            )
        unknown = set(kwargs) - self.routellm_call_params - {"model"}
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected call arguments {sorted(unknown)}")
        if self.error_fn is not None:
            failure = self.error_fn(messages)
            if failure is not None:
                raise failure
        if self.error is not None and self.error_after_chunks is None:
            raise self.error
        tools, choice = self._read_tools(kwargs)
        json_request = self._read_json(kwargs)
        request = next(
            (message_text(m) for m in reversed(messages) if m.type == "human" and message_text(m)), ""
        )
        call = self._pick_tool(messages, tools, choice, request) if tools and choice != "none" else None
        tool_calls = []
        if call is not None:
            with self._lock:
                n = next(self._counter)
            tool_calls = [
                {
                    "name": call.name,
                    "args": synthesize(call.parameters, request),
                    "id": f"call_{self.provider}_{n}",
                    "type": "tool_call",
                }
            ]
            content = ""
        elif json_request is not None:
            mode, schema = json_request
            if schema is None:  # json mode: the keys the request quotes
                keys = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(request)] or ["answer"]
                schema = {"type": "object", "properties": {k: {"type": "string"} for k in keys}}
            content = json.dumps(synthesize(schema, "a fine answer"), ensure_ascii=False)
        elif isinstance(messages[-1], ToolMessage):
            results = [
                f"{m.name or 'tool'} -> {message_text(m)}" for m in messages if isinstance(m, ToolMessage)
            ]
            content = f"[{self.model_name}] Based on the tools: " + "; ".join(results)
        else:
            content = self._reply_text(messages)
        if stop:
            for s in stop:
                if s and s in content[1:]:
                    content = content[: content.index(s, 1)]
        usage = None
        if self.report_usage:
            tokens_in = sum(count_tokens(message_text(m)) for m in messages) + 3 * len(messages)
            tokens_out = max(
                1,
                count_tokens(content)
                + sum(count_tokens(json.dumps(c["args"], ensure_ascii=False)) for c in tool_calls),
            )
            usage = {
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            }
        return AIMessage(
            content=content,
            tool_calls=tool_calls,
            usage_metadata=usage,
            response_metadata={
                "model_name": self.model_name,
                "model_provider": self.provider,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            },
        )

    @staticmethod
    def _pick_tool(
        messages: list[BaseMessage], tools: list[_Tool], choice: str | None, request: str
    ) -> _Tool | None:
        if choice not in (None, "auto", "any"):
            return next((t for t in tools if t.name == choice), None)
        last_human = max((i for i, m in enumerate(messages) if m.type == "human"), default=-1)
        answered = {m.name for m in messages[last_human + 1 :] if isinstance(m, ToolMessage)}
        answered |= {
            c["name"] for m in messages[last_human + 1 :] if isinstance(m, AIMessage) for c in m.tool_calls
        }
        words = _words(request)

        def score(t: _Tool) -> int:
            return 3 * len(words & _words(t.name.replace("_", " "))) + len(words & _words(t.description))

        relevant = [
            t for t in sorted(tools, key=score, reverse=True) if score(t) > 0 and t.name not in answered
        ]
        if relevant:
            return relevant[0]
        if choice == "any":
            return tools[0]
        # auto: a fresh request with nothing relevant still gets the first tool; after tool results, answer
        return tools[0] if not answered and not isinstance(messages[-1], ToolMessage) else None

    def _chunks(self, message: AIMessage) -> list[ChatGenerationChunk]:
        parts: list[AIMessageChunk] = []
        if message.content:
            words = re.findall(r"\S+\s*", str(message.content))
            parts.extend(AIMessageChunk(content=w) for w in words)
        for i, call in enumerate(message.tool_calls):
            parts.append(
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        tool_call_chunk(
                            name=call["name"],
                            args=json.dumps(call["args"], ensure_ascii=False),
                            id=call["id"],
                            index=i,
                        )
                    ],
                )
            )
        parts.append(
            AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=dict(message.response_metadata),
                chunk_position="last",
            )
        )
        return [ChatGenerationChunk(message=p) for p in parts]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._respond("_generate", messages, stop, kwargs, run_manager)
        return ChatResult(
            generations=[ChatGeneration(message=message)], llm_output={"model_name": self.model_name}
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.async_delay:
            await asyncio.sleep(self.async_delay)
        message = self._respond("_agenerate", messages, stop, kwargs, run_manager)
        return ChatResult(
            generations=[ChatGeneration(message=message)], llm_output={"model_name": self.model_name}
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._respond("_stream", messages, stop, kwargs, run_manager)
        for i, chunk in enumerate(self._chunks(message)):
            if self.error_after_chunks is not None and i >= self.error_after_chunks:
                raise self.error or RuntimeError("stream broke")
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.async_delay:
            await asyncio.sleep(self.async_delay)
        message = self._respond("_astream", messages, stop, kwargs, run_manager)
        for i, chunk in enumerate(self._chunks(message)):
            if self.error_after_chunks is not None and i >= self.error_after_chunks:
                raise self.error or RuntimeError("stream broke")
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _as_tool(d: dict[str, Any]) -> _Tool:
    return _Tool(d["name"], d.get("description", ""), d.get("parameters") or d.get("input_schema") or {})


class FakeOpenAIChat(ScriptedChatModel):
    """OpenAI dialect: function tools, "required"/{"type": "function"} tool choice, `response_format`."""

    provider: ClassVar[str] = "fake-openai"
    routellm_call_params: ClassVar[frozenset[str]] = ScriptedChatModel.routellm_call_params | {
        "seed",
        "response_format",
    }
    model_name: str = "fake-gpt"

    def _format_tool(self, tool: Any) -> dict[str, Any]:
        return convert_to_openai_tool(tool)

    def _format_tool_choice(self, choice: Any, tools: list[dict[str, Any]]) -> Any:
        if choice in ("any", "required", True):
            return "required"
        if choice in ("auto", "none"):
            return choice
        if isinstance(choice, str):
            return {"type": "function", "function": {"name": choice}}
        return choice

    def _read_tools(self, kwargs: dict[str, Any]) -> tuple[list[_Tool], str | None]:
        tools = []
        for t in kwargs.get("tools") or []:
            if t.get("type") != "function" or "function" not in t:
                raise ValueError(f"FakeOpenAIChat expects OpenAI function tools, got {t!r}")
            tools.append(_as_tool(t["function"]))
        choice = kwargs.get("tool_choice")
        if choice == "required":
            return tools, "any"
        if isinstance(choice, dict):
            if choice.get("type") != "function":
                raise ValueError(f"FakeOpenAIChat does not understand tool_choice={choice!r}")
            return tools, choice["function"]["name"]
        if choice not in (None, "auto", "none"):
            raise ValueError(f"FakeOpenAIChat does not understand tool_choice={choice!r}")
        return tools, choice

    def _json_kwargs(self, schema: dict[str, Any] | None, strict: bool | None) -> dict[str, Any]:
        if schema is None:
            return {"response_format": {"type": "json_object"}}
        spec: dict[str, Any] = {"name": schema.get("title", "output"), "schema": schema}
        if strict is not None:
            spec["strict"] = strict
        return {"response_format": {"type": "json_schema", "json_schema": spec}}

    def _read_json(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        if "output_format" in kwargs:
            raise ValueError("FakeOpenAIChat does not understand output_format (Anthropic dialect)")
        fmt = kwargs.get("response_format")
        if fmt is None:
            return None
        if fmt.get("type") == "json_object":
            return "json_mode", None
        return "json_schema", fmt["json_schema"]["schema"]


class FakeAnthropicChat(ScriptedChatModel):
    """Anthropic dialect: `input_schema` tools, {"type": "any" | "tool"} tool choice, `output_format`."""

    provider: ClassVar[str] = "fake-anthropic"
    routellm_call_params: ClassVar[frozenset[str]] = ScriptedChatModel.routellm_call_params | {
        "top_k",
        "output_format",
    }
    model_name: str = "fake-claude"

    def _format_tool(self, tool: Any) -> dict[str, Any]:
        if isinstance(tool, dict) and "input_schema" in tool:
            return tool  # already in this dialect (extra keys such as cache_control are kept)
        fn = convert_to_openai_tool(tool)["function"]
        return {
            "name": fn["name"],
            "description": fn.get("description", ""),
            "input_schema": fn.get("parameters", {"type": "object", "properties": {}}),
        }

    def _format_tool_choice(self, choice: Any, tools: list[dict[str, Any]]) -> Any:
        if choice in ("any", "required", True):
            return {"type": "any"}
        if choice in ("auto", "none"):
            return {"type": choice}
        if isinstance(choice, str):
            return {"type": "tool", "name": choice}
        return choice

    def _read_tools(self, kwargs: dict[str, Any]) -> tuple[list[_Tool], str | None]:
        tools = []
        for t in kwargs.get("tools") or []:
            if "input_schema" not in t:
                raise ValueError(f"FakeAnthropicChat expects tools with input_schema, got {t!r}")
            tools.append(_as_tool(t))
        choice = kwargs.get("tool_choice")
        if choice is None:
            return tools, None
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "none", "tool"):
            raise ValueError(f"FakeAnthropicChat does not understand tool_choice={choice!r}")
        return tools, choice["name"] if choice["type"] == "tool" else choice["type"]

    def _json_kwargs(self, schema: dict[str, Any] | None, strict: bool | None) -> dict[str, Any]:
        return {
            "output_format": {"type": "json"} if schema is None else {"type": "json_schema", "schema": schema}
        }

    def _read_json(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        if "response_format" in kwargs:
            raise ValueError("FakeAnthropicChat does not understand response_format (OpenAI dialect)")
        fmt = kwargs.get("output_format")
        if fmt is None:
            return None
        return ("json_mode", None) if fmt.get("type") == "json" else ("json_schema", fmt["schema"])


class ZeroLatencyChat(BaseChatModel):
    """The cheapest possible chat model (a constant answer), for overhead measurements. It implements no
    `_stream`, so it also stands for a model that cannot stream."""

    model_name: str = "zero"

    @property
    def _llm_type(self) -> str:
        return "zero-latency"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok"))])


class ZeroLatencyStreamingChat(ZeroLatencyChat):
    """`ZeroLatencyChat` that also streams: its answer in one chunk (benchmarks/langchain_overhead.py)."""

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="ok", chunk_position="last"))


# --------------------------------------------------------------------------------------------------------------
# routers
# --------------------------------------------------------------------------------------------------------------


class KeywordRouter(Router):
    """Win rate `high` when the prompt contains a keyword ("hard" by default), else `low`; deterministic."""

    name = "keyword"

    def __init__(self, keyword: str = "hard", high: float = 0.9, low: float = 0.1) -> None:
        self.keyword, self.high, self.low = keyword.lower(), high, low
        self.reference_win_rates = np.array([low] * 7 + [high] * 3, dtype=np.float64)
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        with self._lock:
            self.seen.extend(prompts)
        return np.array(
            [self.high if self.keyword in p.lower() else self.low for p in prompts], dtype=np.float64
        )

    def describe(self) -> dict[str, Any]:
        return {"router": self.name, "keyword": self.keyword}


def make_routed(**kwargs: Any) -> Any:
    """A RoutedChatModel over FakeOpenAIChat (strong) and FakeAnthropicChat (weak) with a KeywordRouter."""
    from langchain_routellm import RoutedChatModel

    defaults: dict[str, Any] = {
        "strong": FakeOpenAIChat(),
        "weak": FakeAnthropicChat(),
        "router": KeywordRouter(),
        "threshold": 0.5,
    }
    return RoutedChatModel(**{**defaults, **kwargs})
