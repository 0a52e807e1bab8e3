"""`amity mirror run`: a mirror worker, standalone from a config file or assigned by the coordinator."""

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from amity.cli.output import fail, user_errors

app = typer.Typer(help="Run mirror workers.", no_args_is_help=True)


@app.command()
def run(config: Annotated[Path | None, typer.Option(help="YAML with regions, links and rules (docs/mirror.md).",
                                                    envvar="AMITY_MIRROR_CONFIG")] = None,
        coordinator: Annotated[str | None, typer.Option(help="Coordinator URL: take links and rules from it.",
                                                        envvar="AMITY_URL")] = None,
        token: Annotated[str | None, typer.Option(help="Coordinator API token.", envvar="AMITY_API_TOKEN")] = None,
        metrics_port: Annotated[int, typer.Option(help="Prometheus port; 0 disables.")] = 0,
        stats_file: Annotated[Path | None, typer.Option(help="Write the JSON stats report here.")] = None,
        log_level: Annotated[str, typer.Option()] = "INFO") -> None:
    """Replicate until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if (config is None) == (coordinator is None):
        fail("give exactly one of --config FILE (standalone) and --coordinator URL")
    from amity.mirror.config import load_config
    from amity.mirror.plan import CoordinatorPlan, StaticPlan
    from amity.mirror.settings import MirrorSettings
    from amity.mirror.worker import Worker, tune_collector

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with user_errors():
        overrides: dict[str, object] = {"metrics_port": metrics_port} if metrics_port else {}
        if stats_file is not None:
            overrides["stats_file"] = stats_file
        source = StaticPlan(load_config(config)) if config is not None else CoordinatorPlan(coordinator, token)
        settings = MirrorSettings(**overrides)
        worker = Worker(source, settings, stop)
    tune_collector(settings.gc_threshold)
    worker.run()
