"""Checkpoint folders: `config.json` + `weights.safetensors` + `README.md` (model card). Never pickle.

Loading reads JSON and safetensors only, so a checkpoint can carry numbers and text but no code. `read_config`
checks every config field against the router kind's schema (types, ranges, a positive calibration slope, k >= 1)
and every tensor's dtype and shape in the safetensors header against the config, so a malformed checkpoint is
one `CheckpointError` naming the folder, the field and what was expected. Any path a config holds (`embedder`,
`backbone`) must name a bundled asset or a folder inside the checkpoint holding safetensors weights; it is
rewritten to that absolute path, so nothing is ever resolved against the current directory. Writing is atomic:
the folder is built under a temporary name and renamed into place; local encoder folders a router was trained
with are copied in (their safetensors, config and tokenizer files only), so a checkpoint is self-contained.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.atomic import atomic_directory
from routing_core.errors import CheckpointError

FORMAT = "routellm-plugin-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
OFFICIAL_MF_WEIGHTS = "model.safetensors"
CARD_FILE = "README.md"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"
MAX_CONFIG_BYTES = 32 << 20  # a config is JSON numbers and names; anything bigger is not one of ours

# Assets a config may name without a path: they ship inside installed packages (text dim when known).
BUNDLED_ASSETS: dict[str, int | None] = {
    "all-MiniLM-L6-v2": 384,
    "onnx-int8": 384,
    "all-MiniLM-L6-v2-onnx-int8": 384,
    "SmolLM2-135M-Instruct": None,
}
PATH_FIELDS = (
    "backbone",
    "embedder",
)  # a backbone is copied under its own name, the embedder then points to it
# keyword arguments for every transformers `from_pretrained` on a folder a checkpoint names: local files only,
# safetensors only (no pickle is ever unpickled), and no code from the folder
PRETRAINED_KWARGS: dict[str, Any] = {
    "local_files_only": True,
    "use_safetensors": True,
    "trust_remote_code": False,
}
# the same for `AutoTokenizer.from_pretrained` (tokenizers take no weights)
TOKENIZER_KWARGS: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
# what is copied when a local encoder folder is vendored into a checkpoint (never *.bin, *.pt, *.pkl, *.py)
ASSET_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
)


# --- a small schema language for config fields ------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What one config field must hold: `expect` says it in words, `ok` checks it."""

    expect: str
    ok: Callable[[Any], bool]
    required: bool = True
    nullable: bool = False

    def optional(self) -> Spec:
        return replace(self, required=False)

    def or_null(self) -> Spec:
        return replace(self, nullable=True, expect=f"{self.expect} or null")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int | None = None) -> Spec:
    """An integer, at least `lo`."""
    return Spec(
        f"an integer >= {lo}" if lo is not None else "an integer",
        lambda v: _is_int(v) and (lo is None or v >= lo),
    )


def number(lo: float | None = None, positive: bool = False) -> Spec:
    """A finite number (>= lo; > 0 when `positive`)."""
    words = (
        "a positive finite number"
        if positive
        else f"a finite number >= {lo:g}"
        if lo is not None
        else "a finite number"
    )
    return Spec(words, lambda v: _is_num(v) and (lo is None or v >= lo) and (not positive or v > 0))


def text(choices: Sequence[str] | None = None) -> Spec:
    """A non-empty string (one of `choices` when given)."""
    words = f"one of {', '.join(repr(c) for c in choices)}" if choices else "a non-empty string"
    return Spec(words, lambda v: isinstance(v, str) and bool(v) and (choices is None or v in choices))


def text_list() -> Spec:
    """A non-empty list of distinct non-empty strings."""
    return Spec(
        "a non-empty list of distinct model names",
        lambda v: (
            isinstance(v, list)
            and bool(v)
            and all(isinstance(x, str) and x for x in v)
            and len(set(v)) == len(v)
        ),
    )


def _calibrator_ok(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and v.get("kind") == "platt"
        and _is_num(v.get("a"))
        and v["a"] > 0
        and _is_num(v.get("b"))
    )


def _reference_ok(v: Any) -> bool:
    if not isinstance(v, list) or not v or not all(_is_num(x) and 0.0 <= x <= 1.0 for x in v):
        return False
    return all(a <= b for a, b in zip(v, v[1:], strict=False))


CALIBRATOR = (
    Spec('{"kind": "platt", "a": <positive slope>, "b": <finite>}', _calibrator_ok).or_null().optional()
)
REFERENCE = Spec("a non-empty sorted list of win rates in [0, 1]", _reference_ok).or_null().optional()
PATH = text().or_null().optional()
COMMON: dict[str, Spec] = {
    "embedder": PATH,
    "calibrator": CALIBRATOR,
    "reference_win_rates": REFERENCE,
    "training": Spec("a JSON object", lambda v: isinstance(v, dict)).or_null().optional(),
    "format_version": integer(0).optional(),
}

# Tensor expectations: name -> (dtype family, shape). Shape entries are ints, config-bound names ("dim",
# "n_models", "num_tiers", "D" = the encoder's text dim when known), or free names unified across tensors.
TensorSpec = tuple[str, tuple[int | str, ...]]


@dataclass(frozen=True)
class Schema:
    """A router kind's checkpoint layout: its config fields and its tensors."""

    fields: Mapping[str, Spec]
    tensors: Mapping[str, TensorSpec]
    weights_file: str | None = WEIGHTS_FILE
    exact_tensors: bool = True  # False when the router checks the tensor names itself (backbone layers, LoRA)


SCHEMAS: dict[str, Schema] = {
    "length": Schema(
        {"a": number(positive=True).optional(), "b": number().optional()}, {}, weights_file=None
    ),
    "logistic": Schema({"l2": number(0.0).or_null().optional()}, {"coef": ("float", ("D+5",))}),
    "difficulty": Schema({"l2": number(0.0)}, {"coef": ("float", ("D+5",))}),
    "quality_linear": Schema(
        {
            "l2": Spec("'auto' or a number >= 0", lambda v: v == "auto" or (_is_num(v) and v >= 0)),
            "inputs": text(("embedding+length", "length")),
            "min_rows": integer(1),
            "source_weighting": text(("equal", "rows")).optional(),
            "models": text_list(),
            "strong_model": text().or_null().optional(),
            "weak_model": text().or_null().optional(),
        },
        {"coef": ("float", ("n_models", "F"))},
        exact_tensors=False,
    ),
    "quality_knn": Schema(
        {
            "k": integer(1),
            "prior_weight": number(0.0),
            "models": text_list(),
            "strong_model": text().or_null().optional(),
            "weak_model": text().or_null().optional(),
        },
        {"keys": ("float", ("N", "D")), "scores": ("float", ("N", "n_models"))},
        exact_tensors=False,
    ),
    "knn": Schema(
        {"k": integer(1), "prior_weight": number(0.0).optional()},
        {"keys": ("float", ("N", "D")), "targets": ("float", ("N",))},
    ),
    "mf": Schema(
        {"dim": integer(1), "models": text_list(), "strong_model": text(), "weak_model": text()},
        {"P": ("float", ("n_models", "dim")), "W": ("float", ("dim", "D")), "w": ("float", ("dim",))},
    ),
    "sw_ranking": Schema(
        {
            "strong_model": text(),
            "weak_model": text(),
            "num_tiers": integer(2),
            "gamma": number(0.0),
            "l2": number(0.0),
            "newton_steps": integer(1),
            "models": text_list(),
        },
        {
            "keys": ("float", ("N", "D")),
            "wins": ("float", ("N", "P")),
            "counts": ("float", ("N", "P")),
            "pairs": ("int", ("P", 2)),
            "model_tier": ("int", ("n_models",)),
            "prior": ("float", ("num_tiers",)),
        },
    ),
    "bert": Schema(
        {
            "backbone": text(),
            "mode": text(("full", "top", "frozen")),
            "train_layers": integer(0),
            "max_length": integer(1),
        },
        {"head.weight": ("float", (3, "H")), "head.bias": ("float", (3,))},
        exact_tensors=False,
    ),
    "causal_llm": Schema(
        {
            "backbone": text(),
            "mode": text(("lora", "full")),
            "lora_r": integer(1).optional(),
            "max_length": integer(1),
        },
        {},
        exact_tensors=False,
    ),
}
OFFICIAL_MF = Schema(
    {
        "num_models": integer(1),
        "text_dim": integer(1),
        "dim": integer(1).optional(),
        "hidden_size": integer(1).optional(),
    },
    {
        "P.weight": ("float", ("num_models", "dim")),
        "text_proj.0.weight": ("float", ("dim", "text_dim")),
        "classifier.0.weight": ("float", (1, "dim")),
    },
    weights_file=OFFICIAL_MF_WEIGHTS,
)


def register_schema(kind: str, schema: Schema) -> None:
    """Declare the checkpoint layout of a router kind (a registered third-party router may add its own)."""
    SCHEMAS[kind] = schema


# --- reading -------------------------------------------------------------------------------------------------


def _own_file(folder: Path, name: str) -> Path:
    """`folder/name`, refusing a symlink that leads out of the folder (a checkpoint reads only its own files)."""
    path = folder / name
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        raise CheckpointError(f"{folder}: {name} is a link to a file outside the checkpoint folder; refused")
    return path


def _parse_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{path}: config of {size} bytes is too large to be a router config")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise CheckpointError(f"{path}: unreadable or corrupted config ({why})") from None


def read_config(folder: str | Path, validate: bool = True) -> dict[str, Any]:
    """Read a checkpoint's JSON config and (by default) validate it with `validate_config`.

    Any problem is a CheckpointError naming the folder or file, the field and what was expected.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no such directory)")
    path = _own_file(folder, CONFIG_FILE)
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no {CONFIG_FILE})")
    config = _parse_json(path)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: config must be a JSON object")
    return validate_config(folder, config) if validate else config


def _field_error(folder: Path, name: str, spec: Spec, value: Any) -> CheckpointError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return CheckpointError(f"{folder}: config field {name!r} must be {spec.expect}, got {shown}")


def check_fields(folder: str | Path, config: Mapping[str, Any], fields: Mapping[str, Spec]) -> None:
    """Check config values against specs; the first bad or missing field is a CheckpointError naming it."""
    folder = Path(folder)
    for name, spec in fields.items():
        if name not in config:
            if spec.required:
                raise CheckpointError(f"{folder}: config lacks field {name!r} ({spec.expect})")
            continue
        value = config[name]
        if value is None and spec.nullable:
            continue
        if not spec.ok(value):
            raise _field_error(folder, name, spec, value)


def _has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.gguf"))


def confine_path(folder: str | Path, value: Any, field: str) -> str | None:
    """A config path made safe: a bundled asset name is kept; anything else must resolve inside `folder`.

    Returns the absolute path inside the checkpoint (a bare unknown name becomes a path inside it that does
    not exist, so it can never be looked up in the current directory). Folders must hold safetensors weights.
    """
    folder = Path(folder)
    if value is None or (isinstance(value, str) and value in BUNDLED_ASSETS):
        return value
    if not isinstance(value, str) or not value:
        raise CheckpointError(
            f"{folder}: config field {field!r} must be a bundled asset name or a folder inside the checkpoint, got {value!r}"
        )
    raw = Path(value)
    root = folder.resolve()
    target = (root / raw).resolve()  # an absolute `raw` stays itself: accepted only when inside (idempotent)
    if value.startswith("~") or (raw.is_absolute() and not target.is_relative_to(root)):
        raise CheckpointError(
            f"{folder}: config field {field!r} names {value!r}, outside the checkpoint folder; refused (copy it into "
            f"the checkpoint and name it relatively, or pass {field}= when loading)"
        )
    if not target.is_relative_to(root):
        raise CheckpointError(
            f"{folder}: config field {field!r} names {value!r}, which leads out of the checkpoint folder; refused"
        )
    if target.is_dir():
        if not _has_safetensors(target):
            raise CheckpointError(
                f"{folder}: config field {field!r} names folder {value!r}, which holds no safetensors weights "
                "(only safetensors are ever loaded)"
            )
        return str(target)
    if target.exists():
        raise CheckpointError(
            f"{folder}: config field {field!r} names {value!r}, which is a file, expected a folder"
        )
    if not raw.is_absolute() and (len(raw.parts) > 1 or value.startswith(".")):
        raise CheckpointError(
            f"{folder}: config field {field!r} names {value!r}, but there is no such folder in the checkpoint"
        )
    return str(target)


def checkpoint_kind(config: Mapping[str, Any], folder: str | Path) -> str:
    """The router kind a config names; official RouteLLM MF checkpoints are recognised by their keys."""
    if config.get("format") == FORMAT:
        kind = config.get("router")
        if not isinstance(kind, str) or not kind:
            raise CheckpointError(f"{folder}: config field 'router' must be a router kind name, got {kind!r}")
        version = config.get("format_version", 0)
        if not _is_int(version):
            raise CheckpointError(
                f"{folder}: config field 'format_version' must be an integer, got {version!r}"
            )
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{folder}: checkpoint format {version} is newer than this library")
        return kind
    if "format" in config:
        raise CheckpointError(f"{folder}: config field 'format' must be {FORMAT!r}, got {config['format']!r}")
    if {"dim", "num_models", "text_dim"} <= set(config) or {"hidden_size", "num_models", "text_dim"} <= set(
        config
    ):
        return "mf"
    raise CheckpointError(f"{folder}: {CONFIG_FILE} is not a router checkpoint (no 'format': '{FORMAT}')")


_DTYPES = {
    "float": {"F16", "BF16", "F32", "F64"},
    "int": {"I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"},
}


def read_safetensors_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a safetensors header, checking the file holds every byte it declares."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("file shorter than its header")
            (n,) = struct.unpack("<Q", head)
            size = path.stat().st_size
            if n > min(size - 8, 100 << 20):
                raise ValueError("header length beyond the end of the file")
            meta = json.loads(f.read(n))
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: truncated or corrupted weights ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: truncated or corrupted weights (header is not a JSON object)")
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    end = 0
    for name, info in meta.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (_start, stop) = (
                str(info["dtype"]),
                tuple(int(x) for x in info["shape"]),
                info["data_offsets"],
            )
            end = max(end, int(stop))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path}: truncated or corrupted weights (bad header entry for {name!r})"
            ) from None
        out[name] = (dtype, shape)
    if 8 + n + end > size:
        raise CheckpointError(
            f"{path}: truncated or corrupted weights (declares {8 + n + end} bytes, file has {size})"
        )
    return out


def check_tensor_shapes(
    folder: str | Path,
    header: Mapping[str, tuple[str, tuple[int, ...]]],
    expected: Mapping[str, TensorSpec],
    dims: Mapping[str, int],
    exact: bool = True,
) -> dict[str, int]:
    """Check tensor dtypes and shapes against `expected`; symbolic dims bind once and must agree everywhere."""
    folder = Path(folder)
    missing = [n for n in expected if n not in header]
    if missing:
        raise CheckpointError(f"{folder}: weights lack tensor(s) {', '.join(missing)}")
    if exact:
        extra = sorted(set(header) - set(expected))
        if extra:
            raise CheckpointError(f"{folder}: weights hold unexpected tensor(s) {', '.join(extra[:5])}")
    bound = dict(dims)
    origin = {k: "the config" for k in dims}
    for name, (family, shape) in expected.items():
        dtype, got = header[name]
        if dtype not in _DTYPES.get(family, {dtype}):
            raise CheckpointError(f"{folder}: tensor {name!r} has dtype {dtype}, expected {family}")
        if len(got) != len(shape):
            raise CheckpointError(
                f"{folder}: tensor {name!r} has shape {list(got)}, expected {len(shape)} dimensions"
            )
        for axis, (want, have) in enumerate(zip(shape, got, strict=True)):
            label = want
            if isinstance(want, str) and want.endswith("+5"):
                if want[:-2] not in bound:
                    continue
                label, want = want[:-2], bound[want[:-2]] + 5
            elif isinstance(want, str):
                if want not in bound:
                    bound[want], origin[want] = have, f"tensor {name!r}"
                    continue
                want = bound[want]
            if have != want:
                why = (
                    f"; {label!r} from {origin.get(str(label), 'the config')}"
                    if isinstance(label, str)
                    else ""
                )
                raise CheckpointError(
                    f"{folder}: tensor {name!r} has shape {list(got)}, expected {want} along axis {axis}{why}"
                )
    return bound


def _text_dim(value: Any) -> int | None:
    """The embedding size an encoder gives, when it is known without loading it."""
    if value is None:
        return None
    if value in BUNDLED_ASSETS:
        return BUNDLED_ASSETS[value]
    cfg = Path(value) / "config.json"
    if cfg.is_file():
        try:
            hidden = json.loads(cfg.read_text(encoding="utf-8")).get("hidden_size")
        except (OSError, ValueError, RecursionError, AttributeError):
            return None
        return hidden if _is_int(hidden) else None
    return None


def validate_config(folder: str | Path, config: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """Check a config (and the tensor header of its weights) against its kind's schema; paths made safe.

    Returns a copy with `embedder`/`backbone` replaced by `confine_path`'s result. Idempotent, so a router's
    `load` may call it again on an already validated config.
    """
    folder = Path(folder)
    kind = kind or checkpoint_kind(config, folder)
    official = config.get("format") is None and kind == "mf"
    schema = OFFICIAL_MF if official else SCHEMAS.get(kind)
    out = dict(config)
    if not official:
        check_fields(folder, config, COMMON)
    if schema is None:  # a third-party kind: only the common fields are known
        for f in PATH_FIELDS:
            if f in out:
                out[f] = confine_path(folder, out[f], f)
        return out
    check_fields(folder, config, schema.fields)
    for f in PATH_FIELDS:
        if f in out:
            out[f] = confine_path(folder, out[f], f)
    if schema.weights_file is None:
        return out
    weights = _own_file(folder, schema.weights_file)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing weights file")
    dims: dict[str, int] = {}
    for name in ("dim", "num_tiers", "num_models", "text_dim"):
        if _is_int(config.get(name)):
            dims[name] = config[name]
    if official and "dim" not in dims and _is_int(config.get("hidden_size")):
        dims["dim"] = config["hidden_size"]
    if isinstance(config.get("models"), list):
        dims["n_models"] = len(config["models"])
    encoder = out.get("backbone", out.get("embedder"))
    d = _text_dim(encoder)
    if d is not None:
        dims["H" if "backbone" in out else "D"] = d
    header = read_safetensors_header(weights)
    check_tensor_shapes(folder, header, schema.tensors, dims, schema.exact_tensors)
    if kind == "sw_ranking" and not official:
        _check_sw_indices(folder, weights, int(config["num_tiers"]))
    return out


def _check_sw_indices(folder: Path, weights: Path, num_tiers: int) -> None:
    """SW ranking's integer tensors index the tiers: every entry must be in [0, num_tiers)."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="numpy") as f:
            for name in ("pairs", "model_tier"):
                t = f.get_tensor(name)
                if t.size and (t.min() < 0 or t.max() >= num_tiers):
                    raise CheckpointError(
                        f"{folder}: tensor {name!r} holds tier indices outside [0, {num_tiers}) (num_tiers)"
                    )
    except CheckpointError:
        raise
    except Exception as e:  # safetensors' own error types
        raise CheckpointError(f"{weights}: truncated or corrupted weights ({e})") from None


def check_finite(tensors: Mapping[str, np.ndarray], folder: str | Path) -> None:
    """Every floating-point tensor must be finite (NaN or inf weights would route on garbage)."""
    for name, t in tensors.items():
        if np.issubdtype(t.dtype, np.floating) and not np.isfinite(t).all():
            raise CheckpointError(f"{folder}: tensor {name!r} holds NaN or infinite values")


def save_tensors(folder: str | Path, tensors: Mapping[str, np.ndarray], name: str = WEIGHTS_FILE) -> Path:
    """Write numpy arrays as safetensors (contiguous copies; dtype kept)."""
    from safetensors.numpy import save_file

    path = Path(folder) / name
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return path


def load_tensors(folder: str | Path, name: str = WEIGHTS_FILE) -> dict[str, np.ndarray]:
    """Read safetensors into numpy arrays; a missing, truncated, corrupted or non-finite file is a CheckpointError."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    path = _own_file(folder, name)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncation/corruption
        raise CheckpointError(f"{path}: truncated or corrupted weights ({e})") from e
    check_finite(tensors, folder)
    return tensors


def require(tensors: Mapping[str, np.ndarray], folder: str | Path, *names: str) -> list[np.ndarray]:
    """Fetch named tensors or fail naming the missing ones."""
    missing = [n for n in names if n not in tensors]
    if missing:
        raise CheckpointError(f"{folder}: weights lack tensor(s) {', '.join(missing)}")
    return [tensors[n] for n in names]


# --- writing -------------------------------------------------------------------------------------------------


def _vendor_asset(src: Path, dest: Path, field: str) -> None:
    """Copy an encoder folder's safetensors, config and tokenizer files (nothing else) into `dest`."""
    weights = sorted(src.glob("*.safetensors")) + sorted(src.glob("*.safetensors.index.json"))
    if not weights:
        raise CheckpointError(
            f"{src}: the {field} folder holds no safetensors weights; re-save it with save_pretrained() "
            "(safetensors is the default) so a checkpoint can carry it"
        )
    dest.mkdir()
    for f in [*weights, *(src / n for n in ASSET_FILES)]:
        if f.is_file():
            shutil.copy2(f, dest / f.name)


def _vendor_local_assets(folder: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Path fields naming local folders outside the checkpoint are copied in and renamed relatively."""
    out = dict(params)
    copied: dict[Path, str] = {}
    for field in PATH_FIELDS:
        value = out.get(field)
        if not isinstance(value, str) or value in BUNDLED_ASSETS or not Path(value).expanduser().is_dir():
            continue
        src = Path(value).expanduser().resolve()
        if src not in copied:
            copied[src] = field
            _vendor_asset(src, folder / field, field)
        out[field] = copied[src]
    return out


def write_checkpoint(
    folder: str | Path,
    router: str,
    params: Mapping[str, Any],
    tensors: Mapping[str, np.ndarray] | None = None,
    card: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Create a checkpoint folder for router kind `router` with JSON params, optional tensors and a model card.

    Atomic: built under a temporary name next to `folder` and renamed into place (an existing checkpoint is
    replaced only when `overwrite`; otherwise a non-empty `folder` is a FileExistsError).
    """
    folder = Path(folder)
    with atomic_directory(folder, overwrite=overwrite) as tmp:
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "router": router,
            **_vendor_local_assets(tmp, dict(params)),
        }
        if tensors:
            save_tensors(tmp, tensors)
        text_ = json.dumps(config, indent=2, sort_keys=False, allow_nan=False) + "\n"
        (tmp / CONFIG_FILE).write_text(text_, encoding="utf-8")
        if card is not None:
            (tmp / CARD_FILE).write_text(card, encoding="utf-8")
    return folder


def bundled_names() -> list[str]:
    """Names of the checkpoints shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_FILE).is_file())
