"""A killed `train` never leaves a checkpoint or an embedding cache that a later run cannot use or detect.

Three layers: the cache's own contract in-process (corrupt shards reported once and rebuilt, interrupted runs
resume); a writer loop (cache shards + checkpoints, nothing else) killed with SIGKILL at random moments, after
each of which every cached vector is exact and the checkpoint loads; and the real `routing-core train` killed by
pid at chosen moments (while starting, after its first cache shard, while its checkpoint folder is being
written), then finished by a last run that reuses the cache.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from routing_core import load_router
from routing_core.training.cache import CacheWarning, embed_cached, load_cache, text_key

ROOT = Path(__file__).resolve().parents[1]
DIM = 8


def key_vector(key: str) -> np.ndarray:
    """The fake embedding of a text, a function of its cache key, so a cached row can be checked exactly."""
    return np.frombuffer(bytes.fromhex(key)[:DIM], dtype=np.uint8).astype(np.float32) / 255.0


class FakeEmbedder:
    """Deterministic, fast, and counts what it embeds (to see what a rerun recomputes)."""

    name = "fake/embedder"
    dim = DIM

    def __init__(self, fail_after: int | None = None) -> None:
        self.embedded: list[str] = []
        self.fail_after = fail_after

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.fail_after is not None and len(self.embedded) >= self.fail_after:
            raise KeyboardInterrupt  # what a Ctrl-C in the middle of a run looks like
        self.embedded.extend(texts)
        return np.stack([key_vector(text_key(t)) for t in texts])


def _store_dir(cache: Path) -> Path:
    return cache / "fake_embedder"


def _check_cache(cache: Path) -> int:
    """Every cached row equals its text's vector and no file is corrupt; returns the number of rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        store = load_cache(_store_dir(cache), DIM)
    for key, vec in store.items():
        np.testing.assert_array_equal(vec, key_vector(key))
    return len(store)


# --- the cache in-process -----------------------------------------------------------------------------------


def test_cache_reuses_vectors_and_resumes_after_an_interruption(tmp_path: Path) -> None:
    texts = [f"prompt number {i}" for i in range(50)]
    interrupted = FakeEmbedder(fail_after=20)
    with pytest.raises(KeyboardInterrupt):
        embed_cached(interrupted, texts, tmp_path, chunk=10)
    assert _check_cache(tmp_path) == 20  # the two finished chunks were kept
    again = FakeEmbedder()
    out = embed_cached(again, texts, tmp_path, chunk=10)
    assert len(again.embedded) == 30  # only what was missing
    np.testing.assert_array_equal(out, np.stack([key_vector(text_key(t)) for t in texts]))
    third = FakeEmbedder()
    embed_cached(third, list(reversed(texts)) + texts[:3], tmp_path, chunk=10)
    assert third.embedded == []


CORRUPTIONS: list[tuple[str, Callable[[Path], None]]] = [
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
    ("empty", lambda p: p.write_bytes(b"")),
    ("garbage", lambda p: p.write_bytes(os.urandom(300))),
    (
        "wrong-dim",
        lambda p: np.savez(open(p, "wb"), keys=np.array(["a" * 40]), vecs=np.zeros((1, DIM + 1), np.float32)),
    ),
    (
        "nan",
        lambda p: np.savez(
            open(p, "wb"), keys=np.array(["a" * 40]), vecs=np.full((1, DIM), np.nan, np.float32)
        ),
    ),
    ("no-keys", lambda p: np.savez(open(p, "wb"), vecs=np.zeros((1, DIM), np.float32))),
    (
        "pickled-object",
        lambda p: np.savez(open(p, "wb"), keys=np.array([{"a": 1}], dtype=object), vecs=np.zeros((1, DIM))),
    ),
]


@pytest.mark.parametrize(("kind", "corrupt"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_cache_is_reported_once_and_rebuilt(
    tmp_path: Path, kind: str, corrupt: Callable[[Path], None]
) -> None:
    texts = [f"text {i}" for i in range(12)]
    embed_cached(FakeEmbedder(), texts, tmp_path, chunk=4)
    shards = sorted(_store_dir(tmp_path).glob("shard-*.npz"))
    assert len(shards) == 3
    corrupt(shards[1])
    e = FakeEmbedder()
    with pytest.warns(CacheWarning, match="is corrupt") as rec:
        out = embed_cached(e, texts, tmp_path, chunk=4)
    assert len(rec) == 1 and str(shards[1]) in str(rec[0].message)
    assert len(e.embedded) == 4  # exactly the lost shard's texts
    np.testing.assert_array_equal(out, np.stack([key_vector(text_key(t)) for t in texts]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # reported once: the next run is clean
        again = FakeEmbedder()
        embed_cached(again, texts, tmp_path, chunk=4)
    assert again.embedded == []


def test_legacy_half_written_store_is_detected(tmp_path: Path) -> None:
    root = _store_dir(tmp_path)
    root.mkdir(parents=True)
    keys = [text_key(f"t{i}") for i in range(3)]
    with open(root / "store.npz", "wb") as f:
        np.savez(f, keys=np.array(keys), vecs=np.stack([key_vector(k) for k in keys]))
    (root / "store.npz").write_bytes(
        (root / "store.npz").read_bytes()[:-30]
    )  # the old in-place np.savez, killed
    with pytest.warns(CacheWarning, match="store.npz is corrupt"):
        out = embed_cached(FakeEmbedder(), ["t0", "t1", "t2"], tmp_path)
    np.testing.assert_array_equal(out, np.stack([key_vector(k) for k in keys]))
    assert not (root / "store.npz").exists()


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    root = _store_dir(tmp_path)
    root.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = root / f".shard-abc.npz.tmp-{int(dead.stdout)}-xyz.npz"
    stale.write_bytes(b"half")
    live = root / f".shard-def.npz.tmp-{os.getpid()}-xyz.npz"
    live.write_bytes(b"being written")
    embed_cached(FakeEmbedder(), ["x"], tmp_path)
    assert not stale.exists() and live.exists()


def test_many_shards_are_merged(tmp_path: Path) -> None:
    texts = [f"t{i}" for i in range(70)]
    embed_cached(FakeEmbedder(), texts, tmp_path, chunk=1)
    assert len(list(_store_dir(tmp_path).glob("*.npz"))) == 70
    assert _check_cache(tmp_path) == 70
    assert len(list(_store_dir(tmp_path).glob("*.npz"))) == 1


def test_corrupt_cache_through_the_cli_is_one_warning_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from routing_core.cli import main

    battles = _battles(tmp_path / "b.jsonl", 40)
    encoder = _tiny_encoder(tmp_path / "enc")
    cache = tmp_path / "cache"
    argv = [
        "train",
        "--router",
        "logistic",
        "--data",
        f"battles:{battles}",
        "--embedder",
        str(encoder),
        "--cache-dir",
        str(cache),
    ]
    assert main([*argv, "--out", str(tmp_path / "ck1")]) == 0
    shard = next(cache.rglob("shard-*.npz"))
    shard.write_bytes(b"not a zip")
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "ck2")]) == 0
    err = capsys.readouterr().err
    warns = [line for line in err.splitlines() if "is corrupt" in line]
    assert len(warns) == 1 and warns[0].startswith("routing-core: warning: embedding cache file")
    assert load_router(str(tmp_path / "ck2")).win_rate(["a question"]).shape == (1,)


# --- a writer loop killed at random moments --------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_core_train_kill import FakeEmbedder
    from routing_core.checkpoints import write_checkpoint
    from routing_core.training.cache import embed_cached

    cache, ck = sys.argv[1], sys.argv[2]
    i = 0
    print("ready", flush=True)
    while True:
        embed_cached(FakeEmbedder(), [f"text {{i}} {{j}}" for j in range(24)], cache, chunk=3)
        write_checkpoint(ck, "length", {{"a": 1.0 + i, "b": 0.0}}, card="x" * 200_000)
        i += 1
    """
)


def _check_checkpoint(ck: Path) -> None:
    """Absent (killed between the two renames of a replace: detectable) or whole and loadable."""
    if not ck.exists():
        return
    router = load_router(str(ck))
    assert router.win_rate(["hello"]).shape == (1,)
    assert (ck / "README.md").read_text() == "x" * 200_000  # written in the same atomic folder as the config


@pytest.mark.slow
def test_writer_killed_at_random_moments_leaves_usable_files(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(ROOT / "tests")))
    cache, ck = tmp_path / "cache", tmp_path / "ck"
    rng = random.Random(0)
    rows = 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(cache), str(ck)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.02, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        new_rows = _check_cache(cache)
        assert new_rows >= rows  # nothing already cached was lost
        rows = new_rows
        _check_checkpoint(ck)
    assert rows > 0


# --- the real CLI killed by pid at chosen moments --------------------------------------------------------------


def _battles(path: Path, n: int) -> Path:
    from test_core_cli import length_battles

    return length_battles(
        path, n, "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "Prove it step by step: ", 4
    )


def _tiny_encoder(folder: Path) -> Path:
    """A one-layer BERT encoder (fast to embed with) in safetensors, with MiniLM's tokenizer."""
    from test_core_checkpoint_safety import _safe_encoder

    return _safe_encoder(folder)


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 120.0) -> bool:
    """SIGKILL `proc` as soon as `ready()` holds; False when it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("the moment to kill at never came")


@pytest.mark.slow
def test_train_killed_by_pid_then_finished(tmp_path: Path) -> None:
    battles = _battles(tmp_path / "b.jsonl", 60)
    encoder = _tiny_encoder(tmp_path / "enc")
    cache, ck = tmp_path / "cache", tmp_path / "ck"
    argv = [sys.executable, "-m", "routing_core", "train", "--router", "logistic", "--data", f"battles:{battles}",
            "--embedder", str(encoder), "--cache-dir", str(cache), "--out", str(ck), "--overwrite"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path
        )

    def shards() -> list[Path]:
        return sorted(cache.rglob("shard-*.npz")) if cache.exists() else []

    def after_check() -> None:
        if ck.exists():
            assert load_router(str(ck)).win_rate(["a question"]).shape == (1,)
        if cache.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("error", CacheWarning)
                for root in [p for p in cache.iterdir() if p.is_dir()]:
                    load_cache(root, 32)

    # 1. while starting up (imports, reading the data)
    proc = start()
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after_check()
    # 2. right after its first embedding shard is on disk
    proc = start()
    _kill_when(proc, lambda: bool(shards()))
    after_check()
    kept = {p: p.stat().st_mtime_ns for p in shards()}
    assert kept
    # 3. while the checkpoint folder is being written (its temp folder exists)
    proc = start()
    killed = _kill_when(proc, lambda: any(p.name.startswith(".ck.tmp-") for p in tmp_path.iterdir()))
    after_check()
    assert all(
        p.exists() and p.stat().st_mtime_ns == t for p, t in kept.items()
    )  # the cache was resumed, not rebuilt
    if killed:
        assert not ck.exists() or (ck / "config.json").is_file()
    # 4. a last run finishes and leaves no temp folder behind
    proc = start()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert not any(p.name.startswith(".ck.tmp-") for p in tmp_path.iterdir())
    after_check()
    assert json.loads((ck / "config.json").read_text())["embedder"] == "embedder"
    # without --overwrite the finished checkpoint is refused, before any work
    res = subprocess.run(argv[:-1], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "not empty" in res.stderr and len(res.stderr.strip().splitlines()) == 1
