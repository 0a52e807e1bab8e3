#!/usr/bin/env python3
"""Register regions and links from a JSON file with a coordinator, idempotently.

Docker Compose's `setup` service and the Helm chart's registration Job run this, so a deployment
declares its regions instead of someone typing `amity region add` once per region. Regions the
coordinator does not know are registered; known ones whose settings differ are updated; a mesh,
if given, is created (links already there with the same settings are kept).

    amity-apply-topology FILE      (AMITY_URL, AMITY_API_TOKEN as for the CLI)

FILE: {"regions": [amity.regions.Region, ...], "mesh": {"regions": [...], "include": [...], ...}}
Region entries may name `sasl_password_env`: the environment variable holding that region's SASL
password, so that the file itself carries no secret.
"""

import json
import os
import sys
import time
from pathlib import Path

from amity.cli.api import DEFAULT_URL, ApiError, CoordinatorClient
from amity.regions import mask_url_password
from amity.regions import Region

WAIT_S = 120.0


def regions_from(entries: list[dict]) -> list[Region]:
    regions = []
    for entry in entries:
        entry = dict(entry)
        password_env = entry.pop("sasl_password_env", None)
        if password_env:
            if password_env not in os.environ:
                raise SystemExit(f"region {entry.get('name')!r}: environment variable {password_env} is not set")
            entry.setdefault("security", {})["sasl_password"] = os.environ[password_env]
        regions.append(Region.model_validate(entry))
    return regions


def wait_until_up(api: CoordinatorClient) -> None:
    """The coordinator may still be starting (a Job runs beside the Deployment)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            api.get("/readyz")
            return
        except ApiError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"the coordinator did not become ready within {WAIT_S:.0f}s: {exc}") from None
            time.sleep(2)


def apply(api: CoordinatorClient, regions: list[Region], mesh: dict | None) -> list[str]:
    """What was done, one line each."""
    done = []
    known = {region["name"]: region for region in api.get("/v1/regions")}
    for region in regions:
        body = region.model_dump(mode="json", exclude_none=True)
        body["security"] = {**region.security.model_dump(mode="json", exclude_none=True),
                            **({"sasl_password": region.security.sasl_password.get_secret_value()}
                               if region.security.sasl_password else {})}
        current = known.get(region.name)
        if current is None:
            api.post("/v1/regions", body)
            done.append(f"registered region {region.name}")
        elif _differs(current, body):
            api.call("PATCH", f"/v1/regions/{region.name}", {k: body[k] for k in ("bootstrap", "redis", "security")})
            done.append(f"updated region {region.name}")
        else:
            done.append(f"region {region.name} unchanged")
    if mesh:
        links = api.post("/v1/links/mesh", mesh)["links"]
        done.append("mesh: " + ", ".join(sorted(link["id"] for link in links)))
    return done


def _differs(current: dict, wanted: dict) -> bool:
    """Compares what the coordinator shows (passwords masked) with what the file asks for. A password can
    only be seen to be missing, not changed: rotate one with PATCH /v1/regions/{name} (docs/deploy.md)."""
    shown = current.get("security", {})
    plain = {k: v for k, v in wanted["security"].items() if k != "sasl_password"}
    return (current["bootstrap"] != wanted["bootstrap"] or current["redis"] != mask_url_password(wanted["redis"])
            or any(shown.get(k) != v for k, v in plain.items())
            or ("sasl_password" in wanted["security"] and not shown.get("sasl_password_set")))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(sys.argv[1]).read_text())
    regions = regions_from(spec.get("regions", []))
    with CoordinatorClient(os.environ.get("AMITY_URL", DEFAULT_URL), os.environ.get("AMITY_API_TOKEN")) as api:
        wait_until_up(api)
        try:
            for line in apply(api, regions, spec.get("mesh")):
                print(line)
        except ApiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
