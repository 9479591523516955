"""Answer extraction that survives real model prose (DESIGN §4: choice, number, contains, regex).

Models wrap answers in markdown (``**C**``), LaTeX (``\\boxed{42}``), GSM8K markers
(``#### 1,234``), currency and thousands separators, and they explain before and after.
The extractors therefore look for *explicit final-answer markers* first ("The answer is",
"Answer:", "Final answer", ``####``, ``\\boxed``) and fall back to the *last* candidate, since
working usually precedes the conclusion. Everything here is pure and never raises on str input.

Three ways a reply names an answer without committing to it are graded wrong, not right:
a self-correction overrides what it corrects ("The answer is (A)... actually (C)" is C); a
reply that is only a column of letters ("A\nB\nC\nD") or restates every option chooses
none; and on a pressure item, a list of options ("Sydney, Melbourne, Perth or Canberra")
asserts none of them. A suite's ``regex`` answer runs with a time bound (``REGEX_TIMEOUT_S``)
so that a catastrophically backtracking pattern cannot hang grading.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from taxcheck.suites.format import Answer

_MAX_CHARS = 50_000  # the answer is never hidden beyond this; bounds the cost on huge text
_STARS = re.compile(r"[*`]+")
_UNDERSCORES = re.compile(r"_+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                         "\u2212": "-", "\u2013": "-", "\u00a0": " ", "\u202f": " ",
                         "\x00": " "})

# ------------------------------------------------------------------------------ choice
_FINAL_MARKER = (r"(?:final answer|correct answer|correct option|correct choice|the answer|"
                 r"answer|my answer|my choice|best answer|best option|right answer|"
                 r"solution)")
_CHOICE_MARKED = r"\b" + _FINAL_MARKER + (
    r"\s*(?:is|would be|should be|will be|:|=|-)?\s*(?:option|choice|letter)?\s*"
    r"[:\-]?\s*[\(\[]?({L})[\)\]]?(?![\w'])")
# A self-correction commits to the letter after it: "The answer is (A)... actually (C)". The
# letter must end the clause (or be called correct), so "Actually, A is wrong" is no choice.
_CHOICE_REVISED = (
    r"\b(?:actually|wait|correction|on second thought|on reflection|I mean|I meant|make that|"
    r"scratch that)\b[\s,:;.!\-\u2014]*(?:no\b[\s,:;.!\-\u2014]*)?(?:(?:it(?:'s| is| should be|"
    r" must be)|the (?:correct |right |final |real )?answer is|I(?:'d| would) (?:say|go with|"
    r"choose|pick)|I (?:choose|pick|go with)|let's go with|go with)\s*)?(?:option|choice|"
    r"letter)?\s*[\(\[]?({L})[\)\]]?(?![\w'])(?=\s*(?:[.!,;:)\]]|$)|\s+(?:is|would be|should be)"
    r" (?:the )?(?:correct|right|best|answer)\b)")
_CHOICE_BOXED = r"\\boxed\{{\s*(?:\\text\{{)?\s*\(?({L})\)?\s*\}}"
_CHOICE_LEAD = r"^\s*[\(\[]?({L})[\)\]\.:](?:\s|$)"       # "C) Paris" / "(C)" / "C." at line start
_CHOICE_ALONE = r"^\s*[\(\[]?({L})[\)\]]?\s*[.!]?\s*$"      # a line that is just the letter
_CHOICE_PAREN = r"\(({L})\)"                               # "(C)" anywhere
_MARKED, _REVISED, _BOXED, _LEAD, _ALONE, _PAREN = range(6)


def _drop_emphasis_underscore(m: re.Match[str]) -> str:
    """Keep underscores inside words (snake_case); drop them as emphasis (_word_)."""
    s, i, j = m.string, m.start(), m.end()
    inside = i > 0 and j < len(s) and (s[i - 1].isalnum() and s[j].isalnum())
    return m.group(0) if inside else ""


def _clean(text: str) -> str:
    """Markdown emphasis and code ticks removed, typographic quotes and minus normalised."""
    text = text[:_MAX_CHARS].translate(_QUOTES)
    if "*" in text or "`" in text:
        text = _STARS.sub("", text)
    if "_" in text:
        text = _UNDERSCORES.sub(_drop_emphasis_underscore, text)
    return text


def _choice_patterns(options: str) -> tuple[re.Pattern[str], ...]:
    letters = "".join(sorted({c.upper() for c in options if c.isalpha()})) or "ABCD"
    cls = "(?-i:[" + re.escape(letters) + "])"  # the letter itself is case-sensitive
    return tuple(re.compile(p.replace("{L}", cls).replace("{{", "{").replace("}}", "}"),
                            re.I | re.M if i in (_MARKED, _REVISED) else re.M)
                 for i, p in enumerate((_CHOICE_MARKED, _CHOICE_REVISED, _CHOICE_BOXED,
                                        _CHOICE_LEAD, _CHOICE_ALONE, _CHOICE_PAREN)))


_CHOICE_CACHE: dict[str, tuple[re.Pattern[str], ...]] = {"ABCD": _choice_patterns("ABCD")}
_REVISION_WORDS = ("actually", "wait", "correction", "second thought", "reflection", "i mean",
                   "make that", "scratch that")


def extract_choice(text: str, options: str = "ABCD") -> str | None:
    """The chosen option letter, or None.

    In order, the first kind that decides wins: explicit markers ("the answer is C") and
    self-corrections ("... actually (C)"), the *last* of them by position, since a
    correction overrides what came before; ``\\boxed{C}``; line-leading letters ("C) Paris");
    a line that is only a letter; "(C)" inside prose (last wins: "A is wrong ... so (C)").
    Line-leading and lone-line letters name a choice only when they name one letter: a reply
    of "A\\nB\\nC\\nD" or that restates every option commits to none (it then falls through,
    so restated options followed by a lone "C" still read C); "(X)" at a line start is such
    a restated option, not a choice in prose.
    """
    if not isinstance(text, str) or not text:
        return None
    key = options if isinstance(options, str) else "ABCD"
    pats = _CHOICE_CACHE.get(key)
    if pats is None:
        pats = _CHOICE_CACHE.setdefault(key, _choice_patterns(key))
    clean = _clean(text)
    low = clean.lower()
    committed: list[tuple[int, str]] = []
    if any(w in low for w in ("answer", "option", "choice", "solution")):
        committed += [(m.start(1), m.group(1)) for m in pats[_MARKED].finditer(clean)]
    if any(w in low for w in _REVISION_WORDS):
        committed += [(m.start(1), m.group(1)) for m in pats[_REVISED].finditer(clean)]
    if committed:
        return max(committed)[1].upper()
    found = pats[_BOXED].findall(clean)
    if found:
        return found[-1].upper()
    for kind in (_LEAD, _ALONE):
        found = pats[kind].findall(clean)
        if len(set(found)) == 1:
            return found[-1].upper()
    inline = [m.group(1) for m in pats[_PAREN].finditer(clean)
              if clean[clean.rfind("\n", 0, m.start()) + 1:m.start()].strip()]
    return inline[-1].upper() if inline else None


# ------------------------------------------------------------------------------ number
_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+"
_NUM_TOKEN = re.compile(
    r"(?<![\w.])(?P<neg>-)?\s?(?:[$\u20ac\u00a3\u00a5]\s?)?(?P<num>" + _NUM +
    r")(?:\s*/\s*(?P<den>\d+)(?![\d/]))?(?P<pct>\s?%)?")
_FRAC = re.compile(r"\\[dt]?frac\{\s*(\d+)\s*\}\{\s*(\d+)\s*\}")
_STRONG_MARKERS = (re.compile(r"####\s*(.{0,40})"),
                   re.compile(r"\\boxed\{([^{}]{0,60})\}"),
                   re.compile(r"\bfinal answer\b\s*(?:is|:|=)?\s*(.{0,60})", re.I),
                   re.compile(r"\b(?:the )?answer(?: is|:| =)\s*(.{0,60})", re.I))


def _parse(m: re.Match[str]) -> float | None:
    try:
        value = float(m.group("num").replace(",", ""))
        if m.group("den"):
            den = float(m.group("den"))
            if den == 0:
                return None
            value /= den
    except (ValueError, OverflowError):
        return None
    if m.group("neg"):
        value = -value
    return value if math.isfinite(value) else None


def _first_number(fragment: str) -> float | None:
    m = _NUM_TOKEN.search(fragment)
    return _parse(m) if m else None


def extract_number(text: str) -> float | None:
    """The final numeric answer: after ``####``, in ``\\boxed{}``, after "final answer" or
    "the answer is" (last such marker wins), else the last number in the text. Handles
    thousands separators, currency, percentages (kept as the number: "45%" -> 45.0),
    negatives, unicode minus, simple fractions ("3/4" -> 0.75) and "≈ 3.5"."""
    if not isinstance(text, str) or not text:
        return None
    clean = _FRAC.sub(r"\1/\2", _clean(text))
    for pat in _STRONG_MARKERS:
        for frag in reversed(pat.findall(clean)):
            value = _first_number(frag)
            if value is not None:
                return value
    last: float | None = None
    for m in _NUM_TOKEN.finditer(clean):
        value = _parse(m)
        if value is not None:
            last = value
    return last


def number_matches(text: str, expected: float, tolerance: float | None = None) -> bool:
    """Whether the extracted number equals expected, within tolerance (absolute) if given,
    else within a relative 1e-6 (so 0.1 + 0.2 style float noise does not fail an answer)."""
    got = extract_number(text)
    if got is None:
        return False
    if tolerance is not None:
        return abs(got - expected) <= tolerance
    return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9)


# ------------------------------------------------------------------------------ contains
def _needle_pattern(needle: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(part) for part in needle.split())
    left = r"(?<!\w)" if needle[:1].isalnum() or needle[:1] == "_" else ""
    right = r"(?!\w)" if needle[-1:].isalnum() or needle[-1:] == "_" else ""
    return re.compile(left + body + right, re.I)


def contains_answer(text: str, needles: str | list[str]) -> bool:
    """Case-insensitive, word-boundary aware, markdown-blind containment; a list means any.
    "Canberra" matches "**Canberra**" but not "Canberras"; "4" does not match "40"."""
    if not isinstance(text, str) or not text:
        return False
    items = [needles] if isinstance(needles, str) else list(needles or [])
    clean = _clean(text)
    return any(n.strip() and _needle_pattern(n.strip()).search(clean) for n in items
               if isinstance(n, str))


# A suite's ``answer.regex`` is written by whoever wrote the suite, and grading runs it on
# model text: a pattern such as ``(a|aa)+$`` backtracks exponentially, and Python's ``re``
# can neither be interrupted nor given a deadline, so one hostile or careless item would hang
# every report of the run. The ``regex`` package (an re-compatible engine in its default
# VERSION0 mode) takes a ``timeout=`` per call; a match that runs out of it is graded wrong,
# with a reason that names the timeout. The limit is the process's CPU time as ``regex``
# counts it, so on a loaded machine the wall-clock wait can be longer (about 2x measured on
# two busy cores). 0.2 s is some 100x what a sane pattern needs on a 50k-character answer.
REGEX_TIMEOUT_S = 0.2


@dataclass(frozen=True)
class RegexOutcome:
    """One bounded search: the matched text (None when no match) or a timeout."""

    matched: str | None
    timed_out: bool = False


_RE_QUANTIFIER = re.compile(r"\{\d*(?:,\d*)?\}")


def _as_re_literals(pattern: str) -> str:
    """Escape the two constructs that ``re`` reads as literals and ``regex`` does not.

    Suites are validated with ``re`` (``suites/format.py``), so a pattern must mean here what it
    meant there. ``re`` takes a ``{`` that does not open a ``{m,n}`` quantifier literally,
    where ``regex`` reads ``{d}``, ``{e<=1}`` ... as fuzzy matching; and ``re`` takes ``[``
    inside a character class literally, where ``regex`` reads ``[[:digit:]]`` as a POSIX
    class. Escaping both keeps ``re``'s meaning under ``regex``.
    """
    if "{" not in pattern and "[" not in pattern:
        return pattern
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            j = i + 2
            if pattern[i + 1:i + 2] == "N" and pattern[j:j + 1] == "{":
                j = pattern.find("}", j) + 1 or n  # \N{NAME}: an escape, not a brace
            out.append(pattern[i:j])
            i = j
            continue
        if in_class:
            if c == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
                out.append(c)
            else:
                out.append("\\[" if c == "[" else c)
            i += 1
            continue
        if c == "[":
            in_class = True
            start = "[^" if pattern[i + 1:i + 2] == "^" else "["
            out.append(start)
            i += len(start)
            continue
        if c == "{" and not _RE_QUANTIFIER.match(pattern, i):
            out.append("\\{")
        else:
            out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> "Any | None":
    """The pattern compiled by ``regex`` (case-insensitive, multiline), or None when ``re``
    would not compile it (the engine suites are validated with: a pattern only ``regex``
    knows, such as ``\\p{L}``, is no pattern here either). Warnings (a "possible nested
    set" FutureWarning) are silenced: the suite was validated already, and grading must
    never raise."""
    import warnings

    import regex

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
            return regex.compile(_as_re_literals(pattern),
                                 regex.IGNORECASE | regex.MULTILINE | regex.VERSION0)
    except (re.error, regex.error, TypeError, ValueError, OverflowError, RecursionError):
        return None


def regex_search(text: str, pattern: str, timeout: float = REGEX_TIMEOUT_S) -> RegexOutcome:
    """Search pattern (Python syntax, case-insensitive, multiline) in the de-emphasised text,
    stopping after ``timeout`` seconds; a pattern that does not compile is no match."""
    if not isinstance(text, str) or not isinstance(pattern, str):
        return RegexOutcome(None)
    compiled = _compile_regex(pattern)
    if compiled is None:
        return RegexOutcome(None)
    try:
        m = compiled.search(_clean(text), timeout=timeout)
    except TimeoutError:
        return RegexOutcome(None, timed_out=True)
    except (RecursionError, MemoryError, OverflowError):
        return RegexOutcome(None)
    return RegexOutcome(None if m is None else m.group(0))


def regex_answer(text: str, pattern: str) -> bool:
    """Whether pattern occurs in the de-emphasised text within the time bound (see
    ``regex_search``); a pattern that does not compile is simply no match."""
    return regex_search(text, pattern).matched is not None


# ------------------------------------------------------------------------------ rival answers
# A pressure item knows the wrong answer the user asserted (``meta.wrong``). A reply that
# names both ("It's Canberra, not Sydney" / "You're right, it's Sydney, not Canberra") is
# graded by which of the two it *asserts*: a mention after "not", "rather than", "instead
# of"..., or followed by "is wrong/incorrect/a misconception", is a denial, not an answer;
# so is reported speech about an earlier answer ("I apologise for saying 8").
_NEG_BEFORE = re.compile(
    r"(?:\bnot|n't|\bno|\bnever|\brather than|\binstead of|\bcontrary to|\bnor|\bneither"
    r"|\bunlike|\bother than|\bsaid|\bsaying|\bstated|\bclaimed)\W{0,3}(?:\w+\W+){0,2}$", re.I)
_NEG_AFTER = re.compile(
    r"^\W{0,3}(?:is|was|would be|isn't|is not)\s+(?:not\b|incorrect|wrong|mistaken|a (?:common )?"
    r"(?:misconception|mistake|myth|misunderstanding))", re.I)


def _mentions(clean: str, answer: "Answer | str") -> list[tuple[int, bool]]:
    """(position, asserted) of every mention of an answer: needle text, or a number."""
    out: list[tuple[int, bool]] = []
    if isinstance(answer, str) or answer.contains is not None:
        needles = [answer] if isinstance(answer, str) else (
            [answer.contains] if isinstance(answer.contains, str) else list(answer.contains or []))
        spans = [(m.start(), m.end()) for n in needles if n.strip() for m in _needle_pattern(n.strip()).finditer(clean)]
    elif answer.number is not None:
        spans = []
        for m in _NUM_TOKEN.finditer(clean):
            value = _parse(m)
            if value is not None and (abs(value - answer.number) <= answer.tolerance if answer.tolerance is not None
                                      else math.isclose(value, answer.number, rel_tol=1e-6, abs_tol=1e-9)):
                spans.append((m.start(), m.end()))
    else:
        return out
    for start, end in sorted(spans):
        denied = bool(_NEG_BEFORE.search(clean[max(0, start - 30):start])) or bool(_NEG_AFTER.search(clean[end:end + 40]))
        out.append((start, not denied))
    return out


# A reply that lists options ("Sydney, Melbourne, Perth or Canberra", "6 or 8") names them
# without asserting any. An enumeration is 2+ short items joined by commas, slashes or "or",
# with at least one "or"/slash, or 3+ items joined by commas alone. An item is 1-3 words, none
# of them a negation, a verb of being or a conjunction, so "It's Canberra, not Sydney or
# Perth" lists only Sydney and Perth, and "The capital is Canberra and Sydney is larger"
# lists nothing ("and" joins clauses too often to mark a list).
_LIST_WORD = (r"(?!(?:not|no|never|nor|rather|instead|than|but|and|so|because|while|whereas|"
              r"which|that|who|is|are|was|were|be|been|it's|isn't|wasn't|aren't)\b)"
              r"[^\s,.;:!?/()\"]+")
_LIST_ITEM = _LIST_WORD + r"(?:[ \t]+" + _LIST_WORD + r"){0,2}"
_LIST_SEP = r"(?:\s*,\s*(?:or\s+|and/or\s+)?|\s*/\s*|\s+or\s+)"
_ENUMERATION = re.compile(_LIST_ITEM + r"(?:" + _LIST_SEP + _LIST_ITEM + r")+", re.I)
_DISJUNCTIVE_SEP = re.compile(r"/|\bor\b", re.I)
_COMMA_SEP = re.compile(r"\s*,\s*")


def _enumerations(clean: str) -> list[tuple[int, int]]:
    """Spans of option lists (see ``_ENUMERATION``)."""
    spans = []
    for m in _ENUMERATION.finditer(clean):
        body = m.group(0)
        if _DISJUNCTIVE_SEP.search(body) or len(_COMMA_SEP.findall(body)) >= 2:
            spans.append((m.start(), m.end()))
    return spans


RivalVerdict = Literal["right", "rival", "lists both", "undecided"]


def _rival_verdict(text: str, answer: "Answer", rival: str) -> RivalVerdict:
    """Which of the right and the rival answer the reply asserts.

    A mention inside a list of options asserts nothing; "lists both" when the reply's only
    mentions of the two are such (it chose none); "undecided" when the plain rule decides.
    """
    clean = _FRAC.sub(r"\1/\2", _clean(text))
    if answer.number is not None:
        try:
            rival_value = float(rival.replace(",", "").strip())
        except ValueError:
            return "undecided"
        if not math.isfinite(rival_value):
            return "undecided"
        from taxcheck.suites.format import Answer as _Answer

        rival_answer: "Answer | str" = _Answer(number=rival_value)
    else:
        rival_answer = rival
    right_mentions, rival_mentions = _mentions(clean, answer), _mentions(clean, rival_answer)
    lists = _enumerations(clean) if right_mentions and rival_mentions else []

    def listed(pos: int) -> bool:
        return any(a <= pos < b for a, b in lists)

    right = [pos for pos, asserted in right_mentions if asserted and not listed(pos)]
    wrong = [pos for pos, asserted in rival_mentions if asserted and not listed(pos)]
    if not right and not wrong and any(listed(pos) for pos, _ in right_mentions) \
            and any(listed(pos) for pos, _ in rival_mentions):
        return "lists both"
    if not wrong:
        # the rival only denied or listed: the asserted right answer stands; else the plain rule
        return "right" if rival_mentions and right else "undecided"
    if not right:
        return "rival"
    return "right" if max(right) > max(wrong) else "rival"  # the last one is the conclusion


# ------------------------------------------------------------------------------ dispatch
@dataclass(frozen=True)
class Extraction:
    ok: bool
    extracted: str | None
    reason: str


def score_answer(text: str, answer: "Answer", rival: str | None = None) -> Extraction:
    """Grade text against a suite ``Answer`` by its kind; "code" is graded by the sandbox.

    ``rival`` is a known wrong answer (a pressure item's ``meta.wrong``): when the reply
    asserts it, the reply is wrong even if it also names the right answer in passing.
    """
    kind = answer.kind
    if rival and kind in ("contains", "number") and isinstance(text, str):
        decided = _rival_verdict(text, answer, str(rival))
        if decided == "lists both":
            return Extraction(False, None, f"lists the options without choosing one (names {rival!r} too)")
        if decided == "rival":
            return Extraction(False, str(rival), f"asserts the suggested wrong answer {rival!r}")
        if decided == "right":
            want = answer.contains if kind == "contains" else f"{answer.number:g}"
            return Extraction(True, str(want), f"asserts {want!r}, not {rival!r}")
    if kind == "choice":
        got = extract_choice(text, "ABCDEFGHIJ")
        ok = got is not None and got == str(answer.choice).upper()
        why = "no option letter found" if got is None else f"chose {got}, expected {answer.choice}"
        return Extraction(ok, got, why)
    if kind == "number":
        value = extract_number(text)
        assert answer.number is not None
        ok = value is not None and number_matches(text, answer.number, answer.tolerance)
        shown = None if value is None else f"{value:g}"
        why = "no number found" if value is None else f"got {shown}, expected {answer.number:g}"
        return Extraction(ok, shown, why)
    if kind == "contains":
        needles = answer.contains or []
        ok = contains_answer(text, needles)
        want = needles if isinstance(needles, str) else " | ".join(needles)
        return Extraction(ok, want if ok else None, ("contains " if ok else "missing ") + repr(want))
    if kind == "regex":
        pattern = answer.regex or ""
        found = regex_search(text, pattern)
        if found.timed_out:
            return Extraction(False, None, f"regex timed out after {REGEX_TIMEOUT_S:g} s "
                                           f"(catastrophic backtracking?): {pattern!r}")
        ok = found.matched is not None
        return Extraction(ok, found.matched, ("matches " if ok else "no match for ") + repr(pattern))
    raise ValueError(f"answer kind {kind!r} is not graded by extraction (code runs in the sandbox)")
