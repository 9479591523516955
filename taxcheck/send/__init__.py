"""Steps 2-4 of a run: asking the models, and writing down every answer as it lands.

Takes: resolved model specs (``specs.py``: endpoints, keys from the environment, variants,
profiles of what each model accepts, ``profiles.py``) and the items to ask.
Hands on: the run file (``runfile.py``), one call record per finished request, flushed;
usage per model.
Start with: ``runner.py`` (the event loop: one worker pool per endpoint, two-turn items),
then ``sender.py`` (one request the one way: cache, budget, rate controller, retries).
The wire: ``clients.py`` (the SDK boundary, where errors become ``CallError`` and rejected
parameters adjust), ``wire.py`` (request bodies, reading answers), ``transport.py`` (bodies
read under a byte cap). Pace: ``limits.py`` (rate controller), ``retry.py`` (the one retry
policy). Also ``cache.py``, ``batch.py`` (provider batch APIs), ``reach.py`` (``taxcheck
models``), ``progress.py``.
"""
