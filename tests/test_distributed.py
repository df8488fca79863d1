"""`routing_core.distributed` on a local Ray (2 CPUs): same decisions as in process, Parquet out, cache, labelling.

Skipped when Ray is not installed (`pip install 'ray[data]'`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from routing_core import distributed  # noqa: E402
from routing_core.registry import load_router  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    distributed.init_ray(num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_local_ray_uses_at_most_two_cpus(local_ray: Any) -> None:
    """The CI machine has 2 cores: the local cluster the tests start holds 2 CPUs."""
    assert local_ray.cluster_resources().get("CPU") == 2


def test_init_ray_passes_the_cpu_cap_or_joins_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.append(kw))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    distributed.init_ray(num_cpus=2)
    assert seen[-1]["num_cpus"] == 2 and "address" not in seen[-1]
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    distributed.init_ray(num_cpus=2)
    assert seen[-1]["address"] == "ray://head:10001" and "num_cpus" not in seen[-1]


def prompts(n: int) -> list[str]:
    """n prompts of varied length, every 97th one empty (routed to the no-text side)."""
    return [
        "" if i % 97 == 5 else f"prompt {i}: " + "explain this in more detail " * (i % 7) for i in range(n)
    ]


def in_process(router: Any, texts: list[str], threshold: float) -> list[dict[str, Any]]:
    """The CLI's in-process path (`routing-core route --json`)."""
    from routing_core.cli.route import decide_records
    from routing_core.data.records import PromptRecord

    recs = [PromptRecord(i, t, f"line {i + 1}", None) for i, t in enumerate(texts)]
    return decide_records(router, recs, threshold, "strong")


def test_route_dataset_matches_the_in_process_path(local_ray: Any) -> None:
    texts = prompts(1000)
    router = load_router("length")
    t = float(np.median(router.win_rate([x for x in texts if x])))
    got = distributed.collect_decisions(
        distributed.route_dataset(texts, "length", threshold=t, batch_size=256)
    )
    want = in_process(router, texts, t)
    assert [r["index"] for r in got] == list(range(1000))  # none lost, none reordered
    assert [r["side"] for r in got] == [r["side"] for r in want]
    assert [r["reason"] for r in got] == [r["reason"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert (g["win_rate"] is None) == (w["win_rate"] is None)
        if g["win_rate"] is not None:
            assert abs(g["win_rate"] - w["win_rate"]) < 1e-12
    assert {r["side"] for r in got} == {"strong", "weak"}
    assert sum(r["reason"] == "no_text" for r in got) == sum(1 for x in texts if not x)


@pytest.mark.slow
def test_embedding_router_on_actors_matches(local_ray: Any) -> None:
    texts = prompts(200)
    router = load_router("difficulty")
    got = distributed.collect_decisions(
        distributed.route_dataset(texts, "difficulty", strong_fraction=0.5, batch_size=64)
    )
    want = in_process(router, texts, router.threshold_for_strong_fraction(0.5))
    rates = [
        (g["win_rate"], w["win_rate"]) for g, w in zip(got, want, strict=True) if w["win_rate"] is not None
    ]
    assert np.allclose([a for a, _ in rates], [b for _, b in rates], atol=1e-5)
    assert sum(g["side"] != w["side"] for g, w in zip(got, want, strict=True)) <= 1  # only at the threshold


def test_route_file_writes_one_parquet_sorted_by_index_with_ids(local_ray: Any, tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    src = tmp_path / "prompts.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts(500)))
    )
    out = tmp_path / "decisions.parquet"
    summary = distributed.route_file(src, out, "length", threshold=0.5)
    table = pq.read_table(out).to_pylist()
    assert summary["n"] == 500 and len(table) == 500
    assert [r["index"] for r in table] == list(range(500)) and [r["id"] for r in table] == [
        f"q{i}" for i in range(500)
    ]
    assert set(table[0]) == {"index", "id", "win_rate", "side", "reason"}


def test_precompute_embeddings_fills_the_training_cache(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routing_core.embedders import resolve_embedder
    from routing_core.training.cache import embed_cached

    texts = [f"text number {i} about routing" for i in range(300)]
    assert distributed.precompute_embeddings(texts, None, tmp_path, batch_size=64) == 300
    assert distributed.precompute_embeddings(texts, None, tmp_path) == 0  # nothing left to do
    emb = resolve_embedder(None)
    expected = emb.embed(texts[:5])

    def refuse(_: Any) -> Any:
        raise AssertionError("the cache should have every vector")

    monkeypatch.setattr(emb, "embed", refuse)
    vecs = embed_cached(emb, texts, tmp_path)
    assert vecs.shape == (300, emb.dim) and np.allclose(vecs[:5], expected, atol=1e-5)


def test_label_dataset_through_ray_gives_every_battle_once(local_ray: Any, tmp_path: Path) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from routing_core.data.loaders import load_battles_jsonl
    from routing_core.labeling import Labeller, read_jsonl_rows

    lab = Labeller(
        FakeListChatModel(responses=["a careful strong answer"]),
        FakeListChatModel(responses=["a weak answer"]),
        FakeListChatModel(responses=["Rating: [[2]]"]),
        names={"strong": "gpt-4o", "weak": "gpt-4o-mini", "judge": "gpt-4o"},
    )
    items = [f"labelled through ray, prompt {i}" for i in range(200)]
    out = tmp_path / "b.jsonl"
    first = distributed.label_dataset(items[:120], lab, out, concurrency=2, chunk_size=16, progress=False)
    assert first.labelled == 120
    report = distributed.label_dataset(items, lab, out, concurrency=2, chunk_size=16, progress=False)
    assert report.already_done == 120 and report.labelled == 80 and report.failed == 0
    battles = load_battles_jsonl(out)
    assert len(battles) == 200 and len({b.id for b in battles}) == 200
    assert {b.winner for b in battles} == {"model_a"}
    assert report.spent_usd is not None and report.spent_usd > 0  # spend comes back from the workers
    assert read_jsonl_rows(out.with_name("b.errors.jsonl")) == []


def test_core_does_not_import_ray() -> None:
    code = "import sys, routing_core, routing_core.distributed, routing_core.labeling, routing_core.store; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
