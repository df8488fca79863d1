"""Loaders for battles, score tables, judge verdicts, benchmarks and prompt files.

Every loader returns plain records (see records.py) and raises `DataError` naming the file and the problem
(missing, unreadable, empty, a missing column, a non-numeric score) instead of a traceback from deep inside.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from routing_core.data.aliases import canonical_model
from routing_core.data.records import (
    MIN_PROMPT_CHARS,
    WINNERS,
    Battle,
    Benchmark,
    BenchmarkItem,
    PromptFile,
    PromptRecord,
    ScoredPrompt,
    Winner,
)
from routing_core.errors import DataError

csv.field_size_limit(1 << 30)

MMLU_STRONG = "gpt-4-1106-preview"
MMLU_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


# --- low-level reading -----------------------------------------------------------------------------------


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file; missing, unreadable, binary or empty files are a DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "no such file")
    if p.is_dir():
        raise DataError(p, "is a directory, expected a file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(p, f"cannot read ({e.strerror or e})") from e
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(p, f"looks like a binary file (NUL byte at offset {nul}), expected UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            p, f"not valid UTF-8 text (line {line}, byte {e.start}); re-save the file as UTF-8"
        ) from e
    if not text.strip():
        raise DataError(p, "file is empty")
    return text


def split_lines(text: str) -> list[str]:
    """Lines split on `\\n` and `\\r\\n` only: U+2028, NEL, form feeds and other separators stay inside a line.

    (`str.splitlines` also splits on those, which silently turns one prompt into several.)
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_csv(path: str | Path, required: Sequence[str] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file, checking that `required` columns exist.

    Strict: an unbalanced quote, a stray quote after a quoted field, or a row with more or fewer fields than the
    header is a DataError naming the line (a lenient reader would silently merge or shift rows).
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader)
        rows: list[dict[str, str]] = []
        start = reader.line_num + 1
        for values in reader:
            if not values:  # a blank line
                start = reader.line_num + 1
                continue
            if len(values) != len(header):
                where = f"line {start}" if start == reader.line_num else f"lines {start}-{reader.line_num}"
                raise DataError(
                    path,
                    f"{where}: {len(values)} fields where the header has {len(header)} (an unbalanced quote or a stray comma?)",
                )
            rows.append(dict(zip(header, values, strict=True)))
            start = reader.line_num + 1
    except StopIteration:
        raise DataError(path, "file is empty") from None
    except csv.Error as e:
        raise DataError(path, f"line {start}: malformed CSV ({e}; is a quote unbalanced?)") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(repr(c) for c in missing)}; found {header}")
    if not rows:
        raise DataError(path, "CSV has a header but no rows")
    return header, rows


def read_jsonl(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (blank lines skipped), checking that `required` keys exist in each row."""
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(split_lines(read_text(path)), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, f"line {n}: invalid JSON ({e.msg})") from e
        except RecursionError:
            raise DataError(path, f"line {n}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise DataError(path, f"line {n}: expected a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise DataError(path, f"line {n}: missing key(s) {', '.join(repr(k) for k in missing)}")
        rows.append(row)
    return rows


def parse_score(value: Any, path: str | Path, where: str) -> float:
    """A numeric score from a cell: numbers, and booleans spelled True/False/true/false/yes/no."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        x = float(value)
    else:
        s = str(value).strip()
        low = s.lower()
        if low in ("true", "yes"):
            return 1.0
        if low in ("false", "no"):
            return 0.0
        try:
            x = float(s)
        except ValueError:
            raise DataError(path, f"{where}: score {s!r} is not numeric") from None
    if math.isnan(x):
        raise DataError(path, f"{where}: score is NaN")
    if math.isinf(x):
        raise DataError(path, f"{where}: score is infinite")
    return x


def first_turn(prompt: Any) -> str:
    """The first user turn of a prompt given as a string, a JSON-encoded list of turns, or a list."""
    if isinstance(prompt, list):
        return str(prompt[0]) if prompt else ""
    s = str(prompt)
    if s.startswith("["):
        try:
            turns = json.loads(s)
        except json.JSONDecodeError:
            return s
        if isinstance(turns, list):
            return str(turns[0]) if turns and turns[0] is not None else ""
    return s


# --- battles ---------------------------------------------------------------------------------------------


def _keep_prompt(prompt: str, min_chars: int) -> bool:
    return len(prompt.strip()) >= min_chars


def load_arena_battles(
    path: str | Path, min_chars: int = MIN_PROMPT_CHARS, source: str = "arena"
) -> list[Battle]:
    """Chatbot Arena 55k CSV (`id, model_a, model_b, prompt` JSON turns, winner_* one-hot): first turn only."""
    cols = ["model_a", "model_b", "prompt", "winner_model_a", "winner_model_b", "winner_tie"]
    _, rows = read_csv(path, cols)
    out: list[Battle] = []
    for i, r in enumerate(rows, 2):
        prompt = first_turn(r["prompt"])
        if not _keep_prompt(prompt, min_chars):
            continue
        flags = [parse_score(r[c], path, f"row {i}, column {c}") for c in cols[3:]]
        if sum(flags) != 1:
            raise DataError(
                path, f"row {i}: exactly one of winner_model_a/winner_model_b/winner_tie must be 1"
            )
        winner = WINNERS[flags.index(1.0)]
        out.append(
            Battle(
                prompt,
                canonical_model(r["model_a"]),
                canonical_model(r["model_b"]),
                cast(Winner, winner),
                source,
                r.get("id", ""),
            )
        )
    return out


def _winner(value: Any, row: dict[str, Any]) -> str | None:
    w = str(value).strip().lower()
    if w in ("model_a", "model_b", "tie"):
        return w
    if w.startswith("tie"):  # Arena's "tie (bothbad)"
        return "tie"
    if w == str(row.get("model_a", "")).strip().lower():
        return "model_a"
    if w == str(row.get("model_b", "")).strip().lower():
        return "model_b"
    return None


def load_battles_jsonl(path: str | Path, min_chars: int = MIN_PROMPT_CHARS, source: str = "") -> list[Battle]:
    """JSONL battles `{prompt, model_a, model_b, winner}`, winner in {model_a, model_b, tie} (or a model name).

    Also reads the paper's judge-battle dumps in the same schema; the prompt may be a list of turns.
    """
    rows = read_jsonl(path, ["prompt", "model_a", "model_b", "winner"])
    out: list[Battle] = []
    for n, r in enumerate(rows, 1):
        prompt = first_turn(r["prompt"])
        if not _keep_prompt(prompt, min_chars):
            continue
        w = _winner(r["winner"], r)
        if w is None:
            raise DataError(path, f"row {n}: winner {r['winner']!r} is not model_a, model_b or tie")
        out.append(
            Battle(
                prompt,
                canonical_model(str(r["model_a"])),
                canonical_model(str(r["model_b"])),
                cast(Winner, w),
                source or Path(path).stem,
                str(r.get("id", n)),
            )
        )
    return out


def load_battles(path: str | Path, min_chars: int = MIN_PROMPT_CHARS) -> list[Battle]:
    """Battles from an Arena-style CSV or a JSONL file, chosen by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return load_arena_battles(path, min_chars)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return load_battles_jsonl(path, min_chars)
    raise DataError(path, f"unknown battle file type {suffix!r}; expected .csv (Arena schema) or .jsonl")


def battles_from_scores(
    scored: Iterable[ScoredPrompt],
    pairs: Sequence[tuple[str, str]] | None = None,
    min_chars: int = 0,
) -> Iterator[Battle]:
    """The paper's golden-label augmentation: per prompt and model pair, higher score wins, equal is a tie.

    `pairs` restricts the pairs (e.g. only strong-tier vs weak-tier); by default every pair of scored models.
    """
    for sp in scored:
        if not _keep_prompt(sp.prompt, min_chars):
            continue
        if pairs is None:
            it: Iterable[tuple[str, str]] = itertools.combinations(sorted(sp.scores), 2)
        else:
            it = [(a, b) for a, b in pairs if a in sp.scores and b in sp.scores]
        for a, b in it:
            sa, sb = sp.scores[a], sp.scores[b]
            winner = "model_a" if sa > sb else "model_b" if sb > sa else "tie"
            yield Battle(sp.prompt, a, b, winner, sp.source, sp.id)  # type: ignore[arg-type]


def load_correctness_long(
    path: str | Path,
    prompt_col: str = "prompt",
    model_col: str = "model",
    score_col: str = "correct",
    id_col: str | None = None,
    source: str = "",
) -> list[ScoredPrompt]:
    """A long table (one row per prompt and model) into one ScoredPrompt per prompt."""
    required = [prompt_col, model_col, score_col] + ([id_col] if id_col else [])
    _, rows = read_csv(path, required)
    by_key: dict[str, tuple[str, dict[str, float]]] = {}
    for i, r in enumerate(rows, 2):
        key = r[id_col] if id_col else r[prompt_col]
        entry = by_key.setdefault(key, (r[prompt_col], {}))
        entry[1][canonical_model(r[model_col])] = parse_score(
            r[score_col], path, f"row {i}, column {score_col}"
        )
    return [ScoredPrompt(p, s, k, source or Path(path).stem) for k, (p, s) in by_key.items()]


def load_correctness_wide(
    path: str | Path,
    prompt_col: str = "prompt",
    models: Sequence[str] | None = None,
    id_col: str | None = None,
    source: str = "",
) -> list[ScoredPrompt]:
    """A wide table (one row per prompt, one score column per model) into ScoredPrompts.

    Without `models`, every column other than the prompt and id columns whose name has no '|' or '_response'
    suffix is taken as a model.
    """
    header, rows = read_csv(path, [prompt_col] + list(models or []) + ([id_col] if id_col else []))
    if models is None:
        models = [
            c
            for c in header
            if c and c not in (prompt_col, id_col) and "|" not in c and not c.endswith("_response")
        ]
    if not models:
        raise DataError(path, "no model score columns found")
    out = []
    for i, r in enumerate(rows, 2):
        scores = {canonical_model(m): parse_score(r[m], path, f"row {i}, column {m!r}") for m in models}
        out.append(
            ScoredPrompt(
                r[prompt_col], scores, r[id_col] if id_col else str(i - 2), source or Path(path).stem
            )
        )
    return out


def load_judge_verdicts(
    preferences_path: str | Path,
    instructions_path: str | Path,
    annotator: str | None = "alpaca_eval_gpt4_turbo_fn",
    min_chars: int = MIN_PROMPT_CHARS,
) -> list[Battle]:
    """alpaca_eval-style judge verdicts: preference in [1, 2]; < 1.5 output 1 wins, > 1.5 output 2, 1.5 tie."""
    _, inst = read_csv(instructions_path, ["instruction_id", "instruction"])
    text = {r["instruction_id"]: r["instruction"] for r in inst}
    _, rows = read_csv(preferences_path, ["instruction_id", "generator_1", "generator_2", "preference"])
    out: list[Battle] = []
    for i, r in enumerate(rows, 2):
        if annotator and r.get("annotator", annotator) != annotator:
            continue
        if r["instruction_id"] not in text:
            raise DataError(
                preferences_path,
                f"row {i}: instruction_id {r['instruction_id']!r} not in {instructions_path}",
            )
        if not r["preference"].strip():
            continue  # no verdict recorded
        pref = parse_score(r["preference"], preferences_path, f"row {i}, column 'preference'")
        winner = "model_a" if pref < 1.5 else "model_b" if pref > 1.5 else "tie"
        prompt = text[r["instruction_id"]]
        if _keep_prompt(prompt, min_chars):
            out.append(
                Battle(
                    prompt,
                    canonical_model(r["generator_1"]),
                    canonical_model(r["generator_2"]),
                    cast(Winner, winner),
                    "alpaca_eval",
                    r["instruction_id"],
                )
            )
    return out


# --- benchmarks ------------------------------------------------------------------------------------------


def contaminated_eval_prompts(path: str | Path) -> set[str]:
    """The `eval_prompt`s of a RouteLLM contaminated_prompts.jsonl (empty set when the file is absent)."""
    if not Path(path).exists():
        return set()
    return {str(r["eval_prompt"]) for r in read_jsonl(path, ["eval_prompt"])}


def _drop_contaminated(bench: Benchmark, contaminated: set[str]) -> Benchmark:
    return bench.subset([it.prompt not in contaminated for it in bench.items], "contaminated_prompts.jsonl")


def load_mmlu(folder: str | Path) -> Benchmark:
    """RouteLLM's MMLU folder: `responses/mmlu_<subject>.csv` with bool columns per model."""
    folder = Path(folder)
    resp = folder / "responses" if (folder / "responses").is_dir() else folder
    files = sorted(resp.glob("mmlu_*.csv"))
    if not files:
        raise DataError(folder, "no responses/mmlu_<subject>.csv files found")
    items: list[BenchmarkItem] = []
    for f in files:
        _, rows = read_csv(f, ["prompt", MMLU_STRONG, MMLU_WEAK])
        subject = f.stem.removeprefix("mmlu_")
        for i, r in enumerate(rows, 2):
            items.append(
                BenchmarkItem(
                    r["prompt"],
                    parse_score(r[MMLU_STRONG], f, f"row {i}, column {MMLU_STRONG!r}"),
                    parse_score(r[MMLU_WEAK], f, f"row {i}, column {MMLU_WEAK!r}"),
                    f"{subject}-{i - 2}",
                    subject,
                )
            )
    bench = Benchmark("mmlu", items, MMLU_STRONG, MMLU_WEAK)
    return _drop_contaminated(bench, contaminated_eval_prompts(folder / "contaminated_prompts.jsonl"))


def load_gsm8k(path: str | Path) -> Benchmark:
    """RouteLLM's GSM8K response CSV (a folder holding gsm8k_responses.csv, or the CSV itself)."""
    p = Path(path)
    csv_path = p / "gsm8k_responses.csv" if p.is_dir() else p
    _, rows = read_csv(csv_path, ["prompt", MMLU_STRONG, MMLU_WEAK])
    items = [
        BenchmarkItem(
            r["prompt"],
            parse_score(r[MMLU_STRONG], csv_path, f"row {i}, column {MMLU_STRONG!r}"),
            parse_score(r[MMLU_WEAK], csv_path, f"row {i}, column {MMLU_WEAK!r}"),
            str(i - 2),
        )
        for i, r in enumerate(rows, 2)
    ]
    bench = Benchmark("gsm8k", items, MMLU_STRONG, MMLU_WEAK)
    return _drop_contaminated(
        bench, contaminated_eval_prompts(csv_path.parent / "contaminated_prompts.jsonl")
    )


MT_BENCH_STRONG = "gpt-4-1106-preview"
MT_BENCH_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def load_mt_bench(folder: str | Path, strong: str = MT_BENCH_STRONG, weak: str = MT_BENCH_WEAK) -> Benchmark:
    """MT Bench in RouteLLM's layout: route on turn 1; quality = mean of the two turn scores (1-10)."""
    folder = Path(folder)
    questions = read_jsonl(folder / "question.jsonl", ["question_id", "turns"])
    judgements = read_jsonl(folder / "judgements.jsonl", ["question_id", "model", "score", "turn"])
    scores: dict[tuple[Any, str], list[float]] = {}
    for n, j in enumerate(judgements, 1):
        if j["model"] not in (strong, weak):
            continue
        s = parse_score(j["score"], folder / "judgements.jsonl", f"line {n}, key 'score'")
        if s < 0:  # FastChat writes -1 when the judge's verdict could not be parsed
            continue
        scores.setdefault((j["question_id"], j["model"]), []).append(s)
    items: list[BenchmarkItem] = []
    missing = 0
    for q in questions:
        turns = q["turns"]
        if not isinstance(turns, list) or not turns:
            raise DataError(
                folder / "question.jsonl", f"question {q['question_id']}: 'turns' must be a non-empty list"
            )
        st, wk = scores.get((q["question_id"], strong)), scores.get((q["question_id"], weak))
        if not st or not wk:
            missing += 1
            continue
        items.append(
            BenchmarkItem(
                str(turns[0]),
                sum(st) / len(st),
                sum(wk) / len(wk),
                str(q["question_id"]),
                str(q.get("category", "")),
            )
        )
    if not items:
        raise DataError(folder, f"no question has judgements for both {strong!r} and {weak!r}")
    bench = Benchmark("mt-bench", items, strong, weak, {"no judgements": missing} if missing else {})
    return _drop_contaminated(bench, contaminated_eval_prompts(folder / "contaminated_prompts.jsonl"))


def load_benchmark_csv(path: str | Path, name: str | None = None) -> Benchmark:
    """A generic two-model benchmark CSV: `prompt, strong, weak` (numeric, higher is better), optional `id`."""
    _, rows = read_csv(path, ["prompt", "strong", "weak"])
    items = [
        BenchmarkItem(
            r["prompt"],
            parse_score(r["strong"], path, f"row {i}, column 'strong'"),
            parse_score(r["weak"], path, f"row {i}, column 'weak'"),
            r.get("id") or str(i - 2),
        )
        for i, r in enumerate(rows, 2)
    ]
    return Benchmark(name or Path(path).stem, items)


BENCHMARKS = ("mmlu", "gsm8k", "mt-bench", "csv")


def load_benchmark(kind: str, path: str | Path) -> Benchmark:
    """Dispatch on a benchmark kind: mmlu | gsm8k | mt-bench | csv."""
    loaders = {"mmlu": load_mmlu, "gsm8k": load_gsm8k, "mt-bench": load_mt_bench, "csv": load_benchmark_csv}
    if kind not in loaders:
        raise ValueError(f"unknown benchmark {kind!r}; expected one of {', '.join(BENCHMARKS)}")
    return loaders[kind](path)


# --- prompt files ----------------------------------------------------------------------------------------

MAX_PROMPT_CHARS = 100_000  # longer prompts are truncated (the router reads at most a few hundred tokens)
_MAX_LISTED = 5


def _kind(value: Any) -> str:
    return (
        "null"
        if value is None
        else "a boolean"
        if isinstance(value, bool)
        else ("a number" if isinstance(value, int | float) else f"a {type(value).__name__}")
    )


def _prompt_value(value: Any) -> tuple[str | None, str]:
    """A record's prompt text, or None and why not (a list is a conversation: its first turn is the prompt)."""
    if isinstance(value, str):
        return value, ""
    if isinstance(value, list):
        if value and isinstance(value[0], str):
            return value[0], ""
        return None, "is a list whose first turn is not a string" if value else "is an empty list"
    return None, f"is {_kind(value)}, expected a string"


def _record_fields(row: Any, where: str) -> tuple[str | None, str | None, str]:
    """(text, id, problem) for one JSON/JSONL record: a string, or an object with `prompt` and optional `id`."""
    if isinstance(row, str):
        return row, None, ""
    if not isinstance(row, dict):
        return (
            None,
            None,
            f"{where}: record is {_kind(row)}, expected a string or an object with a 'prompt' key",
        )
    if "prompt" not in row:
        return None, None, f"{where}: no 'prompt' key"
    text, why = _prompt_value(row["prompt"])
    if text is None:
        return None, None, f"{where}: 'prompt' {why}"
    rid = row.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
        return None, None, f"{where}: 'id' is {_kind(rid)}, expected a string or an integer"
    return text, None if rid is None else str(rid), ""


def read_prompt_file(path: str | Path, max_chars: int = MAX_PROMPT_CHARS) -> PromptFile:
    """Every record of a prompt file, in order, with its position, location and `id`.

    Text files: one prompt per line, split on newlines only (`\\n`, `\\r\\n`); blank lines are separators,
    counted but not records. JSONL: one JSON string or `{"prompt": ..., "id": ...}` object per non-blank line.
    JSON: a list of such strings or objects. An empty or whitespace-only prompt is a record (its route is the
    caller's to document); a record that is not text (null, a number, an object without `prompt`) is a
    DataError listing every offending line, so nothing is routed as the text "None" or "123". Prompts longer
    than `max_chars` are truncated and marked.
    """
    p = Path(path)
    text = read_text(p)
    suffix = p.suffix.lower()
    raw: list[tuple[str, Any]] = []  # (where, value) for structured files
    records: list[PromptRecord] = []
    blank = 0
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(split_lines(text), 1):
            if not line.strip():
                blank += 1
                continue
            try:
                raw.append((f"line {n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(p, f"line {n}: invalid JSON ({e.msg})") from None
            except RecursionError:
                raise DataError(p, f"line {n}: JSON nested too deeply") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(p, f"invalid JSON ({e.msg}, line {e.lineno})") from None
        except RecursionError:
            raise DataError(p, "JSON nested too deeply") from None
        if not isinstance(data, list):
            raise DataError(p, f"expected a JSON list of prompts, got {_kind(data)}")
        raw = [(f"item {i}", v) for i, v in enumerate(data, 1)]
    else:
        for n, line in enumerate(split_lines(text), 1):
            if not line.strip():
                blank += 1
                continue
            raw.append((f"line {n}", line))
    problems: list[str] = []
    for where, value in raw:
        prompt, rid, problem = _record_fields(value, where)
        if prompt is None:
            problems.append(problem)
            continue
        records.append(PromptRecord(len(records), prompt[:max_chars], where, rid, len(prompt) > max_chars))
    if problems:
        more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        raise DataError(
            p, f"{len(problems)} record(s) are not prompt text: {'; '.join(problems[:_MAX_LISTED])}{more}"
        )
    if not records:
        raise DataError(p, "no prompts found")
    return PromptFile(str(p), records, blank)


def load_prompts(path: str | Path, max_chars: int = MAX_PROMPT_CHARS) -> tuple[list[str], int]:
    """Prompt texts of every record of a prompt file (see `read_prompt_file`) and how many were truncated.

    Lengths are kept: one text per record, empty ones included (callers that need text filter them).
    """
    f = read_prompt_file(path, max_chars)
    return f.texts, f.truncated
