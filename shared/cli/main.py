"""The `amity` command: one entry point, a sub-command group per area."""

import typer

from amity.cli import dev, mirror
from amity.cli import bench, coordinator, links, regions, rules
from amity.cli.demo import demo
from amity.cli.failover import checkpoint_app, failback, failover
from amity.cli.stats import stats
from amity.cli.view import view

app = typer.Typer(help="Active-active multi-region orchestration for Apache Kafka.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(dev.app, name="dev")
app.add_typer(mirror.app, name="mirror")
app.command(name="demo")(demo)
app.command(name="view")(view)
app.add_typer(regions.app, name="region")
app.add_typer(links.app, name="link")
app.command(name="mesh")(links.mesh)
app.command(name="topology")(links.topology)
app.add_typer(rules.app, name="rules")
app.command(name="stats")(stats)
app.add_typer(coordinator.app, name="coordinator")
app.command(name="bench")(bench.bench)
app.command(name="failover")(failover)
app.command(name="failback")(failback)
app.add_typer(checkpoint_app, name="checkpoint")
