"""Hostile model code, run the way CI meets it: as root, and as an ordinary user.

Every attack runs twice: in this process (root here and in CI: the ``root-ns`` tier) and in a
child process dropped to uid 65534 with ``setpriv`` (the ``userns`` tier), which uses the
system ``/usr/bin/python3`` because root's interpreter lives under ``/root`` (mode 700). What
the code must not manage is checked from the outside: an API key in the parent's environment
and a world-readable secret file never show up in its output, nothing appears in a
world-writable directory or the interpreter's site-packages, servers on loopback (TCP, UDP,
a unix socket in a world-writable directory, an abstract unix socket) see nothing, no process
it started is alive afterwards, and none of the grader tricks turns a wrong answer into a pass.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import pytest

from taxcheck.grade.sandbox import run_tests

WORKTREE = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
FAST_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None  # tmpfs: deep trees in ms
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the namespace tiers exist only on Linux")

# The runner the unprivileged child executes: every attack in a pool, results as JSON.
RUNNER = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from taxcheck.grade.sandbox import run_tests
spec = json.load(open(sys.argv[1]))
def one(item):
    name, a = item
    kw = dict(a["kw"])
    if "_without" in kw:
        kw["_without"] = tuple(kw["_without"])
    return name, asdict(run_tests(a["code"], a["tests"], "f", **kw))
with ThreadPoolExecutor(4) as pool:
    print(json.dumps(dict(pool.map(one, spec.items()))))
"""


# ----------------------------------------------------------------------------- the attacks


def attacks(ctx: dict, answer: str) -> dict[str, dict]:
    """name -> code, tests, run_tests keywords. ``CTX`` in the code and the tests is ``ctx``;
    ``SECRET``, the grader tricks' expected value, is in the tests only."""
    table: dict[str, tuple[str, str, dict]] = {
        # --- secrets
        "environ everywhere": ("""
            import os
            def f():
                seen = [repr(dict(os.environ))]
                for pid in os.listdir('/proc'):
                    for leaf in ('environ', 'cmdline'):
                        try:
                            seen.append(open('/proc/%s/%s' % (pid, leaf), 'rb').read().decode('latin-1'))
                        except Exception as exc:
                            seen.append(type(exc).__name__)
                print('pids', sorted(p for p in os.listdir('/proc') if p.isdigit()))
                print(seen)
                return 1
            """, "assert f() == 1", {}),
        "environ through dir_fd": ("""
            import os
            def f():
                fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
                for pid in os.listdir(fd):
                    try:
                        print(os.read(os.open(pid + '/environ', os.O_RDONLY, dir_fd=fd), 1 << 16))
                    except Exception as exc:
                        print(pid, type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        "inherited descriptors": ("""
            import os
            def f():
                open_fds = []
                for fd in range(1024):
                    try:
                        os.fstat(fd)
                    except OSError:
                        continue
                    open_fds.append(fd)
                    try:
                        os.lseek(fd, 0, 0)
                        print(fd, os.read(fd, 1 << 16))
                    except OSError as exc:
                        print(fd, type(exc).__name__)
                print('open fds', open_fds)
                return 1
            """, "assert f() == 1", {}),
        "host secret file": ("""
            def f():
                for p in (CTX['secret'], '/proc/1/root' + CTX['secret'], '/proc/self/root' + CTX['secret']):
                    try:
                        print(open(p).read())
                    except Exception as exc:
                        print(type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        "parent memory": ("""
            import os
            def f():
                for pid in ('1', str(os.getppid())):
                    for leaf in ('mem', 'environ', 'fd/1'):
                        try:
                            print(leaf, open('/proc/%s/%s' % (pid, leaf), 'rb').read(100))
                        except Exception as exc:
                            print(leaf, type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        "who am I on the host": ("""
            def f():
                print('map', open('/proc/self/uid_map').read().split())
                print([l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp:'))])
                return 1
            """, "assert f() == 1", {}),
        # --- writes
        "write outside": ("""
            import os, pathlib
            def f():
                for t in (CTX['marker'] + '/open', '/tmp/' + CTX['token']):
                    for how in ('open', 'os.open', 'pathlib'):
                        try:
                            if how == 'open':
                                open(t + how, 'w').write('x')
                            elif how == 'os.open':
                                os.write(os.open(t + how, os.O_CREAT | os.O_WRONLY), b'x')
                            else:
                                pathlib.Path(t + how).write_text('x')
                        except Exception as exc:
                            print(how, type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        "write a .pth through dir_fd": ("""
            import os
            def f():
                for d in CTX['site_dirs']:
                    try:
                        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                        os.write(os.open(CTX['token'] + '.pth', os.O_CREAT | os.O_WRONLY, dir_fd=fd), b'# ran\\n')
                        print('wrote into', d)
                    except Exception as exc:
                        print(d, type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        # --- network
        "sockets": ("""
            import socket
            def f():
                tries = {
                    'tcp': lambda: socket.create_connection(('127.0.0.1', CTX['tcp']), timeout=1),
                    'udp': lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', CTX['udp'])),
                    'unix': lambda: socket.socket(socket.AF_UNIX).connect(CTX['unix']),
                    'abstract': lambda: socket.socket(socket.AF_UNIX).connect('\\0' + CTX['abstract']),
                    'pair': lambda: socket.socketpair(),
                }
                for name, attempt in tries.items():
                    try:
                        attempt()
                        print(name, 'CONNECTED')
                    except Exception as exc:
                        print(name, type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        "neuter the audit hook, then connect": ("""
            import gc, socket
            def f():
                for o in gc.get_objects():
                    if callable(o) and getattr(o, '__name__', '') in ('hook', 'deny'):
                        try:
                            o.__code__ = (lambda *a: None).__code__
                        except Exception:
                            pass
                try:
                    socket.create_connection(('127.0.0.1', CTX['tcp']), timeout=1)
                    print('CONNECTED')
                except Exception as exc:
                    print(type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        # --- processes
        "fork is refused": ("""
            import os
            def f():
                try:
                    os.fork()
                    print('FORKED')
                except OSError as exc:
                    print('fork', type(exc).__name__)
                return 1
            """, "assert f() == 1", {}),
        "daemonised double fork (no seccomp)": ("""
            import os
            def f():
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.execv('/bin/sleep', ['sleep', '30', CTX['token']])
                    os._exit(0)
                os.wait()
                return 1
            """, "assert f() == 1", {"_without": ["seccomp"]}),
        "fork bomb (no seccomp)": ("""
            import os
            def f():
                n = 0
                for _ in range(200):
                    try:
                        if os.fork() == 0:
                            os.execv('/bin/sleep', ['sleep', '30', CTX['token']])
                        n += 1
                    except OSError:
                        pass
                print('children', n)
                return 1
            """, "assert f() == 1", {"_without": ["seccomp"]}),
        "kill everything it can see": ("""
            import os, signal
            def f():
                for pid in (-1, 1, os.getppid()):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except Exception as exc:
                        print(pid, type(exc).__name__)
                return 2
            """, "assert f() == 1", {}),
        "kernel surface": ("""
            import ctypes, os
            def f():
                libc = ctypes.CDLL(None, use_errno=True)
                libc.syscall.restype = ctypes.c_long
                x86 = os.uname().machine == 'x86_64'
                calls = {
                    'unshare(user)': lambda: libc.unshare(0x10000000),
                    'unshare(mount)': lambda: libc.unshare(0x00020000),
                    'mount': lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),
                    'ptrace(attach 1)': lambda: libc.ptrace(16, 1, None, None),
                    'io_uring_setup': lambda: libc.syscall(425, 8, ctypes.create_string_buffer(120)),
                    'memfd_create': lambda: libc.syscall(319 if x86 else 279, b'x', 0),
                    'shmget': lambda: libc.syscall(29 if x86 else 194, 0, 1 << 20, 0o1600),
                    'bpf': lambda: libc.syscall(321 if x86 else 280, 0, None, 0),
                }
                print({k: call() for k, call in calls.items()})
                return 1
            """, "assert f() == 1", {}),
        # --- resources and cleanup
        "fill the disk": ("""
            def f():
                written = 0
                try:  # files under the 16 MiB per-file limit, until the tmpfs is full
                    for i in range(30):
                        with open('big%d' % i, 'wb') as fh:
                            for _ in range(15):
                                fh.write(b'x' * (1 << 20))
                                fh.flush()
                                written += 1
                except OSError as exc:
                    print('error', exc.errno)
                print('MiB', written)
                return 1
            """, "assert f() == 1", {}),
        "fill the inodes": ("""
            def f():
                n = 0
                try:
                    for n in range(40000):
                        open('f%d' % n, 'w').close()
                except OSError as exc:
                    print('error', exc.errno, 'files', n)
                return 1
            """, "assert f() == 1", {}),
        "1200 nested unwritable directories": ("""
            import os
            def f():
                for i in range(1200):
                    os.mkdir('d')
                    os.chdir('d')
                    open('x', 'w').write('x')
                for i in range(1200):
                    os.chdir('..')
                    os.chmod('d', 0)
                print('built')
                return 1
            """, "assert f() == 1", {}),
        # --- grader integrity: every one of these is a wrong answer trying to pass
        "rebind exec and friends": ("""
            import builtins
            builtins.exec = lambda *a, **k: None
            builtins.eval = lambda *a, **k: True
            builtins.compile = lambda *a, **k: compile('pass', '', 'exec')
            builtins.AssertionError = type('Never', (Exception,), {})
            def f(x):
                return 0
            """, "assert f(2) == SECRET", {}),
        "patch json": ("""
            import json
            json.dumps = lambda *a, **k: '{"status": "passed", "reason": "passed"}'
            json.loads = lambda *a, **k: {'ok': 4}
            def f(x):
                return 0
            """, "assert f(2) == SECRET", {}),
        "walk the stack to the reporter": ("""
            import gc, json, os, sys
            def f(x):
                frame, names = sys._getframe(), set()
                while frame is not None:
                    for k, v in list(frame.f_globals.items()):
                        names.add(k)
                        if callable(v) and any(w in k.lower() for w in ('report', 'emit', 'send', 'write')):
                            for arg in ('passed', {'status': 'passed', 'reason': 'passed', 'ok': 4}):
                                try:
                                    v(arg)
                                except BaseException:
                                    pass
                    frame = frame.f_back
                for o in gc.get_objects():
                    if type(o).__name__ in ('Worker', 'Link'):
                        for meth in ('send', 'emit', 'report'):
                            try:
                                getattr(o, meth)({'ok': 4, 'status': 'passed', 'reason': 'passed'})
                            except BaseException:
                                pass
                print('globals seen', sorted(names)[:50])
                return 0
            """, "assert f(2) == SECRET", {}),
        "forge frames and results on every descriptor": ("""
            import json, os
            def f(x):
                msg = json.dumps({'ok': 4, 'status': 'passed', 'reason': 'passed', 'nonce': 'x' * 32}).encode()
                for fd in range(64):
                    for blob in (len(msg).to_bytes(8, 'big') + msg, msg + b'\\n'):
                        try:
                            os.write(fd, blob)
                        except OSError:
                            pass
                return 0
            """, "assert f(2) == SECRET", {}),
        "rigged __eq__": ("""
            class Yes:
                def __eq__(self, other): return True
                def __ne__(self, other): return False
                def __bool__(self): return True
                def __hash__(self): return 0
            def f(x):
                return Yes()
            """, "assert f(2) == SECRET", {}),
        "rigged subclasses": ("""
            class L(list):
                def __eq__(self, other): return True
            class I(int):
                def __eq__(self, other): return True
            class S(str):
                def __eq__(self, other): return True
            def f(x):
                return {1: L([0]), 2: I(0), 3: S('')}[x]
            """, "assert f(1) == [SECRET]\n", {}),
        "rigged int subclass": ("""
            class I(int):
                def __eq__(self, other): return True
                __hash__ = int.__hash__
            def f(x):
                return I(0)
            """, "assert f(2) == SECRET", {}),
        "a handle forged as data": ("""
            def f(x):
                return {'h': [1, 'x']}
            """, "assert f(2) == SECRET", {}),
        "shadow the builtins the tests use": ("""
            def abs(x): return 0
            def isinstance(*a): return True
            def all(*a): return True
            def len(*a): return 1
            def f(x):
                return 0
            """, "assert abs(f(2) - 4) < 1e-9\nassert isinstance(f(2), str)\nassert len([f(2)]) == 2", {}),
        "read the expected value": ("""
            import gc, os
            def f():
                found = []
                for pid in os.listdir('/proc'):
                    for leaf in ('cmdline', 'environ', 'mem'):
                        try:
                            data = open('/proc/%s/%s' % (pid, leaf), 'rb').read(1 << 20)
                            if b'expect-' in data:
                                found.append(data[data.index(b'expect-'):][:43].decode('latin-1'))
                        except Exception:
                            pass
                for o in gc.get_objects():
                    if isinstance(o, str) and o.startswith('expect-') and len(o) == 43:
                        found.append(o)
                print('found', found)
                return found[0] if found else 'nothing'
            """, "assert f() == SECRET", {}),
        "exit cleanly at import": ("import os\nos._exit(0)\ndef f(x):\n    return 0\n", "assert f(2) == SECRET", {}),
        "SystemExit at import": ("raise SystemExit(0)\ndef f(x):\n    return 0\n", "assert f(2) == SECRET", {}),
        "die inside a catch-all": ("import os\ndef f():\n    os._exit(0)\n", "try:\n    f()\nexcept BaseException:\n    pass", {}),
        "flood the answer pipe": ("""
            import os, threading, time
            def spam():
                while True:
                    os.write(4, b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02{}')
            def f(x):
                threading.Thread(target=spam, daemon=True).start()
                time.sleep(0.2)
                return 0
            """, "assert f(2) == SECRET\nassert f(3) == SECRET", {}),
        "answer too large": ("def f(x):\n    return 'x' * (40 << 20)\n", "assert f(2) == SECRET", {}),
    }
    # The tests alone know SECRET: a forger that guessed the answer would just be a solution.
    prefix, secret = f"CTX = {ctx!r}\n", f"SECRET = {'expect-' + answer!r}\n"
    return {
        name: {"code": prefix + textwrap.dedent(code), "tests": prefix + secret + tests, "kw": {"timeout_s": 8, **kw}}
        for name, (code, tests, kw) in table.items()
    }


GRADER_TRICKS = [
    "rebind exec and friends", "patch json", "walk the stack to the reporter",
    "forge frames and results on every descriptor", "rigged __eq__", "rigged subclasses",
    "rigged int subclass", "a handle forged as data", "shadow the builtins the tests use",
    "read the expected value", "exit cleanly at import", "SystemExit at import",
    "die inside a catch-all", "flood the answer pipe", "answer too large", "kill everything it can see",
]


# ----------------------------------------------------------------------------- the harness


@pytest.fixture(scope="module")
def host():
    """Bait on the host: a key in the environment, servers, a secret, writable directories."""
    base = Path(tempfile.mkdtemp(prefix="taxcheck-bait-"))
    os.chmod(base, 0o755)
    marker = base / "marker"
    fake_site = base / "site-packages"
    scratch = base / "tmp"  # TMPDIR of the parents: anything the sandbox leaves on the host shows here
    for d in (marker, fake_site, scratch):
        d.mkdir()
        os.chmod(d, 0o777)
    secret = base / "secret.txt"
    token = uuid.uuid4().hex
    canary = f"sk-taxcheck-canary-{token[:12]}"
    secret.write_text(f"secret-{canary}")
    os.chmod(secret, 0o644)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix_path = str(base / "sock")
    unix.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix.listen(8)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0taxcheck-" + token)
    abstract.listen(8)
    servers = [tcp, udp, unix, abstract]
    for s in servers:
        s.setblocking(False)
    site_dirs = [str(fake_site), sysconfig.get_paths()["purelib"], "/usr/lib/python3/dist-packages"]
    ctx = {
        "marker": str(marker), "secret": str(secret), "token": token, "tcp": tcp.getsockname()[1],
        "udp": udp.getsockname()[1], "unix": unix_path, "abstract": "taxcheck-" + token, "site_dirs": site_dirs,
    }
    answer = uuid.uuid4().hex[:36]  # the grader tricks' expected value, never given to the code
    yield {"ctx": ctx, "answer": answer, "canary": canary, "servers": servers, "base": base, "scratch": scratch}
    for s in servers:
        s.close()
    shutil.rmtree(base, ignore_errors=True)


def _run_here(spec: dict, canary: str, scratch: Path) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(scratch))
        mp.setenv("OPENAI_API_KEY", canary)
        mp.setenv("ANTHROPIC_API_KEY", canary)

        def one(item):
            name, a = item
            kw = {k: (tuple(v) if k == "_without" else v) for k, v in a["kw"].items()}
            return name, asdict(run_tests(a["code"], a["tests"], "f", **kw))

        with ThreadPoolExecutor(max_workers=4) as pool:
            return dict(pool.map(one, spec.items()))


def _run_as_nobody(spec: dict, canary: str, base: Path, scratch: Path) -> dict:
    if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip("needs setpriv and /usr/bin/python3 to drop to an ordinary user")
    spec_path = base / "spec.json"
    spec_path.write_text(json.dumps(spec))
    os.chmod(spec_path, 0o644)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(WORKTREE), "OPENAI_API_KEY": canary, "LANG": "C.UTF-8", "TMPDIR": str(scratch)}
    proc = subprocess.run([*NOBODY, SYSTEM_PYTHON, "-c", RUNNER, str(spec_path)], env=env, cwd="/tmp", capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module", params=["root", "user"])
def results(request, host) -> tuple[str, dict]:
    """All attacks, run by root in this process or by uid 65534 in a child."""
    spec = attacks(host["ctx"], host["answer"])
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("not running as root")
        return "root", _run_here(spec, host["canary"], host["scratch"])
    if os.geteuid() != 0:  # already an ordinary user: this process is the test
        return "user", _run_here(spec, host["canary"], host["scratch"])
    return "user", _run_as_nobody(spec, host["canary"], host["base"], host["scratch"])


# ----------------------------------------------------------------------------- what held


def test_every_attack_ran_in_the_strong_tier(results) -> None:
    user, res = results
    tier = "root-ns" if user == "root" else "userns"
    assert {r["isolation"] for r in res.values()} == {tier}
    assert all(r["executed"] for r in res.values())


def test_no_secret_reaches_the_code(results, host) -> None:
    _, res = results
    for name in ("environ everywhere", "environ through dir_fd", "inherited descriptors", "host secret file", "parent memory"):
        r = res[name]
        assert r["passed"], (name, r["reason"], r["output"])
        assert host["canary"] not in r["output"], name
        assert "sk-taxcheck" not in r["output"], name
    assert "pids ['1', '2']" in res["environ everywhere"]["output"]
    assert "open fds [0, 1, 2, 3, 4]" in res["inherited descriptors"]["output"]
    assert "FileNotFoundError" in res["host secret file"]["output"]


def test_the_code_is_nobody_on_the_host(results) -> None:
    """Root's sandbox is a random unused uid; an ordinary user's is that user; no capabilities."""
    user, res = results
    out = res["who am I on the host"]["output"]
    inside, outside, count = ast.literal_eval(out.split("map")[1].splitlines()[0].strip())
    assert (inside, count) == ("1000", "1")
    if user == "root":
        assert int(outside) >= 1_000_000
    else:
        assert int(outside) == (os.geteuid() if os.geteuid() != 0 else 65534)
    assert "CapEff:\\t0000000000000000" in out and "CapBnd:\\t0000000000000000" in out
    assert "NoNewPrivs:\\t1" in out and "Seccomp:\\t2" in out


def test_nothing_is_written_outside_the_work_dir(results, host) -> None:
    _, res = results
    assert res["write outside"]["passed"] and res["write a .pth through dir_fd"]["passed"]
    assert list(Path(host["ctx"]["marker"]).iterdir()) == []
    token = host["ctx"]["token"]
    assert not list(Path("/tmp").glob(token + "*"))
    for d in host["ctx"]["site_dirs"]:
        assert not (Path(d) / f"{token}.pth").exists(), d
    assert "wrote into" not in res["write a .pth through dir_fd"]["output"]


def test_no_socket_reaches_anything(results, host) -> None:
    _, res = results
    for name in ("sockets", "neuter the audit hook, then connect"):
        assert res[name]["passed"], res[name]["reason"]
        assert "CONNECTED" not in res[name]["output"], res[name]["output"]
    assert "pair PermissionError" in res["sockets"]["output"]
    tcp, udp, unix, abstract = host["servers"]
    for server in (tcp, unix, abstract):
        with pytest.raises(BlockingIOError):
            server.accept()
    with pytest.raises(BlockingIOError):
        udp.recvfrom(16)


def test_no_process_outlives_a_run(results, host) -> None:
    _, res = results
    assert "fork PermissionError" in res["fork is refused"]["output"]
    assert res["daemonised double fork (no seccomp)"]["passed"], res["daemonised double fork (no seccomp)"]["reason"]
    assert "seccomp-no-fork" not in res["fork bomb (no seccomp)"]["layers"]
    children = int(res["fork bomb (no seccomp)"]["output"].split("children")[1].split()[0])
    assert 0 < children < 16, "RLIMIT_NPROC bounds the tasks of the sandbox"
    token = host["ctx"]["token"].encode()
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    assert alive == []


def test_the_kernel_surface_is_closed(results) -> None:
    _, res = results
    r = res["kernel surface"]
    assert r["passed"], r["reason"]
    calls = r["output"].strip().splitlines()[-1]
    assert calls.count("-1") == 8 and "0," not in calls, calls


def test_disk_is_capped_in_total_and_cleanup_survives_hostility(results, host) -> None:
    _, res = results
    fill = res["fill the disk"]
    assert "error 28" in fill["output"]  # ENOSPC: the tmpfs is full
    assert int(fill["output"].split("MiB")[1].split()[0]) <= 64
    files = res["fill the inodes"]["output"]
    assert "error 28" in files and int(files.split("files")[1].split()[0]) < 16384
    nested = res["1200 nested unwritable directories"]
    assert (nested["passed"], nested["output"].strip()) == (True, "built")
    assert os.listdir(host["scratch"]) == []


@pytest.mark.parametrize("name", GRADER_TRICKS)
def test_grader_tricks_do_not_pass(results, name: str) -> None:
    _, res = results
    r = res[name]
    assert r["executed"] and not r["passed"], (name, r["reason"], r["output"][-500:])


def test_grader_trick_reasons(results, host) -> None:
    _, res = results
    assert res["rigged __eq__"]["reason"] == "assertion failed: assert f(2) == SECRET"
    assert res["rigged subclasses"]["reason"] == "assertion failed: assert f(1) == [SECRET]"
    assert res["shadow the builtins the tests use"]["reason"] == "assertion failed: assert abs(f(2) - 4) < 1e-9"
    assert "found []" in res["read the expected value"]["output"]
    assert res["die inside a catch-all"]["reason"] == "crash: exited with code 0 without a result"
    assert res["flood the answer pipe"]["reason"].startswith("crash: the worker broke the protocol")
    assert res["answer too large"]["reason"].startswith("crash: the answer cannot be sent: message of")


def test_the_parent_is_untouched_after_all_of_it() -> None:
    result = run_tests("def f():\n    return 1\n", "assert f() == 1", "f")
    assert (result.passed, result.reason) == (True, "passed")


# ----------------------------------------------------------------------------- other paths


@pytest.mark.skipif(os.geteuid() != 0, reason="root's fallback without a user namespace")
def test_root_without_user_namespaces_still_drops_to_an_unprivileged_uid(host) -> None:
    ctx = host["ctx"]
    code = f"""
import os
def f():
    print('uid', os.getuid(), open('/proc/self/status').read().count('0000000000000000'))
    try:
        open({ctx['marker']!r} + '/root-fallback', 'w').write('x')
    except Exception as exc:
        print(type(exc).__name__)
    return 1
"""
    result = run_tests(code, "assert f() == 1", "f", _without=("userns",))
    assert (result.passed, result.isolation) == (True, "root-ns"), result.reason
    assert "userns" not in result.layers and "private-root" in result.layers
    uid = int(result.output.split("uid")[1].split()[0])
    assert uid >= 1_000_000
    assert not (Path(ctx["marker"]) / "root-fallback").exists()


def test_unsafe_tier_cleans_up_hostile_trees(host, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="taxcheck-scratch-", dir=FAST_DIR))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    code = """
import os
def f():
    for i in range(1200):
        os.mkdir('d')
        os.chdir('d')
        for j in range(3):
            open('x%d' % j, 'w').close()
    for i in range(1200):
        os.chdir('..')
        os.chmod('d', 0)
    print(os.getcwd())
    return 1
"""
    result = run_tests(code, "assert f() == 1", "f", sandbox="unsafe", timeout_s=20)
    assert result.passed, result.reason
    workdir = Path(result.output.strip().splitlines()[-1])
    assert workdir.parent == scratch and workdir.name.startswith("taxcheck-sbx-")
    assert os.listdir(scratch) == []
    scratch.rmdir()


HOSTILE_TREE = """
import os, sys
from taxcheck.grade.sandbox import remove_tree
top = sys.argv[1]
os.mkdir(top)
os.chdir(top)
for i in range(1500):
    open('f', 'w').write('x')
    os.symlink('/etc/passwd', 'link')  # removed, never followed
    os.mkdir('d')
    os.chdir('d')
for i in range(1500):
    os.chdir('..')
    os.chmod('d', 0 if i % 2 else 0o300)  # unreadable, or listable but not enterable
for i in range(2000):
    open('many%d' % i, 'w').close()
os.chdir('/')
os.chmod(top, 0o500)
print(remove_tree(top), os.path.exists(top), remove_tree(top))
"""


@pytest.mark.parametrize("user", ["root", "user"])
def test_remove_tree_without_recursion_limits(user: str, tmp_path: Path) -> None:
    """1,500 nested directories, half of them mode 000, symlinks, thousands of files."""
    base = Path(tempfile.mkdtemp(prefix="taxcheck-tree-", dir=FAST_DIR))
    os.chmod(base, 0o777)
    argv = [sys.executable, "-c", HOSTILE_TREE, str(base / "tree")]
    if user == "user":
        if os.geteuid() != 0:
            pytest.skip("already an ordinary user: the root case is this case")
        if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
            pytest.skip("needs setpriv and /usr/bin/python3")
        argv = [*NOBODY, SYSTEM_PYTHON, "-c", HOSTILE_TREE, str(base / "tree")]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(WORKTREE), "HOME": "/tmp"}
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert proc.stdout.split() == ["True", "False", "True"], proc.stderr[-2000:]
        assert Path("/etc/passwd").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
