"""Untrusted checkpoints are inert and malformed ones are one clear CheckpointError.

Rows: every config field of every kind with a wrong type, range or missing value; wrong tensor shapes, dtypes,
NaN weights, truncated files; paths that leave the checkpoint folder; and pickle payloads planted in every place
a config can point to (the checkpoint folder, its encoder folder, its backbone folder), with an audit hook and a
patched `torch.load` proving none is opened. Writes are atomic and a local encoder is copied in safely.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routing_core import CheckpointError, load_router
from routing_core.checkpoints import (
    BUNDLED_ASSETS,
    PRETRAINED_DIR,
    bundled_names,
    read_config,
    write_checkpoint,
)
from routing_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


MODELS = [
    "gpt-4-1106-preview",
    "mixtral-8x7b-instruct-v0.1",
    "claude-2.1",
    "llama-2-70b-chat",
    "gpt-3.5-turbo",
]
COMMON = {
    "embedder": "all-MiniLM-L6-v2",  # a bundled encoder: its text dim (384) is known, so shapes are checked
    "calibrator": {"kind": "platt", "a": 1.2, "b": -0.1},
    "reference_win_rates": [0.1, 0.3, 0.5, 0.7, 0.9],
    "training": {},
}


def _template_params(kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A small, valid checkpoint of each kind (random finite weights with the shapes the config implies)."""
    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    if kind == "logistic":
        return {"l2": 1.0}, {"coef": f32(389)}
    if kind == "knn":
        return {"k": 8, "prior_weight": 2.0}, {
            "keys": f32(50, 384).astype(np.float16),
            "targets": rng.random(50).astype(np.float32),
        }
    if kind == "mf":
        return {"dim": 16, "models": MODELS, "strong_model": MODELS[0], "weak_model": MODELS[1]}, {
            "P": f32(5, 16), "W": f32(16, 384), "w": f32(16),
        }  # fmt: skip
    if kind == "length":
        return {"a": 0.5, "b": -3.0, "embedder": None}, {}
    if kind == "sw_ranking":
        pairs = np.array([(i, j) for i in range(4) for j in range(i + 1, 4)], dtype=np.int64)
        params = {"strong_model": MODELS[0], "weak_model": MODELS[1], "num_tiers": 4, "gamma": 10.0, "l2": 1.0,
                  "newton_steps": 3, "models": MODELS}  # fmt: skip
        return params, {
            "keys": f32(20, 384).astype(np.float16), "wins": rng.random((20, 6)).astype(np.float16),
            "counts": np.ones((20, 6), np.float16), "pairs": pairs, "model_tier": np.array([3, 0, 2, 1, 1]),
            "prior": f32(4),
        }  # fmt: skip
    if kind == "bert":
        params = {"backbone": "all-MiniLM-L6-v2", "mode": "frozen", "train_layers": 0, "max_length": 64}
        return params, {"head.weight": f32(3, 384), "head.bias": f32(3)}
    if kind == "causal_llm":
        params = {"backbone": "SmolLM2-135M-Instruct", "mode": "lora", "lora_r": 8, "max_length": 64}
        return params, {"adapter": f32(2)}
    raise AssertionError(kind)


def _copy(kind: str, tmp_path: Path) -> Path:
    """A fresh valid checkpoint of `kind` to damage (the bundled ones are not all shipped any more)."""
    params, tensors = _template_params(kind)
    return write_checkpoint(tmp_path / f"ck-{kind}", kind, {**COMMON, **params}, tensors)


@pytest.mark.parametrize("kind", ["logistic", "knn", "mf", "length", "sw_ranking", "bert", "causal_llm"])
def test_templates_are_valid(tmp_path: Path, kind: str) -> None:
    """Every row below breaks one thing in one of these; undamaged, each validates (and loads)."""
    folder = _copy(kind, tmp_path)
    assert read_config(folder)["router"] == kind
    if kind != "causal_llm":  # loading it means dequantising SmolLM2 (20 s); its config is what the rows test
        assert load_router(str(folder)).name == kind


def _edit_config(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.pop(key)


# (bundled kind to start from, config edit, fragments the error must contain)
CONFIG_ROWS = [
    pytest.param(
        "logistic",
        _set("calibrator", {"kind": "platt", "a": -1.0, "b": 0.0}),
        ["'calibrator'", "positive slope"],
        id="negative-calibration-slope",
    ),
    pytest.param(
        "logistic",
        _set("calibrator", {"kind": "platt", "a": 0.0, "b": 0.0}),
        ["'calibrator'"],
        id="zero-calibration-slope",
    ),
    pytest.param("logistic", _set("calibrator", "platt"), ["'calibrator'"], id="calibrator-a-string"),
    pytest.param(
        "logistic", _set("calibrator", {"kind": "isotonic"}), ["'calibrator'"], id="calibrator-unknown-kind"
    ),
    pytest.param(
        "logistic",
        _set("calibrator", {"kind": "platt", "a": 1.0}),
        ["'calibrator'"],
        id="calibrator-missing-b",
    ),
    pytest.param(
        "logistic",
        _set("reference_win_rates", [0.2, "x"]),
        ["'reference_win_rates'"],
        id="reference-not-numbers",
    ),
    pytest.param(
        "logistic",
        _set("reference_win_rates", [0.9, 0.1]),
        ["'reference_win_rates'", "sorted"],
        id="reference-unsorted",
    ),
    pytest.param(
        "logistic",
        _set("reference_win_rates", [0.1, 1.5]),
        ["'reference_win_rates'", "[0, 1]"],
        id="reference-out-of-range",
    ),
    pytest.param(
        "logistic", _set("reference_win_rates", []), ["'reference_win_rates'"], id="reference-empty"
    ),
    pytest.param("logistic", _set("l2", -1), ["'l2'"], id="negative-l2"),
    pytest.param("logistic", _set("training", [1, 2]), ["'training'"], id="training-not-an-object"),
    pytest.param("logistic", _set("embedder", 5), ["'embedder'"], id="embedder-a-number"),
    pytest.param("knn", _set("k", 0), ["'k'", "integer >= 1"], id="k-zero"),
    pytest.param("knn", _set("k", -3), ["'k'", "integer >= 1"], id="k-negative"),
    pytest.param("knn", _set("k", "5"), ["'k'"], id="k-a-string"),
    pytest.param("knn", _set("k", 2.5), ["'k'"], id="k-a-float"),
    pytest.param("knn", _set("k", True), ["'k'"], id="k-a-bool"),
    pytest.param("knn", _drop("k"), ["lacks field 'k'"], id="k-missing"),
    pytest.param("knn", _set("prior_weight", -1.0), ["'prior_weight'"], id="negative-prior-weight"),
    pytest.param("mf", _set("models", 5), ["'models'"], id="models-a-number"),
    pytest.param("mf", _set("models", []), ["'models'"], id="models-empty"),
    pytest.param("mf", _set("models", ["a", "a"]), ["'models'", "distinct"], id="models-duplicated"),
    pytest.param("mf", _drop("dim"), ["lacks field 'dim'"], id="dim-missing"),
    pytest.param("mf", _set("dim", 64), ["tensor 'P'", "expected 64"], id="dim-disagrees-with-tensors"),
    pytest.param(
        "mf",
        lambda c: c.__setitem__("models", c["models"][:-1]),
        ["tensor 'P'", "expected 4"],
        id="models-disagree-with-tensors",
    ),
    pytest.param("mf", _set("strong_model", 5), ["'strong_model'"], id="strong-model-a-number"),
    pytest.param("mf", _drop("weak_model"), ["lacks field 'weak_model'"], id="weak-model-missing"),
    pytest.param("length", _set("a", -1.0), ["'a'", "positive"], id="length-reversed-slope"),
    pytest.param("length", _set("b", "x"), ["'b'"], id="length-b-a-string"),
    pytest.param("sw_ranking", _set("num_tiers", 1), ["'num_tiers'"], id="one-tier"),
    pytest.param(
        "sw_ranking", _set("num_tiers", 12), ["tensor 'prior'", "expected 12"], id="tiers-disagree-with-prior"
    ),
    pytest.param("sw_ranking", _set("newton_steps", 0), ["'newton_steps'"], id="zero-newton-steps"),
    pytest.param("sw_ranking", _set("gamma", float("inf")), ["'gamma'"], id="infinite-gamma"),
    pytest.param(
        "bert", _set("mode", "everything"), ["'mode'", "'full', 'top', 'frozen'"], id="bert-unknown-mode"
    ),
    pytest.param("bert", _set("max_length", 0), ["'max_length'"], id="bert-zero-max-length"),
    pytest.param("bert", _drop("backbone"), ["lacks field 'backbone'"], id="bert-no-backbone"),
    pytest.param("causal_llm", _set("mode", "qlora"), ["'mode'"], id="causal-unknown-mode"),
    pytest.param("causal_llm", _set("lora_r", 0), ["'lora_r'"], id="causal-zero-rank"),
    pytest.param(
        "logistic", _set("format_version", "one"), ["'format_version'"], id="format-version-a-string"
    ),
    pytest.param(
        "logistic", _set("format_version", 99), ["newer than this library"], id="format-version-newer"
    ),
    pytest.param("logistic", _set("router", 5), ["'router'"], id="router-kind-a-number"),
    pytest.param("logistic", _set("format", "something-else"), ["'format'"], id="unknown-format"),
]


@pytest.mark.parametrize(("kind", "edit", "needles"), CONFIG_ROWS)
def test_malformed_config_is_one_checkpoint_error(
    tmp_path: Path, kind: str, edit: Callable[[dict[str, Any]], None], needles: list[str]
) -> None:
    folder = _copy(kind, tmp_path)
    _edit_config(folder, edit)
    with pytest.raises(CheckpointError) as e:
        load_router(str(folder))
    msg = str(e.value)
    assert str(folder) in msg
    for n in needles:
        assert n in msg, (n, msg)


def _rewrite_weights(folder: Path, edit: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> None:
    from safetensors.numpy import load_file, save_file

    t = load_file(str(folder / "weights.safetensors"))
    save_file(edit(t), str(folder / "weights.safetensors"))


def _nan_first(name: str) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    def edit(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a = t[name].copy()
        a.reshape(-1)[0] = np.nan
        return {**t, name: a}

    return edit


TENSOR_ROWS = [
    pytest.param(
        "logistic",
        lambda t: {"coef": np.zeros(100, np.float32)},
        ["tensor 'coef'", "[100]", "389"],
        id="coef-wrong-length",
    ),
    pytest.param(
        "logistic",
        lambda t: {"coef": np.zeros((389, 1), np.float32)},
        ["tensor 'coef'", "dimensions"],
        id="coef-wrong-rank",
    ),
    pytest.param(
        "logistic",
        lambda t: {"coef": np.zeros(389, np.int32)},
        ["tensor 'coef'", "dtype I32"],
        id="coef-int-dtype",
    ),
    pytest.param(
        "logistic",
        lambda t: {**t, "extra": np.zeros(1, np.float32)},
        ["unexpected tensor", "extra"],
        id="extra-tensor",
    ),
    pytest.param("logistic", lambda t: {"other": t["coef"]}, ["lack tensor(s) coef"], id="missing-tensor"),
    pytest.param("logistic", _nan_first("coef"), ["'coef'", "NaN or infinite"], id="nan-weights"),
    pytest.param(
        "knn",
        lambda t: {**t, "keys": np.zeros((t["keys"].shape[0], 100), np.float16)},
        ["tensor 'keys'", "384"],
        id="keys-wrong-text-dim",
    ),
    pytest.param(
        "knn",
        lambda t: {**t, "targets": t["targets"][:-1]},
        ["tensor 'targets'"],
        id="targets-count-mismatch",
    ),
    pytest.param(
        "mf",
        lambda t: {**t, "w": np.full(16, np.inf, np.float32)},
        ["'w'", "NaN or infinite"],
        id="infinite-weights",
    ),
    pytest.param(
        "mf", lambda t: {**t, "W": t["W"][:, :100]}, ["tensor 'W'", "384"], id="projection-wrong-text-dim"
    ),
    pytest.param(
        "sw_ranking",
        lambda t: {**t, "pairs": t["pairs"] + 50},
        ["'pairs'", "tier indices outside"],
        id="tier-index-out-of-range",
    ),
    pytest.param(
        "sw_ranking",
        lambda t: {**t, "model_tier": -t["model_tier"] - 1},
        ["'model_tier'", "tier indices outside"],
        id="negative-tier-index",
    ),
    pytest.param(
        "sw_ranking",
        lambda t: {**t, "wins": t["wins"][:, :5]},
        ["tensor 'counts'", "'P' from tensor 'wins'"],
        id="wins-wrong-pairs",
    ),
    pytest.param(
        "bert",
        lambda t: {**t, "head.weight": np.zeros((2, 384), np.float32)},
        ["tensor 'head.weight'", "expected 3"],
        id="bert-head-two-classes",
    ),
    pytest.param(
        "bert",
        lambda t: {**t, "head.weight": np.zeros((3, 32), np.float32)},
        ["tensor 'head.weight'", "384"],
        id="bert-head-wrong-hidden",
    ),
]


@pytest.mark.parametrize(("kind", "edit", "needles"), TENSOR_ROWS)
def test_malformed_weights_are_one_checkpoint_error(
    tmp_path: Path,
    kind: str,
    edit: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    needles: list[str],
) -> None:
    folder = _copy(kind, tmp_path)
    _rewrite_weights(folder, edit)
    with pytest.raises(CheckpointError) as e:
        load_router(str(folder))
    for n in [str(folder), *needles]:
        assert n in str(e.value), (n, str(e.value))


FILE_ROWS = [
    pytest.param(
        lambda f: (f / "weights.safetensors").write_bytes((f / "weights.safetensors").read_bytes()[:-100]),
        ["truncated or corrupted"],
        id="weights-truncated-tail",
    ),
    pytest.param(
        lambda f: (f / "weights.safetensors").write_bytes((f / "weights.safetensors").read_bytes()[:5]),
        ["truncated or corrupted"],
        id="weights-truncated-header",
    ),
    pytest.param(
        lambda f: (f / "weights.safetensors").write_bytes(b""), ["truncated or corrupted"], id="weights-empty"
    ),
    pytest.param(
        lambda f: (f / "weights.safetensors").write_bytes(b"\xff" * 64),
        ["truncated or corrupted"],
        id="weights-garbage",
    ),
    pytest.param(lambda f: (f / "weights.safetensors").unlink(), ["missing weights"], id="weights-missing"),
    pytest.param(
        lambda f: (f / "config.json").write_text('{"format": "routellm-plugin-checkpoint", "rou'),
        ["corrupted config"],
        id="config-truncated",
    ),
    pytest.param(
        lambda f: (f / "config.json").write_text("[" * 50_000 + "]" * 50_000),
        ["nested too deeply"],
        id="config-deeply-nested",
    ),
    pytest.param(
        lambda f: (f / "config.json").write_text("[1, 2]"), ["must be a JSON object"], id="config-a-list"
    ),
    pytest.param(
        lambda f: (f / "config.json").write_bytes(b'{"a": "\xe9"}'),
        ["unreadable or corrupted"],
        id="config-not-utf8",
    ),
    pytest.param(lambda f: (f / "config.json").unlink(), ["no config.json"], id="config-missing"),
    pytest.param(
        lambda f: (f / "config.json").write_text("{}"), ["not a router checkpoint"], id="config-empty-object"
    ),
]


@pytest.mark.parametrize(("damage", "needles"), FILE_ROWS)
def test_truncated_and_corrupted_files(
    tmp_path: Path, damage: Callable[[Path], Any], needles: list[str]
) -> None:
    folder = _copy("logistic", tmp_path)
    damage(folder)
    with pytest.raises(CheckpointError) as e:
        load_router(str(folder))
    for n in needles:
        assert n in str(e.value), (n, str(e.value))


def test_malformed_checkpoint_through_the_cli_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy("knn", tmp_path)
    _edit_config(folder, _set("k", 0))
    assert main(["route", "--router", str(folder), "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'k' must be an integer >= 1" in err and "Traceback" not in err


def test_every_bundled_checkpoint_passes_validation() -> None:
    from routing_core.registry import DEFAULT_MULTI_ROUTER

    for name in bundled_names():
        cfg = read_config(PRETRAINED_DIR / name)
        assert cfg["router"] == (name if name != DEFAULT_MULTI_ROUTER else "quality_linear")


def test_bundled_asset_names_match_the_router_defaults() -> None:
    from routing_core.embedders import DEFAULT_EMBEDDER, OnnxMiniLMEmbedder
    from routing_core.routers import bert, causal_llm

    for name in (
        DEFAULT_EMBEDDER,
        OnnxMiniLMEmbedder.name,
        bert.DEFAULT_BACKBONE,
        causal_llm.DEFAULT_BACKBONE,
    ):
        assert name in BUNDLED_ASSETS


def test_torch_floor_has_no_known_weights_only_bypass() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.startswith("torch"))
    major, minor = (int(x) for x in torch_req.split(">=")[1].split(".")[:2])
    assert (major, minor) >= (2, 6), torch_req


# --- paths in a config stay inside the checkpoint ------------------------------------------------------------


def _safe_encoder(folder: Path) -> Path:
    """A tiny BERT encoder folder in safetensors (with MiniLM's tokenizer files)."""
    from transformers import BertConfig, BertModel

    from routing_core.embedders import minilm_path

    folder.mkdir(parents=True)
    for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (minilm_path() / f).exists():
            shutil.copy(minilm_path() / f, folder / f)
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    return folder


def _logistic_with_embedder(folder: Path, embedder: str, dim: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "format": "routellm-plugin-checkpoint",
                "format_version": 1,
                "router": "logistic",
                "l2": 1.0,
                "embedder": embedder,
            }
        )
    )
    from safetensors.numpy import save_file

    save_file({"coef": np.zeros(dim + 5, np.float32)}, str(folder / "weights.safetensors"))
    return folder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _safe_encoder(tmp_path_factory.mktemp("enc") / "tiny-encoder")


PATH_ROWS = [
    pytest.param(lambda ck, outside: str(outside), ["outside the checkpoint folder"], id="absolute-path"),
    pytest.param(
        lambda ck, outside: os.path.relpath(outside, ck),
        ["leads out of the checkpoint folder"],
        id="dot-dot-path",
    ),
    pytest.param(lambda ck, outside: "~/models/enc", ["outside the checkpoint folder"], id="home-path"),
    pytest.param(
        lambda ck, outside: "sub/missing", ["no such folder in the checkpoint"], id="missing-subfolder"
    ),
    pytest.param(
        lambda ck, outside: "./missing", ["no such folder in the checkpoint"], id="missing-dot-folder"
    ),
]


@pytest.mark.parametrize(("value", "needles"), PATH_ROWS)
def test_config_paths_cannot_leave_the_checkpoint(
    tmp_path: Path, encoder: Path, value: Callable[[Path, Path], str], needles: list[str]
) -> None:
    ck = tmp_path / "ck"
    ck.mkdir()
    _logistic_with_embedder(ck, value(ck, encoder))
    with pytest.raises(CheckpointError) as e:
        load_router(str(ck))
    assert "'embedder'" in str(e.value)
    for n in needles:
        assert n in str(e.value)


def test_symlink_out_of_the_checkpoint_is_refused(tmp_path: Path, encoder: Path) -> None:
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "enc").symlink_to(encoder, target_is_directory=True)
    _logistic_with_embedder(ck, "enc")
    with pytest.raises(CheckpointError, match="leads out of the checkpoint folder"):
        load_router(str(ck))
    ck2 = _copy("logistic", tmp_path)
    outside = tmp_path / "outside-config.json"
    (ck2 / "config.json").rename(outside)
    (ck2 / "config.json").symlink_to(outside)
    with pytest.raises(CheckpointError, match="link to a file outside"):
        load_router(str(ck2))


def test_backbone_path_outside_is_refused(tmp_path: Path, encoder: Path) -> None:
    ck = _copy("bert", tmp_path)
    _edit_config(ck, _set("backbone", str(encoder)))
    with pytest.raises(CheckpointError, match="'backbone'.*outside the checkpoint folder"):
        load_router(str(ck))


def test_folder_without_safetensors_is_refused(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    (ck / "enc").mkdir(parents=True)
    (ck / "enc" / "config.json").write_text('{"hidden_size": 32}')
    (ck / "enc" / "pytorch_model.bin").write_bytes(_payload(tmp_path / "marker"))
    _logistic_with_embedder(ck, "enc")
    with pytest.raises(CheckpointError, match="holds no safetensors weights"):
        load_router(str(ck))
    assert not (tmp_path / "marker").exists()


def test_bare_name_is_never_looked_up_in_the_current_directory(
    tmp_path: Path, encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ck = _logistic_with_embedder(tmp_path / "ck", "enc")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    shutil.copytree(encoder, cwd / "enc")  # a folder of that name where the user happens to run
    monkeypatch.chdir(cwd)
    router = load_router(str(ck))
    assert Path(str(router.embedder_spec)).parent == ck.resolve()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not available offline"):
        router.win_rate(["hello"])


# --- planted pickles: nothing but config.json and safetensors is ever opened -----------------------------------

PLANTED = (
    "pytorch_model.bin",
    "model.bin",
    "weights.pt",
    "model.pkl",
    "training_args.bin",
    "optimizer.pt",
    "model.ckpt",
)


def _payload(marker: Path) -> bytes:
    """A pickle that creates `marker` when unpickled (what a malicious checkpoint would do)."""

    class Plant:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    return pickle.dumps(Plant())


def _plant(folder: Path, marker: Path) -> list[Path]:
    planted = []
    for name in PLANTED:
        p = folder / name
        p.write_bytes(_payload(marker))
        planted.append(p)
    return planted


_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path opened while the test runs; `torch.load` (the pickle reader) fails the test if called."""
    global _opened
    import torch

    def no_torch_load(*a: Any, **k: Any) -> Any:
        raise AssertionError(f"torch.load was called on {a[:1]}")

    monkeypatch.setattr(torch, "load", no_torch_load)
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def _assert_inert(opened: list[str], planted: list[Path], marker: Path) -> None:
    planted_names = {str(p.resolve()) for p in planted}
    touched = [p for p in opened if str(Path(p).resolve()) in planted_names]
    assert not touched, f"planted pickles were opened: {touched}"
    assert not any(p.endswith((".bin", ".pt", ".pkl", ".ckpt", ".pth")) for p in opened), opened
    assert not marker.exists()


def test_planted_pickles_next_to_an_embedding_checkpoint_are_never_read(
    tmp_path: Path, encoder: Path, opened_files: list[str]
) -> None:
    marker = tmp_path / "PWNED"
    ck = tmp_path / "ck"
    # written the way a trained checkpoint is: the local encoder is copied in, only its safe files
    write_checkpoint(
        ck, "logistic", {"l2": 1.0, "embedder": str(encoder)}, {"coef": np.zeros(37, np.float32)}
    )
    assert json.loads((ck / "config.json").read_text())["embedder"] == "embedder"
    planted = _plant(ck, marker) + _plant(ck / "embedder", marker)
    opened_files.clear()
    router = load_router(str(ck))
    rates = router.win_rate(["a prompt about integrals", "hi"])
    assert rates.shape == (2,)
    assert any(p.endswith("model.safetensors") or "embedder" in p for p in opened_files)
    _assert_inert(opened_files, planted, marker)


def test_planted_pickles_in_a_backbone_folder_are_never_read(
    tmp_path: Path, encoder: Path, opened_files: list[str]
) -> None:
    from test_core_routers import synthetic_data

    from routing_core.training import TrainingData, pair_examples, train_router

    data: TrainingData = synthetic_data(30)
    assert pair_examples(data.battles)
    router = train_router(
        "bert", data, None, backbone=str(encoder), mode="top", train_layers=1, epochs=1, max_length=16
    )
    ck = router.save(tmp_path / "ck")
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["backbone"] == "backbone" and (ck / "backbone" / "model.safetensors").is_file()
    marker = tmp_path / "PWNED"
    planted = _plant(ck, marker) + _plant(ck / "backbone", marker)
    opened_files.clear()
    loaded = load_router(str(ck))
    assert loaded.win_rate(["a prompt", "another"]).shape == (2,)
    _assert_inert(opened_files, planted, marker)


def test_official_mf_layout_reads_only_model_safetensors(tmp_path: Path, opened_files: list[str]) -> None:
    """RouteLLM's own MF layout (config keys, model.safetensors): validated and read without any pickle."""
    from safetensors.numpy import save_file

    from routing_core.checkpoints import load_tensors

    folder = tmp_path / "official"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"dim": 8, "num_models": 3, "text_dim": 16}))
    rng = np.random.default_rng(0)
    save_file(
        {
            "P.weight": rng.normal(size=(3, 8)).astype(np.float32),
            "text_proj.0.weight": rng.normal(size=(8, 16)).astype(np.float32),
            "classifier.0.weight": rng.normal(size=(1, 8)).astype(np.float32),
        },
        str(folder / "model.safetensors"),
    )
    marker = tmp_path / "PWNED"
    planted = _plant(folder, marker)
    opened_files.clear()
    assert read_config(folder)["num_models"] == 3
    assert set(load_tensors(folder, "model.safetensors")) == {
        "P.weight",
        "text_proj.0.weight",
        "classifier.0.weight",
    }
    _assert_inert(opened_files, planted, marker)
    (folder / "config.json").write_text(json.dumps({"dim": 4, "num_models": 3, "text_dim": 16}))
    with pytest.raises(CheckpointError, match="tensor 'P.weight'"):
        read_config(folder)


# --- writing: atomic, self-contained ---------------------------------------------------------------------------


def test_vendoring_copies_only_safe_files(tmp_path: Path, encoder: Path) -> None:
    src = tmp_path / "enc-with-junk"
    shutil.copytree(encoder, src)
    (src / "pytorch_model.bin").write_bytes(b"junk")
    (src / "modeling_evil.py").write_text("raise SystemExit")
    ck = write_checkpoint(
        tmp_path / "ck", "logistic", {"l2": 1.0, "embedder": str(src)}, {"coef": np.zeros(37, np.float32)}
    )
    copied = sorted(p.name for p in (ck / "embedder").iterdir())
    assert "model.safetensors" in copied and "config.json" in copied and "vocab.txt" in copied
    assert "pytorch_model.bin" not in copied and "modeling_evil.py" not in copied
    bad = tmp_path / "no-safetensors"
    bad.mkdir()
    (bad / "pytorch_model.bin").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="holds no safetensors weights"):
        write_checkpoint(
            tmp_path / "ck2", "logistic", {"embedder": str(bad)}, {"coef": np.zeros(37, np.float32)}
        )
    assert not (tmp_path / "ck2").exists()


def test_write_checkpoint_is_atomic(tmp_path: Path) -> None:
    ck = write_checkpoint(tmp_path / "ck", "length", {"a": 1.0, "b": 0.0}, card="# v1\n")
    with pytest.raises(FileExistsError):
        write_checkpoint(ck, "length", {"a": 2.0, "b": 0.0}, overwrite=False)
    with pytest.raises(Exception, match="dtype"):  # safetensors cannot store an object array: fails mid-write
        write_checkpoint(ck, "length", {"a": 3.0, "b": 0.0}, {"x": np.array([object()])})
    assert json.loads((ck / "config.json").read_text())["a"] == 1.0  # the old checkpoint is untouched
    assert (ck / "README.md").read_text() == "# v1\n"
    write_checkpoint(ck, "length", {"a": 4.0, "b": 0.0})
    assert json.loads((ck / "config.json").read_text())["a"] == 4.0 and not (ck / "README.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temp folders left behind
    with pytest.raises(ValueError):  # NaN is not JSON: refused at write time rather than unloadable later
        write_checkpoint(tmp_path / "nan", "length", {"a": float("nan")})
    assert not (tmp_path / "nan").exists()


def test_validation_is_idempotent(tmp_path: Path, encoder: Path) -> None:
    from routing_core.checkpoints import validate_config

    ck = write_checkpoint(
        tmp_path / "ck", "logistic", {"l2": 1.0, "embedder": str(encoder)}, {"coef": np.zeros(37, np.float32)}
    )
    once = read_config(ck)
    assert once["embedder"] == str((ck / "embedder").resolve())
    assert validate_config(ck, once) == once
    for name in ("toy", "another-name"):
        _edit_config(ck, _set("embedder", name))
        first = read_config(ck)
        assert validate_config(ck, first) == first


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    from routing_core.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        ck = write_checkpoint(tmp_path / "ck", "length", {"a": 1.0, "b": 0.0}, card="# c\n")
        assert ck.stat().st_mode & 0o777 == 0o755
        assert all(p.stat().st_mode & 0o777 == 0o644 for p in ck.iterdir())
        out = atomic_write_text(tmp_path / "o.json", "{}")
        assert out.stat().st_mode & 0o777 == 0o644
        out.chmod(0o600)
        atomic_write_text(out, "{}")  # replacing a file keeps its mode
        assert out.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
