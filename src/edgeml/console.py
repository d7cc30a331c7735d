"""Rich output that wraps and never cuts: what `edgeml` and `scripts/demo` print must survive a log file.

Rich sizes its output to the terminal, and to 80 columns when there is none, cutting table cells with an
ellipsis and help panels mid-word. Off a terminal (a pipe, a CI log) these consoles are WIDE_COLUMNS wide
unless COLUMNS says otherwise; tables fold long cells onto more lines instead of cutting them; messages
are printed as one soft-wrapped line (the terminal or viewer wraps it; no newline is inserted mid-URL).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

WIDE_COLUMNS = 160


def _width(stderr: bool) -> int | None:
    """None (rich's own sizing) on a terminal or when COLUMNS is set; WIDE_COLUMNS otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    if os.environ.get("COLUMNS", "").isdigit() or stream.isatty():
        return None
    return WIDE_COLUMNS


def make_console(*, stderr: bool = False) -> Console:
    """A Console on stdout (results, tables) or stderr (progress, messages), wide off a terminal."""
    return Console(stderr=stderr, width=_width(stderr))


def widen_help() -> None:
    """Typer's help panels: WIDE_COLUMNS off a terminal (typer reads TERMINAL_WIDTH only at import)."""
    from typer import rich_utils

    if rich_utils.MAX_WIDTH is None and _width(stderr=False) is not None:
        rich_utils.MAX_WIDTH = WIDE_COLUMNS


def folding_table(*headers: str, **options: Any) -> Table:
    """A Table whose cells fold long values (paths, URLs, manifest names) onto more lines, never cut."""
    return Table(*(Column(header, overflow="fold") for header in headers), **options)


def print_error(message: str) -> None:
    """`error: <message>` as one line on stderr (the message is printed as is, never read as markup)."""
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
