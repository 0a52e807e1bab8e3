"""The user's path: regions and a mesh through the CLI, workers assigned by the coordinator, stats back."""

import time
from collections import Counter
from pathlib import Path

from amity.headers import decode, find_provenance
from amity.regions import Region
from tests.e2e.conftest import TOKEN, Cli
from tests.support.cluster import frozen, region_pid
from tests.support.kafka import create_topic, produce, read_all
from tests.integration.coordinator.server import coordinator_process, free_port
from tests.support.mirror import CoordinatedWorker, wait_for


def counts(region: Region, topic: str) -> Counter:
    return Counter(m.value() for m in read_all(region.bootstrap, topic))


def link_totals(cli: Cli, link: str, topic: str) -> dict:
    view = cli.json("stats", "--link", link, "--topic", topic)
    return next((entry["total"] for entry in view["topics"] if entry["link"] == link), {})


def test_mesh_through_the_cli_replicates_and_survives_a_worker_death(regions, coordinator: Cli, topic,
                                                                     tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=2)
        coordinator("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis)
    coordinator("mesh", "us", "eu", "--include", topic)
    assert {link["id"] for link in coordinator.json("link", "list")} == {"us-to-eu", "eu-to-us"}

    first = CoordinatedWorker(tmp_path, coordinator.url, TOKEN).start()
    try:
        produce(us.bootstrap, topic, [(b"k", f"us-{n}".encode()) for n in range(300)])
        produce(eu.bootstrap, topic, [(b"k", f"eu-{n}".encode()) for n in range(300)])
        for region in (us, eu):
            wait_for(lambda region=region: sum(counts(region, topic).values()) == 600, timeout_s=60,
                     message=f"600 records in {region.name}")
        totals = wait_for(lambda: (t := link_totals(coordinator, "eu-to-us", topic)).get("replicated") == 300 and t,
                          message="coordinator stats for eu-to-us")
        assert totals["dropped"] == {"loop": 300}
        first.kill9()

        second = CoordinatedWorker(tmp_path, coordinator.url, TOKEN).start()
        try:
            produce(us.bootstrap, topic, [(b"k", f"us-late-{n}".encode()) for n in range(100)])
            wait_for(lambda: sum(counts(eu, topic).values()) >= 700, timeout_s=60, message="700 records in eu")
        finally:
            assert second.stop() == 0
    finally:
        if first.alive():
            first.stop()
    expected = {f"us-{n}" for n in range(300)} | {f"eu-{n}" for n in range(300)} | {f"us-late-{n}" for n in range(100)}
    for region in (us, eu):
        assert {v.decode() for v in counts(region, topic)} == expected, f"records lost in {region.name}"
    looped = [m for m in read_all(us.bootstrap, topic)
              if find_provenance(m.headers()) and decode(find_provenance(m.headers())).origin == "us"]
    assert looped == [], "records came back to their origin"
    workers = coordinator.json("coordinator", "workers")
    assert workers, "the coordinator lists its workers"


def stamped_count(region: Region, topic: str) -> tuple[int, int]:
    """(mirrored records without a hybrid timestamp, mirrored records with one) in `region`."""
    plain = stamped = 0
    for msg in read_all(region.bootstrap, topic):
        raw = find_provenance(msg.headers())
        if raw is not None:
            if decode(raw).hlc is None:
                plain += 1
            else:
                stamped += 1
    return plain, stamped


def test_a_rule_set_with_the_cli_is_applied_by_the_running_mirror(regions, coordinator: Cli, topic,
                                                                  tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=1)
        coordinator("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis)
    coordinator("mesh", "us", "eu", "--include", topic)
    worker = CoordinatedWorker(tmp_path, coordinator.url, TOKEN).start()
    try:
        produce(us.bootstrap, topic, [(f"k{n}".encode(), b"before") for n in range(50)])
        wait_for(lambda: stamped_count(eu, topic) == (50, 0), message="50 plain copies in eu")

        coordinator("rules", "set", topic, "--policy", "lww")
        assert coordinator.json("rules", "get", topic)["rule"]["policy"] == "lww"
        time.sleep(3)  # a few heartbeats: the worker picks the rule up without a restart
        produce(us.bootstrap, topic, [(f"k{n}".encode(), b"after") for n in range(50)])
        wait_for(lambda: stamped_count(eu, topic) == (50, 50), message="50 stamped copies in eu")
        history = coordinator.json("rules", "history")
        assert topic in str(history), "the rule change is in the history"
    finally:
        assert worker.stop() == 0


def test_a_failing_link_shows_its_problem_in_the_topology(regions, coordinator: Cli, topic, tmp_path: Path) -> None:
    """eu's Redis stops answering under a conflict rule: the worker's link fails and retries, and `amity topology`
    says which link and why, until it replicates again."""
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=1)
        coordinator("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis)
    coordinator("link", "add", "us", "eu", "--include", topic)
    coordinator("rules", "set", topic, "--policy", "lww")
    worker = CoordinatedWorker(tmp_path, coordinator.url, TOKEN)
    worker.env["AMITY_MIRROR_REDIS_TIMEOUT_S"] = "1"
    worker.start()
    keys = {f"k{n}".encode() for n in range(50)}
    try:
        produce(us.bootstrap, topic, [(key, b"before") for key in sorted(keys)])
        wait_for(lambda: stamped_count(eu, topic) == (0, 50), message="50 stamped copies in eu")
        with frozen(region_pid("eu", "redis")):
            produce(us.bootstrap, topic, [(key, b"during") for key in sorted(keys)])
            edge = wait_for(lambda: (e := _edge(coordinator, "us-to-eu"))["problem"] and e, timeout_s=30,
                            message="the link's problem in the topology")
            assert edge["problem"].startswith("Redis of eu: Timeout"), edge
            # degraded once the coordinator's own probe finds eu's Redis down too
            assert edge["state"] in ("retrying", "degraded"), edge
            # The CLI shows the problem the API reports, read again with it: a retry can change it between two reads.
            wait_for(lambda: _problem_shown(coordinator, "us-to-eu", "Redis of eu: Timeout"), timeout_s=30,
                     message="the link's problem in `amity topology`")
        # At least once: a batch whose landing the frozen Redis held back is read and written again.
        wait_for(lambda: {m.key() for m in read_all(eu.bootstrap, topic) if m.value() == b"during"} == keys,
                 timeout_s=60, message="every key's second write in eu")
        edge = wait_for(lambda: (e := _edge(coordinator, "us-to-eu"))["state"] == "running" and e, timeout_s=30,
                        message="the link running again")
        assert edge["problem"] is None
    finally:
        assert worker.stop() == 0


def _edge(cli: Cli, link: str) -> dict:
    return next(edge for edge in cli.json("topology")["links"] if edge["id"] == link)


def _problem_shown(cli: Cli, link: str, cause: str) -> bool:
    """Whether `amity topology` prints `link`'s problem exactly as the API reports it, and that problem is `cause`."""
    problem = _edge(cli, link)["problem"] or ""
    return problem.startswith(cause) and f"{link}: {problem}" in cli("topology").stdout.replace("\n", " ")


def test_workers_keep_their_assignment_while_the_coordinator_is_down(regions, tmp_path: Path, topic) -> None:
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=1)
    namespace = f"amity:e2e:{topic}:"
    env = {"AMITY_REDIS_URL": us.redis, "AMITY_NAMESPACE": namespace, "AMITY_API_TOKEN": TOKEN,
           "AMITY_HEARTBEAT_INTERVAL_S": "0.5", "AMITY_WORKER_TIMEOUT_S": "3"}
    port = free_port()
    with coordinator_process(env, tmp_path / "first.log", port=port) as url:
        cli = Cli(url)
        for region in (us, eu):
            cli("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis)
        cli("link", "add", "us", "eu", "--include", topic)
        worker = CoordinatedWorker(tmp_path, url, TOKEN).start()
        wait_for(lambda: [w["links"] for w in cli.json("coordinator", "workers")] == [["us-to-eu"]],
                 message="link assigned")
    try:
        produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(100)])
        wait_for(lambda: sum(counts(eu, topic).values()) == 100, message="replicated with the coordinator down")
        # Waited for, not read at the end: 100 records can be replicated before the next heartbeat finds it gone.
        wait_for(lambda: "coordinator unreachable" in worker.log.read_text(), timeout_s=30,
                 message="the worker noticing the coordinator is gone")
        assert worker.alive()
        with coordinator_process(env, tmp_path / "second.log", port=port):
            wait_for(lambda: any(w["live"] for w in cli.json("coordinator", "workers")), timeout_s=30,
                     message="the worker heartbeating to the returned coordinator")
            produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(100, 150)])
            wait_for(lambda: sum(counts(eu, topic).values()) == 150, message="replicating after the return")
    finally:
        assert worker.stop() == 0
