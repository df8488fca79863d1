"""Judge-labelled battles from your own prompts: strong answer, weak answer, judge verdict -> JSONL battles.

For each prompt the strong and the weak model answer (concurrently), then a judge grades them and one battle
`{id, prompt, model_a: STRONG, model_b: WEAK, winner}` is appended to the output file, the format that
`routing-core train --data battles:FILE` reads (plus the answers, the judge's verdict, tokens and cost).

Two judge set-ups (see docs/training.md, "Labelling your own traffic"):

- `grade` (default, the paper's): the judge grades the weak answer 1-5 with the strong answer as the reference
  (`[[rating]]`); a grade >= `weak_wins_at` (4, RouteLLM's causal-router threshold) means the weak model was good
  enough, so the weak model wins, else the strong one. One judge call per prompt, and no position bias since
  the judge compares against a fixed reference rather than choosing between two slots.
- `pairwise`: the judge picks the better of two answers (`[[A]]`, `[[B]]` or `[[C]]` for a tie), asked twice
  with the answers swapped; agreeing verdicts stand, disagreeing ones become a tie (position bias cancels).

Operational guarantees: at most `concurrency` model calls in flight and at most `max_rps` call starts per second;
429/408/409/5xx and connection errors are retried with exponential backoff and jitter (honouring Retry-After);
every finished prompt is appended as one line with fsync, so a kill leaves a readable file and a rerun skips
what is done (by id) and never writes a prompt twice; every prompt ends either labelled or in the errors file
with its stage and reason. The cost is estimated before the first call, and the spend so far shows on the bar.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from routing_core.costs import PriceTable, count_tokens
from routing_core.data.loaders import first_turn, read_jsonl, read_text
from routing_core.errors import DataError, RoutingError

_log = logging.getLogger("routing_core.labeling")

JudgeMode = Literal["grade", "pairwise"]
JUDGE_MODES: tuple[str, ...] = ("grade", "pairwise")

GRADE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to "
    "the user question displayed below. You will be given a reference answer and the assistant's answer. Your "
    "evaluation should consider correctness, helpfulness, relevance and level of detail, using the reference "
    "answer as the standard of a good response. Begin with a short explanation, then rate the response on a "
    'scale of 1 to 5 by strictly following this format: "[[rating]]", for example: "Rating: [[4]]".'
)
GRADE_TEMPLATE = (
    "[User Question]\n{prompt}\n\n[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)
PAIRWISE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. Choose the assistant that follows the user's instructions and "
    "answers the user's question better. Do not let the order in which the responses were presented or their "
    "length influence your decision. Begin with a short explanation, then output your final verdict by "
    'strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and '
    '"[[C]]" for a tie.'
)
PAIRWISE_TEMPLATE = (
    "[User Question]\n{prompt}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's "
    "Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
_RATING = re.compile(r"\[\[\s*([1-5])(?:\.0+)?\s*\]\]")
_RATING_LOOSE = re.compile(r"rating\s*[:=]?\s*\**\s*([1-5])\b", re.IGNORECASE)
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
RETRY_STATUS = frozenset({408, 409, 425, 429})
_RETRY_NAMES = ("ratelimit", "timeout", "connection", "overloaded", "serviceunavailable", "internalserver")


class LabelingError(RoutingError):
    """Labelling cannot start: bad arguments, an estimate over `max_cost`, or an unusable output file."""


@dataclass(frozen=True, slots=True)
class PromptItem:
    """One prompt to label and its id (from the input, else a hash of the text, so reruns find it again)."""

    id: str
    prompt: str


def prompt_id(prompt: str) -> str:
    """The default id of a prompt: `sha1:` + 16 hex digits of its text (stable across runs and file orders)."""
    return "sha1:" + hashlib.sha1(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def as_items(prompts: Iterable[str | PromptItem | Mapping[str, Any]]) -> tuple[list[PromptItem], int]:
    """Prompt items from strings, items or `{prompt, id?}` dicts; duplicates (same id) are dropped and counted.

    Raises DataError when two different prompts share one id, or a prompt is empty or not a string.
    """
    seen: dict[str, str] = {}
    out: list[PromptItem] = []
    dups = 0
    for n, p in enumerate(prompts, 1):
        if isinstance(p, PromptItem):
            item = p
        elif isinstance(p, str):
            item = PromptItem(prompt_id(p), p)
        elif isinstance(p, Mapping) and "prompt" in p:
            text = first_turn(p["prompt"])
            item = PromptItem(str(p["id"]) if p.get("id") not in (None, "") else prompt_id(text), text)
        else:
            raise DataError(
                "prompts",
                f"item {n}: expected a string or a mapping with a 'prompt' key, got {type(p).__name__}",
            )
        if not isinstance(item.prompt, str) or not item.prompt.strip():
            raise DataError("prompts", f"item {n} (id {item.id!r}): empty prompt")
        if item.id in seen:
            if seen[item.id] != item.prompt:
                raise DataError("prompts", f"item {n}: id {item.id!r} is used by two different prompts")
            dups += 1
            continue
        seen[item.id] = item.prompt
        out.append(item)
    return out, dups


def read_prompt_items(path: str | Path) -> tuple[list[PromptItem], int]:
    """Prompts to label from a file: JSONL with `prompt` (and optional `id`), a JSON list, or one per line."""
    p = Path(path)
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return as_items(read_jsonl(p, ["prompt"]))
    text = read_text(p)
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(p, f"invalid JSON ({e.msg})") from e
        if not isinstance(data, list):
            raise DataError(p, "expected a JSON list of prompts")
        return as_items(data)
    return as_items([line for line in text.splitlines() if line.strip()])


# --- models ------------------------------------------------------------------------------------------------


def model_label(model: Any) -> str:
    """A model's name for battles and prices: a string spec without its provider prefix, else the object's
    LangSmith model name, `model_name` or `model` attribute, else its class name."""
    if isinstance(model, str):
        return model.split(":", 1)[1] if ":" in model else model
    try:
        name = model._get_ls_params().get("ls_model_name")
        if isinstance(name, str) and name:
            return name
    except Exception:  # noqa: BLE001 - any model may lack LangSmith params
        pass
    for attr in ("model_name", "model", "model_id"):
        v = getattr(model, attr, None)
        if isinstance(v, str) and v:
            return v
    return type(model).__name__


def resolve_chat_model(spec: Any, **kwargs: Any) -> Any:
    """A LangChain chat model from an object (returned as is) or a `provider:model` string.

    Strings go through `langchain.chat_models.init_chat_model` when the `langchain` package is installed; else
    `openai:` and `anthropic:` are built directly (langchain-openai / langchain-anthropic). Those two get
    `max_retries=0` unless given, so that the labeller's backoff is the only retry loop.
    """
    if not isinstance(spec, str):
        if not hasattr(spec, "ainvoke"):
            raise LabelingError(
                f"model {spec!r} is neither a LangChain chat model nor a 'provider:model' string"
            )
        return spec
    init_chat_model: Any = None
    try:
        from langchain.chat_models import init_chat_model  # type: ignore[import-not-found, no-redef, unused-ignore]
    except ImportError:
        pass
    provider, _, name = spec.partition(":")
    if provider in ("openai", "anthropic"):
        kwargs.setdefault(
            "max_retries", 0
        )  # the labeller retries with backoff; the client's retries would compound
    if init_chat_model is not None:
        return init_chat_model(spec, **kwargs)
    if not name:
        raise LabelingError(
            f"model {spec!r}: give 'provider:model' (e.g. openai:gpt-4o), or install `langchain`"
        )
    try:
        if provider == "openai":
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(model=name, **kwargs)
        if provider == "anthropic":
            from langchain_anthropic import ChatAnthropic

            return ChatAnthropic(model=name, **kwargs)  # type: ignore[call-arg]
    except ImportError as e:
        raise LabelingError(f"model {spec!r} needs `pip install langchain-{provider}` ({e})") from e
    raise LabelingError(
        f"model {spec!r}: provider {provider!r} needs `pip install langchain` (init_chat_model)"
    )


# --- retries and rate limit ----------------------------------------------------------------------------------


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of a provider error (openai, anthropic, httpx style), or None."""
    for obj in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "status", "http_status"):
            v = getattr(obj, attr, None)
            if isinstance(v, int) and 100 <= v < 600:
                return v
    return None


def is_retryable(exc: BaseException) -> bool:
    """Rate limits (429), timeouts and conflicts (408/409/425), server errors (5xx) and connection errors."""
    status = error_status(exc)
    if status is not None:
        return status in RETRY_STATUS or status >= 500
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    names = [c.__name__.lower() for c in type(exc).__mro__]
    return any(key in n for n in names for key in _RETRY_NAMES)


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header of the error's response (seconds form only), or None."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt k waits U(0, min(cap, base * 2**k)), or Retry-After."""

    max_attempts: int = 6
    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, exc: BaseException, rng: random.Random) -> float:
        hinted = retry_after(exc)
        if hinted is not None:
            return min(self.cap, hinted)
        return rng.uniform(0, min(self.cap, self.base * 2**attempt))


class RateLimiter:
    """At most `rps` call starts per second across all tasks (evenly spaced); None means unlimited."""

    def __init__(self, rps: float | None) -> None:
        if rps is not None and not rps > 0:
            raise LabelingError(f"max_rps must be > 0, got {rps!r}")
        self.interval = 0.0 if rps is None else 1.0 / rps
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


class CallFailed(Exception):
    """A model call that failed for good: its stage, reason, HTTP status and number of attempts."""

    def __init__(self, stage: str, exc: BaseException, attempts: int) -> None:
        self.stage, self.exc, self.attempts = stage, exc, attempts
        self.status = error_status(exc)
        gave_up = f"gave up after {attempts} attempts: " if attempts > 1 else ""
        self.reason = f"{gave_up}{type(exc).__name__}: {str(exc)[:500]}"
        super().__init__(f"{stage}: {self.reason}")


# --- cost ------------------------------------------------------------------------------------------------------


@dataclass
class CostEstimate:
    """Estimated tokens and USD per role for the prompts still to label (None where a price is unknown)."""

    prompts: int
    tokens: dict[str, tuple[int, int]]
    usd: dict[str, float | None]
    assumptions: str

    @property
    def total_usd(self) -> float | None:
        vals = list(self.usd.values())
        return None if any(v is None for v in vals) else float(sum(v for v in vals if v is not None))

    def __str__(self) -> str:
        def money(x: float | None) -> str:
            return "unknown price" if x is None else f"${x:,.4f}"

        parts = [
            f"{role} {money(self.usd[role])} ({i:,} in / {o:,} out tok)"
            for role, (i, o) in self.tokens.items()
        ]
        return (
            f"estimated cost for {self.prompts} prompt(s): {money(self.total_usd)} = "
            + "; ".join(parts)
            + f" [{self.assumptions}]"
        )


def estimate_cost(
    items: Sequence[PromptItem],
    names: Mapping[str, str],
    judge_mode: JudgeMode = "grade",
    prices: PriceTable | None = None,
    answer_tokens: int = 300,
    judge_tokens: int = 150,
) -> CostEstimate:
    """Cost of labelling `items`: each model reads the prompt and writes `answer_tokens`; the judge reads its
    template, the prompt and both answers (twice for pairwise) and writes `judge_tokens` per verdict."""
    prices = prices or PriceTable()
    prompt_tok = sum(count_tokens(it.prompt) for it in items)
    n = len(items)
    system = GRADE_SYSTEM if judge_mode == "grade" else PAIRWISE_SYSTEM
    template = GRADE_TEMPLATE if judge_mode == "grade" else PAIRWISE_TEMPLATE
    overhead = count_tokens(system) + count_tokens(template)
    calls = 1 if judge_mode == "grade" else 2
    tokens = {
        "strong": (prompt_tok, n * answer_tokens),
        "weak": (prompt_tok, n * answer_tokens),
        "judge": (calls * (prompt_tok + n * (overhead + 2 * answer_tokens)), calls * n * judge_tokens),
    }
    usd = {role: prices.cost(names[role], i, o) for role, (i, o) in tokens.items()}
    return CostEstimate(n, tokens, usd, f"{answer_tokens} tokens per answer, {judge_tokens} per verdict")


# --- append-only JSONL -------------------------------------------------------------------------------------------


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    """Complete rows of an append-only JSONL file; a torn last line (a kill mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    raw = p.read_bytes()
    rows = []
    lines = raw.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):  # last line without its newline: torn write
                continue
            raise DataError(p, f"line {n}: invalid JSON in the middle of the file") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows


class JsonlAppender:
    """Appends one JSON object per line with a single write and an fsync, so a line is in the file whole or not
    at all; on open, a torn last line left by a kill is cut off so the next line starts clean."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            _log.warning(
                "%s: dropping a torn last line (%d bytes) left by an interrupted write",
                self.path,
                len(raw) - cut,
            )
            with open(self.path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())

    def write(self, row: Mapping[str, Any]) -> None:
        data = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8", "surrogatepass")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rewrite_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- judge ------------------------------------------------------------------------------------------------------


def parse_grade(text: str) -> int | None:
    """The 1-5 grade in a judge's answer: the last `[[n]]`, else a `Rating: n`; None if there is none."""
    found = _RATING.findall(text) or _RATING_LOOSE.findall(text)
    return int(found[-1]) if found else None


def parse_verdict(text: str) -> str | None:
    """The pairwise verdict "A", "B" or "C" (tie): the last `[[X]]` in the judge's answer, or None."""
    found = _VERDICT.findall(text)
    return found[-1] if found else None


def pairwise_winner(first: str, second: str) -> str:
    """Winner from verdicts with strong as A (`first`) and then strong as B (`second`): agreeing verdicts stand,
    anything else (including one tie) is a tie."""
    a = {"A": "strong", "B": "weak", "C": "tie"}[first]
    b = {"A": "weak", "B": "strong", "C": "tie"}[second]
    return a if a == b else "tie"


# --- the labeller -----------------------------------------------------------------------------------------------


@dataclass
class LabelReport:
    """What a labelling run did: counts, spend, the pre-run estimate and where the files are."""

    total: int
    already_done: int
    """Prompts found in the output file from an earlier run (skipped)."""
    labelled: int
    failed: int
    duplicates: int
    spent_usd: float | None
    estimate: CostEstimate | None
    out: str
    errors_path: str
    seconds: float
    winners: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["estimate_usd"] = self.estimate.total_usd if self.estimate else None
        d.pop("estimate")
        return d


def _usage(message: Any, messages: Sequence[Any], text: str) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None)
    if usage:
        return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return sum(count_tokens(str(m.content)) for m in messages), count_tokens(text)


class Labeller:
    """Labels prompts with a strong model, a weak model and a judge (LangChain chat models or model strings).

    Args:
        strong, weak, judge: LangChain chat models or `provider:model` strings (`init_chat_model`).
        judge_mode: "grade" (the paper's 1-5 grade of the weak answer against the strong one) or "pairwise".
        weak_wins_at: In grade mode, the lowest grade at which the weak model wins (default 4).
        concurrency: Most model calls in flight at once.
        max_rps: Most call starts per second (None: no limit).
        retry: Backoff policy for 429/5xx/timeouts/connection errors.
        prices: A `PriceTable` for the estimate and the spend (default list prices).
        names: Override the model names written to the battles and used for prices (`strong`, `weak`, `judge`).
        keep_answers: Write both answers and the judge's text into each battle row (default True).
        model_kwargs: Extra keyword arguments for `init_chat_model` when models are given as strings.
    """

    def __init__(
        self,
        strong: Any,
        weak: Any,
        judge: Any,
        *,
        judge_mode: JudgeMode = "grade",
        weak_wins_at: int = 4,
        concurrency: int = 8,
        max_rps: float | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        names: Mapping[str, str] | None = None,
        keep_answers: bool = True,
        model_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if judge_mode not in JUDGE_MODES:
            raise LabelingError(f"judge_mode must be one of {', '.join(JUDGE_MODES)}, got {judge_mode!r}")
        if not isinstance(weak_wins_at, int) or not 1 <= weak_wins_at <= 5:
            raise LabelingError(f"weak_wins_at must be an integer grade in 1..5, got {weak_wins_at!r}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise LabelingError(f"concurrency must be a positive integer, got {concurrency!r}")
        specs = {"strong": strong, "weak": weak, "judge": judge}
        self.names = {role: model_label(m) for role, m in specs.items()}
        self.names.update(dict(names or {}))
        if self.names["strong"].lower() == self.names["weak"].lower():
            raise LabelingError(
                f"strong and weak models have the same name {self.names['strong']!r}; battles need two names: "
                "pass names={'strong': ..., 'weak': ...}"
            )
        self._model_kwargs = dict(model_kwargs or {})
        self._specs = {role: m if isinstance(m, str) else None for role, m in specs.items()}
        self.models = {role: resolve_chat_model(m, **self._model_kwargs) for role, m in specs.items()}
        self.judge_mode: JudgeMode = judge_mode
        self.weak_wins_at = weak_wins_at
        self.concurrency = concurrency
        self.max_rps = max_rps
        self.retry = retry or RetryPolicy()
        self.prices = prices or PriceTable()
        self.keep_answers = keep_answers
        self._rng = random.Random(seed)
        self._sem = asyncio.Semaphore(concurrency)
        self._limiter = RateLimiter(max_rps)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for Ray workers: models given as strings are rebuilt there (clients do not pickle)."""
        state = dict(self.__dict__)
        state["models"] = {r: (None if self._specs[r] else m) for r, m in self.models.items()}
        state.pop("_sem", None)
        state.pop("_limiter", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for role, spec in self._specs.items():
            if spec is not None:
                self.models[role] = resolve_chat_model(spec, **self._model_kwargs)
        self._sem = asyncio.Semaphore(self.concurrency)
        self._limiter = RateLimiter(self.max_rps)

    # --- one model call ------------------------------------------------------------------------------------

    async def _call(self, role: str, messages: list[Any], stage: str, acc: dict[str, Any]) -> str:
        model = self.models[role]
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire()
            try:
                async with self._sem:
                    message = await model.ainvoke(messages)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every provider error is either retried or reported
                if attempt >= self.retry.max_attempts or not is_retryable(e):
                    raise CallFailed(stage, e, attempt) from e
                delay = self.retry.delay(attempt - 1, e, self._rng)
                _log.info(
                    "%s call failed (%s: %s); retry %d in %.2fs", stage, type(e).__name__, e, attempt, delay
                )
                await asyncio.sleep(delay)
                continue
            text = message.content if isinstance(message.content, str) else _text_of(message.content)
            tin, tout = _usage(message, messages, text)
            cost = self.prices.cost(self.names[role], tin, tout)
            if cost is None:
                acc["unpriced_calls"] += 1
            else:
                acc["cost_usd"] += cost
            acc["tokens"][role] = [
                a + b for a, b in zip(acc["tokens"].get(role, [0, 0]), (tin, tout), strict=True)
            ]
            return text

    # --- one prompt ------------------------------------------------------------------------------------------

    async def _label_one(self, item: PromptItem, acc: dict[str, Any]) -> dict[str, Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        question = [HumanMessage(item.prompt)]
        strong_text, weak_text = await asyncio.gather(
            self._call("strong", question, "strong", acc), self._call("weak", question, "weak", acc)
        )
        judge: dict[str, Any] = {"mode": self.judge_mode, "model": self.names["judge"]}
        if self.judge_mode == "grade":
            msgs = [
                SystemMessage(GRADE_SYSTEM),
                HumanMessage(
                    GRADE_TEMPLATE.format(prompt=item.prompt, reference=strong_text, answer=weak_text)
                ),
            ]
            verdict_text = await self._call("judge", msgs, "judge", acc)
            grade = parse_grade(verdict_text)
            if grade is None:
                raise CallFailed(
                    "judge", ValueError(f"no [[1-5]] rating in the judge's answer: {verdict_text[:300]!r}"), 1
                )
            judge["grade"] = grade
            side = "weak" if grade >= self.weak_wins_at else "strong"
            texts = [verdict_text]
        else:
            orders = [(strong_text, weak_text), (weak_text, strong_text)]
            texts = list(
                await asyncio.gather(
                    *[
                        self._call(
                            "judge",
                            [
                                SystemMessage(PAIRWISE_SYSTEM),
                                HumanMessage(
                                    PAIRWISE_TEMPLATE.format(prompt=item.prompt, answer_a=a, answer_b=b)
                                ),
                            ],
                            "judge",
                            acc,
                        )
                        for a, b in orders
                    ]
                )
            )
            verdicts = [parse_verdict(t) for t in texts]
            for t, v in zip(texts, verdicts, strict=True):
                if v is None:
                    raise CallFailed(
                        "judge",
                        ValueError(f"no [[A]]/[[B]]/[[C]] verdict in the judge's answer: {t[:300]!r}"),
                        1,
                    )
            judge["verdicts"] = verdicts
            side = pairwise_winner(verdicts[0] or "", verdicts[1] or "")
        winner = {"strong": "model_a", "weak": "model_b", "tie": "tie"}[side]
        row: dict[str, Any] = {
            "id": item.id,
            "prompt": item.prompt,
            "model_a": self.names["strong"],
            "model_b": self.names["weak"],
            "winner": winner,
            "judge": judge,
            "labelled_at": time.time(),
        }
        if self.keep_answers:
            row["answers"] = {"model_a": strong_text, "model_b": weak_text}
            judge["text"] = texts
        return row

    # --- the run ---------------------------------------------------------------------------------------------

    async def _process(self, item: PromptItem) -> tuple[str, dict[str, Any]]:
        """Label one prompt: ("ok", battle row) or ("error", error row), both with the spend of its calls."""
        acc: dict[str, Any] = {"cost_usd": 0.0, "unpriced_calls": 0, "tokens": {}}
        try:
            row = await self._label_one(item, acc)
        except CallFailed as f:
            err = {"id": item.id, "prompt": item.prompt, "stage": f.stage, "reason": f.reason, "status": f.status,
                   "attempts": f.attempts, "time": time.time()}  # fmt: skip
            return "error", {**err, **acc}
        return "ok", {**row, **acc}

    async def _run_items(
        self, items: Sequence[PromptItem], sink: Callable[[str, dict[str, Any]], None]
    ) -> None:
        queue: asyncio.Queue[PromptItem] = asyncio.Queue()
        for it in items:
            queue.put_nowait(it)

        async def worker() -> None:
            while True:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sink(*await self._process(item))

        await asyncio.gather(*[worker() for _ in range(min(self.concurrency, max(1, len(items))))])

    async def alabel_rows(self, items: Sequence[PromptItem]) -> list[tuple[str, dict[str, Any]]]:
        """Label `items` without touching any file: ("ok" | "error", row) per item (for Ray workers)."""
        self._sem = asyncio.Semaphore(self.concurrency)
        self._limiter = RateLimiter(self.max_rps)
        results: list[tuple[str, dict[str, Any]]] = []
        await self._run_items(list(items), lambda kind, row: results.append((kind, row)))
        return results

    def estimate(
        self,
        prompts: Iterable[str | PromptItem | Mapping[str, Any]],
        out: str | Path | None = None,
        **kw: Any,
    ) -> CostEstimate:
        """The cost estimate for what a run would still label (prompts already in `out` are left out)."""
        items, _ = as_items(prompts)
        done = {str(r.get("id")) for r in read_jsonl_rows(out)} if out else set()
        return estimate_cost(
            [it for it in items if it.id not in done], self.names, self.judge_mode, self.prices, **kw
        )

    async def alabel(
        self,
        prompts: Iterable[str | PromptItem | Mapping[str, Any]],
        out: str | Path,
        errors: str | Path | None = None,
        *,
        retry_errors: bool = True,
        max_cost: float | None = None,
        progress: bool = True,
        on_estimate: Callable[[CostEstimate], None] | None = None,
        answer_tokens: int = 300,
        runner: Callable[[Sequence[PromptItem], Callable[[str, dict[str, Any]], None]], None] | None = None,
    ) -> LabelReport:
        """Label every prompt not yet in `out`; see the module docstring for the guarantees.

        `runner(todo, sink)`, when given, does the labelling elsewhere (e.g. on Ray, see
        `routing_core.distributed.label_dataset`) and calls `sink(kind, row)` from one thread per finished
        prompt with the rows of `alabel_rows`; the files, counters and bar stay here.
        """
        from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]

        t0 = time.perf_counter()
        out = Path(out)
        errors_path = Path(errors) if errors else out.with_name(out.stem + ".errors.jsonl")
        items, dups = as_items(prompts)
        done_rows = read_jsonl_rows(out)
        done = {str(r.get("id")) for r in done_rows}
        old_errors = {str(r.get("id")): r for r in read_jsonl_rows(errors_path)}
        todo = [it for it in items if it.id not in done and (retry_errors or it.id not in old_errors)]
        est = estimate_cost(todo, self.names, self.judge_mode, self.prices, answer_tokens=answer_tokens)
        if on_estimate is not None:
            on_estimate(est)
        _log.info("%s", est)
        if max_cost is not None and todo:
            if est.total_usd is None:
                raise LabelingError(
                    f"max_cost={max_cost} given but a price is unknown ({est}); add it to the price table"
                )
            if est.total_usd > max_cost:
                raise LabelingError(f"estimated ${est.total_usd:.4f} exceeds max_cost ${max_cost:.4f}: {est}")
        self._sem = asyncio.Semaphore(self.concurrency)
        self._limiter = RateLimiter(self.max_rps)
        spent = {"cost_usd": 0.0, "unpriced_calls": 0}
        winners: dict[str, int] = {}
        failures: dict[str, int] = {}
        failed_ids: set[str] = set()
        labelled = 0
        desc = "labelling" + (
            f" (est. ${est.total_usd:,.4f})" if est.total_usd is not None else " (est. price unknown)"
        )
        bar = tqdm(total=len(todo), desc=desc, unit="prompt", disable=not progress, dynamic_ncols=True)
        with JsonlAppender(out) as out_f, JsonlAppender(errors_path) as err_f:

            def sink(kind: str, row: dict[str, Any]) -> None:
                """Write one finished prompt (a battle or an error) and update the counters and the bar."""
                nonlocal labelled
                if kind == "ok":
                    out_f.write(row)
                    labelled += 1
                    winners[row["winner"]] = winners.get(row["winner"], 0) + 1
                else:
                    err_f.write(row)
                    failed_ids.add(row["id"])
                    failures[row["stage"]] = failures.get(row["stage"], 0) + 1
                spent["cost_usd"] += row.get("cost_usd", 0.0)
                spent["unpriced_calls"] += row.get("unpriced_calls", 0)
                bar.update(1)
                extra = f" (+{spent['unpriced_calls']} unpriced calls)" if spent["unpriced_calls"] else ""
                bar.set_postfix_str(f"spent ${spent['cost_usd']:,.4f}{extra}")

            try:
                if runner is None:
                    await self._run_items(todo, sink)
                else:
                    await asyncio.to_thread(runner, todo, sink)
            finally:
                bar.close()
        # the errors file keeps, per prompt, only the latest failure of prompts that are still unlabelled
        now_done = done | {str(r.get("id")) for r in read_jsonl_rows(out)}
        latest = {str(r.get("id")): r for r in read_jsonl_rows(errors_path)}
        keep = [r for i, r in latest.items() if i not in now_done]
        _rewrite_atomic(errors_path, keep)
        return LabelReport(
            total=len(items),
            already_done=sum(it.id in done for it in items),
            labelled=labelled,
            failed=len(failed_ids),
            duplicates=dups,
            spent_usd=None if spent["unpriced_calls"] and not spent["cost_usd"] else spent["cost_usd"],
            estimate=est,
            out=str(out),
            errors_path=str(errors_path),
            seconds=time.perf_counter() - t0,
            winners=winners,
            failures=failures,
        )

    def label(
        self,
        prompts: Iterable[str | PromptItem | Mapping[str, Any]],
        out: str | Path,
        errors: str | Path | None = None,
        **kw: Any,
    ) -> LabelReport:
        """Synchronous `alabel` (runs its own event loop; inside a running loop, await `alabel` instead)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.alabel(prompts, out, errors, **kw))
        raise LabelingError("label() called inside a running event loop; use `await labeller.alabel(...)`")


def _text_of(content: Any) -> str:
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def label_prompts(
    prompts: Iterable[str | PromptItem | Mapping[str, Any]],
    strong: Any,
    weak: Any,
    judge: Any,
    out: str | Path,
    errors: str | Path | None = None,
    **kwargs: Any,
) -> LabelReport:
    """One-call API: `Labeller(strong, weak, judge, **options).label(prompts, out, errors, **run_options)`."""
    run_keys = {"retry_errors", "max_cost", "progress", "on_estimate", "answer_tokens", "runner"}
    run = {k: kwargs.pop(k) for k in list(kwargs) if k in run_keys}
    return Labeller(strong, weak, judge, **kwargs).label(prompts, out, errors, **run)


def training_data(battles: Sequence[Any], strong: str, weak: str, source: str = "own traffic") -> Any:
    """`TrainingData` whose strong-vs-weak examples are the battles between exactly `strong` and `weak`, so
    classifier routers learn this pair rather than the bundled GPT-4/Mixtral tiers."""
    from routing_core.data.aliases import canonical_model
    from routing_core.training import TrainingData, pair_examples

    if not battles:
        raise DataError(source, "no battles")
    exact = lambda name: re.compile("^" + re.escape(canonical_model(name)) + "$")  # noqa: E731
    canon = [
        type(b)(b.prompt, canonical_model(b.model_a), canonical_model(b.model_b), b.winner, b.source, b.id)
        for b in battles
    ]
    return TrainingData(canon, pair_examples(canon, exact(strong), exact(weak)), {source: len(canon)})


def labelled_training_data(path: str | Path, strong: str | None = None, weak: str | None = None) -> Any:
    """`training_data` from a labels file; the pair defaults to the first row's model_a (strong) / model_b."""
    from routing_core.data.loaders import load_battles_jsonl

    battles = load_battles_jsonl(path)
    if not battles:
        raise DataError(path, "no battles (prompts shorter than 16 characters are dropped)")
    return training_data(battles, strong or battles[0].model_a, weak or battles[0].model_b, f"battles:{path}")
