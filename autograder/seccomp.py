"""A seccomp filter for bubblewrap's `--seccomp FD`: the system calls learner code never needs.

bwrap installs the filter in the sandboxed command right before exec'ing it, so it binds the
fork server, every kernel it forks and everything those start; a filter can never be removed or
loosened, only narrowed further. The filter is a classic-BPF program assembled here with
`struct.pack` (no libseccomp), for the native architecture only (x86_64 or aarch64).

What it guarantees, for every process of the sandbox:

- Only the native system-call ABI: a call made through another one (32-bit `int 0x80` on
  x86_64, AArch32 on aarch64) kills the whole process, because syscall numbers, and so this
  filter's checks, mean something else there. x32 calls (x86_64, `nr & 0x40000000`) fail EPERM.
- No new namespaces: `unshare` and `setns` fail EPERM, `clone` with any CLONE_NEW* flag fails
  EPERM, and `clone3` (whose flags live in memory a filter cannot read) fails ENOSYS so libc
  falls back to `clone` (as Docker and systemd do). A new user namespace would hand the learner a
  full capability set inside it and, with that, the kernel's much larger user-namespace attack
  surface (mounting file systems, netfilter, ...), which is where most local privilege escalations
  of recent years were found.
- No debugging or memory access of other processes: `ptrace`, `process_vm_readv/writev`,
  `pidfd_getfd`, `process_madvise`, `kcmp`. The fork server holds the guard's key and its
  kernels run as the same uid; these would let a kernel read it (or another kernel's memory).
- No administration of the machine: module loading, kexec, `bpf`, `perf_event_open`, mounting
  (old and new mount APIs), `chroot`, `pivot_root`, keyrings (`keyctl`, `add_key`,
  `request_key`: not namespaced), swap, reboot, accounting, quotas, clocks, the kernel log,
  `vhangup`, file handles (`open_by_handle_at` opens files by inode, ignoring the mount
  namespace), x86 port I/O and LDT, `uselib`. Most need capabilities the sandbox does not have;
  denying them anyway removes kernel code from the learner's reach if a capability ever leaks.
- No io_uring (its operations bypass this filter entirely, and it is a frequent source of kernel
  bugs) and no userfaultfd (the usual tool to win kernel race conditions).
- `personality` only to query or to set the default (0): no ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC.
- No AF_VSOCK sockets: vsock is not network-namespaced, so inside a virtual machine it would
  reach the hypervisor host despite the sandbox's private network namespace.

Everything else is allowed: the fork server and kernels must fork, start threads, map memory,
use zmq ipc sockets, drop privileges (setresuid, setgroups, capset, prctl) and signal their
children; numpy, torch and the like must work unchanged. Denials return an errno (never kill) so
that well-written code sees an ordinary OSError.
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import struct

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_JSET_K = 0x05 | 0x40 | 0x00  # BPF_JMP | BPF_JSET | BPF_K: jump if A & k
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K

# Return actions (linux/seccomp.h).
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6];}: both supported
# architectures are little-endian, so an argument's low 32 bits are at its own offset.
_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16

AUDIT_ARCH_X86_64 = 0xC000003E  # EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
AUDIT_ARCH_AARCH64 = 0xC00000B7  # EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
X32_SYSCALL_BIT = 0x40000000

# Namespace flags of clone(2). CLONE_NEWTIME (0x80) is left out on purpose: in clone's flags
# argument it overlaps CSIGNAL (the exit signal in the low byte), so it can only be asked for
# through unshare or clone3, both of which are denied outright.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NAMESPACES = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)

AF_VSOCK = 40
PERSONALITY_QUERY = 0xFFFFFFFF  # personality(0xffffffff) reads the persona, changes nothing

# Denied with EPERM whatever their arguments. A name an architecture lacks is skipped there.
DENIED: tuple[str, ...] = (
    # other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp",
    # namespaces (clone and clone3: see _conditional)
    "unshare", "setns",
    # kernel code and tracing
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
    "perf_event_open",
    # mounts, old and new API
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "open_tree_attr",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # keyrings: not namespaced, shared with the host
    "keyctl", "add_key", "request_key",
    # kernel attack surface with no use in a notebook
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # machine administration
    "swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
    "name_to_handle_at", "open_by_handle_at", "syslog", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    # x86 only
    "iopl", "ioperm", "modify_ldt", "uselib",
)  # fmt: skip

# System-call numbers, checked by the tests against the kernel headers where they are installed
# (x86_64: asm/unistd_64.h; aarch64: asm-generic/unistd.h).
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "socket": 41, "clone": 56, "uselib": 134, "personality": 135, "ptrace": 101,
        "syslog": 103, "vhangup": 153, "modify_ldt": 154, "pivot_root": 155, "adjtimex": 159,
        "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
        "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
        "init_module": 175, "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212,
        "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
        "keyctl": 250, "unshare": 272, "perf_event_open": 298, "name_to_handle_at": 303,
        "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310,
        "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320,
        "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435, "pidfd_getfd": 438,
        "process_madvise": 440, "mount_setattr": 442, "quotactl_fd": 443, "open_tree_attr": 467,
    },
    # The generic table (asm-generic/unistd.h): no iopl, ioperm, modify_ldt or uselib.
    "aarch64": {
        "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51,
        "vhangup": 58, "quotactl": 60, "acct": 89, "personality": 92, "unshare": 97,
        "kexec_load": 104, "init_module": 105, "delete_module": 106, "clock_settime": 112,
        "syslog": 116, "ptrace": 117, "reboot": 142, "settimeofday": 170, "adjtimex": 171,
        "socket": 198, "add_key": 217, "request_key": 218, "keyctl": 219, "clone": 220,
        "swapon": 224, "swapoff": 225, "perf_event_open": 241, "name_to_handle_at": 264,
        "open_by_handle_at": 265, "clock_adjtime": 266, "setns": 268, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "bpf": 280,
        "userfaultfd": 282, "kexec_file_load": 294, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
        "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442, "quotactl_fd": 443,
        "open_tree_attr": 467,
    },
}  # fmt: skip

AUDIT_ARCH = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}
_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


class SeccompUnsupported(RuntimeError):
    """No filter for this architecture: the caller decides whether to run without one."""


def native_machine(machine: str | None = None) -> str:
    """`machine` (default: this one's) as a key of SYSCALLS, or SeccompUnsupported."""
    name = (machine or platform.machine()).lower()
    name = _ALIASES.get(name, name)
    if name not in SYSCALLS:
        raise SeccompUnsupported(f"no seccomp filter for architecture {name!r}")
    return name


def _instruction(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter, native byte order


class _Assembler:
    """A straight-line BPF program with forward jumps to named labels (resolved at the end)."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, str | None, str | None]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def load(self, offset: int) -> None:
        self.code.append((_LD_W_ABS, offset, None, None))

    def jump(self, code: int, k: int, true: str | None, false: str | None) -> None:
        """Jump to label `true` or `false`; None falls through to the next instruction."""
        self.code.append((code, k, true, false))

    def ret(self, action: int) -> None:
        self.code.append((_RET_K, action, None, None))

    def bytes(self) -> bytes:
        out = []
        for index, (code, k, true, false) in enumerate(self.code):
            jt, jf = (self._offset(index, target) for target in (true, false))
            out.append(_instruction(code, k, jt, jf))
        return b"".join(out)

    def _offset(self, index: int, target: str | None) -> int:
        if target is None:
            return 0
        offset = self.labels[target] - index - 1
        # Classic BPF jumps only forward, by at most 255 instructions.
        if not 0 <= offset <= 255:
            raise AssertionError(f"BPF jump to {target} out of range: {offset}")
        return offset


def program(machine: str | None = None) -> bytes:
    """The compiled filter (an array of struct sock_filter), as bwrap's --seccomp reads it."""
    arch = native_machine(machine)
    numbers = SYSCALLS[arch]
    asm = _Assembler()
    asm.load(_OFFSET_ARCH)
    asm.jump(_JEQ_K, AUDIT_ARCH[arch], None, "kill")
    asm.load(_OFFSET_NR)
    if arch == "x86_64":
        # x32 calls share AUDIT_ARCH_X86_64 but are numbered from 0x40000000: without this
        # check, x32's `unshare` would not match the number denied below.
        asm.jump(_JSET_K, X32_SYSCALL_BIT, "eperm", None)
    for name in DENIED:
        if name in numbers:
            asm.jump(_JEQ_K, numbers[name], "eperm", None)
    asm.jump(_JEQ_K, numbers["clone3"], "enosys", None)
    asm.jump(_JEQ_K, numbers["clone"], "clone", None)
    asm.jump(_JEQ_K, numbers["personality"], "personality", None)
    asm.jump(_JEQ_K, numbers["socket"], "socket", None)
    asm.ret(SECCOMP_RET_ALLOW)
    # The kernel reads only the low 32 bits of these arguments (clone's flags via
    # lower_32_bits(), personality's unsigned int, socket's int family), so checking those
    # bits is exact: high bits set by a learner change nothing.
    asm.label("clone")
    asm.load(_OFFSET_ARG0_LOW)
    asm.jump(_JSET_K, CLONE_NAMESPACES, "eperm", "allow")
    asm.label("personality")
    asm.load(_OFFSET_ARG0_LOW)
    asm.jump(_JEQ_K, 0, "allow", None)
    asm.jump(_JEQ_K, PERSONALITY_QUERY, "allow", "eperm")
    asm.label("socket")
    asm.load(_OFFSET_ARG0_LOW)
    asm.jump(_JEQ_K, AF_VSOCK, "eperm", "allow")
    asm.label("allow")
    asm.ret(SECCOMP_RET_ALLOW)
    asm.label("eperm")
    asm.ret(SECCOMP_RET_ERRNO | errno.EPERM)
    asm.label("enosys")
    asm.ret(SECCOMP_RET_ERRNO | errno.ENOSYS)
    asm.label("kill")
    asm.ret(SECCOMP_RET_KILL_PROCESS)
    return asm.bytes()


def program_fd(machine: str | None = None) -> int:
    """A new fd, at offset 0, holding program(): for `pass_fds` and bwrap's `--seccomp FD`.

    The fd is close-on-exec (pass_fds makes it inheritable for that one child only) and, being a
    sealed memfd, cannot be rewritten by anyone who gets hold of it. One fd serves one bwrap: it
    reads to the end, and the offset is shared. The caller closes it once bwrap has started.
    """
    data = program(machine)
    try:
        fd = os.memfd_create("lms-seccomp", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return _pipe_fd(data)  # a kernel without memfd: the program fits in a pipe's buffer
    try:
        _write_all(fd, data)
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _pipe_fd(data: bytes) -> int:
    read_end, write_end = os.pipe()  # both close-on-exec
    try:
        _write_all(write_end, data)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return read_end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def bwrap_args(fd: int) -> list[str]:
    """The bwrap options that install the filter read from `fd`."""
    return ["--seccomp", str(fd)]
