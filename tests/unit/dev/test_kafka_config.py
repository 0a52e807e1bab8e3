"""The local broker's config and storage-format command."""

from pathlib import Path

from amity.dev import kafka
from amity.dev.layout import region_ports


def test_cluster_ids_are_passed_as_one_argument_even_when_they_start_with_a_dash(monkeypatch) -> None:
    monkeypatch.setattr(kafka, "new_cluster_id", lambda: "-Ab3dEfGhIjKlMnOpQrStUv")
    argv = kafka.format_argv(Path("/jars"), Path("/cfg/server.properties"))
    assert "--cluster-id=-Ab3dEfGhIjKlMnOpQrStUv" in argv
    assert "-t" not in argv


def test_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {kafka.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
               for i in ids)


def test_server_properties_listen_on_the_region_ports_only() -> None:
    ports = region_ports("eu", 29090)
    text = kafka.server_properties(ports, Path("/data"))
    assert "listeners=PLAINTEXT://127.0.0.1:29102,CONTROLLER://127.0.0.1:29103" in text
    assert "controller.quorum.voters=1@127.0.0.1:29103" in text
    assert "auto.create.topics.enable=false" in text

