"""The routing policy: text -> win rate -> threshold -> one `Decision` with one payload schema, for both wrappers.

The data flow is one-way: the wrapper extracts the routing text (framework code), the policy does the rest:

1. a side forced by the caller (`"strong"`, `"weak"`, or one of the two model names) wins, router not consulted;
2. no routing text (blank, image-only, no user turn) goes to `no_text_side`, router not consulted;
3. otherwise the router's win rate is compared with the threshold: strong iff `win_rate >= threshold`.

This module is the only place that compares a win rate with a threshold (`prefers_strong`), that turns
`threshold`/`strong_fraction` into the threshold in use (`resolve_threshold`), and that picks the fallback
rule for the routing text of a conversation (`pick_routing_text`).

Extending to more than two models: subclass `RoutingPolicy`, give it the model keys in `model_names`, and
override `_score` (one number or one vector per text, computed off the event loop by `adecide`) and `_choose`
(score -> side key, the win rate to report or None, extra payload entries such as per-model predicted
qualities). Forcing, the no-text rule, the payload, logging and the async path are inherited unchanged.

Fallback (both wrappers): `fallback_sides(option)` validates a `fallback=` option, `fallback_order(decision,
allowed)` says which models to try after the chosen one raised, `is_fallback_error` which errors qualify, and
`fell_back` records it (`fallback_from`, `fallback_error` in the payload). The wrappers only make the calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from routing_core.validation import SIDES, check_side, check_strong_fraction, check_threshold

if TYPE_CHECKING:
    from routing_core.router import Router

Side = Literal["strong", "weak"]
Reason = Literal["router", "forced", "no_text"]

#: The keys of every decision payload, in order (plus the entries a multi-model policy adds in `extra`).
PAYLOAD_KEYS: tuple[str, ...] = (
    "router",
    "threshold",
    "win_rate",
    "side",
    "model_name",
    "reason",
    "source",
    "text_hash",
    "text_preview",
)
#: `source` of a decision the caller forced (the router read nothing).
FORCED_SOURCE = "caller"
#: Values meaning "let the router decide" for a forced-side argument.
AUTO = (None, "auto")
#: Characters of the routed text kept in `text_preview` (whitespace collapsed; 0 disables the preview).
PREVIEW_CHARS = 48

logger = logging.getLogger("routing_core.policy")


def prefers_strong(win_rate: float, threshold: float) -> bool:
    """The paper's rule: the strong model iff win_rate >= threshold (ties go strong)."""
    return win_rate >= threshold


def text_fingerprint(text: str | None, preview_chars: int = PREVIEW_CHARS) -> tuple[str | None, str | None]:
    """A short sha256 of the routed text and a whitespace-collapsed preview, so a decision can be audited."""
    if not text:
        return None, None
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    if preview_chars <= 0:
        return digest, None
    flat = " ".join(text.split())
    return digest, flat if len(flat) <= preview_chars else flat[: preview_chars - 1] + "…"


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision and what it was based on; `payload()` is what responses, events and logs carry.

    `Decision(win_rate, threshold)` alone applies the threshold rule (the router-level form `Router.route`
    returns); the policy fills in the rest. `side` is `"strong"`/`"weak"` for two models and a model key for more.
    """

    win_rate: float | None
    threshold: float | None
    side: str = ""
    model_name: str | None = None
    reason: Reason = "router"
    source: str = "prompt"
    router: str | None = None
    text_hash: str | None = None
    text_preview: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Derive the side from the threshold rule when it was not given."""
        if not self.side:
            if self.win_rate is None or self.threshold is None:
                raise ValueError("a Decision needs a side, or a win_rate and a threshold to derive it from")
            object.__setattr__(
                self, "side", "strong" if prefers_strong(self.win_rate, self.threshold) else "weak"
            )

    @property
    def strong(self) -> bool:
        """True when the call goes to the strong model."""
        return self.side == "strong"

    @property
    def model(self) -> str:
        """Deprecated: the side; use `side` (or `model_name` for the model's name)."""
        warnings.warn(
            "Decision.model is deprecated and ambiguous: use Decision.side ('strong'/'weak') or "
            "Decision.model_name (the chosen model's name)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.side

    def payload(self) -> dict[str, Any]:
        """The JSON-able record (a fresh dict): `PAYLOAD_KEYS` in order, then any `extra` entries."""
        out = {
            "router": self.router,
            "threshold": self.threshold,
            "win_rate": self.win_rate,
            "side": self.side,
            "model_name": self.model_name,
            "reason": self.reason,
            "source": self.source,
            "text_hash": self.text_hash,
            "text_preview": self.text_preview,
        }
        if self.extra:
            out.update(self.extra)
        return out

    def to_payload(self) -> dict[str, Any]:
        """Alias of `payload()` (the LlamaIndex wrapper's historical name)."""
        return self.payload()

    @property
    def fallback_from(self) -> str | None:
        """The side that failed before this one answered (None when no fallback happened)."""
        value = self.extra.get("fallback_from") if self.extra else None
        return value if isinstance(value, str) else None


def decide(win_rate: float, threshold: float) -> Decision:
    """Turn one win rate into a router-level decision (the threshold rule; no model names)."""
    return Decision(float(win_rate), float(threshold))


def resolve_threshold(
    router: Router, threshold: Any = None, strong_fraction: Any = None, owner: str = "the policy"
) -> float:
    """The threshold in use: `threshold` itself, or the one sending `strong_fraction` of reference prompts strong.

    Exactly one of the two must be given; both are validated (finite, in [0, 1]).
    """
    if threshold is None and strong_fraction is None:
        raise ValueError(
            f"{owner} needs a threshold: pass threshold=<float in [0, 1]> (strong iff win_rate >= threshold) or "
            "strong_fraction=<float in [0, 1]> (the target share of strong calls); got neither"
        )
    if threshold is not None and strong_fraction is not None:
        raise ValueError(
            f"{owner} needs exactly one of threshold or strong_fraction, got both (threshold={threshold!r}, "
            f"strong_fraction={strong_fraction!r}); strong_fraction is turned into a threshold"
        )
    if threshold is not None:
        return check_threshold(threshold)
    return check_threshold(router.threshold_for_strong_fraction(check_strong_fraction(strong_fraction)))


def pick_routing_text(turns: Iterable[tuple[bool, str | None]]) -> tuple[str, str]:
    """The text to route a conversation on, and where it came from, from `(is_user, text)` pairs in order.

    The last user turn with non-blank text (`"last_user_message"`); when the last user turn has none (e.g. an
    image only), the closest earlier user turn with text (`"earlier_user_message"`). Assistant, system and tool
    turns never count, so every step of a tool loop is routed on the user's request. Without user text the
    result is `("", "no_user_text")`, which the policy sends to its no-text side.
    """
    seen_user = False
    for is_user, text in reversed(list(turns)):
        if not is_user:
            continue
        if text and text.strip():
            return text, "earlier_user_message" if seen_user else "last_user_message"
        seen_user = True
    return "", "no_user_text"


#: `fallback=` values meaning "never send a failed call to another model" (the original error is re-raised).
NO_FALLBACK = (None, False, "none")
#: `fallback=` value meaning "every other model, in the policy's order".
FALLBACK_OTHER = "other"


def is_fallback_error(
    error: BaseException, fallback_on: tuple[type[BaseException], ...] = (Exception,)
) -> bool:
    """Whether a provider error may be answered by another model.

    Only errors of the `fallback_on` types count (default: any `Exception`, e.g. HTTP 5xx/429, timeouts,
    connection errors); cancellation, `KeyboardInterrupt` and `SystemExit` never do, nor a `CallArgumentError`
    (a call argument the wrapper refused: the caller's mistake, which another model would not fix).
    """
    from routing_core.errors import CallArgumentError

    if not isinstance(error, Exception) or isinstance(error, asyncio.CancelledError | CallArgumentError):
        return False
    return isinstance(error, fallback_on)


def check_fallback_on(value: Any) -> tuple[type[BaseException], ...]:
    """Validate `fallback_on`: an exception class or a tuple/list of them (default `(Exception,)`)."""
    if value is None:
        return (Exception,)
    items = (value,) if isinstance(value, type) else tuple(value) if isinstance(value, list | tuple) else None
    if not items or not all(isinstance(t, type) and issubclass(t, BaseException) for t in items):
        raise ValueError(f"fallback_on must be an exception class or a tuple of them, got {value!r}")
    return items


class RoutingPolicy:
    """Forced sides, the no-text rule, the payload and the async path, shared by every policy (see the module doc).

    Subclasses implement `_score(text)` (the router's work; may be slow, runs in a thread for async callers) and
    `_choose(text, score)`. `TwoModelPolicy` is the paper's threshold rule over a strong and a weak model.
    """

    def __init__(
        self,
        router: Router,
        model_names: Mapping[str, str],
        *,
        no_text_side: str,
        router_name: str | None = None,
        threshold: float | None = None,
        preview_chars: int = PREVIEW_CHARS,
    ) -> None:
        self.router = router
        self.model_names = dict(model_names)
        self.sides: tuple[str, ...] = tuple(self.model_names)
        self.no_text_side = check_side(no_text_side, "no_text_side", self.sides)
        self.router_name = router_name or router.name
        self.threshold = threshold
        self.preview_chars = int(preview_chars)

    # --- what subclasses provide ------------------------------------------------------------------------

    def _score(self, text: str) -> Any:
        """The router's estimate for one text (a win rate for two models)."""
        raise NotImplementedError

    def _choose(self, text: str, score: Any) -> tuple[str, float | None, Mapping[str, Any]]:
        """Score -> (side, the win rate to report or None, extra payload entries)."""
        raise NotImplementedError

    async def _ascore(self, text: str) -> Any:
        """`_score` off the event loop (a worker thread); subclasses may batch concurrent callers instead."""
        return await asyncio.to_thread(self._score, text)

    # --- the shared pipeline ----------------------------------------------------------------------------

    def forced_side(self, requested: Any) -> str | None:
        """The side a caller forced: a side name or a (unique) model name; None/"auto" lets the router decide."""
        if requested in AUTO:
            return None
        if isinstance(requested, str):
            if requested in self.sides:
                return requested
            matches = [s for s in self.sides if self.model_names[s] == requested]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise ValueError(
                    f"model {requested!r} names more than one routed model; force a side: {self._choices()}"
                )
        raise ValueError(f"cannot force the routed model to {requested!r}: use {self._choices()} or 'auto'")

    def _choices(self) -> str:
        names = [repr(s) for s in self.sides] + [repr(n) for n in dict.fromkeys(self.model_names.values())]
        return ", ".join(names)

    def make(
        self,
        side: str,
        reason: Reason,
        source: str,
        text: str | None = None,
        win_rate: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Build a decision for `side` with this policy's router, threshold and model name."""
        text_hash, preview = text_fingerprint(text, self.preview_chars)
        decision = Decision(
            win_rate=win_rate,
            threshold=self.threshold,
            side=side,
            model_name=self.model_names[side],
            reason=reason,
            source=source,
            router=self.router_name,
            text_hash=text_hash,
            text_preview=preview,
            extra=dict(extra or {}),
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "route: %s -> %s (%s, win_rate=%s, source=%s)",
                self.router_name,
                side,
                reason,
                win_rate,
                source,
            )
        return decision

    def plan(self, text: str | None, source: str, forced: Any = None) -> Decision | None:
        """A finished decision when the router is not needed (forced, no text), else None."""
        side = self.forced_side(forced)
        if side is not None:
            return self.make(side, "forced", FORCED_SOURCE)
        if text is None or not text.strip():
            return self.make(self.no_text_side, "no_text", source)
        return None

    def finish(self, text: str, source: str, score: Any) -> Decision:
        """The decision for a scored text."""
        side, win_rate, extra = self._choose(text, score)
        return self.make(side, "router", source, text, win_rate, extra)

    def decide(self, text: str | None, source: str = "prompt", forced: Any = None) -> Decision:
        """Decide for one routing text (None or blank: the no-text side); `forced` overrides the router."""
        early = self.plan(text, source, forced)
        if early is not None:
            return early
        assert text is not None
        return self.finish(text, source, self._score(text))

    async def adecide(self, text: str | None, source: str = "prompt", forced: Any = None) -> Decision:
        """Async `decide`: the router runs in a worker thread, so the event loop never waits on it.

        Concurrent calls score in parallel threads; an embedder that micro-batches concurrent single-prompt
        calls (routing_core.embedders) then embeds them together.
        """
        early = self.plan(text, source, forced)
        if early is not None:
            return early
        assert text is not None
        return self.finish(text, source, await self._ascore(text))

    def decide_lazy(self, text_fn: Callable[[], tuple[str | None, str]], forced: Any = None) -> Decision:
        """`decide` with the text extracted only when needed (a forced call never reads the messages)."""
        if self.forced_side(forced) is not None:
            return self.decide(None, FORCED_SOURCE, forced)
        text, source = text_fn()
        return self.decide(text, source)

    async def adecide_lazy(
        self, text_fn: Callable[[], tuple[str | None, str]], forced: Any = None
    ) -> Decision:
        """Async `decide_lazy`."""
        if self.forced_side(forced) is not None:
            return self.decide(None, FORCED_SOURCE, forced)
        text, source = text_fn()
        return await self.adecide(text, source)

    def fallback_sides(self, fallback: Any) -> tuple[str, ...] | None:
        """Validate a `fallback=` option once (at construction): None when off, else the sides it may use.

        `None`/`False`/`"none"`: off. `"other"`: every other model, in the policy's order (the one other model
        for two). A list of sides or model names: those, in that order (for more than two models).
        """
        if fallback in NO_FALLBACK:
            return None
        if fallback == FALLBACK_OTHER:
            return self.sides
        if isinstance(fallback, str) or not isinstance(fallback, list | tuple) or not fallback:
            raise ValueError(
                f"fallback must be None (off), {FALLBACK_OTHER!r} or a non-empty list of models from "
                f"{self._choices()}; got {fallback!r}"
            )
        out: list[str] = []
        for item in fallback:
            try:
                side = self.forced_side(item)
            except ValueError:
                side = None
            if side is None:
                raise ValueError(
                    f"fallback names {item!r}, which is not a routed model: use {self._choices()}"
                )
            if side not in out:
                out.append(side)
        return tuple(out)

    def fallback_order(self, decision: Decision, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
        """The sides to try, in order, after `decision.side` failed (empty when fallback is off)."""
        if not allowed:
            return ()
        return tuple(s for s in allowed if s != decision.side)

    def fell_back(self, decision: Decision, side: str, error: BaseException) -> Decision:
        """`decision` answered by `side` instead: the payload keeps the original decision and adds
        `fallback_from` (the side that failed first) and `fallback_error` (its exception type)."""
        first = decision.fallback_from or decision.side
        extra = {**decision.extra, "fallback_from": first, "fallback_error": type(error).__name__}
        if logger.isEnabledFor(logging.INFO):
            logger.info("fallback: %s failed (%s), %s answers", decision.side, type(error).__name__, side)
        return dataclasses.replace(decision, side=side, model_name=self.model_names[side], extra=extra)

    def describe(self) -> dict[str, Any]:
        """What identifies this policy's behaviour (for tracing and cache keys)."""
        return {
            "policy": type(self).__name__,
            "router": self.router.describe(),
            "threshold": self.threshold,
            "models": dict(self.model_names),
            "no_text_side": self.no_text_side,
        }


class TwoModelPolicy(RoutingPolicy):
    """The paper's policy: strong iff the router's win rate >= the threshold (given, or from `strong_fraction`)."""

    def __init__(
        self,
        router: Router,
        strong_model: str,
        weak_model: str,
        *,
        threshold: float | None = None,
        strong_fraction: float | None = None,
        no_text_side: str = "strong",
        router_name: str | None = None,
        preview_chars: int = PREVIEW_CHARS,
        owner: str = "the routing policy",
    ) -> None:
        resolved = resolve_threshold(router, threshold, strong_fraction, owner)
        super().__init__(
            router,
            {"strong": strong_model, "weak": weak_model},
            no_text_side=no_text_side,
            router_name=router_name,
            threshold=resolved,
            preview_chars=preview_chars,
        )
        self.strong_fraction = None if strong_fraction is None else check_strong_fraction(strong_fraction)

    @property
    def cutoff(self) -> float:
        """The threshold in use (always set for two models)."""
        assert self.threshold is not None
        return self.threshold

    def _score(self, text: str) -> float:
        return float(self.router.win_rate([text])[0])

    async def _ascore(self, text: str) -> float:
        """Concurrent async decisions share one batched `win_rate` pass (routing_core.serving), off the loop."""
        from routing_core.serving import awin_rate  # serving imports router, which imports this module

        return float((await awin_rate(self.router, [text]))[0])

    def _choose(self, text: str, score: Any) -> tuple[str, float | None, Mapping[str, Any]]:
        win_rate = float(score)
        return ("strong" if prefers_strong(win_rate, self.cutoff) else "weak"), win_rate, {}


__all__ = [
    "AUTO",
    "FALLBACK_OTHER",
    "FORCED_SOURCE",
    "NO_FALLBACK",
    "PAYLOAD_KEYS",
    "SIDES",
    "Decision",
    "Reason",
    "RoutingPolicy",
    "Side",
    "TwoModelPolicy",
    "check_fallback_on",
    "decide",
    "is_fallback_error",
    "pick_routing_text",
    "prefers_strong",
    "resolve_threshold",
    "text_fingerprint",
]
