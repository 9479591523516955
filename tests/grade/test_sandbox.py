"""The sandbox's verdicts, its choice of boundary, and the code scorer's extraction from prose.

Hostile code (secrets, writes, sockets, processes, grader tricks) is in
``test_sandbox_attacks.py``, run as root and as an ordinary user; the OCI runtime path is in
``test_sandbox_oci.py``; a machine without any boundary in ``test_sandbox_unavailable.py``.
Runs are overlapped: each table runs in one thread pool and the tests read its results.
"""

from __future__ import annotations

import ast
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxcheck.grade.sandbox import REQUESTS, TIERS, SandboxChoice, SandboxResult, choose, run_tests
from taxcheck.grade.code import CodeVerdict, extract_code, score_code

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces exist only on Linux")

# name: (code, tests, passed, reason)
VERDICTS = {
    "pass": ("def f(x):\n    return x + 1\n", "assert f(1) == 2\nassert f(-1) == 0", True, "passed"),
    "assert": ("def f(x):\n    return x\n", "assert f(1) == 1\nassert f(1) == 2", False, "assertion failed: assert f(1) == 2"),
    "syntax": ("def f(x)\n    return x\n", "assert f(1) == 1", False, "syntax error: expected ':' (line 1)"),
    "missing": ("def g(x):\n    return x\n", "assert f(1) == 1", False, "crash: no function named 'f' is defined"),
    "not callable": ("f = 3\n", "assert f == 3", False, "crash: no function named 'f' is defined"),
    "zero division": ("def f(x):\n    return 1 / 0\n", "assert f(1) == 1", False, "crash: ZeroDivisionError: division by zero"),
    "recursion": ("def f(x):\n    return f(x)\n", "assert f(1) == 1", False, "crash: RecursionError: maximum recursion depth exceeded"),
    "sys.exit": ("import sys\ndef f(x):\n    sys.exit(0)\n", "assert f(1) == 1", False, "crash: SystemExit: 0"),
    "os._exit": ("import os\ndef f(x):\n    os._exit(0)\n", "assert f(1) == 1", False, "crash: exited with code 0 without a result"),
    "raise at import": ("raise ValueError('nope')\ndef f():\n    return 1\n", "assert f() == 1", False, "crash: ValueError: nope"),
    "memory": ("def f():\n    data = bytearray(10 * 1024 ** 3)\n    return 1\n", "assert f() == 1", False, "memory limit"),
    # HumanEval style: the tests define check(candidate)
    "check": ("def f(x):\n    return x * 2\n", "def check(candidate):\n    assert candidate(2) == 4\n", True, "passed"),
    "check fails": ("def f(x):\n    return x * 3\n", "def check(candidate):\n    assert candidate(2) == 4\n", False, "assertion failed: assert candidate(2) == 4"),
    # a solution's own `check` does not turn plain asserts into HumanEval style
    "solution check": ("def check(c):\n    raise SystemExit\ndef f(x):\n    return x\n", "assert f(3) == 3", True, "passed"),
    # a main guard does not run; stdout is captured, not mixed into the verdict
    "main guard": ("def f(x):\n    print('hi')\n    return x\nif __name__ == '__main__':\n    input()\n", "assert f(2) == 2", True, "passed"),
    # values cross as exact built-in types
    "types": (
        "from fractions import Fraction\ndef f():\n    return (1, 2.5, -0.0, 'é', b'\\x00', bytearray(b'a'), {1, 2}, frozenset(), {(1, 2): [None]}, 3j, range(3), Fraction(1, 3), True)\n",
        "from fractions import Fraction\nv = f()\nassert v == (1, 2.5, -0.0, 'é', b'\\x00', bytearray(b'a'), {1, 2}, frozenset(), {(1, 2): [None]}, 3j, range(3), Fraction(1, 3), True)\nassert [type(x) for x in v] == [int, float, float, str, bytes, bytearray, set, frozenset, dict, complex, range, Fraction, bool]\nassert f()[-1] is True",
        True, "passed",
    ),
    "big int": ("def f():\n    return 7 ** 9000\n", "assert f() == 7 ** 9000", True, "passed"),
    "nan": ("def f():\n    return float('nan'), float('-inf')\n", "import math\na, b = f()\nassert math.isnan(a) and b == -math.inf", True, "passed"),
    "counter is a dict": ("from collections import Counter\ndef f(s):\n    return Counter(s)\n", "assert f('aab') == {'a': 2, 'b': 1}", True, "passed"),
    "namedtuple is a tuple": ("from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef f():\n    return P(1, 2)\n", "assert f() == (1, 2)", True, "passed"),
    "too deep to send": ("def f():\n    v = []\n    for _ in range(300):\n        v = [v]\n    return v\n", "assert f() == []", False, "crash: the answer cannot be sent: value nested more than 200 deep"),
    "generator raising while it is read": ("def f():\n    yield 1\n    raise ValueError('late')\n", "try:\n    f()\nexcept ValueError as e:\n    assert str(e) == 'late'", True, "passed"),
    "generator is not a list": ("def f():\n    yield 1\n", "assert list(f()) == [1]\nassert f() == [1]", False, "assertion failed: assert f() == [1]"),
    # an argument changed in place changes for the tests too, nested objects keeping identity
    "write-back": ("def f(a, d):\n    a.append(1)\n    d['k'].append(2)\n    return None\n", "x = [0]\ninner = [1]\nd = {'k': inner}\nf(x, d)\nassert x == [0, 1]\nassert inner == [1, 2] and d['k'] is inner", True, "passed"),
    "no write-back when untouched": ("def f(a):\n    return len(a)\n", "x = list(range(10))\nassert f(x) == 10 and x == list(range(10))", True, "passed"),
    # exceptions arrive as the built-in class the tests catch
    "custom ValueError": ("class Bad(ValueError):\n    pass\ndef f():\n    raise Bad('x')\n", "try:\n    f()\n    ok = False\nexcept ValueError as e:\n    ok = str(e) == 'x'\nassert ok", True, "passed"),
    "KeyError args": ("def f():\n    return {}['k']\n", "try:\n    f()\nexcept KeyError as e:\n    assert e.args == ('k',)", True, "passed"),
    # the tests' own callables are called back; the solution's objects stay behind handles
    "callback": ("def f(xs, key):\n    return sorted(xs, key=key)\n", "assert f([3, 1, 2], key=lambda v: -v) == [3, 2, 1]", True, "passed"),
    "class entry point": (
        "class f:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n        self.items.append(x)\n    def __len__(self):\n        return len(self.items)\n    def __contains__(self, x):\n        return x in self.items\n    def __iter__(self):\n        return iter(self.items)\n",
        "s = f()\ns.push(4)\ns.push(5)\nassert len(s) == 2 and 4 in s and list(s) == [4, 5] and s.items == [4, 5]",
        True, "passed",
    ),
    "helper used by the tests": ("def helper(x):\n    return x * 10\ndef f(x):\n    return x\n", "assert helper(f(2)) == 20", True, "passed"),
    "module imported by the solution": ("import math\ndef f():\n    return 2.0\n", "assert math.sqrt(4) == f()", True, "passed"),
}


@pytest.fixture(scope="module")
def verdicts() -> dict[str, SandboxResult]:
    def one(name: str) -> tuple[str, SandboxResult]:
        code, tests, _, _ = VERDICTS[name]
        return name, run_tests(code, tests, "f", timeout_s=5)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, VERDICTS))


@pytest.mark.parametrize("name", VERDICTS)
def test_verdicts(name: str, verdicts: dict[str, SandboxResult]) -> None:
    _, _, passed, reason = VERDICTS[name]
    result = verdicts[name]
    assert (result.passed, result.reason) == (passed, reason), result.output
    assert result.executed and result.isolation in TIERS and result.isolation not in ("none", "unsafe")


def test_output_is_captured_and_truncated() -> None:
    result = run_tests("def f():\n    while True:\n        print('x' * 1000)\n", "assert f() == 1", "f", timeout_s=1)
    # whichever comes first: the clock, or the 16 MiB cap on the output file
    assert result.reason in ("timeout", "crash: OSError: [Errno 27] File too large")
    assert result.output.startswith("xxxx")
    assert len(result.output) <= 4096


def test_infinite_loop_is_stopped_by_the_timeout() -> None:
    result = run_tests("def f():\n    while True:\n        pass\n", "assert f() == 1", "f", timeout_s=0.5)
    assert (result.passed, result.reason) == (False, "timeout")
    assert result.duration_s < 3


def test_timeout_covers_the_tests_and_the_solutions_import() -> None:
    result = run_tests("while True:\n    pass\n", "assert f() == 1", "f", timeout_s=0.5)
    assert (result.passed, result.reason) == (False, "timeout")


# ----------------------------------------------------------------------------- choosing a tier


def test_choose_knows_its_requests_and_tiers() -> None:
    assert REQUESTS == ("auto", "namespaces", "docker", "podman", "unsafe", "none")
    assert TIERS == ("userns", "root-ns", "docker", "podman", "unsafe", "none")
    with pytest.raises(ValueError, match="unknown sandbox 'chroot'"):
        choose("chroot")
    assert choose("unsafe") == SandboxChoice("unsafe", True, choose("unsafe").why)
    off = choose("none")
    assert (off.tier, off.available) == ("none", False) and "turned off" in off.why


@linux_only
def test_auto_picks_namespaces_here_and_says_which_layers_held() -> None:
    import os

    choice = choose()
    assert choice.available, choice.why
    assert choice.tier == ("root-ns" if os.geteuid() == 0 else "userns")
    assert choose("namespaces") == choice
    result = run_tests("def f():\n    return 1\n", "assert f() == 1", "f", sandbox=choice)
    assert result.isolation == choice.tier
    for layer in ("mountns", "pidns", "netns", "private-root", "private-proc", "tmpfs-work", "no-capabilities", "no-new-privs", "rlimits"):
        assert layer in result.layers, result.layers
    from taxcheck.grade import sandbox_kernel

    if sandbox_kernel._arch() is not None:  # x86_64 and aarch64 have a syscall table
        assert "seccomp" in result.layers and "seccomp-no-fork" in result.layers
    if sandbox_kernel._syscall(444, None, 0, 1) >= 1:  # the kernel has Landlock
        assert any(x.startswith("landlock-abi") for x in result.layers)


def test_unavailable_sandbox_runs_nothing_and_says_how_to_get_one() -> None:
    missing = SandboxChoice("none", False, "no sandbox here; install one")
    result = run_tests("raise SystemExit('ran')\n", "assert f() == 1", "f", sandbox=missing)
    assert (result.passed, result.executed, result.isolation) == (False, False, "none")
    assert result.reason == "not executed: no sandbox here; install one"
    verdict = score_code("```python\ndef f():\n    return 1\n```", "assert f() == 1", "f", sandbox=missing)
    assert (verdict.ok, verdict.isolation) == (None, "none")
    assert verdict.reason.startswith("not executed: ") and verdict.extracted == "def f():\n    return 1"
    # no code at all is unscored too: scoring only those as wrong would bias accuracy down
    assert score_code("I will not write code.", "assert f() == 1", "f", sandbox=missing).ok is None


def test_sandbox_none_is_never_executed() -> None:
    result = run_tests("def f():\n    return 1\n", "assert f() == 1", "f", sandbox="none")
    assert (result.executed, result.isolation) == (False, "none")
    assert score_code("```python\ndef f():\n    return 1\n```", "assert f() == 1", "f", sandbox="none").ok is None


def test_unsafe_runs_only_on_request_and_says_so() -> None:
    result = run_tests("def f():\n    return 1\n", "assert f() == 1", "f", sandbox="unsafe")
    assert (result.passed, result.isolation) == (True, "unsafe")
    assert "audit-hook" in result.layers and "netns" not in result.layers
    blocked = run_tests("import socket\ndef f():\n    socket.socket()\n    return 1\n", "assert f() == 1", "f", sandbox="unsafe")
    assert (blocked.passed, blocked.reason) == (False, "blocked: socket.__new__")


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
    assert verdict.isolation == choose().tier


@pytest.mark.parametrize("text", [None, 42, "\x00" * 10, "```python\n" + "(" * 5000 + "\n```"])
def test_score_code_never_raises(text) -> None:  # noqa: ANN001 - deliberately not a str
    verdict = score_code(text, TESTS, "dedupe", timeout_s=2)
    assert verdict.ok is False
