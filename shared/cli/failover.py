"""`amity failover`, `amity failback` and `amity checkpoint run`: move consumer groups between regions.

With --url (or AMITY_URL) and neither --config nor --regions-file, the
coordinator runs the move (POST /v1/failover or /v1/failback) with the regions
and links it holds. Otherwise the move runs here: regions come from
--regions-file, else from the mirror config's `regions:` (--config), else from
the local dev regions.json; links come from the mirror config, and without one
--no-link-check says the links are unknown. The direct mode needs no
coordinator, which may be down with the region it runs in.
"""

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from amity.cli.api import TOKEN_ENV, CoordinatorClient
from amity.cli.output import console, emit_json, errors, fail, refusals, table, user_errors
from amity.coordinator.schemas.failover import GroupMove
from amity.dev.settings import DevSettings
from amity.errors import ConfigError
from amity.failover import Direction, FailoverReport, FailoverRequest, failover as move_group
from amity.links import Link
from amity.regions import Region

# A scan reads whole topics; a client that gave up first would leave the user unsure whether the coordinator committed.
MOVE_TIMEOUT_S = 600.0

checkpoint_app = typer.Typer(help="Keep consumer-group checkpoints current across regions.", no_args_is_help=True)

Group = Annotated[str, typer.Option("--group", "-g", help="Consumer group to move.")]
Topic = Annotated[str, typer.Option("--topic", "-t", help="The topic as the group reads it in --from.")]
From = Annotated[str, typer.Option("--from", help="Region the group normally reads in (A).")]
To = Annotated[str, typer.Option("--to", help="Region it fails over to (B).")]
RegionsFile = Annotated[Path | None, typer.Option(help="JSON {region: {bootstrap, redis}} (default: --config's "
                                                       "regions, else the local dev regions.json).")]
Config = Annotated[Path | None, typer.Option("--config", help="Mirror config (regions and links).",
                                             envvar="AMITY_MIRROR_CONFIG")]
NoLinkCheck = Annotated[bool, typer.Option("--no-link-check", help="The links are unknown: do not check that one "
                                           "carries the topic.")]
RemoteTopic = Annotated[str | None, typer.Option(help="With --no-link-check: the topic's name in --to (default: the "
                                                      "same name; `A.topic` for prefix naming).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the plan, commit nothing.")]
AllowBehind = Annotated[bool, typer.Option("--allow-behind", help="Commit even if the destination lacks records the "
                                           "group already processed.")]
Scan = Annotated[bool, typer.Option("--scan", help="No offset index: read the topics from their start (slow).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
Url = Annotated[str | None, typer.Option("--url", envvar="AMITY_URL", help="Coordinator URL: it runs the move with "
                                         "the regions and links it holds (unless --config or --regions-file is "
                                         "given). Token: AMITY_API_TOKEN.")]


def failover(group: Group, topic: Topic, source: From, destination: To, regions_file: RegionsFile = None,
             config: Config = None, no_link_check: NoLinkCheck = False, remote_topic: RemoteTopic = None,
             dry_run: DryRun = False, allow_behind: AllowBehind = False, scan: Scan = False,
             url: Url = None, json_out: JsonOut = False) -> None:
    """Move a group from A to B: translate its offsets exactly and commit them in B."""
    _move(Direction.FAILOVER, group, topic, source, destination, regions_file, config, url, no_link_check, remote_topic,
          dry_run, allow_behind, scan, json_out)


def failback(group: Group, topic: Topic, source: From, destination: To, regions_file: RegionsFile = None,
             config: Config = None, no_link_check: NoLinkCheck = False, remote_topic: RemoteTopic = None,
             dry_run: DryRun = False, allow_behind: AllowBehind = False, scan: Scan = False,
             url: Url = None, json_out: JsonOut = False) -> None:
    """Move a group back from B to A once A is up again (same --from and --to as the failover)."""
    _move(Direction.FAILBACK, group, topic, source, destination, regions_file, config, url, no_link_check, remote_topic,
          dry_run, allow_behind, scan, json_out)


@checkpoint_app.command("run")
def run(config: Annotated[Path, typer.Option("--config", help="Mirror config (regions and links).",
                                             envvar="AMITY_MIRROR_CONFIG")],
        groups: Annotated[str, typer.Option(help="Regex (full match) of the consumer groups to checkpoint.")] = ".*",
        region: Annotated[list[str] | None, typer.Option("--region", help="Serve only this region (repeatable): "
                                                         "index it and export its groups.")] = None,
        interval_s: Annotated[float | None, typer.Option(help="Seconds between checkpoints.")] = None,
        snapshot_every: Annotated[int | None, typer.Option(help="Records between index snapshots (K).")] = None,
        no_sync: Annotated[bool, typer.Option("--no-sync", help="Store checkpoints only; never write group "
                                              "offsets.")] = False,
        log_level: Annotated[str, typer.Option()] = "INFO") -> None:
    """Index topics and keep checkpoints of matching groups in every region they can move to, until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from amity.failover.checkpointer import Checkpointer
    from amity.failover.settings import FailoverSettings
    from amity.mirror.config import load_config

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with user_errors():
        mirror = load_config(config)
        unknown = sorted(set(region or ()) - set(mirror.regions))
        if unknown:
            raise ConfigError(f"--region {', '.join(unknown)} is not a region of {config}")
        overrides = {k: v for k, v in {"checkpoint_interval_s": interval_s, "snapshot_every": snapshot_every}.items()
                     if v is not None}
        checkpointer = Checkpointer(dict(mirror.regions), mirror.links, groups, FailoverSettings(**overrides),
                                    serve=region, sync=not no_sync)
    checkpointer.run(stop)


def _move(direction: Direction, group: str, topic: str, source: str, destination: str, regions_file: Path | None,
          config: Path | None, url: str | None, no_link_check: bool, remote_topic: str | None, dry_run: bool,
          allow_behind: bool, scan: bool, json_out: bool) -> None:
    with user_errors():
        request = FailoverRequest(group=group, topic=topic, source=source, destination=destination,
                                  direction=direction, dry_run=dry_run, check_links=not no_link_check,
                                  remote_topic=remote_topic, allow_behind=allow_behind, scan=scan)
        if url and config is None and regions_file is None:
            report = _through_coordinator(url, request)
        else:
            regions, links = _topology(regions_file, config)
            report = move_group(request, regions, None if no_link_check else links)
    if json_out:
        emit_json(report.model_dump(mode="json"))
    else:
        _print(report)


def _through_coordinator(url: str, request: FailoverRequest) -> FailoverReport:
    """The move as the coordinator at `url` runs it, with the regions and links it holds."""
    if not request.check_links:
        raise ConfigError("the coordinator always checks the links it holds: --no-link-check (and --remote-topic) "
                          "need the regions from --config or --regions-file")
    body = request.model_dump(mode="json", include=set(GroupMove.model_fields))
    with CoordinatorClient(url, os.environ.get(TOKEN_ENV) or None, timeout_s=MOVE_TIMEOUT_S) as api:
        return FailoverReport.model_validate(api.post(f"/v1/{request.direction}", body))


def _topology(regions_file: Path | None, config: Path | None) -> tuple[dict[str, Region], list[Link] | None]:
    links = None
    regions: dict[str, Region] | None = None
    if config is not None:
        from amity.mirror.config import load_config

        mirror = load_config(config)
        links, regions = mirror.links, dict(mirror.regions)
    if regions_file is not None or regions is None:
        regions = _regions_file(regions_file or DevSettings().regions_file)
    return regions, links


def _regions_file(path: Path) -> dict[str, Region]:
    try:
        document = json.loads(path.read_text())
        return {name: Region(name=name, **spec) for name, spec in document.items()}
    except ValidationError as exc:
        raise ConfigError(f"cannot read regions from {path}: {refusals(exc)}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read regions from {path} ({exc}): pass --regions-file or --config, "
                          "or start local regions with `amity dev up`") from None


def _print(report: FailoverReport) -> None:
    basis = "live offsets" if report.basis == "live" else f"checkpoint {report.checkpoint_age_s:.1f}s old"
    verb = "committed" if report.committed else "would commit (dry run)"
    console.print(f"{report.direction} of group {report.group}: {report.moved_from}/{report.from_topic} -> "
                  f"{report.moved_to}/{report.to_topic} ({basis})", highlight=False)
    rows = []
    for p in report.partitions:
        action = "unchanged" if p.previous == p.offset else verb
        again = str(p.redelivered) if p.redelivered_exact else f">={p.redelivered}"
        rows.append((p.partition, p.offset, "-" if p.previous is None else p.previous, p.end, again, action))
    table(f"{report.to_topic} in {report.moved_to}", ["partition", "resume at", "was", "end", "re-delivered",
                                                         "action"], rows)
    for warning in report.warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if not report.partitions:
        fail(f"{report.to_topic} has no partitions in {report.moved_to}")
