"""Step 6: the numbers, for a terminal, a script, a pull request or a manager.

Takes: a run file (``pipeline.build_report`` grades, measures and gates it).
Hands on: the tax table in the layout that fits the terminal, JSON (a public interface),
Markdown, CSV, a self-contained HTML page; ``diff`` of two runs; the graded responses
behind a number (``audit.py``); the failures grouped by cause (``failures.py``); the plan
of a dry run (``dry_run.py``).
Start with: ``pipeline.py``, then ``table.py`` (terminal, JSON, Markdown, CSV) and
``html.py`` (with its ``html_*`` parts).
"""
