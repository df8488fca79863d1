"""Batching for the routing path: length-sorted batches, and micro-batching of concurrent calls.

`map_length_sorted`: similar lengths share a batch, so padding (and time) stays small.

`MicroBatcher`: calls made at the same time from different threads (or asyncio tasks, through `arun`) are
served by one call of the batch function, so N concurrent one-prompt decisions cost about one batched forward
pass instead of N serial ones. One worker thread per batcher owns the model; callers hand it their items and
wait on a future, so no caller holds a lock while another's text is tokenized. Batching is "natural": an idle
worker starts at once (no added latency for a lone call), and whatever arrives while it computes is taken
together next, up to `max_batch` items (an optional `window_s` waits a little longer to collect more).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def map_length_sorted(
    texts: Sequence[str],
    batch_size: int,
    fn: Callable[[list[str]], np.ndarray],
    width: int | None = None,
    split_padding: bool = False,
) -> np.ndarray:
    """Apply `fn` to batches of texts sorted by length and return its rows in the original order.

    `fn` maps a list of texts to an array with one row (or one value) per text; `width` is the row width
    (None for one value per text). With `split_padding`, a batch is also cut where padding every text to the
    next one's length would more than double the work (and add over PAD_SLACK_CHARS characters), so one long
    text does not make ten short ones pay for its length.
    """
    shape = (len(texts),) if width is None else (len(texts), width)
    out = np.zeros(shape, dtype=np.float32 if width else np.float64)
    lengths = [len(t) for t in texts]
    order = [int(i) for i in np.argsort(lengths, kind="stable")]
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        n = lengths[i]
        padded = (len(current) + 1) * n
        too_uneven = (
            split_padding and current and padded > 2 * (total + n) and padded - total - n > PAD_SLACK_CHARS
        )
        if len(current) == batch_size or too_uneven:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        batches.append(current)
    for idx in batches:
        out[idx] = fn([texts[i] for i in idx])
    return out


PAD_SLACK_CHARS = 2048  # ~500 tokens of padding are tolerated before a batch is split


@dataclass(slots=True)
class _Job:
    items: list[Any]
    future: concurrent.futures.Future[np.ndarray]


class MicroBatcher:
    """Serve concurrent `fn(items) -> array (one row per item)` calls with as few `fn` calls as possible.

    - `run(items)` (blocking) and `await arun(items)` (asyncio, never blocks the event loop and needs no thread
      per waiting call) return exactly the rows `fn(items)` would, in the caller's order.
    - Jobs waiting together are concatenated into one `fn` call of at most `max_batch` items (a larger job runs
      alone, in chunks of `max_batch` when `sort_key` is given: sorted by it, so each chunk pads little).
    - If a call on several callers' items fails, each caller's job is retried alone, so an exception reaches
      only the callers whose items cause it.
    - `setup` runs once in the worker thread before its first call (e.g. its torch thread count).
    - With `inline_fn`, a blocking `run` that finds the batcher idle (nothing queued, nothing running) runs
      `inline_fn(items)` in the caller's own thread: a lone decision pays no thread hand-off (two context
      switches, several ms on a loaded machine). Calls arriving meanwhile queue and go together next.
    - The worker exits after `idle_s` seconds without work and starts again on the next call, so an unused
      batcher holds no thread (and can be garbage-collected with its owner).
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], np.ndarray],
        max_batch: int = 64,
        window_s: float = 0.0,
        name: str = "routellm-batcher",
        setup: Callable[[], None] | None = None,
        sort_key: Callable[[Any], int] | None = None,
        idle_s: float = 30.0,
        inline_fn: Callable[[list[Any]], np.ndarray] | None = None,
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive int, got {max_batch!r}")
        if not isinstance(window_s, int | float) or not 0.0 <= window_s <= 1.0:
            raise ValueError(f"window_s must be a number of seconds in [0, 1], got {window_s!r}")
        self.fn, self.max_batch, self.window_s, self.name = fn, max_batch, float(window_s), name
        self.setup, self.sort_key, self.idle_s, self.inline_fn = setup, sort_key, float(idle_s), inline_fn
        self._run_lock = threading.Lock()  # held while a batch runs (worker or inline): one forward at a time
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.calls = 0  # fn calls made (for tests and benchmarks)
        self.items_served = 0

    # --- callers -----------------------------------------------------------------------------------------

    def submit(self, items: Sequence[Any]) -> concurrent.futures.Future[np.ndarray]:
        """Queue `items` (at least one) and return a future of their rows."""
        items = list(items)
        if not items:
            raise ValueError("MicroBatcher.submit needs at least one item")
        fut: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
        if len(items) > self.max_batch and self.sort_key is not None:
            return self._submit_chunked(items)
        with self._cond:
            self._ensure_worker()
            self._queue.append(_Job(items, fut))
            self._cond.notify()
        return fut

    def _submit_chunked(self, items: list[Any]) -> concurrent.futures.Future[np.ndarray]:
        """A large job as length-sorted chunks of max_batch (other callers' jobs can run between them)."""
        assert self.sort_key is not None
        order = sorted(range(len(items)), key=lambda i: self.sort_key(items[i]))  # type: ignore[misc]
        chunks = [order[s : s + self.max_batch] for s in range(0, len(order), self.max_batch)]
        parts = [self.submit([items[i] for i in c]) for c in chunks]
        done: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
        remaining = [len(parts)]
        lock = threading.Lock()

        def finish(_: concurrent.futures.Future[np.ndarray]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0] or done.done():
                    return
            try:
                rows = [p.result() for p in parts]
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                done.set_exception(e)
                return
            out = np.empty((len(items), *rows[0].shape[1:]), dtype=rows[0].dtype)
            for c, r in zip(chunks, rows, strict=True):
                out[c] = r
            done.set_result(out)

        for p in parts:
            p.add_done_callback(finish)
        return done

    def run(self, items: Sequence[Any]) -> np.ndarray:
        """Rows of `fn(items)`, computed together with whatever other callers submit meanwhile (blocking)."""
        if threading.current_thread() is self._thread:  # fn calling back into its own batcher: no deadlock
            return np.asarray(self.fn(list(items)))
        items = list(items)
        if self.inline_fn is not None and 0 < len(items) <= self.max_batch:
            with self._cond:
                idle = not self._queue and self._run_lock.acquire(blocking=False)
            if idle:
                try:
                    self.calls += 1
                    self.items_served += len(items)
                    out = np.asarray(self.inline_fn(items))
                finally:
                    self._run_lock.release()
                if out.shape[:1] != (len(items),):
                    raise RuntimeError(
                        f"{self.name}: batch function returned {out.shape[:1]} rows for {len(items)} items"
                    )
                return out
        return self.submit(items).result()

    async def arun(self, items: Sequence[Any]) -> np.ndarray:
        """`run` for asyncio: awaits the worker's result without blocking the event loop or using a thread."""
        return await asyncio.wrap_future(self.submit(items))

    def pending(self) -> int:
        """Jobs queued and not yet taken by the worker."""
        with self._cond:
            return len(self._queue)

    # --- the worker --------------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._pid != os.getpid():  # forked: the worker thread did not survive
            self._thread, self._pid = None, os.getpid()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()

    def _take(self) -> list[_Job] | None:
        """Wait for work; the jobs of the next batch (at most max_batch items), with the run lock held, or None
        (lock not held) to stop when idle."""
        with self._cond:
            idle_until = time.monotonic() + self.idle_s
            while not self._queue:
                left = idle_until - time.monotonic()
                if left <= 0:
                    self._thread = None  # under the lock: the next submit starts a new worker
                    return None
                self._cond.wait(left)
        self._run_lock.acquire()  # wait for an inline call to finish; what queues meanwhile joins this batch
        with self._cond:
            if self.window_s > 0 and len(self._queue[0].items) < self.max_batch:
                deadline = time.monotonic() + self.window_s
                while sum(len(j.items) for j in self._queue) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            jobs = [self._queue.popleft()]
            total = len(jobs[0].items)
            while self._queue and total + len(self._queue[0].items) <= self.max_batch:
                job = self._queue.popleft()
                jobs.append(job)
                total += len(job.items)
        return [j for j in jobs if j.future.set_running_or_notify_cancel()]  # drop cancelled callers

    def _work(self) -> None:
        if self.setup is not None:
            try:
                self.setup()
            except Exception as e:  # a failed tuning step must not strand the callers
                warnings.warn(
                    f"{self.name}: worker setup failed ({e}); continuing without it",
                    RuntimeWarning,
                    stacklevel=1,
                )
        while True:
            jobs = self._take()
            if jobs is None:
                return
            try:
                if jobs:
                    self._serve(jobs)
            finally:
                self._run_lock.release()

    def _call(self, items: list[Any]) -> np.ndarray:
        self.calls += 1
        self.items_served += len(items)
        out = np.asarray(self.fn(items))
        if out.shape[:1] != (len(items),):
            raise RuntimeError(
                f"{self.name}: batch function returned {out.shape[:1]} rows for {len(items)} items"
            )
        return out

    def _serve(self, jobs: list[_Job]) -> None:
        items = [x for j in jobs for x in j.items]
        try:
            out = self._call(items)
        except BaseException as e:  # noqa: BLE001 - handed to the callers
            if len(jobs) == 1:
                jobs[0].future.set_exception(e)
                return
            for j in jobs:  # isolate: only the callers whose own items fail see an exception
                try:
                    j.future.set_result(self._call(j.items))
                except BaseException as e2:  # noqa: BLE001
                    j.future.set_exception(e2)
            return
        start = 0
        for j in jobs:
            end = start + len(j.items)
            j.future.set_result(out[start:end].copy() if len(jobs) > 1 else out)
            start = end
