"""Container health for both roles of the Amity image.

A mirror worker (AMITY_MIRROR_STATS_FILE set) is healthy while its main loop keeps rewriting the stats
file: a loop stuck for longer than AMITY_HEALTHCHECK_MAX_AGE_S (default 30 s) is not. Otherwise this is a
coordinator, healthy while /healthz answers 200. Exits 0 when healthy, 1 with one line saying why not.
The image's HEALTHCHECK runs it, and so do the Helm chart's probes for workers.
"""

import os
import sys
import time
import urllib.error
import urllib.request


def worker_healthy(stats_file: str, max_age_s: float) -> str | None:
    try:
        age = time.time() - os.stat(stats_file).st_mtime
    except FileNotFoundError:
        return f"{stats_file} has not been written yet: the worker has not completed a loop"
    if age > max_age_s:
        return f"{stats_file} is {age:.0f}s old (limit {max_age_s:.0f}s): the worker's loop is stuck"
    return None


def coordinator_healthy(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} does not answer: {exc}"


def main() -> int:
    stats_file = os.environ.get("AMITY_MIRROR_STATS_FILE")
    if stats_file:
        problem = worker_healthy(stats_file, float(os.environ.get("AMITY_HEALTHCHECK_MAX_AGE_S", "30")))
    else:
        port = os.environ.get("AMITY_PORT", "8080")
        problem = coordinator_healthy(os.environ.get("AMITY_HEALTHCHECK_URL", f"http://127.0.0.1:{port}/healthz"))
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
