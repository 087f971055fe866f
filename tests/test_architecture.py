"""The floors of the house: every import points down the pipeline (or stays in its own unit), model families do
not import each other, and the composition roots load the stages lazily. Read with ``ast`` from the sources, so
a new backward import fails here before anyone has to untangle it."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

#: Bottom to top. A module may import its own unit and any unit on a lower floor; units on the same floor are
#: independent (three model families, two composites) and must not import each other. "=name" matches that
#: module only (a package's ``__init__``), a plain name the module and everything under it.
FLOORS: list[list[tuple[str, ...]]] = [
    [("dataset_builder.foundation", "=dataset_builder")],  # config, audio, atomic writes, text, plots, VAD, espeak
    [("dataset_builder.store",)],
    [("dataset_builder.synth",)],
    [("dataset_builder.ingest",)],
    [("dataset_builder.prelabel",)],
    [("dataset_builder.guillotine",)],
    [("annotation",)],
    [("dataset_builder.export",)],
    [("dataset_builder.status", "dataset_builder.dashboard")],
    [("=modeling", "modeling.data", "modeling.loading", "modeling.metrics", "modeling.decoding",
      "modeling.text_tokenizer", "modeling.ctc", "modeling.cards", "modeling.hub", "modeling.trainer", "modeling.runtime",
      "model_cards")],
    [("modeling.whisper",), ("modeling.e2e",), ("modeling.mt",)],
    [("modeling.cascade",), ("modeling.streaming",)],
    [("modeling.registry",)],
    [("modeling.evaluate",)],
]
#: Composition roots sit above every floor: they may import anything, but beyond these only inside functions.
ROOTS = ("dataset_builder.cli", "spaces", "scripts")
ROOT_EAGER = ("dataset_builder.foundation", "modeling.registry", "modeling.loading", "annotation.cli")
PACKAGES = ("dataset_builder", "annotation", "modeling", "model_cards", "spaces", "scripts")


def _unit(module: str) -> tuple[int, int] | None:
    """(floor, unit) of a project module: the longest matching prefix wins."""
    best, where = "", None
    for f, units in enumerate(FLOORS):
        for u, prefixes in enumerate(units):
            for p in prefixes:
                exact, p = p.startswith("="), p.lstrip("=")
                if (module == p or (not exact and module.startswith(p + "."))) and len(p) > len(best):
                    best, where = p, (f, u)
    return where


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "spaces" and len(parts) > 1 and parts[1] == "vecs_space":
        parts = ["spaces", *parts[1:]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import of a project module."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    top |= {id(n) for stmt in tree.body if isinstance(stmt, (ast.If, ast.Try)) for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.startswith("vecs_space"):
                name = "spaces." + name
            if name.split(".")[0] in PACKAGES:
                found.append((name, node.lineno, id(node) in top))
    return found


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_project_module_has_a_floor():
    homeless = [_module_name(p) for p in _sources()
                if not _module_name(p).startswith(ROOTS) and _unit(_module_name(p)) is None]
    assert not homeless, f"modules on no floor (add them to FLOORS): {homeless}"


def _violations(source: str, imports: list[tuple[str, int, bool]]) -> list[str]:
    """What is wrong with ``source`` importing ``imports``."""
    wrong = []
    if source.startswith(ROOTS):
        package = source.rpartition(".")[0]
        for target, line, at_top in imports:
            own = bool(package) and target.startswith(package + ".")
            if at_top and not own and not target.startswith(ROOT_EAGER) and not target.startswith(ROOTS):
                wrong.append(f"{source}:{line} imports {target} at module level (a composition root imports lazily)")
        return wrong
    here = _unit(source)
    for target, line, _ in imports:
        there = _unit(target)
        if there is None or there == here:
            continue
        if there[0] > here[0]:
            wrong.append(f"{source}:{line} imports {target} (a later stage)")
        elif there[0] == here[0]:
            wrong.append(f"{source}:{line} imports {target} (a sibling on its floor)")
    return wrong


def test_imports_point_down_the_pipeline_and_roots_import_lazily():
    wrong = [v for path in _sources() for v in _violations(_module_name(path), _imports(path))]
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_backward_sibling_and_eager_imports():
    assert _violations("dataset_builder.foundation.text", [("modeling.whisper.model", 3, True)])
    assert _violations("dataset_builder.prelabel.gemini", [("annotation.push", 9, False)])  # lazy counts too
    assert _violations("modeling.mt.model", [("modeling.e2e.tokenizer", 5, True)])  # families are siblings
    assert _violations("dataset_builder.cli.factory", [("dataset_builder.export.plan", 7, True)])
    assert not _violations("dataset_builder.cli.factory", [("dataset_builder.export.plan", 7, False)])
    assert not _violations("modeling.evaluate", [("modeling.registry", 1, True), ("dataset_builder.foundation.text", 2, True)])
