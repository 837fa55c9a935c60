"""The library code a rule's script runs, and a checksum of it, so that code changes rerun the rule.

Snakemake's code trigger sees only a rule's script; every rule also gets a ``code`` param, the
checksum of its script and of every library module the script reaches through its imports, so
editing ``slidesnake/store/writer.py`` reruns ``ingest`` (and what depends on its outputs) but not
``train``. Imports are followed as text (``ast``), without running any code; package faces
(``__init__.py``) export the read side only, so importing a reader does not reach a writer.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent


def _module_file(base: Path, dotted: str) -> Path | None:
    """The file of module ``dotted`` below the package folder ``base`` (a module or a package)."""
    target = base.joinpath(*dotted.split("."))
    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


#: The rule layer: a script runs one function of its rule module, so only that function's imports count.
RULES = LIBRARY / "rules"


def _library_files(
    base: Path, module: str | None, names: list[ast.alias]
) -> list[tuple[Path, frozenset[str]]]:
    """The library files an import runs: the module, its packages' __init__ files, imported submodules.

    Each comes with the names imported from it when it is a rule module (:data:`RULES`), else none.
    """
    files = [base / "__init__.py"]
    imported: frozenset[str] = frozenset()
    if module:
        parts = module.split(".")
        files += [f for k in range(1, len(parts) + 1) if (f := _module_file(base, ".".join(parts[:k])))]
        base = base.joinpath(*parts)
        imported = frozenset(alias.name for alias in names)
    submodules = [f for alias in names if (f := _module_file(base, alias.name))]
    found = [(f, imported if f.parent == RULES and f.name != "__init__.py" else frozenset()) for f in files]
    return [(f, names_) for f, names_ in found if f.is_file()] + [(f, frozenset()) for f in submodules]


def reached(script: str | Path) -> tuple[set[Path], set[str]]:
    """The files a script runs (itself and slidesnake modules, transitively) and the third-party modules.

    A rule module (``slidesnake/rules/<stage>.py``) counts whole, but of its imports only the module-level
    ones and those of the functions the script imports from it (and the module's functions they call):
    editing the t-SNE plot reruns rule ``tsne``, not ``train``, though both live in ``rules/model.py``.

    Parameters
    ----------
    script : str or Path
        A Python file (a rule's script, or a library module).

    Returns
    -------
    tuple of (set of Path, set of str)
        The files, and the top-level names of the other modules they import (not the standard
        library, not snakemake).
    """
    seen: set[tuple[Path, frozenset[str]]] = set()
    files: set[Path] = set()
    found: set[str] = set()
    todo = [(Path(script).resolve(), frozenset())]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        files.add(item[0])
        more, names = _imports(*item)
        todo.extend(more)
        found |= names
    return files, found


def _import_nodes(tree: ast.Module, functions: frozenset[str]) -> list[ast.AST]:
    """The import statements of a module: all of them, or (``functions`` given) the module-level ones and
    those inside ``functions`` and the module's functions they call, transitively.
    """
    if not functions:
        return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    nodes = [
        node
        for statement in tree.body
        if not isinstance(statement, ast.FunctionDef | ast.ClassDef)
        for node in ast.walk(statement)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    wanted: set[str] = set()
    todo = [name for name in functions if name in defined]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        for node in ast.walk(defined[name]):
            if isinstance(node, ast.Import | ast.ImportFrom):
                nodes.append(node)
            elif isinstance(node, ast.Name) and node.id in defined:
                todo.append(node.id)
    return nodes


@functools.cache
def _imports(
    path: Path, functions: frozenset[str]
) -> tuple[tuple[tuple[Path, frozenset[str]], ...], frozenset[str]]:
    """The library files one Python file imports, and the third-party modules (parsed once per file and
    function set: every rule's code version walks the same modules).
    """
    files: list[tuple[Path, frozenset[str]]] = []
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text()), functions):
        if isinstance(node, ast.ImportFrom) and node.level:  # relative: a slidesnake module
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            files.extend(_library_files(base, node.module, node.names))
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            names = [node.module or ""]
        for name in names:
            top, *rest = name.split(".")
            if top == "slidesnake":
                files.extend(_library_files(LIBRARY, ".".join(rest) or None, getattr(node, "names", [])))
            elif top not in sys.stdlib_module_names and top != "snakemake":
                found.add(top)
    return tuple(files), frozenset(found)


def code_version(script: str | Path) -> str:
    """A checksum of a script and of every library module it reaches (16 hex digits)."""
    files, _ = reached(script)
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(LIBRARY.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
