"""A seccomp filter like Docker's default profile: a deny list, each call failing with EPERM,
built as a classic BPF program here and installed with prctl (no libseccomp).

Denied: mounting and pivoting (the sandbox's mounts are fixed once it runs), new namespaces
(unshare; clone with CLONE_NEW* flags; clone3, whose flags a filter cannot read, answers ENOSYS
so libc falls back to clone), setns, the kernel keyring, bpf, perf_event_open, kexec, kernel
modules, reboot, swap, acct, setting the clock, quotactl, file handles, userfaultfd, iopl/ioperm,
the syslog, sethostname. ptrace stays allowed as in Docker: the PID namespace leaves nothing
outside to trace. The "template" profile lets through what a template's children need to build
their own sandbox (mount, umount2, pivot_root, sethostname, unshare without CLONE_NEWUSER).
"""

from __future__ import annotations

import ctypes
import errno
import struct

from worker.sandbox import libc
from worker.sandbox.spec import Seccomp

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# Name -> number, per architecture (x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64:
# the generic table, include/uapi/asm-generic/unistd.h). From 424 on both share the numbers.
_COMMON = {
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "mount_setattr": 442,
    "quotactl_fd": 443,
}
SYSCALLS = {
    "x86_64": {
        **_COMMON,
        "clone": 56,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "unshare": 272,
        "setns": 308,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "perf_event_open": 298,
        "kexec_load": 246,
        "kexec_file_load": 320,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "reboot": 169,
        "swapon": 167,
        "swapoff": 168,
        "acct": 163,
        "settimeofday": 164,
        "clock_settime": 227,
        "clock_adjtime": 305,
        "adjtimex": 159,
        "quotactl": 179,
        "open_by_handle_at": 304,
        "name_to_handle_at": 303,
        "userfaultfd": 323,
        "iopl": 172,
        "ioperm": 173,
        "lookup_dcookie": 212,
        "syslog": 103,
        "sethostname": 170,
        "setdomainname": 171,
        "vhangup": 153,
        "uselib": 134,
        "_sysctl": 156,
        "create_module": 174,
        "get_kernel_syms": 177,
        "query_module": 178,
        "nfsservctl": 180,
    },
    "aarch64": {
        **_COMMON,
        "clone": 220,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "unshare": 97,
        "setns": 268,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "perf_event_open": 241,
        "kexec_load": 104,
        "kexec_file_load": 294,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "reboot": 142,
        "swapon": 224,
        "swapoff": 225,
        "acct": 89,
        "settimeofday": 170,
        "clock_settime": 112,
        "clock_adjtime": 266,
        "adjtimex": 171,
        "quotactl": 60,
        "open_by_handle_at": 265,
        "name_to_handle_at": 264,
        "userfaultfd": 282,
        "lookup_dcookie": 18,
        "syslog": 116,
        "sethostname": 161,
        "setdomainname": 162,
        "vhangup": 58,
    },
}
# The template's children unshare and mount; everything else stays denied there too.
TEMPLATE_ALLOWED = frozenset({"mount", "umount2", "pivot_root", "sethostname", "unshare"})
# Flags checked in the first argument of clone (and of unshare in the template profile).
CLONE_NEWCGROUP = 0x02000000
NAMESPACE_FLAGS = (
    libc.CLONE_NEWNS
    | libc.CLONE_NEWUTS
    | libc.CLONE_NEWIPC
    | libc.CLONE_NEWUSER
    | libc.CLONE_NEWPID
    | libc.CLONE_NEWNET
    | CLONE_NEWCGROUP
)

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
BPF_LD_W_ABS = 0x20
BPF_JMP_JEQ_K = 0x15
BPF_JMP_JGE_K = 0x35
BPF_JMP_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
# Offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6] (little-endian low words).
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_ARG0 = 16


def _insn(code: int, jt: int, jf: int, k: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def program(profile: Seccomp, arch: str) -> list[tuple[int, int, int, int]]:
    """The filter's instructions, (code, jt, jf, k) each."""
    numbers = SYSCALLS[arch]
    allowed = TEMPLATE_ALLOWED if profile == "template" else frozenset()
    denied = sorted({n for name, n in numbers.items() if name not in allowed and name not in ("clone", "clone3")})
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    out = [
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        _insn(BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH[arch]),
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),  # another ABI (i386, x32 below) is not filtered
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ]
    if arch == "x86_64":
        out += [_insn(BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT), _insn(BPF_RET_K, 0, 0, eperm)]
    out += [_insn(BPF_JMP_JEQ_K, 0, 1, numbers["clone3"]), _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    # clone (and, for a template, unshare) pass unless their flags ask for a new user namespace
    # (template) or any namespace (container).
    flag_checked = [("clone", NAMESPACE_FLAGS if profile != "template" else libc.CLONE_NEWUSER)]
    if profile == "template":
        flag_checked.append(("unshare", libc.CLONE_NEWUSER))
    for name, flags in flag_checked:
        out += [
            _insn(BPF_JMP_JEQ_K, 0, 4, numbers[name]),
            _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARG0),
            _insn(BPF_JMP_JSET_K, 0, 1, flags),
            _insn(BPF_RET_K, 0, 0, eperm),
            _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ]
    for number in denied:
        out += [_insn(BPF_JMP_JEQ_K, 0, 1, number), _insn(BPF_RET_K, 0, 0, eperm)]
    out.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return out


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(profile: Seccomp) -> None:
    """Filter this thread's calls from now on (and its children's); `off` installs nothing.
    Also sets no_new_privs, which an unprivileged filter needs and which keeps setuid binaries
    from gaining anything."""
    if profile == "off":
        return
    instructions = program(profile, libc.machine())
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in instructions)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(instructions), ctypes.cast(buffer, ctypes.c_void_p))
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    libc.prctl(libc.PR_SET_SECCOMP, libc.SECCOMP_MODE_FILTER, ctypes.c_void_p(ctypes.addressof(prog)))
