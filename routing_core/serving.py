"""Routing decisions for concurrent callers: whole `win_rate` calls micro-batched per router, off the event loop.

    rates = await awin_rate(router, [prompt])        # asyncio: no thread per waiting call, loop never blocks
    rates = win_rate_batched(router, [prompt])       # threads: blocks this thread only

Both return exactly what `router.win_rate(prompts)` returns (float64 array in [0, 1], one per prompt, in
order) and raise the same errors for bad input, in the caller. Concurrent calls on the same router object are
served by one `router.win_rate` call on all their prompts (routing_core.batching.MicroBatcher, up to
`MAX_BATCH` prompts), so 200 concurrent one-prompt decisions cost about one batched pass, for every router kind
(embedding routers, BERT, causal LLM). Any router works: batching needs only that a router's win rate for a
prompt does not depend on the other prompts of its batch, which holds for every router in this package.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from routing_core.batching import MicroBatcher
from routing_core.router import Router, check_prompts
from routing_core.threads import default_threads, set_torch_threads_for_this_thread

MAX_BATCH = 256  # prompts per router call; the embedders split it further into length-sorted batches of 64

_batchers: weakref.WeakKeyDictionary[Router, MicroBatcher] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def router_batcher(router: Router) -> MicroBatcher:
    """The micro-batcher serving `router` (one per router object, created on first use)."""
    if not isinstance(router, Router):
        raise TypeError(f"router must be a routing_core Router, got {type(router).__name__}")
    with _lock:
        b = _batchers.get(router)
        if b is None:
            ref = weakref.ref(router)  # the batcher must not keep its router alive

            def win_rates(prompts: list[str]) -> np.ndarray:
                r = ref()
                if r is None:  # pragma: no cover - a caller holds the router while it waits
                    raise RuntimeError("router was garbage-collected while a decision was pending")
                return r.win_rate(prompts)

            threads = default_threads()
            b = MicroBatcher(
                win_rates,
                max_batch=MAX_BATCH,
                name=f"routellm-route-{router.name}",
                setup=lambda: set_torch_threads_for_this_thread(threads),
                sort_key=len,
            )
            _batchers[router] = b
        return b


def _validated(prompts: Sequence[str]) -> list[str]:
    return check_prompts(prompts)


async def awin_rate(router: Router, prompts: Sequence[str]) -> np.ndarray:
    """`router.win_rate(prompts)` for asyncio, batched with concurrent callers, computed off the event loop."""
    items = _validated(prompts)
    if not items:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(await router_batcher(router).arun(items), dtype=np.float64)


def win_rate_batched(router: Router, prompts: Sequence[str]) -> np.ndarray:
    """`router.win_rate(prompts)` from any thread, batched with concurrent callers (blocks this thread)."""
    items = _validated(prompts)
    if not items:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(router_batcher(router).run(items), dtype=np.float64)


def batching_stats(router: Any) -> dict[str, int]:
    """Calls and prompts served so far by a router's batcher (zeros if it has none): for benchmarks and logs."""
    b = _batchers.get(router) if isinstance(router, Router) else None
    return {"calls": 0 if b is None else b.calls, "prompts": 0 if b is None else b.items_served}
