"""`amity link`, `amity mesh` and `amity topology`: replication links between regions."""

from typing import Annotated, Any

import typer
from rich.markup import escape

from amity.cli.api import DEFAULT_URL, JsonOut, Url, connect
from amity.cli.output import console, emit_json, table, user_errors

app = typer.Typer(help="Links: which topics flow from one region to another.", no_args_is_help=True)

Include = Annotated[list[str] | None, typer.Option("--include", help="Regex of topics to replicate (repeatable).")]
Exclude = Annotated[list[str] | None, typer.Option("--exclude", help="Regex of topics to skip (repeatable).")]
NamingOpt = Annotated[str | None, typer.Option("--naming", help="identity (same name) or prefix (source.topic).")]
DeliveryOpt = Annotated[str | None, typer.Option("--delivery", help="at-least-once or exactly-once.")]


@app.command()
def add(source: str, destination: str,
        link_id: Annotated[str | None, typer.Option("--id", help="Defaults to SOURCE-to-DESTINATION.")] = None,
        include: Include = None, exclude: Exclude = None, naming: NamingOpt = None, delivery: DeliveryOpt = None,
        paused: Annotated[bool, typer.Option(help="Create it paused.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what it would replicate.")] = False,
        url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Create a link; refused when another link from SOURCE to DESTINATION may write the same topics."""
    body = {"id": link_id, "source": source, "destination": destination, "paused": paused,
            **_options(include, exclude, naming, delivery)}
    body = {k: v for k, v in body.items() if v is not None}
    with user_errors(), connect(url) as api:
        result = api.post("/v1/links/dry-run" if dry_run else "/v1/links", body)
    if json_out:
        emit_json(result)
    elif dry_run:
        _print_plan(f"{source} -> {destination}", result)
    else:
        console.print(f"link [bold]{result['id']}[/] created")


@app.command(name="list")
def list_(url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    with user_errors(), connect(url) as api:
        links = api.get("/v1/links")
    if json_out:
        emit_json(links)
        return
    table("Links", ["id", "source", "destination", "include", "exclude", "naming", "delivery", "paused"],
          [_row(link) for link in links])


@app.command()
def show(link_id: str, url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    with user_errors(), connect(url) as api:
        link = api.get(f"/v1/links/{link_id}")
    if json_out:
        emit_json(link)
        return
    table(f"Link {link_id}", ["", ""], [
        ("from", link["source"]), ("to", link["destination"]), ("include", ", ".join(link["include"])),
        ("exclude", ", ".join(link["exclude"])), ("naming", link["naming"]), ("delivery", link["delivery"]),
        ("paused", "yes" if link["paused"] else "no"), ("changed", f"{link['updated_at']} by {link['updated_by']}")])


@app.command()
def pause(link_id: str, url: Url = DEFAULT_URL) -> None:
    """Stop replicating; workers stop the link at their next heartbeat."""
    with user_errors(), connect(url) as api:
        api.post(f"/v1/links/{link_id}/pause")
    console.print(f"link [bold]{link_id}[/] paused")


@app.command()
def resume(link_id: str, url: Url = DEFAULT_URL) -> None:
    with user_errors(), connect(url) as api:
        api.post(f"/v1/links/{link_id}/resume")
    console.print(f"link [bold]{link_id}[/] resumed")


@app.command()
def rm(link_id: str, url: Url = DEFAULT_URL) -> None:
    with user_errors(), connect(url) as api:
        api.delete(f"/v1/links/{link_id}")
    console.print(f"link [bold]{link_id}[/] removed")


@app.command(name="dry-run")
def dry_run(link_id: str, url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Which existing topics of the source the link replicates, and under which names."""
    with user_errors(), connect(url) as api:
        plan = api.get(f"/v1/links/{link_id}/dry-run")
    if json_out:
        emit_json(plan)
        return
    _print_plan(link_id, plan)


@app.command()
def hub(hub_region: Annotated[str, typer.Argument(metavar="HUB")],
        spokes: Annotated[list[str], typer.Argument(metavar="SPOKE...")],
        direction: Annotated[str, typer.Option(help="both, to-hub or from-hub.")] = "both",
        include: Include = None, exclude: Exclude = None, naming: NamingOpt = None, delivery: DeliveryOpt = None,
        url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Hub and spokes: links between HUB and each SPOKE, none between spokes."""
    body = {"hub": hub_region, "spokes": spokes, "direction": direction,
            **_options(include, exclude, naming, delivery)}
    _create_many("/v1/links/hub-and-spoke", body, url, json_out)


@app.command(name="active-passive")
def active_passive(active: str, passive: str, include: Include = None, exclude: Exclude = None,
                   naming: NamingOpt = None, delivery: DeliveryOpt = None,
                   url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """One link from ACTIVE to its standby PASSIVE (prefix naming unless --naming)."""
    body = {"active": active, "passive": passive, **_options(include, exclude, naming, delivery)}
    _create_many("/v1/links/active-passive", body, url, json_out)


def mesh(regions: Annotated[list[str], typer.Argument(metavar="REGION...", help="Two or more regions.")],
         include: Include = None, exclude: Exclude = None, naming: NamingOpt = None, delivery: DeliveryOpt = None,
         url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Active-active: links both ways between every two REGIONs (existing identical links are kept)."""
    _create_many("/v1/links/mesh", {"regions": regions, **_options(include, exclude, naming, delivery)}, url, json_out)


def topology(url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Regions, links and their state, and which regions cannot reach which."""
    with user_errors(), connect(url) as api:
        view = api.get("/v1/topology")
    if json_out:
        emit_json(view)
        return
    table(f"Regions (assignment generation {view['generation']})", ["region", "status"],
          [(r["name"], r["status"]) for r in view["regions"]])
    table("Links", ["link", "route", "state", "worker", "records/s", "lag"],
          [(e["id"], f"{e['source']} -> {e['destination']}", e["state"], e["worker"] or "-",
            f"{e['records_per_s']:.1f}", e["lag_records"]) for e in view["links"]])
    for edge in view["links"]:
        if edge.get("problem"):
            console.print(f"[red]{edge['id']}: {escape(edge['problem'])}[/]")
    for pair in view["unreachable"]:
        console.print(f"[yellow]writes in {pair['source']} never reach {pair['destination']}[/]")


def _create_many(path: str, body: dict[str, Any], url: str, json_out: bool) -> None:
    with user_errors(), connect(url) as api:
        result = api.post(path, {k: v for k, v in body.items() if v is not None})
    if json_out:
        emit_json(result)
        return
    table("Links", ["id", "source", "destination", "include", "exclude", "naming", "delivery", "paused"],
          [_row(link) for link in result["links"]])


def _options(include: list[str] | None, exclude: list[str] | None, naming: str | None,
             delivery: str | None) -> dict[str, Any]:
    return {"include": include, "exclude": exclude, "naming": naming, "delivery": delivery}


def _row(link: dict[str, Any]) -> tuple:
    return (link["id"], link["source"], link["destination"], ", ".join(link["include"]),
            ", ".join(link["exclude"]), link["naming"], link["delivery"], "yes" if link["paused"] else "no")


def _print_plan(title: str, plan: dict[str, Any]) -> None:
    table(f"{title}: topics it would replicate", ["source topic", "destination topic"],
          [(m["source_topic"], m["destination_topic"]) for m in plan["topics"]])
    console.print(f"{len(plan['topics'])} replicated, {len(plan['skipped'])} skipped")
    if plan.get("problem"):
        console.print(f"[bold red]creating it would be refused:[/] {escape(plan['problem'])}")
