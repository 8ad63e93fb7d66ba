"""Unit tests start from the package's defaults: base seed 0, whatever ran before or is set outside."""

import pytest

from hvnotes import seeding


@pytest.fixture(autouse=True)
def _base_seed_zero(monkeypatch):
    monkeypatch.delenv("HVNOTES_SEED", raising=False)
    seeding.set_base_seed(0)
    yield
    seeding.set_base_seed(0)
