"""Confinement beyond namespaces: the seccomp filter, cgroup caps and host-wide leases, for real.

The seccomp checks run real bubblewrap twice with the same command, once with the filter and
once without, and every dangerous call is made with all capabilities kept (`--cap-add ALL`): so
each call the filtered run refuses is one the unfiltered run was allowed to make, and the filter
is what refused it. The cgroup checks fork-bomb and over-allocate in real cgroups; the lease
checks kill a real holder process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autograder import cgroups, leases, seccomp
from autograder.cgroups import SandboxCgroup
from autograder.leases import LeaseError, LeaseUnavailable
from tests.conftest import needs

REPO = Path(__file__).resolve().parents[2]
BWRAP = shutil.which("bwrap")
MACHINE = seccomp.native_machine() if os.uname().machine in ("x86_64", "aarch64") else None
MiB = 1024 * 1024

# Numbers the probe needs beyond the module's table (checked against the headers as well).
EXTRA_SYSCALLS = {
    "x86_64": {"getpid": 39, "capset": 126},
    "aarch64": {"getpid": 172, "capset": 91},
}
HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
}

# Runs inside the sandbox: each check records "ok", an errno name, "exit N" or "signal N".
# Calls that change the process (namespaces, tracing, personality) run in a forked child.
PROBE = r"""
import ctypes, errno, json, mmap, os, socket, struct, subprocess, sys, threading

numbers = json.loads(sys.argv[1])
heavy = sys.argv[2] == "heavy"
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
results = {}


def check(result):
    if result == -1:
        raise OSError(ctypes.get_errno(), "failed")
    return result


def syscall(name, *args):
    return check(libc.syscall(ctypes.c_long(numbers[name]), *(ctypes.c_long(a) for a in args)))


def outcome(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def record(name, action):
    results[name] = outcome(action)


def in_child(name, action):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: a SIGSYS leaves no core file
            os.write(write_end, outcome(action).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    results[name] = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else text


def ran(command):
    code = subprocess.run(command, capture_output=True).returncode
    if code:
        raise OSError(0, f"exit {code}")


def unshare_command():
    code = subprocess.run(["unshare", "-Ur", "true"], capture_output=True).returncode
    if code:
        raise RuntimeError(f"exit {code}")


def mount():
    os.makedirs("/tmp/mnt", exist_ok=True)
    check(libc.mount(b"none", b"/tmp/mnt", b"tmpfs", 0, None))


def clone_new_namespace():
    pid = syscall("clone", 0x00020000 | 17, 0, 0, 0, 0)  # CLONE_NEWNS | SIGCHLD
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def bpf_map():
    attr = struct.pack("IIII", 2, 4, 4, 1).ljust(72, b"\0")  # BPF_MAP_TYPE_ARRAY of one int
    buffer = ctypes.create_string_buffer(attr, len(attr))
    os.close(syscall("bpf", 0, ctypes.addressof(buffer), len(attr)))  # BPF_MAP_CREATE


def io_uring():
    params = ctypes.create_string_buffer(120)
    os.close(syscall("io_uring_setup", 1, ctypes.addressof(params)))


def setns():
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
    syscall("setns", fd, 0)


def i386_call():  # int 0x80: the 32-bit ABI, getpid (20)
    code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(b"\xb8\x14\x00\x00\x00\xcd\x80\xc3")  # mov eax, 20; int 0x80; ret
    address = ctypes.addressof(ctypes.c_char.from_buffer(code))
    ctypes.CFUNCTYPE(ctypes.c_int)(address)()


def drop_privileges():
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0))
    data = ctypes.create_string_buffer(24)  # two zeroed __user_cap_data_struct: no capability
    syscall("capset", ctypes.addressof(header), ctypes.addressof(data))
    check(libc.prctl(38, 1, 0, 0, 0))  # PR_SET_NO_NEW_PRIVS
    os.kill(os.getpid(), 0)


def fork_and_wait():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def kill_a_child():
    pid = os.fork()
    if pid == 0:
        import time
        time.sleep(30)
        os._exit(0)
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    assert os.WTERMSIG(status) == 9


def threads():
    done = []
    workers = [threading.Thread(target=done.append, args=(i,)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(done) == list(range(8))


def numpy_matmul():
    import numpy
    a = numpy.ones((300, 300))
    assert (a @ a)[0, 0] == 300


def torch_matmul():
    import torch
    torch.set_num_threads(4)
    a = torch.ones(256, 256)
    assert (a @ a)[0, 0].item() == 256


def zmq_ipc():
    import zmq
    context = zmq.Context()
    server, client = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    server.bind("ipc:///tmp/probe")
    client.connect("ipc:///tmp/probe")
    client.send(b"ping")
    assert server.recv() == b"ping"
    context.destroy(linger=0)


def vsock():
    socket.socket(40, socket.SOCK_STREAM).close()  # AF_VSOCK


in_child("unshare_user", lambda: check(libc.unshare(0x10000000)))  # CLONE_NEWUSER
record("unshare_command", unshare_command)
in_child("ptrace_traceme", lambda: check(libc.ptrace(0, 0, None, None)))
in_child("mount", mount)
in_child("keyctl", lambda: syscall("keyctl", 0, -2, 1))  # get/create the process keyring
in_child("bpf", bpf_map)
in_child("clone_newns", clone_new_namespace)
record("clone3", lambda: syscall("clone3", 0, 0))
in_child("setns", setns)
in_child("io_uring", io_uring)
in_child("personality_set", lambda: check(libc.personality(0x0040000)))  # ADDR_NO_RANDOMIZE
record("personality_query", lambda: check(libc.personality(0xFFFFFFFF)))
record("vsock", vsock)
if "x32_getpid" in numbers:
    record("x32", lambda: syscall("x32_getpid"))
    in_child("i386", i386_call)
record("fork_wait", fork_and_wait)
record("kill", kill_a_child)
record("threads", threads)
record("subprocess", lambda: ran(["true"]))
in_child("drop_privileges", drop_privileges)
if heavy:
    record("numpy", numpy_matmul)
    record("zmq_ipc", zmq_ipc)
    record("torch", torch_matmul)
print(json.dumps(results))
"""

DENIED_IN_SANDBOX = {
    "unshare_user": "EPERM",
    "ptrace_traceme": "EPERM",
    "mount": "EPERM",
    "keyctl": "EPERM",
    "bpf": "EPERM",
    "clone_newns": "EPERM",
    "clone3": "ENOSYS",
    "setns": "EPERM",
    "io_uring": "EPERM",
    "personality_set": "EPERM",
    "vsock": "EPERM",
}
ORDINARY = ("fork_wait", "kill", "threads", "subprocess", "drop_privileges", "personality_query")


# --- seccomp: the program itself ------------------------------------------------------------


def header_numbers(path: Path) -> dict[str, int]:
    text = path.read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"#define\s+__NR_(\w+)\s+(\d+)\b", text)}


@pytest.mark.parametrize("machine", sorted(seccomp.SYSCALLS))
def test_syscall_numbers_match_the_kernel_headers(machine: str) -> None:
    header = HEADERS[machine]
    needs(header.exists(), f"the kernel headers ({header})")
    known = header_numbers(header)
    table = {**seccomp.SYSCALLS[machine], **EXTRA_SYSCALLS[machine]}
    newest = max(known.values())
    for name, number in table.items():
        if name in known:
            assert known[name] == number, f"{machine} {name}: table {number}, header {known[name]}"
        else:  # a call newer than these headers (open_tree_attr is 6.15): numbered past them
            assert number > newest, f"{machine} {name} ({number}) is missing from {header}"
    # Every denied name the architecture has is in its table; the others it truly lacks.
    for name in seccomp.DENIED:
        assert name in table or name not in known, f"{machine} table lacks {name}"


def run_bpf(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """A classic-BPF interpreter for the opcodes the filter uses, on a synthetic seccomp_data."""
    values = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *values)
    code = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:  # ld [k]
            (accumulator,) = struct.unpack_from("<I", data, k)
            pc += 1
        elif op in (0x15, 0x45):  # jeq / jset
            hit = accumulator == k if op == 0x15 else bool(accumulator & k)
            pc += 1 + (jt if hit else jf)
        elif op == 0x06:
            return int(k)
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


@pytest.mark.parametrize("machine", sorted(seccomp.SYSCALLS))
def test_filter_decisions(machine: str) -> None:
    program = seccomp.program(machine)
    numbers = seccomp.SYSCALLS[machine]
    arch = seccomp.AUDIT_ARCH[machine]
    allow, kill = seccomp.SECCOMP_RET_ALLOW, seccomp.SECCOMP_RET_KILL_PROCESS
    eperm = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
    assert len(program) % 8 == 0

    def decide(name: str, *args: int) -> int:
        nr = EXTRA_SYSCALLS[machine][name] if name in EXTRA_SYSCALLS[machine] else numbers[name]
        return run_bpf(program, nr, arch, args)

    for name in seccomp.DENIED:
        if name in numbers:
            assert decide(name) == eperm, name
    assert decide("getpid") == allow
    assert decide("capset") == allow
    getpid = EXTRA_SYSCALLS[machine]["getpid"]
    other_arch = seccomp.AUDIT_ARCH["aarch64" if machine == "x86_64" else "x86_64"]
    assert run_bpf(program, getpid, other_arch) == kill
    assert run_bpf(program, getpid, 0x40000003) == kill  # i386
    if machine == "x86_64":
        assert run_bpf(program, getpid | seccomp.X32_SYSCALL_BIT, arch) == eperm
    assert decide("clone3") == seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS
    thread_flags = 0x3D0F00  # what glibc's pthread_create passes
    assert decide("clone", thread_flags) == allow
    assert decide("clone", 17) == allow  # fork: SIGCHLD only
    assert decide("clone", 0x80 | 17) == allow  # 0x80 is CSIGNAL here, not CLONE_NEWTIME
    for flag in (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000):
        assert decide("clone", flag | 17) == eperm, hex(flag)
        assert decide("clone", (1 << 32) | flag | 17) == eperm, hex(flag)
    assert decide("personality", 0) == allow
    assert decide("personality", 0xFFFFFFFF) == allow
    assert decide("personality", 0x0040000) == eperm
    assert decide("socket", 2) == allow  # AF_INET (in a network namespace of its own)
    assert decide("socket", 1) == allow  # AF_UNIX: zmq's ipc transport
    assert decide("socket", 40) == eperm  # AF_VSOCK


def test_program_fd_is_sealed_and_not_inherited() -> None:
    fd = seccomp.program_fd()
    try:
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert not os.get_inheritable(fd)
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
        with pytest.raises(PermissionError):
            os.write(fd, b"\0" * 8)
        assert os.read(fd, 1 << 16) == seccomp.program()
    finally:
        os.close(fd)


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(seccomp.SeccompUnsupported):
        seccomp.program("riscv64")


# --- seccomp: in real bubblewrap --------------------------------------------------------------


def bwrap_probe(seccomp_fd: int | None, heavy: bool) -> dict[str, str]:
    assert BWRAP is not None and MACHINE is not None
    command = [BWRAP, "--die-with-parent", "--new-session", "--clearenv"]
    command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    command += ["--cap-add", "ALL"]  # so that only the filter stands in the calls' way
    bound: list[str] = []
    for path in ["/usr", "/lib", "/lib64", "/bin", "/etc", sys.base_prefix, sys.prefix]:
        if not os.path.lexists(path) or any(path.startswith(b + "/") for b in bound):
            continue
        if os.path.islink(path) and path.count("/") == 1:  # merged /usr: /lib -> usr/lib
            command += ["--symlink", os.readlink(path), path]
        else:
            command += ["--ro-bind", path, path]
        bound.append(path)
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp"]
    command += ["--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp"]
    if seccomp_fd is not None:
        command += seccomp.bwrap_args(seccomp_fd)
    numbers = {**seccomp.SYSCALLS[MACHINE], **EXTRA_SYSCALLS[MACHINE]}
    if MACHINE == "x86_64":
        numbers["x32_getpid"] = seccomp.X32_SYSCALL_BIT | numbers["getpid"]
    command += ["--", sys.executable, "-c", PROBE, json.dumps(numbers)]
    command.append("heavy" if heavy else "light")
    fds = () if seccomp_fd is None else (seccomp_fd,)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, pass_fds=fds)
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.fixture(scope="module")
def probes() -> tuple[dict[str, str], dict[str, str]]:
    """The probe's results with the filter, and without it (same bwrap command otherwise)."""
    needs(
        BWRAP is not None and os.geteuid() == 0 and MACHINE is not None,
        "bwrap, root (no user namespace) and x86_64 or aarch64",
    )
    fd = seccomp.program_fd()
    try:
        filtered = bwrap_probe(fd, heavy=True)
    finally:
        os.close(fd)
    return filtered, bwrap_probe(None, heavy=False)


def test_filter_denies_escape_calls_in_bwrap(probes: tuple[dict[str, str], dict[str, str]]) -> None:
    filtered, _ = probes
    assert {name: filtered[name] for name in DENIED_IN_SANDBOX} == DENIED_IN_SANDBOX
    assert filtered["unshare_command"].startswith("RuntimeError: exit")  # `unshare -Ur true`
    if MACHINE == "x86_64":
        assert filtered["x32"] == "EPERM"
        assert filtered["i386"] == f"signal {int(signal.SIGSYS)}"  # another ABI: killed


def test_same_calls_succeed_without_the_filter(
    probes: tuple[dict[str, str], dict[str, str]],
) -> None:
    """Proof that the filter, not bwrap or missing capabilities, is what refuses them."""
    _, unfiltered = probes
    for name in ("unshare_user", "unshare_command", "ptrace_traceme", "mount", "keyctl"):
        assert unfiltered[name] == "ok", (name, unfiltered[name])
    for name in ("clone_newns", "personality_set", "bpf", "setns"):
        assert unfiltered[name] == "ok", (name, unfiltered[name])
    assert unfiltered["clone3"] == "EINVAL"  # the kernel's answer to a zero-size clone3
    # Kernel configuration decides whether these work unfiltered; the filter's answer differs.
    assert unfiltered["io_uring"] != "EPERM" and unfiltered["vsock"] != "EPERM"
    if MACHINE == "x86_64":
        assert unfiltered["x32"] != "EPERM"  # pid, or ENOSYS on kernels without x32
        assert unfiltered["i386"] != f"signal {int(signal.SIGSYS)}"


def test_ordinary_work_succeeds_under_the_filter(
    probes: tuple[dict[str, str], dict[str, str]],
) -> None:
    filtered, unfiltered = probes
    for name in ORDINARY:
        assert filtered[name] == "ok", (name, filtered[name])
        assert unfiltered[name] == "ok", (name, unfiltered[name])
    assert filtered["numpy"] == "ok", filtered["numpy"]
    assert filtered["zmq_ipc"] == "ok", filtered["zmq_ipc"]
    if filtered["torch"] != "ModuleNotFoundError: No module named 'torch'":
        assert filtered["torch"] == "ok", filtered["torch"]  # its thread pool: clone, not clone3


# --- cgroups ----------------------------------------------------------------------------------


@pytest.fixture
def capped() -> Iterator[type[SandboxCgroup]]:
    needs(cgroups.mode() != "none", f"cgroups ({cgroups.unavailable_reason()})")
    yield SandboxCgroup


FORK_BOMB = r"""
import os, time
read_end, write_end = os.pipe()
top = os.getpid()
for _ in range(8):  # 2**8 = 256 processes if nothing stops it
    try:
        pid = os.fork()
    except BlockingIOError:
        os.write(write_end, b"E")
        break
    if pid == 0:
        os.write(write_end, b"F")
if os.getpid() != top:
    time.sleep(1.0)  # all alive at once
    os._exit(0)
os.close(write_end)
with os.fdopen(read_end, "rb") as pipe:
    marks = pipe.read()
print(marks.count(b"F") + 1, marks.count(b"E"))
"""


def test_process_cap_stops_a_fork_bomb(capped: type[SandboxCgroup]) -> None:
    own_cgroups = Path("/proc/self/cgroup").read_text()
    cgroup = capped.create("fork-bomb", memory_bytes=256 * MiB, max_pids=16)
    assert cgroup is not None
    try:
        done = subprocess.run(
            cgroup.wrap([sys.executable, "-c", FORK_BOMB]), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        processes, failures = map(int, done.stdout.split())
        assert processes <= 16 and failures >= 1, done.stdout
        assert cgroup.fork_failures() >= 1
    finally:
        assert cgroup.remove()
    # The test process is in none of it, and may start more processes than the cap.
    assert Path("/proc/self/cgroup").read_text() == own_cgroups
    sleepers = [subprocess.Popen(["sleep", "5"]) for _ in range(24)]
    for sleeper in sleepers:
        sleeper.kill()
        sleeper.wait()


def test_memory_cap_kills_the_sandbox_process_only(capped: type[SandboxCgroup]) -> None:
    cgroup = capped.create("memory", memory_bytes=64 * MiB, max_pids=16)
    assert cgroup is not None
    try:
        small = subprocess.run(
            cgroup.wrap([sys.executable, "-c", "data = b'x' * (16 << 20); print(len(data))"]),
            capture_output=True,
            text=True,
        )
        assert small.returncode == 0 and small.stdout.strip() == str(16 * MiB), small.stderr
        assert not cgroup.oom_killed()
        big = subprocess.run(
            cgroup.wrap([sys.executable, "-c", "data = b'x' * (512 << 20); print('allocated')"]),
            capture_output=True,
            text=True,
        )
        assert big.returncode == -signal.SIGKILL and "allocated" not in big.stdout
        assert cgroup.oom_killed()
    finally:
        assert cgroup.remove()


def test_remove_kills_what_is_left_and_leaves_nothing(capped: type[SandboxCgroup]) -> None:
    cgroup = capped.create("leftover", memory_bytes=64 * MiB, max_pids=16)
    assert cgroup is not None
    paths = cgroup.paths
    assert paths and all(path.is_dir() for path in paths)
    # A process that left its session and ignores SIGTERM: only the cgroup still finds it.
    leftover = subprocess.Popen(
        cgroup.wrap(["/bin/sh", "-c", "trap '' TERM; setsid sleep 60 & sleep 60"])
    )
    deadline = time.monotonic() + 5
    while len(cgroup.pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(cgroup.pids()) >= 2
    assert cgroup.remove()
    assert leftover.wait(timeout=5) == -signal.SIGKILL
    assert not any(path.exists() for path in paths)
    assert cgroup.remove()  # again: nothing to do
    with pytest.raises(RuntimeError):
        cgroup.wrap(["true"])  # a removed cgroup never runs a command uncapped


def test_wrapped_command_never_runs_outside_its_cgroup(capped: type[SandboxCgroup]) -> None:
    cgroup = capped.create("gone", memory_bytes=64 * MiB, max_pids=16)
    assert cgroup is not None
    command = cgroup.wrap(["/bin/sh", "-c", "echo ran"])
    for path in cgroup.paths:  # deleted behind its back
        path.rmdir()
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == cgroups.ENTER_FAILED and "ran" not in done.stdout


def test_stale_cgroups_of_dead_workers_are_removed(capped: type[SandboxCgroup]) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = capped.create("live", memory_bytes=64 * MiB, max_pids=16)
    assert mine is not None
    stale = [path.parent / f"stale-{dead.pid}-0-0123abcd" for path in mine.paths]
    try:
        for path in stale:
            path.mkdir()
        assert cgroups.remove_stale() >= len(stale)
        assert not any(path.exists() for path in stale)
        assert all(path.is_dir() for path in mine.paths)  # its creator (us) is alive
    finally:
        for path in stale:
            if path.exists():
                path.rmdir()
        assert mine.remove()


def test_cgroups_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMS_CGROUP", "off")
    assert cgroups.mode() == "none"
    assert SandboxCgroup.create("off", memory_bytes=64 * MiB, max_pids=16) is None
    reason = cgroups.unavailable_reason()
    assert reason is not None and "LMS_CGROUP" in reason and "LMS_CGROUP" in cgroups.describe()


# --- leases -----------------------------------------------------------------------------------


@pytest.fixture
def lease_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "leases"
    monkeypatch.setenv("LMS_LEASE_DIR", str(folder))
    return folder


def test_claims_of_one_kind_get_different_values(lease_dir: Path) -> None:
    with leases.claim("uid", [61000, 61001, 61002]) as first:
        with leases.claim("uid", [61000, 61001, 61002]) as second:
            assert {first.value, second.value} == {61000, 61001}
            with leases.claim("gpu", [61000]) as other_kind:  # kinds are independent
                assert other_kind.value == 61000
    assert stat_mode(lease_dir) == 0o700


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_dead_holder_frees_its_value(lease_dir: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom autograder import leases\n"
            "lease = leases.claim('uid', [7])\nprint(lease.value, flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "7"
        with pytest.raises(LeaseUnavailable):
            leases.claim("uid", [7])
    finally:
        holder.kill()
        holder.communicate()
    with leases.claim("uid", [7], wait=5) as lease:  # the kernel dropped the dead one's lock
        assert lease.value == 7


def test_release_is_idempotent(lease_dir: Path) -> None:
    lease = leases.claim("slot", [3])
    lease.release()
    lease.release()
    assert not lease.held
    with leases.claim("slot", [3]) as again:
        assert again.value == 3
        again.release()  # inside the block, then by the block's end
    assert not again.held


def test_unavailable_when_every_candidate_is_taken(lease_dir: Path) -> None:
    with leases.claim("gpu", [0, 1]), leases.claim("gpu", [0, 1]):
        with pytest.raises(LeaseUnavailable):
            leases.claim("gpu", [0, 1])
        started = time.monotonic()
        with pytest.raises(LeaseUnavailable):
            leases.claim("gpu", [0, 1], wait=0.3)
        assert time.monotonic() - started >= 0.3


def test_a_waiting_claim_gets_the_value_once_released(lease_dir: Path) -> None:
    lease = leases.claim("uid", [5])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from autograder import leases\nprint(leases.claim('uid', [5], wait=20).value)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    time.sleep(0.3)
    assert holder.poll() is None  # still waiting
    lease.release()
    out, _ = holder.communicate(timeout=20)
    assert out.strip() == "5"


def test_lock_files_are_not_inherited_by_children(lease_dir: Path) -> None:
    with leases.claim("uid", [9]) as lease:
        listing = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os\nfor fd in os.listdir('/proc/self/fd'):\n"
                "    try:\n        print(os.readlink(f'/proc/self/fd/{fd}'))\n"
                "    except OSError:\n        pass",
            ],
            close_fds=False,
            capture_output=True,
            text=True,
        )
        assert str(lease.path) not in listing.stdout
        # A forked child shares the open file: release() must free the value all the same.
        child = os.fork()
        if child == 0:
            time.sleep(10)
            os._exit(0)
        try:
            lease.release()
            with leases.claim("uid", [9]) as again:
                assert again.value == 9
        finally:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


def test_unsafe_lease_directories_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("LMS_LEASE_DIR", str(shared))
    with pytest.raises(LeaseError):
        leases.claim("uid", [1])
    (tmp_path / "link").symlink_to(tmp_path)
    monkeypatch.setenv("LMS_LEASE_DIR", str(tmp_path / "link"))
    with pytest.raises(LeaseError):
        leases.claim("uid", [1])
    with pytest.raises(ValueError):
        leases.claim("../uid", [1])


def test_default_lease_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMS_LEASE_DIR", raising=False)
    folder = leases.lease_dir()
    if os.geteuid() == 0 and folder == leases.RUN_DIR:
        assert stat_mode(folder) & 0o022 == 0
    else:
        assert folder.name == f"lms-sandboxes-{os.geteuid()}" and stat_mode(folder) == 0o700
