"""Null twins of notebook 05 and its deep dive (see ``scripts/twins/__init__.py``)."""

from __future__ import annotations

from twins import Twin

TWINS: list[Twin] = []
