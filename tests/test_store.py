"""`routing_core.store`: decisions and feedback in SQLite (or SQLAlchemy), never blocking, training rows from it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from routing_core.data.records import Battle
from routing_core.errors import DataError
from routing_core.store import RouteRecord, RouteStore, battles_from_store, decision_from_payload, prompt_hash

LONG = " (a prompt long enough to train on)"


def dec(side: str, prompt: str, run_id: str | None = None, **kw: Any) -> RouteRecord:
    return RouteRecord(
        run_id=run_id or uuid.uuid4().hex,
        side=side,
        model="big" if side == "strong" else "small",
        router="mf",
        threshold=0.5,
        win_rate=0.7 if side == "strong" else 0.2,
        prompt=prompt,
        answer="an answer",
        input_tokens=10,
        output_tokens=5,
        **kw,
    )


def test_text_is_hashed_unless_opted_in(tmp_path: Path) -> None:
    with RouteStore(tmp_path / "a.db") as s:
        s.record(dec("weak", "secret prompt" + LONG, "r1"))
        s.flush()
        (row,) = s.decisions()
    assert row["prompt"] is None and row["answer"] is None
    assert row["prompt_hash"] == prompt_hash("secret prompt" + LONG)
    assert (row["run_id"], row["side"], row["model"], row["win_rate"], row["input_tokens"]) == (
        "r1",
        "weak",
        "small",
        0.2,
        10,
    )
    with RouteStore(tmp_path / "b.db", record_text=True) as s:
        s.record(dec("weak", "kept prompt" + LONG, "r2"))
        s.flush()
        (row,) = s.decisions()
    assert row["prompt"] == "kept prompt" + LONG and row["answer"] == "an answer"


def test_threads_and_asyncio_lose_nothing(tmp_path: Path) -> None:
    store = RouteStore(tmp_path / "t.db", batch_size=50)

    def work(t: int) -> None:
        for i in range(250):
            store.record(dec("weak", f"t{t} i{i}", f"t{t}-{i}"))
            store.feedback(f"t{t}-{i}", thumbs=i % 2 == 0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()

    async def many() -> None:
        async def one(i: int) -> None:
            await asyncio.sleep(0)
            store.record(dec("strong", f"async {i}", f"a-{i}"))

        await asyncio.gather(*[one(i) for i in range(500)])

    asyncio.run(many())
    for th in threads:
        th.join()
    assert store.flush(60)
    ids = [r["run_id"] for r in store.decisions()]
    assert len(ids) == len(set(ids)) == 8 * 250 + 500
    assert len(store.feedback_rows()) == 8 * 250
    assert store.stats.written == 8 * 250 * 2 + 500 and store.stats.dropped == store.stats.errors == 0
    store.close()


def test_a_failing_database_is_logged_and_counted_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RouteStore(tmp_path / "f.db")

    def boom(rows: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    store._backend.write = boom  # type: ignore[method-assign]
    for i in range(20):
        assert store.record(dec("weak", f"p{i}")) is True  # queued: the caller is done
    assert store.flush()
    assert store.stats.errors == 20 and store.stats.written == 0
    assert "disk I/O error" in (store.stats.last_error or "")
    assert "not written" in caplog.text
    # a broken record (not even serialisable input) is counted too, not raised
    assert store.record(object()) is False  # type: ignore[arg-type]
    assert store.stats.errors == 21
    store.close()


def test_a_stuck_database_never_blocks_the_caller(tmp_path: Path) -> None:
    store = RouteStore(tmp_path / "s.db", queue_size=10)
    gate = threading.Event()
    real = store._backend.write

    def stuck(rows: Any) -> None:
        gate.wait(30)
        real(rows)

    store._backend.write = stuck  # type: ignore[method-assign]
    done = threading.Event()

    def caller() -> None:
        for i in range(100):
            store.record(dec("weak", f"p{i}", f"r{i}"))
        done.set()

    th = threading.Thread(target=caller)
    th.start()
    assert done.wait(10), "record() blocked on a stuck database"
    gate.set()
    th.join()
    assert store.flush()
    written = len(store.decisions())
    # what fit: a full queue, plus at most one queue's worth the writer had taken before it got stuck
    assert store.stats.dropped == 100 - written and 10 <= written <= 20
    store.close()


def test_feedback_becomes_battles(tmp_path: Path) -> None:
    store = RouteStore(tmp_path / "fb.db", record_text=True)
    rows = {
        "weak-up": dec("weak", "weak answered well" + LONG, strong_model="big", weak_model="small"),
        "weak-down": dec("weak", "weak answered badly" + LONG),
        "strong-down": dec("strong", "strong answered badly" + LONG),
        "strong-up": dec("strong", "strong answered well" + LONG),
        "weak-score": dec("weak", "weak scored 0.9" + LONG),
        "changed": dec("weak", "thumbs changed to down" + LONG),
        "no-feedback": dec("weak", "nobody said anything" + LONG),
        "by-message": dec("weak", "feedback by message id" + LONG, message_id="lc_run--abc"),
    }
    for d in rows.values():
        store.record(d)
    store.feedback(rows["weak-up"].run_id, thumbs=True)
    store.feedback(rows["weak-down"].run_id, thumbs=False)
    store.feedback(rows["strong-down"].run_id, thumbs=False)
    store.feedback(rows["strong-up"].run_id, thumbs=True)
    store.feedback(rows["weak-score"].run_id, score=0.9)
    store.feedback(rows["changed"].run_id, thumbs=True)
    store.feedback(rows["changed"].run_id, thumbs=False)
    store.feedback("lc_run--abc", thumbs=True)  # by the LangChain message id of the call
    store.add_battles([Battle("a judged prompt" + LONG, "big", "small", "model_a", "", "j1")])
    got = {b.prompt.removesuffix(LONG): (b.model_a, b.model_b, b.winner) for b in store.battles()}
    store.close()
    assert got == {
        "weak answered well": ("big", "small", "model_b"),
        "weak answered badly": ("big", "small", "model_a"),
        "strong answered badly": ("big", "small", "tie"),
        "weak scored 0.9": ("big", "small", "model_b"),
        "thumbs changed to down": ("big", "small", "model_a"),
        "feedback by message id": ("big", "small", "model_b"),
        "a judged prompt": ("big", "small", "model_a"),
    }
    assert len(battles_from_store(tmp_path / "fb.db", strong_good="strong")) == 8


def test_battles_from_store_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such route store"):
        battles_from_store(tmp_path / "missing.db")
    RouteStore(tmp_path / "hashed.db").close()
    with pytest.raises(DataError, match="record_text=True"):
        battles_from_store(tmp_path / "hashed.db")
    with pytest.raises(ValueError, match="thumbs"):
        RouteStore(tmp_path / "x.db").feedback("r")


def test_payload_schemas_old_and_new() -> None:
    old = decision_from_payload(
        "r", {"router": "mf", "threshold": 0.5, "win_rate": 0.3, "model": "weak", "model_name": "mini"}
    )
    new = decision_from_payload(
        "r", {"router": "mf", "side": "weak", "model_name": "mini", "source": "last_user_message"}
    )
    li = decision_from_payload(
        "r", {"router": "mf", "side": "strong", "model": "gpt-4o", "strong_model": "gpt-4o"}
    )
    assert (old.side, old.model, old.win_rate) == ("weak", "mini", 0.3)
    assert (new.side, new.model, new.source) == ("weak", "mini", "last_user_message")
    assert (li.side, li.model, li.strong_model) == ("strong", "gpt-4o", "gpt-4o")
    assert decision_from_payload(uuid.UUID(int=1), {}).run_id == str(uuid.UUID(int=1))


def test_sqlalchemy_url_backend(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    url = f"sqlite+pysqlite:///{tmp_path / 'sa.db'}"
    with RouteStore(url, record_text=True) as s:
        assert type(s._backend).__name__ == "_SQLAlchemyBackend"
        for i in range(30):
            s.record(dec("weak", f"sqlalchemy prompt {i}" + LONG, f"r{i}"))
            s.feedback(f"r{i}", thumbs=i < 10)
        s.flush()
        assert len(s.decisions()) == 30
        winners = [b.winner for b in s.battles()]
    assert winners.count("model_b") == 10 and winners.count("model_a") == 20
    assert len(battles_from_store(url)) == 30
