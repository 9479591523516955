"""Money, beside sending: what a run will cost and what it may spend.

Takes: price tables (``prompts/prices.json``, ``--prices``, ``[prices]`` in taxcheck.toml),
the plan of a run, and each request as it is about to be sent.
Hands on: estimates for ``--dry-run``, reservations that keep ``--max-cost`` from being
passed, and the cost per model in the report's usage.
Start with: ``budget.py`` (why a run never spends past its budget, yet spends it), then
``pricing.py`` and ``estimate.py``.
"""
