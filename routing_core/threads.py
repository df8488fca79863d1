"""Intra-op threads for the routing path: a default that fits the machine, and a knob.

A routing decision is a small forward pass (one prompt, at most 256 tokens). torch's default runs it on every
core with OpenMP workers that spin-wait at each barrier; on a busy machine (the application, its HTTP clients
and other processes competing for the same cores) those barriers collapse: one `mf` decision took ~930 ms with
the default against ~30 ms on one thread at load average ~5 on 2 cores. So the routing path uses

    default = max(1, min(4, usable_cores // 2))      (2 cores -> 1, 4 -> 2, 8 or more -> 4)

leaving the other half of the machine to the application, and capping at 4 because a 256-token MiniLM pass
scales poorly past that. Override with the environment variable `ROUTELLM_NUM_THREADS` or the `num_threads=`
argument of the embedders. The setting applies to the routing worker thread only (torch's OpenMP thread count
is per calling thread): the application's own torch threads are left as they were.
"""

from __future__ import annotations

import os
import threading

ENV_VAR = "ROUTELLM_NUM_THREADS"
MAX_DEFAULT_THREADS = 4


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / container limits where the OS reports them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for the routing path: $ROUTELLM_NUM_THREADS if set, else half the usable cores, 1 to 4."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}") from None
        if n < 1:
            raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}")
        return n
    return max(1, min(MAX_DEFAULT_THREADS, usable_cores() // 2))


def resolve_threads(num_threads: int | None) -> int:
    """An explicit thread count (validated) or the default."""
    if num_threads is None:
        return default_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    return num_threads


def set_torch_threads_for_this_thread(num_threads: int) -> None:
    """Run this thread's torch ops on `num_threads` intra-op threads without changing other threads' setting.

    torch.set_num_threads sets the calling thread's OpenMP/MKL count, but also the value threads that have not
    used torch yet start with; that process-wide start value is put back from a short-lived helper thread.
    """
    import torch

    before = torch.get_num_threads()  # the start value (this thread has not set its own yet, or had it set)
    torch.set_num_threads(num_threads)
    if before != num_threads:
        restore = threading.Thread(
            target=torch.set_num_threads, args=(before,), name="routellm-threads-restore"
        )
        restore.start()
        restore.join()
