"""The worker: the only process that runs model-written code, and the wire it answers on.

Why the code runs alone: a grader that shares a process with the code it grades can be
rewritten by that code (rebind ``exec``, patch ``json.dumps``, walk the stack to the reporting
function). So the tests run in the supervisor (``sandbox_harness``) and this process only
executes the solution and answers calls: "call handle 3 with these arguments", "what is
``len`` of handle 5". Values cross as plain data (``encode``/``decode``): the supervisor builds
fresh ``int``, ``str``, ``list``... from them, so an object whose ``__eq__`` always says True
never reaches an ``assert``; anything that is not plain data stays here and the supervisor
holds a handle to it, which equals only itself.

The worker cannot forge a verdict: it never sees the tests, it holds no channel to the
parent, and a protocol violation, a crash or a timeout marks the run failed for good.

This file is sent as source text to the worker (``python -I -S -B -c WORKER_STUB``): standard
library only, Python >= 3.8.
"""

from __future__ import annotations

import builtins
import json
import marshal
import os
import sys

MAX_FRAME = 32 * 1024 * 1024
MAX_DEPTH = 200  # two interpreter frames a level: well inside the recursion limit
MAX_ITEMS = 2_000_000  # elements materialised from one iterator
REQUEST_FD, RESPONSE_FD = 3, 4
_PLAIN = frozenset((str, int, float, bool, type(None)))
BLOCK_PREFIX = "blocked by sandbox: "


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class Unsendable(Exception):
    """A value over the wire's limits (too deep, too long): the harness's refusal, not the
    solution's exception, so it ends the run instead of reaching the tests as an error."""


# ----------------------------------------------------------------------------- framing


def encode_frame(obj) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_FRAME:
        raise ProtocolError("message of %d bytes is over the %d byte limit" % (len(data), MAX_FRAME))
    return len(data).to_bytes(8, "big") + data


def parse_frame(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError("malformed message: %s" % type(exc).__name__)


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ----------------------------------------------------------------------------- values


class Codec:
    """Plain data both ways; ``handle``/``resolve`` say what a side does with anything else.

    JSON scalars and arrays carry ``None``, ``bool``, ``int``, ``float``, ``str`` and ``list``;
    every other value is an object with one tag: ``t`` tuple, ``d`` dict (key/value pairs),
    ``s`` set, ``fs`` frozenset, ``b`` bytes, ``ba`` bytearray, ``c`` complex, ``r`` range,
    ``q`` Fraction, ``m`` Decimal, bytes as hex, ``it`` an iterator (materialised), ``h`` a worker object by
    handle, ``cb`` a supervisor callable by handle. ``decode`` checks every shape and builds
    exact built-in types, so it is safe on hostile input.
    """

    def __init__(self, handle, resolve) -> None:
        self.handle = handle  # value -> tagged dict, for what is not plain data
        self.resolve = resolve  # (tag, payload) -> value, for "h" and "cb"

    def encode(self, v, depth: int = 0):
        t = type(v)
        if t in _PLAIN:
            return v
        if depth > MAX_DEPTH:
            raise Unsendable("value nested more than %d deep" % MAX_DEPTH)
        d = depth + 1
        if t is list:
            if _PLAIN.issuperset(map(type, v)):
                return v
            return [self.encode(x, d) for x in v]
        if t is tuple:
            return {"t": [self.encode(x, d) for x in v]}
        if t is dict:
            return {"d": [[self.encode(k, d), self.encode(x, d)] for k, x in v.items()]}
        if t is set or t is frozenset:
            return {"s" if t is set else "fs": [self.encode(x, d) for x in v]}
        if t is bytes or t is bytearray:
            return {"b" if t is bytes else "ba": v.hex()}
        if t is complex:
            return {"c": [v.real, v.imag]}
        if t is range:
            return {"r": [v.start, v.stop, v.step]}
        mod = t.__module__  # only a program that imported them can hold one: no import here
        if mod == "fractions" and t is sys.modules["fractions"].Fraction:
            return {"q": [v.numerator, v.denominator]}
        if mod == "decimal" and t is sys.modules["decimal"].Decimal:
            return {"m": str(v)}
        return self.handle(v, d)

    def decode(self, x, depth: int = 0):
        t = type(x)
        if t in _PLAIN:
            return x
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested more than %d deep" % MAX_DEPTH)
        d = depth + 1
        if t is list:
            if _PLAIN.issuperset(map(type, x)):
                return x
            return [self.decode(e, d) for e in x]
        if t is not dict or len(x) != 1:
            raise ProtocolError("not a value: %s" % t.__name__)
        (tag, val), = x.items()
        try:
            if tag in ("t", "s", "fs", "it"):
                items = [self.decode(e, d) for e in _list(val)]
                return {"t": tuple, "s": set, "fs": frozenset, "it": iter}[tag](items)
            if tag == "d":
                pairs = [_list(p) for p in _list(val)]
                if any(len(p) != 2 for p in pairs):
                    raise ProtocolError("dict entries must be pairs")
                return {self.decode(k, d): self.decode(v, d) for k, v in pairs}
            if tag in ("b", "ba"):
                raw = bytes.fromhex(_str(val))
                return raw if tag == "b" else bytearray(raw)
            if tag == "c":
                re_, im = _numbers(val, 2, (int, float))
                return complex(re_, im)
            if tag == "r":
                return range(*_numbers(val, 3, (int,)))
            if tag == "q":
                import fractions

                return fractions.Fraction(*_numbers(val, 2, (int,)))
            if tag == "m":
                import decimal

                return decimal.Decimal(_str(val))
            if tag in ("h", "cb"):
                return self.resolve(tag, val)
        except ProtocolError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:  # decimal's errors are ArithmeticError
            raise ProtocolError("bad %r value: %s" % (tag, exc))
        raise ProtocolError("unknown tag %r" % (tag,))


def _list(v) -> list:
    if type(v) is not list:
        raise ProtocolError("expected a list")
    return v


def _str(v) -> str:
    if type(v) is not str:
        raise ProtocolError("expected a string")
    return v


def _numbers(v, n: int, kinds: tuple) -> list:
    v = _list(v)
    if len(v) != n or any(type(e) not in kinds for e in v):
        raise ProtocolError("expected %d numbers" % n)
    return v


def exception_payload(exc: BaseException, codec: Codec) -> dict:
    """An exception as the supervisor rebuilds it: its class chain, args when plain, text."""
    try:
        args = codec.encode(tuple(exc.args))
        json.dumps(args)
    except Exception:  # noqa: BLE001 - unencodable args: the text still says what happened
        args = None
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    return {"types": [c.__name__ for c in type(exc).__mro__][:32], "args": args, "msg": text[:2000]}


# ----------------------------------------------------------------------------- the worker loop


class Worker:
    """Serves the supervisor's requests; calls back into it for callables the tests passed."""

    def __init__(self, blocked: list) -> None:
        self.objects: dict = {}
        self.ids: dict = {}
        self.blocked = blocked
        self.codec = Codec(self._handle, self._resolve)
        self._proxies: dict = {}

    def _handle(self, v, depth: int):
        """Subclasses of plain types cross as their base value; iterators as their items."""
        for base, convert in _BASES:
            if isinstance(v, base):
                return self.codec.encode(convert(v), depth)
        if _iterator(v):
            out = []
            for item in v:
                if len(out) >= MAX_ITEMS:
                    raise Unsendable("iterator longer than %d items" % MAX_ITEMS)
                out.append(self.codec.encode(item, depth))
            return {"it": out}
        return self.ref(v)

    def ref(self, v) -> dict:
        key = id(v)
        if key not in self.ids:
            self.ids[key] = len(self.objects) + 1
            self.objects[self.ids[key]] = v
        try:
            text = repr(v)[:200]
        except Exception:  # noqa: BLE001
            text = "<object>"
        return {"h": [self.ids[key], text]}

    def _resolve(self, tag: str, val):
        if tag == "h":
            ident = val[0] if type(val) is list and val else val
            if ident not in self.objects:
                raise ProtocolError("unknown handle")
            return self.objects[ident]
        if val not in self._proxies:
            self._proxies[val] = self._callback(val)
        return self._proxies[val]

    def _callback(self, ident):
        worker = self

        def callback(*args, **kwargs):
            reply = worker.rpc({"op": "callback", "fn": ident, "args": worker.codec.encode(list(args)), "kwargs": worker.codec.encode(kwargs)})
            if "raise" in reply:
                raise _rebuild(reply["raise"])
            return worker.codec.decode(reply.get("ok"))

        callback.__name__ = "test_callable_%s" % ident
        return callback

    def send(self, obj) -> None:
        _write_all(RESPONSE_FD, encode_frame(obj))

    def receive(self):
        n = int.from_bytes(_read_exact(REQUEST_FD, 8), "big")
        return parse_frame(_read_exact(REQUEST_FD, n))

    def rpc(self, request: dict) -> dict:
        """Send a request of our own and serve the supervisor's until its reply arrives."""
        self.send(request)
        return self.serve(until_reply=True)

    def serve(self, until_reply: bool = False):
        while True:
            msg = self.receive()
            if "op" not in msg:
                if until_reply:
                    return msg
                continue
            reply = self.answer(msg)
            _flush()  # the supervisor kills this process at the end: nothing may stay buffered
            try:
                frame = encode_frame(reply)
            except (ProtocolError, ValueError, RecursionError) as exc:
                frame = encode_frame({"fatal": "the answer cannot be sent: %s" % exc})
            _write_all(RESPONSE_FD, frame)

    def answer(self, msg: dict) -> dict:
        op = msg["op"]
        if op == "load":
            return self.load(msg["code"])
        before: list = []
        try:
            target = self.codec.decode(msg["target"])
            args = self.codec.decode(msg.get("args", []))
            if op == "call":
                kwargs = self.codec.decode(msg.get("kwargs", {"d": []}))
                before = [_snapshot(self.codec, a) for a in args]
                value = target(*args, **kwargs)
            elif op == "getattr":
                value = getattr(target, msg["name"])
            else:
                value = _OPS[op](target, *args)
            # Encoding may run the solution's code too (a generator's body): its exceptions
            # are answers like any other; only the wire's own limits end the run.
            out = {"ok": self.codec.encode(value)}
            if op == "call":
                after = [_snapshot(self.codec, a) for a in args]
                if before != after:
                    out["wb"] = [self.codec.encode(a) if b != c else None for a, b, c in zip(args, before, after)]
        except Unsendable as exc:
            out = {"fatal": "the answer cannot be sent: %s" % exc}
        except BaseException as exc:  # noqa: BLE001 - the solution's exceptions are answers too
            out = {"raise": exception_payload(exc, self.codec)}
        if self.blocked:
            out["blocked"] = self.blocked[:5]
        return out

    def load(self, code: str) -> dict:
        try:
            compiled = compile(code, "<solution>", "exec")
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
            where = " (line %s)" % exc.lineno if getattr(exc, "lineno", None) else ""
            return {"syntax": "%s%s" % (getattr(exc, "msg", None) or exc, where)}
        ns = {"__name__": "solution", "__builtins__": builtins}
        try:
            exec(compiled, ns)
        except BaseException as exc:  # noqa: BLE001
            return {"raise": exception_payload(exc, self.codec), "blocked": self.blocked[:5]}
        names = {}
        for name, value in list(ns.items()):
            if name.startswith("__") and name.endswith("__"):
                continue
            if type(value) is type(sys):
                names[name] = {"module": value.__name__}
                continue
            try:  # objects stay here by handle; only plain data is copied across
                plain = not callable(value) and not _iterator(value)
                names[name] = {"value": self.codec.encode(value) if plain else self.ref(value), "callable": callable(value)}
            except Exception:  # noqa: BLE001 - a value that cannot cross is simply not offered
                continue
        return {"names": names, "blocked": self.blocked[:5]}


# Exact copies made by the base type's own C code, so an override in the subclass is not run.
_BASES = (
    (str, str.__str__),
    (int, int.__int__),
    (float, float.__float__),
    (list, list.copy),
    (tuple, lambda v: tuple.__getitem__(v, slice(None))),
    (dict, dict.copy),
    (frozenset, frozenset),
    (set, set),
    (bytes, lambda v: bytes(memoryview(v))),
)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - the solution may have closed or replaced them
            pass


def _iterator(v) -> bool:
    return hasattr(type(v), "__next__") and hasattr(type(v), "__iter__")


def _snapshot(codec: Codec, arg):
    """A mutable argument as bytes, to tell the supervisor when the call changed it.

    ``marshal`` because it is fast on a million-element list; the bytes are only compared,
    never loaded.
    """
    if type(arg) not in (list, dict, set, bytearray):
        return None
    try:
        return marshal.dumps(codec.encode(arg))
    except Exception:  # noqa: BLE001
        return None


_OPS = {
    "len": len,
    "getitem": lambda o, k: o[k],
    "setitem": lambda o, k, v: o.__setitem__(k, v),
    "delitem": lambda o, k: o.__delitem__(k),
    "contains": lambda o, k: k in o,
    "iter": lambda o: _bounded_list(o),
    "bool": bool,
    "str": str,
}


def _bounded_list(o) -> list:
    out = []
    for item in o:
        if len(out) >= MAX_ITEMS:
            raise Unsendable("iterable longer than %d items" % MAX_ITEMS)
        out.append(item)
    return out


def _rebuild(payload: dict) -> BaseException:
    """An exception from the other side, as the first built-in class in its chain."""
    types = payload.get("types") if isinstance(payload, dict) else None
    msg = payload.get("msg", "") if isinstance(payload, dict) else ""
    for name in types if isinstance(types, list) else []:
        cls = getattr(builtins, name, None) if isinstance(name, str) else None
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(msg)
    return RuntimeError(msg)


# ----------------------------------------------------------------------------- the audit hook


def install_hook(root: str, blocked: list) -> None:
    """The ``unsafe`` tier's only guard: a tripwire (PEP 578), not a boundary.

    Refuses process creation, sockets, ctypes, signals to other processes, raising rlimits,
    writes outside the work dir and reads of other processes' ``/proc`` entries. Code that sets
    out to defeat it can (Python documents this), which is why this tier runs only on request.
    """
    sep = os.sep
    own = str(os.getpid())
    deny_prefixes = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "pty.", "resource.setrlimit", "resource.prlimit", "winreg.")
    deny_exact = {"os.fork", "os.forkpty", "os.system", "os.startfile", "os.setuid", "os.setgid", "sys.addaudithook"}
    deny_imports = {"ctypes", "_ctypes", "_posixsubprocess", "cffi", "_testcapi", "_xxsubinterpreters"}
    path_events = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown", "os.truncate", "os.utime", "os.mkfifo", "os.mknod", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree"}
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
        except Exception:  # noqa: BLE001
            return False
        return p == root or p.startswith(root + sep) or p == "/dev/null"

    def foreign_proc(path):
        if isinstance(path, int):
            return False
        try:
            p = realpath(fsdecode(fspath(path)))
        except Exception:  # noqa: BLE001
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
                if (isinstance(a, (str, bytes)) or hasattr(a, "__fspath__")) and not inside(a):
                    deny(event + " outside the working directory")
        elif event in ("os.kill", "os.killpg") and str(args[0]) not in (own, "0"):
            deny(event)

    sys.addaudithook(hook)


def main(first: dict) -> None:
    """Entry point in the worker process, after the stub has read the first frame."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    blocked: list = []
    if first.get("hook"):
        install_hook(os.path.realpath(first["workdir"]), blocked)
    sys.stdout.flush()
    _write_all(RESPONSE_FD, encode_frame({"ready": True}))  # the solution is not loaded yet
    try:
        Worker(blocked).serve()
    except EOFError:
        os._exit(0)


# Run by the worker as ``python -I -S -B -c WORKER_STUB``: read one frame, run its source.
WORKER_STUB = (
    "import os,json\n"
    "def _r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(3,n-len(b))\n"
    "  if not c: os._exit(3)\n"
    "  b+=c\n"
    " return b\n"
    "_f=json.loads(_r(int.from_bytes(_r(8),'big')))\n"
    "_g={'__name__':'taxcheck_sandbox_worker'}\n"
    "exec(compile(_f.pop('src'),'<taxcheck-sandbox-worker>','exec'),_g)\n"
    "_g['main'](_f)\n"
)
