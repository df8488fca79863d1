"""What every sub-command shares: one-line errors (exit code 2), validated option types, router loading,
output paths checked before any work, and atomic JSON writes. Imports no sub-command (no cycles)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from routing_core.errors import RoutingError

PROG = "routing-core"
EXIT_USAGE = 2
MAX_SEED = 2**32 - 1
REPORT = (
    "this is a bug in routellm-plugin, not in your input: please report it on the project's issue tracker "
    "with the command you ran (set ROUTING_CORE_DEBUG=1 to see the traceback)"
)


class CLIError(RoutingError):
    """A usage problem reported as one line with exit code 2."""


def one_line(msg: object) -> str:
    """A message flattened to one line (newlines inside data or library messages would break the contract)."""
    text = " ".join(str(msg).split("\n")).replace("\r", " ").strip()
    return text if len(text) <= 2000 else text[:1999] + "…"


def fail(msg: object) -> int:
    """Print `routing-core: error: MSG` on stderr (one line) and return the usage exit code."""
    print(f"{PROG}: error: {one_line(msg)}", file=sys.stderr)
    return EXIT_USAGE


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (the usage text is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# --- option types: each rejects bad values with a one-line argparse error -----------------------------------


def _number(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return x


def unit_float(text: str) -> float:
    """A finite number in [0, 1] (thresholds, strong fractions)."""
    x = _number(text)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1]")
    return x


def int_at_least(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An integer >= lo (and <= hi), as an argparse type."""

    def parse(text: str) -> int:
        try:
            n = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if n < lo or (hi is not None and n > hi):
            bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{text!r} must be an integer {bound}")
        return n

    parse.__name__ = "integer"
    return parse


seed_int = int_at_least(0, MAX_SEED)
non_negative_int = int_at_least(0)
positive_int = int_at_least(1)


# --- routers and outputs ------------------------------------------------------------------------------------


def add_router_arg(p: argparse.ArgumentParser, default_help: str | None = None) -> None:
    """`--router` and `--seed`, shared by route, eval and calibrate (`default_help`: the command resolves an
    unset --router itself, e.g. eval's multi-model default)."""
    from routing_core.registry import DEFAULT_ROUTER

    p.add_argument(
        "--router",
        default=None if default_help else DEFAULT_ROUTER,
        help=f"bundled router name or checkpoint folder (default: {default_help or DEFAULT_ROUTER})",
    )
    p.add_argument("--seed", type=seed_int, default=None, help=f"seed for stochastic routers, 0..{MAX_SEED}")


def load_router(args: argparse.Namespace) -> Any:
    """The router `--router` names (with `--seed` for stochastic ones)."""
    from routing_core.registry import load_router as _load

    kwargs = {"seed": args.seed} if getattr(args, "seed", None) is not None else {}
    return _load(args.router, **kwargs)


def check_output(path: str | None, option: str, suffixes: tuple[str, ...] = ()) -> Path | None:
    """Check an output path before any work (so a long run never ends in a failed write); None for stdout/none."""
    from routing_core.atomic import check_writable_file

    if path is None or path == "-":
        return None
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{option} {path}: is a directory, expected a file path")
    if suffixes and p.suffix.lower() not in suffixes:
        raise CLIError(f"{option} {path}: the file name must end in {', '.join(suffixes)}")
    try:
        return check_writable_file(p, option)
    except OSError as e:
        raise CLIError(str(e)) from None


def write_json(path: str, data: Any) -> None:
    """JSON to stdout (`-`) or atomically to a file (temp file in the same folder, then renamed)."""
    from routing_core.atomic import atomic_write_text

    text = json.dumps(data, indent=2, default=float, allow_nan=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        atomic_write_text(path, text)


# --- running a command --------------------------------------------------------------------------------------


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show warnings as `routing-core: warning: ...` lines while a command runs."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.showwarning = show
        yield


def run(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a sub-command: every failure becomes one line on stderr and exit code 2, never a traceback."""
    debug = bool(os.environ.get("ROUTING_CORE_DEBUG"))
    try:
        with one_line_warnings():
            return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (RoutingError, ValueError) as e:
        if debug:
            raise
        return fail(e)
    except FileNotFoundError as e:
        return fail(f"{e.filename}: no such file" if e.filename else e)
    except OSError as e:  # permission denied, disk full, a directory where a file was expected...
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        return fail(f"{where}{e.strerror or e}")
    except ImportError as e:
        return fail(f"a package this needs is not installed ({e})")
    except RecursionError:
        return fail("input nested too deeply to process")
    except MemoryError:
        return fail("out of memory")
    except Exception as e:
        if debug:
            raise
        return fail(f"internal error ({type(e).__name__}: {e}); {REPORT}")
