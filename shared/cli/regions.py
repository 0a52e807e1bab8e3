"""`amity region`: register, list, show and remove regions on the coordinator."""

from typing import Annotated, Any

import typer

from amity.cli.api import DEFAULT_URL, JsonOut, Url, connect
from amity.cli.output import console, emit_json, table, user_errors

app = typer.Typer(help="Regions: a Kafka cluster plus the Redis holding its version state.", no_args_is_help=True)


@app.command()
def add(name: str,
        bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers, host:port[,host:port].")],
        redis: Annotated[str, typer.Option(help="Redis URL for the region's version state.")] =
        "redis://127.0.0.1:6379/0",
        security_protocol: Annotated[str, typer.Option(help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")] =
        "PLAINTEXT",
        sasl_mechanism: Annotated[str | None, typer.Option(help="PLAIN, SCRAM-SHA-256/512 or OAUTHBEARER.")] = None,
        sasl_username: Annotated[str | None, typer.Option()] = None,
        sasl_password: Annotated[str | None, typer.Option(envvar="AMITY_SASL_PASSWORD", show_envvar=True,
                                                          help="Better set through the environment.")] = None,
        ssl_ca_location: Annotated[str | None, typer.Option(help="CA file for TLS.")] = None,
        check: Annotated[bool, typer.Option(help="Check that Kafka and Redis answer before saving.")] = True,
        url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Register a region; by default the coordinator checks that its Kafka and Redis answer."""
    security = {"security_protocol": security_protocol, "sasl_mechanism": sasl_mechanism,
                "sasl_username": sasl_username, "sasl_password": sasl_password, "ssl_ca_location": ssl_ca_location}
    body = {"name": name, "bootstrap": bootstrap, "redis": redis,
            "security": {k: v for k, v in security.items() if v is not None}}
    with user_errors(), connect(url) as api:
        region = api.post("/v1/regions", body, check=check)
    if json_out:
        emit_json(region)
        return
    console.print(f"region [bold]{name}[/] registered ({_status(region)})")


@app.command(name="list")
def list_(url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """Every region with its last health check."""
    with user_errors(), connect(url) as api:
        regions = api.get("/v1/regions")
    if json_out:
        emit_json(regions)
        return
    table("Regions", ["name", "kafka bootstrap", "redis", "security", "health"],
          [(r["name"], r["bootstrap"], r["redis"], r["security"]["security_protocol"], _status(r)) for r in regions])


@app.command()
def show(name: str, url: Url = DEFAULT_URL, json_out: JsonOut = False) -> None:
    """One region, with what its last health check found."""
    with user_errors(), connect(url) as api:
        region = api.get(f"/v1/regions/{name}")
    if json_out:
        emit_json(region)
        return
    health = region["health"]
    rows = [("kafka bootstrap", region["bootstrap"]), ("redis", region["redis"]),
            ("security", region["security"]["security_protocol"]),
            ("sasl", _sasl(region["security"])), ("health", _status(region)),
            ("kafka check", _dependency(health.get("kafka"))), ("redis check", _dependency(health.get("redis"))),
            ("checked at", health.get("checked_at") or "-")]
    table(f"Region {name}", ["", ""], rows)


@app.command()
def rm(name: str, force: Annotated[bool, typer.Option(help="Also remove the links that use it.")] = False,
       url: Url = DEFAULT_URL) -> None:
    """Remove a region; refused while links use it, unless --force."""
    with user_errors(), connect(url) as api:
        result = api.delete(f"/v1/regions/{name}", force=force)
    removed = result["links_deleted"]
    console.print(f"region [bold]{name}[/] removed" + (f", with links {', '.join(removed)}" if removed else ""))


def _status(region: dict[str, Any]) -> str:
    return region["health"]["status"]


def _sasl(security: dict[str, Any]) -> str:
    if not security.get("sasl_mechanism"):
        return "-"
    password = "password set" if security.get("sasl_password_set") else "no password"
    return f"{security['sasl_mechanism']} as {security.get('sasl_username') or '?'} ({password})"


def _dependency(status: dict[str, Any] | None) -> str:
    if status is None:
        return "not checked"
    return f"ok ({status['latency_ms']} ms)" if status["ok"] else f"FAILED: {status['error']}"
