"""The run file: everything a run did, one JSON line at a time.

Layout (a public interface: users' scripts parse it)::

    {"type": "header", ...}      what was asked: version, command (secrets redacted), models, suites
    {"type": "item", "item": {...}}  every suite item of the run, so the file alone can be re-reported
    {"type": "call", ...}        one finished request (success or final failure), flushed as it lands
    {"type": "verdict", ...}     a judge's grade of one call (added by --judge or regrade)
    {"type": "code", ...}        the sandbox's verdict on one code answer (passed true/false, or null
                                 when nothing ran), with the isolation tier it ran in: computed once
                                 by ``run`` (or ``regrade --rerun-code``), only read afterwards
    {"type": "adjustment", ...}  a model rejected a parameter (temperature, max_tokens) and the
                                 client changed its requests from then on; a rerun starts adjusted
    {"type": "batch", ...}       a provider batch (--batch): written when the provider accepts it
                                 (state "submitted", with its custom_id -> call mapping), and again
                                 as {"type": "batch", "id": ..., "state": "collected"} once every
                                 result is recorded; a rerun polls the batches still "submitted"

A run file is untrusted input wherever it is read: a colleague's file, or one edited by
hand. Every record is validated; a header whose values would make reporting hang or crash
(``samples: 1e9``, a non-numeric temperature, a malformed price row, a baseline that is not
among the models), a nesting too deep or a line too long is one ``file:line: message`` (exit
2), never a traceback. Run files are created owner-only (0600, in 0700 folders taxcheck
makes): they hold every prompt and answer of a run.

Each line is written with a single ``write`` and flushed, so an interrupted run loses at
most the line being written; the reader drops a torn last line with a warning, and the
writer cuts it off before appending so that a resumed run never glues a new record onto
half of an old one. Later lines win: a failed call that succeeds on a rerun is superseded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from taxcheck.errors import UserError
from taxcheck.jsonl import RecordWriter, dumps, read_lines  # noqa: F401 - dumps: one JSON line, re-exported
from taxcheck.suites.format import SuiteItem

FORMAT_VERSION = 1
CallKey = tuple[str, str, int, int]  # model spec, item id, sample, turn
MAX_SAMPLES = 1000  # --samples beyond this is not a run anyone paid for: a hostile header
MAX_LINE_BYTES = 64 * 1024 * 1024  # a call line holds at most ~1 M characters of answer


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) owner-only if missing; an existing folder is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SuiteRef(_Record):
    name: str
    path: str
    sha256: str
    items: int


class RunHeader(_Record):
    type: Literal["header"] = "header"
    format: int = FORMAT_VERSION
    taxcheck_version: str
    run_id: str
    created: str
    command: list[str]
    models: list[str]
    baseline: str | None = None
    suites: list[SuiteRef]
    params: dict[str, Any]
    endpoints: dict[str, dict[str, str]] = {}
    prices: list[list[Any]] = []  # the user's own price rows: [pattern, input, output]
    requests: dict[str, dict[str, Any]] = {}  # model -> what its requests carried (Params.describe + profile)
    sandbox: dict[str, Any] = {}  # {"requested", "tier", "why"}: where model code runs (code items only)
    variants: dict[str, dict[str, Any]] = {}  # variant name -> its definition (header values redacted)

    @field_validator("params")
    @classmethod
    def _sane_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        samples = v.get("samples", 1)
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
            raise ValueError(f"params.samples must be a whole number from 1 to {MAX_SAMPLES}, not {samples!r}")
        for key in ("temperature",):
            t = v.get(key)
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2):
                raise ValueError(f"params.{key} must be a number from 0 to 2 or null, not {t!r}")
        for key in ("max_tokens", "limit", "seed"):
            n = v.get(key)
            if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
                raise ValueError(f"params.{key} must be a whole number or null, not {n!r}")
        return v

    @field_validator("prices")
    @classmethod
    def _sane_prices(cls, rows: list[list[Any]]) -> list[list[Any]]:
        for i, row in enumerate(rows, start=1):
            ok = (len(row) == 3 and isinstance(row[0], str)
                  and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1e6 for x in row[1:]))
            if not ok:
                raise ValueError(f"prices row {i} must be [pattern, input USD/M, output USD/M], not {row!r}")
        return rows

    @model_validator(mode="after")
    def _baseline_is_a_model(self) -> "RunHeader":
        if self.baseline is not None and self.baseline not in self.models:
            raise ValueError(f"the baseline {self.baseline!r} is not among the models {self.models}")
        if len(set(self.models)) != len(self.models):
            raise ValueError("a model is listed twice")
        return self


class CallRecord(_Record):
    type: Literal["call"] = "call"
    model: str
    item: str
    sample: int = 0
    turn: int = 0
    text: str | None = None
    finish_reason: str | None = None
    api_refusal: bool = False
    served_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None  # hidden reasoning, counted inside output_tokens
    cached: bool = False
    latency_ms: float | None = None
    attempts: int = 1
    error: dict[str, Any] | None = None
    batch: bool = False  # answered through a provider batch API (priced at the batch discount)
    skipped: str | None = None  # not sent, on purpose (why): neither an answer nor a failure

    @property
    def key(self) -> CallKey:
        return (self.model, self.item, self.sample, self.turn)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @property
    def settled(self) -> bool:
        """Nothing left to send for this call: answered, or skipped on purpose."""
        return self.ok or (self.skipped is not None and self.error is None)

    @property
    def failed(self) -> bool:
        return not self.settled


class VerdictRecord(_Record):
    type: Literal["verdict"] = "verdict"
    model: str
    item: str
    sample: int = 0
    turn: int = 0
    grader: str  # e.g. "judge:refusal"
    judge: str
    label: str | None = None  # None: unscored (see reason)
    score: float | None = None
    reason: str = ""
    requests: int = 0  # the judge's own usage for this verdict
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def key(self) -> CallKey:
        return (self.model, self.item, self.sample, self.turn)


class CodeVerdictRecord(_Record):
    """The sandbox's verdict on one code answer. Stored, so that reading a run file never runs
    the code in it: ``report``, ``diff`` and the HTML report only read these."""

    type: Literal["code"] = "code"
    model: str
    item: str
    sample: int = 0
    turn: int = 0
    passed: bool | None = None  # None: not executed (no sandbox here), see reason
    reason: str = ""
    isolation: str = ""  # the sandbox tier it ran in (sandbox.TIERS)

    @property
    def key(self) -> CallKey:
        return (self.model, self.item, self.sample, self.turn)


class AdjustmentRecord(_Record):
    """A parameter a model rejected, and what the client sends instead (``clients.py``)."""

    type: Literal["adjustment"] = "adjustment"
    model: str  # the model name at the endpoint (shared by variants of one spec)
    specs: list[str] = []
    endpoint: str | None = None
    param: str
    fix: dict[str, Any]
    message: str = ""


class BatchRecord(_Record):
    """One provider batch of a ``--batch`` run; see the module docstring for its two states."""

    type: Literal["batch"] = "batch"
    id: str
    state: Literal["submitted", "collected"] = "submitted"
    status: str | None = None  # the provider's final status once collected (completed, expired, ...)
    provider: Literal["openai", "anthropic"] | None = None
    endpoint: str | None = None  # endpoint name
    url: str | None = None  # base URL, credentials redacted
    model: str | None = None  # the model spec every request of the batch is for
    created: str | None = None
    input_file_id: str | None = None  # OpenAI
    requests: dict[str, tuple[str, int, int]] = {}  # custom_id -> (item id, sample, turn)


@dataclass
class RunData:
    """A run file, read back: the header, the items, and the latest record per call."""

    header: RunHeader
    items: dict[str, SuiteItem]
    calls: dict[CallKey, CallRecord]
    verdicts: dict[tuple[CallKey, str], VerdictRecord] = field(default_factory=dict)
    dropped_torn_line: bool = False
    batches: dict[str, BatchRecord] = field(default_factory=dict)  # provider batch id -> latest state
    adjustments: list[AdjustmentRecord] = field(default_factory=list)
    code_verdicts: dict[CallKey, CodeVerdictRecord] = field(default_factory=dict)  # latest per call


def requests_sent(data: "RunData") -> dict[str, dict[str, Any]]:
    """Per model, what its requests actually carried: the form the run started with (header
    ``requests``) with every later adjustment applied, so that a paired comparison between a
    model answered at temperature 0 and one sampled at its provider's default is visible.
    ``temperature`` null means none was sent (the provider's default applied)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in data.header.models:
        base = dict(data.header.requests.get(spec) or {})
        if not base:  # a run file from before profiles: the run-level parameters were sent as is
            base = {k: data.header.params.get(k) for k in ("temperature", "max_tokens")}
        adjusted = []
        for adj in data.adjustments:
            if spec in adj.specs:
                base.update(adj.fix)
                adjusted.append({"param": adj.param, "fix": adj.fix, "message": adj.message})
        base["temperature_sent"] = base.get("temperature") is not None
        if adjusted:
            base["adjustments"] = adjusted
        out[spec] = base
    return out


def ok_calls(data: "RunData") -> Iterator[tuple[CallKey, CallRecord, SuiteItem]]:
    """Every answered call of a run with its suite item: what graders grade."""
    for key, rec in data.calls.items():
        if rec.ok:
            item = data.items.get(rec.item)
            if item is not None:
                yield key, rec, item


def read_run(path: Path, warn: Callable[[str], None] = lambda _m: None) -> RunData:
    """Read a run file; problems name ``file:line``. A torn last line is dropped with a warning."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such run file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    header: RunHeader | None = None
    items: dict[str, SuiteItem] = {}
    calls: dict[CallKey, CallRecord] = {}
    verdicts: dict[tuple[CallKey, str], VerdictRecord] = {}
    batches: dict[str, BatchRecord] = {}
    adjustments: list[AdjustmentRecord] = []
    code_verdicts: dict[CallKey, CodeVerdictRecord] = {}
    torn = False
    with fh:
        raw = list(_lines(fh, path))  # (text, ended by a newline), every line, capped in length
    last = max((i for i, (text, _c) in enumerate(raw, start=1) if text.strip()), default=0)
    for line in read_lines(text for text, _complete in raw):
        lineno = line.lineno
        try:
            if line.error is not None:
                if line.error == "nested too deeply":
                    raise UserError(f"{path}:{lineno}: not a taxcheck run record (nested too deeply)")
                if lineno == last:
                    warn(f"{path}:{lineno}: dropped a torn last line (the run was interrupted mid-write)")
                    torn = True
                    continue
                raise UserError(f"{path}:{lineno}: not a taxcheck run record ({line.error})")
            data = line.value
            if not isinstance(data, dict):
                raise ValueError("not an object")
            kind = data.get("type")
            if kind == "header":
                if header is not None:
                    raise UserError(f"{path}:{lineno}: a second header; is this two run files concatenated?")
                header = RunHeader.model_validate(data)
                if header.format > FORMAT_VERSION:
                    raise UserError(f"{path}: written by a newer taxcheck (format {header.format}); upgrade taxcheck")
            elif kind == "item":
                item = SuiteItem.model_validate(data.get("item"))
                items[item.id] = item
            elif kind == "call":
                rec = CallRecord.model_validate(data)
                prev = calls.get(rec.key)
                if prev is None or rec.settled or not prev.settled:
                    calls[rec.key] = rec
            elif kind == "verdict":
                v = VerdictRecord.model_validate(data)
                verdicts[(v.key, v.grader)] = v
            elif kind == "code":
                cv = CodeVerdictRecord.model_validate(data)
                code_verdicts[cv.key] = cv
            elif kind == "adjustment":
                adjustments.append(AdjustmentRecord.model_validate(data))
            elif kind == "batch":
                b = BatchRecord.model_validate(data)
                prev = batches.get(b.id)
                # a "collected" marker carries only the id and state: keep the submission's mapping
                batches[b.id] = prev.model_copy(update={"state": b.state, "status": b.status}) if prev and not b.requests else b
            else:
                raise ValueError(f"unknown record type {kind!r}")
        except RecursionError:
            raise UserError(f"{path}:{lineno}: not a taxcheck run record (nested too deeply)") from None
        except (ValueError, ValidationError, TypeError) as exc:
            if isinstance(exc, UserError):
                raise
            if lineno == last and not raw[lineno - 1][1]:
                warn(f"{path}:{lineno}: dropped a torn last line (the run was interrupted mid-write)")
                torn = True
                continue
            raise UserError(f"{path}:{lineno}: not a taxcheck run record ({_reason(exc)})") from None
        if header is None:
            raise UserError(f"{path}:{lineno}: the first line must be the run header; is this a run file?")
    if header is None:
        raise UserError(f"{path}: empty run file (no header)")
    return RunData(header=header, items=items, calls=calls, verdicts=verdicts, dropped_torn_line=torn, batches=batches,
                   adjustments=adjustments, code_verdicts=code_verdicts)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    return str(exc)[:300]


def _lines(fh, path: Path) -> Iterator[tuple[str, bool]]:
    """(text, ended by a newline) of every line; a line past MAX_LINE_BYTES is an error as soon
    as the cap is reached, never read whole."""
    lineno = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES:
            raise UserError(f"{path}:{lineno}: not a taxcheck run record (a line over {MAX_LINE_BYTES:,} bytes)")
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n"), raw.endswith(b"\n")


def _lock(fh: Any) -> bool:
    """Hold an exclusive advisory lock on an open run file for as long as it is open.

    Two processes resuming one run file at once (a CI retry while the first job still runs,
    two terminals, a colleague on a shared disk) would each send every missing call, paying
    twice, and one could cut the other's half-written last line as a torn tail. The lock is
    released when the file is closed, or when the process dies however it dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to take
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks (some network mounts): write unlocked, as before
        return True
    return True


class RunWriter:
    """Appends records to a run file, one flushed line each."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def open(self) -> None:
        """Open for append (creating it owner-only), first cutting off a torn tail so new lines start clean."""
        make_private_dir(self.path.parent)
        fh = os.fdopen(os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600), "a+b")
        if not _lock(fh):
            fh.close()
            raise UserError(f"{self.path}: another taxcheck process is writing this run file; wait for it to finish "
                            "(then rerun to resume), or give this run its own file with -o")
        size = fh.seek(0, os.SEEK_END)
        if size:
            fh.seek(max(0, size - 1))
            if fh.read(1) != b"\n":
                fh.seek(0)
                data = fh.read()
                cut = data.rfind(b"\n") + 1
                fh.truncate(cut)
                fh.seek(0, os.SEEK_END)
        self._fh = fh
        self._records = RecordWriter(fh)

    def write(self, record: dict[str, Any]) -> None:
        assert self._fh is not None, "RunWriter.open() first"
        self._records.write(record)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
