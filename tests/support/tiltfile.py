"""Load a Tiltfile in the Starlark interpreter Tilt uses (go.starlark.net, through starlark-go) and run its
local resources the way `tilt ci` does, for machines where the tilt binary cannot be had.

The Tilt builtins are stand-ins that take exactly the parameters Tilt's own take, so a misspelt
argument fails here as it would in Tilt. `ci()` runs every auto-init resource once its
resource_deps are ready: a `cmd` must exit 0; a `serve_cmd` keeps running and is ready when its
readiness probe passes (at once without one). Like Tilt, commands run through `sh -c`, in the
resource's dir resolved against the Tiltfile's folder; `exec` keeps each serve process's pid, which
is what `stop()` signals.
"""

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import starlark_go

TRIGGER_MODE_AUTO, TRIGGER_MODE_MANUAL = 1, 2


@dataclass
class Resource:
    name: str
    cmd: str | None
    serve_cmd: str | None
    dir: Path
    serve_dir: Path
    env: dict[str, str]
    serve_env: dict[str, str]
    deps: list[Path]
    resource_deps: list[str]
    auto_init: bool
    trigger_mode: int
    readiness_probe: dict[str, Any] | None
    links: list[dict[str, str]]
    labels: list[str]
    ignore: list[str] = field(default_factory=list)


class TiltfileError(AssertionError):
    """A resource failed the way `tilt ci` would fail on it."""


class Tiltfile:
    def __init__(self, path: Path, env: dict[str, str], logs: Path) -> None:
        self.path = path.resolve()
        self.folder = self.path.parent
        self.env = {**os.environ, **env}
        self.logs = logs
        self.resources: dict[str, Resource] = {}
        self.serving: dict[str, subprocess.Popen] = {}

    def load(self) -> dict[str, Resource]:
        interpreter = starlark_go.Starlark()
        interpreter.set(local=self._local, local_resource=self._local_resource, probe=_probe,
                        http_get_action=_http_get_action, exec_action=_exec_action, link=_link,
                        TRIGGER_MODE_AUTO=TRIGGER_MODE_AUTO, TRIGGER_MODE_MANUAL=TRIGGER_MODE_MANUAL)
        interpreter.exec(self.path.read_text(), filename=str(self.path))
        return self.resources

    def ci(self, timeout_s: float) -> list[str]:
        """Bring up every auto-init resource in dependency order; the names in the order they became ready."""
        deadline = time.monotonic() + timeout_s
        ready: list[str] = []
        waiting = [r for r in self.resources.values() if r.auto_init]
        while waiting:
            startable = [r for r in waiting if set(r.resource_deps) <= set(ready)]
            if not startable:
                raise TiltfileError(f"resources wait on deps nothing provides: {[r.name for r in waiting]}")
            for resource in startable:
                self._bring_up(resource, deadline)
                ready.append(resource.name)
                waiting.remove(resource)
        return ready

    def stop(self) -> None:
        """SIGTERM each serve process by pid, newest first; SIGKILL what is still there after 20 s."""
        for name, process in reversed(list(self.serving.items())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            del self.serving[name]

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _bring_up(self, resource: Resource, deadline: float) -> None:
        if resource.cmd:
            with open(self.logs / f"{resource.name}.log", "ab") as out:
                done = subprocess.run(["sh", "-c", resource.cmd], cwd=resource.dir, env={**self.env, **resource.env},
                                      stdout=out, stderr=subprocess.STDOUT, timeout=max(deadline - time.monotonic(), 1))
            if done.returncode != 0:
                raise TiltfileError(f"{resource.name}: `{resource.cmd}` exited {done.returncode}:\n"
                                    f"{self.log(resource.name)}")
        if resource.serve_cmd:
            with open(self.logs / f"{resource.name}.log", "ab") as out:
                self.serving[resource.name] = subprocess.Popen(
                    ["sh", "-c", f"exec {resource.serve_cmd}"], cwd=resource.serve_dir,
                    env={**self.env, **resource.serve_env}, stdout=out, stderr=subprocess.STDOUT)
            self._await_ready(resource, deadline)

    def _await_ready(self, resource: Resource, deadline: float) -> None:
        probe = resource.readiness_probe
        if probe is None:
            return
        period = probe["period_secs"]
        time.sleep(probe["initial_delay_secs"])
        while not self._probe_passes(probe):
            if self.serving[resource.name].poll() is not None:
                raise TiltfileError(f"{resource.name} exited before it was ready:\n{self.log(resource.name)}")
            if time.monotonic() > deadline:
                raise TiltfileError(f"{resource.name} was not ready in time:\n{self.log(resource.name)}")
            time.sleep(period)

    def _probe_passes(self, probe: dict[str, Any]) -> bool:
        if probe["http_get"]:
            action = probe["http_get"]
            url = f"{action['scheme']}://{action['host']}:{action['port']}{action['path']}"
            try:
                return 200 <= httpx.get(url, timeout=probe["timeout_secs"]).status_code < 400
            except httpx.HTTPError:
                return False
        if probe["exec"]:
            done = subprocess.run(probe["exec"]["command"], cwd=self.folder, env=self.env, capture_output=True,
                                  timeout=probe["timeout_secs"])
            return done.returncode == 0
        raise TiltfileError(f"unsupported probe {probe}")

    # Tilt's builtins, with Tilt's parameter names and defaults.

    def _local(self, command: str, quiet: bool = False, command_bat: str = "", echo_off: bool = False,
               env: dict[str, str] | None = None, dir: str = "", stdin: str | None = None) -> str:
        done = subprocess.run(["sh", "-c", command], cwd=self._path(dir) if dir else self.folder,
                              env={**self.env, **(env or {})}, input=stdin, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise TiltfileError(f"local({command!r}) exited {done.returncode}: {done.stderr}")
        return done.stdout

    def _local_resource(self, name: str, cmd: str | None = None, deps: list[str] | str | None = None,
                        trigger_mode: int = TRIGGER_MODE_AUTO, resource_deps: list[str] | None = None,
                        ignore: list[str] | str | None = None, auto_init: bool = True, serve_cmd: str | None = None,
                        cmd_bat: str | None = None, serve_cmd_bat: str | None = None, allow_parallel: bool = False,
                        links: list[Any] | None = None, tags: list[str] | None = None,
                        env: dict[str, str] | None = None, serve_env: dict[str, str] | None = None,
                        readiness_probe: dict[str, Any] | None = None, dir: str = "", serve_dir: str = "",
                        labels: list[str] | None = None) -> None:
        if name in self.resources:
            raise TiltfileError(f"local resource {name} is defined twice")
        if not cmd and not serve_cmd:
            raise TiltfileError(f"local_resource {name} must have a cmd and/or a serve_cmd")
        self.resources[name] = Resource(
            name=name, cmd=cmd, serve_cmd=serve_cmd, dir=self._path(dir), serve_dir=self._path(serve_dir),
            env=env or {}, serve_env=serve_env or {}, deps=[self._path(d) for d in _listed(deps)],
            resource_deps=list(resource_deps or []), auto_init=auto_init, trigger_mode=trigger_mode,
            readiness_probe=readiness_probe, links=[_link(x) if isinstance(x, str) else x for x in links or []],
            labels=list(labels or []), ignore=_listed(ignore))

    def _path(self, relative: str) -> Path:
        return (self.folder / relative).resolve() if relative else self.folder


def _listed(value: list[str] | str | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _probe(initial_delay_secs: int = 0, timeout_secs: int = 1, period_secs: int = 10, success_threshold: int = 1,
           failure_threshold: int = 3, exec: dict | None = None, http_get: dict | None = None,
           tcp_socket: dict | None = None) -> dict[str, Any]:
    return {"initial_delay_secs": initial_delay_secs, "timeout_secs": timeout_secs, "period_secs": period_secs,
            "success_threshold": success_threshold, "failure_threshold": failure_threshold, "exec": exec,
            "http_get": http_get, "tcp_socket": tcp_socket}


def _http_get_action(port: int, host: str = "localhost", scheme: str = "http", path: str = "") -> dict[str, Any]:
    return {"port": port, "host": host, "scheme": scheme, "path": path}


def _exec_action(command: list[str]) -> dict[str, Any]:
    return {"command": list(command)}


def _link(url: str, name: str = "") -> dict[str, str]:
    return {"url": url, "name": name}
