"""The `train` and `calibrate` sub-commands (kept apart so the core CLI stays small)."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register training-related sub-commands on the main parser."""
    return None
