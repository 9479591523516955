"""The floor plan holds (issue 16): imports only point down the steps of a run.

    cli -> run -> report -> measure -> grade -> send / cost -> runfile -> suites -> vocabulary

The package's imports are read with ``ast`` (no import is executed), so a module that
reaches up a layer fails here, named with its line, before the plan can drift.
"""

from __future__ import annotations

import ast
from pathlib import Path

import taxcheck

PACKAGE = Path(taxcheck.__file__).parent
# layer of each top-level module or folder of taxcheck/; a higher layer may import a lower one
LAYERS = {
    "__init__": 0, "errors": 0, "paths": 0, "dimensions": 0, "console": 0, "layout": 0, "jsonl": 0,
    "suites": 1,
    "runfile": 2,  # the run record: it holds suite items, and everything after the suite reads it
    "send": 3, "cost": 3,  # siblings: sending reserves money, estimates read the cache
    "grade": 4,
    "measure": 5,
    "report": 6,
    "run": 7,
    "cli": 8, "__main__": 8,
}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "taxcheck":
        return None
    return 0 if len(parts) == 1 else LAYERS.get(parts[1])


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        out.append((name if name != "taxcheck" else "taxcheck.__init__", path))
    return out


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "taxcheck":  # from taxcheck import stats: the name is a module
                found += [(node.lineno, f"taxcheck.{a.name}") for a in node.names]
    return found


def test_every_module_has_a_layer():
    missing = [name for name, _ in _modules() if _layer(name) is None]
    assert not missing, f"modules outside the floor plan (add them to LAYERS): {missing}"


def test_imports_point_down():
    up = []
    for name, path in _modules():
        mine = _layer(name)
        for lineno, target in _imports(path):
            theirs = _layer(target)
            if theirs is not None and theirs > mine:
                up.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {name} imports {target}, a layer above it")
    assert not up, "imports that point up the steps of a run:\n" + "\n".join(up)


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The test itself can fail: a suites module importing the report layer is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from taxcheck.report.table import Gate\n", encoding="utf-8")
    assert _layer("taxcheck.suites.bad") == 1 and [t for _, t in _imports(bad)] == ["taxcheck.report.table"]
    assert _layer("taxcheck.report.table") > _layer("taxcheck.suites.bad")


def test_each_folder_says_what_its_step_takes_and_hands_on():
    for folder in ("suites", "send", "cost", "grade", "measure", "report"):
        doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "Takes" in doc and "Hands on" in doc and "Start with" in doc, folder
