"""The response cache: SQLite, keyed by what determines a response.

The key covers endpoint URL, wire format, API kind, model, messages, sampling
parameters and the sample index (K samples of one item are K different answers), and
nothing that does not change the answer (timeouts, retries, concurrency). Only
successful responses are cached, API-level refusals included; failures are not, so a
rerun tries them again.

Two processes may share one cache directory (two CI jobs): WAL mode and a busy timeout
let them write concurrently. A cache file that SQLite cannot read is moved aside with a
warning and the run goes on without it, because a cache is an optimisation and must
never be the reason a run fails.

The cache holds every prompt and answer, so its folder is created owner-only (0700) and its
database file 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
database file's permissions).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("TAXCHECK_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "taxcheck"


def cache_key(
    base_url: str, wire: str, api: str, model: str, messages: list[dict[str, str]], params: dict[str, Any], sample: int
) -> str:
    blob = json.dumps(
        [SCHEMA_VERSION, base_url, wire, api, model, messages, params, sample],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class Cache:
    """A key -> JSON store. ``None`` path means disabled (``--no-cache``)."""

    def __init__(self, directory: Path | None, warn: Callable[[str], None] = lambda _m: None):
        self._warn = warn
        self._db: sqlite3.Connection | None = None
        self.path: Path | None = None
        if directory is None:
            return
        self.path = Path(directory) / "responses.sqlite3"
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = self._open(self.path)
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
        except OSError as exc:
            warn(f"cache disabled: cannot use {self.path.parent} ({exc.strerror or exc})")
            self._db = None

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
            db.execute("SELECT count(*) FROM (SELECT 1 FROM responses LIMIT 1)").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _move_aside(self, exc: Exception) -> None:
        assert self.path is not None
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            if self._db is not None:
                self._db.close()
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                extra = self.path.with_name(self.path.name + suffix)
                if extra.exists():
                    extra.rename(aside.with_name(aside.name + suffix))
            self._warn(f"cache file {self.path} was unreadable ({exc}); moved it to {aside} and started a new one")
            self._db = self._open(self.path)
        except (OSError, sqlite3.DatabaseError) as exc2:
            self._warn(f"cache disabled: {self.path} is unreadable and could not be replaced ({exc2})")
            self._db = None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def is_empty(self) -> bool:
        if self._db is None:
            return True
        try:
            return self._db.execute("SELECT 1 FROM responses LIMIT 1").fetchone() is None
        except sqlite3.DatabaseError:
            return True

    def get(self, key: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
            return None
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self._db is None:
            return
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                (key, json.dumps(value), time.time()),
            )
        except sqlite3.OperationalError as exc:
            self._warn(f"cache write skipped ({exc})")
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
