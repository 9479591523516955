"""HumanEval (Chen et al. 2021): JSONL ``task_id, prompt, canonical_solution, test,
entry_point`` into ``capability.code`` items.

HumanEval's ``prompt`` is a function signature with its docstring (plus the imports and
helpers the function needs). A chat model is asked to return the *whole* function, imports
included, because the code scorer runs only what the model returns. The ``test`` field is
kept as is: it defines ``check(candidate)``, and taxcheck's sandbox calls
``check(<entry_point>)`` itself when the tests define ``check``. The reference solution is
not needed to score and is not copied into the suite.
"""

from __future__ import annotations

from collections.abc import Iterator

from taxcheck.suites.importers._common import Context, jsonl_records, slug, text_field
from taxcheck.suites.format import SuiteItem

OPTIONS: dict[str, str] = {}
INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including "
    "the imports and any helper code shown, in one Python code block and nothing else."
)


def read(ctx: Context) -> Iterator[SuiteItem]:
    for line, rec in jsonl_records(ctx):
        task_id = text_field(ctx, line, rec, "task_id")
        prompt = text_field(ctx, line, rec, "prompt")
        test = text_field(ctx, line, rec, "test")
        entry_point = text_field(ctx, line, rec, "entry_point")
        if task_id is None or prompt is None or test is None or entry_point is None:
            continue
        if not entry_point.isidentifier():
            ctx.problem(line, f"entry_point {entry_point!r} is not a Python identifier")
            continue
        tid = slug(task_id).lower()
        if not tid:
            ctx.problem(line, f"task_id {task_id!r} gives no usable id")
            continue
        item = ctx.item(
            line,
            id=tid if tid.startswith("humaneval") else f"humaneval-{tid}",
            category="capability.code",
            type="humaneval",
            prompt=f"{INSTRUCTION}\n\n```python\n{prompt}\n```",
            expect="answer",
            answer={"tests": test, "entry_point": entry_point},
            meta={"task_id": task_id},
        )
        if item is not None:
            yield item
