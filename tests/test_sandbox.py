"""The sandbox contains hostile code, and the code scorer finds the function in real prose.

Containment tests run with the audit hook on (what users get). The ``kernel_only`` tests turn
the hook off to show that, in the ``full`` tier (root with namespaces, as here and in CI),
the kernel layers stop the same things on their own; they are skipped in the ``basic`` tier.
"""

from __future__ import annotations

import ast
import os
import signal
import socket
import textwrap
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxcheck.sandbox import SandboxResult, run_tests
from taxcheck.scorers.code import CodeVerdict, extract_code, score_code

CANARY = "sk-taxcheck-canary-7f3a91"


def run(code: str, tests: str = "assert f() == 1", **kw) -> SandboxResult:
    return run_tests(textwrap.dedent(code), tests, "f", **kw)


@pytest.fixture(scope="module")
def tier() -> str:
    return run("def f():\n    return 1\n").isolation


@pytest.fixture
def parent_carries_on():
    """After every containment test the parent is the same, unsignalled process.

    That the sandbox still works afterwards is shown by the test after it, and finally by
    ``test_parent_carries_on_after_all_containment_tests``.
    """
    pid, handler = os.getpid(), signal.getsignal(signal.SIGTERM)
    yield
    assert os.getpid() == pid
    assert signal.getsignal(signal.SIGTERM) == handler


@pytest.fixture
def loopback_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.05)  # the child has exited by now: a connection would be queued
    try:
        yield srv
    finally:
        srv.close()


def assert_no_connection(srv: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        conn, _ = srv.accept()
        conn.close()


# ----------------------------------------------------------------------------- basics


@pytest.mark.parametrize(
    ("code", "tests", "passed", "reason"),
    [
        ("def f(x):\n    return x + 1\n", "assert f(1) == 2\nassert f(-1) == 0", True, "passed"),
        ("def f(x):\n    return x\n", "assert f(1) == 1\nassert f(1) == 2", False, "assertion failed: assert f(1) == 2"),
        ("def f(x)\n    return x\n", "assert f(1) == 1", False, "syntax error: expected ':' (line 1)"),
        ("def g(x):\n    return x\n", "assert f(1) == 1", False, "crash: no function named 'f' is defined"),
        ("def f(x):\n    return 1 / 0\n", "assert f(1) == 1", False, "crash: ZeroDivisionError: division by zero"),
        ("def f(x):\n    return f(x)\n", "assert f(1) == 1", False, "crash: RecursionError: maximum recursion depth exceeded"),
        ("import sys\ndef f(x):\n    sys.exit(0)\n", "assert f(1) == 1", False, "crash: SystemExit: 0"),
        ("import os\ndef f(x):\n    os._exit(0)\n", "assert f(1) == 1", False, "crash: exited with code 0 without a result"),
        # HumanEval style: the tests define check(candidate)
        ("def f(x):\n    return x * 2\n", "def check(candidate):\n    assert candidate(2) == 4\n", True, "passed"),
        ("def f(x):\n    return x * 3\n", "def check(candidate):\n    assert candidate(2) == 4\n", False, "assertion failed: assert candidate(2) == 4"),
        # a solution that defines its own `check` does not turn plain asserts into HumanEval style
        ("def check(c):\n    raise SystemExit\ndef f(x):\n    return x\n", "assert f(3) == 3", True, "passed"),
        # a main guard in the answer does not run; stdout is captured, not mixed into the verdict
        ("def f(x):\n    print('hi')\n    return x\nif __name__ == '__main__':\n    input()\n", "assert f(2) == 2", True, "passed"),
    ],
)
def test_verdicts(code: str, tests: str, passed: bool, reason: str) -> None:
    result = run_tests(code, tests, "f")
    assert (result.passed, result.reason) == (passed, reason)
    assert result.duration_s < 5


def test_output_is_captured_and_truncated() -> None:
    result = run("def f():\n    while True:\n        print('x' * 1000)\n", timeout_s=3)
    assert not result.passed
    assert result.output.startswith("xxxx")
    assert len(result.output) <= 4096


# ----------------------------------------------------------------------------- containment

contained = pytest.mark.usefixtures("parent_carries_on")


@contained
def test_infinite_loop_is_stopped_by_the_timeout() -> None:
    result = run("def f():\n    while True:\n        pass\n", timeout_s=0.5)
    assert (result.passed, result.reason) == (False, "timeout")
    assert result.duration_s < 2


@contained
def test_fork_loop_is_stopped(tmp_path: Path) -> None:
    result = run("import os\ndef f():\n    while True:\n        os.fork()\n", timeout_s=2)
    assert not result.passed
    assert result.reason.startswith("blocked:"), result.reason


@contained
def test_fork_loop_that_swallows_errors_ends_at_the_timeout() -> None:
    code = "import os\ndef f():\n    while True:\n        try:\n            os.fork()\n        except Exception:\n            pass\n"
    result = run(code, timeout_s=0.5)
    assert (result.passed, result.reason) == (False, "timeout")


@contained
@pytest.mark.parametrize(
    "spawn",
    [
        "import subprocess\n    subprocess.run(['touch', MARKER])",
        "import os\n    os.system('touch ' + MARKER)",
        "import os\n    os.posix_spawn('/usr/bin/touch', ['touch', MARKER], {})",
        "import os\n    os.execv('/usr/bin/touch', ['touch', MARKER])",
    ],
)
def test_spawning_a_process_is_stopped(spawn: str, tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    code = f"MARKER = {str(marker)!r}\ndef f():\n    {spawn}\n    return 1\n"
    result = run(code)
    assert not result.passed
    assert result.reason.startswith("blocked:"), result.reason
    assert not marker.exists()


@contained
def test_huge_allocation_hits_the_memory_limit() -> None:
    result = run("def f():\n    data = bytearray(10 * 1024 ** 3)\n    return 1\n")
    assert (result.passed, result.reason) == (False, "memory limit")


@contained
def test_api_keys_are_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    code = """
        import os
        def f():
            seen = [os.environ.get('OPENAI_API_KEY', ''), repr(sorted(os.environ))]
            for pid in (os.getppid(), 1):
                try:
                    seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1'))
                except Exception as exc:
                    seen.append(type(exc).__name__)
            print(seen)
            return seen
        """
    tests = "s = f()\nassert 'OPENAI_API_KEY' not in s[1]\nassert all('canary' not in x for x in s)"
    result = run(code, tests)
    assert result.passed, result.reason
    assert CANARY not in result.output
    assert "['HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR']" in result.output


@contained
@pytest.mark.parametrize("how", ["open", "os.open", "pathlib"])
def test_writes_outside_the_working_directory_leave_nothing(how: str, tmp_path: Path) -> None:
    targets = [tmp_path / "escaped.txt", Path("/tmp") / f"taxcheck-escape-{uuid.uuid4().hex}"]
    write = {
        "open": "open(t, 'w').write('x')",
        "os.open": "os.write(os.open(t, os.O_CREAT | os.O_WRONLY), b'x')",
        "pathlib": "pathlib.Path(t).write_text('x')",
    }[how]
    code = f"import os, pathlib\ndef f():\n    for t in {[str(t) for t in targets]!r}:\n        {write}\n    return 1\n"
    result = run(code)
    assert not result.passed
    assert not any(t.exists() for t in targets)


@contained
def test_writes_inside_the_working_directory_work_and_are_removed() -> None:
    code = """
        import os
        def f():
            os.mkdir('d')
            with open('d/a.txt', 'w') as fh:
                fh.write('hello')
            os.chmod('d', 0)
            print(os.getcwd())
            return 1
        """
    result = run(code)
    assert result.passed, result.reason
    workdir = Path(result.output.strip())
    assert workdir.name.startswith("taxcheck-sbx-")
    assert not workdir.exists()


@contained
def test_loopback_connection_fails_and_the_server_sees_nothing(loopback_server: socket.socket) -> None:
    port = loopback_server.getsockname()[1]
    code = f"import socket\ndef f():\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    return 1\n"
    result = run(code)
    assert not result.passed
    assert result.reason.startswith("blocked:"), result.reason
    assert_no_connection(loopback_server)


@contained
def test_signalling_the_parent_is_stopped() -> None:
    result = run("import os, signal\ndef f():\n    os.kill(os.getppid(), signal.SIGTERM)\n    return 1\n")
    assert not result.passed


# ------------------------------------------------------------ the kernel layers on their own


@contained
@pytest.mark.parametrize(
    ("name", "code", "want"),
    [
        ("fork", "import os\ndef f():\n    os.fork()\n    return 1\n", "crash: BlockingIOError"),
        ("network", "import socket\ndef f():\n    socket.create_connection(('127.0.0.1', PORT), timeout=1)\n    return 1\n", "crash: OSError"),
        ("write /work", "def f():\n    open(WORK, 'w').write('x')\n    return 1\n", "crash: PermissionError"),
        ("parent environ", "import os\ndef f():\n    open(f'/proc/{os.getppid()}/environ').read()\n    return 1\n", "crash: PermissionError"),
        ("raise rlimit", "import resource\ndef f():\n    resource.setrlimit(resource.RLIMIT_NPROC, (-1, -1))\n    return 1\n", "crash: ValueError"),
    ],
)
def test_kernel_only(tier: str, name: str, code: str, want: str, loopback_server: socket.socket) -> None:
    if tier != "full":
        pytest.skip(f"isolation tier is {tier!r}: without namespaces the audit hook is the only guard")
    work = Path(__file__).resolve().parent / f".escape-{uuid.uuid4().hex}"
    code = code.replace("PORT", str(loopback_server.getsockname()[1])).replace("WORK", repr(str(work)))
    result = run(code, _hook=False)
    assert not result.passed
    # a checkout under /tmp is hidden by the child's private /tmp: not found is stopped too
    wants = (want, "crash: FileNotFoundError") if name == "write /work" and str(work).startswith("/tmp/") else (want,)
    assert result.reason.startswith(wants), result.reason
    assert not work.exists()
    assert_no_connection(loopback_server)


@contained
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("fork", "import os\ndef f():\n    os.fork()\n    return 1\n"),
        ("network", "import socket\ndef f():\n    socket.create_connection(('127.0.0.1', PORT), timeout=1)\n    return 1\n"),
        ("write /tmp", "def f():\n    open(TARGET, 'w').write('x')\n    return 1\n"),
        ("parent environ", "import os\ndef f():\n    open(f'/proc/{os.getppid()}/environ').read()\n    return 1\n"),
    ],
)
def test_basic_tier_still_contains(name: str, code: str, loopback_server: socket.socket) -> None:
    """Without namespaces or a uid drop (an unprivileged CI runner), the audit hook holds."""
    target = Path("/tmp") / f"taxcheck-escape-{uuid.uuid4().hex}"
    code = code.replace("PORT", str(loopback_server.getsockname()[1])).replace("TARGET", repr(str(target)))
    result = run(code, _isolate=False)
    assert result.isolation == "basic"
    assert not result.passed
    assert result.reason.startswith("blocked:"), result.reason
    assert not target.exists()
    assert_no_connection(loopback_server)


@contained
def test_kernel_only_private_tmp(tier: str, tmp_path: Path) -> None:
    if tier != "full":
        pytest.skip(f"isolation tier is {tier!r}")
    target = Path("/tmp") / f"taxcheck-escape-{uuid.uuid4().hex}"
    code = f"def f():\n    open({str(target)!r}, 'w').write('x')\n    open({str(tmp_path / 'x')!r}, 'w').write('x')\n    return 1\n"
    result = run(code, _hook=False)
    assert not target.exists() and not (tmp_path / "x").exists(), result.reason


def test_parent_carries_on_after_all_containment_tests() -> None:
    result = run("def f():\n    return 1\n")
    assert (result.passed, result.reason) == (True, "passed")


# ----------------------------------------------------------------------------- extraction

DEDUPE = "def dedupe(xs):\n    seen = set()\n    return [x for x in xs if not (x in seen or seen.add(x))]"

EXTRACTION = [
    # (label, response, must contain, must not contain)
    ("python fence", f"```python\n{DEDUPE}\n```", ["def dedupe"], ["```"]),
    ("py fence", f"Sure!\n```py\n{DEDUPE}\n```\nDone.", ["def dedupe"], ["Sure", "Done"]),
    ("bare fence", f"```\n{DEDUPE}\n```", ["def dedupe"], []),
    ("tilde fence", f"~~~python\n{DEDUPE}\n~~~", ["def dedupe"], ["~~~"]),
    ("unclosed fence", f"Here:\n```python\n{DEDUPE}\n", ["def dedupe"], ["Here"]),
    ("CRLF", f"```python\r\n{DEDUPE}\r\n```\r\n".replace("\n", "\r\n").replace("\r\r", "\r"), ["def dedupe"], ["\r"]),
    ("indented fence in a list", "1. Code:\n   ```python\n   def dedupe(xs):\n       return list(dict.fromkeys(xs))\n   ```", ["def dedupe(xs):\n    return"], []),
    ("here is the code", f"Here is the code:\n\n{DEDUPE}\n\nThis keeps the first occurrence.", ["def dedupe"], ["Here is", "This keeps"]),
    ("whole response is code", f"import itertools\n\n{DEDUPE}\n", ["import itertools", "def dedupe"], []),
    ("prefers the block defining it", "```python\nprint(dedupe([1, 1]))\n```\n\n```python\n" + DEDUPE + "\n```", ["def dedupe"], ["print("]),
    ("last revision wins", "```python\ndef dedupe(xs):\n    return xs\n```\nBetter:\n```python\ndef dedupe(xs):\n    return list(dict.fromkeys(xs))\n```", ["dict.fromkeys"], ["return xs\n"]),
    ("imports from another block", "```python\nfrom collections import OrderedDict\n```\n```python\ndef dedupe(xs):\n    return list(OrderedDict.fromkeys(xs))\n```", ["from collections import OrderedDict", "def dedupe"], []),
    ("helper from another block", "```python\ndef _key(x):\n    return x\n```\n```python\ndef dedupe(xs):\n    return list({_key(x): x for x in xs}.values())\n```", ["def _key", "def dedupe"], []),
    ("unused other block left out", "```python\nimport numpy as np\nx = np.zeros(3)\n```\n```python\n" + DEDUPE + "\n```", ["def dedupe"], ["numpy"]),
    ("shell block ignored", "```bash\npip install nothing\n```\n```python\n" + DEDUPE + "\n```", ["def dedupe"], ["pip"]),
    ("decorated helper kept whole", "```python\nimport functools\n@functools.cache\ndef _h(x):\n    return x\n```\n```python\ndef dedupe(xs):\n    return [_h(x) for x in dict.fromkeys(xs)]\n```", ["@functools.cache", "import functools"], []),
    ("bare function with import above", f"You can do this:\nimport itertools\n{DEDUPE}\nThat is all.", ["import itertools", "def dedupe"], ["That is all", "You can"]),
    ("async def", "```python\nasync def dedupe(xs):\n    return xs\n```", ["async def dedupe"], []),
    ("lambda assignment", "```python\ndedupe = lambda xs: list(dict.fromkeys(xs))\n```", ["dedupe = lambda"], []),
]


@pytest.mark.parametrize(("label", "text", "present", "absent"), EXTRACTION, ids=[c[0] for c in EXTRACTION])
def test_extract_code(label: str, text: str, present: list[str], absent: list[str]) -> None:
    code = extract_code(text, "dedupe")
    assert code is not None
    ast.parse(code)
    for s in present:
        assert s in code
    for s in absent:
        assert s not in code


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", "```\n```", "The answer is 42."])
def test_extract_code_finds_nothing(text: str) -> None:
    assert extract_code(text, "dedupe") is None


def test_extract_code_without_the_entry_point_keeps_the_python() -> None:
    assert extract_code("```python\ndef other():\n    pass\n```", "dedupe") == "def other():\n    pass"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*"`~ \n\tdefpyhon():=#@xa-\r", "dedupe", "```python", "def ", "    "]), max_size=80).map("".join))
def test_extract_code_never_raises(text: str) -> None:
    result = extract_code(text, "dedupe")
    assert result is None or isinstance(result, str)


# ----------------------------------------------------------------------------- scoring

TESTS = "assert dedupe([1, 1, 2]) == [1, 2]\nassert dedupe([]) == []\nassert dedupe([3, 1, 3]) == [3, 1]"


@pytest.mark.parametrize(
    ("text", "ok", "reason"),
    [
        (f"Here you go:\n```python\n{DEDUPE}\n```", True, "passed"),
        ("```python\ndef dedupe(xs):\n    return sorted(set(xs))\n```", False, "assertion failed: assert dedupe([3, 1, 3]) == [3, 1]"),
        ("```python\ndef dedupe(xs)\n    return xs\n```", False, "syntax error: expected ':' (line 1)"),
        ("I'd rather not write code today.", False, "no code found"),
        ("```python\ndef unique(xs):\n    return xs\n```", False, "crash: no function named 'dedupe' is defined"),
        ("```python\ndef dedupe(xs):\n    while True:\n        pass\n```", False, "timeout"),
    ],
)
def test_score_code(text: str, ok: bool, reason: str) -> None:
    verdict = score_code(text, TESTS, "dedupe", timeout_s=0.5)
    assert isinstance(verdict, CodeVerdict)
    assert (verdict.ok, verdict.reason) == (ok, reason)
    assert (verdict.extracted is None) == (reason == "no code found")


@pytest.mark.parametrize("text", [None, 42, "\x00" * 10, "```python\n" + "(" * 5000 + "\n```"])
def test_score_code_never_raises(text) -> None:  # noqa: ANN001 - deliberately not a str
    verdict = score_code(text, TESTS, "dedupe", timeout_s=2)
    assert verdict.ok is False
