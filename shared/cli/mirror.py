"""`amity mirror run`: a mirror worker, standalone from a config file."""

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from amity.cli.output import user_errors

app = typer.Typer(help="Run mirror workers.", no_args_is_help=True)


@app.command()
def run(config: Annotated[Path, typer.Option(help="YAML with regions and links (see docs/mirror.md).",
                                             envvar="AMITY_MIRROR_CONFIG")],
        metrics_port: Annotated[int, typer.Option(help="Prometheus port; 0 disables.")] = 0,
        stats_file: Annotated[Path | None, typer.Option(help="Write the JSON stats report here.")] = None,
        log_level: Annotated[str, typer.Option()] = "INFO") -> None:
    """Replicate the config's links until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from amity.mirror.config import load_config
    from amity.mirror.settings import MirrorSettings
    from amity.mirror.worker import Worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with user_errors():
        overrides = {"metrics_port": metrics_port} if metrics_port else {}
        if stats_file is not None:
            overrides["stats_file"] = stats_file
        worker = Worker(load_config(config), MirrorSettings(**overrides), stop)
    worker.run()
