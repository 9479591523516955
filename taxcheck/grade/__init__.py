"""Step 5, first half: a verdict for every answer.

Takes: the run file's answers and their suite items.
Hands on: a ``Grade`` per call (``rules.py``: refusal three-way, hedge, correct or not),
judge verdicts and the sandbox's code verdicts appended to the run file (done once,
stored; reading a run file never runs the code in it), and per call which grader's verdict
feeds the table (``provenance.py``).
Start with: ``rules.py``, then the scorers it calls (``refusal.py``, ``extract.py``,
``hedge.py``); ``code_stage.py`` and ``sandbox.py`` (with its ``sandbox_*`` helpers) for model
code; ``judge.py`` and ``regrade.py`` for the LLM judge.
"""
