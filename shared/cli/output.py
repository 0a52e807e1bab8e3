"""Shared CLI output: tables with rich, JSON for scripts, one-line errors."""

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from amity.errors import AmityError

console = Console()
errors = Console(stderr=True)
# Wider than any table the CLI prints: the bound a table is measured within when nothing limits its width.
_UNBOUNDED = 100_000


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line and leave with a non-zero status."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn Amity's own errors, and values the settings or request models refuse, into one-line messages
    instead of tracebacks."""
    try:
        yield
    except AmityError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(refusals(exc))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(escape(str(cell)) for cell in row))  # topic patterns are full of [...]
    show(grid)


def show(renderable: RenderableType) -> None:
    """Print tables with every cell whole. A terminal's width is kept (rich fits the tables to it), but a file or a
    pipe has none, and rich's 80 columns there cut figures short (a benchmark's records/s as "91,8…")."""
    if console.is_terminal:
        console.print(renderable)
        return
    natural = console.measure(renderable, options=console.options.update(max_width=_UNBOUNDED)).maximum
    fitted = console.width
    console.width = max(fitted, natural)
    try:
        console.print(renderable)
    finally:
        console.width = fitted


def emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def progress_printer() -> Callable[[str], None]:
    """A progress callback that prints each step dimmed, for long operations."""
    return lambda message: errors.print(f"[dim]… {escape(message)}[/]", highlight=False, soft_wrap=True)


def refusals(exc: ValidationError) -> str:
    """What a model refused, field by field, without the values (pydantic's own text repeats each input, and a
    Redis URL or a SASL password may be one)."""
    return "; ".join(_refusal(error) for error in exc.errors())


def _refusal(error: dict[str, Any]) -> str:
    """One refused value: where (a field or setting name) and why."""
    where = ".".join(str(part) for part in error["loc"])
    why = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {why}" if where else why
