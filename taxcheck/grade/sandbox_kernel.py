"""The kernel layers of the sandbox: namespaces, a private root, capabilities, Landlock, seccomp.

Why a module of its own that runs only in the sandbox's child processes: Python cannot confine
itself, the kernel can, and every layer here is a system call made before the model's code
exists in any process. The parent never imports this for its own use; it ships the source text
to the child (see ``sandbox_harness.main``), so the module must stay standard-library-only and
run on Python >= 3.8 (an OCI image may carry an older interpreter than the host).

The namespace boundary (``enter``) works for any user on Linux with user namespaces:

* stage 1 (the caller's uid, the host's namespaces) forks and writes the child's uid/gid
  maps: the caller's own ids for an ordinary user, a random unused uid for root, so that
  nothing in the sandbox is uid 0 on the host;
* stage 2 unshares user, mount, pid, network, IPC, UTS and cgroup namespaces and forks
* stage 3, pid 1 of the new pid namespace, opens ``O_PATH`` handles on what Python needs
  (``/usr``, ``/lib*``, the interpreter's prefix, a few ``/etc`` files, five ``/dev`` nodes)
  and builds a root of its own on a small tmpfs: the handles bind-mounted read-only, nosuid,
  nodev; a fresh ``/proc`` for this pid namespace; a size- and inode-capped tmpfs at ``/tmp``
  as the only writable place. It ``pivot_root``s into it and detaches the host's tree, then
  drops every capability, locks the securebits, sets ``no_new_privs`` and marks itself
  undumpable. When it exits the kernel kills every process left in the namespace, so
  nothing outlives a run.

Root without user namespaces but with ``CAP_SYS_ADMIN`` gets the same tree without the user
namespace and switches to the random uid once the mounts are made.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import struct

CLONE_THREAD = 0x00010000
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME = 0x10000000, 0x20000000, 0x40000000, 0x00000080
NAMESPACES = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
ANY_NAMESPACE = NAMESPACES | CLONE_NEWUSER | CLONE_NEWTIME

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
AT_RECURSIVE = 0x8000

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAPBSET_DROP = 1, 4, 22, 24
PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 28, 38, 47, 4
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each with its lock, and KEEP_CAPS locked off.
SECUREBITS_LOCKED = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
O_PATH = getattr(os, "O_PATH", 0o10000000)

SANDBOX_ID = 1000  # the uid and gid the code has inside the user namespace
NEW_ROOT_CANDIDATES = ("/tmp", "/mnt", "/dev")
ROOT_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd", "/etc/group")
DEVICES = ("null", "zero", "full", "random", "urandom")

# Per architecture: audit arch, pivot_root, and the syscalls seccomp refuses (see ``seccomp``).
_X86_64 = {
    "arch": 0xC000003E, "pivot_root": 155, "clone": 56, "clone3": 435, "fork": 57, "vfork": 58, "x32": True,
    "deny": (41, 53, 101, 310, 311, 165, 166, 155, 161, 272, 308, 321, 298, 250, 248, 249, 323, 425, 426, 427,
             246, 320, 175, 313, 176, 304, 303, 430, 431, 432, 433, 429, 428, 442, 103, 163, 167, 168, 169, 179,
             172, 173, 312, 438, 440, 319, 29, 30, 31),
}
_AARCH64 = {
    "arch": 0xC00000B7, "pivot_root": 41, "clone": 220, "clone3": 435, "fork": None, "vfork": None, "x32": False,
    "deny": (198, 199, 117, 270, 271, 40, 39, 41, 51, 97, 268, 280, 241, 219, 217, 218, 282, 425, 426, 427,
             104, 294, 105, 273, 106, 265, 264, 430, 431, 432, 433, 429, 428, 442, 116, 89, 224, 225, 142, 60,
             272, 438, 440, 279, 194, 195, 196),
}
# socket socketpair ptrace process_vm_readv/writev mount umount2 pivot_root chroot unshare setns bpf
# perf_event_open keyctl add_key request_key userfaultfd io_uring_* kexec_* *_module *_handle_at the
# new mount API syslog acct swapon/off reboot quotactl (iopl ioperm) kcmp pidfd_getfd process_madvise
# memfd_create (tmpfs memory outside every cap) and SysV shm (memory that outlives a detach).


def _arch() -> dict | None:
    machine = os.uname().machine.lower()
    if machine in ("x86_64", "amd64"):
        return _X86_64
    if machine in ("aarch64", "arm64"):
        return _AARCH64
    return None


class SetupError(Exception):
    """A layer that must hold could not be put in place; the code is then never run."""


_LIBC = None


def libc():
    global _LIBC
    if _LIBC is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        lib.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
        lib.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
        lib.unshare.argtypes = (ctypes.c_int,)
        lib.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
        _LIBC = lib
    return _LIBC


def _fail(what: str) -> SetupError:
    code = ctypes.get_errno()
    return SetupError("%s: %s (%s)" % (what, os.strerror(code), errno.errorcode.get(code, code)))


def _syscall(nr: int, *args) -> int:
    return libc().syscall(ctypes.c_long(nr), *[a if not isinstance(a, int) else ctypes.c_long(a) for a in args])


def prctl(option: int, arg: int = 0, what: str = "prctl") -> None:
    if libc().prctl(option, arg, 0, 0, 0) != 0:
        raise _fail(what)


def _mount(src, target: str, fstype, flags: int, data=None) -> None:
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    if libc().mount(enc(src), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise _fail("mount %s" % target)


# ----------------------------------------------------------------------------- stage 1


def plan_binds() -> list:
    """What the interpreter needs from the host, as (kind, path, fd-or-link-target) triples.

    Opened in stage 3 inside the new mount namespace (a bind source must belong to it) and
    before the switch to the sandbox's uid: root's sandbox uid could not even traverse
    ``/root``, where pyenv puts interpreters.
    """
    import sys

    plan, covered = [], []

    def add(path: str) -> None:
        if not path or not os.path.isabs(path) or not os.path.lexists(path):
            return
        if os.path.islink(path) and os.path.dirname(path) in ("/", "/etc"):
            plan.append(("link", path, os.readlink(path)))
            covered.append(os.path.realpath(path))
            return
        real = os.path.realpath(path)
        if real.startswith(("/proc/", "/dev/", "/sys/")) or real in ("/", "/proc", "/dev", "/sys"):
            return
        if any(real == c or real.startswith(c.rstrip("/") + "/") for c in covered):
            return
        fd = os.open(real, O_PATH | os.O_CLOEXEC)
        plan.append(("dir" if os.path.isdir(real) else "file", real, fd))
        covered.append(real)

    for d in ROOT_DIRS:
        add(d)
    exe = os.path.realpath(sys.executable)
    extra = [os.path.dirname(exe), os.path.realpath(sys.base_prefix)]
    extra += [os.path.realpath(p) for p in sys.path if p]
    cfg = os.path.join(os.path.dirname(os.path.dirname(exe)), "pyvenv.cfg")
    extra += [cfg] if os.path.exists(cfg) else []
    try:  # shared libraries already mapped (libpython, libffi...) wherever they live
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split(None, 5)
                path = parts[5].rstrip() if len(parts) == 6 else ""
                if path.startswith("/") and (path.endswith(".so") or ".so." in os.path.basename(path)):
                    extra.append(os.path.dirname(path))
    except OSError:
        pass
    for p in sorted(set(extra), key=len):
        add(p)
    for f in ETC_FILES:
        add(f)
    for d in DEVICES:
        plan.append(("dev", "/dev/" + d, os.open("/dev/" + d, O_PATH | os.O_CLOEXEC)))
    return plan


def enter(job: dict, fail) -> list:
    """Stage 1: returns only in stage 3, inside the finished boundary, with the layers made.

    ``fail(reason)`` reports a setup failure on the result channel; stages 1 and 2 never
    return: they exit with stage 3's status.
    """
    without = set(job.get("without", ()))
    arch = _arch()
    if arch is None:
        raise SetupError("no sandbox for the %s architecture" % os.uname().machine)
    root = os.geteuid() == 0
    # A random uid per run: nothing else owns it, and rlimits counted per uid stay per run.
    host_id = 1_000_000 + int.from_bytes(os.urandom(4), "big") % 1_000_000_000 if root else None
    stage = next(p for p in NEW_ROOT_CANDIDATES if os.path.isdir(p) and not os.path.islink(p))
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r1)
        os.close(w2)
        try:
            layers = _stage2(job, arch, root, host_id, stage, without, w1, r2)
        except BaseException as exc:  # noqa: BLE001 - whatever broke, the code must not run
            fail("sandbox setup failed: %s" % (exc,))
            os._exit(70)
        return layers
    os.close(w1)
    os.close(r2)
    try:
        mode = os.read(r1, 1)
        if mode == b"u":
            uid, gid = (host_id, host_id) if root else (os.geteuid(), os.getegid())
            _write("/proc/%d/setgroups" % pid, "allow" if root else "deny")
            _write("/proc/%d/uid_map" % pid, "%d %d 1\n" % (SANDBOX_ID, uid))
            _write("/proc/%d/gid_map" % pid, "%d %d 1\n" % (SANDBOX_ID, gid))
        if mode:
            os.write(w2, b"g")
    except OSError as exc:
        fail("sandbox setup failed: user namespace id maps: %s" % exc)
        os.kill(pid, signal.SIGKILL)
    os.close(w2)
    _, status = os.waitpid(pid, 0)
    os._exit(exit_code(status))


def exit_code(status: int) -> int:
    """A wait status as a shell would report it (128 + signal for a killed process)."""
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- stage 2


def _stage2(job, arch, root, host_id, stage, without, w1, r2) -> list:
    layers = []
    lib = libc()
    if "userns" not in without and lib.unshare(NAMESPACES | CLONE_NEWUSER) == 0:
        mode = b"u"
        layers.append("userns")
    else:
        err = _fail("unshare(user, mount, pid, net, ipc, uts, cgroup namespaces)")
        if not root or lib.unshare(NAMESPACES) != 0:
            raise err
        mode = b"r"
    layers += ["mountns", "pidns", "netns", "ipcns", "utsns", "cgroupns"]
    os.write(w1, mode)
    os.close(w1)
    if os.read(r2, 1) != b"g":
        raise SetupError("the id maps were not written")
    os.close(r2)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    pid = os.fork()  # the first child of a new pid namespace is its init
    if pid == 0:
        return _stage3(job, arch, root, host_id, stage, mode, layers)
    os.closerange(0, 3)
    _, status = os.waitpid(pid, 0)
    os._exit(exit_code(status))


# ----------------------------------------------------------------------------- stage 3


def _stage3(job, arch, root, host_id, stage, mode, layers) -> list:
    binds = plan_binds()
    if mode == b"u":
        # The sandbox's own ids from here on (the caller's uid on the host, or the random one
        # for root): files the setup creates need an owner the namespace can name. The
        # capabilities inside the namespace stay until drop_capabilities.
        if root:
            os.setgroups([])
        os.setresgid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID)
        os.setresuid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=755")
    new = stage.rstrip("/")
    # The work dir first: a bind that happens to live under /tmp (a venv there) goes on top.
    os.mkdir(new + "/tmp", 0o700)
    disk = "size=%dm,nr_inodes=%d,mode=700" % (job["disk_mb"], job["inodes"])
    if mode == b"r":  # still real root here: the work dir belongs to the uid the code gets
        disk += ",uid=%d,gid=%d" % (host_id, host_id)
    _mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, disk)
    layers.append("tmpfs-work")
    os.mkdir(new + "/proc", 0o555)
    try:  # this pid namespace's own /proc: the host's processes are not in it
        _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        layers.append("private-proc")
    except SetupError:
        pass  # no /proc at all rather than the host's
    for kind, path, src in binds:
        target = new + path
        _makedirs(os.path.dirname(target))
        if kind == "link":
            os.symlink(src, target)
            continue
        if kind == "dir":
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        _mount("/proc/self/fd/%d" % src, target, None, MS_BIND | MS_REC)
        os.close(src)
        if kind == "dev":
            _restrict(target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)
        else:
            _restrict(target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(link, new + "/dev/" + name)
    _mount(None, new, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(new)
    if _syscall(arch["pivot_root"], b".", b".") != 0:
        raise _fail("pivot_root")
    if libc().umount2(b".", MNT_DETACH) != 0:
        raise _fail("detach the host's root")
    os.chdir("/tmp")
    layers.append("private-root")
    drop_capabilities(host_id if mode == b"r" else None)
    layers.append("no-capabilities")
    prctl(PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
    layers.append("no-new-privs")
    prctl(PR_SET_DUMPABLE, 0, "dumpable")
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the last credential change, which clears it
    return layers


def _makedirs(path: str) -> None:
    if not os.path.isdir(path):
        _makedirs(os.path.dirname(path))
        os.mkdir(path, 0o755)


def _restrict(target: str, attrs: int) -> None:
    """Set mount attributes on a bind and everything under it (mount_setattr, else remount)."""
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", attrs, 0, 0, 0), 32)
    if _syscall(442, -100, target.encode(), AT_RECURSIVE, attr, 32) == 0:
        return
    keep = os.statvfs(target).f_flag
    flags = MS_BIND | MS_REMOUNT
    for st_bit, ms_bit in ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, MS_NOATIME), (2048, MS_NODIRATIME), (4096, MS_RELATIME)):
        if keep & st_bit:
            flags |= ms_bit
    for attr_bit, ms_bit in ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC)):
        if attrs & attr_bit:
            flags |= ms_bit
    _mount(None, target, None, flags)


def drop_capabilities(switch_to: int | None = None) -> None:
    """Every capability gone for good: bounding and ambient sets, locked securebits, capset.

    ``switch_to`` (root without a user namespace) moves to that unprivileged uid and gid on the
    way, after the securebits are locked and before the last capabilities go.
    """
    lib = libc()
    for cap in range(64):
        if lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:
                break
            raise _fail("drop capability %d from the bounding set" % cap)
    lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if lib.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED, 0, 0, 0) != 0:
        raise _fail("securebits")
    if switch_to is not None:
        os.setgroups([])
        os.setresgid(switch_to, switch_to, switch_to)
        os.setresuid(switch_to, switch_to, switch_to)
    header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0), 8)
    data = ctypes.create_string_buffer(bytes(24), 24)
    if lib.capset(header, data) != 0:
        raise _fail("capset")


# ----------------------------------------------------------------------------- per-process layers


def set_limits(job: dict, nproc: int, strict: bool = True) -> None:
    """The worker's rlimits: CPU, address space, file size, open files, tasks, no core dumps.

    ``strict`` (the isolated tiers) raises when one cannot be set; the ``unsafe`` tier, which
    may run on a system without some of them (macOS has no enforced RLIMIT_AS), skips those.
    """
    cpu = int(job["cpu_s"])
    mem = int(job["memory_mb"]) * 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"])),
        (resource.RLIMIT_NOFILE, (job["nofile"], job["nofile"])),
        (resource.RLIMIT_NPROC, (nproc, nproc)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        try:
            resource.setrlimit(res, value)
        except (ValueError, OSError):
            if strict:
                raise
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing


LL_FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
LL_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read_file, read_dir
LL_FILE = (1 << 0) | (1 << 1) | (1 << 2)  # rights valid on a file: execute, write, read


def landlock(read_beneath: str, write_beneath: str, devices: tuple) -> str | None:
    """Filesystem reads, writes only under the work dir, no TCP, no signals or abstract sockets out.

    Returns the layer's name ("landlock-abiN"), or None when the kernel has no Landlock.
    """
    abi = _syscall(444, None, 0, 1)
    if abi < 1:
        return None
    fs = LL_FS_ABI1 | ((1 << 13) if abi >= 2 else 0) | ((1 << 14) if abi >= 3 else 0) | ((1 << 15) if abi >= 5 else 0)
    net = 0b11 if abi >= 4 else 0  # bind_tcp, connect_tcp: handled and never allowed
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals: only within this domain
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = ctypes.create_string_buffer(struct.pack("QQQ", fs, net, scoped)[:size], size)
    ruleset = _syscall(444, attr, size, 0)
    if ruleset < 0:
        raise _fail("landlock_create_ruleset")
    try:
        file_rights = LL_FILE | ((1 << 14) if abi >= 3 else 0) | ((1 << 15) if abi >= 5 else 0)
        rules = [(read_beneath, LL_READ), (write_beneath, fs)] + [(d, file_rights) for d in devices if os.path.exists(d)]
        for path, rights in rules:
            fd = os.open(path, O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
                if _syscall(445, ruleset, 1, rule, 0) != 0:
                    raise _fail("landlock_add_rule %s" % path)
            finally:
                os.close(fd)
        if _syscall(446, ruleset, 0) != 0:
            raise _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return "landlock-abi%d" % abi


def seccomp(deny_processes: bool) -> str | None:
    """A syscall filter: the kernel surface sandboxes do not need, sockets, optionally fork.

    The base filter (supervisor and worker) refuses with EPERM: sockets, ptrace and reading
    other processes' memory, every namespace and mount call, keyrings, BPF, perf, io_uring
    (which would bypass this filter), module and kexec calls, memfd and SysV shared memory;
    ``clone`` with any namespace flag; ``clone3`` answers ENOSYS so that libc falls back to
    ``clone``, whose flags a filter can read. Another ABI (i386 calls from x86_64) kills the
    process. ``deny_processes`` (the worker) also refuses every new process (threads stay).
    Returns the layer's name, or None on an architecture it has no table for.
    """
    arch = _arch()
    if arch is None:
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill, eperm, enosys = 0x7FFF0000, 0x80000000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch["arch"]), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if arch["x32"]:
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]
    denied = list(arch["deny"]) if not deny_processes else []
    if deny_processes:
        denied += [n for n in (arch["fork"], arch["vfork"]) if n is not None]
    for nr in denied:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, arch["clone3"]), (ret, 0, 0, enosys)]
    block = [(ld, 0, 0, 16)]
    if deny_processes:
        block += [(jset, 1, 0, CLONE_THREAD), (ret, 0, 0, eperm)]
    else:
        block += [(jset, 0, 1, ANY_NAMESPACE), (ret, 0, 0, eperm)]
    block += [(ret, 0, 0, allow)]
    prog += [(jeq, 0, len(block), arch["clone"])] + block + [(ret, 0, 0, allow)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.addressof(buf))
    if libc().prctl(PR_SET_SECCOMP, 2, ctypes.addressof(fprog), 0, 0) != 0:
        raise _fail("seccomp")
    return "seccomp" if not deny_processes else "seccomp-no-fork"
