"""Run model-written Python against an item's tests behind a real isolation boundary, or not at all.

Why: the code comes from a model and may loop, fork, allocate, read secrets, write files, phone
home or try to game the grader. Python cannot sandbox itself, so the boundary is the kernel's
(or a container engine's), and where there is none the code is not run: the item is unscored,
with the reason and how to get a sandbox, never silently run on the user's machine.

Tiers (``SandboxChoice.tier`` and ``SandboxResult.isolation``; stable strings for run files):

``userns``   an ordinary user on Linux: user, mount, pid, network, IPC, UTS and cgroup
             namespaces; a root of its own (the host's ``/usr``, ``/lib*``, the interpreter's
             prefix and a few ``/etc`` files read-only, nothing else of the host); a fresh
             ``/proc`` that lists only the sandbox; a size- and inode-capped tmpfs at ``/tmp``
             as the only writable place; a network namespace whose one interface, loopback,
             is down; every capability dropped; ``no_new_privs``; where the kernel has them,
             Landlock (writes only under ``/tmp``, no TCP) and seccomp (no sockets, no new
             processes, no namespaces, no ptrace); rlimits. The sandbox's pid 1 is its supervisor: when it exits the kernel
             kills everything left in the namespace.
``root-ns``  the same when taxcheck runs as root, with the sandbox mapped to a random unused
             uid so that nothing in it is root on the host (also without user namespaces, if
             root has ``CAP_SYS_ADMIN``).
``docker``   ``docker run`` (``podman``: ``podman run``): no network, read-only image, tmpfs
             work dir, memory/pids/CPU limits, no capabilities, ``no-new-privileges``, uid
             65534, removed afterwards (``sandbox_oci``). Used when asked, or by ``auto`` when
             namespaces are unavailable and a working runtime is on PATH. Image:
             ``$TAXCHECK_SANDBOX_IMAGE`` (default ``python:3.12-slim``, never pulled by us).
``unsafe``   only on explicit request: the code runs as the user, in a temporary directory,
             with rlimits and an audit hook (a tripwire that hostile code can defeat). No
             total disk cap, no filesystem or network boundary.
``none``     nothing ran (``executed`` is False): no boundary here, or ``sandbox="none"``.

In every tier that runs code, the tests never share a process with it: the worker runs the
solution, the supervisor runs the tests and compares plain values rebuilt from what the worker
sent (``sandbox_harness``, ``sandbox_worker``), and the verdict travels on a descriptor the
worker never holds, stamped with a per-run nonce. Cleanup cannot be defeated: the namespace
and OCI tiers keep the work dir on a tmpfs that dies with the sandbox; ``unsafe`` removes its
directory without recursion (``remove_tree``).
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
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from taxcheck.grade import sandbox_harness, sandbox_kernel, sandbox_oci, sandbox_worker

REQUESTS = ("auto", "namespaces", "docker", "podman", "unsafe", "none")
TIERS = ("userns", "root-ns", "docker", "podman", "unsafe", "none")


def sandbox_request(sandbox: str, unsafe_run_code: bool) -> str:
    """The ``--sandbox`` / ``--unsafe-run-code`` pair as one request for ``choose``."""
    from taxcheck.errors import UserError

    if sandbox not in REQUESTS or sandbox == "unsafe":
        raise UserError(f"--sandbox {sandbox!r}: one of {', '.join(r for r in REQUESTS if r != 'unsafe')} "
                        "(to run code with no boundary, say --unsafe-run-code)")
    if unsafe_run_code and sandbox != "auto":
        raise UserError(f"--unsafe-run-code and --sandbox {sandbox} contradict each other; give one")
    return "unsafe" if unsafe_run_code else sandbox
MAX_OUTPUT_BYTES = 4096
MAX_REASON_CHARS = 300
FILE_SIZE_LIMIT = 16 * 1024 * 1024
OPEN_FILES_LIMIT = 64
TASKS_LIMIT = 16
DISK_MB = 64
INODES = 16384
_RESULT_LIMIT = 64 * 1024
# The parent's backstop beyond the solution's own timeout (which the supervisor enforces):
# setting up, the worker's start (up to sandbox_harness.STARTUP_S), a container's start.
_SETUP_GRACE_S = {"docker": 120.0, "podman": 120.0}
_DEFAULT_GRACE_S = 45.0
HOW_TO_ENABLE = (
    "to run model code, enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
    "and user.max_user_namespaces>0; on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0), "
    "or install Docker or Podman (--sandbox docker|podman), or accept the risk with --unsafe-run-code"
)


@dataclass(frozen=True)
class SandboxChoice:
    """Which tier a request resolves to here; ``why`` is one line a user can act on."""

    tier: str
    available: bool
    why: str


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed test run.

    ``reason`` is one of "passed", "syntax error: …", "timeout", "assertion failed: …",
    "crash: …", "memory limit", "blocked: …" (``unsafe`` tier) or "not executed: …".
    ``executed`` is False only when the code never started (no boundary, or setting it up
    failed before the solution existed in any process): such an item is unscored, not wrong.
    ``output`` is the start of the solution's stdout+stderr; ``isolation`` the tier;
    ``layers`` the mechanisms that were actually in place.
    """

    passed: bool
    reason: str
    duration_s: float
    output: str = ""
    isolation: str = ""
    executed: bool = True
    layers: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- choosing


def choose(requested: str = "auto") -> SandboxChoice:
    """The strongest boundary for ``requested`` that works here, found by actually using it.

    "auto": namespaces, else a working Docker, else a working Podman, else ``none``;
    "namespaces", "docker", "podman": that one or ``none``; "unsafe" and "none" as named.
    Probes run once per process and configuration.
    """
    if requested not in REQUESTS:
        raise ValueError(f"unknown sandbox {requested!r}: use one of {', '.join(REQUESTS)}")
    if requested == "none":
        return SandboxChoice("none", False, "code execution is turned off (sandbox 'none')")
    if requested == "unsafe":
        return SandboxChoice("unsafe", True, "no isolation boundary: model code runs as you, with resource limits and an audit hook only")
    if requested == "namespaces":
        ns = _namespaces()
        return ns if ns.available else SandboxChoice("none", False, f"{ns.why}; {HOW_TO_ENABLE}")
    if requested in ("docker", "podman"):
        return _oci(requested, shutil.which(requested), sandbox_oci.image())
    ns = _namespaces()
    if ns.available:
        return ns
    tried = [ns.why]
    for runtime in ("docker", "podman"):
        path = shutil.which(runtime)
        if path:
            c = _oci(runtime, path, sandbox_oci.image())
            if c.available:
                return c
            tried.append(c.why)
    return SandboxChoice("none", False, f"no sandbox available ({'; '.join(tried)}); {HOW_TO_ENABLE}")


_probe_lock = threading.Lock()


def _namespaces() -> SandboxChoice:
    if not sys.platform.startswith("linux"):
        return SandboxChoice("none", False, f"Linux namespaces do not exist on {sys.platform}")
    return _probe("root-ns" if os.geteuid() == 0 else "userns", os.geteuid())


def _oci(runtime: str, path: str | None, image: str) -> SandboxChoice:
    if path is None:
        return SandboxChoice("none", False, f"{runtime} is not on PATH")
    return _probe(runtime, path, image)


@lru_cache(maxsize=None)
def _probe(tier: str, *key: object) -> SandboxChoice:
    """Run a one-line solution in ``tier``; available only if it passed there."""
    with _probe_lock:
        r = _run_in(tier, "def f():\n    return 1\n", "assert f() == 1", "f", timeout_s=20.0, memory_mb=256, disk_mb=8, without=())
    if r.passed and r.isolation == tier:
        return SandboxChoice(tier, True, _DESCRIBE[tier])
    detail = r.reason.removeprefix("not executed: ")
    said = [line.strip() for line in r.output.splitlines() if line.strip()]
    if said and tier in ("docker", "podman"):
        detail = said[-1][:200]  # the client's own words, e.g. "Cannot connect to the Docker daemon"
    if tier in ("docker", "podman"):
        return SandboxChoice("none", False, f"{tier} is installed but cannot run the sandbox ({detail})")
    return SandboxChoice("none", False, f"Linux namespaces are not usable here ({detail})")


_DESCRIBE = {
    "userns": "user namespaces: private root, no network, tmpfs work dir, no capabilities",
    "root-ns": "namespaces as root, code mapped to an unprivileged uid: private root, no network, tmpfs work dir",
    "docker": "docker container: no network, read-only image, tmpfs work dir, no capabilities",
    "podman": "podman container: no network, read-only image, tmpfs work dir, no capabilities",
}


# ----------------------------------------------------------------------------- running


def run_tests(
    code: str,
    tests: str,
    entry_point: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    sandbox: str | SandboxChoice = "auto",
    disk_mb: int = DISK_MB,
    _without: tuple[str, ...] = (),
) -> SandboxResult:
    """Run ``code`` then ``tests`` (asserts, or a HumanEval ``check(candidate)``) in a sandbox.

    ``sandbox`` is a request for ``choose`` or a ``SandboxChoice`` already made (so that a run
    probes once and records the tier it used). Never raises for anything the code does.
    ``_without`` turns single layers off ("seccomp", "landlock", "userns") so that the tests
    can show what the others hold on their own; nothing else should pass it.
    """
    choice = sandbox if isinstance(sandbox, SandboxChoice) else choose(sandbox)
    if not choice.available:
        return SandboxResult(False, f"not executed: {choice.why}", 0.0, "", "none", False)
    return _run_in(choice.tier, code, tests, entry_point, timeout_s=timeout_s, memory_mb=memory_mb, disk_mb=disk_mb, without=_without)


@lru_cache(maxsize=1)
def _modules() -> tuple[tuple[str, str], ...]:
    """The child's code, as text: nothing on disk that a sandboxed process could edit runs."""
    mods = (sandbox_kernel, sandbox_worker, sandbox_harness)
    return tuple((m.__name__, Path(m.__file__).read_text(encoding="utf-8")) for m in mods)


def _run_in(tier: str, code: str, tests: str, entry_point: str, *, timeout_s: float, memory_mb: int, disk_mb: int, without: tuple[str, ...]) -> SandboxResult:
    start = time.monotonic()
    nonce = secrets.token_hex(16)
    workdir = tempfile.mkdtemp(prefix="taxcheck-sbx-") if tier == "unsafe" else "/tmp"
    job = {
        "nonce": nonce, "tier": tier, "code": code, "tests": tests, "entry_point": entry_point,
        "timeout_s": timeout_s, "cpu_s": int(timeout_s) + 1, "memory_mb": memory_mb,
        "disk_mb": disk_mb, "inodes": INODES, "fsize": FILE_SIZE_LIMIT, "nofile": OPEN_FILES_LIMIT,
        "nproc": TASKS_LIMIT, "workdir": workdir, "without": list(without),
    }
    payload = json.dumps({"modules": _modules(), "main": sandbox_harness.__name__, "job": job}).encode("utf-8")
    stub = ["-I", "-S", "-B", "-c", sandbox_harness.STUB]
    name = f"taxcheck-sbx-{nonce[:16]}"
    if tier in ("docker", "podman"):
        argv = sandbox_oci.command(tier, image=sandbox_oci.image(), name=name, memory_mb=memory_mb, disk_mb=disk_mb) + ["python3", *stub]
        env, cwd = sandbox_oci.client_env(), None
    else:
        argv = [os.path.realpath(sys.executable), *stub]
        env, cwd = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}, (workdir if tier == "unsafe" else "/")
    timed_out, rc, raw = False, None, b""
    try:
        with tempfile.TemporaryFile(prefix="taxcheck-out-") as out:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out, env=env, cwd=cwd, start_new_session=True)
            except OSError as exc:
                return SandboxResult(False, f"not executed: cannot start the sandbox: {exc}"[:MAX_REASON_CHARS], time.monotonic() - start, "", "none", False)
            try:
                raw, _ = proc.communicate(payload, timeout=timeout_s + _SETUP_GRACE_S.get(tier, _DEFAULT_GRACE_S))
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:  # the whole session: anything the code managed to start goes too
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                if timed_out and tier in ("docker", "podman"):
                    sandbox_oci.remove(tier, name)
                if timed_out:
                    try:
                        raw += proc.communicate(timeout=5)[0] or b""
                    except (subprocess.TimeoutExpired, OSError):
                        pass
                for stream in (proc.stdin, proc.stdout):
                    try:
                        stream.close()
                    except OSError:  # a payload cut short by the kill
                        pass
                rc = proc.wait()
            out.seek(0)
            output = out.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
    finally:
        if tier == "unsafe":
            remove_tree(workdir)
    return _result(_message(raw[:_RESULT_LIMIT], nonce), rc, timed_out, output, tier, time.monotonic() - start)


def _message(raw: bytes, nonce: str) -> dict | None:
    for line in reversed(raw.decode("utf-8", "replace").splitlines()):
        try:
            msg = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(msg, dict) and msg.get("nonce") == nonce:
            return msg
    return None


def _result(msg: dict | None, rc: int | None, timed_out: bool, output: str, tier: str, duration: float) -> SandboxResult:
    if msg is not None:
        layers = tuple(str(x) for x in msg.get("layers") or ())
        reason = str(msg.get("reason", ""))[:MAX_REASON_CHARS]
        if msg.get("status") == "unavailable" or msg.get("executed") is False:
            return SandboxResult(False, f"not executed: {reason}", duration, output, "none", False, layers)
        passed = msg.get("status") == "passed" and rc == 0
        if msg.get("status") == "passed" and rc != 0:
            reason = f"crash: the sandbox exited with code {rc} after passing"
        return SandboxResult(passed, reason, duration, output, tier, True, layers)
    if timed_out:
        return SandboxResult(False, "timeout", duration, output, tier, True)
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return SandboxResult(False, f"crash: the sandbox was killed by {name}", duration, output, tier, True)
    return SandboxResult(False, f"crash: the sandbox exited with code {rc} without a result", duration, output, tier, True)


# ----------------------------------------------------------------------------- cleanup


def remove_tree(path: str) -> bool:
    """Delete a directory tree that hostile code built; True when nothing is left.

    Why not ``shutil.rmtree``: it recurses (1,200 nested directories raise ``RecursionError``)
    and gives up on directories made unreadable. This walks without recursion and without
    long paths: the children of each subdirectory are renamed up into the top directory, so
    the tree is never deeper than two levels while it goes; modes are restored as it goes.
    Symlinks are removed, never followed.
    """
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        os.fchmod(top, stat.S_IRWXU)
        progress = True
        while progress:
            progress = False
            for entry in os.listdir(top):
                progress |= _remove_entry(top, entry)
    except OSError:
        pass
    finally:
        os.close(top)
    try:
        os.rmdir(path)
    except OSError:
        return not os.path.lexists(path)
    return True


def _remove_entry(top: int, name: str) -> bool:
    """Unlink a file, or move a directory's children up into ``top`` and remove it."""
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=top)
            return True
        _chmod_dir(top, name)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
        try:
            for child in os.listdir(sub):
                if stat.S_ISDIR(os.stat(child, dir_fd=sub, follow_symlinks=False).st_mode):
                    _chmod_dir(sub, child)  # moving a directory rewrites its "..": needs u+w
                os.rename(child, f".taxcheck-rm-{secrets.token_hex(8)}", src_dir_fd=sub, dst_dir_fd=top)
        finally:
            os.close(sub)
        os.rmdir(name, dir_fd=top)
        return True
    except OSError:
        return False


def _chmod_dir(top: int, name: str) -> None:
    """u+rwx on a directory named relative to ``top``, without following a symlink."""
    if sys.platform.startswith("linux"):
        handle = os.open(name, sandbox_kernel.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY, dir_fd=top)
        try:
            os.chmod(f"/proc/self/fd/{handle}", stat.S_IRWXU)
        finally:
            os.close(handle)
    else:
        os.chmod(name, stat.S_IRWXU, dir_fd=top, follow_symlinks=False)


__all__ = ["REQUESTS", "TIERS", "SandboxChoice", "SandboxResult", "choose", "remove_tree", "run_tests"]
