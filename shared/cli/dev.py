"""`amity dev`: the local multi-region environment (Kafka + Redis per region)."""

from typing import Annotated

import typer

from amity.cli.output import console, emit_json, progress_printer, table, user_errors
from amity.dev.environment import DevEnvironment
from amity.dev.jars import ensure_jars
from amity.dev.layout import parse_regions
from amity.dev.native import ensure_module
from amity.dev.services import Services
from amity.dev.settings import DevSettings

app = typer.Typer(help="Run local regions: one Kafka (KRaft) and one Redis each.", no_args_is_help=True)


def _environment() -> DevEnvironment:
    return DevEnvironment(DevSettings(), progress_printer())


@app.command()
def up(regions: Annotated[str, typer.Option(help="Comma-separated region names.")] = "us,eu",
       json_out: Annotated[bool, typer.Option("--json", help="Print regions as JSON.")] = False) -> None:
    """Start the regions (a no-op for those already up) and write regions.json."""
    with user_errors():
        names = parse_regions(regions)
        env = _environment()
        states = env.up(names)
    if json_out:
        emit_json({r: {"bootstrap": s.bootstrap, "redis": s.redis} for r, s in states.items()})
        return
    table("Amity local regions", ["region", "kafka bootstrap", "redis"],
          [(r, s.bootstrap, s.redis) for r, s in states.items()])
    console.print(f"written to {env.settings.regions_file}")


@app.command()
def down() -> None:
    """Stop exactly the processes `up` started, by pid."""
    with user_errors():
        env = _environment()
        stopped = Services(env.settings).stop_all() + env.down()
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show whether each process of each region is alive."""
    with user_errors():
        rows = _environment().status()
    if json_out:
        emit_json([row.__dict__ for row in rows])
        return
    if not rows:
        console.print("no local region has been started (amity dev up)")
        return
    table("Amity local processes", ["region", "role", "pid", "alive", "endpoint"],
          [(r.region, r.role, r.pid, "yes" if r.alive else "NO", r.endpoint) for r in rows])


@app.command()
def logs(region: str,
         role: Annotated[str, typer.Option(help="kafka or redis")] = "kafka",
         lines: Annotated[int, typer.Option("-n", help="How many last lines.")] = 50) -> None:
    """Print the last lines of a region's Kafka or Redis log."""
    with user_errors():
        path = _environment().log_path(region, role)
    for line in path.read_text(errors="replace").splitlines()[-lines:]:
        typer.echo(line)


@app.command()
def install() -> None:
    """Fetch Kafka's jars (Maven Central) and build the amitystate Redis module, so that `up` starts at once."""
    with user_errors():
        settings = DevSettings()
        path = ensure_jars(settings.jar_dir, settings.pom, lambda line: progress_printer()(line) if "Downloading" in line else None)
        module = ensure_module(settings.module_path) if settings.state_module else None
    console.print(f"Kafka jars ready in {path}")
    console.print(f"Redis module ready in {module}" if module else
                  "Redis module not built (no C compiler, or AMITY_DEV_STATE_MODULE=false): Redis runs the Lua scripts")
