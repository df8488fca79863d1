"""The paper's training data from the Hugging Face hub (or local copies), through the optional `datasets` library.

- `lmsys/lmsys-arena-human-preference-55k` (and `routellm/gpt4_judge_battles`, same columns): `prompt` is a
  JSON list of turns, `model_a`/`model_b` names, `winner_model_a`/`winner_model_b`/`winner_tie` one-hot.
  Preprocessed exactly as RouteLLM's `preprocess_battles`: the first turn, stripped; rows whose first turn is
  shorter than 16 characters dropped; winner `model_a` if winner_model_a == 1, else `model_b` if
  winner_model_b == 1, else `tie`.
- A judge-labelled table without winner columns (`prompt`, `mixtral_score` 1-5, optional model names) is mapped
  the way the paper reads the GPT-4 judge: a score >= 4 means the weak (Mixtral) answer is good enough, so the
  weak model wins that battle; a score <= 3 means the strong model wins. Winner columns, when present, win.
- `routellm/arena_battles_embeddings`-style tables: one `embeddings` row per preprocessed battle, in order.

Every source may be a hub id, a folder written by `Dataset.save_to_disk`, a local parquet/json/jsonl/csv file,
or a `datasets.Dataset`. Install the extra with `pip install 'routellm-plugin[hub]'`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routing_core.data.aliases import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL, canonical_model
from routing_core.data.records import Battle
from routing_core.errors import DataError

ARENA_55K = "lmsys/lmsys-arena-human-preference-55k"
GPT4_JUDGE_BATTLES = "routellm/gpt4_judge_battles"
ARENA_EMBEDDINGS = "routellm/arena_battles_embeddings"
GPT4_JUDGE_EMBEDDINGS = "routellm/gpt4_judge_battles_embeddings"
#: The paper's training battles, in the order RouteLLM's SW router concatenates them.
PAPER_BATTLES: tuple[str, ...] = (ARENA_55K, GPT4_JUDGE_BATTLES)
PAPER_EMBEDDINGS: tuple[str, ...] = (ARENA_EMBEDDINGS, GPT4_JUDGE_EMBEDDINGS)
MIN_LEN = 16  # RouteLLM's preprocess_battles
JUDGE_GOOD_ENOUGH = (
    4  # a judge score >= 4: the weak answer is good enough (the causal router's threshold too)
)
INSTALL_HINT = "pip install 'routellm-plugin[hub]'"
_LOCAL_FORMATS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv"}

DatasetSpec = Any  # str | Path | datasets.Dataset


def require_datasets() -> Any:
    """The `datasets` module, or one clear line on how to install it."""
    try:
        import datasets  # type: ignore[import-untyped]
    except ImportError:
        raise DataError(
            "datasets", f"reading the paper's data needs the `datasets` library: {INSTALL_HINT}"
        ) from None
    return datasets


def _name(spec: DatasetSpec) -> str:
    return str(spec) if isinstance(spec, str | Path) else type(spec).__name__


def open_dataset(spec: DatasetSpec, split: str = "train") -> Any:
    """A `datasets.Dataset` from a hub id, a `save_to_disk` folder, a local data file, or a Dataset itself."""
    ds_mod = require_datasets()
    if isinstance(spec, ds_mod.Dataset):
        return spec
    if isinstance(spec, ds_mod.DatasetDict):
        return _pick_split(spec, split, "DatasetDict")
    if not isinstance(spec, str | Path):
        raise DataError(
            _name(spec), "a dataset must be a hub id, a local folder or file, or a datasets.Dataset"
        )
    path = Path(spec).expanduser()
    try:
        if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
            return _pick_split(ds_mod.load_from_disk(str(path)), split, str(path))
        if path.is_file():
            fmt = _LOCAL_FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise DataError(
                    path,
                    f"unknown data file type {path.suffix!r}; expected {', '.join(sorted(_LOCAL_FORMATS))}",
                )
            return ds_mod.load_dataset(fmt, data_files=str(path), split="train")
        if path.is_dir():
            return ds_mod.load_dataset(str(path), split=split)
        from routing_core.hub import hub_offline, looks_like_hub_id

        if not looks_like_hub_id(str(spec)):
            raise DataError(
                spec, "no such local dataset folder or file, and not a hub id of the form 'org/name'"
            )
        return ds_mod.load_dataset(str(spec), split=split)
    except DataError:
        raise
    except (
        Exception
    ) as e:  # datasets raises many types (ConnectionError, FileNotFoundError, DatasetNotFoundError...)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = ""
        if isinstance(spec, str) and not path.exists():
            from routing_core.hub import hub_offline

            hint = (
                "; HF_HUB_OFFLINE is set and it is not in the local datasets cache: unset it on a machine with "
                "network to fetch it once, or pass a local copy"
                if hub_offline()
                else "; check the network and the dataset id, or pass a local copy"
            )
        raise DataError(
            spec, f"could not load the dataset ({type(e).__name__}: {first[:200]}){hint}"
        ) from None


def _pick_split(obj: Any, split: str, where: str) -> Any:
    ds_mod = require_datasets()
    if isinstance(obj, ds_mod.DatasetDict):
        if split not in obj:
            raise DataError(where, f"has no split {split!r}; splits: {', '.join(obj)}")
        return obj[split]
    return obj


def _columns(ds: Any, names: Iterable[str], where: str) -> dict[str, list[Any]]:
    cols = list(names)
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise DataError(where, f"lacks column(s) {', '.join(missing)} (has {', '.join(ds.column_names)})")
    data = ds.select_columns(cols).to_dict()
    return {c: list(data[c]) for c in cols}


def first_turn(prompt: Any) -> str:
    """RouteLLM's `get_first_turn`: the first element of a JSON list of turns, stripped (a plain string as is)."""
    if isinstance(prompt, list):
        turns: Any = prompt
    else:
        s = "" if prompt is None else str(prompt)
        try:
            turns = json.loads(s)
        except json.JSONDecodeError:
            return s.strip()
        if not isinstance(turns, list):
            return s.strip()
    first = turns[0] if turns else ""
    return ("" if first is None else str(first)).strip()


def _flag(v: Any) -> bool:
    """A one-hot winner flag equal to 1 (RouteLLM's `row[...] == 1`); missing values are not 1."""
    if v is None or isinstance(v, str):
        return str(v).strip() in ("1", "1.0", "True", "true")
    try:
        return float(v) == 1.0 and not math.isnan(float(v))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class ArenaTable:
    """Preprocessed battles (RouteLLM's `preprocess_battles` output) plus each kept row's first turn."""

    prompts: list[str]
    model_a: list[str]
    model_b: list[str]
    winner: list[str]  # "model_a" | "model_b" | "tie"
    source: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.winner)


def _judge_winners(data: dict[str, list[Any]], n: int, where: str) -> tuple[list[str], list[str], list[str]]:
    """Battles from a 1-5 judge score of the weak answer: >= 4 the weak model wins, else the strong one."""
    a = [str(x) for x in data["model_a"]] if "model_a" in data else [DEFAULT_STRONG_MODEL] * n
    b = [str(x) for x in data["model_b"]] if "model_b" in data else [DEFAULT_WEAK_MODEL] * n
    weak = canonical_model(DEFAULT_WEAK_MODEL)
    winners = []
    for i, s in enumerate(data["mixtral_score"]):
        try:
            score = float(s)
        except (TypeError, ValueError):
            raise DataError(where, f"row {i}: mixtral_score {s!r} is not a number") from None
        if math.isnan(score):
            raise DataError(where, f"row {i}: mixtral_score is missing")
        weak_side = "model_b" if canonical_model(b[i]) == weak or "mixtral" in b[i].lower() else None
        if weak_side is None and (canonical_model(a[i]) == weak or "mixtral" in a[i].lower()):
            weak_side = "model_a"
        if weak_side is None:
            raise DataError(
                where,
                f"row {i}: mixtral_score given but neither model_a {a[i]!r} nor model_b {b[i]!r} is Mixtral",
            )
        strong_side = "model_a" if weak_side == "model_b" else "model_b"
        winners.append(weak_side if score >= JUDGE_GOOD_ENOUGH else strong_side)
    return a, b, winners


def arena_table(spec: DatasetSpec, split: str = "train", min_len: int = MIN_LEN) -> ArenaTable:
    """Battles of one dataset, preprocessed as RouteLLM's `preprocess_battles` (first turn, MIN_LEN, winner)."""
    ds = open_dataset(spec, split)
    where = _name(spec)
    cols = set(ds.column_names)
    has_winner = {"winner_model_a", "winner_model_b"} <= cols
    if not has_winner and "mixtral_score" not in cols:
        raise DataError(
            where,
            f"needs winner_model_a/winner_model_b columns or a mixtral_score column (has {', '.join(ds.column_names)})",
        )
    wanted = ["prompt"] + [c for c in ("model_a", "model_b", "id") if c in cols]
    wanted += ["winner_model_a", "winner_model_b"] if has_winner else ["mixtral_score"]
    if has_winner and not {"model_a", "model_b"} <= cols:
        raise DataError(where, f"lacks model_a/model_b columns (has {', '.join(ds.column_names)})")
    data = _columns(ds, wanted, where)
    n = len(data["prompt"])
    if has_winner:
        a, b = [str(x) for x in data["model_a"]], [str(x) for x in data["model_b"]]
        winners = [
            "model_a" if _flag(wa) else "model_b" if _flag(wb) else "tie"
            for wa, wb in zip(data["winner_model_a"], data["winner_model_b"], strict=True)
        ]
    else:
        a, b, winners = _judge_winners(data, n, where)
    ids = [str(x) for x in data["id"]] if "id" in data else [str(i) for i in range(n)]
    out: dict[str, list[str]] = {k: [] for k in ("prompts", "model_a", "model_b", "winner", "source", "ids")}
    for i in range(n):
        turn = first_turn(data["prompt"][i])
        if len(turn) < min_len:
            continue
        out["prompts"].append(turn)
        out["model_a"].append(a[i])
        out["model_b"].append(b[i])
        out["winner"].append(winners[i])
        out["source"].append(where)
        out["ids"].append(ids[i])
    return ArenaTable(**out)


def concat_tables(tables: Sequence[ArenaTable]) -> ArenaTable:
    """Tables one after the other (RouteLLM concatenates its battle datasets before preprocessing)."""
    fields = ("prompts", "model_a", "model_b", "winner", "source", "ids")
    return ArenaTable(**{f: [x for t in tables for x in getattr(t, f)] for f in fields})


def load_hub_battles(
    specs: DatasetSpec | Sequence[DatasetSpec] = PAPER_BATTLES, split: str = "train", min_len: int = MIN_LEN
) -> list[Battle]:
    """The paper's battles as `Battle` records (canonical model names), e.g. for `train_router`.

    Default: the 55k Arena battles then the GPT-4 judge battles, as RouteLLM reads them.
    """
    items = [specs] if isinstance(specs, str | Path) or not isinstance(specs, Sequence) else list(specs)
    out: list[Battle] = []
    for spec in items:
        t = arena_table(spec, split, min_len)
        for p, a, b, w, s, i in zip(t.prompts, t.model_a, t.model_b, t.winner, t.source, t.ids, strict=True):
            out.append(Battle(p, canonical_model(a), canonical_model(b), w, s, i))  # type: ignore[arg-type]
    return out


def load_embeddings(spec: DatasetSpec, split: str = "train", column: str = "embeddings") -> np.ndarray:
    """An (n, d) float32 matrix from an `arena_battles_embeddings`-style table (one row per kept battle)."""
    ds = open_dataset(spec, split)
    where = _name(spec)
    if column not in ds.column_names:
        raise DataError(where, f"lacks column {column!r} (has {', '.join(ds.column_names)})")
    try:
        x = np.asarray(ds.with_format("numpy", columns=[column])[column], dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise DataError(where, f"column {column!r} is not a table of equal-length vectors ({e})") from None
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(where, f"column {column!r} must hold one vector per row, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(where, f"column {column!r} holds non-finite values")
    return x


__all__ = [
    "ARENA_55K",
    "ARENA_EMBEDDINGS",
    "GPT4_JUDGE_BATTLES",
    "GPT4_JUDGE_EMBEDDINGS",
    "PAPER_BATTLES",
    "PAPER_EMBEDDINGS",
    "ArenaTable",
    "arena_table",
    "concat_tables",
    "first_turn",
    "load_embeddings",
    "load_hub_battles",
    "open_dataset",
]
