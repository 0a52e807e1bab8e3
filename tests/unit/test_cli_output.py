"""The CLI's one-line errors and tables: user text shown as typed, refusals and odd replies without tracebacks."""

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import typer
from rich.console import Console

from amity.cli import output
from amity.cli.api import ApiError, CoordinatorClient
from amity.cli.failover import _regions_file
from amity.cli.output import table, user_errors
from amity.coordinator.settings import CoordinatorSettings
from amity.errors import ConfigError


def test_a_table_shows_topic_patterns_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    table("Rules", ["topic"], [("orders-[a-z]+",), ("logs[/_-]x",)])
    shown = capsys.readouterr().out
    assert "orders-[a-z]+" in shown and "logs[/_-]x" in shown


LONG_NOTE = "3 rounds: 91,566-115,274/s; startup 2.9 s; idle 2.1 s after the last record; Redis 0.0 CPU s / M"
WIDE = ["scenario", "tool", "records/s", "MB/s", "p50 ms", "p99 ms", "max ms", "CPU s / M records", "notes"]
WIDE_ROW = ("lww-from-timestamp", "Amity / none", "1,234,567", "18.4", "47.4", "600.3", "1018.0", "13.2", LONG_NOTE)


def test_a_table_printed_to_a_file_or_pipe_keeps_every_cell_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=pipe, width=80, force_terminal=False))
    table("Bench", WIDE, [WIDE_ROW])
    shown = pipe.getvalue()
    assert "lww-from-timestamp" in shown and "1,234,567" in shown and LONG_NOTE in shown and "…" not in shown
    assert max(map(len, shown.splitlines())) > 80 == output.console.width


def test_a_table_printed_to_a_terminal_is_fitted_to_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, width=80, force_terminal=True, color_system=None))
    table("Bench", WIDE, [WIDE_ROW])
    assert max(map(len, screen.getvalue().splitlines())) == 80


def test_a_refused_setting_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as left, user_errors():
        CoordinatorSettings(port=70000)
    assert left.value.exit_code == 1
    said = capsys.readouterr().err
    assert "error: port: Input should be less than or equal to 65535" in said and "Traceback" not in said


@pytest.mark.parametrize(("spec", "reason"), [
    ({"bootstrap": "k:9092", "redis": "redis://:s3cret@h:6379/0?bogus=1"}, "redis URL is not one a Redis client can use"),
    ({"bootstrap": "k:9092", "sasl_pasword": "s3cret"}, "sasl_pasword: Extra inputs are not permitted"),
])
def test_a_regions_file_a_region_refuses_is_named_without_its_secrets(tmp_path, spec: dict, reason: str) -> None:
    path = tmp_path / "regions.json"
    path.write_text(json.dumps({"us": spec}))
    with pytest.raises(ConfigError) as refused:
        _regions_file(path)
    assert reason in str(refused.value) and "s3cret" not in str(refused.value)


class _NotACoordinator(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>some other service</html>" if self.path.startswith("/v1/regions") else b'["not", "a", "map"]'
        self.send_response(200 if self.path.startswith("/v1/regions") else 500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotACoordinator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_replies_that_are_not_the_coordinators_are_api_errors(other_service: str) -> None:
    with CoordinatorClient(other_service, None) as client:
        with pytest.raises(ApiError, match="not JSON: is it an Amity coordinator"):
            client.get("/v1/regions")
        with pytest.raises(ApiError, match=r"HTTP 500"):
            client.get("/v1/links")
