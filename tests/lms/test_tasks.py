"""Tasks declare themselves where their work lives (@queue.task); the queue carries them by
name and knows none of them; the worker loads every one before it consumes."""

from __future__ import annotations

import pytest
from flask import Flask

from lms import queue, worker


def test_the_worker_knows_every_task_the_services_queue() -> None:
    assert set(worker.load_tasks()) >= {"grade_job", "export_job", "account_mail", "invitations"}


def test_a_task_name_is_taken_once() -> None:
    @queue.task("test-only-once")
    def first() -> None:
        pass

    queue.task("test-only-once")(first)  # the same function again: fine (a module reloaded)
    with pytest.raises(ValueError, match="two tasks are named 'test-only-once'"):

        @queue.task("test-only-once")
        def second() -> None:
            pass


def test_a_message_for_a_task_this_worker_lacks_fails_with_its_name(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue.queue().enqueue("no-such-task", 1, priority=queue.PRIORITY_BATCH)
    huey = queue.queue().huey
    (message,) = [m for m in huey.pending() if m.args[0] == "no-such-task"]
    monkeypatch.setattr(queue, "_worker_app", app)
    with pytest.raises(LookupError, match="no task named 'no-such-task'"):
        message.execute()
