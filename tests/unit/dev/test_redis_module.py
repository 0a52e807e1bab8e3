"""Building the amitystate Redis module for the local regions, and loading it in their config."""

import os
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from amity.dev import native
from amity.dev import redis as redis_server
from amity.dev.layout import region_ports
from amity.errors import DevEnvironmentError

ROOT = Path(__file__).resolve().parents[3]
needs_compiler = pytest.mark.skipif(native.compiler() is None, reason="no C compiler")
SMALLEST_MODULE = "int RedisModule_OnLoad(void *ctx, void *argv, int argc) { (void)ctx; (void)argv; (void)argc; " \
                  "return 0; }\n"


def test_a_region_redis_loads_the_module_it_is_given(tmp_path) -> None:
    config = redis_server.write_config(tmp_path, region_ports("us", 29090), Path("/built/amity_state.so"))
    assert "loadmodule /built/amity_state.so" in config.read_text().splitlines()


def test_a_region_redis_without_a_module_loads_none(tmp_path) -> None:
    config = redis_server.write_config(tmp_path, region_ports("us", 29090))
    assert "loadmodule" not in config.read_text()


@needs_compiler
def test_the_module_is_built_once_and_again_when_its_source_changes(tmp_path, monkeypatch) -> None:
    source = tmp_path / "module.c"
    source.write_text(SMALLEST_MODULE)
    monkeypatch.setattr(native, "SOURCE", source)
    target = tmp_path / "out" / "module.so"
    assert native.ensure_module(target) == target
    built = target.stat().st_mtime_ns
    native.ensure_module(target)
    assert target.stat().st_mtime_ns == built
    os.utime(source, ns=(built + 10**9, built + 10**9))
    native.ensure_module(target)
    assert target.stat().st_mtime_ns > built


@needs_compiler
def test_a_source_that_does_not_compile_says_why(tmp_path, monkeypatch) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int RedisModule_OnLoad(void) { return undeclared_name; }\n")
    monkeypatch.setattr(native, "SOURCE", source)
    with pytest.raises(DevEnvironmentError, match="undeclared_name"):
        native.ensure_module(tmp_path / "module.so")
    assert not (tmp_path / "module.so").exists()


def test_without_a_c_compiler_no_module_is_built(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(native, "compiler", lambda: None)
    assert native.ensure_module(tmp_path / "module.so") is None
    assert not (tmp_path / "module.so").exists()


def test_the_module_source_ships_in_the_package() -> None:
    """`amity dev` builds from the installed package: the source must be package data of amity.native."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert native.SOURCE.is_file() and native.SOURCE.parent == ROOT / setuptools["package-dir"]["amity"] / "native"
    assert "amity.native" in setuptools["packages"]
    assert any(fnmatch(native.SOURCE.name, pattern) for pattern in setuptools["package-data"]["amity.native"])
