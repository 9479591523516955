"""Run untrusted, model-written Python against an item's tests in a contained child process.

Why a separate process with several layers: the code comes from a model and may loop, fork,
allocate without bound, read secrets, write files or phone home. Python cannot sandbox itself,
so the kernel does the real work where it can and an audit hook backs it up where it cannot.

What each run gets (``isolation`` in the result says which tier was reached):

* always: a fresh temporary working directory (also ``HOME`` and ``TMPDIR``), removed
  afterwards; an environment built from scratch (``PATH``, ``LANG``, ``HOME``, ``TMPDIR`` and
  nothing inherited, so no API keys); ``-I -S`` (no site-packages, no ``PYTHON*`` variables);
  stdin from ``/dev/null``; its own session, so the wall-clock timeout kills the whole
  process group; rlimits on CPU time, address space, file size, open files and process count
  (``RLIMIT_NPROC`` 0: no fork or thread for an unprivileged uid); ``PR_SET_NO_NEW_PRIVS``;
  output captured to a file and truncated; an audit hook (PEP 578) that refuses process
  creation, sockets, ctypes, signals to other processes, raising rlimits, writes outside the
  working directory and reading other processes' ``/proc`` entries.
* ``full`` (running as root with ``CAP_SYS_ADMIN``, as here and in CI): new network and mount
  namespaces (no interface is up, so even 127.0.0.1 is unreachable); fresh size-capped tmpfs
  over ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock``, so a write there vanishes with
  the child; the working directory bind-mounted back in place; the standard library
  bind-mounted read-only where an unprivileged user can read it; then a drop to a random
  unprivileged uid/gid with no supplementary groups, so file permissions stop writes elsewhere,
  ``RLIMIT_NPROC`` is enforced and other processes' ``/proc/*/environ`` are unreadable.
* ``basic`` (no namespaces, e.g. an unprivileged user or a container without
  ``CAP_SYS_ADMIN``): the "always" list only. As root in this tier ``RLIMIT_NPROC`` is not
  enforced by the kernel and file permissions do not stop writes, so the audit hook is the
  only guard against fork, network and stray writes.

Not defended: the audit hook is a tripwire, not a security boundary (Python documents this);
code that sets out to defeat it can, so in the ``basic`` tier deliberately hostile code may
escape. In any tier, code written to game the harness (e.g. by forging the result message
after introspecting the bootstrap's frames) can fake a pass; the sandbox contains damage, it
does not certify honesty. Disk use inside the working directory is bounded per file
(``RLIMIT_FSIZE``), not in total. No seccomp filter is installed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

MAX_OUTPUT_BYTES = 4096
MAX_REASON_CHARS = 300
FILE_SIZE_LIMIT = 16 * 1024 * 1024
OPEN_FILES_LIMIT = 64
_RESULT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed test run.

    ``reason`` is one of "passed", "syntax error: …", "timeout", "assertion failed: …",
    "crash: …", "memory limit", "blocked: …". ``output`` is the start of the child's
    stdout+stderr; ``isolation`` is "full", "netns" or "basic" (see the module docstring).
    """

    passed: bool
    reason: str
    duration_s: float
    output: str = ""
    isolation: str = ""


# The bootstrap runs in the child as ``python -I -S -c _BOOT JOB_FILE RESULT_FD``. It is kept
# in one string so nothing on disk that the child could edit is executed.
_BOOT = r'''
import builtins, json, os, resource, signal, sys

BLOCK_PREFIX = "blocked by sandbox: "


def main():
    job_path, result_fd = sys.argv[1], int(sys.argv[2])
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    os.unlink(job_path)
    nonce = job["nonce"]

    def report(reason, status="fail"):
        data = json.dumps({"nonce": nonce, "status": status, "reason": reason[:300], "isolation": isolation})
        os.write(result_fd, data.encode("utf-8")[:60000])
        os.close(result_fd)

    workdir = os.getcwd()
    isolation = "basic"
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if job["isolate"]:
            isolation = isolate(workdir, job, ctypes, libc)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binary can raise privileges
    except (ImportError, OSError, AttributeError):
        pass
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    limit(job)
    blocked = []
    if job["hook"]:
        install_hook(os.path.realpath(workdir), blocked)
    sys.stdout.flush()
    run(job, report, blocked)


def isolate(workdir, job, ctypes, libc):
    """Namespaces, private tmpfs and a uid drop; returns the tier reached.

    "full" when everything held, "netns" when the namespaces exist but a later step failed
    (the child then stays root), "basic" when no namespace could be made.
    """
    if os.geteuid() != 0:
        return "basic"
    CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18

    def mount(src, target, fstype, flags, data):
        enc = lambda s: s.encode() if s is not None else None
        if libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) != 0:
            raise OSError(ctypes.get_errno(), "mount " + target)

    try:
        if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
            return "basic"
        mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        uid = job["uid"]
        os.chown(".", uid, uid)
        os.chmod(".", 0o700)
        for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):
            if os.path.isdir(d) and not os.path.islink(d):
                mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
        # The tmpfs may now hide the working directory: bind it back at the same path.
        if not os.path.isdir(workdir):
            os.makedirs(workdir, mode=0o700)
            mount("/proc/self/cwd", workdir, None, MS_BIND, None)
            os.chdir(workdir)
        # The interpreter may live where an unprivileged uid cannot read (e.g. /root/.pyenv).
        stdlib = os.path.dirname(os.__file__)
        libview = "/tmp/.taxcheck-stdlib"
        os.makedirs(libview)
        mount(stdlib, libview, None, MS_BIND | MS_REC, None)
        mount(None, libview, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, None)
        moved = lambda p: p.replace(stdlib, libview, 1) if isinstance(p, str) and p.startswith(stdlib) else p
        sys.path[:] = [moved(p) for p in sys.path]
        for mod in list(sys.modules.values()):  # packages already imported find submodules here
            path = getattr(mod, "__path__", None)
            if isinstance(path, list):
                path[:] = [moved(p) for p in path]
        sys.path_importer_cache.clear()
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    except OSError:
        # Part-way through: the network namespace is in place, the uid drop is not.
        return "netns" if os.geteuid() == 0 else "full"
    return "full"


def limit(job):
    cpu = job["cpu_s"]
    mem = job["memory_mb"] * 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"])),
        (resource.RLIMIT_NOFILE, (job["nofile"], job["nofile"])),
        (resource.RLIMIT_NPROC, (0, 0)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        try:
            resource.setrlimit(res, value)
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing


def install_hook(root, blocked):
    sep = os.sep
    own = str(os.getpid())
    deny_prefixes = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "pty.", "resource.setrlimit", "resource.prlimit", "winreg.")
    deny_exact = {"os.fork", "os.forkpty", "os.system", "os.startfile", "os.setuid", "os.setgid", "sys.addaudithook"}
    deny_imports = {"ctypes", "_ctypes", "_posixsubprocess", "cffi", "_testcapi", "_xxsubinterpreters"}
    path_events = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.chown", "shutil.make_archive", "shutil.unpack_archive"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    fspath, realpath, fsdecode = os.fspath, os.path.realpath, os.fsdecode

    def deny(what):
        blocked.append(what)
        raise PermissionError(BLOCK_PREFIX + what)

    def inside(path):
        if isinstance(path, int):
            return True
        try:
            p = realpath(fsdecode(fspath(path)))
        except Exception:
            return False
        return p == root or p.startswith(root + sep) or p == "/dev/null"

    def foreign_proc(path):
        if isinstance(path, int):
            return False
        try:
            p = realpath(fsdecode(fspath(path)))
        except Exception:
            return True
        parts = p.split(sep)
        return len(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and parts[2] != own

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & write_flags)
            if writing and not inside(path):
                deny("write outside the working directory")
            if foreign_proc(path):
                deny("another process's /proc entry")
        elif event in deny_exact or event.startswith(deny_prefixes):
            deny(event)
        elif event == "import" and args[0].partition(".")[0] in deny_imports:
            deny("import " + args[0])
        elif event in path_events:
            for a in args[:2]:
                if isinstance(a, (str, bytes)) or hasattr(a, "__fspath__"):
                    if not inside(a):
                        deny(event + " outside the working directory")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            if event != "signal.pthread_kill" and str(args[0]) not in (own, "0"):
                deny(event)

    sys.addaudithook(hook)


def describe(exc):
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return text.replace("\n", " ")[:200]


def classify(exc, blocked, tests_src):
    seen, e = set(), exc
    while e is not None and id(e) not in seen:  # the hook's refusal may be wrapped by the code
        seen.add(id(e))
        if isinstance(e, PermissionError) and str(e).startswith(BLOCK_PREFIX):
            return "blocked: " + str(e)[len(BLOCK_PREFIX):]
        e = e.__cause__ or e.__context__
    if blocked:
        return "blocked: " + blocked[0]
    if isinstance(exc, MemoryError):
        return "memory limit"
    if isinstance(exc, AssertionError):
        line, tb = None, exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<tests>":
                line = tb.tb_lineno
            tb = tb.tb_next
        lines = tests_src.splitlines()
        where = lines[line - 1].strip() if line and 0 < line <= len(lines) else ""
        msg = str(exc).replace("\n", " ")
        text = " | ".join(x for x in (where, msg) if x)
        return ("assertion failed: " + text) if text else "assertion failed"
    return "crash: " + describe(exc)


def run(job, report, blocked):
    code, tests, entry = job["code"], job["tests"], job["entry_point"]
    try:
        solution = compile(code, "<solution>", "exec")
    except (SyntaxError, ValueError) as exc:
        where = " (line %s)" % exc.lineno if getattr(exc, "lineno", None) else ""
        report("syntax error: %s%s" % (getattr(exc, "msg", None) or exc, where))
        return
    try:
        tests_code = compile(tests, "<tests>", "exec")
    except (SyntaxError, ValueError) as exc:
        report("crash: the tests do not compile: %s" % describe(exc))
        return
    ns = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(solution, ns)
    except BaseException as exc:
        report(classify(exc, blocked, ""))
        return
    if not callable(ns.get(entry)):
        report("crash: no function named %r is defined" % entry)
        return
    tns = dict(ns, __name__="tests")
    try:
        exec(tests_code, tns)
        check = tns.get("check")
        if callable(check) and check is not ns.get("check"):
            check(tns[entry])
    except BaseException as exc:
        report(classify(exc, blocked, tests))
        return
    report("passed", status="passed")


main()
'''


def _plain_rmtree(path: str) -> None:
    """Remove the working directory even if the child made parts of it unwritable."""

    def fix(func, p, _exc):  # noqa: ANN001 - shutil's onerror signature
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def _read_all(fd: int, limit: int) -> bytes:
    os.set_blocking(fd, False)
    chunks, size = [], 0
    while size < limit:
        try:
            chunk = os.read(fd, min(65536, limit - size))
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _signal_reason(rc: int) -> str:
    sig = -rc
    if sig == signal.SIGXCPU:
        return "timeout"
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = str(sig)
    return f"crash: killed by {name}"


def run_tests(
    code: str,
    tests: str,
    entry_point: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    _hook: bool = True,
    _isolate: bool = True,
) -> SandboxResult:
    """Run ``code`` then ``tests`` (asserts, or a HumanEval ``check(candidate)``) in a sandbox.

    Never raises for anything the code does. ``_hook=False`` and ``_isolate=False`` exist only
    for the tests: to show what the kernel layers stop on their own, and what the ``basic``
    tier (no namespaces, no uid drop) stops.
    """
    start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="taxcheck-sbx-")
    read_fd, write_fd = os.pipe()
    nonce = secrets.token_hex(16)
    job = {
        "nonce": nonce,
        "code": code,
        "tests": tests,
        "entry_point": entry_point,
        "cpu_s": int(timeout_s) + 1,
        "memory_mb": memory_mb,
        "fsize": FILE_SIZE_LIMIT,
        "nofile": OPEN_FILES_LIMIT,
        "isolate": _isolate and sys.platform.startswith("linux"),
        "hook": _hook,
        # A random unprivileged id per run: RLIMIT_NPROC counts per uid, and parallel runs
        # must not count against each other.
        "uid": 1_000_000 + secrets.randbelow(1_000_000_000),
    }
    job_path = os.path.join(workdir, ".job.json")
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    timed_out = False
    rc: int | None = None
    try:
        with open(job_path, "w", encoding="utf-8") as fh:
            json.dump(job, fh)
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _BOOT, job_path, str(write_fd)],
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            finally:
                os.close(write_fd)
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:  # the whole session: anything the code managed to start goes too
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                rc = proc.wait()
            raw = _read_all(read_fd, _RESULT_LIMIT)
            out.seek(0)
            output = out.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
    finally:
        os.close(read_fd)
        _plain_rmtree(workdir)
    duration = time.monotonic() - start
    msg = _parse_message(raw, nonce)
    isolation = str(msg.get("isolation", "")) if msg else ""
    if timed_out:
        return SandboxResult(False, "timeout", duration, output, isolation)
    if msg is not None:
        passed = msg.get("status") == "passed" and rc == 0
        reason = str(msg.get("reason", ""))[:MAX_REASON_CHARS]
        if msg.get("status") == "passed" and rc != 0:
            passed, reason = False, f"crash: exited with code {rc} after passing"
        return SandboxResult(passed, reason, duration, output, isolation)
    if rc is not None and rc < 0:
        reason = _signal_reason(rc)
    elif "MemoryError" in output:
        reason = "memory limit"
    else:
        reason = f"crash: exited with code {rc} without a result"
    return SandboxResult(False, reason, duration, output, isolation)


def _parse_message(raw: bytes, nonce: str) -> dict | None:
    try:
        msg = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(msg, dict) or msg.get("nonce") != nonce:
        return None
    return msg


__all__ = ["SandboxResult", "run_tests"]
