"""`amity coordinator`: run the control plane, and see its mirror workers."""

from typing import Annotated

import typer

from amity.cli.api import DEFAULT_URL, JsonOut, Url, connect
from amity.cli.output import emit_json, table, user_errors

app = typer.Typer(help="The coordinator: Amity's control plane (HTTP API).", no_args_is_help=True)


@app.command()
def run(host: Annotated[str | None, typer.Option(help="Address to bind (AMITY_HOST, default 127.0.0.1).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (AMITY_PORT, default 8080).")] = None,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info") -> None:
    """Serve the coordinator; every setting comes from AMITY_* variables (see docs/coordinator.md)."""
    from amity.coordinator.server import serve
    from amity.coordinator.settings import CoordinatorSettings

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    with user_errors():
        settings = CoordinatorSettings(**overrides)
    serve(settings, log_level)


@app.command()
def workers(url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Registered mirror workers, whether they are live, and the links each runs."""
    with user_errors(), connect(url) as api:
        found = api.get("/v1/workers")
    if json_out:
        emit_json(found)
        return
    table("Workers", ["id", "name", "version", "live", "last seen", "generation", "links"],
          [(w["id"], w["name"], w["version"] or "-", "yes" if w["live"] else "NO", w["last_seen"] or "-",
            "-" if w["running_generation"] is None else w["running_generation"], ", ".join(w["links"]) or "-")
           for w in found])
