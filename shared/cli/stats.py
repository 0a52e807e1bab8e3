"""`amity stats`: what the mirrors replicated, dropped and resolved, per link and topic."""

import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from amity.cli.api import DEFAULT_URL, JsonOut, Url, connect
from amity.cli.output import console, emit_json, show, user_errors


def stats(link: Annotated[str | None, typer.Option(help="Only this link.")] = None,
          topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
          watch: Annotated[bool, typer.Option(help="Refresh until interrupted.")] = False,
          interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes with --watch.")] = 2.0,
          count: Annotated[int, typer.Option(hidden=True, min=0, help="Stop --watch after this many refreshes.")] = 0,
          url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Totals, last-minute throughput and lag per link and topic, from the mirror workers' reports."""
    with user_errors(), connect(url) as api:
        if json_out:
            emit_json(api.get("/v1/stats", link=link, topic=topic))
            return
        if not watch:
            show(_tables(api.get("/v1/stats", link=link, topic=topic)))
            return
        with Live(console=console, auto_refresh=False) as live:
            shown = 0
            while count == 0 or shown < count:
                live.update(_tables(api.get("/v1/stats", link=link, topic=topic)), refresh=True)
                shown += 1
                if count == 0 or shown < count:
                    time.sleep(interval)


def _tables(view: dict[str, Any]) -> Group:
    links = _table("Links", ["link", "topics"], [[v["link"], str(v["topics"])] + _figures(v) for v in view["links"]])
    topics = _table("Topics", ["link", "topic"], [[v["link"], v["topic"]] + _figures(v) for v in view["topics"]])
    return Group(links, topics)


def _table(title: str, keys: list[str], rows: list[list[str]]) -> Table:
    grid = Table(title=title, title_justify="left")
    for column in [*keys, "replicated", "records/s", "bytes/s", "lag", "lag s", "dropped", "conflicts", "dlq"]:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*row)
    return grid


def _figures(view: dict[str, Any]) -> list[str]:
    total, conflicts = view["total"], view["total"]["conflicts"]
    return [str(total["replicated"]), f"{view['throughput']['records_per_s']:.1f}",
            f"{view['throughput']['bytes_per_s']:.0f}", str(view["lag_records"]), f"{view['lag_seconds']:.1f}",
            _reasons(total["dropped"]),
            f"{conflicts['detected']} detected, {conflicts['resolved']} resolved, {conflicts['stale']} stale, "
            f"{conflicts['conflicts_topic']} recorded",
            _reasons(total["dead_lettered"])]


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items())) or "0"
