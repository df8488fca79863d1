"""Multi-model tables: prompts x models quality and cost, the data of N-model routing and its benchmark format.

The benchmark format is RouterBench's own layout, one CSV with a `prompt` column and, for each model `M`, a score
column `M` (correctness or a graded score, higher is better; empty when not scored) and a cost column `M|cost`
(USD for that call; `M|total_cost`, RouterBench's spelling, is read too). `load_multi_csv` reads it strictly and
`write_multi_csv` writes it; the loaders below build the same tables from `../shared/data`, respecting its splits.

dcrouter records no per-call cost: its calls are priced from its list prices and token counts,
`input tokens x input price + OUTPUT_TOKENS x output price`. ZeroEval and alpaca_eval have no prices (cost NaN).
Scores are read as qualities in [0, 1] (correctness, a normalised grade, a win probability).
"""

from __future__ import annotations

import ast
import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from routing_core.data.aliases import canonical_model
from routing_core.errors import DataError

#: Expected answer length (tokens) used to price a call when a source records no cost.
OUTPUT_TOKENS = 256
COST_SUFFIXES = ("|cost", "|total_cost")
#: Columns of a multi-model CSV that are never model scores.
META_COLUMNS = frozenset({"", "prompt", "id", "sample_id", "eval_name", "oracle_model_to_route_to", "group"})


@dataclass
class MultiTable:
    """Prompts x models: `quality` (NaN where unscored) and `cost` (USD per call, NaN where unknown)."""

    name: str
    prompts: list[str]
    models: list[str]
    quality: np.ndarray
    cost: np.ndarray
    ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        self.quality = np.asarray(self.quality, dtype=np.float64)
        self.cost = np.asarray(self.cost, dtype=np.float64)
        for what, a in (("quality", self.quality), ("cost", self.cost)):
            if a.shape != (n, m):
                raise ValueError(
                    f"table {self.name!r}: {what} has shape {a.shape}, expected ({n} prompts, {m} models)"
                )
        self.ids = self.ids or [str(i) for i in range(n)]
        self.groups = self.groups or [""] * n
        if len(self.ids) != n or len(self.groups) != n:
            raise ValueError(f"table {self.name!r}: ids and groups need one entry per prompt ({n})")

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, keep: np.ndarray | Sequence[bool]) -> MultiTable:
        idx = np.flatnonzero(np.asarray(keep, dtype=bool))
        return MultiTable(
            self.name,
            [self.prompts[i] for i in idx],
            list(self.models),
            self.quality[idx],
            self.cost[idx],
            [self.ids[i] for i in idx],
            [self.groups[i] for i in idx],
        )

    def complete(self) -> MultiTable:
        """Only the prompts every model was scored on and priced for (what a benchmark compares)."""
        ok = ~np.isnan(self.quality).any(axis=1) & ~np.isnan(self.cost).any(axis=1)
        return self.subset(ok)


def _cost_column(header: Sequence[str], model: str) -> str | None:
    for suffix in COST_SUFFIXES:
        if model + suffix in header:
            return model + suffix
    return None


def _number(value: str, path: Path, where: str) -> float:
    if value.strip() == "":
        return math.nan
    try:
        x = float(value)
    except ValueError:
        raise DataError(path, f"{where}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise DataError(path, f"{where}: {value!r} is not finite")
    return x


def load_multi_csv(path: str | Path, name: str | None = None) -> MultiTable:
    """Read a multi-model benchmark CSV (see the module doc); every model needs a score and a cost column."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(path, f"unreadable CSV ({e})") from e
    if "prompt" not in header:
        raise DataError(path, f"no 'prompt' column (columns: {', '.join(header[:8])})")
    models = [c for c in header if c not in META_COLUMNS and "|" not in c]
    if len(models) < 2:
        raise DataError(
            path, "needs score columns for at least two models (a column per model, 'M|cost' beside)"
        )
    no_cost = [m for m in models if _cost_column(header, m) is None]
    if no_cost:
        raise DataError(
            path, f"model column(s) without a cost column: {', '.join(repr(m + '|cost') for m in no_cost)}"
        )
    q = np.full((len(rows), len(models)), np.nan)
    c = np.full((len(rows), len(models)), np.nan)
    prompts, ids, groups = [], [], []
    for i, r in enumerate(rows):
        line = i + 2
        text = r.get("prompt") or ""
        if not text.strip():
            raise DataError(path, f"row {line}: empty prompt")
        prompts.append(text)
        ids.append(r.get("id") or r.get("sample_id") or str(i))
        groups.append(r.get("group") or r.get("eval_name") or "")
        for j, m in enumerate(models):
            q[i, j] = _number(r.get(m) or "", path, f"row {line}, column {m!r}")
            cost_col = _cost_column(header, m)
            assert cost_col is not None
            c[i, j] = _number(r.get(cost_col) or "", path, f"row {line}, column {cost_col!r}")
            if not math.isnan(c[i, j]) and c[i, j] < 0:
                raise DataError(path, f"row {line}, column {cost_col!r}: negative cost {c[i, j]}")
    if not prompts:
        raise DataError(path, "no rows")
    return MultiTable(name or path.stem, prompts, models, q, c, ids, groups)


def write_multi_csv(table: MultiTable, path: str | Path) -> Path:
    """Write a table in the benchmark format (atomically)."""
    import io

    from routing_core.atomic import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "group", "prompt", *table.models, *(m + "|cost" for m in table.models)])
    for i, p in enumerate(table.prompts):
        cells = [("" if math.isnan(x) else repr(float(x))) for x in (*table.quality[i], *table.cost[i])]
        w.writerow([table.ids[i], table.groups[i], p, *cells])
    return atomic_write_text(path, buf.getvalue())


# --- ../shared/data sources -----------------------------------------------------------------------------


def priced_cost(
    prompts: Sequence[str], prices: Mapping[str, tuple[float, float]], models: Sequence[str]
) -> np.ndarray:
    """USD per call from list prices (per 1M tokens, input and output): input tokens + `OUTPUT_TOKENS` out."""
    from routing_core.costs import count_tokens

    tokens = np.array([count_tokens(p) for p in prompts], dtype=np.float64)
    out = np.full((len(prompts), len(models)), np.nan)
    for j, m in enumerate(models):
        if m in prices:
            pin, pout = prices[m]
            out[:, j] = (tokens * pin + OUTPUT_TOKENS * pout) / 1e6
    return out


def routerbench_table(split: Literal["train", "test"]) -> MultiTable:
    """RouterBench 0-shot (ARC, MBPP, Winogrande): 11 models' correctness and recorded per-call cost."""
    from routing_core.data.shared import ROUTERBENCH_TASKS, final_question, require_shared

    root = require_shared() / "routerbench"
    prompts, ids, groups, qrows, crows = [], [], [], [], []
    models: list[str] | None = None
    for task in ROUTERBENCH_TASKS:
        path = root / f"{task}_{split}.csv"
        table = load_multi_csv(path)
        if models is None:
            models = table.models
        elif table.models != models:
            raise DataError(path, "routerbench task files disagree on their models")
        for i, raw in enumerate(table.prompts):
            try:
                parsed = ast.literal_eval(raw)
            except (ValueError, SyntaxError) as e:
                raise DataError(path, f"row {i + 2}: prompt is not a Python list literal ({e})") from e
            text = parsed[0] if isinstance(parsed, list) and parsed else str(parsed)
            prompts.append(final_question(text))
        ids += [f"{task}-{x}" for x in table.ids]
        groups += [task] * len(table)
        qrows.append(table.quality)
        crows.append(table.cost)
    assert models is not None
    return MultiTable(
        f"routerbench_{split}",
        prompts,
        [canonical_model(m) for m in models],
        np.vstack(qrows),
        np.vstack(crows),
        ids,
        groups,
    )


def dcrouter_prices() -> dict[str, tuple[float, float]]:
    """dcrouter's list prices (USD per 1M input / output tokens) by canonical model name."""
    from routing_core.data.shared import require_shared

    path = require_shared() / "llmrouter_dcrouter" / "default_llm.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(path, f"unreadable JSON ({e})") from e
    return {canonical_model(k): (float(v["input_price"]), float(v["output_price"])) for k, v in spec.items()}


def table_from_scored(
    name: str, scored: Sequence[object], prices: Mapping[str, tuple[float, float]] | None
) -> MultiTable:
    """A table from `ScoredPrompt`s; costs priced from `prices` (NaN without)."""
    models = sorted({m for sp in scored for m in sp.scores})  # type: ignore[attr-defined]
    col = {m: j for j, m in enumerate(models)}
    q = np.full((len(scored), len(models)), np.nan)
    for i, sp in enumerate(scored):
        for m, v in sp.scores.items():  # type: ignore[attr-defined]
            q[i, col[m]] = v
    prompts = [sp.prompt for sp in scored]  # type: ignore[attr-defined]
    cost = priced_cost(prompts, prices, models) if prices else np.full_like(q, np.nan)
    return MultiTable(
        name,
        prompts,
        models,
        q,
        cost,
        [sp.id for sp in scored],  # type: ignore[attr-defined]
        [sp.group for sp in scored],  # type: ignore[attr-defined]
    )


def dcrouter_table(split: Literal["train", "test"]) -> MultiTable:
    """dcrouter (9 open models), GSM8K test questions dropped; costs from its price list (see `OUTPUT_TOKENS`)."""
    from routing_core.data.shared import dcrouter_scored

    return table_from_scored(f"dcrouter_{split}", dcrouter_scored(split), dcrouter_prices())


def zeroeval_table(split: Literal["train", "test"] = "train") -> MultiTable:
    """ZeroEval crux and math-l5 (40-48 models, split by item id; GSM8K never); no prices."""
    from routing_core.data.shared import zeroeval_scored

    return table_from_scored(f"zeroeval_{split}", zeroeval_scored(split), None)


def alpaca_multi_table(folds: Sequence[int] = (1, 2, 3, 4)) -> MultiTable:
    """alpaca_eval: P(model beats GPT-4-Turbo) per instruction for ~60 models (the given instruction folds)."""
    from routing_core.data.pooled import alpaca_table, fold_of

    t = alpaca_table()
    keep = np.isin([fold_of(i) for i in t.ids], list(folds))
    t = t.subset(keep)
    return MultiTable("alpaca_eval", t.prompts, t.models, t.scores, np.full_like(t.scores, np.nan), t.ids)


def multi_training_tables() -> list[MultiTable]:
    """Every many-model source's training split: routerbench, dcrouter, ZeroEval (crux, math-l5), alpaca_eval."""
    return [
        routerbench_table("train"),
        dcrouter_table("train"),
        zeroeval_table("train"),
        alpaca_multi_table(),
    ]


__all__ = [
    "OUTPUT_TOKENS",
    "MultiTable",
    "alpaca_multi_table",
    "dcrouter_prices",
    "dcrouter_table",
    "load_multi_csv",
    "multi_training_tables",
    "priced_cost",
    "routerbench_table",
    "table_from_scored",
    "write_multi_csv",
    "zeroeval_table",
]
