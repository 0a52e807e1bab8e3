"""/v1/workers: mirror workers register, heartbeat and leave; heartbeats return the assignment."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from amity.coordinator.deps import Actor, CoordinatorDep, Reader
from amity.coordinator.heartbeats import heartbeat
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES
from amity.coordinator.schemas.workers import Assignment, Heartbeat, WorkerPublic, WorkerRegister, WorkerRegistered
from amity.coordinator.store.workers import not_registered

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=PROBLEM_RESPONSES)
WorkerId = Annotated[str, Path(max_length=80, description="The id registration returned")]


@router.post("", status_code=201)
async def register_worker(worker: WorkerRegister, c: CoordinatorDep, _: Actor) -> WorkerRegistered:
    """A worker starting up; it gets links from its first heartbeat on."""
    record = await c.workers.register(worker.name, worker.version, c.clock())
    return WorkerRegistered(worker_id=record.id, heartbeat_interval_s=c.settings.heartbeat_interval_s,
                            timeout_s=c.settings.worker_timeout_s)


@router.post("/{worker_id}/heartbeat")
async def worker_heartbeat(worker_id: WorkerId, beat: Heartbeat, c: CoordinatorDep, _: Actor) -> Assignment:
    """Carries the worker's stats; answers with its assignment, which holds region secrets."""
    return await heartbeat(c, worker_id, beat)


@router.delete("/{worker_id}", status_code=204)
async def leave(worker_id: WorkerId, c: CoordinatorDep, _: Actor) -> None:
    """A worker shutting down: its links go to the others at once."""
    if not await c.workers.remove(worker_id):
        raise not_registered(worker_id)
    await c.assignment.refresh(await c.live_workers())


@router.get("", dependencies=[Reader])
async def list_workers(c: CoordinatorDep) -> list[WorkerPublic]:
    live = set(await c.live_workers())
    held = (await c.assignment.current()).workers
    return [WorkerPublic(id=worker_id, name=s.record.name, version=s.record.version,
                         registered_at=s.record.registered_at, running_generation=s.running,
                         last_seen=datetime.fromtimestamp(s.last_seen, UTC) if s.last_seen is not None else None,
                         live=worker_id in live, links=held.get(worker_id, []) if worker_id in live else [])
            for worker_id, s in (await c.workers.all()).items()]
