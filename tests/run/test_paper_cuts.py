"""Small things a demanding user trips over first (issue 14 §4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import helpful


def test_version(taxcheck_cli):
    from taxcheck import __version__

    res = taxcheck_cli("--version")
    assert res.code == 0 and res.stdout.strip() == f"taxcheck {__version__}"


@pytest.mark.parametrize("command", ["run", "report", "diff", "regrade", "import", "models", "validate"])
def test_help_shows_metavars_and_whole_example_commands(command):
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "taxcheck", command, "--help"], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    options = out.split("Options:", 1)[1].split("Examples:", 1)[0]
    assert not re.search(r"<(list\[str\]|str|int|float|path)>", options), options  # every option names its value
    examples = out.split("Examples:", 1)[1].split("\n\n", 1)[0]
    for line in examples.strip().splitlines():
        assert line.strip().startswith("taxcheck "), f"an example wrapped mid-command: {line!r}"


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "html"])
def test_report_to_a_missing_folder_is_one_line_exit_2(taxcheck_cli, finished_run, tmp_path, fmt):
    target = tmp_path / "no" / "such" / "folder" / f"r.{fmt}"
    res = taxcheck_cli("report", finished_run, "-f", fmt, "-o", target)
    assert res.code == 2, res.stderr
    assert "Traceback" not in res.stderr and str(target) in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.startswith("error:")]) == 1


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_diff_to_a_missing_folder_is_one_line_exit_2(taxcheck_cli, finished_run, tmp_path, fmt):
    target = tmp_path / "nowhere" / "d.out"
    res = taxcheck_cli("diff", finished_run, finished_run, "-f", fmt, "-o", target)
    assert res.code == 2 and "Traceback" not in res.stderr and str(target) in res.stderr


def test_diffing_a_run_against_itself_warns(taxcheck_cli, finished_run):
    res = taxcheck_cli("diff", finished_run, finished_run)
    assert res.code == 0 and "are the same run" in res.stderr


def test_diff_of_runs_without_a_common_model_names_the_flag(taxcheck_cli, fake_api, small_suite, tmp_path):
    fake_api.respond(helpful)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", a)
    taxcheck_cli("run", "-m", "openai:C", "-s", small_suite, "-o", b)
    res = taxcheck_cli("diff", a, b)
    assert res.code == 2 and "--model openai:A=openai:C" in res.stderr


@pytest.mark.parametrize("args", [("-m", "openai:A", "-b", "openai:A"), ("-m", "openai:A", "-m", "openai:A")])
def test_a_model_given_twice_is_said_and_measured_once(taxcheck_cli, fake_api, small_suite, args):
    fake_api.respond(helpful)
    res = taxcheck_cli("run", *args, "-s", small_suite, "-f", "json")
    assert res.code == 0 and "it is measured once" in res.stderr
    assert res.json()["models"] == ["openai:A"]
