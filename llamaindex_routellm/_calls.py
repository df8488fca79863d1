"""Per-call bookkeeping of the LlamaIndex wrapper: one routed call's decision event, tagged responses, and its end
event with token usage (exactly once, for plain calls and streams alike); and the attempts of one request when
the chosen model fails and a fallback answers (`run`, `arun`, `stream`, `astream`).

The fallback rules (which models, in which order, which errors) are the core policy's; the wrapper passes them in
as `next_decision(decision, error) -> RoutingDecision | None` (None: re-raise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.base.llms.types import ChatResponse, CompletionResponse
from llama_index.core.bridge.pydantic import BaseModel
from llama_index.core.callbacks.token_counting import get_tokens_from_response

from llamaindex_routellm._text import _response_text
from llamaindex_routellm.events import CallStatus, RoutedCallEndEvent, RoutingDecision, RoutingDecisionEvent
from routing_core.costs import count_tokens

# events keep coming from the dispatcher they always came from (handlers may be attached to it by name)
dispatcher = instrument.get_dispatcher("llamaindex_routellm.base")
logger = logging.getLogger("llamaindex_routellm.base")

#: Key of the routing payload in responses' `additional_kwargs` (and in `AgentChatResponse.metadata`).
PAYLOAD_KEY = "routellm"


def _tag(response: Any, payload: dict[str, Any]) -> Any:
    """Store the routing payload in `response.additional_kwargs["routellm"]` (a fresh dict, never shared)."""
    if isinstance(response, ChatResponse | CompletionResponse):
        response.additional_kwargs = {
            **(response.additional_kwargs or {}),
            PAYLOAD_KEY: dict(payload),
        }
    return response


class _Call:
    """One routed call: dispatches the decision event now and the end event (with usage) exactly once.

    Used as `with call: <call the chosen model>`: an exception raised inside ends the call as an error (and
    propagates); then `finish(response)` or `wrap_stream(gen)`/`wrap_astream(gen)` tag what the model returned.
    """

    __slots__ = ("decision", "call", "payload", "_input_text", "_done")

    def __init__(self, decision: RoutingDecision, call: str, input_text: Callable[[], str]) -> None:
        self.decision = decision
        self.call = call
        self.payload = decision.to_payload()  # once per call: the event and every tagged response share it
        self._input_text = input_text
        self._done = False
        if decision.threshold is not None:
            logger.debug(
                "routellm %s -> %s (%s, win rate %s, threshold %.4f, %s)",
                call,
                decision.side,
                decision.model,
                decision.win_rate,
                decision.threshold,
                decision.reason,
            )
        else:
            logger.debug(
                "routellm %s -> %s (%s, qualities %s, %s)",
                call,
                decision.side,
                decision.model,
                decision.qualities,
                decision.reason,
            )
        dispatcher.event(RoutingDecisionEvent.from_decision(decision, call))

    def again(self, decision: RoutingDecision) -> _Call:
        """The next attempt of the same request (a fallback): same method and input, another decision."""
        return _Call(decision, self.call, self._input_text)

    def __enter__(self) -> _Call:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.end(error=exc)

    def finish(self, response: Any) -> Any:
        """End the call successfully and return `response` tagged with the decision."""
        self.end(response)
        return _tag(response, self.payload)

    def wrap_stream(self, gen: Generator[Any, None, None]) -> Any:
        """Tag every chunk; end the call when the stream is exhausted, fails or is closed."""

        def wrapped() -> Generator[Any, None, None]:
            last = None
            try:
                for chunk in gen:
                    last = _tag(chunk, self.payload)
                    yield last
            except GeneratorExit:
                self.end(last, cancelled=True)
                raise
            except BaseException as e:
                self.end(error=e)
                raise
            finally:
                close = getattr(gen, "close", None)
                if close is not None:
                    close()
            self.end(last)

        return wrapped()

    def wrap_astream(self, gen: AsyncGenerator[Any, None]) -> Any:
        """Async `wrap_stream`."""

        async def wrapped() -> AsyncGenerator[Any, None]:
            last = None
            try:
                async for chunk in gen:
                    last = _tag(chunk, self.payload)
                    yield last
            except GeneratorExit:
                self.end(last, cancelled=True)
                raise
            except BaseException as e:
                self.end(error=e)
                raise
            finally:
                aclose = getattr(gen, "aclose", None)
                if aclose is not None:
                    await aclose()
            self.end(last)

        return wrapped()

    def end(self, response: Any = None, error: BaseException | None = None, cancelled: bool = False) -> None:
        if self._done:
            return
        self._done = True
        d = self.decision
        status: CallStatus = "error" if error is not None else "cancelled" if cancelled else "ok"
        in_tok = out_tok = 0
        source: Literal["provider", "estimate", "none"] = "none"
        if status != "error":
            try:
                if isinstance(response, ChatResponse | CompletionResponse):
                    try:
                        in_tok, out_tok = (int(x or 0) for x in get_tokens_from_response(response))
                    except Exception:  # unusual raw payloads: fall back to estimates
                        in_tok = out_tok = 0
                source = "provider" if (in_tok or out_tok) else "estimate"
                if not in_tok:
                    in_tok = count_tokens(self._input_text())
                if not out_tok and isinstance(response, ChatResponse | CompletionResponse):
                    out_tok = count_tokens(_response_text(response))
                elif not out_tok and isinstance(response, BaseModel):  # structured output: its JSON
                    out_tok = count_tokens(response.model_dump_json())
            except Exception:  # token accounting must never break a call
                logger.warning("routellm: could not count tokens for a %s call", self.call, exc_info=True)
        dispatcher.event(
            RoutedCallEndEvent(
                decision_id=d.decision_id,
                call=self.call,
                side=d.side,
                model=d.model,
                strong_model=d.strong_model,
                weak_model=d.weak_model,
                status=status,
                error=None if error is None else repr(error),
                input_tokens=in_tok,
                output_tokens=out_tok,
                usage_source=source,
                fallback_from=d.fallback_from,
                fallback_error=d.fallback_error,
                turn_id=d.turn_id,
                models=None if d.models is None else dict(d.models),
            )
        )


# -- the attempts of one request: the chosen model, then the fallbacks the policy allows -------------------

#: `(decision that failed, its error) -> the decision to try next`, or None to re-raise (fallback off, the error
#: does not qualify, or no model left).
NextDecision = Callable[[RoutingDecision, BaseException], RoutingDecision | None]


class _Attempts:
    """The calls one request makes: the chosen model's, then one per fallback (each a `_Call` with its events).

    `failed(error)` ends the current call as an error and returns the next call, or the exception to raise:
    the chosen model's error itself (type, message and traceback unchanged; with a note per fallback that
    failed too). Callers raise it outside their `except` block so its own `__context__` stays as it was.
    """

    __slots__ = ("call", "next_decision", "errors")

    def __init__(self, call: _Call, next_decision: NextDecision) -> None:
        self.call = call
        self.next_decision = next_decision
        self.errors: list[BaseException] = []

    def failed(self, error: BaseException) -> BaseException | None:
        self.call.end(error=error)
        if not isinstance(error, Exception) or isinstance(error, asyncio.CancelledError):
            return error  # cancellation, KeyboardInterrupt, SystemExit: never answered by another model
        nxt = self.next_decision(self.call.decision, error)
        self.errors.append(error)
        if nxt is None:
            first = self.errors[0]
            for later in self.errors[1:]:
                first.add_note(f"routellm: the fallback failed too: {type(later).__name__}: {later}")
            return first
        self.call = self.call.again(nxt)
        return None


def run(call: _Call, invoke: Callable[[RoutingDecision], Any], next_decision: NextDecision) -> Any:
    """Call `invoke(decision)` for the chosen model, then for each fallback while the calls fail."""
    attempts = _Attempts(call, next_decision)
    while True:
        raise_now: BaseException | None = None
        try:
            response = invoke(attempts.call.decision)
        except BaseException as e:
            raise_now = attempts.failed(e)
            if raise_now is None:
                continue
        else:
            return attempts.call.finish(response)
        raise raise_now


async def arun(call: _Call, invoke: Callable[[RoutingDecision], Any], next_decision: NextDecision) -> Any:
    """Async `run`: `invoke(decision)` returns an awaitable."""
    attempts = _Attempts(call, next_decision)
    while True:
        raise_now: BaseException | None = None
        try:
            response = await invoke(attempts.call.decision)
        except BaseException as e:
            raise_now = attempts.failed(e)
            if raise_now is None:
                continue
        else:
            return attempts.call.finish(response)
        raise raise_now


def _close(gen: Any) -> None:
    close = getattr(gen, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # closing a failed stream must not hide its error
            logger.debug("routellm: closing a failed stream raised", exc_info=True)


async def _aclose(gen: Any) -> None:
    aclose = getattr(gen, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            logger.debug("routellm: closing a failed stream raised", exc_info=True)


def _open(attempts: _Attempts, open_stream: Callable[[RoutingDecision], Any]) -> Any:
    """Open the current attempt's stream, falling back while opening raises."""
    while True:
        raise_now: BaseException | None = None
        try:
            return open_stream(attempts.call.decision)
        except BaseException as e:
            raise_now = attempts.failed(e)
            if raise_now is None:
                continue
        raise raise_now


async def _aopen(attempts: _Attempts, open_stream: Callable[[RoutingDecision], Any]) -> Any:
    while True:
        raise_now: BaseException | None = None
        try:
            return await open_stream(attempts.call.decision)
        except BaseException as e:
            raise_now = attempts.failed(e)
            if raise_now is None:
                continue
        raise raise_now


def stream(
    call: _Call, open_stream: Callable[[RoutingDecision], Any], next_decision: NextDecision
) -> Generator[Any, None, None]:
    """A stream from the chosen model that falls back while nothing was yielded yet.

    The chosen model's stream is opened now (an error raised while opening falls back right away); its first
    chunk is read when the caller first iterates, and an error before it falls back too. Once a chunk was
    yielded, errors propagate: a partial answer is never continued by another model.
    """
    attempts = _Attempts(call, next_decision)
    first_gen = _open(attempts, open_stream)

    def wrapped() -> Generator[Any, None, None]:
        gen = first_gen
        while True:
            raise_now: BaseException | None = None
            try:
                first = next(gen)
            except StopIteration:
                attempts.call.end(None)
                return
            except BaseException as e:
                _close(gen)
                raise_now = attempts.failed(e)
                if raise_now is None:
                    gen = _open(attempts, open_stream)
                    continue
            else:
                break
            raise raise_now
        yield from attempts.call.wrap_stream(_prepend(first, gen))

    return wrapped()


async def astream(
    call: _Call, open_stream: Callable[[RoutingDecision], Any], next_decision: NextDecision
) -> AsyncGenerator[Any, None]:
    """Async `stream`: `open_stream(decision)` is awaited and returns an async generator."""
    attempts = _Attempts(call, next_decision)
    first_gen = await _aopen(attempts, open_stream)

    async def wrapped() -> AsyncGenerator[Any, None]:
        gen = first_gen
        while True:
            raise_now: BaseException | None = None
            try:
                first = await gen.__anext__()
            except StopAsyncIteration:
                attempts.call.end(None)
                return
            except BaseException as e:
                await _aclose(gen)
                raise_now = attempts.failed(e)
                if raise_now is None:
                    gen = await _aopen(attempts, open_stream)
                    continue
            else:
                break
            raise raise_now
        async for chunk in attempts.call.wrap_astream(_aprepend(first, gen)):
            yield chunk

    return wrapped()


def _prepend(first: Any, gen: Any) -> Generator[Any, None, None]:
    try:
        yield first
        yield from gen
    finally:
        _close(gen)


async def _aprepend(first: Any, gen: Any) -> AsyncGenerator[Any, None]:
    try:
        yield first
        async for chunk in gen:
            yield chunk
    finally:
        await _aclose(gen)
