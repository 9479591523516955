"""The supervisor: puts the boundary up, starts the worker, runs the tests, reports one verdict.

Runs as the sandbox's first process (``python -I -S -B -c STUB``, the payload on stdin) and,
in the namespace tiers, ends up as pid 1 of the sandbox's pid namespace. The tests execute
here, never in the worker: every name the solution defines is a ``Remote`` whose calls go to
the worker over a pipe and whose results come back as fresh built-in values (see
``sandbox_worker``). The verdict leaves on a descriptor the worker never holds (the worker's
stdout and stderr are the output file, and this process is undumpable, so
``/proc/<pid>/fd`` and ``/proc/<pid>/mem`` are closed to it), stamped with the run's nonce.

Anything the worker does wrong is final: a protocol violation, a death, a timeout or a
sandbox refusal (``unsafe`` tier) marks the run failed however the tests go on, so a test
that swallows errors cannot be made to pass by breaking the harness.

Shipped as source text like ``sandbox_kernel``: standard library only, Python >= 3.8.
"""

from __future__ import annotations

import builtins
import fcntl
import importlib
import json
import os
import resource
import select
import signal
import sys
import time

from taxcheck.grade import sandbox_kernel as kernel
from taxcheck.grade import sandbox_worker as wire

MAX_REASON = 300
STARTUP_S = 30.0  # for the worker's interpreter to start, however loaded the machine
DEVICES = tuple("/dev/" + d for d in kernel.DEVICES)
# Modules a solution imported are imported here too, for tests that use them unimported;
# only these, so that a name the worker sends cannot make this process import, say,
# ``antigravity`` (which opens a browser) outside any hook in the unsafe tier.
IMPORTABLE = frozenset(
    "array bisect cmath collections copy dataclasses datetime decimal enum fractions functools "
    "heapq itertools json math numbers operator random re statistics string textwrap typing "
    "unicodedata".split()
)
_MUTABLE = (list, dict, set, bytearray)
# What decoding the worker's words may raise: each one ends the run as a protocol violation.
_BAD_INPUT = (wire.ProtocolError, RecursionError, MemoryError)
LINUX = sys.platform.startswith("linux")


class Broken(BaseException):
    """The worker can no longer be trusted to answer; final for the run (see module doc)."""


class RemoteExit(BaseException):
    """The solution raised SystemExit, KeyboardInterrupt or another non-``Exception``."""

    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg)
        self.name = name


class Remote:
    """A solution object that stays in the worker: calls and a few protocols go over the wire.

    It has no ``__eq__``, so it equals only itself: no solution object passes for a value.
    """

    __slots__ = ("_link", "_id", "_text", "__weakref__")

    def __init__(self, link: Link, ident: int, text: str) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_text", text)

    def __call__(self, *args, **kwargs):
        return self._link.call(self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name not in ("__name__", "__qualname__", "__doc__"):
            raise AttributeError(name)
        return self._link.request({"op": "getattr", "target": self._ref(), "name": name})

    def _ref(self) -> dict:
        return {"h": [self._id, ""]}

    def _op(self, op: str, *args):
        return self._link.request({"op": op, "target": self._ref(), "args": self._link.codec.encode(list(args))})

    def __len__(self):
        return self._op("len")

    def __getitem__(self, key):
        return self._op("getitem", key)

    def __setitem__(self, key, value):
        self._op("setitem", key, value)

    def __delitem__(self, key):
        self._op("delitem", key)

    def __contains__(self, key):
        return self._op("contains", key)

    def __iter__(self):
        return iter(self._op("iter"))

    def __bool__(self):
        return self._op("bool")

    def __str__(self):
        return self._op("str")

    def __repr__(self):
        return self._text


class Link:
    """The supervisor's end of the worker's pipes, with the run's deadline on every wait."""

    def __init__(self, pid: int, to_worker: int, from_worker: int, deadline: float, hook: bool) -> None:
        self.pid, self.to_w, self.from_w, self.deadline, self.hook = pid, to_worker, from_worker, deadline, hook
        os.set_blocking(to_worker, False)
        os.set_blocking(from_worker, False)
        self.broken = None
        self.remotes: dict = {}
        self.callbacks: list = []
        self.codec = wire.Codec(self._out, self._in)

    # -- values
    def _out(self, v, depth: int):
        if isinstance(v, Remote):
            return v._ref()
        if callable(v):
            self.callbacks.append(v)
            return {"cb": len(self.callbacks) - 1}
        if hasattr(type(v), "__next__") and hasattr(type(v), "__iter__"):
            items = []
            for item in v:
                if len(items) >= wire.MAX_ITEMS:
                    raise ValueError("iterator too long to pass to the solution")
                items.append(self.codec.encode(item, depth))
            return {"it": items}
        raise TypeError("the tests passed a %s to the solution; only plain data, callables and the solution's own objects cross the sandbox" % type(v).__name__)

    def _in(self, tag: str, val):
        if tag == "cb":
            if type(val) is not int or not 0 <= val < len(self.callbacks):
                raise wire.ProtocolError("unknown callable")
            return self.callbacks[val]
        if type(val) is not list or len(val) != 2 or type(val[0]) is not int or type(val[1]) is not str:
            raise wire.ProtocolError("bad handle")
        if val[0] not in self.remotes:
            self.remotes[val[0]] = Remote(self, val[0], val[1][:200])
        return self.remotes[val[0]]

    # -- frames
    def _wait(self, fd: int, write: bool) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.fail("timeout")
        readable, writable, _ = select.select([] if write else [fd], [fd] if write else [], [], left)
        if not (readable or writable):
            self.fail("timeout")

    def send(self, obj) -> None:
        try:
            view = memoryview(wire.encode_frame(obj))
        except wire.ProtocolError as exc:
            raise TypeError("arguments too large to pass to the solution: %s" % exc)
        while view:
            self._wait(self.to_w, True)
            try:
                view = view[os.write(self.to_w, view):]
            except BlockingIOError:
                continue
            except OSError:
                self.fail(self._death())

    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            self._wait(self.from_w, False)
            try:
                chunk = os.read(self.from_w, min(n - got, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                self.fail(self._death())
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def receive(self) -> dict:
        n = int.from_bytes(self._read(8), "big")
        if n > wire.MAX_FRAME:
            self.fail("crash: the solution's answer is over %d bytes" % wire.MAX_FRAME)
        try:
            msg = wire.parse_frame(self._read(n))
        except wire.ProtocolError as exc:
            self.fail("crash: the worker broke the protocol (%s)" % exc)
        if type(msg) is not dict:
            self.fail("crash: the worker broke the protocol (not a message)")
        return msg

    def fail(self, reason: str):
        if self.broken is None:
            self.broken = reason
        self.kill()
        raise Broken(self.broken)

    def _death(self) -> str:
        status = self.kill()
        if status is None:
            return "crash: the worker closed its pipe"
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return "timeout"
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return "crash: killed by %s" % name
        return "crash: exited with code %d without a result" % os.WEXITSTATUS(status)

    def kill(self):
        if self.pid is None:
            return None
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return status

    # -- requests
    def request(self, msg: dict):
        return self._value(self._reply(msg))

    def call(self, target: Remote, args: tuple, kwargs: dict):
        """Call a solution function; arguments it changed in place change here too."""
        try:
            msg = {"op": "call", "target": target._ref(), "args": self.codec.encode(list(args)), "kwargs": self.codec.encode(dict(kwargs))}
        except (RecursionError, ValueError, wire.Unsendable) as exc:
            raise TypeError("arguments cannot be passed to the solution: %s" % exc)
        reply = self._reply(msg)
        value = self._value(reply)
        if reply.get("wb") is not None:
            try:
                changed = [None if x is None else self.codec.decode(x) for x in wire._list(reply["wb"])]
                if len(changed) != len(args):
                    raise wire.ProtocolError("changes for %d arguments, not %d" % (len(changed), len(args)))
            except _BAD_INPUT as exc:
                self.fail("crash: the worker broke the protocol (%s)" % (exc or type(exc).__name__))
            for orig, new in zip(args, changed):
                if new is not None:
                    _sync(orig, new, 0)
        return value

    def _reply(self, msg: dict) -> dict:
        """Send one request; serve the worker's callbacks until its answer arrives."""
        if self.broken is not None:
            raise Broken(self.broken)
        self.send(msg)
        while True:
            reply = self.receive()
            if self.hook and reply.get("blocked"):
                self.fail("blocked: %s" % str(reply["blocked"][0])[:200])
            if reply.get("op") == "callback":
                self._serve_callback(reply)
                continue
            if "fatal" in reply:
                self.fail("crash: %s" % str(reply["fatal"])[:250])
            return reply

    def _value(self, reply: dict):
        if "raise" in reply:
            try:
                exc = _rebuild(reply["raise"], self.codec)
            except wire.ProtocolError as err:
                self.fail("crash: the worker broke the protocol (%s)" % err)
            raise exc
        if "ok" not in reply:
            self.fail("crash: the worker broke the protocol (no result)")
        try:
            return self.codec.decode(reply["ok"])
        except _BAD_INPUT as exc:
            self.fail("crash: the worker broke the protocol (%s)" % (exc or type(exc).__name__))

    def _serve_callback(self, msg: dict) -> None:
        try:
            fn = self._in("cb", msg.get("fn"))
            args = self.codec.decode(msg.get("args", []))
            kwargs = self.codec.decode(msg.get("kwargs", {"d": []}))
            if type(args) is not list or type(kwargs) is not dict or any(type(k) is not str for k in kwargs):
                raise wire.ProtocolError("bad callback arguments")
        except _BAD_INPUT as exc:
            self.fail("crash: the worker broke the protocol (%s)" % (exc or type(exc).__name__))
        try:
            out = {"ok": self.codec.encode(fn(*args, **kwargs))}
        except (Broken, RemoteExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the test's callable raised: the solution sees it
            out = {"raise": wire.exception_payload(exc, self.codec)}
        self.send(out)


def _sync(orig, new, depth: int) -> None:
    """Make a test's argument what the solution left it as, keeping the objects' identities."""
    if type(orig) is not type(new) or depth > wire.MAX_DEPTH:
        return  # a call cannot change what an object is
    if type(orig) is list:
        for i in range(min(len(orig), len(new))):
            if type(orig[i]) in _MUTABLE and type(orig[i]) is type(new[i]):
                _sync(orig[i], new[i], depth + 1)
                new[i] = orig[i]
        orig[:] = new
    elif type(orig) is dict:
        for k, v in new.items():
            if k in orig and type(orig[k]) in _MUTABLE and type(orig[k]) is type(v):
                _sync(orig[k], v, depth + 1)
                new[k] = orig[k]
        orig.clear()
        orig.update(new)
    elif type(orig) is set:
        orig.clear()
        orig.update(new)
    elif type(orig) is bytearray:
        orig[:] = new


def _rebuild(payload, codec: wire.Codec) -> BaseException:
    """The solution's exception, as the first built-in class in its chain, with its args."""
    if type(payload) is not dict or type(payload.get("types")) is not list:
        raise wire.ProtocolError("bad exception")
    names = [n for n in payload["types"] if type(n) is str]
    msg = payload.get("msg") if type(payload.get("msg")) is str else ""
    shown = names[0][:100] if names else "Exception"
    for name in names:
        cls = getattr(builtins, name, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            continue
        if not issubclass(cls, Exception):
            return RemoteExit(shown, msg)
        exc = None
        try:
            args = codec.decode(payload["args"]) if payload.get("args") is not None else None
            if type(args) is tuple and all(type(a) in (str, int, float, bool, type(None)) for a in args):
                exc = cls(*args)
        except Exception:  # noqa: BLE001 - args that do not fit the class: use the text
            exc = None
        if exc is None or str(exc) != msg:
            try:
                exc = cls(msg)
            except Exception:  # noqa: BLE001
                exc = RuntimeError(msg)
        exc.remote_type = shown
        return exc
    return RuntimeError("%s: %s" % (shown, msg))


# ----------------------------------------------------------------------------- the run


def describe(exc: BaseException) -> str:
    name = getattr(exc, "remote_type", None) or (exc.name if isinstance(exc, RemoteExit) else type(exc).__name__)
    text = str(exc)
    return ("%s: %s" % (name, text) if text else name).replace("\n", " ")[:200]


def classify(exc: BaseException, tests_src: str) -> str:
    if isinstance(exc, MemoryError):
        return "memory limit"
    if isinstance(exc, PermissionError) and str(exc).startswith(wire.BLOCK_PREFIX):
        return "blocked: " + str(exc)[len(wire.BLOCK_PREFIX):]
    if isinstance(exc, AssertionError) and getattr(exc, "remote_type", None) is None:
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


def _spawn_worker(job: dict, isolated: bool):
    """Fork the worker: /dev/null, the output file twice, two pipes, its limits, then exec.

    The code between fork and exec is still ours: it applies the worker's own layers and says
    which held in a first frame, before anything of the solution exists in the process.
    """
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    workdir = job["workdir"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    exe = sys.executable
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            keep = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (devnull, 2, req_r, resp_w)]
            for target, fd in enumerate((keep[0], keep[1], keep[1], keep[2], keep[3])):
                os.dup2(fd, target)
            os.closerange(5, max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 12))
            layers, failed = [], None
            try:
                os.chdir(workdir)
                if LINUX:
                    kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
                    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
                kernel.set_limits(job, job["nproc"] if isolated else 0, strict=isolated)
                layers.append("rlimits")
                if isolated and "seccomp" not in job["without"]:
                    if kernel.seccomp(deny_processes=True):
                        layers.append("seccomp-no-fork")
            except Exception as exc:  # noqa: BLE001 - reported, and the solution never runs
                failed = "sandbox setup failed: worker: %s" % (exc,)
            frame = {"started": layers} if failed is None else {"failed": failed}
            wire._write_all(4, wire.encode_frame(frame))
            if failed is None:
                os.execve(exe, [exe, "-I", "-S", "-B", "-c", wire.WORKER_STUB], env)
        finally:
            os._exit(127)
    for fd in (req_r, resp_w, devnull):
        os.close(fd)
    return pid, req_w, resp_r


def _own_layers(job: dict) -> list:
    """Landlock and the base seccomp filter on the supervisor itself; the worker inherits both."""
    layers = []
    without = job["without"]
    if "landlock" not in without:
        try:
            name = kernel.landlock("/", job["workdir"], DEVICES)
            if name:
                layers.append(name)
        except kernel.SetupError:
            pass  # e.g. an OCI runtime's filter refuses it: the container is the boundary there
    if "seccomp" not in without:
        try:
            if kernel.seccomp(deny_processes=False):
                layers.append("seccomp")
        except kernel.SetupError:
            pass
    return layers


def supervise(job: dict, tier: str, layers: list, worker_src: str) -> dict:
    """Run the job's tests against a fresh worker; the verdict message, without the nonce."""
    isolated = tier != "unsafe"
    if isolated:
        layers += _own_layers(job)
    pid, to_w, from_w = _spawn_worker(job, isolated)
    link = Link(pid, to_w, from_w, time.monotonic() + STARTUP_S, hook=not isolated)
    tests = job["tests"]
    verdict = {"status": "failed", "executed": True, "layers": layers}
    try:
        # Until the worker says "ready", no byte of the solution is in it: a failure up to
        # here means the code never ran (not executed), not that it failed.
        first = link.receive()
        if "failed" not in first:
            link.send({"src": worker_src, "hook": not isolated, "workdir": job["workdir"]})
            ready = link.receive()
    except Broken as exc:
        first, ready = {"failed": "sandbox setup failed: the worker did not start (%s)" % exc}, None
    if "failed" in first or ready != {"ready": True}:
        link.kill()
        return {"status": "unavailable", "executed": False, "reason": str(first.get("failed", "sandbox setup failed: the worker did not start"))[:MAX_REASON], "layers": layers}
    layers += [str(x) for x in first.get("started", [])] + (["audit-hook"] if not isolated else [])
    link.deadline = time.monotonic() + float(job["timeout_s"])  # the clock is the solution's from here
    try:
        verdict["reason"] = _run(link, job["code"], tests, job["entry_point"])
    except Broken as exc:
        verdict["reason"] = str(exc)
    except BaseException as exc:  # noqa: BLE001 - the tests failed: say how
        verdict["reason"] = classify(exc, tests)
    if link.broken is not None:
        verdict["reason"] = link.broken
    elif verdict["reason"] == "passed":
        verdict["status"] = "passed"
    link.kill()
    verdict["reason"] = verdict["reason"][:MAX_REASON]
    return verdict


def _run(link: Link, code: str, tests: str, entry: str) -> str:
    """Load the solution in the worker, then run the tests here against its names."""
    reply = link._reply({"op": "load", "code": code})
    if "syntax" in reply:
        return "syntax error: %s" % str(reply["syntax"])[:250]
    if "raise" in reply:
        try:
            link._value(reply)
        except Broken:
            raise
        except BaseException as exc:  # noqa: BLE001
            return classify(exc, "")
    names = reply.get("names")
    if type(names) is not dict:
        link.fail("crash: the worker broke the protocol (no names)")
    solution: dict = {}
    for name, info in names.items():
        if type(info) is not dict or not isinstance(name, str) or not name.isidentifier():
            continue
        if "module" in info:
            module = str(info["module"])
            if module.partition(".")[0] in IMPORTABLE:
                try:
                    solution[name] = importlib.import_module(module)
                except ImportError:
                    pass
        elif "value" in info:
            try:
                solution[name] = link.codec.decode(info["value"])
            except _BAD_INPUT as exc:
                link.fail("crash: the worker broke the protocol (%s)" % (exc or type(exc).__name__))
    if not isinstance(solution.get(entry), Remote) or not names[entry].get("callable"):
        return "crash: no function named %r is defined" % entry
    try:
        compiled = compile(tests, "<tests>", "exec")
    except (SyntaxError, ValueError) as exc:
        return "crash: the tests do not compile: %s" % describe(exc)
    # The solution's names, except that it never rebinds a built-in for the tests
    # (``def abs(x): return 0`` would otherwise pass ``assert abs(f(x) - y) < 1e-9``).
    tns = {k: v for k, v in solution.items() if k == entry or not hasattr(builtins, k)}
    tns.update({"__name__": "tests", "__builtins__": builtins})
    exec(compiled, tns)
    check = tns.get("check")
    if callable(check) and check is not solution.get("check"):
        check(tns[entry])
    return "passed"


def main(payload: dict) -> None:
    """Entry point of the sandbox's first process (see ``taxcheck.grade.sandbox``)."""
    job = payload["job"]
    job.setdefault("without", [])
    tier, nonce = job["tier"], job["nonce"]
    worker_src = dict(payload["modules"])[wire.__name__]  # the worker module, under its dotted name
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    result_fd = os.dup(1)  # not inheritable: no exec'd process holds it
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    def emit(msg: dict) -> None:
        msg.update(nonce=nonce, tier=tier)
        os.write(result_fd, (json.dumps(msg) + "\n").encode("utf-8"))

    def setup_failed(reason: str) -> None:
        emit({"status": "unavailable", "executed": False, "reason": reason[:MAX_REASON], "layers": []})

    try:
        if tier in ("userns", "root-ns"):
            layers = kernel.enter(job, setup_failed)
        elif tier == "unsafe":
            layers = []
        else:  # an OCI runtime made the boundary; this process is the container's pid 1
            layers = [tier]
        os.dup2(2, 1)  # from here on print() and the tests' output go to the output file
        if LINUX:
            kernel.prctl(kernel.PR_SET_DUMPABLE, 0, "dumpable")
            if tier != "unsafe":
                kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
    except BaseException as exc:  # noqa: BLE001 - whatever broke, the code is not run
        setup_failed("sandbox setup failed: %s" % (exc,))
        os._exit(0)
    emit(supervise(job, tier, layers, worker_src))
    os._exit(0)


# Run as ``python -I -S -B -c STUB`` with the payload (JSON: modules, main, job) on stdin. Each module
# arrives as (dotted name, source) and is built under its own name, parent packages made empty,
# so that the modules' own imports (``from taxcheck.grade import sandbox_kernel``) resolve.
STUB = (
    "import json,sys,types\n"
    "d=json.loads(sys.stdin.buffer.read())\n"
    "for n,s in d['modules']:\n"
    " q=n.split('.')\n"
    " for i in range(1,len(q)):\n"
    "  k='.'.join(q[:i])\n"
    "  if k not in sys.modules:\n"
    "   p=types.ModuleType(k);p.__path__=[];sys.modules[k]=p\n"
    "   if i>1:setattr(sys.modules['.'.join(q[:i-1])],q[i-1],p)\n"
    " m=types.ModuleType(n);m.__file__='<'+n+'>';sys.modules[n]=m;setattr(sys.modules['.'.join(q[:-1])],q[-1],m)\n"
    " exec(compile(s,m.__file__,'exec'),m.__dict__)\n"
    "sys.modules[d['main']].main(d)\n"
)
