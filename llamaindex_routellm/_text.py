"""Text extraction for the LlamaIndex wrapper: what a chat, a prompt or a response says, as plain text.

The routing rule itself (which turn counts) is the core policy's `pick_routing_text`; this module only turns
LlamaIndex messages into the `(is_user, text)` pairs it reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
)

from routing_core.policy import pick_routing_text


def _message_text(message: ChatMessage) -> str | None:
    """The text of a message (its text blocks joined), or None when it has no non-blank text."""
    parts = [b.text for b in message.blocks if isinstance(b, TextBlock)]
    text = "\n".join(p for p in parts if p)
    return text if text.strip() else None


def _check_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    if isinstance(messages, ChatMessage | str | bytes):
        raise TypeError("messages must be a sequence of ChatMessage, not a single message; wrap it in a list")
    items = list(messages)
    if not items:
        raise ValueError("RoutedLLM got no messages: a chat call needs at least one ChatMessage")
    for i, m in enumerate(items):
        if not isinstance(m, ChatMessage):
            raise TypeError(f"messages[{i}] must be a ChatMessage, got {type(m).__name__}")
    return items


def _route_text_from_messages(messages: Sequence[ChatMessage]) -> tuple[str | None, str]:
    """What to route a chat on, by the policy's rule (`routing_core.policy.pick_routing_text`): the last user
    message with text, else an earlier user message with text; other roles never count."""
    return pick_routing_text((m.role == MessageRole.USER, _message_text(m)) for m in messages)


def _messages_text(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(f"{m.role.value}: {m.content or ''}" for m in messages)


def _response_text(response: ChatResponse | CompletionResponse) -> str:
    if isinstance(response, ChatResponse):
        return response.message.content or ""
    return response.text or ""
