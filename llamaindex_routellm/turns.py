"""One routing decision per turn: an agent run or a chat-engine turn is routed once, on the user's message.

A LlamaIndex agent or chat engine makes several LLM calls for one user message: a ReAct agent one per reasoning
step (its formatter adds each tool observation as a *user* message), a function agent one per tool round, a
`condense_plus_context` chat engine a condense `complete()` on the history-stuffed prompt and then the answer.
Routed call by call, one turn would hop between the two models (`'Observation: 5'` routed on its own). Inside a
turn, `RoutedLLM` (with `route_per="turn"`, the default) decides once, on the turn's user message, and sends every
call of the turn to that side:

* a chat engine turn: `chat`, `achat`, `stream_chat`, `astream_chat` of any `BaseChatEngine` (simple, context,
  condense_question, condense_plus_context, ...), routed on its `message`;
* an agent run: `run()` of a workflow agent (`FunctionAgent`, `ReActAgent`, `CodeActAgent`) or an
  `AgentWorkflow`, routed on `user_msg` (else the last user message of `chat_history`);
* your own block: `with routed_turn("the user's question"):` (or `routed_turn()` to let the first call's own
  text decide) around any code, e.g. a custom workflow step or several `llm.predict` calls.

Turns are found with LlamaIndex's instrumentation: a span handler on the root dispatcher sees the span of the
chat-engine method or the workflow run open, and puts the turn in a context variable that the calls made inside
(in the same thread, asyncio tasks and LlamaIndex threads started from it) read. Nested turns join the outer one
(a chat engine used as a tool inside an agent run follows the agent's decision). Each `RoutedLLM` of the turn
gets its own decision; a forced call (`routellm_model=...`) is forced for that call only. Without a usable user
message (an image only, a resumed run), the first routed call of the turn decides on its own text. After a
fallback inside a turn, the rest of the turn stays on the side that answered.

Every call still dispatches its own `RoutingDecisionEvent` / `RoutedCallEndEvent` (calls and tokens are counted
per call) with a fresh `decision_id`, and all of them carry the turn's `turn_id` and the same decision. Pass
`route_per="call"` to `RoutedLLM` to route every call on its own text instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

from llamaindex_routellm._text import _message_text

if TYPE_CHECKING:
    from llamaindex_routellm.events import RoutingDecision

__all__ = ["TURN_SOURCE", "Turn", "TurnSpanHandler", "current_turn", "install_turn_tracking", "routed_turn"]

#: `source` of a decision made on a turn's user message.
TURN_SOURCE = "turn_message"

_CHAT_METHODS = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_SPAN_ID = re.compile(r"^(?P<cls>[^.]+)\.(?P<method>[A-Za-z_]\w*)-[0-9a-f-]{36}$")


class Turn:
    """One user turn: the text to route on, and the decision each routed LLM made for it (made once)."""

    __slots__ = ("turn_id", "text", "kind", "owner", "closed", "_lock", "_decisions", "_deciding")

    def __init__(self, text: str | None, kind: str, owner: Any = None) -> None:
        self.turn_id = uuid.uuid4().hex
        self.text = text if text and text.strip() else None
        self.kind = kind
        self.owner = owner
        self.closed = False
        self._lock = threading.Lock()
        self._decisions: dict[int, tuple[Any, RoutingDecision]] = {}
        # per routed LLM: a lock held while its turn decision is made (threads), and one per event loop (tasks)
        self._deciding: dict[Any, Any] = {}

    def decision(self, llm: Any) -> RoutingDecision | None:
        """The decision `llm` made in this turn, if any."""
        with self._lock:
            entry = self._decisions.get(id(llm))
        return entry[1] if entry is not None and entry[0] is llm else None

    def deciding(self, llm: Any) -> threading.Lock:
        """The lock under which `llm` makes its decision for the turn (concurrent calls of one turn wait)."""
        with self._lock:
            lock = self._deciding.get(id(llm))
            if lock is None:
                lock = self._deciding[id(llm)] = threading.Lock()
            return lock  # type: ignore[no-any-return]

    def adeciding(self, llm: Any) -> asyncio.Lock:
        """`deciding` for asyncio tasks of the running event loop."""
        key = (id(llm), id(asyncio.get_running_loop()))
        with self._lock:
            lock = self._deciding.get(key)
            if lock is None:
                lock = self._deciding[key] = asyncio.Lock()
            return lock  # type: ignore[no-any-return]

    def keep(self, llm: Any, decision: RoutingDecision, replace: bool = False) -> RoutingDecision:
        """Store `llm`'s decision for the turn; the first one stored wins unless `replace` (after a fallback)."""
        with self._lock:
            entry = self._decisions.get(id(llm))
            if entry is not None and entry[0] is llm and not replace:
                return entry[1]
            self._decisions[id(llm)] = (llm, decision)
            return decision

    def __repr__(self) -> str:
        return f"Turn({self.kind}, id={self.turn_id[:8]}, text={self.text!r:.40})"


_TURN: ContextVar[Turn | None] = ContextVar("routellm_turn", default=None)


def current_turn() -> Turn | None:
    """The turn the running code belongs to (None outside an agent run, a chat-engine turn or `routed_turn`)."""
    turn = _TURN.get()
    return None if turn is None or turn.closed else turn


@contextmanager
def routed_turn(message: str | ChatMessage | None = None) -> Iterator[Turn]:
    """Group the calls made inside the block into one turn, routed once on `message`.

    Without `message`, the first routed call of the block decides on its own text. Inside an agent run or a
    chat-engine turn the block joins that turn.

    Examples:
        ```python
        from llamaindex_routellm import routed_turn

        with routed_turn(question):
            plan = llm.complete(f"Plan how to answer: {question}")
            answer = llm.complete(f"{plan}\\n\\nNow answer: {question}")  # same model as the plan
        ```
    """
    outer = current_turn()
    if outer is not None:
        yield outer
        return
    turn = Turn(_text_of(message), "explicit")
    token = _TURN.set(turn)
    try:
        yield turn
    finally:
        turn.closed = True
        _TURN.reset(token)


def _text_of(message: Any) -> str | None:
    if isinstance(message, str):
        return message
    if isinstance(message, ChatMessage):
        return _message_text(message)
    return None


def _history_text(history: Any) -> str | None:
    if not isinstance(history, list | tuple):
        return None
    for m in reversed(history):
        if isinstance(m, ChatMessage) and m.role == MessageRole.USER:
            text = _message_text(m)
            if text:
                return text
    return None


@functools.cache
def _agent_classes() -> tuple[type, ...]:
    try:
        from llama_index.core.agent.workflow import AgentWorkflow, BaseWorkflowAgent
    except Exception:  # pragma: no cover - workflows not installed
        return ()
    return (BaseWorkflowAgent, AgentWorkflow)


@functools.cache
def _chat_engine_class() -> type | None:
    try:
        from llama_index.core.chat_engine.types import BaseChatEngine
    except Exception:  # pragma: no cover
        return None
    return BaseChatEngine


def _turn_for_span(id_: str, bound_args: inspect.BoundArguments, instance: Any) -> Turn | None:
    """The turn a span opens (a chat-engine chat method, an agent workflow run), or None."""
    if instance is None:
        return None
    match = _SPAN_ID.match(id_)
    if match is None:
        return None
    method = match.group("method")
    engine = _chat_engine_class()
    if engine is not None and isinstance(instance, engine):
        if method not in _CHAT_METHODS:
            return None
        args = bound_args.arguments
        return Turn(_text_of(args.get("message")), "chat_engine", instance)
    agents = _agent_classes()
    if agents and isinstance(instance, agents) and method == "run":
        start = bound_args.arguments.get("start_event")
        text = None
        if start is not None:
            getter = getattr(start, "get", None)
            if callable(getter):
                text = _text_of(getter("user_msg", None)) or _history_text(getter("chat_history", None))
        return Turn(text, "agent", instance)
    return None


class TurnSpanHandler(BaseSpanHandler[Any]):
    """Opens a `Turn` when a chat-engine turn or an agent run starts, closes it when that span ends.

    Installed once on the root instrumentation dispatcher (`install_turn_tracking`); it keeps no spans other
    than the open turns, and never raises into the traced code.
    """

    _turns: dict[str, tuple[Turn, Token[Turn | None]]] = PrivateAttr(default_factory=dict)
    _turns_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RouteLLMTurnSpanHandler"

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open a turn for a chat-engine turn or an agent run (nested ones join the open turn)."""
        if current_turn() is not None:
            return
        turn = _turn_for_span(id_, bound_args, instance)
        if turn is None:
            return
        token = _TURN.set(turn)
        with self._turns_lock:
            self._turns[id_] = (turn, token)

    def _end(self, id_: str) -> None:
        with self._turns_lock:
            entry = self._turns.pop(id_, None)
        if entry is None:
            return
        turn, token = entry
        try:
            _TURN.reset(token)
        except ValueError:
            # the span ended in another context (a future's callback): that context never saw the turn, and
            # the one that did must not keep using it
            turn.closed = True

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        """Close the turn the span opened."""
        self._end(id_)

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        """Close the turn the span opened (it failed)."""
        self._end(id_)

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        """Unused: this handler tracks turns only."""
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        """Unused."""
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        """Unused."""
        return None


_INSTALL_LOCK = threading.Lock()


def install_turn_tracking() -> TurnSpanHandler:
    """Put the `TurnSpanHandler` on the root dispatcher (once; again if it was removed). Returns it."""
    root = get_dispatcher()
    with _INSTALL_LOCK:
        for h in root.span_handlers:
            if isinstance(h, TurnSpanHandler):
                return h
        handler = TurnSpanHandler()
        root.add_span_handler(handler)
        return handler
