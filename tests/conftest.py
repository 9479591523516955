"""Shared pytest fixtures for taxcheck's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# ---------------------------------------------------------------- fake_api fixture (begin)
# Owned by the fake-API work (tests/fakeapi.py). A fresh server per test: it starts in a few
# milliseconds, and a new port per test means no script, queue or hanging connection can leak
# from one test into the next.
from fakeapi import FakeAPI


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    """A loopback OpenAI + Anthropic server; OpenAI clients use ``base_url + "/v1"``."""
    api = FakeAPI()
    try:
        yield api
    finally:
        api.close()


# ---------------------------------------------------------------- fake_api fixture (end)
