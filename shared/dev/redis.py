"""One Redis server per region, holding that region's version state."""

import shutil
from pathlib import Path

from amity.dev.layout import RegionPorts
from amity.errors import DevEnvironmentError


def redis_server() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        raise DevEnvironmentError("redis-server is not installed: run `make deps` or apt-get install redis-server")
    return path


def write_config(region_dir: Path, ports: RegionPorts, module: Path | None = None) -> Path:
    """A throwaway, loopback-only Redis: no persistence, its own data dir; with `module`, the amitystate module
    loaded (amity.dev.native).

    The process title carries the config path, so the pid check can tell
    this server from any other redis-server on the machine.
    """
    data = region_dir / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    config = region_dir / "redis.conf"
    config.write_text("\n".join([
        f"port {ports.redis}",
        "bind 127.0.0.1",
        f"dir {data}",
        'save ""',
        "appendonly no",
        "daemonize no",
        'logfile ""',
        'proc-title-template "{title} {listen-addr} {config-file}"',
        *([f"loadmodule {module}"] if module is not None else []),
        "",
    ]))
    return config


def server_argv(config: Path) -> list[str]:
    return [redis_server(), str(config)]
