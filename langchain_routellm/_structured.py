"""Structured output for `RoutedChatModel` with provider-specific methods (`json_schema`, `json_mode`).

`function_calling` needs nothing from here: tools are bound neutrally and parsed from `AIMessage.tool_calls`, which
every provider fills the same way. The other methods are provider dialects (OpenAI `response_format`, ...), so each
side's own `with_structured_output` is asked once for its binding kwargs and its parser; at call time the chosen
side's kwargs are forwarded, and the answer is parsed with the parser of the side that produced it (read from
`response_metadata["routellm"]["side"]`). A side is "strong"/"weak", or a routing key for N models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableSequence

from langchain_routellm._routing import METADATA_KEY

#: Private call keyword carrying a `StructuredSpec` (bound by `RoutedChatModel.with_structured_output`).
STRUCTURED_KWARG = "_routellm_structured"


def _split(
    runnable: Runnable, model: BaseChatModel, side: str, method: str
) -> tuple[dict[str, Any], Runnable]:
    """Split `model.with_structured_output(...)` into (binding kwargs, parser)."""
    if isinstance(runnable, RunnableSequence):
        first, rest = runnable.first, [*runnable.middle, runnable.last]
        if isinstance(first, RunnableBinding) and first.bound is model:
            kwargs = {k: v for k, v in first.kwargs.items() if k not in ("ls_structured_output_format",)}
            parser: Runnable = rest[0] if len(rest) == 1 else RunnableSequence(*rest)
            return kwargs, parser
    raise NotImplementedError(
        f"cannot route with_structured_output(method={method!r}) to the {side} model {type(model).__name__}: its "
        "with_structured_output does not have the usual `model.bind(...) | parser` shape. Use "
        "method='function_calling' (portable across providers)."
    )


class StructuredSpec:
    """Per-side binding kwargs and parsers for one `with_structured_output(schema, method=...)` call."""

    __slots__ = ("_key", "kwargs", "method", "parsers", "schema")

    def __init__(
        self,
        schema: Any,
        method: str,
        models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]],
        options: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.method = method
        self.kwargs: dict[str, dict[str, Any]] = {}
        self.parsers: dict[str, Runnable] = {}
        for side, given in models.items():
            members = [given] if isinstance(given, BaseChatModel) else list(given)
            for i, model in enumerate(members):
                try:
                    runnable = model.with_structured_output(
                        schema, method=method, include_raw=False, **options
                    )
                except NotImplementedError as e:
                    raise NotImplementedError(
                        f"the {side} model {type(model).__name__} does not support structured output with "
                        f"method={method!r}; use method='function_calling'"
                    ) from e
                kwargs, parser = _split(runnable, model, side, method)
                if i == 0:
                    self.kwargs[side], self.parsers[side] = kwargs, parser
                elif type(model) is not type(members[0]) or kwargs != self.kwargs[side]:
                    # one parser per side: the answer does not say which of the side's models wrote it
                    raise NotImplementedError(
                        f"cannot route with_structured_output(method={method!r}): the {side} side's models "
                        f"({', '.join(type(m).__name__ for m in members)}) need different {method} requests; "
                        "use method='function_calling' (portable across providers)"
                    )
        # Stable across processes (no object addresses): langchain-core puts call kwargs into LLM cache keys.
        self._key = json.dumps({"method": method, "kwargs": self.kwargs}, sort_keys=True, default=str)

    def __repr__(self) -> str:
        return f"StructuredSpec({self._key})"

    def _side(self, message: BaseMessage) -> str:
        record = message.response_metadata.get(METADATA_KEY) if isinstance(message, BaseMessage) else None
        side = record.get("side") if isinstance(record, dict) else None
        if not isinstance(side, str) or side not in self.parsers:
            raise ValueError(
                "cannot parse structured output: the message has no response_metadata['routellm']['side'] naming "
                "a routed model (was it produced by RoutedChatModel?)"
            )
        return side

    def parse(self, message: BaseMessage, config: RunnableConfig) -> Any:
        return self.parsers[self._side(message)].invoke(message, config)

    async def aparse(self, message: BaseMessage, config: RunnableConfig) -> Any:
        return await self.parsers[self._side(message)].ainvoke(message, config)
