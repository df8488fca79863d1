"""Checkpoint folders: `config.json` + `weights.safetensors` + `README.md` (model card). Never pickle.

Loading reads JSON and safetensors only, so a checkpoint can carry numbers and text but no code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.errors import CheckpointError

FORMAT = "routellm-plugin-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "README.md"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def read_config(folder: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint's JSON config; any problem is a CheckpointError naming the file."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no such directory)")
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable or corrupted config ({e})") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: config must be a JSON object")
    return config


def save_tensors(folder: str | Path, tensors: Mapping[str, np.ndarray], name: str = WEIGHTS_FILE) -> Path:
    """Write numpy arrays as safetensors (contiguous copies; dtype kept)."""
    from safetensors.numpy import save_file

    path = Path(folder) / name
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return path


def load_tensors(folder: str | Path, name: str = WEIGHTS_FILE) -> dict[str, np.ndarray]:
    """Read safetensors into numpy arrays; a missing, truncated or corrupted file is a CheckpointError."""
    from safetensors.numpy import load_file

    path = Path(folder) / name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncation/corruption
        raise CheckpointError(f"{path}: truncated or corrupted weights ({e})") from e


def require(tensors: Mapping[str, np.ndarray], folder: str | Path, *names: str) -> list[np.ndarray]:
    """Fetch named tensors or fail naming the missing ones."""
    missing = [n for n in names if n not in tensors]
    if missing:
        raise CheckpointError(f"{folder}: weights lack tensor(s) {', '.join(missing)}")
    return [tensors[n] for n in names]


def write_checkpoint(
    folder: str | Path,
    router: str,
    params: Mapping[str, Any],
    tensors: Mapping[str, np.ndarray] | None = None,
    card: str | None = None,
) -> Path:
    """Create a checkpoint folder for router kind `router` with JSON params, optional tensors and a model card."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "router": router, **params}
    if tensors:
        save_tensors(folder, tensors)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    if card is not None:
        (folder / CARD_FILE).write_text(card, encoding="utf-8")
    return folder


def checkpoint_kind(config: Mapping[str, Any], folder: str | Path) -> str:
    """The router kind a config names; official RouteLLM MF checkpoints are recognised by their keys."""
    if config.get("format") == FORMAT:
        kind = config.get("router")
        if not isinstance(kind, str):
            raise CheckpointError(f"{folder}: config has no router kind")
        if int(config.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"{folder}: checkpoint format {config.get('format_version')} is newer than this library")
        return kind
    if {"dim", "num_models", "text_dim"} <= set(config) or {"hidden_size", "num_models", "text_dim"} <= set(config):
        return "mf"
    raise CheckpointError(f"{folder}: {CONFIG_FILE} is not a router checkpoint (no 'format': '{FORMAT}')")


def bundled_names() -> list[str]:
    """Names of the checkpoints shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_FILE).is_file())
