"""Running the model's code, once: the sandbox's verdict on every code answer, stored in the run file.

Why a stage of its own: grading a code answer means running code a model wrote, so it must
happen exactly once, on purpose, behind the sandbox the user chose (``sandbox.choose``), and
its outcome must be data afterwards. ``run`` calls this after the answers are in (and
``regrade --rerun-code`` when asked); every verdict is appended to the run file as it lands
(``{"type": "code", ...}``, with the tier it ran in), so an interruption loses only the runs
in flight and a rerun does the rest. ``report``, ``diff`` and the HTML report only read the
verdicts (``grade.rules.grade_run``): opening a colleague's run file never runs what it holds.

Without a sandbox the answers are not executed and nothing is written: the code dimension is
"not graded" rather than wrong (``grade_run`` says how to grade it), a verdict stored earlier
stays as it was, and a later run or ``regrade --rerun-code`` with a sandbox grades them. An
answer whose stored verdict is unscored (a sandbox error) is run again by the next stage.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from taxcheck.grade.rules import is_code_answer
from taxcheck.runfile import CallKey, CallRecord, RunData, RunWriter, ok_calls, read_run
from taxcheck.suites.format import SuiteItem

WORKERS = 4  # sandbox runs are mostly process start-up: overlap a few


@dataclass(frozen=True)
class CodeStage:
    graded: int  # verdicts written now
    executed: int  # of which the code actually ran
    tier: str


def pending_code(data: RunData, rerun: bool = False) -> list[tuple[CallKey, SuiteItem, CallRecord]]:
    """Code answers with no executed verdict stored (all of them with ``rerun``)."""

    def done(key: CallKey) -> bool:
        v = data.code_verdicts.get(key)
        return v is not None and v.passed is not None

    return [(key, item, rec) for key, rec, item in ok_calls(data)
            if is_code_answer(item, rec) and (rerun or not done(key))]


def grade_code(path: Path, choice, warn: Callable[[str], None] = lambda _m: None, rerun: bool = False,
               workers: int = WORKERS, said_unavailable: bool = False) -> CodeStage:
    """Run every pending code answer of the run file at ``path`` in ``choice``'s sandbox and
    append its verdict; returns how many were written. ``said_unavailable``: the caller has
    already told the user there is no sandbox (``run`` says it before the first request)."""
    from taxcheck.grade.code import score_code

    data = read_run(path, warn=warn)
    jobs = pending_code(data, rerun)
    if not jobs:
        return CodeStage(0, 0, choice.tier)
    if not choice.available:  # nothing runs, so nothing is stored: an earlier verdict must not be hidden
        if not said_unavailable:
            warn(f"{len(jobs)} code answers not executed: {choice.why}; capability.code is not graded")
        return CodeStage(0, 0, choice.tier)
    writer = RunWriter(path)
    writer.open()
    executed = 0
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                pool.submit(score_code, rec.text or "", item.answer.tests, item.answer.entry_point, sandbox=choice): key
                for key, item, rec in jobs
            }
            try:
                for future in as_completed(futures):
                    model, item_id, sample, turn = futures[future]
                    v = future.result()
                    executed += v.ok is not None
                    writer.write({"type": "code", "model": model, "item": item_id, "sample": sample, "turn": turn,
                                  "passed": v.ok, "reason": v.reason, "isolation": v.isolation})
            except BaseException:  # Ctrl-C: what finished is on disk; do not start the rest
                for f in futures:
                    f.cancel()
                raise
    finally:
        writer.close()
    return CodeStage(len(jobs), executed, choice.tier)


def sandbox_summary(data: RunData) -> dict | None:
    """Where the run's code answers ran, from the run file alone (None: no code answers).

    ``tier``/``why``: the sandbox ``run`` chose; ``verdicts``: stored verdicts per tier they
    ran in; ``not_graded``: code answers with no executed verdict (no sandbox, or not yet run)."""
    answers = [(key, item, rec) for key, rec, item in ok_calls(data) if is_code_answer(item, rec)]
    if not answers and not data.header.sandbox:
        return None
    verdicts: dict[str, int] = {}
    not_graded = 0
    for key, _item, _rec in answers:
        v = data.code_verdicts.get(key)
        if v is None or v.passed is None:
            not_graded += 1
        else:
            verdicts[v.isolation or "unknown"] = verdicts.get(v.isolation or "unknown", 0) + 1
    head = data.header.sandbox
    return {"requested": head.get("requested"), "tier": head.get("tier"), "why": head.get("why") or None,
            "verdicts": verdicts, "not_graded": not_graded}
