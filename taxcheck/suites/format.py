"""The suite format (DESIGN §3): one JSON item a line, pairs linked by ``pair``/``variant``.

The format is a public interface: users write suites by hand and importers write them
from public datasets. ``SuiteItem`` is therefore strict (``extra="forbid"``) so that a
typo in a field name is an error at ``validate`` time rather than a silently ignored key.
Loading reports *every* problem of a file as ``file:line: message``, because a user fixing
a 500-line suite wants the whole list at once, not one error per run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taxcheck.errors import SuiteError
from taxcheck.jsonl import read_lines
from taxcheck.paths import builtin_suite_names, prompts_dir  # noqa: F401 - re-exported

Category = Literal[
    "over_refusal",
    "harmful_refusal",
    "creative",
    "dual_use",
    "capability.knowledge",
    "capability.math",
    "capability.code",
    "sycophancy.pressure",
    "sycophancy.pushback",
]
CATEGORIES: tuple[str, ...] = get_args(Category)  # in this order in every listing
Variant = Literal["benign", "harmful", "neutral", "pressure"]
Expect = Literal["comply", "refuse", "answer"]

# What each category must expect; a refusal item that "expects an answer" is a bug.
EXPECT_BY_CATEGORY: dict[str, str] = {
    "over_refusal": "comply",
    "harmful_refusal": "refuse",
    "creative": "comply",
    "dual_use": "comply",
    "capability.knowledge": "answer",
    "capability.math": "answer",
    "capability.code": "answer",
    "sycophancy.pressure": "answer",
    "sycophancy.pushback": "answer",
}
# Which variants a paired category uses, and what the pair must hold.
PAIR_VARIANTS: dict[str, tuple[str, str]] = {
    "refusal": ("benign", "harmful"),
    "sycophancy.pressure": ("neutral", "pressure"),
}
MAX_PROMPT_CHARS = 200_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Answer(_Strict):
    """How a correct answer is recognised; exactly one kind is set."""

    choice: str | None = Field(default=None, pattern=r"^[A-J]$")
    number: float | None = None
    tolerance: float | None = Field(default=None, ge=0)
    contains: str | list[str] | None = None
    regex: str | None = None
    tests: str | None = None
    entry_point: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Answer":
        kinds = [k for k in ("choice", "number", "contains", "regex", "tests") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "answer needs exactly one of choice, number, contains, regex, tests"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        if self.tests is not None and not self.entry_point:
            raise ValueError("answer.tests needs answer.entry_point (the function the tests call)")
        if self.tolerance is not None and self.number is None:
            raise ValueError("answer.tolerance only goes with answer.number")
        if isinstance(self.contains, list) and not self.contains:
            raise ValueError("answer.contains must not be an empty list")
        if self.regex is not None:
            import re

            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"answer.regex does not compile: {exc}") from None
        return self

    @property
    def kind(self) -> str:
        for k in ("choice", "number", "contains", "regex", "tests"):
            if getattr(self, k) is not None:
                return "code" if k == "tests" else k
        raise AssertionError("unreachable: validated to have one kind")


class SuiteItem(_Strict):
    """One line of a suite file."""

    id: str = Field(min_length=1, max_length=200)
    category: Category
    type: str | None = None
    pair: str | None = None
    variant: Variant | None = None
    system: str | None = None
    prompt: str | list[Message] | None = None
    turns: list[str] | None = None
    expect: Expect
    answer: Answer | None = None
    meta: dict[str, str | int | float | bool | None] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> "SuiteItem":
        if (self.prompt is None) == (self.turns is None):
            raise ValueError("give exactly one of prompt or turns")
        if isinstance(self.prompt, str) and not self.prompt.strip():
            raise ValueError("prompt is empty")
        if isinstance(self.prompt, list):
            if not self.prompt or self.prompt[-1].role != "user":
                raise ValueError("a prompt given as messages must end with a user message")
        if self.turns is not None:
            if len(self.turns) != 2 or not all(t.strip() for t in self.turns):
                raise ValueError("turns must hold exactly two non-empty user messages")
            if self.category != "sycophancy.pushback":
                raise ValueError("turns are only for category sycophancy.pushback")
        elif self.category == "sycophancy.pushback":
            raise ValueError("sycophancy.pushback items need turns: [question, pushback]")
        want = EXPECT_BY_CATEGORY[self.category]
        if self.expect != want:
            raise ValueError(f"category {self.category} expects {want!r}, not {self.expect!r}")
        if self.expect == "answer" and self.answer is None:
            raise ValueError("expect 'answer' needs an answer")
        if self.expect != "answer" and self.answer is not None:
            raise ValueError(f"expect {self.expect!r} takes no answer")
        if self.category == "capability.code" and (self.answer is None or self.answer.tests is None):
            raise ValueError("capability.code items need answer.tests and answer.entry_point")
        if self.category == "capability.knowledge" and self.answer is not None and self.answer.choice is None:
            raise ValueError("capability.knowledge items are multiple choice: answer.choice")
        fam = pair_family(self.category)
        if self.pair is not None:
            if fam is None:
                raise ValueError(f"category {self.category} is not paired; drop 'pair'")
            allowed = PAIR_VARIANTS[fam]
            if self.variant not in allowed:
                raise ValueError(f"a {fam} pair item needs variant {' or '.join(allowed)}")
        elif self.variant is not None:
            raise ValueError("variant given without pair")
        if self.category == "sycophancy.pressure" and self.pair is None:
            raise ValueError("sycophancy.pressure items come in pairs (pair, variant neutral/pressure)")
        if self.variant == "benign" and self.category != "over_refusal":
            raise ValueError("variant benign belongs to category over_refusal")
        if self.variant == "harmful" and self.category != "harmful_refusal":
            raise ValueError("variant harmful belongs to category harmful_refusal")
        if len(self.text_of_prompt()) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt longer than {MAX_PROMPT_CHARS} characters")
        return self

    def text_of_prompt(self) -> str:
        """All user-visible text of the item, for duplicate checks and display."""
        if self.turns is not None:
            return "\n".join(self.turns)
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n".join(m.content for m in self.prompt or [])

    def first_messages(self) -> list[dict[str, str]]:
        """The chat messages of the first (or only) request."""
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        if self.turns is not None:
            msgs.append({"role": "user", "content": self.turns[0]})
        elif isinstance(self.prompt, str):
            msgs.append({"role": "user", "content": self.prompt})
        else:
            msgs.extend({"role": m.role, "content": m.content} for m in self.prompt or [])
        return msgs


    def turn_messages(self, turn: int, first_answer: str = "") -> list[dict[str, str]]:
        """The messages of request ``turn``: the first request, or, for a pushback item's
        second turn, the first request, the model's own first answer and the pushback."""
        msgs = self.first_messages()
        if turn == 0:
            return msgs
        if self.turns is None:
            raise ValueError(f"item {self.id} has a single turn")
        return msgs + [{"role": "assistant", "content": first_answer}, {"role": "user", "content": self.turns[1]}]

    @property
    def n_turns(self) -> int:
        return 1 if self.turns is None else 2


def pair_family(category: str) -> str | None:
    if category in ("over_refusal", "harmful_refusal"):
        return "refusal"
    if category == "sycophancy.pressure":
        return "sycophancy.pressure"
    return None


@dataclass(frozen=True)
class Suite:
    """A loaded, validated suite: its items in file order and the hash of its bytes."""

    name: str
    path: str
    sha256: str
    items: tuple[SuiteItem, ...]


# --------------------------------------------------------------------------- loading


def _format_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after[_coherent()]",))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field missing"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_lines(lines: Iterable[str | bytes], label: str) -> tuple[list[SuiteItem], list[str]]:
    """Parse suite lines; returns the good items and every problem as ``label:line: msg``.

    Cross-item checks (unique ids, complete pairs) run here too, because they are
    problems of the file, not of one line.
    """
    items: list[SuiteItem] = []
    problems: list[str] = []
    where: dict[str, int] = {}

    def texts() -> Iterator[str]:
        """Each line as text; an undecodable one is a problem, a ``//`` comment is skipped
        (both as an empty line, so that the numbers stay the file's)."""
        for lineno, raw in enumerate(lines, start=1):
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problems.append(f"{label}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start})")
                    raw = ""
            yield "" if raw.lstrip().startswith("//") else raw

    for line in read_lines(texts()):
        lineno, data = line.lineno, line.value
        if line.error is not None:
            problems.append(f"{label}:{lineno}: " + ("not valid JSON (too deeply nested)" if line.error == "nested too deeply" else line.error))
            continue
        if not isinstance(data, dict):
            problems.append(f"{label}:{lineno}: expected a JSON object, got {type(data).__name__}")
            continue
        try:
            item = SuiteItem.model_validate(data)
        except ValidationError as exc:
            problems.append(f"{label}:{lineno}: {_format_validation(exc)}")
            continue
        except (RecursionError, ValueError, TypeError) as exc:  # pathological input
            problems.append(f"{label}:{lineno}: invalid item ({type(exc).__name__})")
            continue
        if item.id in where:
            problems.append(f"{label}:{lineno}: duplicate id {item.id!r} (first on line {where[item.id]})")
            continue
        where[item.id] = lineno
        items.append(item)
    problems.extend(_pair_problems(items, where, label))
    return items, problems


def _pair_problems(items: list[SuiteItem], where: dict[str, int], label: str) -> list[str]:
    problems: list[str] = []
    by_pair: dict[tuple[str, str], list[SuiteItem]] = defaultdict(list)
    for item in items:
        if item.pair is not None:
            by_pair[(pair_family(item.category) or "", item.pair)].append(item)
    for (fam, pair), members in by_pair.items():
        variants = sorted(m.variant or "" for m in members)
        want = sorted(PAIR_VARIANTS[fam])
        if variants != want:
            first = min(where[m.id] for m in members)
            problems.append(
                f"{label}:{first}: pair {pair!r} has variants {variants}, needs exactly {want}"
            )
    return problems


def load_suite(path: str | Path, name: str | None = None) -> Suite:
    """Load and validate one suite file; raises ``SuiteError`` listing every problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SuiteError([f"{p}: no such suite file (built-in suites: {', '.join(builtin_suite_names())})"]) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise SuiteError([f"{p}: cannot read ({exc.strerror})"]) from None
    items, problems = parse_lines(data.splitlines(), str(p))
    if problems:
        raise SuiteError(problems)
    if not items:
        raise SuiteError([f"{p}: the suite has no items"])
    return Suite(name=name or p.stem, path=str(p), sha256=hashlib.sha256(data).hexdigest(), items=tuple(items))


# --------------------------------------------------------------------------- built-ins


def resolve_suite(ref: str) -> Suite:
    """A ``-s`` argument: a built-in name, a path, or ``FORMAT:FILE`` for an importer."""
    if ref in builtin_suite_names():
        return load_suite(prompts_dir() / "suites" / f"{ref}.jsonl", name=ref)
    fmt, sep, rest = ref.partition(":")
    if sep and not Path(ref).exists() and len(fmt) > 1:
        from taxcheck.suites.importers import (
            import_suite,  # lazy: importers are only for this path
        )

        return import_suite(fmt, rest)
    return load_suite(ref)


def iter_items(suites: Iterable[Suite]) -> Iterator[SuiteItem]:
    for suite in suites:
        yield from suite.items
