"""The OCI runtime path: the command line built, a runtime that cannot run, one that can.

No container engine runs here, so a fake ``docker``/``podman`` on PATH stands in: "broken"
answers like a client whose daemon is down, "emulate" runs the command after the image on
this host (the protocol end to end: payload on stdin, verdict on stdout, output on stderr),
"hang" never answers. Every invocation and the client's environment are logged.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

import pytest

from taxcheck.grade import sandbox, sandbox_oci
from taxcheck.grade.sandbox import SandboxChoice, choose, run_tests

FAKE = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": args, "env": sorted(os.environ)}}) + "\\n")
if {mode!r} == "broken":
    sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\\n")
    sys.exit(125)
if args[:1] != ["run"]:
    sys.exit(0)
if {mode!r} == "hang":
    time.sleep(60)
os.chdir("/tmp")
command = args[args.index("python3") + 1:]
os.execv({image_python!r}, [{image_python!r}] + command)
"""


def fake_runtime(directory: Path, name: str, mode: str, image_python: str | None = None) -> Path:
    """A fake container client ``directory/name``; its log is ``directory/name.log``.

    ``image_python`` is the interpreter the "image" has (default: this one).
    """
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}.log"
    script = directory / name
    here = os.path.realpath(sys.executable)
    script.write_text(FAKE.format(python=here, log=str(log), mode=mode, image_python=image_python or here))
    script.chmod(0o755)
    return log


def logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_command_line_asks_for_every_limit() -> None:
    argv = sandbox_oci.command("podman", image="img:1", name="taxcheck-sbx-x", memory_mb=512, disk_mb=64)
    assert argv[:3] == ["podman", "run", "--rm"] and argv[-1] == "img:1"
    pairs = {(a, b) for a, b in zip(argv, argv[1:])}
    for pair in [
        ("--network", "none"), ("--ipc", "none"), ("--name", "taxcheck-sbx-x"), ("--pull", "never"),
        ("--tmpfs", "/tmp:rw,nosuid,nodev,size=64m,mode=1777"), ("--memory", "704m"), ("--memory-swap", "704m"),
        ("--pids-limit", "64"), ("--cpus", "1.0"), ("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges"),
        ("--user", "65534:65534"), ("--workdir", "/tmp"),
    ]:
        assert pair in pairs, pair
    assert "--read-only" in argv and "-i" in argv
    assert not any("KEY" in a for a in argv)


def test_image_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sandbox_oci.IMAGE_ENV, raising=False)
    assert sandbox_oci.image() == sandbox_oci.DEFAULT_IMAGE
    monkeypatch.setenv(sandbox_oci.IMAGE_ENV, "registry.local/py:3.11")
    assert sandbox_oci.image() == "registry.local/py:3.11"


def test_a_runtime_on_path_that_cannot_run_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_runtime(tmp_path / "bin", "docker", "broken")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    choice = choose("docker")
    assert (choice.tier, choice.available) == ("none", False)
    assert choice.why.startswith("docker is installed but cannot run the sandbox")
    assert "Cannot connect to the Docker daemon" in choice.why
    result = run_tests("def f():\n    return 1\n", "assert f() == 1", "f", sandbox="docker")
    assert (result.executed, result.passed, result.isolation) == (False, False, "none")
    assert len(logged(log)) == 1, "the probe ran once; the run reused its answer"


def test_a_runtime_that_is_absent_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert choose("podman") == SandboxChoice("none", False, "podman is not on PATH")


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_a_working_runtime_runs_the_sandbox(runtime: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_runtime(tmp_path / "bin", runtime, "emulate")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-taxcheck-canary-oci")
    choice = choose(runtime)
    assert (choice.tier, choice.available) == (runtime, True), choice.why
    good = run_tests("def f(x):\n    print('out')\n    return x * 2\n", "assert f(2) == 4", "f", sandbox=choice)
    bad = run_tests("def f(x):\n    return x\n", "assert f(2) == 4", "f", sandbox=choice)
    assert (good.passed, good.reason, good.isolation, good.output.strip()) == (True, "passed", runtime, "out")
    assert runtime in good.layers and "rlimits" in good.layers
    assert (bad.passed, bad.reason) == (False, "assertion failed: assert f(2) == 4")
    calls = logged(log)
    assert len(calls) == 3  # the probe and two runs
    for call in calls:
        argv = call["argv"]
        assert argv[0] == "run" and argv[argv.index("python3") + 1 : argv.index("python3") + 5] == ["-I", "-S", "-B", "-c"]
        assert not any(k.endswith("_API_KEY") for k in call["env"]), "the client gets no API key"


def test_a_hung_runtime_times_out_and_its_container_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_runtime(tmp_path / "bin", "docker", "hang")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setitem(sandbox._SETUP_GRACE_S, "docker", 0.5)
    result = run_tests("def f():\n    return 1\n", "assert f() == 1", "f", sandbox=SandboxChoice("docker", True, "test"), timeout_s=0.5)
    assert (result.passed, result.reason, result.executed) == (False, "timeout", True)
    run, rm = logged(log)
    name = run["argv"][run["argv"].index("--name") + 1]
    assert rm["argv"] == ["rm", "-f", name] and name.startswith("taxcheck-sbx-")


def _interpreter(version: str) -> str | None:
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}")) + [
        p for p in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}") if os.access(p, os.X_OK)
    ]
    return found[0] if found else None


@pytest.mark.parametrize("version", ["3.8", "3.13"])
def test_the_sandbox_runs_on_an_image_with_another_python(version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's code is sent as text to the image's interpreter, which may be older."""
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no python{version} on this machine")
    fake_runtime(tmp_path / "bin", "docker", "emulate", image_python=python)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    choice = SandboxChoice("docker", True, "test")
    good = run_tests("def f(x):\n    return [x, (x,), {x}, b'a', 2 ** 70]\n", "assert f(1) == [1, (1,), {1}, b'a', 2 ** 70]", "f", sandbox=choice)
    rigged = run_tests("class A:\n    def __eq__(s, o): return True\ndef f(x):\n    return A()\n", "assert f(1) == 2", "f", sandbox=choice)
    assert (good.passed, good.reason) == (True, "passed")
    assert (rigged.passed, rigged.reason) == (False, "assertion failed: assert f(1) == 2")
