"""`routing-core` command line: route | eval | train | calibrate | label. The only package that prints.

One module per sub-command (`route`, `evaluate`, `train`), the shared helpers in `common`; this module only
builds the parser and runs the chosen command, so the modules import `common` and never each other.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from routing_core.cli.common import EXIT_USAGE, PROG, ArgumentParser, CLIError, fail, run


def build_parser() -> ArgumentParser:
    """The full parser: every sub-command registers itself."""
    from routing_core.cli import evaluate, route, train

    parser = ArgumentParser(
        prog=PROG, description="Learned LLM routing (RouteLLM): route, evaluate, train, calibrate."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    route.add_parser(sub)
    evaluate.add_parser(sub)
    train.add_parsers(sub)
    try:
        from routing_core import labeling_cli
    except ImportError:  # pragma: no cover - shipped with the package
        pass
    else:
        labeling_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the sub-command; every failure is one line on stderr and exit code 2."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (already printed as one line) or --help
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    return run(args.func, args)


__all__ = ["EXIT_USAGE", "CLIError", "build_parser", "fail", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
