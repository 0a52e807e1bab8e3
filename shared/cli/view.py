"""`amity view TOPIC --region R`: a topic's resolved view in one region."""

import json
from pathlib import Path
from typing import Annotated

import redis
import typer
import yaml
from pydantic import ValidationError

from amity.cli.output import console, emit_json, fail, table, user_errors
from amity.clock import unpack
from amity.dev.settings import DevSettings
from amity.errors import ConfigError
from amity.regions import Region, mask_url_password
from amity.rules import ConflictRule, RuleSet
from amity.state import StateSettings, VersionState
from amity.view import Resolved, ResolvedView


def view(topic: Annotated[str, typer.Argument(help="Topic to resolve.")],
         region: Annotated[str, typer.Option(help="Region whose copy of the topic is read.")],
         bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap of the region, instead of the "
                                                            "local regions file.")] = None,
         redis_url: Annotated[str | None, typer.Option("--redis", help="Redis of the region's version state, for "
                                                       "the stamps of plain clients' records (default: from the "
                                                       "regions file; none with --bootstrap).")] = None,
         namespace: Annotated[str, typer.Option(help="Version state namespace.")] = "amity",
         regions_file: Annotated[Path | None, typer.Option(help="regions.json (default: the local dev one).")] = None,
         rules: Annotated[Path | None, typer.Option(help="YAML with a `rules:` list (the topic's rule).")] = None,
         policy: Annotated[str, typer.Option(help="Policy when no rules file is given.")] = "lww",
         field: Annotated[str | None, typer.Option(help="timestamp policy: the ordering field.")] = None,
         priority: Annotated[str | None, typer.Option(help="Regions by priority, comma-separated.")] = None,
         fallback: Annotated[str | None, typer.Option(help="vector policy: lww or region-priority.")] = None,
         deleted: Annotated[bool, typer.Option("--deleted", help="Also list keys whose winner is a delete.")] = False,
         json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Read the topic to its end and print, per key, the version that wins under the topic's rule."""
    with user_errors():
        where, state_url = _region(region, bootstrap, regions_file)
        rule = _rule(topic, rules, policy, field, priority, fallback)
        state_url = redis_url or state_url
        state = _state(state_url, namespace) if state_url else None
        resolved_view = ResolvedView(where, topic, rule, state=state)
        try:
            winners = resolved_view.read(include_deleted=deleted)
        except redis.RedisError as exc:
            fail(f"cannot read first-hop stamps from {state_url} ({exc}); pass --bootstrap without --redis "
                 "to rank plain clients' records by their timestamps instead")
    rows = {_text(key): _describe(record) for key, record in sorted(winners.items())}
    if json_out:
        emit_json({"topic": topic, "region": region, "keys": rows, "skipped": dict(resolved_view.skipped)})
        return
    table(f"{topic} resolved in {region} ({rule.policy if rule else 'no rule'})",
          ["key", "value", "origin", "hlc ms.counter", "vector", "deleted"],
          [(key, row["value"], row["origin"], row["hlc"], row["vector"], row["deleted"]) for key, row in rows.items()])
    if resolved_view.skipped:
        console.print(f"skipped: {dict(resolved_view.skipped)}")


def _region(name: str, bootstrap: str | None, regions_file: Path | None) -> tuple[Region, str | None]:
    """The region to read, and its Redis URL when the regions file names it."""
    if bootstrap is not None:
        return Region(name=name, bootstrap=bootstrap), None
    path = regions_file or DevSettings().regions_file
    try:
        regions = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read regions from {path} ({exc}): start them with `amity dev up` "
                          "or pass --bootstrap") from None
    if name not in regions:
        fail(f"region {name!r} is not in {path}; it has {', '.join(sorted(regions)) or 'none'}")
    where = Region(name=name, **regions[name])
    return where, where.redis


def _state(url: str, namespace: str) -> VersionState:
    try:
        return VersionState(redis.Redis.from_url(url), StateSettings(namespace=namespace))
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"version state at {mask_url_password(url)}, namespace {namespace!r}: {exc}") from None


def _rule(topic: str, rules: Path | None, policy: str, field: str | None, priority: str | None,
          fallback: str | None) -> ConflictRule | None:
    try:
        if rules is not None:
            document = yaml.safe_load(rules.read_text()) or {}
            return RuleSet(rules=document.get("rules", [])).rule_for(topic)
        regions = [r.strip() for r in priority.split(",")] if priority else []
        return ConflictRule(topic=topic, policy=policy, field=field, regions=regions, fallback=fallback)
    except (OSError, yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise ConfigError(f"conflict rule for {topic!r} is invalid: {exc}") from None


def _describe(record: Resolved) -> dict:
    ms, counter = unpack(record.version.hlc)
    return {
        "value": None if record.value is None else _text(record.value),
        "origin": record.version.origin,
        "hlc": f"{ms}.{counter}",
        "vector": dict(record.version.vector),
        "deleted": record.version.deleted,
        "partition": record.partition,
        "offset": record.offset,
    }


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")
