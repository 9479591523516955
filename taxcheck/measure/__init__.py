"""Step 5, second half: from verdicts to numbers with their uncertainty (DESIGN §1-2).

Takes: the grades of a run.
Hands on: per dimension, each model's rate with its 95 % interval and each candidate's
paired tax against the baseline (``Table``), all from one significance procedure; the
breakdown by item type; rule-vs-judge agreement; the smallest detectable tax of a plan.
Start with: ``aggregate.py`` (units, dimensions, the table), then ``stats.py`` (the one
procedure, and why), ``breakdown.py``, ``agreement.py``, ``power.py``.
"""
