"""Ray Data for the big runs: route a dataset of prompts, precompute training embeddings, label through Ray.

Ray is an optional extra (`pip install 'ray[data]'`); nothing here imports it until a function runs. Every
function starts (or joins) Ray through `init_ray`: a local Ray on this machine by default (`num_cpus` caps what
it may use), the cluster named by `address=` or the `RAY_ADDRESS` environment variable otherwise
(`ray://head:10001` or `auto`). The same call runs unchanged on both.

- `route_dataset`: `map_batches` over a pool of actors, each loading the router once; rows keep the input's
  `index` and `id` (from the input, else none: the index is the line number), with the win rate, the side and
  the reason, exactly the rows of the in-process `routing-core route --json` path. `route_file` reads a prompt
  file and writes one Parquet file sorted by index.
- `precompute_embeddings`: embeds the texts missing from the training embedding cache on a pool of actors and
  writes them as cache shards, so `routing-core train --cache-dir DIR` (or `embed_cached`) finds them.
- `label_dataset`: `routing_core.labeling` with prompts split into chunks labelled by Ray tasks, at most
  `concurrency` chunks at once; the driver alone writes the output (append + fsync, resumable), so workers on
  other machines need no shared disk.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.errors import RoutingError

NO_TEXT_REASON = "no_text"
DECISION_COLUMNS = ("index", "id", "win_rate", "side", "reason")


class RayUnavailableError(RoutingError):
    """Ray is not installed (the optional `ray` extra)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayUnavailableError(
            "this needs Ray: pip install 'ray[data]' (or the package's 'ray' extra)"
        ) from e
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None, **kwargs: Any) -> Any:
    """Start a local Ray (at most `num_cpus` CPUs) or join `address` / $RAY_ADDRESS; a no-op when connected."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    opts: dict[str, Any] = {"ignore_reinit_error": True, "logging_level": "ERROR", "log_to_driver": False}
    if address:
        opts["address"] = address
    else:
        opts.update({"num_cpus": num_cpus, "include_dashboard": False})
    opts.update(kwargs)
    ray.init(**opts)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ray


def _one_thread() -> None:
    """One torch/BLAS thread per actor: the actors are the parallelism."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


# --- routing ------------------------------------------------------------------------------------------------


class _RouteActor:
    """Holds one loaded router; turns a batch of prompts into decision columns."""

    def __init__(
        self, router: Any, threshold: float, no_text_side: str, router_kwargs: Mapping[str, Any]
    ) -> None:
        from routing_core.registry import load_router

        _one_thread()
        self.router = load_router(router, **dict(router_kwargs)) if router_kwargs else load_router(router)
        self.threshold = threshold
        self.no_text_side = no_text_side

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from routing_core.policy import prefers_strong

        prompts = [str(p) for p in batch["prompt"]]
        has_text = np.array([bool(p.strip()) for p in prompts], dtype=bool)
        rates = np.full(len(prompts), np.nan, dtype=np.float64)
        texts = [p for p, keep in zip(prompts, has_text, strict=True) if keep]
        if texts:
            rates[has_text] = self.router.win_rate(texts)
        strong = prefers_strong(np.nan_to_num(rates, nan=0.0), self.threshold)  # type: ignore[arg-type]
        side = np.where(has_text, np.where(strong, "strong", "weak"), self.no_text_side)
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "id": np.asarray(batch["id"], dtype=object),
            "win_rate": rates,
            "side": side.astype(object),
            "reason": np.where(has_text, "router", NO_TEXT_REASON).astype(object),
        }


def _records(prompts: Iterable[Any]) -> list[dict[str, Any]]:
    """`{index, id, prompt}` rows from strings, PromptRecords or `{prompt, id?}` mappings."""
    rows = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            rows.append({"index": i, "id": None, "prompt": p})
        elif isinstance(p, Mapping):
            rows.append({"index": int(p.get("index", i)), "id": p.get("id"), "prompt": str(p["prompt"])})
        elif hasattr(p, "text") and hasattr(p, "index"):
            rows.append({"index": int(p.index), "id": getattr(p, "id", None), "prompt": str(p.text)})
        else:
            raise TypeError(f"prompts[{i}] must be a str, a mapping with 'prompt', or a PromptRecord")
    return rows


def resolve_threshold(router: Any, threshold: float | None, strong_fraction: float | None) -> float:
    """The threshold to route with: given, or the router's calibrated one for `strong_fraction` (default 0.5,
    as `routing-core route`), through `routing_core.policy.resolve_threshold`."""
    from routing_core.policy import resolve_threshold as policy_threshold
    from routing_core.registry import load_router

    if threshold is None and strong_fraction is None:
        strong_fraction = 0.5
    r = load_router(router) if threshold is None else None
    return float(policy_threshold(r, threshold, strong_fraction, owner="route_dataset"))  # type: ignore[arg-type]


def route_dataset(
    prompts: Iterable[Any] | Any,
    router: Any = None,
    *,
    threshold: float | None = None,
    strong_fraction: float | None = None,
    no_text_side: str = "strong",
    concurrency: int | None = None,
    batch_size: int = 512,
    num_cpus: int | None = None,
    address: str | None = None,
    router_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """A lazy Ray Dataset of decisions (`index, id, win_rate, side, reason`), one row per prompt.

    `prompts` is a Ray Dataset with `prompt` (and `index`, `id`) columns, or strings / records / mappings.
    `concurrency` actors (default: the CPUs Ray has, local Ray capped at `num_cpus`) each load `router` once
    (a bundled name, a checkpoint folder, or a Router object, shipped to them). Win rate is NaN for an empty
    prompt, which goes to `no_text_side` with reason "no_text", as in the CLI.
    """
    from routing_core.registry import DEFAULT_ROUTER

    if no_text_side not in ("strong", "weak"):
        raise ValueError(f"no_text_side must be 'strong' or 'weak', got {no_text_side!r}")
    ray = init_ray(address, num_cpus)
    router = DEFAULT_ROUTER if router is None else router
    t = resolve_threshold(router, threshold, strong_fraction)
    if isinstance(prompts, ray.data.Dataset):
        ds = prompts
    else:
        rows = _records(prompts)
        if not rows:
            raise ValueError("no prompts to route")
        ds = ray.data.from_items(
            rows, override_num_blocks=max(1, min(512, math.ceil(len(rows) / batch_size)))
        )
    n_actors = concurrency or max(1, int(ray.available_resources().get("CPU", 1)))
    return ds.map_batches(
        _RouteActor,
        fn_constructor_kwargs={
            "router": router,
            "threshold": t,
            "no_text_side": no_text_side,
            "router_kwargs": dict(router_kwargs or {}),
        },
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=n_actors,
        num_cpus=1,
    )


def collect_decisions(ds: Any) -> list[dict[str, Any]]:
    """Every decision row of `route_dataset`, sorted by input index (win rate None for no-text prompts)."""
    rows: list[dict[str, Any]] = []
    for batch in ds.iter_batches(batch_format="numpy", batch_size=8192):
        for i, id_, w, s, r in zip(*(batch[c] for c in DECISION_COLUMNS), strict=True):
            rows.append({"index": int(i), "id": None if id_ is None else str(id_),
                         "win_rate": None if np.isnan(w) else float(w), "side": str(s), "reason": str(r)})  # fmt: skip
    rows.sort(key=lambda r: r["index"])
    return rows


def write_decisions_parquet(ds: Any, out: str | Path) -> int:
    """Write the decisions to one Parquet file sorted by index (atomically); returns the row count."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    from routing_core.atomic import atomic_write

    rows = collect_decisions(ds)
    table = pa.table(
        {
            "index": pa.array([r["index"] for r in rows], pa.int64()),
            "id": pa.array([r["id"] for r in rows], pa.string()),
            "win_rate": pa.array([r["win_rate"] for r in rows], pa.float64()),
            "side": pa.array([r["side"] for r in rows], pa.string()),
            "reason": pa.array([r["reason"] for r in rows], pa.string()),
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: pq.write_table(table, tmp))
    return len(rows)


def route_file(path: str | Path, out: str | Path, router: Any = None, **kwargs: Any) -> dict[str, Any]:
    """`routing-core route --ray --file PATH --out OUT.parquet`: route a prompt file on Ray, write Parquet."""
    from routing_core.data.loaders import read_prompt_file

    f = read_prompt_file(path)
    ds = route_dataset(f.records, router, **kwargs)
    n = write_decisions_parquet(ds, out)
    return {"n": n, "out": str(out), "blank_lines_skipped": f.blank_lines}


# --- embeddings ---------------------------------------------------------------------------------------------


class _EmbedActor:
    """Holds one loaded embedder; embeds a batch of texts."""

    def __init__(self, embedder: Any) -> None:
        from routing_core.embedders import resolve_embedder

        _one_thread()
        self.embedder = resolve_embedder(embedder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vecs = np.asarray(self.embedder.embed([str(t) for t in batch["text"]]), dtype=np.float32)
        return {"key": batch["key"], "vec": vecs}


def precompute_embeddings(
    texts: Iterable[str],
    embedder: Any = None,
    cache_dir: str | Path = ".cache/embeddings",
    *,
    concurrency: int | None = None,
    batch_size: int = 512,
    num_cpus: int | None = None,
    address: str | None = None,
) -> int:
    """Embed the texts not yet in the training cache on Ray actors and save them as cache shards; returns how
    many were embedded. `routing-core train --cache-dir CACHE_DIR` (same embedder) then embeds nothing."""
    from routing_core.embedders import resolve_embedder
    from routing_core.training.cache import _cache_root, _write_shard, load_cache, text_key

    emb = resolve_embedder(embedder)
    root = _cache_root(cache_dir, emb)
    root.mkdir(parents=True, exist_ok=True)
    known = load_cache(root, emb.dim)
    missing = {}
    for t in texts:
        k = text_key(t)
        if k not in known:
            missing[k] = t
    if not missing:
        return 0
    ray = init_ray(address, num_cpus)
    rows = [{"key": k, "text": t} for k, t in sorted(missing.items())]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(512, math.ceil(len(rows) / batch_size))))
    n_actors = concurrency or max(1, int(ray.available_resources().get("CPU", 1)))
    spec = embedder if isinstance(embedder, str | type(None)) else emb
    out = ds.map_batches(_EmbedActor, fn_constructor_kwargs={"embedder": spec}, batch_size=batch_size,
                         batch_format="numpy", concurrency=n_actors, num_cpus=1)  # fmt: skip
    done = 0
    for batch in out.iter_batches(batch_format="numpy", batch_size=batch_size):
        keys = [str(k) for k in batch["key"]]
        vecs = np.asarray(batch["vec"], dtype=np.float32)
        if vecs.shape != (len(keys), emb.dim):
            raise ValueError(
                f"embedder {emb.name!r} returned shape {vecs.shape}, expected {(len(keys), emb.dim)}"
            )
        from routing_core.training.cache import _shard_name

        _write_shard(root / _shard_name(keys), keys, vecs)
        done += len(keys)
    return done


# --- labelling ----------------------------------------------------------------------------------------------


def _label_chunk(labeller: Any, items: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Label one chunk in a Ray worker: ("ok", battle row) or ("error", error row) per prompt."""
    return asyncio.run(labeller.alabel_rows(items))


def label_dataset(
    prompts: Iterable[Any],
    labeller: Any,
    out: str | Path,
    errors: str | Path | None = None,
    *,
    concurrency: int = 2,
    chunk_size: int = 64,
    retry_errors: bool = True,
    max_cost: float | None = None,
    progress: bool = True,
    num_cpus: int | None = None,
    address: str | None = None,
) -> Any:
    """`labeller.label(prompts, out, errors)` with the work spread over Ray tasks, at most `concurrency` chunks
    of `chunk_size` prompts in flight (each chunk also keeps the labeller's own call concurrency). The driver
    writes every row, so resuming, the errors file and the estimate behave as in `Labeller.label`."""
    ray = init_ray(address, num_cpus)
    remote = ray.remote(num_cpus=0)(_label_chunk)
    labeller_ref = ray.put(labeller)

    def run_chunks(todo: Sequence[Any], sink: Any) -> None:
        chunks = [list(todo[i : i + chunk_size]) for i in range(0, len(todo), chunk_size)]
        pending: list[Any] = []
        for chunk in chunks:
            if len(pending) >= concurrency:
                ready, pending = ray.wait(pending, num_returns=1)
                for kind, row in ray.get(ready[0]):
                    sink(kind, row)
            pending.append(remote.remote(labeller_ref, chunk))
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for kind, row in ray.get(ready[0]):
                sink(kind, row)

    return labeller.label(prompts, out, errors, retry_errors=retry_errors, max_cost=max_cost, progress=progress,
                          runner=run_chunks)  # fmt: skip
