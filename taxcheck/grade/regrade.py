"""Adding judge verdicts to a run file: after ``run --judge``, or later with ``regrade``.

Verdicts are appended to the run file (or to a copy, with ``-o``), so re-grading never
asks the models again and never loses the original answers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Callable

from taxcheck.send.cache import Cache
from taxcheck.errors import UserError
from taxcheck.runfile import RunWriter, read_run
from taxcheck.send.specs import ModelSpec


def judge_file(
    path: Path,
    judge: ModelSpec,
    cache: Cache,
    concurrency: int,
    timeout_s: float,
    retries: int,
    warn: Callable[[str], None],
    budget=None,
) -> tuple[int, str | None]:
    """Append verdicts for every ungraded call; returns (verdicts written, auth failure or None)."""
    from taxcheck.grade.judge import judge_params, run_judge
    from taxcheck.send.sender import Sender

    data = read_run(path, warn=warn)
    sender = Sender(cache, judge_params(judge), retries, on_warning=warn, budget=budget)
    writer = RunWriter(path)
    writer.open()
    try:
        written = asyncio.run(run_judge(data, judge, sender, writer, concurrency, timeout_s))
    finally:
        writer.close()
    return written, sender.auth_failures.get(judge.spec)


def regrade(
    run_file: Path,
    judge: ModelSpec | None,
    output: Path | None,
    cache: Cache,
    concurrency: int,
    timeout_s: float,
    retries: int,
    warn: Callable[[str], None],
) -> Path:
    """Copy the run to ``output`` (if given) and add the judge's verdicts there."""
    read_run(run_file, warn=warn)  # validate before copying or paying for anything
    target = run_file
    if output is not None and output.resolve() != run_file.resolve():
        try:  # a copy of every prompt and answer: owner-only from its first byte, as run files are
            with open(run_file, "rb") as src, os.fdopen(
                os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb"
            ) as dst:
                shutil.copyfileobj(src, dst)
            output.chmod(0o600)  # an existing file keeps its mode through O_CREAT: set it
        except OSError as exc:
            raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
        target = output
    if judge is not None:
        _written, auth = judge_file(target, judge, cache, concurrency, timeout_s, retries, warn)
        if auth:
            raise UserError(auth)
    return target
