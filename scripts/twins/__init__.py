"""The registry of null twins: each swaps one package function for a copy with what a claim credits removed.

A *null twin* is the method a claim credits, with exactly that part removed, run on the same
data, seeds and budget: a mask that keeps nothing, a random mask with the same kept fraction,
lambda = 0, annotations off the shortcut, an untrained network, shuffled labels, a penalty set to
zero. If an asserted claim still holds when its method is replaced by its twin, the assert does
not test the method. ``make falsify`` (``scripts/falsify.py``) runs every notebook once per
twin registered for it, with the twin swapped in right after the notebook's setup cell, and
reports which asserts each twin breaks.

One module per notebook (``nb00.py`` ... ``nb06.py``, each lesson with its deep dive) lists its twins in ``TWINS``::

    Twin(
        name="and-mask-keeps-nothing",
        notebooks=("02_and_mask",),
        target="hvnotes.andmask:and_mask",
        removes="the mask: every component is vetoed, so only weight decay moves the weights",
        make=lambda and_mask: lambda env_grads, tau: torch.zeros_like(env_grads[0]),
    )

``target`` is ``"module:attribute"`` (``"module:Class.method"`` for a method). ``make`` receives
the original function and returns its twin, which may call the original (with the penalty set to
zero, say). :func:`apply` swaps the twin in everywhere the original is bound: the module that
defines it, every ``hvnotes`` module that imported it by name, and the notebook's own names
(``from hvnotes.andmask import and_mask`` in a notebook is swapped too). ``stop_after``, when
given, is a piece of source text of the notebook's last cell that the twin's run needs: the run
stops after that cell (to spend the harness's time on cells the twin can change).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Twin:
    name: str
    notebooks: tuple[str, ...]
    target: str
    removes: str
    make: Callable[[Callable], Callable]
    stop_after: dict[str, str] | None = None  # notebook stem -> source text of its last cell

    def __post_init__(self):
        if ":" not in self.target:
            raise ValueError(f"twin {self.name!r}: target must be 'module:attribute'")
        if isinstance(self.notebooks, str):
            raise TypeError(f"twin {self.name!r}: notebooks must be a tuple of notebook stems")


def _modules():
    from twins import nb00, nb01, nb02, nb03, nb04, nb05, nb06  # each defines TWINS

    return [nb00, nb01, nb02, nb03, nb04, nb05, nb06]


def registry() -> list[Twin]:
    """Every registered twin, in notebook order."""
    twins = [t for module in _modules() for t in module.TWINS]
    names = [t.name for t in twins]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"twin names must be unique: {duplicates}")
    return twins


def by_name(name: str) -> Twin:
    for twin in registry():
        if twin.name == name:
            return twin
    raise KeyError(f"no twin named {name!r}; registered: {[t.name for t in registry()]}")


def for_notebook(stem: str) -> list[Twin]:
    return [t for t in registry() if stem in t.notebooks]


def resolve(target: str) -> tuple[Any, str, Any]:
    """``"pkg.mod:Cls.attr"`` -> (the object holding the attribute, its name, its value)."""
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    if not hasattr(owner, attr):
        raise AttributeError(f"{target}: {owner!r} has no attribute {attr!r}")
    return owner, attr, getattr(owner, attr)


def apply(name: str, namespace: dict | None = None) -> Twin:
    """Swap twin ``name`` in for its target everywhere the target is bound; return the twin.

    ``namespace`` is the notebook's namespace (in a kernel: ``get_ipython().user_ns``); names
    there that are bound to the original are rebound to the twin as well.
    """
    twin = by_name(name)
    owner, attr, original = resolve(twin.target)
    replacement = twin.make(original)
    if not callable(replacement):
        raise TypeError(f"twin {name!r}: make() must return a callable")
    setattr(owner, attr, replacement)
    # modules that did `from hvnotes.x import f` hold their own binding of f
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("hvnotes"):
            continue
        for key, value in list(vars(module).items()):
            if value is original:
                setattr(module, key, replacement)
    for key, value in list((namespace or {}).items()):
        if value is original:
            namespace[key] = replacement
    return twin
