"""The errors taxcheck raises on purpose, and the exit codes they map to.

Everything a user can cause (a bad flag, a malformed suite, a missing key, a 401) is a
``UserError``: the CLI prints its message as one line and exits 2, never with a
traceback. Foreign exceptions (SDK, httpx2, sqlite) are translated into these at one
boundary each (``clients.py`` for the wire, ``cache.py`` for the disk) so that the rest of
the code only ever sees this tree::

    TaxcheckError
    ├── UserError            exit 2: fix the input and rerun
    │   ├── SuiteError       a suite file has problems (each ``file:line: message``)
    │   ├── SpecError        a model spec, endpoint or config is wrong
    │   └── AuthError        the endpoint refused the key (401/403)
    └── CallError            one request failed; retried or recorded as a failure
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_FAILURES = 3
EXIT_BUDGET = 4


class TaxcheckError(Exception):
    """Base of every error taxcheck raises on purpose."""


class UserError(TaxcheckError):
    """Something the user can fix; printed as one line, exit 2."""

    exit_code = EXIT_USAGE


class SuiteError(UserError):
    """A suite file has one or more problems, each already formatted ``file:line: msg``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more; run `taxcheck validate`)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more if problems else "invalid suite")


class SpecError(UserError):
    """A model spec, an endpoint definition or taxcheck.toml is wrong."""


class AuthError(UserError):
    """The endpoint rejected the credentials; retrying cannot help."""


class CallError(TaxcheckError):
    """One request failed.

    ``retryable`` decides whether the retry policy tries again; ``retry_after`` is the
    server's own hint in seconds, when it gave one; ``param`` the request field a 400 named.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.param = param  # the request field a 400 rejected, when it named one
