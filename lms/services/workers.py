"""Which grading workers are alive and what they take: each worker process says so every few
seconds (from its reaper thread), so that the web can tell an instructor that GPU jobs wait
for a GPU worker that is not there, and the reaper can send such jobs to the CPU where the
course allows it."""

from __future__ import annotations

import socket
from datetime import timedelta

import sqlalchemy as sa

from lms.extensions import db
from lms.models import WorkerProcess, utcnow

# A worker not heard from for this long is taken for gone (it says so every few seconds).
ALIVE_WITHIN = timedelta(seconds=90)
# Rows of workers gone this long are removed.
FORGET_AFTER = timedelta(hours=1)


def process_id(pid: int) -> str:
    """ "<host>:<pid>": the same prefix as the grading leases the process takes."""
    return f"{socket.gethostname()}:{pid}"


def heartbeat(pid: int, lanes: tuple[str, ...], gpu_slots: int) -> None:
    """This process is alive and takes these lanes (in its own short transaction)."""
    now = utcnow()
    key = process_id(pid)
    found = db.session.get(WorkerProcess, key)
    if found is None:
        db.session.add(
            WorkerProcess(
                id=key,
                host=socket.gethostname(),
                lanes=",".join(lanes),
                gpu_slots=gpu_slots,
                started_at=now,
                seen_at=now,
            )
        )
    else:
        found.lanes, found.gpu_slots, found.seen_at = ",".join(lanes), gpu_slots, now
    db.session.execute(sa.delete(WorkerProcess).where(WorkerProcess.seen_at < now - FORGET_AFTER))
    db.session.commit()


def gone(pid: int) -> None:
    """The process stops: it takes nothing more."""
    db.session.execute(sa.delete(WorkerProcess).where(WorkerProcess.id == process_id(pid)))
    db.session.commit()


def alive() -> list[WorkerProcess]:
    """The worker processes heard from lately, by host."""
    return list(
        db.session.scalars(
            sa.select(WorkerProcess)
            .where(WorkerProcess.seen_at >= utcnow() - ALIVE_WITHIN)
            .order_by(WorkerProcess.host, WorkerProcess.id)
        )
    )


def taking(lane: str) -> int:
    """How many live worker processes take jobs of this lane."""
    return sum(1 for worker in alive() if lane in worker.lanes.split(","))
