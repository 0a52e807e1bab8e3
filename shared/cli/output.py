"""Shared CLI output: tables with rich, JSON for scripts, one-line errors."""

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from amity.errors import AmityError

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line and leave with a non-zero status."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn Amity's own errors into one-line messages instead of tracebacks."""
    try:
        yield
    except AmityError as exc:
        fail(str(exc))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(str(cell) for cell in row))
    console.print(grid)


def emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def progress_printer() -> Callable[[str], None]:
    """A progress callback that prints each step dimmed, for long operations."""
    return lambda message: errors.print(f"[dim]… {message}[/]", highlight=False, soft_wrap=True)
