"""A store of routing decisions and user feedback (SQLite by default, any SQLAlchemy URL), and training rows from it.

`RouteStore` records one row per routed call (run id, time, router, threshold, win rate, side, model, tokens,
cost, and a SHA-256 of the prompt; the prompt and answer text only with `record_text=True`), feedback attached
to a run id (thumbs up/down or a score), and judged battles (e.g. the output of `routing-core label`).

Writes never block or fail the caller: `record`, `feedback` and `add_battles` put the row on a bounded queue and
return; one background thread writes batches in a transaction. A full queue drops the row, a failing database
logs the error; both are counted in `stats`, and the LLM call that produced the row is never affected. Safe from
any number of threads and from asyncio code (a put is a non-blocking, thread-safe queue operation).

`battles_from_store(path)` turns the store into training battles (the data spec `store:routes.db`):

- judged battles stored with `add_battles`, as they are;
- feedback on a call whose prompt text was recorded, judged against the side that answered:
  weak + good -> the weak model wins; weak + bad -> the strong model wins; strong + bad -> a tie (the strong
  model did not help); strong + good is skipped by default (it says nothing about whether the weak model would
  have done as well: `strong_good="strong"` counts it as a strong win). "Good" is thumbs up, or a score >=
  `good_at` (0.5 on a 0-1 scale). The latest feedback on a call wins.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import queue
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from routing_core.data.records import MIN_PROMPT_CHARS, Battle
from routing_core.errors import DataError, RoutingError

_log = logging.getLogger("routing_core.store")

DECISION_COLUMNS: tuple[str, ...] = (
    "run_id",
    "ts",
    "router",
    "threshold",
    "win_rate",
    "side",
    "model",
    "strong_model",
    "weak_model",
    "reason",
    "source",
    "status",
    "error",
    "input_tokens",
    "output_tokens",
    "cost",
    "prompt_hash",
    "prompt",
    "answer",
    "message_id",
    "framework",
)
FEEDBACK_COLUMNS: tuple[str, ...] = ("ref", "ts", "thumbs", "score", "comment")
BATTLE_COLUMNS: tuple[str, ...] = ("ts", "prompt", "model_a", "model_b", "winner", "source", "ref")
_NUMERIC = {"ts", "threshold", "win_rate", "cost", "score"}
_INTEGER = {"input_tokens", "output_tokens", "thumbs"}
_LC_PREFIX = "lc_run--"


class StoreError(RoutingError):
    """A store cannot be opened or read (bad URL, missing SQLAlchemy, not a route store)."""


def prompt_hash(text: str) -> str:
    """SHA-256 hex digest of a prompt: lets you count and join prompts without storing their text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_ref(ref: Any) -> str:
    """A run id from a UUID, a string, a LangChain message (`lc_run--<uuid>` ids) or a LlamaIndex response."""
    if isinstance(ref, uuid.UUID):
        return str(ref)
    if isinstance(ref, str):
        return ref[len(_LC_PREFIX) :] if ref.startswith(_LC_PREFIX) else ref
    extra = getattr(ref, "additional_kwargs", None)
    if isinstance(extra, Mapping) and isinstance(extra.get("routellm"), Mapping):
        did = extra["routellm"].get("decision_id")
        if did:
            return str(did)
    meta = getattr(ref, "response_metadata", None)
    if (
        isinstance(meta, Mapping)
        and isinstance(meta.get("routellm"), Mapping)
        and meta["routellm"].get("run_id")
    ):
        return str(meta["routellm"]["run_id"])
    mid = getattr(ref, "id", None)
    if isinstance(mid, str) and mid:
        return normalize_ref(mid)
    raise TypeError(f"cannot find a run id in {type(ref).__name__}; pass the run id (a UUID or string)")


# --- backends ------------------------------------------------------------------------------------------------


def _ddl(sqlite: bool) -> list[str]:
    def cols(names: Sequence[str]) -> str:
        def typ(c: str) -> str:
            return "REAL" if c in _NUMERIC else "INTEGER" if c in _INTEGER else "TEXT"

        return ", ".join(f"{c} {typ(c)}" for c in names)

    pk = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "INTEGER PRIMARY KEY"
    return [
        f"CREATE TABLE IF NOT EXISTS routellm_decisions (id {pk}, {cols(DECISION_COLUMNS)})",
        f"CREATE TABLE IF NOT EXISTS routellm_feedback (id {pk}, {cols(FEEDBACK_COLUMNS)})",
        f"CREATE TABLE IF NOT EXISTS routellm_battles (id {pk}, {cols(BATTLE_COLUMNS)})",
        "CREATE INDEX IF NOT EXISTS routellm_decisions_run ON routellm_decisions (run_id)",
        "CREATE INDEX IF NOT EXISTS routellm_feedback_ref ON routellm_feedback (ref)",
    ]


_TABLES = {"decisions": DECISION_COLUMNS, "feedback": FEEDBACK_COLUMNS, "battles": BATTLE_COLUMNS}


class _SQLiteBackend:
    """stdlib sqlite3 in WAL mode: one connection for the writer thread, a fresh one per read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            for stmt in _ddl(True):
                con.execute(stmt)
        self._writer: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        con.execute("PRAGMA busy_timeout=30000")
        return con

    def write(self, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        if self._writer is None:
            self._writer = self._connect()
            self._writer.execute("PRAGMA synchronous=NORMAL")
        con = self._writer
        with con:
            for table, items in rows.items():
                if items:
                    names = _TABLES[table]
                    sql = f"INSERT INTO routellm_{table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
                    con.executemany(sql, [tuple(r.get(c) for c in names) for r in items])

    def read(self, table: str) -> list[dict[str, Any]]:
        names = _TABLES[table]
        con = self._connect()
        try:
            cur = con.execute(f"SELECT {', '.join(names)} FROM routellm_{table} ORDER BY id")
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            con.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _SQLAlchemyBackend:
    """Any database SQLAlchemy 2 can reach (PostgreSQL, MySQL, ...), through SQLAlchemy Core."""

    def __init__(self, url: str) -> None:
        try:
            import sqlalchemy as sa
        except ImportError as e:
            raise StoreError(
                f"store URL {url!r} needs SQLAlchemy: pip install 'routellm-plugin[store]'"
            ) from e
        self.sa = sa
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        meta = sa.MetaData()

        def col(c: str) -> Any:
            t = sa.Float if c in _NUMERIC else sa.Integer if c in _INTEGER else sa.Text
            return sa.Column(c, t, index=c in ("run_id", "ref"))

        self.tables = {
            name: sa.Table(
                f"routellm_{name}",
                meta,
                sa.Column("id", sa.Integer, primary_key=True),
                *[col(c) for c in cols],
            )
            for name, cols in _TABLES.items()
        }
        meta.create_all(self.engine)

    def write(self, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        with self.engine.begin() as con:
            for table, items in rows.items():
                if items:
                    names = _TABLES[table]
                    con.execute(self.tables[table].insert(), [{c: r.get(c) for c in names} for r in items])

    def read(self, table: str) -> list[dict[str, Any]]:
        t = self.tables[table]
        with self.engine.connect() as con:
            result = con.execute(self.sa.select(*[t.c[c] for c in _TABLES[table]]).order_by(t.c.id))
            return [dict(r._mapping) for r in result]

    def close(self) -> None:
        self.engine.dispose()


def _backend(url: str | Path) -> _SQLiteBackend | _SQLAlchemyBackend:
    s = str(url)
    if s.startswith("sqlite:///") and "?" not in s:
        return _SQLiteBackend(Path(s[len("sqlite:///") :]))
    if "://" in s:
        return _SQLAlchemyBackend(s)
    if s.startswith("store:"):
        s = s[len("store:") :]
    return _SQLiteBackend(Path(s).expanduser())


# --- the store -----------------------------------------------------------------------------------------------


@dataclass
class StoreStats:
    """What the store did: rows queued and written, rows dropped (queue full), rows lost to database errors."""

    queued: int = 0
    written: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str | None = None


_STOP = object()
_open_stores: weakref.WeakSet[RouteStore] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for s in list(_open_stores):
        s.close(timeout=5)


@dataclass
class RouteRecord:
    """One routed call as the wrappers report it (old key `model` = side is accepted too)."""

    run_id: str
    side: str | None
    model: str | None = None
    router: str | None = None
    threshold: float | None = None
    win_rate: float | None = None
    reason: str | None = None
    source: str | None = None
    strong_model: str | None = None
    weak_model: str | None = None
    status: str = "ok"
    error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    prompt: str | None = None
    answer: str | None = None
    message_id: str | None = None
    framework: str | None = None
    ts: float = field(default_factory=time.time)


def decision_from_payload(run_id: Any, payload: Mapping[str, Any], **extra: Any) -> RouteRecord:
    """A `RouteRecord` (one routed call) from a wrapper's routing payload, tolerant of both schemas: `side` + `model_name` (new) or
    `model` as the side (old LangChain); LlamaIndex's `model` is the model name when `side` is present."""
    side = payload.get("side")
    model_name = payload.get("model_name")
    if side is None and payload.get("model") in ("strong", "weak"):
        side = payload.get("model")
    elif model_name is None and payload.get("model") not in (None, "strong", "weak"):
        model_name = payload.get("model")
    win_rate = payload.get("win_rate")
    threshold = payload.get("threshold")
    d = RouteRecord(
        run_id=normalize_ref(run_id),
        side=str(side) if side is not None else None,
        model=str(model_name) if model_name is not None else None,
        router=str(payload["router"]) if payload.get("router") is not None else None,
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        win_rate=float(win_rate) if isinstance(win_rate, int | float) else None,
        reason=payload.get("reason"),
        source=payload.get("source"),
        strong_model=payload.get("strong_model") or None,
        weak_model=payload.get("weak_model") or None,
    )
    for k, v in extra.items():
        setattr(d, k, v)
    return d


class RouteStore:
    """Records routing decisions, feedback and judged battles without blocking or failing the caller.

    Args:
        url: A SQLite file path (default backend, stdlib), `sqlite:///PATH`, or any SQLAlchemy URL
            (`postgresql+psycopg://...`; needs the `store` extra).
        record_text: Store the prompt and answer text (opt-in); otherwise only a SHA-256 of the prompt.
        queue_size: Most rows waiting for the writer; beyond it rows are dropped and counted, never waited for.
        batch_size: Most rows per write transaction.
    """

    def __init__(
        self,
        url: str | Path = "routes.db",
        *,
        record_text: bool = False,
        queue_size: int = 100_000,
        batch_size: int = 1000,
    ) -> None:
        self.url = str(url)
        self.record_text = bool(record_text)
        self.batch_size = int(batch_size)
        self._backend = _backend(url)
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.stats = StoreStats()
        self._stats_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="routellm-store-writer", daemon=True)
        self._thread.start()
        _open_stores.add(self)

    # --- writing (never blocks, never raises) ----------------------------------------------------------------

    def _put(self, table: str, row: dict[str, Any]) -> bool:
        try:
            if self._closed:
                raise queue.Full
            self._q.put_nowait((table, row))
        except queue.Full:
            with self._stats_lock:
                self.stats.dropped += 1
                n = self.stats.dropped
            if n == 1 or n % 1000 == 0:
                _log.warning("route store %s: queue full or closed, %d row(s) dropped so far", self.url, n)
            return False
        with self._stats_lock:
            self.stats.queued += 1
        return True

    def record(self, decision: RouteRecord) -> bool:
        """Queue one decision; False (logged and counted) when it could not be queued. Never raises."""
        try:
            row = {c: getattr(decision, c, None) for c in DECISION_COLUMNS if c not in ("prompt_hash",)}
            prompt = decision.prompt
            row["prompt_hash"] = prompt_hash(prompt) if prompt is not None else None
            if not self.record_text:
                row["prompt"] = row["answer"] = None
            return self._put("decisions", row)
        except Exception as e:  # noqa: BLE001 - recording must never fail the user's call
            self._count_error(e)
            return False

    def feedback(
        self, ref: Any, *, thumbs: bool | None = None, score: float | None = None, comment: str | None = None
    ) -> bool:
        """Attach feedback to a run: thumbs up (True) / down (False) and/or a numeric score, plus a comment.

        `ref` is the run id (UUID or string), a LangChain AI message (its `lc_run--` id), or a LlamaIndex
        response (its `routellm` payload's decision id). Raises only on bad arguments, never on storage.
        """
        if thumbs is None and score is None:
            raise ValueError("feedback needs thumbs=True/False or a score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise ValueError(f"score must be a number, got {score!r}")
        row = {"ref": normalize_ref(ref), "ts": time.time(), "thumbs": None if thumbs is None else int(bool(thumbs)),
               "score": None if score is None else float(score), "comment": comment}  # fmt: skip
        return self._put("feedback", row)

    def add_battles(self, battles: Iterable[Battle], source: str = "judge") -> int:
        """Queue judged battles (e.g. `load_battles_jsonl` of a `label` run); returns how many were queued."""
        n = 0
        for b in battles:
            n += self._put(
                "battles",
                {"ts": time.time(), "prompt": b.prompt, "model_a": b.model_a, "model_b": b.model_b,
                 "winner": b.winner, "source": b.source or source, "ref": b.id or None},
            )  # fmt: skip
        return n

    def _count_error(self, e: BaseException, n: int = 1) -> None:
        with self._stats_lock:
            self.stats.errors += n
            self.stats.last_error = f"{type(e).__name__}: {e}"
        _log.error("route store %s: %d row(s) not written: %s: %s", self.url, n, type(e).__name__, e)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._q.get()
            items = [item]
            while len(items) < self.batch_size:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            rows: dict[str, list[dict[str, Any]]] = {"decisions": [], "feedback": [], "battles": []}
            for it in items:
                if it is _STOP:
                    stop = True
                else:
                    rows[it[0]].append(it[1])
            n = sum(len(v) for v in rows.values())
            if n:
                try:
                    self._backend.write(rows)
                except Exception as e:  # noqa: BLE001 - logged and counted; the writer keeps going
                    self._count_error(e, n)
                else:
                    with self._stats_lock:
                        self.stats.written += n
            for _ in items:
                self._q.task_done()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued row is written (or failed); False when `timeout` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._q.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, stop the writer and release the database."""
        if self._closed:
            return
        self._closed = True
        try:
            self._q.put(_STOP, timeout=timeout)
        except queue.Full:
            _log.error("route store %s: could not stop the writer within %ss", self.url, timeout)
            return
        self._thread.join(timeout)
        self._backend.close()

    def __enter__(self) -> RouteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ------------------------------------------------------------------------------------------------

    def decisions(self) -> list[dict[str, Any]]:
        """Every recorded decision (oldest first), as dicts of `DECISION_COLUMNS`."""
        return self._backend.read("decisions")

    def feedback_rows(self) -> list[dict[str, Any]]:
        """Every feedback row (oldest first): ref (run id), ts, thumbs (1/0/None), score, comment."""
        return self._backend.read("feedback")

    def battle_rows(self) -> list[dict[str, Any]]:
        """Every stored judged battle (oldest first)."""
        return self._backend.read("battles")

    def battles(
        self,
        *,
        strong_model: str | None = None,
        weak_model: str | None = None,
        good_at: float = 0.5,
        strong_good: Literal["skip", "strong", "tie"] = "skip",
        min_chars: int = MIN_PROMPT_CHARS,
    ) -> list[Battle]:
        """Training battles: stored judged battles, plus feedback on calls with recorded text (module docstring).

        Model names default to each decision's `strong_model`/`weak_model`, else the name most often recorded
        for that side.
        """
        self.flush()
        rows = self.decisions()
        latest: dict[str, dict[str, Any]] = {}
        for r in rows:
            latest[str(r["run_id"])] = r
        by_message = {
            normalize_ref(str(r["message_id"])): str(r["run_id"]) for r in rows if r.get("message_id")
        }
        names = {side: strong_model if side == "strong" else weak_model for side in ("strong", "weak")}
        for side in ("strong", "weak"):
            if names[side] is None:
                counts: dict[str, int] = {}
                for r in rows:
                    n = r.get(f"{side}_model") or (r.get("model") if r.get("side") == side else None)
                    if n:
                        counts[n] = counts.get(n, 0) + 1
                names[side] = max(counts, key=lambda k: counts[k]) if counts else side
        fb: dict[str, dict[str, Any]] = {}
        for f in self.feedback_rows():
            ref = str(f["ref"])
            fb[by_message.get(ref, ref)] = f
        out: list[Battle] = []
        for ref, f in fb.items():
            d = latest.get(ref)
            if d is None or not d.get("prompt") or d.get("status") == "error" or len(d["prompt"]) < min_chars:
                continue
            good = bool(f["thumbs"]) if f.get("thumbs") is not None else float(f["score"]) >= good_at
            s = d.get("strong_model") or names["strong"]
            w = d.get("weak_model") or names["weak"]
            if d.get("side") == "weak":
                winner = "model_b" if good else "model_a"
            elif d.get("side") == "strong":
                if good and strong_good == "skip":
                    continue
                winner = "tie" if not good else ("model_a" if strong_good == "strong" else "tie")
            else:
                continue
            out.append(Battle(d["prompt"], str(s), str(w), winner, "store:feedback", ref))  # type: ignore[arg-type]
        for b in self.battle_rows():
            if (
                b.get("prompt")
                and len(b["prompt"]) >= min_chars
                and b.get("winner") in ("model_a", "model_b", "tie")
            ):
                out.append(
                    Battle(
                        b["prompt"],
                        b["model_a"],
                        b["model_b"],
                        b["winner"],
                        b.get("source") or "store:judge",
                        b.get("ref") or "",
                    )
                )
        return out

    def prompts_to_label(self) -> list[dict[str, str]]:
        """Recorded prompts (text opted in) as `{id, prompt}` items for `routing_core.labeling` (one per text)."""
        seen: dict[str, dict[str, str]] = {}
        for r in self.decisions():
            if r.get("prompt") and r["prompt_hash"] not in seen:
                seen[r["prompt_hash"]] = {"id": str(r["run_id"]), "prompt": r["prompt"]}
        return list(seen.values())


def open_store(url: str | Path, **kwargs: Any) -> RouteStore:
    """A `RouteStore` (kept for symmetry with `load_router`)."""
    return RouteStore(url, **kwargs)


def battles_from_store(path: str | Path, **kwargs: Any) -> list[Battle]:
    """Training battles from a store file or URL (the `store:PATH` data spec); see `RouteStore.battles`."""
    s = str(path)
    if "://" not in s and not Path(s.removeprefix("store:")).expanduser().is_file():
        raise DataError(s, "no such route store (a SQLite file written by RouteStore, or a database URL)")
    store = RouteStore(path)
    try:
        battles = store.battles(**kwargs)
    finally:
        store.close()
    if not battles:
        raise DataError(
            s,
            "no training rows: record prompts with record_text=True and attach feedback, or add judged battles",
        )
    return battles
