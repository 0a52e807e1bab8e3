"""`amity rules`: conflict rules per topic or topic pattern, with their history."""

from typing import Annotated, Any

import typer
from rich.markup import escape

from amity.cli.api import DEFAULT_URL, JsonOut, Url, connect
from amity.cli.output import console, emit_json, table, user_errors

app = typer.Typer(help="Conflict rules: which policy resolves concurrent writes to which topics.",
                  no_args_is_help=True)

Topic = Annotated[str, typer.Argument(help="Exact topic name, or a regex matched against whole names.")]


@app.command(name="set")
def set_(topic: Topic,
         policy: Annotated[str, typer.Option(help="lww, timestamp, region-priority, vector or none.")] = "lww",
         field: Annotated[str | None, typer.Option(help="timestamp: timestamp, header:NAME or json:PATH.")] = None,
         regions: Annotated[str | None, typer.Option(help="region-priority: comma-separated, highest first.")] = None,
         fallback: Annotated[str | None, typer.Option(help="vector: lww or region-priority.")] = None,
         max_skew_ms: Annotated[int | None, typer.Option(help="Refuse timestamps this far ahead.")] = None,
         first_hop: Annotated[str | None, typer.Option(
             help="lww, timestamp: stamp plain clients' records from the region's state (default) or from their "
                  "timestamp alone (cheaper, weaker).")] = None,
         url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Set the rule for TOPIC; running mirrors apply it at their next heartbeat."""
    rule = {"topic": topic, "policy": policy, "field": field, "fallback": fallback, "max_skew_ms": max_skew_ms,
            "first_hop": first_hop,
            "regions": [r.strip() for r in regions.split(",") if r.strip()] if regions else None}
    with user_errors(), connect(url) as api:
        change = api.put("/v1/rules", {k: v for k, v in rule.items() if v is not None})
    if json_out:
        emit_json(change)
        return
    console.print(f"rule for [bold]{escape(topic)}[/] set: {escape(_describe(change['after']))} (rules version {change['version']})")


@app.command()
def get(topic: Annotated[str | None, typer.Argument(help="Show the rule that applies to this topic.")] = None,
        url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Every rule in matching order, or the rule that applies to TOPIC."""
    with user_errors(), connect(url) as api:
        result = api.get("/v1/rules/match", topic=topic) if topic else api.get("/v1/rules")
    if json_out:
        emit_json(result)
    elif topic:
        rule = result["rule"]
        console.print(escape(f"{topic}: " + (f"{_describe(rule)} (rule {rule['topic']!r})" if rule else
                                             "no rule applies; records are applied as they arrive")))
    else:
        table(f"Conflict rules (version {result['version']})", ["topic", "policy", "settings"],
              [(r["topic"], r["policy"], _settings(r)) for r in result["rules"]])


@app.command()
def rm(topic: Topic, url: Url = DEFAULT_URL) -> None:
    """Remove the rule whose topic is exactly TOPIC."""
    with user_errors(), connect(url) as api:
        change = api.delete("/v1/rules", topic=topic)
    console.print(f"rule for [bold]{escape(topic)}[/] removed (rules version {change['version']})")


@app.command()
def history(topic: Annotated[str | None, typer.Argument(help="Only changes of this rule.")] = None,
            limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
            url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Who changed which rule when, newest first."""
    with user_errors(), connect(url) as api:
        changes = api.get("/v1/rules/history", topic=topic, limit=limit)["changes"]
    if json_out:
        emit_json(changes)
        return
    table("Rule changes", ["version", "at", "by", "action", "topic", "before", "after"],
          [(c["version"], c["at"], c["actor"], c["action"], c["topic"], _describe(c["before"]), _describe(c["after"]))
           for c in changes])


def _describe(rule: dict[str, Any] | None) -> str:
    if rule is None:
        return "-"
    settings = _settings(rule)
    return f"{rule['policy']} ({settings})" if settings else rule["policy"]


def _settings(rule: dict[str, Any]) -> str:
    parts = []
    if rule.get("field"):
        parts.append(f"field {rule['field']}")
    if rule.get("regions"):
        parts.append("regions " + " > ".join(rule["regions"]))
    if rule.get("fallback"):
        parts.append(f"fallback {rule['fallback']}")
    if rule.get("first_hop") == "timestamp":
        parts.append("first hop from the record timestamp")
    return ", ".join(parts)
