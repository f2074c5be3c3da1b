"""Invite a 50,000-learner cohort: queue the round, let the worker's task send every mail to a
real SMTP server (aiosmtpd on the loopback, in a process of its own, as a mail server would
be), and time it; beside it, the one-by-one way (a connection and a commit per invitation)
on a sample, in the same run.

    .venv/bin/python -m benchmarks.invitations [--learners 50000] [--database-url URL]

Prints `name: value` lines: total seconds, mails per second, and the speed-up over one-by-one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import tempfile
import time
from datetime import date
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from lms import create_app, queue
from lms.extensions import db
from lms.models import Base, User
from lms.services import accounts, learner_import, programs


class CountingHandler:
    """Accepts every message and counts it (parsing 50,000 mails is the server's work, not
    the LMS's; the tests parse them)."""

    def __init__(self, count: Synchronized[int]) -> None:
        self.count = count

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self.count.get_lock():
            self.count.value += 1
        return "250 Message accepted"


def serve(port: int, count: Synchronized[int], ready: Event, stop: Event) -> None:
    controller = Controller(CountingHandler(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def learners_csv(prefix: str, count: int) -> bytes:
    rows = "".join(f"{prefix}{n:06d}@bench.example.org,Learner {n}\n" for n in range(count))
    return ("email,name\n" + rows).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=50_000)
    parser.add_argument("--baseline", type=int, default=500)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    args = parser.parse_args()

    port = free_port()
    received: Synchronized[int] = multiprocessing.Value("i", 0)
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, received, ready, stop))
    server.start()
    ready.wait(30)
    try:
        return run(args, f"smtp://127.0.0.1:{port}", received)
    finally:
        stop.set()
        server.join(10)


def run(args: argparse.Namespace, smtp_url: str, received: Synchronized[int]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        app = create_app(
            {
                "SECRET_KEY": "bench",
                "DATABASE_URL": url,
                "DATA_DIR": tmp,
                "QUEUE_URL": f"sqlite:///{Path(tmp) / 'q.sqlite3'}",
                "SMTP_URL": smtp_url,
                "PUBLIC_URL": "https://lms.example.edu",
            }
        )
        with app.app_context():
            Base.metadata.drop_all(db.engine)
            Base.metadata.create_all(db.engine)
            program = programs.create_program("Bench", 50_000, date(2030, 1, 1))
            big = programs.create_cohort(program, "Big", date(2026, 1, 1), date(2026, 12, 31))
            small = programs.create_cohort(program, "Small", date(2026, 1, 1), date(2026, 12, 31))
            learner_import.import_learners(big, learners_csv("big", args.learners))
            learner_import.import_learners(small, learners_csv("small", args.baseline))

            # One by one: what a loop over accounts.invite_now does.
            sample = list(db.session.scalars(sa.select(User).where(User.email.like("small%"))))
            start = time.perf_counter()
            for user in sample:
                accounts.invite_now(user, None)
            one_by_one_seconds = time.perf_counter() - start
            assert received.value == args.baseline

            # The cohort round, as the web page starts it and the worker runs it.
            queue.bind_worker_app(app)
            huey = queue.queue().huey
            start = time.perf_counter()
            batch = accounts.start_batch(big, None)
            queued_seconds = time.perf_counter() - start
            while (task := huey.dequeue()) is not None:
                huey.execute(task)
            total_seconds = time.perf_counter() - start
            db.session.refresh(batch)
            assert (batch.state, batch.sent) == ("done", args.learners), (batch.state, batch.sent)
            assert received.value == args.baseline + args.learners
            db.session.close()  # its read of the batch would hold PostgreSQL's DROP back
            Base.metadata.drop_all(db.engine)
            db.engine.dispose()

    rate = args.learners / total_seconds
    baseline_rate = args.baseline / one_by_one_seconds
    print(f"backend: {sa.make_url(url).get_backend_name()}")
    print(f"learners: {args.learners}")
    print(f"queue_seconds: {queued_seconds:.2f}")
    print(f"total_seconds: {total_seconds:.1f}")
    print(f"mails_per_second: {rate:.0f}")
    print(f"one_by_one_mails_per_second: {baseline_rate:.0f}")
    print(f"speedup_vs_one_by_one_ratio: {rate / baseline_rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
