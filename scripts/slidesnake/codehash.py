"""The library code a rule's script runs, and a checksum of it, so that code changes rerun the rule.

Snakemake's code trigger sees only a rule's script; every rule also gets a ``code`` param, the
checksum of its script and of every library module the script reaches through its imports, so
editing ``slidesnake/store/writer.py`` reruns ``tile`` (and what depends on its outputs) but not
``label_tiles``. Imports are followed as text (``ast``), without running any code.
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


def _library_files(base: Path, module: str | None, names: list[ast.alias]) -> list[Path]:
    """The library files an import runs: the module, its packages' __init__ files, imported submodules."""
    files = [base / "__init__.py"]
    if module:
        parts = module.split(".")
        files += [f for k in range(1, len(parts) + 1) if (f := _module_file(base, ".".join(parts[:k])))]
        base = base.joinpath(*parts)
    files += [f for alias in names if (f := _module_file(base, alias.name))]
    return [f for f in files if f.is_file()]


def reached(script: str | Path) -> tuple[set[Path], set[str]]:
    """The files a script runs (itself and slidesnake modules, transitively) and the third-party modules.

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
    seen: set[Path] = set()
    found: set[str] = set()
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        files, names = _imports(path)
        todo.extend(files)
        found |= names
    return seen, found


@functools.cache
def _imports(path: Path) -> tuple[tuple[Path, ...], frozenset[str]]:
    """The library files one Python file imports, and the third-party modules (parsed once per file:
    every rule's code version walks the same modules).
    """
    files: list[Path] = []
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:  # relative: a slidesnake module
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            files.extend(_library_files(base, node.module, node.names))
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
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
