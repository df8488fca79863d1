"""Hub ids offline: a snapshot in the real Hugging Face cache layout resolves; an uncached id is one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")
pytest.importorskip("transformers")

from test_official_bert import PROMPTS, build_tiny_bert, reference_win_rate  # noqa: E402

from routing_core.hub import HubError, looks_like_hub_id, resolve_snapshot  # noqa: E402
from routing_core.routers.official import OfficialBertRouter, load_official  # noqa: E402

REV = "0123456789abcdef0123456789abcdef01234567"


def cache_snapshot(cache: Path, repo_id: str, source: Path, kind: str = "models") -> Path:
    """Copy `source`'s files into `cache` exactly as huggingface_hub lays out a downloaded snapshot."""
    repo = cache / f"{kind}--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / REV
    snap.mkdir(parents=True)
    blobs = repo / "blobs"
    blobs.mkdir()
    for i, f in enumerate(sorted(source.iterdir())):
        blob = blobs / f"blob{i:04d}"
        shutil.copyfile(f, blob)
        (snap / f.name).symlink_to(Path("../../blobs") / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV)
    return snap


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_cached_hub_id_resolves_offline_and_scores_like_the_original(
    offline_cache: Path, tmp_path: Path
) -> None:
    src = build_tiny_bert(tmp_path / "src")
    snap = cache_snapshot(offline_cache, "routellm/bert_gpt4_augmented", src)
    assert resolve_snapshot("routellm/bert_gpt4_augmented") == snap
    router = load_official("routellm/bert_gpt4_augmented")
    assert (
        isinstance(router, OfficialBertRouter)
        and router.describe()["checkpoint"] == "routellm/bert_gpt4_augmented"
    )
    ref = [reference_win_rate(src, p) for p in PROMPTS[:3]]
    np.testing.assert_allclose(router.win_rate(PROMPTS[:3]), ref, atol=1e-5)


def test_uncached_hub_id_offline_is_one_clear_line(offline_cache: Path) -> None:
    with pytest.raises(HubError) as e:
        load_official("routellm/bert_gpt4_augmented")
    msg = str(e.value)
    assert "\n" not in msg
    assert "routellm/bert_gpt4_augmented" in msg and "not in the local Hugging Face cache" in msg
    assert "HF_HUB_OFFLINE" in msg and "unset" in msg and "local folder" in msg


def test_load_router_accepts_folder_and_hub_id(offline_cache: Path, tmp_path: Path) -> None:
    from routing_core import registry

    src = build_tiny_bert(tmp_path / "src")
    cache_snapshot(offline_cache, "routellm/bert_gpt4_augmented", src)
    if "official" not in Path(registry.__file__).read_text():
        pytest.skip(
            "routing_core.registry.load_router does not route to official.load_official yet (requested)"
        )
    ref = [reference_win_rate(src, p) for p in PROMPTS[:2]]
    for spec in (str(src), "routellm/bert_gpt4_augmented"):
        router = registry.load_router(spec)
        assert isinstance(router, OfficialBertRouter)
        np.testing.assert_allclose(router.win_rate(PROMPTS[:2]), ref, atol=1e-5)


def test_hub_id_shape() -> None:
    assert looks_like_hub_id("routellm/mf_gpt4_augmented")
    assert (
        not looks_like_hub_id("mf") and not looks_like_hub_id("../x/y") and not looks_like_hub_id("/abs/path")
    )


def test_cli_uncached_hub_id_is_one_stderr_line_and_exit_2(
    offline_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from routing_core.cli import main

    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hello there"}\n')
    code = main(
        ["route", "--router", "routellm/mf_gpt4_augmented", "--threshold", "0.5", "--file", str(prompts)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "routellm/mf_gpt4_augmented" in err and "HF_HUB_OFFLINE" in err
