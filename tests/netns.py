"""Test hosts on one machine: each a network namespace of its own, joined to this one by a veth
link, reaching this machine's PostgreSQL and Redis only across that link (a relay listens on
this side's end of the link and forwards to the server on 127.0.0.1, which is not reachable
from inside the namespace). Killing a host kills every process in it and cuts its link.

Needs root and iproute2 (`ip netns`), as CI has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def can_make_hosts() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str, namespace: str | None = None) -> None:
    command = (
        ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    )
    subprocess.run(command, check=True, capture_output=True)


class Relay:
    """TCP relay from (host, port) to 127.0.0.1:target, on an event loop in a thread."""

    def __init__(self, host: str, target: int) -> None:
        self.host, self.target = host, target
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10) or not self.port:
            raise RuntimeError(f"relay on {host} to port {target} did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.writers: set[asyncio.StreamWriter] = set()

        async def start() -> asyncio.Server:
            server = await asyncio.start_server(self._pipe_both, self.host, 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            return server

        server = self.loop.run_until_complete(start())
        self.loop.run_forever()
        server.close()
        for writer in self.writers:
            writer.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.run_until_complete(asyncio.sleep(0))  # the transports' close callbacks
        self.loop.close()

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target
            )
        except OSError:
            writer.close()
            return
        self.writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def descendants(pids: list[int]) -> set[int]:
    """These processes and all they started, alive: the dead not yet reaped (zombies) are not
    counted."""
    children: dict[int, list[int]] = {}
    alive: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        children.setdefault(int(parent), []).append(int(entry.name))
        if state not in ("Z", "X"):
            alive.add(int(entry.name))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found & alive


@dataclass
class Host:
    """One namespace: `address` is its end of the link, `gateway` this machine's end."""

    name: str
    namespace: str
    link: str
    gateway: str
    address: str
    relays: dict[int, Relay] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def reach(self, port: int) -> int:
        """The port on `gateway` that leads to 127.0.0.1:port of this machine."""
        if port not in self.relays:
            self.relays[port] = Relay(self.gateway, port)
        return self.relays[port].port

    def start(
        self, command: Sequence[str], log: Path, cwd: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Run the command inside the host, its output in `log`."""
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
                env=env,
            )
        self.processes.append(process)
        return process

    def pids(self) -> set[int]:
        """Every live process started in this host and everything they started (sandboxes in
        namespaces of their own included), found by parentage and by `ip netns pids`."""
        listed = subprocess.run(
            ["ip", "netns", "pids", self.namespace], capture_output=True, text=True
        ).stdout.split()
        started = [p.pid for p in self.processes if p.poll() is None]
        return descendants([*started, *map(int, listed)])

    def kill(self) -> None:
        """The host dies with everything in it: every process killed at once, its link cut."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            process.wait()
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:  # SIGKILL lands at once, but not
            time.sleep(0.05)  # always before this line
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "delete", self.link)

    def remove(self) -> None:
        self.kill()
        for relay in self.relays.values():
            relay.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "delete", self.namespace)


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """`count` hosts (at most 60), each on a /30 link of its own in 10.231.<run>.0/24 (run
    picked at random, so that a run's leftovers do not clash with the next), removed at the
    end."""
    run = uuid.uuid4().hex[:6]
    subnet = f"10.231.{random.randrange(256)}"
    made: list[Host] = []
    try:
        for n in range(1, count + 1):
            namespace, link = f"lms-{run}-{n}", f"lh{run}{n}"
            gateway, address = f"{subnet}.{4 * n + 1}", f"{subnet}.{4 * n + 2}"
            host = Host(f"host{n}", namespace, link, gateway, address)
            _ip("netns", "add", namespace)
            made.append(host)
            _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            _ip("link", "set", f"{link}p", "netns", namespace)
            _ip("addr", "add", f"{host.gateway}/30", "dev", link)
            _ip("link", "set", link, "up")
            _ip("addr", "add", f"{host.address}/30", "dev", f"{link}p", namespace=namespace)
            _ip("link", "set", f"{link}p", "up", namespace=namespace)
            _ip("link", "set", "lo", "up", namespace=namespace)
        yield made
    finally:
        for host in made:
            host.remove()
