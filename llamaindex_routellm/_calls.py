"""Per-call bookkeeping of the LlamaIndex wrapper: one routed call's decision event, tagged responses, and its end
event with token usage (exactly once, for plain calls and streams alike)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.base.llms.types import ChatResponse, CompletionResponse
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
        logger.debug(
            "routellm %s -> %s (%s, win rate %s, threshold %.4f, %s)",
            call,
            decision.side,
            decision.model,
            decision.win_rate,
            decision.threshold,
            decision.reason,
        )
        dispatcher.event(RoutingDecisionEvent.from_decision(decision, call))

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
            )
        )
