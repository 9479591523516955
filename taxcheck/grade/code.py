"""The ``code`` scorer: pull the function out of a model's prose and run the item's tests on it.

Why extraction is lenient: models wrap code in fences with or without a language tag, write a
first draft and then a fix, split helpers into their own block, or answer with a bare
function after "Here is the code:". A capability score must measure the code, not the
formatting, so every one of those shapes is accepted; the sandbox then decides.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from taxcheck.grade.sandbox import SandboxChoice, choose, run_tests

# An opening fence (``` or ~~~, possibly indented, optional info string) up to the matching
# closing fence of the same character and at least the same length, or the end of the text.
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)"
    r"(?:^[ \t]*(?P=fence)[`~]*[ \t]*$|\Z)",
    re.M | re.S,
)
_NOT_PYTHON = {
    "bash", "sh", "shell", "console", "zsh", "text", "txt", "output", "json", "yaml", "yml",
    "javascript", "js", "typescript", "ts", "java", "c", "cpp", "c++", "go", "rust", "ruby",
    "sql", "html", "css", "markdown", "md", "plaintext", "csv", "xml", "toml", "ini",
}
_CODE_START = re.compile(r"^(?:async\s+def|def|class|import|from\s+\S+\s+import|@\w)")


@dataclass(frozen=True)
class CodeVerdict:
    """``ok`` when the extracted code passed the tests; ``reason`` says why not.

    ``ok is None`` means unscored: no sandbox was available, so nothing was run (``reason``
    says why and how to get one). ``isolation`` is the sandbox tier that ran it ("none" then).
    """

    ok: bool | None
    reason: str
    extracted: str | None
    isolation: str = ""


def _defines(src: str, name: str) -> bool:
    pat = rf"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+{re.escape(name)}\b|^{re.escape(name)}[ \t]*(?::[^=\n]*)?="
    return re.search(pat, src, re.M) is not None


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info, body) of every fenced block, dedented; bodies of non-Python languages kept too."""
    blocks = []
    for m in _FENCE.finditer(text):
        info = (m.group("info") or "").strip().lower().split(" ")[0].strip("{}.")
        body = textwrap.dedent(m.group("body")).strip("\n")
        if body.strip():
            blocks.append((info, body))
    return blocks


def _names_used(src: str) -> set[str]:
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(re.findall(r"[A-Za-z_]\w*", src))
    # Free names only, roughly: loaded somewhere and never bound in the block itself.
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in (*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg) if a}
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loaded - bound


def _top_level_defs(src: str) -> list[tuple[set[str], str]]:
    """Each top-level import, def, class or simple assignment with the names it binds."""
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out = []
    for node in tree.body:
        names: set[str] = set()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = {node.name}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
        if names:
            seg = ast.get_source_segment(src, node, padded=False)
            if seg is not None:
                if getattr(node, "decorator_list", None):
                    first = min(d.lineno for d in node.decorator_list)
                    seg = "\n".join(src.splitlines()[first - 1 : node.end_lineno])
                out.append((names, seg))
    return out


def _with_helpers(main: str, others: list[str]) -> str:
    """Prepend what ``main`` uses but does not define, found in the other blocks."""
    own = {n for names, _ in _top_level_defs(main) for n in names}
    pool = [d for other in others for d in _top_level_defs(other)]
    needed = _names_used(main) - own
    chosen: list[str] = []
    changed = True
    while changed:  # helpers may need helpers of their own
        changed = False
        for names, seg in pool:
            if seg not in chosen and names & needed:
                chosen.append(seg)
                needed |= _names_used(seg) - own
                own |= names
                changed = True
    if not chosen:
        return main
    imports = [s for s in chosen if s.startswith(("import ", "from "))]
    rest = [s for s in chosen if s not in imports]
    return "\n".join(imports + rest) + "\n\n\n" + main


def _bare_code(text: str, entry_point: str) -> str | None:
    """A function written straight into prose: the code-looking run of lines around it."""
    if _parses(text) and _defines(text, entry_point):
        return text.strip("\n")
    lines = text.splitlines()
    anchor = next(
        (i for i, ln in enumerate(lines) if re.match(rf"\s*(?:async\s+)?def\s+{re.escape(entry_point)}\b", ln)), None
    )
    if anchor is None:
        return None
    indent = len(lines[anchor]) - len(lines[anchor].lstrip())
    start = anchor
    while start > 0:  # imports, decorators, helpers and comments just above it
        prev = lines[start - 1]
        body = prev[indent:] if prev[:indent].strip() == "" else None
        if body is None:
            break
        if prev.strip() == "" or _CODE_START.match(body) or body.startswith(("#", " ", "\t")):
            start -= 1
            continue
        break
    end = anchor + 1
    while end < len(lines):  # the body, and further top-level code until prose resumes
        ln = lines[end]
        body = ln[indent:] if ln[:indent].strip() == "" else None
        if body is None:
            break
        if ln.strip() == "" or body.startswith((" ", "\t", "#")) or _CODE_START.match(body) or body.startswith((")", "]", "}")):
            end += 1
            continue
        break
    chunk = textwrap.dedent("\n".join(lines[start:end])).strip("\n")
    # Trim trailing lines until it parses (prose that happened to be indented, say).
    trimmed = chunk.splitlines()
    while trimmed and not _parses("\n".join(trimmed)):
        trimmed.pop()
    if trimmed and _defines("\n".join(trimmed), entry_point):
        return "\n".join(trimmed).strip("\n")
    return chunk or None


def extract_code(text: str, entry_point: str) -> str | None:
    """The Python source in a response that should define ``entry_point``, or None.

    Several fenced blocks: the last one that defines the entry point and parses wins (models
    tend to revise), with imports and helpers it uses taken from the other blocks. No block
    defines it: all Python-looking blocks joined, so the sandbox reports a precise failure.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = _fenced_blocks(text)
    python = [b for info, b in blocks if info not in _NOT_PYTHON]
    if blocks:
        defining = [b for b in python if _defines(b, entry_point)] or [
            b for _, b in blocks if _defines(b, entry_point)
        ]
        if defining:
            parsing = [b for b in defining if _parses(b)]
            main = (parsing or defining)[-1]
            others = [b for b in python if b is not main]
            return _with_helpers(main, others)
    bare = _bare_code(text, entry_point)
    if bare is not None:
        return bare
    if python:
        return "\n\n".join(python)
    return None


def score_code(
    text: str, tests: str, entry_point: str, timeout_s: float = 10.0, sandbox: str | SandboxChoice = "auto"
) -> CodeVerdict:
    """Extract, run in the sandbox, and say pass/fail with the sandbox's reason. Never raises.

    Without a sandbox every item is unscored, even one with no code in it: scoring only those
    as wrong would bias accuracy down, since answers that do contain code are likelier right.
    A ``sandbox`` name that ``choose`` does not know is a caller's error and raises.
    """
    choice = sandbox if isinstance(sandbox, SandboxChoice) else choose(sandbox)
    try:
        code = extract_code(text, entry_point)
    except Exception as exc:  # extraction is best effort; a bug there must not stop a run
        code, failure = None, f"no code found (extraction error: {type(exc).__name__})"
    else:
        failure = "no code found"
    if not choice.available:
        return CodeVerdict(None, f"not executed: {choice.why}", code, "none")
    if code is None:
        return CodeVerdict(False, failure, None, choice.tier)
    try:
        result = run_tests(code, tests, entry_point, timeout_s=timeout_s, sandbox=choice)
    except Exception as exc:  # e.g. no more file descriptors in the parent: ours, not the model's
        return CodeVerdict(None, f"sandbox error: {type(exc).__name__}: {exc}"[:300], code, choice.tier)
    if not result.executed:
        return CodeVerdict(None, result.reason, code, result.isolation)
    return CodeVerdict(result.passed, result.reason, code, result.isolation)
