"""Step 1 of a run: the suites, what is asked (DESIGN §3).

Takes: suite files (JSONL, one item a line), built-in suite names, and public datasets the
user downloaded (``importers/``: XSTest, OR-Bench, sycophancy-eval, MMLU, GSM8K, HumanEval).
Hands on: validated ``SuiteItem``s (every problem reported as ``file:line: message``),
sampled with ``--limit`` per category and type, pairs kept whole.
Start with: ``format.py`` (the item model and its rules), then ``sampling.py``.
``info.py`` lists and describes suites for ``taxcheck suites``; it must stay light (no pydantic).
"""
