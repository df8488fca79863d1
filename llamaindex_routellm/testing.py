"""ScriptedLLM: a deterministic, offline LlamaIndex LLM for tests, demos and cookbooks.

It answers from a script (a function of the question), can call tools like a function-calling model, streams
word by word, reports token usage like a hosted model, and can be told to fail. Each public method emits
exactly one set of LLM events (it never calls another decorated method of its own), like a provider
integration, so event counts seen through a `RoutedLLM` are those of a real model.

Examples:
    ```python
    from llamaindex_routellm import RoutedLLM
    from llamaindex_routellm.testing import ScriptedLLM

    strong = ScriptedLLM(model_name="big", responder=lambda q: f"A careful answer to: {q}")
    weak = ScriptedLLM(model_name="small")
    llm = RoutedLLM(strong=strong, weak=weak, threshold=0.5)
    print(llm.complete("What is 2 + 2?").text)
    print(strong.calls, weak.calls)  # what each model was asked
    ```
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

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
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from routing_core.costs import count_tokens

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["ScriptedLLM", "ToolPlan"]

#: A tool caller maps (question, available tools) to the calls to make: [(tool_name, tool_kwargs), ...].
ToolPlan = list[tuple[str, dict[str, Any]]]


def _text(message: ChatMessage) -> str:
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock))


async def _aiter(items: Iterable[Any]) -> AsyncGenerator[Any, None]:
    """An async generator over `items` (what the async streaming methods hand out)."""
    for item in items:
        yield item


def _shorten(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


class ScriptedLLM(FunctionCallingLLM):
    """A deterministic offline LLM: scripted answers, tool calls, streaming, usage reports, failures.

    The "question" it answers is the last user message of a chat, or the prompt of a completion.

    * Replies: `responder(question)` when given, else `"[<model_name>] reply to: <question, shortened>"`.
    * Tools: when a chat gets `tools` and `tool_caller` is set, `tool_caller(question, tools)` lists the
      calls to make; the reply then carries them as `ToolCallBlock`s (parsed back by
      `get_tool_calls_from_response`). Once tool results follow the last user message, it answers with
      `responder("<question>\\n[tool results] <results>")` (default: the results, prefixed by the name).
    * Streaming yields the reply word by word; the last chunk carries the usage.
    * Usage: `raw["usage"]` has `prompt_tokens`/`completion_tokens` (tiktoken counts), as a hosted model
      reports them, unless `report_usage=False`.
    * Failures: with `error` set, every call raises it; with `error_after_chunks=k` too, streams raise it
      after `k` chunks instead.
    * `calls` records every request: method, question, tool names and extra kwargs.

    Args:
        model_name (str): Name reported in metadata (and used for prices by `RoutingEventHandler`).
        responder (Optional[Callable[[str], str]]): Question -> reply text.
        tool_caller (Optional[Callable[[str, Sequence[BaseTool]], ToolPlan]]): Question, tools -> calls.
        context_window (int): Reported context window.
        num_output (int): Reported output size.
        is_chat_model (bool): Reported chat-model flag.
        is_function_calling_model (bool): Reported function-calling flag.
        error (Optional[BaseException]): Raised by every call when set.
        error_after_chunks (Optional[int]): Streams raise `error` after this many chunks.
        report_usage (bool): Put token usage in `raw["usage"]`.

    Examples:
        ```python
        from llama_index.core.tools import FunctionTool
        from llamaindex_routellm.testing import ScriptedLLM

        def add(a: int, b: int) -> int:
            return a + b

        llm = ScriptedLLM(
            model_name="scripted-fc",
            tool_caller=lambda q, tools: [("add", {"a": 2, "b": 3})] if "add" in q else [],
        )
        result = llm.predict_and_call([FunctionTool.from_defaults(add)], user_msg="add 2 and 3")
        print(result.response)  # "5"
        ```
    """

    model_name: str = Field(default="scripted", description="Model name reported in metadata.")
    context_window: int = Field(default=8192, description="Reported context window.")
    num_output: int = Field(default=512, description="Reported output size.")
    is_chat_model: bool = Field(default=True, description="Reported chat-model flag.")
    is_function_calling_model: bool = Field(default=True, description="Reported function-calling flag.")
    responder: Callable[[str], str] | None = Field(
        default=None, exclude=True, description="Question -> reply."
    )
    tool_caller: Callable[..., Any] | None = Field(
        default=None, exclude=True, description="(question, tools) -> [(tool_name, tool_kwargs), ...]."
    )
    error: BaseException | None = Field(default=None, exclude=True, description="Raised by every call.")
    error_after_chunks: int | None = Field(default=None, description="Streams fail after this many chunks.")
    report_usage: bool = Field(default=True, description="Report token usage in raw['usage'].")

    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _ids: Any = PrivateAttr(default_factory=itertools.count)

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "ScriptedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """LLM metadata."""
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.num_output,
            is_chat_model=self.is_chat_model,
            is_function_calling_model=self.is_function_calling_model,
            model_name=self.model_name,
        )

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every request so far: `{"method", "question", "tools", "kwargs"}` dicts, oldest first."""
        with self._lock:
            return list(self._calls)

    def reset_calls(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._calls.clear()

    # -- script ----------------------------------------------------------------------------------------

    def _record(
        self, method: str, question: str, tools: Sequence[Any] | None, kwargs: dict[str, Any]
    ) -> None:
        names = [t.metadata.name for t in tools] if tools else []
        extra = {k: v for k, v in kwargs.items() if k != "tools"}
        with self._lock:
            self._calls.append({"method": method, "question": question, "tools": names, "kwargs": extra})

    def _reply(self, question: str) -> str:
        if self.responder is not None:
            return str(self.responder(question))
        return f"[{self.model_name}] reply to: {_shorten(question)}"

    def _fail_now(self) -> None:
        if self.error is not None and self.error_after_chunks is None:
            raise self.error

    def _usage(self, prompt_text: str, reply: str) -> dict[str, Any] | None:
        if not self.report_usage:
            return None
        return {
            "usage": {"prompt_tokens": count_tokens(prompt_text), "completion_tokens": count_tokens(reply)}
        }

    def _chat_message(
        self, method: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> ChatMessage:
        """The scripted answer to a chat: text, or tool calls when tools are offered."""
        self._fail_now()
        last_user = max((i for i, m in enumerate(messages) if m.role == MessageRole.USER), default=-1)
        question = _text(messages[last_user]) if last_user >= 0 else (_text(messages[-1]) if messages else "")
        tools = kwargs.get("tools") or []
        self._record(method, question, tools, kwargs)
        results = [_text(m) for m in messages[last_user + 1 :] if m.role == MessageRole.TOOL]
        if results:
            joined = "; ".join(results)
            if self.responder is not None:
                return ChatMessage(
                    role=MessageRole.ASSISTANT, content=self._reply(f"{question}\n[tool results] {joined}")
                )
            return ChatMessage(role=MessageRole.ASSISTANT, content=f"[{self.model_name}] {joined}")
        if tools and self.tool_caller is not None:
            plan = list(self.tool_caller(question, tools) or [])
            if plan:
                blocks = [
                    ToolCallBlock(
                        tool_call_id=f"call_{self.model_name}_{next(self._ids)}",
                        tool_name=name,
                        tool_kwargs=dict(args),
                    )
                    for name, args in plan
                ]
                return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)
        return ChatMessage(role=MessageRole.ASSISTANT, content=self._reply(question))

    @staticmethod
    def _prompt_of(messages: Sequence[ChatMessage]) -> str:
        return "\n".join(f"{m.role.value}: {_text(m)}" for m in messages)

    def _word_chunks(self, text: str, prompt_text: str, make: Callable[[str, str, Any], Any]) -> list[Any]:
        """`text` word by word: `make(text so far, delta, raw)` per word; the last chunk carries the usage."""
        words = text.split(" ")
        chunks, so_far = [], ""
        for i, word in enumerate(words):
            delta = word if i == 0 else " " + word
            so_far += delta
            raw = self._usage(prompt_text, text) if i == len(words) - 1 else None
            chunks.append(make(so_far, delta, raw))
        return chunks

    def _chat_chunks(self, message: ChatMessage, prompt_text: str) -> list[ChatResponse]:
        text = message.content or ""
        if not text or any(isinstance(b, ToolCallBlock) for b in message.blocks):
            return [ChatResponse(message=message, delta=text, raw=self._usage(prompt_text, text))]
        return self._word_chunks(
            text,
            prompt_text,
            lambda so_far, delta, raw: ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=so_far), delta=delta, raw=raw
            ),
        )

    def _completion_chunks(self, prompt: str) -> list[CompletionResponse]:
        return self._word_chunks(
            self._reply(prompt),
            prompt,
            lambda so_far, delta, raw: CompletionResponse(text=so_far, delta=delta, raw=raw),
        )

    def _guard_stream(self, chunks: list[Any]) -> Generator[Any, None, None]:
        for i, chunk in enumerate(chunks):
            if (
                self.error is not None
                and self.error_after_chunks is not None
                and i >= self.error_after_chunks
            ):
                raise self.error
            yield chunk
        if (
            self.error is not None
            and self.error_after_chunks is not None
            and len(chunks) <= self.error_after_chunks
        ):
            raise self.error

    # -- chat -------------------------------------------------------------------------------------------

    def _chat(self, method: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        message = self._chat_message(method, messages, kwargs)
        return ChatResponse(
            message=message, raw=self._usage(self._prompt_of(messages), message.content or "")
        )

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Scripted chat."""
        return self._chat("chat", messages, kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Scripted async chat."""
        return self._chat("achat", messages, kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Scripted streaming chat (word by word)."""
        message = self._chat_message("stream_chat", messages, kwargs)
        return self._guard_stream(self._chat_chunks(message, self._prompt_of(messages)))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Scripted async streaming chat (word by word)."""
        message = self._chat_message("astream_chat", messages, kwargs)
        return _aiter(self._guard_stream(self._chat_chunks(message, self._prompt_of(messages))))

    # -- completion -------------------------------------------------------------------------------------

    def _complete(self, method: str, prompt: str, kwargs: dict[str, Any]) -> CompletionResponse:
        self._fail_now()
        self._record(method, prompt, None, kwargs)
        text = self._reply(prompt)
        return CompletionResponse(text=text, raw=self._usage(prompt, text))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Scripted completion."""
        return self._complete("complete", prompt, kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Scripted async completion."""
        return self._complete("acomplete", prompt, kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Scripted streaming completion (word by word)."""
        self._fail_now()
        self._record("stream_complete", prompt, None, kwargs)
        return self._guard_stream(self._completion_chunks(prompt))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Scripted async streaming completion (word by word)."""
        self._fail_now()
        self._record("astream_complete", prompt, None, kwargs)
        return _aiter(self._guard_stream(self._completion_chunks(prompt)))

    # -- tools ------------------------------------------------------------------------------------------

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
        """Messages plus the tools, as a provider integration would prepare them."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        self._record("prepare_chat_with_tools", "", tools, kwargs)
        return {"messages": messages, "tools": list(tools), **kwargs}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The `ToolCallBlock`s of the response as `ToolSelection`s."""
        selections = [
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=block.tool_kwargs if isinstance(block.tool_kwargs, dict) else {},
            )
            for block in response.message.blocks
            if isinstance(block, ToolCallBlock)
        ]
        if not selections and error_on_no_tool_call:
            raise ValueError(f"{self.model_name}: expected at least one tool call, got none")
        return selections
