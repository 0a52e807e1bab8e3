"""Which engine runs the version state: the amitystate module where the Redis has it loaded, else the Lua scripts.

Each test starts its own redis-servers (one with the module, one without), on free loopback ports; that the two
engines decide alike is test_state_module.py's.
"""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import redis

from amity.dev.native import compiler, ensure_module
from amity.dev.settings import DevSettings
from amity.state import MODULE_VERSION, Claim, Engine, StateError, StateLost, StateSettings, VersionState, module_version
from tests.bench.scratch_redis import scratch_redis
from tests.support.mirror import free_port

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C compiler to build the amitystate module")
RANK = b"\x00" * 8 + b"us".ljust(8, b"\x00") + b"\x00"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, redis.Redis]]:
    """A Redis with the module loaded and one without."""
    module = ensure_module(DevSettings().module_path)
    with ExitStack() as stack:
        ports = {"module": free_port(), "plain": free_port()}
        stack.enter_context(scratch_redis(ports["module"], module))
        stack.enter_context(scratch_redis(ports["plain"]))
        yield {name: redis.Redis(port=port) for name, port in ports.items()}


def apply_one(state: VersionState) -> str:
    state.open()
    return state.apply([Claim(state.state_key("t", b"k"), RANK, 1, (("us", 1),), 0, 0)]).codes


def test_the_module_reports_its_version(servers) -> None:
    assert module_version(servers["module"]) == MODULE_VERSION
    assert module_version(servers["plain"]) is None


@pytest.mark.parametrize(("server", "engine", "runs"), [
    ("module", Engine.AUTO, Engine.MODULE),
    ("plain", Engine.AUTO, Engine.LUA),
    ("module", Engine.LUA, Engine.LUA),
    ("module", Engine.MODULE, Engine.MODULE),
])
def test_each_setting_runs_the_engine_it_names(servers, server, engine, runs) -> None:
    servers[server].flushall()
    state = VersionState(servers[server], StateSettings(engine=engine))
    assert state.engine is None  # decided at the first call, not when built
    assert apply_one(state) == "A"
    assert state.engine is runs


def test_engine_module_refuses_a_redis_without_the_module(servers) -> None:
    servers["plain"].flushall()
    state = VersionState(servers["plain"], StateSettings(engine=Engine.MODULE))
    with pytest.raises(StateError, match="--loadmodule"):
        apply_one(state)


def test_a_redis_replaced_by_one_without_the_module_runs_the_scripts_and_reports_the_state_lost() -> None:
    port = free_port()
    with scratch_redis(port, ensure_module(DevSettings().module_path)):
        state = VersionState(redis.Redis(port=port))
        assert apply_one(state) == "A"
        assert state.engine is Engine.MODULE
    with scratch_redis(port):
        with pytest.raises(StateLost):
            state.apply([Claim(state.state_key("t", b"k"), RANK, 1, (("us", 1),), 0, 0)])
        assert state.engine is Engine.LUA


def test_the_local_regions_load_the_module(clients) -> None:
    assert all(module_version(client) == MODULE_VERSION for client in clients.values())
