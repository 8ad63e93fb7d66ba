"""Every name a notebook reads off a package module (``andmask.pooled_env_gradients``,
``ph.run_grokking``, ...) exists: a module split that forgets a re-export fails here, in
seconds, rather than in the middle of a notebook run."""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(Path(__file__).parents[1].glob("notebooks/[0-9][0-9]_*.ipynb"))


def exists(module: str, name: str) -> bool:
    """``module.name`` is an attribute of the module, or a submodule of it."""
    if hasattr(importlib.import_module(module), name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


def package_names(source: str) -> list[tuple[str, str]]:
    """``(module, attribute)`` for every ``alias.attribute`` whose alias is an hvnotes module
    imported in ``source`` (``import hvnotes.x as a``, ``from hvnotes import x``)."""
    tree = ast.parse(source)
    aliases, used = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("hvnotes"):
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "hvnotes"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hvnotes"):
            for a in node.names:
                used.append((node.module, a.name))  # the imported name itself must exist
                if exists(node.module, a.name):
                    value = getattr(importlib.import_module(node.module), a.name)
                    if isinstance(value, types.ModuleType):
                        aliases[a.asname or a.name] = value.__name__
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases):  # fmt: skip
            used.append((aliases[node.value.id], node.attr))
    return used


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_package_name_a_notebook_reads_exists(path):
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(
        "\n".join(
            line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        for c in nb.cells
        if c.cell_type == "code"
    )
    used = package_names(source)
    assert used, f"{path.name} reads nothing off the package?"
    missing = sorted({f"{m}.{a}" for m, a in used if not exists(m, a)})
    assert not missing, f"{path.name} reads names the package no longer has: {missing}"
